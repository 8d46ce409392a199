import { test } from "node:test";
import assert from "node:assert/strict";
import { BENCH_SCENARIOS, SCENARIOS, scenarioEvents, type Scenario } from "../../../src/sim/scenario.js";
import { simulate } from "../../../src/sim/simulate.js";

const short = (name: string, over: Partial<Scenario> = {}): Scenario => ({
  ...SCENARIOS[name]!,
  durationS: 12,
  warmupS: 2,
  ...over,
});

void test("a run is deterministic for a seed and changes with the seed", () => {
  const sc = short("hetero-70", { durationS: 5, warmupS: 1 });
  const a = simulate(sc, "adaptive", 11);
  const b = simulate(sc, "adaptive", 11);
  const c = simulate(sc, "adaptive", 12);
  const key = (r: typeof a): string =>
    JSON.stringify([r.requests, r.p50Ms, r.p99Ms, r.p999Ms, r.share, r.events]);
  assert.equal(key(a), key(b));
  assert.notEqual(key(a), key(c));
});

void test("Little's law: utilisation ≈ arrival rate × mean service / capacity", () => {
  // Homogeneous, exponential service: busy slot time must match the offered work.
  const sc = short("homogeneous", { service: "exponential", durationS: 30, warmupS: 3 });
  const r = simulate(sc, "round-robin", 3);
  const utils = Object.values(r.utilisation);
  const mean = utils.reduce((x, y) => x + y, 0) / utils.length;
  assert.ok(Math.abs(mean - sc.load) < 0.05, `mean utilisation ${mean.toFixed(3)} vs load ${sc.load}`);
  assert.ok(
    Math.abs(r.achievedRate - r.offeredRate) / r.offeredRate < 0.05,
    `achieved ${r.achievedRate} of ${r.offeredRate}`,
  );
});

void test("the oracle beats random on heterogeneous servers", () => {
  const sc = short("hetero-70");
  const oracle = simulate(sc, "oracle", 5);
  const random = simulate(sc, "random", 5);
  assert.ok(oracle.p99Ms * 3 < random.p99Ms, `oracle p99 ${oracle.p99Ms} vs random ${random.p99Ms}`);
  // It keeps the slowest server (speed 1 of 4:4:2:1) nearly idle.
  assert.ok(oracle.share.s03! < 0.05, `slowest server share ${oracle.share.s03}`);
});

void test("round-robin overloads the slow server at 90% load", () => {
  const sc = short("hetero-90");
  const r = simulate(sc, "round-robin", 5);
  // A quarter of the work on a server with 1/11 of the capacity: its queue grows without bound.
  assert.ok(r.utilisation.s03! > 0.99, `slow server utilisation ${r.utilisation.s03}`);
  assert.ok(r.timeouts > 0 || r.p99Ms > 1000, `p99 ${r.p99Ms} ms, ${r.timeouts} timeouts`);
  assert.ok(r.achievedRate < 0.9 * r.offeredRate);
});

void test("a dead server's calls are retried elsewhere and it leaves and re-enters rotation", () => {
  const sc = short("failure", { durationS: 10, warmupS: 1 });
  const r = simulate(sc, "adaptive", 2);
  assert.equal(r.errors, 0);
  assert.equal(r.timeouts, 0);
  const perSec = r.sharePerSecond.s00!;
  // Dead from 3 s to 6 s: nothing reaches it then; it gets work again after it comes back.
  assert.ok(
    perSec.slice(4, 6).every((n) => n === 0),
    `calls while dead: ${perSec.join(",")}`,
  );
  assert.ok(
    perSec.slice(7).some((n) => n > 0),
    `no calls after recovery: ${perSec.join(",")}`,
  );
});

void test("nested calls hold their worker slot: busy slot time grows by the nested share", () => {
  const sc = { ...SCENARIOS.homogeneous!, service: "exponential" as const, durationS: 30, warmupS: 3 };
  const plain = simulate(sc, "round-robin", 4);
  const nested = simulate({ ...sc, nestedProbability: 0.5, nestedFraction: 1 }, "round-robin", 4);
  const mean = (r: typeof plain): number =>
    Object.values(r.utilisation).reduce((x, y) => x + y, 0) / Object.values(r.utilisation).length;
  // Half the calls spend one more mean service time in their slot: 1.5× the busy time.
  const ratio = mean(nested) / mean(plain);
  assert.ok(Math.abs(ratio - 1.5) < 0.1, `busy slot time ratio ${ratio.toFixed(3)}`);
});

void test("on the mirror of the real bench (4:4:2:1, 70%) adaptive keeps the slowest server idle, near the oracle", () => {
  const sc = { ...BENCH_SCENARIOS["bench-heterogeneous-70"]!, durationS: 40 };
  for (const seed of [1, 2]) {
    const oracle = simulate(sc, "oracle", seed);
    const adaptive = simulate(sc, "adaptive", seed);
    assert.ok(adaptive.share.s03! < 0.01, `seed ${seed}: slowest server's share ${adaptive.share.s03}`);
    const ratio = adaptive.p99Ms / oracle.p99Ms;
    assert.ok(ratio < 1.15, `seed ${seed}: p99 ${ratio.toFixed(2)}× the oracle's`);
  }
});

void test("adaptive gives a server that joins or comes back its share as soon as the ease-in ends", () => {
  // Share of one server's calls over a window of seconds, in a run's per-second counts.
  const share = (r: ReturnType<typeof simulate>, id: string, from: number, to: number): number => {
    let mine = 0;
    let all = 0;
    for (const [sid, perSecond] of Object.entries(r.sharePerSecond)) {
      for (let s = from; s < to; s++) {
        all += perSecond[s]!;
        if (sid === id) mine += perSecond[s]!;
      }
    }
    return mine / all;
  };
  // s03 joins a third of the way in; s01 dies at 25% of the measured run and is back at 60%. Both
  // are judged from the end of the router's ease-in on, against what the oracle gives them in the
  // same seconds.
  const added = BENCH_SCENARIOS["bench-server-added"]!;
  const failure = { ...BENCH_SCENARIOS["bench-failure"]!, durationS: 40 };
  const easeInS = (added.easeInMs ?? 0) / 1000;
  const joinsAt = added.servers[3]!.addAtS!;
  const backAt = scenarioEvents(failure).find((e) => e.kind === "recover")!.atS;
  for (const seed of [1, 2]) {
    for (const [sc, id, from] of [
      [added, "s03", Math.ceil(joinsAt + easeInS)],
      [failure, "s01", Math.ceil(backAt + easeInS)],
    ] as const) {
      const to = Math.min(from + 10, sc.durationS);
      const oracle = share(simulate(sc, "oracle", seed), id, from, to);
      const adaptive = share(simulate(sc, "adaptive", seed), id, from, to);
      assert.ok(oracle > 0.2, `${sc.name} seed ${seed}: the oracle's share ${oracle.toFixed(2)}`);
      assert.ok(
        adaptive > 0.75 * oracle,
        `${sc.name} seed ${seed}: ${id} got ${(100 * adaptive).toFixed(0)}% where the oracle gives ${(100 * oracle).toFixed(0)}%`,
      );
    }
  }
});
