import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parseTraceparent } from "../../../src/shared/trace-context.js";
import {
  appendTraceparent,
  readIncomingTrace,
  traceHeadersToSkip,
} from "../../../src/sidecar/trace-propagation.js";

const TID = "4bf92f3577b34da6a3ce929d0e0e4736";
const TP = `00-${TID}-00f067aa0ba902b7-01`;

describe("trace propagation: which trace headers reach the app", () => {
  it("a valid traceparent is the causality ID and goes through unchanged with its tracestate", () => {
    const t = readIncomingTrace(["traceparent", TP, "tracestate", "vendor=1"]);
    assert.equal(t.traceId, TID);
    assert.equal(t.parentSpanId, "00f067aa0ba902b7");
    assert.equal(t.continued, true);
    assert.equal(traceHeadersToSkip(t, undefined), undefined, "nothing is rewritten");
    const out: string[] = [];
    appendTraceparent(t, undefined, undefined, out);
    assert.deepEqual(out, []);
  });

  it("with a telemetry span the app's parent becomes that span; tracestate is kept", () => {
    const t = readIncomingTrace(["TraceParent", TP]);
    const skip = traceHeadersToSkip(t, "1111111111111111");
    assert.ok(skip?.has("traceparent"));
    assert.ok(!skip?.has("tracestate"));
    const out: string[] = [];
    appendTraceparent(t, "1111111111111111", undefined, out);
    assert.deepEqual(out, ["traceparent", `00-${TID}-1111111111111111-01`]);
    const unsampled: string[] = [];
    appendTraceparent(t, "1111111111111111", false, unsampled);
    assert.equal(unsampled[1], `00-${TID}-1111111111111111-00`);
  });

  for (const [why, raw] of [
    ["absent", []],
    ["uppercase", ["traceparent", TP.toUpperCase()]],
    ["zero trace id", ["traceparent", `00-${"0".repeat(32)}-00f067aa0ba902b7-01`]],
    ["version ff", ["traceparent", `ff-${TID}-00f067aa0ba902b7-01`]],
    ["junk", ["traceparent", "hello"]],
    ["repeated", ["traceparent", TP, "traceparent", TP]],
  ] as const) {
    it(`${why}: a new trace is started and injected, tracestate dropped`, () => {
      const t = readIncomingTrace([...raw, "tracestate", "vendor=1"]);
      assert.equal(t.continued, false);
      assert.notEqual(t.traceId, TID);
      assert.equal(t.parentSpanId, undefined);
      const skip = traceHeadersToSkip(t, undefined);
      assert.ok(skip?.has("traceparent") && skip.has("tracestate"));
      const out: string[] = [];
      appendTraceparent(t, undefined, undefined, out);
      assert.equal(out[0], "traceparent");
      const sent = parseTraceparent(out[1]);
      assert.equal(sent?.traceId, t.traceId);
      assert.equal(sent?.flags, 1);
    });
  }

  it("every new trace gets its own ID", () => {
    const ids = new Set(Array.from({ length: 100 }, () => readIncomingTrace([]).traceId));
    assert.equal(ids.size, 100);
  });
});
