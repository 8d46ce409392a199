/**
 * Timing by causality ID, end to end: the app calls itself back through the sidecar with the same
 * traceparent, and only the outer calls' time is counted.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { decodeLoadHeader, validateLoadReport, type LoadReport } from "../../src/shared/load-report.js";
import { CALL_END_CHANNEL, type CallEndMessage } from "../../src/sidecar/load-tracker.js";
import { startTestApp } from "../helpers/app.js";
import { send, startSidecar, waitFor } from "../helpers/sidecar.js";

const TP = (n: number) => `00-${n.toString(16).padStart(32, "a")}-00f067aa0ba902b7-01`;

async function load(controlUrl: string): Promise<LoadReport> {
  const r = await send(controlUrl, { path: "/v1/load" });
  assert.equal(r.status, 200);
  const v = validateLoadReport(r.json());
  assert.ok("report" in v, "error" in v ? v.error : "");
  return v.report;
}

describe("sidecar timing", () => {
  it("task-seconds = sum of the outer calls' durations; nested calls are counted and left out", async (t) => {
    const app = await startTestApp();
    t.after(() => app.close());
    const sc = await startSidecar(t, app.url);
    app.callbackUrl = sc.url;
    const ends: CallEndMessage[] = [];
    const onEnd = (m: unknown) => ends.push(m as CallEndMessage);
    subscribe(CALL_END_CHANNEL, onEnd);
    t.after(() => unsubscribe(CALL_END_CHANNEL, onEnd));

    const OUTER = 3;
    const WORK_MS = 150;
    const INNER = 2;
    const INNER_MS = 100;
    const durations = await Promise.all(
      Array.from({ length: OUTER }, async () => {
        const start = performance.now();
        // No traceparent from the client: the sidecar starts a trace and the app propagates it.
        const r = await send(sc.url, { path: `/outer?ms=${WORK_MS}&inner=${INNER}&innerMs=${INNER_MS}` });
        const elapsed = (performance.now() - start) / 1000;
        assert.equal(r.status, 200);
        assert.deepEqual(r.json<{ statuses: number[] }>().statuses, [200, 200]);
        return elapsed;
      }),
    );
    const report = await load(sc.controlUrl);
    assert.equal(report.totals.topLevelCalls, OUTER);
    assert.equal(report.totals.nestedCalls, OUTER * INNER);
    assert.equal(report.totals.errors, 0);

    // The top-level calls are exactly the outer ones (one per trace), and only their time counts.
    const top = ends.filter((e) => e.topLevel);
    const nested = ends.filter((e) => !e.topLevel);
    assert.equal(new Set(top.map((e) => e.causalityId)).size, OUTER, "one top-level call per trace");
    for (const n of nested)
      assert.ok(
        top.some((o) => o.causalityId === n.causalityId),
        "nested under an outer call",
      );
    const ts = report.totals.taskSeconds;
    const sumTop = top.reduce((a, e) => a + e.durationMs, 0) / 1000;
    const sumNested = nested.reduce((a, e) => a + e.durationMs, 0) / 1000;
    assert.ok(Math.abs(ts - sumTop) < 1e-6, `taskSeconds ${ts} = sum of outer durations ${sumTop}`);
    assert.ok(
      sumNested >= (OUTER * INNER * INNER_MS) / 1000,
      "the nested calls' time was real, and left out",
    );

    // Against the client's own stopwatch: the sidecar sees each outer call from inside it.
    const sumClient = durations.reduce((a, b) => a + b, 0);
    assert.ok(ts <= sumClient + 0.005, `taskSeconds ${ts} > client-measured ${sumClient}`);
    assert.ok(
      ts >= (OUTER * (WORK_MS + INNER * INNER_MS)) / 1000,
      `taskSeconds ${ts} < the work the app did`,
    );
  });

  it("sequential calls with the same traceparent (siblings) are each top-level", async (t) => {
    const app = await startTestApp();
    t.after(() => app.close());
    const sc = await startSidecar(t, app.url);
    for (let i = 0; i < 3; i++) await send(sc.url, { path: "/slow?ms=30", headers: { traceparent: TP(1) } });
    const r = await load(sc.controlUrl);
    assert.equal(r.totals.topLevelCalls, 3);
    assert.equal(r.totals.nestedCalls, 0);
    assert.ok(r.totals.taskSeconds >= 0.09);
  });

  it("a call that ends while an earlier one with its ID is in flight is nested; other IDs are not", async (t) => {
    const app = await startTestApp();
    t.after(() => app.close());
    const sc = await startSidecar(t, app.url);
    const arrived = app.nextRequest("/slow?ms=800");
    const outer = send(sc.url, { path: "/slow?ms=800", headers: { traceparent: TP(2) } });
    await arrived;
    await send(sc.url, { path: "/slow?ms=20", headers: { traceparent: TP(2) } });
    await send(sc.url, { path: "/slow?ms=20", headers: { traceparent: TP(3) } });
    const mid = await load(sc.controlUrl);
    assert.equal(mid.totals.nestedCalls, 1);
    assert.equal(mid.totals.topLevelCalls, 1, "the other ID's call");
    assert.equal(mid.live.inFlight, 1);
    assert.equal(mid.live.inFlightTopLevel, 1);
    assert.ok(mid.live.inFlightAgeSeconds > 0);
    await outer;
    const end = await load(sc.controlUrl);
    assert.equal(end.totals.topLevelCalls, 2);
    assert.equal(end.totals.nestedCalls, 1);
    assert.ok(end.totals.taskSeconds >= 0.8 + 0.02, String(end.totals.taskSeconds));
  });

  it("the summed age of top-level calls in flight grows while they run", async (t) => {
    const app = await startTestApp();
    t.after(() => app.close());
    const sc = await startSidecar(t, app.url);
    const arrived = Promise.all([app.nextRequest("/slow?ms=2500&a"), app.nextRequest("/slow?ms=2500&b")]);
    const calls = [send(sc.url, { path: "/slow?ms=2500&a" }), send(sc.url, { path: "/slow?ms=2500&b" })];
    await arrived;
    const r1 = await load(sc.controlUrl);
    assert.equal(r1.live.inFlightTopLevel, 2);
    await new Promise((r) => setTimeout(r, 200));
    const r2 = await load(sc.controlUrl);
    assert.ok(r2.live.inFlightAgeSeconds >= r1.live.inFlightAgeSeconds + 2 * 0.15, "two calls age together");
    assert.ok(r2.seq > r1.seq && r2.uptimeSeconds > r1.uptimeSeconds);
    assert.equal(r2.epoch, r1.epoch);
    await Promise.all(calls);
    const r3 = await load(sc.controlUrl);
    assert.deepEqual([r3.live.inFlight, r3.live.inFlightTopLevel, r3.live.inFlightAgeSeconds], [0, 0, 0]);
  });

  it("the piggybacked report matches the polled one", async (t) => {
    const app = await startTestApp();
    t.after(() => app.close());
    const sc = await startSidecar(t, app.url);
    await send(sc.url, { path: "/slow?ms=20" });
    await new Promise((r) => setTimeout(r, 20));
    const r = await send(sc.url, { path: "/echo", headers: { "x-tasklb-load": "1" } });
    const piggy = decodeLoadHeader(String(r.headers["x-tasklb-load"]));
    assert.ok(piggy);
    const polled = await load(sc.controlUrl);
    assert.equal(piggy.epoch, polled.epoch);
    assert.equal(piggy.totals.topLevelCalls, 1, "the call before this one");
    assert.equal(piggy.live.inFlight, 1, "this call");
    assert.ok(piggy.seq < polled.seq);
  });

  it("publishes every call end on diagnostics_channel", async (t) => {
    const app = await startTestApp();
    t.after(() => app.close());
    const sc = await startSidecar(t, app.url);
    app.callbackUrl = sc.url;
    const ends: CallEndMessage[] = [];
    const fn = (m: unknown) => ends.push(m as CallEndMessage);
    subscribe(CALL_END_CHANNEL, fn);
    t.after(() => unsubscribe(CALL_END_CHANNEL, fn));
    await send(sc.url, { path: "/outer?ms=10&inner=1&innerMs=10" });
    await waitFor("two call ends", () => ends.length >= 2);
    const mine = ends.filter((e) => e.causalityId === ends[0]!.causalityId);
    assert.deepEqual(
      mine.map((e) => e.topLevel),
      [false, true],
      "the inner call ends first, nested",
    );
  });
});
