import { test } from "node:test";
import assert from "node:assert/strict";
import {
  addToProfile,
  emptyProfile,
  fitSlots,
  InFlightProfileDeltas,
  profileDelta,
  profileSum,
  profileServiceMsAt,
} from "../../../../src/router/balancers/concurrency.js";
import { OPEN_ENDED_BUCKET } from "../../../../src/shared/load-report.js";
import { createRandom, lognormal } from "../../../../src/sim/prng.js";

/**
 * A profile measured on a server with `slots` slots, mean service `serviceMs` and `fixedMs` of
 * latency outside the slots (network, a busy host), with `perBucket[k]` calls that found k ahead.
 */
function measured(slots: number, serviceMs: number, perBucket: readonly number[], seed = 1, fixedMs = 0) {
  const rnd = createRandom(seed);
  const calls: number[] = [];
  const taskSeconds: number[] = [];
  perBucket.forEach((n, k) => {
    let sum = 0;
    for (let i = 0; i < n; i++)
      sum += fixedMs + lognormal(rnd, serviceMs * Math.max(1, (k + 1) / slots), 0.5);
    calls.push(n);
    taskSeconds.push(sum / 1000);
  });
  const p = emptyProfile();
  addToProfile(p, { calls, taskSeconds }, 200);
  return p;
}

const fit = (p: ReturnType<typeof measured>) => fitSlots(p, 30, 200, 0.1);

void test("fitSlots finds how many calls a server works on at once", () => {
  const wide = Array.from({ length: 16 }, () => 150);
  for (const slots of [1, 2, 4, 8]) {
    // Within half a slot (the smaller is preferred when the fits are nearly as good).
    const f = fit(measured(slots, 40, wide, slots))!;
    assert.ok(Math.abs(f.slots - slots) <= 0.5, `${slots} slots: fitted ${f.slots}`);
    assert.equal(f.lowerBound, false, `${slots} slots: seen to queue, so measured`);
  }
});

void test("fitSlots claims no more slots than it has seen calls served at once, as a lower bound", () => {
  // Never queued: every call found at most 2 ahead and none waited. All it knows is c ≥ 3.
  assert.deepEqual(fit(measured(8, 40, [300, 300, 300])), { slots: 3, lowerBound: true });
  // Only ever idle when a call came: at least one slot, nothing more known.
  assert.deepEqual(fit(measured(4, 40, [500])), { slots: 1, lowerBound: true });
  // Always one call ahead: one bucket fits any c up to 2 exactly, so it proves nothing either.
  assert.equal(fit(measured(4, 40, [5, 500]))?.lowerBound, true);
  // Too few calls to tell.
  assert.equal(fit(measured(4, 40, [10, 10, 10, 10, 10, 10])), undefined);
});

void test("fitSlots leaves out the sidecar's open-ended last bucket", () => {
  // A 4-slot server, and a burst whose calls found ~200 ahead: the sidecar counts them in its last
  // bucket (every k ≥ 31), where they look like k = 31 calls 6× slower than 4 slots explain
  // (taken at k = 31, they pulled the fit down to 2.5 slots).
  const p = measured(
    4,
    40,
    Array.from({ length: 16 }, () => 150),
    5,
  );
  const calls = Array.from({ length: OPEN_ENDED_BUCKET + 1 }, (_, k) => (k === OPEN_ENDED_BUCKET ? 150 : 0));
  addToProfile(p, { calls, taskSeconds: calls.map((n) => (n * 40 * (201 / 4)) / 1000) }, 200);
  const f = fit(p)!;
  assert.ok(Math.abs(f.slots - 4) <= 0.5, `fitted ${f.slots}`);
});

void test("profileServiceMsAt converts latency by load into service time for a slot count", () => {
  const p = measured(
    4,
    40,
    Array.from({ length: 8 }, () => 400),
    3,
  );
  // On the right slot count the profile gives the service time back; on one slot it reads the
  // waits as service and comes out several times shorter.
  const right = profileServiceMsAt(p, 4)!;
  assert.ok(Math.abs(right - 40) < 4, `4 slots: ${right}`);
  assert.ok(profileServiceMsAt(p, 1)! < right / 2);
  assert.equal(profileServiceMsAt(emptyProfile(), 4), undefined);
});

void test("profileDelta subtracts per bucket, accepts new buckets and refuses a reset", () => {
  const a = { calls: [5, 2], taskSeconds: [0.5, 0.4] };
  const b = { calls: [7, 2, 1], taskSeconds: [0.75, 0.4, 0.3] };
  const d = profileDelta(a, b)!;
  assert.deepEqual(d.calls, [2, 0, 1]);
  assert.ok(Math.abs(d.taskSeconds[0]! - 0.25) < 1e-12 && d.taskSeconds[1] === 0);
  assert.equal(profileDelta(b, a), undefined);
  assert.equal(profileDelta(b, { calls: [1, 2, 1], taskSeconds: [0.1, 0.4, 0.3] }), undefined);
  assert.equal(profileDelta(undefined, b), undefined);
});

void test("profileSum adds two deltas per bucket, the longer one's extra buckets included", () => {
  const sum = profileSum(
    { calls: [1, 2], taskSeconds: [0.1, 0.2] },
    { calls: [3, 0, 1], taskSeconds: [0.3, 0, 0.5] },
  );
  assert.deepEqual(sum.calls, [4, 2, 1]);
  assert.ok(Math.abs(sum.taskSeconds[0]! - 0.4) < 1e-12 && sum.taskSeconds[2] === 0.5);
});

void test("InFlightProfileDeltas: deltas within an epoch; reports without a profile keep the baseline", () => {
  const t = new InFlightProfileDeltas();
  assert.equal(t.next("e1", { calls: [1], taskSeconds: [0.1] }), undefined);
  assert.equal(t.next("e1", undefined), undefined);
  assert.deepEqual(t.next("e1", { calls: [4], taskSeconds: [0.1] })?.calls, [3]);
  // A restart: no delta across it.
  assert.equal(t.next("e2", { calls: [9], taskSeconds: [1] }), undefined);
  assert.deepEqual(t.next("e2", { calls: [10], taskSeconds: [1] })?.calls, [1]);
});
