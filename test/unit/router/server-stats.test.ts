/** Rates from cumulative report deltas: per sidecar uptime, epoch-aware, noise-guarded. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { ServerStats, type ReportSample } from "../../../src/router/server-stats.js";

const sample = (
  seq: number,
  up: number,
  ts: number,
  calls: number,
  errors = 0,
  epoch = "e",
): ReportSample => ({
  epoch,
  seq,
  uptimeSeconds: up,
  state: "serving",
  totals: { taskSeconds: ts, topLevelCalls: calls, nestedCalls: 0, errors },
  live: { inFlight: 1, inFlightTopLevel: 1, inFlightAgeSeconds: 0.2, cpu: 0.5, cores: 4 },
});

void test("busy = Δtask-seconds / Δuptime; call and error rates; mean call time", () => {
  const s = new ServerStats();
  assert.equal(s.onReport(sample(1, 10, 5, 100), 0), undefined, "the first report is only a baseline");
  const r = s.onReport(sample(2, 10.5, 6, 120, 2), 500)!;
  assert.equal(r.busy, 2);
  assert.equal(r.callRate, 40);
  assert.equal(r.errorRate, 4);
  assert.equal(r.meanCallSeconds, 0.05);
  assert.equal(r.cores, 4);
  assert.equal(r.receivedAtMs, 500);
});

void test("rates use the sidecar's uptime, not the arrival time, so poll jitter does not distort them", () => {
  const s = new ServerStats();
  s.onReport(sample(1, 1, 0, 0), 0);
  const r = s.onReport(sample(2, 2, 1, 10), 5000)!;
  assert.equal(r.busy, 1);
});

void test("a new epoch resets the baseline: no rate across a restart, even when totals went down", () => {
  const s = new ServerStats();
  s.onReport(sample(1, 100, 50, 1000), 0);
  s.onReport(sample(2, 101, 51, 1010), 1000);
  assert.equal(s.onReport(sample(1, 0.1, 0, 0, 0, "new"), 2000), undefined);
  assert.equal(s.reported, undefined);
  assert.equal(s.onReport(sample(2, 1.1, 0.5, 5, 0, "new"), 3000)!.busy, 0.5);
});

void test("out-of-order and duplicate reports are ignored", () => {
  const s = new ServerStats();
  s.onReport(sample(5, 5, 5, 5), 0);
  assert.equal(s.onReport(sample(4, 4, 4, 4), 1), undefined);
  assert.equal(s.onReport(sample(5, 5, 5, 5), 2), undefined);
});

void test("two routers polling at different times both get the true rate", () => {
  // A sidecar busy at a constant 3 task-seconds per second; routers poll at 100 ms and 170 ms.
  const at = (t: number, seq: number) => sample(seq, t, 3 * t, 30 * t);
  const r1 = new ServerStats();
  const r2 = new ServerStats();
  let seq = 0;
  for (let t = 1; t <= 3; t += 0.01) {
    const ms = Math.round(t * 1000);
    if (ms % 100 === 0) r1.onReport(at(t, ++seq), ms);
    if (ms % 170 === 0) r2.onReport(at(t, ++seq), ms);
  }
  assert.ok(Math.abs(r1.reported!.busy - 3) < 1e-9);
  assert.ok(Math.abs(r2.reported!.busy - 3) < 1e-9);
});

void test("reports closer than minRateIntervalSeconds refresh live figures but keep the rate window", () => {
  const s = new ServerStats({ minRateIntervalSeconds: 0.05 });
  s.onReport(sample(1, 1, 0, 0), 0);
  s.onReport(sample(2, 1.1, 0.2, 2), 100);
  assert.ok(Math.abs(s.reported!.busy - 2) < 1e-9);
  const close = {
    ...sample(3, 1.11, 0.3, 3),
    live: { inFlight: 7, inFlightTopLevel: 7, inFlightAgeSeconds: 1, cpu: 0.9 },
  };
  assert.equal(s.onReport(close, 110), undefined);
  assert.ok(Math.abs(s.reported!.busy - 2) < 1e-9, "no rate over 10 ms");
  assert.equal(s.reported!.inFlightTopLevel, 7);
  assert.equal(s.reported!.receivedAtMs, 110);
  const r = s.onReport(sample(4, 1.2, 0.4, 4), 200)!;
  assert.ok(Math.abs(r.busy - 2) < 1e-9, "the next rate spans from the last full window");
});

void test("a polled report's in-flight profile is not lost when its rates are dropped", () => {
  // Under traffic the profile comes only in polled reports, about once a second; piggybacked ones
  // arrive every few ms. A poll that lands within the minimum interval of a piggybacked report, or
  // after one that left the sidecar later, gives no rates, but its profile delta rides on the next.
  const withProfile = (base: ReportSample, calls: number[], taskSeconds: number[]): ReportSample => ({
    ...base,
    totals: { ...base.totals, byInFlight: { calls, taskSeconds } },
  });
  const s = new ServerStats({ minRateIntervalSeconds: 0.05 });
  s.onReport(withProfile(sample(1, 1, 0, 0), [10, 2], [1, 0.4]), 0);
  s.onReport(sample(2, 1.1, 0.2, 2), 100); // piggybacked
  // Polled 10 ms later: too soon for rates.
  assert.equal(s.onReport(withProfile(sample(3, 1.11, 0.3, 3), [12, 3], [1.2, 0.6]), 110), undefined);
  // The next piggybacked report carries the poll's profile delta.
  const carried = s.onReport(sample(4, 1.2, 0.4, 4), 200)?.inFlightProfile;
  assert.deepEqual(carried?.calls, [2, 1]);
  assert.ok(carried.taskSeconds.every((x) => Math.abs(x - 0.2) < 1e-9));
  assert.equal(s.onReport(sample(5, 1.3, 0.5, 5), 300)?.inFlightProfile, undefined, "and only that one");
  // Overtaken: a piggybacked report built after the poll arrives first (higher seq).
  s.onReport(sample(8, 1.4, 0.6, 6), 400);
  const polled = withProfile(sample(7, 1.39, 0.6, 6), [13, 3, 1], [1.3, 0.6, 0.25]);
  assert.equal(s.onReport(polled, 401), undefined);
  const next = s.onReport(withProfile(sample(9, 1.5, 0.7, 7), [14, 3, 1], [1.4, 0.6, 0.25]), 500);
  // Both polls' deltas, summed: (12,3 → 13,3,1) and (13,3,1 → 14,3,1).
  assert.deepEqual(next?.inFlightProfile?.calls, [2, 0, 1]);
  assert.ok(Math.abs(next.inFlightProfile.taskSeconds[0]! - 0.2) < 1e-9);
});

void test("router-side figures: in flight, peak-EWMA latency, failure EWMA", () => {
  const s = new ServerStats();
  s.onRequestStart();
  s.onRequestStart();
  assert.equal(s.inFlight, 2);
  s.observeLatency(0, 10);
  s.onRequestEnd(0, undefined, false);
  assert.equal(s.latencyMs, 10);
  s.onRequestEnd(100, 50, false);
  assert.equal(s.latencyMs, 50, "a slower sample replaces the estimate at once");
  assert.equal(s.inFlight, 0);
  s.onRequestStart();
  s.onRequestEnd(5100, undefined, true);
  assert.equal(s.failures, 1);
  assert.ok(s.failureRate > 0.5);
  assert.equal(s.requests, 3);
});
