import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { FakeClock } from "../../../src/shared/clock.js";
import { decodeLoadHeader, validateLoadReport } from "../../../src/shared/load-report.js";
import { fixedCpu } from "../../../src/sidecar/cpu-sampler.js";
import { CALL_END_CHANNEL, LoadTracker, type CallEndMessage } from "../../../src/sidecar/load-tracker.js";

const A = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const B = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const ctx = { state: "serving", appReachable: true, dataUrl: "http://10.0.0.1:8080" } as const;

function tracker(clock = new FakeClock(5_000)) {
  return {
    clock,
    lt: new LoadTracker({
      clock,
      cpu: fixedCpu(0.25, 4),
      maxTrackedCalls: 100,
      callMaxAgeMs: 60_000,
      epoch: "e1",
    }),
  };
}

describe("load tracker", () => {
  it("adds the time of top-level calls only and counts nested calls", () => {
    const { clock, lt } = tracker();
    const outer = lt.callStart(A);
    clock.advance(100);
    const inner = lt.callStart(A);
    clock.advance(300);
    lt.callEnd(inner, 200, "ok");
    clock.advance(100);
    lt.callEnd(outer, 200, "ok");
    const other = lt.callStart(B);
    clock.advance(250);
    lt.callEnd(other, 200, "ok");
    const r = lt.report(ctx);
    // Both top-level calls found nothing in flight: one bucket (k = 0) holding both.
    assert.deepEqual(r.totals, {
      taskSeconds: 0.75,
      topLevelCalls: 2,
      nestedCalls: 1,
      errors: 0,
      byInFlight: { calls: [2], taskSeconds: [0.75] },
    });
  });

  it("counts 5xx, proxy errors and aborts as errors, and times them", () => {
    const { clock, lt } = tracker();
    for (const [status, outcome] of [
      [500, "ok"],
      [502, "UPSTREAM_UNREACHABLE"],
      [0, "aborted"],
      [404, "ok"],
      [200, "ok"],
    ] as const) {
      const c = lt.callStart(B);
      clock.advance(10);
      lt.callEnd(c, status, outcome);
    }
    const r = lt.report(ctx);
    assert.equal(r.totals.errors, 3);
    assert.equal(r.totals.topLevelCalls, 5);
    assert.ok(Math.abs(r.totals.taskSeconds - 0.05) < 1e-9);
  });

  it("a call ended twice is counted once", () => {
    const { lt } = tracker();
    const c = lt.callStart(A);
    assert.ok(lt.callEnd(c, 200, "ok"));
    assert.equal(lt.callEnd(c, 0, "aborted"), undefined);
    assert.deepEqual(lt.report(ctx).totals, {
      taskSeconds: 0,
      topLevelCalls: 1,
      nestedCalls: 0,
      errors: 0,
      byInFlight: { calls: [1], taskSeconds: [0] },
    });
  });

  it("reports live figures, uptime on the monotonic clock, a rising seq and a fixed epoch", () => {
    const { clock, lt } = tracker();
    lt.callStart(A);
    clock.advance(1_000);
    lt.callStart(A);
    lt.callStart(B);
    clock.advance(500);
    const r1 = lt.report(ctx);
    assert.ok("report" in validateLoadReport(r1));
    assert.deepEqual(r1.live, {
      inFlight: 3,
      inFlightTopLevel: 2,
      inFlightAgeSeconds: 2,
      cpu: 0.25,
      cores: 4,
      cpuSource: "host",
      cpuCores: 4,
    });
    assert.equal(r1.uptimeSeconds, 1.5);
    assert.equal(r1.epoch, "e1");
    assert.equal(r1.dataUrl, "http://10.0.0.1:8080");
    const r2 = lt.report({ ...ctx, state: "draining" });
    assert.equal(r2.seq, r1.seq + 1);
    assert.equal(r2.state, "draining");
  });

  it("says what the CPU figure is measured against in the JSON report, not in the header", () => {
    const clock = new FakeClock();
    const lt = new LoadTracker({
      clock,
      cpu: { ...fixedCpu(0.9, 8), source: "cgroup-v2", capacityCores: 0.5 },
      maxTrackedCalls: 10,
      callMaxAgeMs: 60_000,
    });
    const r = lt.report(ctx);
    const v = validateLoadReport(JSON.parse(JSON.stringify(r)));
    assert.ok("report" in v, JSON.stringify(v));
    assert.equal(v.report.live.cpu, 0.9);
    assert.equal(v.report.live.cores, 8);
    assert.equal(v.report.live.cpuSource, "cgroup-v2");
    assert.equal(v.report.live.cpuCores, 0.5);
    const h = decodeLoadHeader(lt.loadHeader("serving"));
    assert.equal(h?.live.cpu, 0.9);
    assert.equal(lt.loadHeader("serving").split(";").length, 13, "the header's fixed format is unchanged");
  });

  it("random epochs differ between trackers", () => {
    const clock = new FakeClock();
    const make = () =>
      new LoadTracker({ clock, cpu: fixedCpu(0), maxTrackedCalls: 1, callMaxAgeMs: 1 }).epoch;
    assert.notEqual(make(), make());
  });

  it("the piggyback header is rebuilt at most every few ms and decodes to the same figures", () => {
    const { clock, lt } = tracker();
    const c = lt.callStart(A);
    clock.advance(20);
    lt.callEnd(c, 200, "ok");
    const h1 = lt.loadHeader("serving");
    assert.equal(lt.loadHeader("serving"), h1, "reused within the refresh period");
    const d = decodeLoadHeader(h1);
    assert.ok(d);
    assert.equal(d.epoch, "e1");
    assert.equal(d.totals.topLevelCalls, 1);
    assert.ok(Math.abs(d.totals.taskSeconds - 0.02) < 1e-6);
    clock.advance(10);
    const h2 = lt.loadHeader("serving");
    assert.notEqual(h2, h1);
    assert.ok(decodeLoadHeader(h2)!.seq > d.seq);
    assert.equal(
      decodeLoadHeader(lt.loadHeader("draining"))?.state,
      "draining",
      "a state change is never stale",
    );
  });

  it("publishes call ends on diagnostics_channel", () => {
    const { clock, lt } = tracker();
    const seen: CallEndMessage[] = [];
    const fn = (m: unknown) => seen.push(m as CallEndMessage);
    subscribe(CALL_END_CHANNEL, fn);
    try {
      const c = lt.callStart(A);
      clock.advance(5);
      lt.callEnd(c, 503, "OVERLOADED");
    } finally {
      unsubscribe(CALL_END_CHANNEL, fn);
    }
    assert.equal(seen.length, 1);
    assert.deepEqual(
      { ...seen[0], startMs: 0 },
      {
        causalityId: A,
        startMs: 0,
        durationMs: 5,
        topLevel: true,
        status: 503,
        outcome: "OVERLOADED",
        error: true,
      },
    );
  });
});
