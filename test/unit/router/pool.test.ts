/**
 * Server states in a pool, driven by a FakeClock: first report → easing → ready; misses → out →
 * probed back in; draining; new epoch; connect failures; easing limits; failover order.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { FakeClock } from "../../../src/shared/clock.js";
import { LOAD_REPORT_VERSION, type LoadReport } from "../../../src/shared/load-report.js";
import { createRoundRobinBalancer } from "../../../src/router/balancers/round-robin.js";
import { createTaskSecondsBalancer } from "../../../src/router/balancers/task-seconds.js";
import type { Balancer } from "../../../src/router/balancers/balancer.js";
import { Pool, type PoolEvent } from "../../../src/router/pool.js";

function report(over: Partial<LoadReport> & { taskSeconds?: number; calls?: number } = {}): LoadReport {
  const { taskSeconds = 0, calls = 0, ...rest } = over;
  return {
    version: LOAD_REPORT_VERSION,
    epoch: "e1",
    seq: 1,
    uptimeSeconds: 1,
    state: "serving",
    appReachable: true,
    dataUrl: "",
    totals: { taskSeconds, topLevelCalls: calls, nestedCalls: 0, errors: 0 },
    live: { inFlight: 0, inFlightTopLevel: 0, inFlightAgeSeconds: 0, cpu: 0, cores: 1 },
    ...rest,
  };
}

function makePool(
  opts: { easeInMs?: number; maxMisses?: number; balancer?: Balancer; random?: () => number } = {},
) {
  const clock = new FakeClock(1000);
  const events: PoolEvent[] = [];
  const balancer = opts.balancer ?? createRoundRobinBalancer({ clock, random: Math.random });
  const pool = new Pool(
    { name: "p", easeInMs: opts.easeInMs ?? 1000, maxMisses: opts.maxMisses ?? 3 },
    { balancer, random: opts.random ?? (() => 0), onEvent: (e) => events.push(e) },
  );
  const add = (n: number) =>
    pool.add({ dataUrl: `http://s${n}:80`, controlUrl: `http://s${n}:9901` }, "static", clock.now());
  return { clock, pool, events, add };
}

void test("a new server takes no work until its first report, then eases in and becomes ready", () => {
  const { clock, pool, add } = makePool();
  const m = add(1);
  assert.equal(m.state, "out");
  assert.equal(m.reason, "awaiting first report");
  assert.equal(pool.pick(clock.now()), undefined);
  pool.onPollSuccess(m.id, report(), clock.now());
  assert.equal(m.state, "easing");
  assert.equal(pool.pick(clock.now())?.member.id, m.id, "an easing server alone still takes work");
  clock.advance(999);
  pool.refresh(clock.now());
  assert.equal(m.state, "easing");
  clock.advance(1);
  pool.refresh(clock.now());
  assert.equal(m.state, "ready");
});

void test("maxMisses failed polls take a server out; the next good poll brings it back easing", () => {
  const { clock, pool, add, events } = makePool({ maxMisses: 3 });
  const m = add(1);
  pool.onPollSuccess(m.id, report(), clock.now());
  clock.advance(2000);
  pool.refresh(clock.now());
  assert.equal(m.state, "ready");
  pool.onPollFailure(m.id, "ECONNREFUSED", clock.now());
  pool.onPollFailure(m.id, "ECONNREFUSED", clock.now());
  assert.equal(m.state, "ready", "two misses are tolerated");
  pool.onPollFailure(m.id, "timed out after 500 ms", clock.now());
  assert.equal(m.state, "out");
  assert.match(m.reason, /3 polls failed \(last: timed out/);
  assert.equal(m.stats.reported, undefined, "rates are forgotten");
  assert.equal(pool.pick(clock.now()), undefined);
  clock.advance(100);
  pool.onPollSuccess(m.id, report({ seq: 2, uptimeSeconds: 2 }), clock.now());
  assert.equal(m.state, "easing");
  assert.equal(m.misses, 0);
  assert.deepEqual(
    events.filter((e) => e.type === "state").map((e) => (e.type === "state" ? `${e.from}>${e.to}` : "")),
    ["out>easing", "easing>ready", "ready>out", "out>easing"],
  );
});

void test("a success between misses resets the count", () => {
  const { clock, pool, add } = makePool({ maxMisses: 2 });
  const m = add(1);
  pool.onPollSuccess(m.id, report(), clock.now());
  pool.onPollFailure(m.id, "x", clock.now());
  pool.onPollSuccess(m.id, report({ seq: 2, uptimeSeconds: 2 }), clock.now());
  pool.onPollFailure(m.id, "x", clock.now());
  assert.equal(m.state, "easing");
});

void test("a draining report stops new work; serving again eases back in", () => {
  const { clock, pool, add } = makePool();
  const [a, b] = [add(1), add(2)];
  for (const m of [a, b]) pool.onPollSuccess(m.id, report(), clock.now());
  pool.onPollSuccess(a.id, report({ seq: 2, uptimeSeconds: 2, state: "draining" }), clock.now());
  assert.equal(a.state, "draining");
  for (let i = 0; i < 10; i++) assert.equal(pool.pick(clock.now())?.member.id, b.id);
  pool.onPollSuccess(a.id, report({ seq: 3, uptimeSeconds: 3 }), clock.now());
  assert.equal(a.state, "easing");
});

void test("a piggybacked draining state takes effect before the next poll", () => {
  const { clock, pool, add } = makePool();
  const a = add(1);
  pool.onPollSuccess(a.id, report(), clock.now());
  const r = report({ seq: 2, uptimeSeconds: 2 });
  pool.onPiggyback(a.id, { ...r, state: "draining", live: r.live }, clock.now());
  assert.equal(a.state, "draining");
});

void test("a sidecar that cannot reach its app is out", () => {
  const { clock, pool, add } = makePool();
  const a = add(1);
  pool.onPollSuccess(a.id, report({ appReachable: false }), clock.now());
  assert.equal(a.state, "out");
  assert.match(a.reason, /cannot reach its app/);
});

void test("a new epoch (sidecar restart) resets the rates and eases the server in again", () => {
  const { clock, pool, add } = makePool();
  const a = add(1);
  pool.onPollSuccess(a.id, report({ taskSeconds: 0 }), clock.now());
  clock.advance(2000);
  pool.onPollSuccess(a.id, report({ seq: 2, uptimeSeconds: 3, taskSeconds: 1, calls: 10 }), clock.now());
  pool.refresh(clock.now());
  assert.equal(a.state, "ready");
  assert.equal(a.stats.reported?.busy, 0.5);
  pool.onPollSuccess(a.id, report({ epoch: "e2", seq: 1, uptimeSeconds: 0.1, taskSeconds: 0 }), clock.now());
  assert.equal(a.state, "easing");
  assert.equal(a.reason, "the sidecar restarted (new epoch)");
  assert.equal(a.stats.reported, undefined, "no rate across epochs");
});

void test("a connect failure takes a server out at once; failover goes round-robin over the rest, skipping tried ones", () => {
  const { clock, pool, add } = makePool();
  const ms = [add(1), add(2), add(3), add(4)];
  for (const m of ms) pool.onPollSuccess(m.id, report(), clock.now());
  pool.onConnectFailure(ms[1]!.id, "UPSTREAM_UNREACHABLE", clock.now());
  assert.equal(ms[1]!.state, "out");
  assert.match(ms[1]!.reason, /connect failed/);
  const tried = new Set([ms[2]!.id]);
  assert.equal(pool.next(ms[2]!.id, tried, clock.now())?.id, ms[3]!.id);
  tried.add(ms[3]!.id);
  assert.equal(pool.next(ms[3]!.id, tried, clock.now())?.id, ms[0]!.id, "wraps around");
  tried.add(ms[0]!.id);
  assert.equal(pool.next(ms[0]!.id, tried, clock.now()), undefined, "the out server is skipped; none left");
});

void test("an easing server is offered only part of the time while others are ready", () => {
  let r = 0;
  const seq = [0.05, 0.5, 0.95];
  const { clock, pool, add } = makePool({
    easeInMs: 1000,
    balancer: createTaskSecondsBalancer({ clock: new FakeClock(), random: Math.random }),
    random: () => seq[r++ % seq.length]!,
  });
  const old = add(1);
  pool.onPollSuccess(old.id, report(), clock.now());
  clock.advance(1000);
  pool.onPollSuccess(old.id, report({ seq: 2, uptimeSeconds: 2, taskSeconds: 1.5, calls: 10 }), clock.now());
  pool.refresh(clock.now());
  assert.equal(old.state, "ready");
  const fresh = add(2);
  pool.onPollSuccess(fresh.id, report(), clock.now());
  // task-seconds thinks the unmeasured server is idle and would send it everything; the pool offers it
  // in 10 % of picks at first (here: one draw in three is below 0.1).
  let toFresh = 0;
  for (let i = 0; i < 30; i++) if (pool.pick(clock.now())?.member.id === fresh.id) toFresh++;
  assert.equal(toFresh, 10);
  assert.equal(pool.easeShare(fresh, clock.now()), 0.1);
  clock.advance(500);
  assert.ok(Math.abs(pool.easeShare(fresh, clock.now()) - 0.55) < 1e-9);
});

void test("an easing server is not offered while its in-flight count is above its share of the ready servers'", () => {
  const { clock, pool, add } = makePool({ easeInMs: 1000, random: () => 0 });
  const old = add(1);
  pool.onPollSuccess(old.id, report(), clock.now());
  clock.advance(1000);
  pool.refresh(clock.now());
  const fresh = add(2);
  pool.onPollSuccess(fresh.id, report(), clock.now());
  for (let i = 0; i < 4; i++) old.stats.onRequestStart();
  fresh.stats.onRequestStart();
  // share 0.1 × 4 in flight = 0.4 < 1: the easing server is left out.
  for (let i = 0; i < 5; i++) assert.equal(pool.pick(clock.now())?.member.id, old.id);
});

void test("servers leave when their last source goes; scores and ranks are reported", () => {
  const { clock, pool, add, events } = makePool({
    balancer: createTaskSecondsBalancer({ clock: new FakeClock(), random: Math.random }),
  });
  const a = add(1);
  pool.add({ dataUrl: a.dataUrl, controlUrl: a.controlUrl }, "registration", clock.now());
  const b = add(2);
  for (const m of [a, b]) pool.onPollSuccess(m.id, report(), clock.now());
  clock.advance(1000);
  pool.onPollSuccess(a.id, report({ seq: 2, uptimeSeconds: 2, taskSeconds: 2 }), clock.now());
  pool.onPollSuccess(b.id, report({ seq: 2, uptimeSeconds: 2, taskSeconds: 1 }), clock.now());
  const scores = pool.scores(clock.now());
  assert.deepEqual(scores.get(b.id), { score: 1, rank: 1 });
  assert.deepEqual(scores.get(a.id), { score: 2, rank: 2 });
  assert.equal(pool.removeSource(a.id, "static"), false, "still registered");
  assert.equal(pool.size, 2);
  assert.equal(pool.removeSource(a.id, "registration"), true);
  assert.equal(pool.size, 1);
  assert.ok(events.some((e) => e.type === "removed" && e.member.id === a.id));
});

void test("regression: a server back from an outage is not starved by failures it had before it", () => {
  const forgotten: string[] = [];
  const { clock } = makePool();
  const balancer: Balancer = {
    ...createRoundRobinBalancer({ clock, random: Math.random }),
    onRemove: (id) => forgotten.push(id),
  };
  const { pool, add } = makePool({ balancer, maxMisses: 1 });
  const m = add(1);
  pool.onPollSuccess(m.id, report(), clock.now());
  // Its requests failed while it died: the router's own figures say "fails, and slowly".
  for (let i = 0; i < 20; i++) m.stats.onRequestEnd(clock.now() + i, 900, true);
  m.stats.onRequestEnd(clock.now() + 30, 900, false);
  assert.ok(m.stats.failureRate > 0.1);
  pool.onPollFailure(m.id, "ECONNREFUSED", clock.now());
  assert.equal(m.state, "out");
  forgotten.length = 0;
  // It comes back: those figures describe a process that is gone.
  pool.onPollSuccess(m.id, report({ epoch: "e2" }), clock.now());
  assert.equal(m.state, "easing");
  assert.equal(m.stats.failureRate, 0);
  assert.equal(m.stats.latencyMs, undefined);
  assert.deepEqual(forgotten, [m.id], "the balancer forgets its per-server state too");
});
