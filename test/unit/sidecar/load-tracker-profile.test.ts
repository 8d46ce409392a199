import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { FakeClock } from "../../../src/shared/clock.js";
import { decodeLoadHeader, validateLoadReport } from "../../../src/shared/load-report.js";
import { fixedCpu } from "../../../src/sidecar/cpu-sampler.js";
import { IN_FLIGHT_BUCKETS, LoadTracker } from "../../../src/sidecar/load-tracker.js";

const ctx = { state: "serving", appReachable: true, dataUrl: "http://10.0.0.1:8080" } as const;
const id = (n: number): string => n.toString(16).padStart(32, "0");

function tracker(clock = new FakeClock(1_000)): { clock: FakeClock; lt: LoadTracker } {
  return {
    clock,
    lt: new LoadTracker({ clock, cpu: fixedCpu(0.1, 2), maxTrackedCalls: 1000, callMaxAgeMs: 60_000 }),
  };
}

describe("load tracker: latency by calls in flight at arrival (totals.byInFlight)", () => {
  it("puts each top-level call in the bucket of the top-level calls it found in flight", () => {
    const { clock, lt } = tracker();
    const a = lt.callStart(id(1)); // finds 0
    const b = lt.callStart(id(2)); // finds 1
    const nested = lt.callStart(id(1)); // nested in a: not a bucket entry, and not counted as ahead
    const c = lt.callStart(id(3)); // finds 2 (a, b)
    clock.advance(100);
    lt.callEnd(nested, 200, "ok");
    lt.callEnd(a, 200, "ok");
    clock.advance(100);
    lt.callEnd(b, 200, "ok");
    clock.advance(200);
    lt.callEnd(c, 200, "ok");
    const r = lt.report(ctx);
    assert.deepEqual(r.totals.byInFlight, { calls: [1, 1, 1], taskSeconds: [0.1, 0.2, 0.4] });
    assert.equal(r.totals.topLevelCalls, 3);
    assert.ok("report" in validateLoadReport(JSON.parse(JSON.stringify(r))));
  });

  it("counts every larger count in the last bucket", () => {
    const { clock, lt } = tracker();
    const calls = Array.from({ length: IN_FLIGHT_BUCKETS + 5 }, (_, i) => lt.callStart(id(i + 1)));
    clock.advance(10);
    for (const c of calls) lt.callEnd(c, 200, "ok");
    const p = lt.report(ctx).totals.byInFlight!;
    assert.equal(p.calls.length, IN_FLIGHT_BUCKETS);
    assert.equal(p.calls[IN_FLIGHT_BUCKETS - 1], 6);
    assert.equal(
      p.calls.reduce((x, y) => x + y, 0),
      calls.length,
    );
  });

  it("leaves the piggyback header in its version-1 form, which old routers decode", () => {
    const { clock, lt } = tracker();
    const c = lt.callStart(id(1));
    clock.advance(20);
    lt.callEnd(c, 200, "ok");
    const header = lt.loadHeader("serving");
    assert.equal(header.split(";").length, 13);
    const d = decodeLoadHeader(header);
    assert.equal(d?.totals.topLevelCalls, 1);
    assert.equal(d?.totals.byInFlight, undefined);
  });
});
