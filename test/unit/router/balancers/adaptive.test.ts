import { test } from "node:test";
import assert from "node:assert/strict";
import {
  createAdaptiveBalancer,
  DEFAULT_ADAPTIVE_PARAMS,
} from "../../../../src/router/balancers/adaptive.js";
import type { ReportedLoad, ServerView } from "../../../../src/router/balancers/balancer.js";
import { deps, load, tally, view } from "./fixtures.js";

/** Feeds two reports 100 ms apart (the second one at `now`), as a polling router would. */
function report(
  b: ReturnType<typeof createAdaptiveBalancer>,
  id: string,
  l: Partial<ReportedLoad>,
  now: number,
): ReportedLoad {
  b.onReport(id, load({ ...l, receivedAtMs: now - 100 }), now - 100);
  const r = load({ ...l, receivedAtMs: now });
  b.onReport(id, r, now);
  return r;
}

void test("adaptive exposes its parameters and a score", () => {
  const b = createAdaptiveBalancer(deps());
  assert.equal(b.name, "adaptive");
  assert.equal(b.params.choices, DEFAULT_ADAPTIVE_PARAMS.choices);
  assert.equal(b.score(view("a"), 0), undefined);
  const r = report(b, "a", { busy: 1, meanCallSeconds: 0.02 }, 1000);
  const s = b.score(view("a", { reported: r }), 1000);
  assert.ok(s !== undefined && s > 0 && Number.isFinite(s));
});

void test("adaptive prefers the server whose reports say it is faster", () => {
  const b = createAdaptiveBalancer(deps(1));
  // 50 calls per report: enough that the figures are the servers' own, not the prior (see cost()).
  const slow = report(b, "slow", { busy: 1, callRate: 500, meanCallSeconds: 0.08 }, 1000);
  const fast = report(b, "fast", { busy: 1, callRate: 500, meanCallSeconds: 0.01 }, 1000);
  const servers = [view("slow", { reported: slow }), view("fast", { reported: fast, inFlight: 2 })];
  for (let i = 0; i < 20; i++) assert.equal(b.pick(servers, 1000).id, "fast");
  // …but not without limit: with enough of this router's calls in flight the slow one is better.
  const piled = [servers[0]!, view("fast", { reported: fast, inFlight: 20 })];
  assert.equal(b.pick(piled, 1000).id, "slow");
});

void test("adaptive prefers the idle server among equals", () => {
  const b = createAdaptiveBalancer(deps(2));
  const r = report(b, "a", {}, 1000);
  report(b, "b", {}, 1000);
  const servers = [view("a", { reported: r, inFlight: 4 }), view("b", { reported: r, inFlight: 0 })];
  for (let i = 0; i < 20; i++) assert.equal(b.pick(servers, 1000).id, "b");
});

void test("adaptive avoids a server that fails fast", () => {
  const b = createAdaptiveBalancer(deps(3));
  // "broken" answers in 1 ms — with errors only. It must not look like the fastest server.
  const broken = report(
    b,
    "broken",
    { busy: 0.05, callRate: 50, errorRate: 50, meanCallSeconds: 0.001 },
    1000,
  );
  const ok = report(b, "ok", { busy: 1, meanCallSeconds: 0.02 }, 1000);
  const servers = [view("broken", { reported: broken }), view("ok", { reported: ok, inFlight: 3 })];
  for (let i = 0; i < 20; i++) assert.equal(b.pick(servers, 1000).id, "ok");
});

void test("adaptive gives a server a new chance once its errors stop and it is idle", () => {
  const b = createAdaptiveBalancer(deps(4));
  report(b, "flaky", { busy: 0.05, callRate: 50, errorRate: 50, meanCallSeconds: 0.001 }, 1000);
  const ok = report(b, "ok", { busy: 1, meanCallSeconds: 0.02 }, 1000);
  // The flaky server gets no calls now; its reports say so (no calls, nothing in flight).
  let r = load();
  for (let t = 1100; t <= 11_000; t += 100) {
    r = load({
      busy: 0,
      callRate: 0,
      errorRate: 0,
      meanCallSeconds: undefined,
      inFlightTopLevel: 0,
      inFlightAgeSeconds: 0,
      receivedAtMs: t,
    });
    b.onReport("flaky", r, t);
    b.onReport("ok", { ...ok, receivedAtMs: t }, t);
  }
  const servers = [
    view("flaky", { reported: r }),
    view("ok", { reported: { ...ok, receivedAtMs: 11_000 }, inFlight: 3 }),
  ];
  assert.equal(b.pick(servers, 11_000).id, "flaky");
});

void test("adaptive eases a new server in instead of flooding it", () => {
  const b = createAdaptiveBalancer(deps(5));
  const r = report(b, "a", {}, 1000);
  report(b, "b", {}, 1000);
  report(b, "new", {}, 1000);
  const at = (now: number, inFlight: number): ServerView[] => [
    view("a", { reported: { ...r, receivedAtMs: now }, inFlight }),
    view("b", { reported: { ...r, receivedAtMs: now }, inFlight }),
    view("new", { reported: { ...r, receivedAtMs: now }, readySinceMs: 1000, inFlight: 0 }),
  ];
  // Just joined and idle, while the others have 2 calls each: still not preferred.
  const early = tally(300, () => b.pick(at(1000, 2), 1000));
  assert.equal(early.get("new"), undefined);
  // After the ease-in window it competes normally and, being idle, wins.
  const later = 1000 + DEFAULT_ADAPTIVE_PARAMS.easeInMs;
  assert.equal(b.pick(at(later, 2), later).id, "new");
});

void test("adaptive does not herd on identical stale reports: picks spread over the servers", () => {
  const b = createAdaptiveBalancer(deps(6));
  const ids = ["a", "b", "c", "d"];
  const r = ids.map((id) => report(b, id, { busy: 2, inFlightTopLevel: 2 }, 1000))[0]!;
  // 5 s later (the reports stopped), nothing in flight from here and no latency seen yet.
  const servers = ids.map((id) => view(id, { reported: r }));
  const counts = tally(4000, () => b.pick(servers, 6000));
  assert.equal(counts.size, 4);
  for (const [id, c] of counts) assert.ok(c > 700 && c < 1400, `${id} got ${c} of 4000`);
});

void test("adaptive falls back to router-only figures (latency × in-flight) without reports", () => {
  const b = createAdaptiveBalancer(deps(7));
  const servers = [
    view("slow", { latencyMs: 200, inFlight: 0 }),
    view("fast", { latencyMs: 10, inFlight: 1 }),
  ];
  for (let i = 0; i < 20; i++) assert.equal(b.pick(servers, 0).id, "fast");
  // A server with no figures at all competes on its queue, at the others' per-request time.
  const mixed = [view("known", { latencyMs: 10, inFlight: 2 }), view("unknown", { inFlight: 0 })];
  assert.equal(b.pick(mixed, 0).id, "unknown");
});

/** A sidecar's latency-by-calls-in-flight profile for a server with `slots` slots and service `ms`. */
function profile(slots: number, ms: number, buckets: number, perBucket: number) {
  const calls = Array.from({ length: buckets }, () => perBucket);
  const taskSeconds = calls.map((n, k) => (n * ms * Math.max(1, (k + 1) / slots)) / 1000);
  return { calls, taskSeconds };
}

void test("adaptive learns a many-slot server's concurrency and keeps it busy as the oracle would", () => {
  // fast: 4 slots, 10 ms a call, seen at up to 15 calls in flight; slow: 4× slower, only ever
  // sent calls when idle. Expected completion of one more call (the oracle's figure): fast with q
  // calls in it 10 × max(1, (q+1)/4) ms, slow 40 ms. The single-queue estimate W/(L+1) made the
  // busy fast server look 4× faster per call than it is and sent calls to the slow one from q = 5.
  // (Live in-flight 0 in the reports: the queues are this router's calls only.)
  const b = createAdaptiveBalancer(deps(7));
  const fast = report(
    b,
    "fast",
    {
      busy: 3.5,
      callRate: 160,
      meanCallSeconds: 0.022,
      inFlightTopLevel: 0,
      inFlightProfile: profile(4, 10, 16, 100),
    },
    1000,
  );
  const slow = report(
    b,
    "slow",
    {
      busy: 0.5,
      callRate: 12,
      meanCallSeconds: 0.04,
      inFlightTopLevel: 0,
      inFlightProfile: profile(4, 40, 1, 200),
    },
    1000,
  );
  const pick = (q: number): string =>
    b.pick([view("slow", { reported: slow }), view("fast", { reported: fast, inFlight: q })], 1000).id;
  for (const q of [0, 3, 8, 12]) assert.equal(pick(q), "fast", `fast with ${q} in flight`);
  for (const q of [17, 24]) assert.equal(pick(q), "slow", `fast with ${q} in flight`);
});

void test("adaptive treats a server whose profile shows one slot as a single queue", () => {
  const b = createAdaptiveBalancer(deps(8));
  const single = report(
    b,
    "single",
    {
      busy: 2,
      callRate: 60,
      meanCallSeconds: 0.03,
      inFlightTopLevel: 0,
      inFlightProfile: profile(1, 10, 8, 100),
    },
    1000,
  );
  const wide = report(
    b,
    "wide",
    {
      busy: 1,
      callRate: 25,
      meanCallSeconds: 0.04,
      inFlightTopLevel: 0,
      inFlightProfile: profile(8, 40, 4, 100),
    },
    1000,
  );
  const pick = (q: number): string =>
    b.pick(
      [view("wide", { reported: wide, inFlight: 1 }), view("single", { reported: single, inFlight: q })],
      1000,
    ).id;
  // single: 10 × (q+1) ms; wide: 40 ms while a slot is free.
  assert.equal(pick(2), "single");
  assert.equal(pick(4), "wide");
});

void test("adaptive assumes a server not yet seen to queue has its measured peers' slots", () => {
  // "peer" has been seen queueing: 4 slots. "fresh" has only ever been sent one call at a time
  // (every call found 0 ahead): that fits any slot count, so it must not be taken for a single
  // queue, which would keep it at one call at a time for good (what a first version did).
  const b = createAdaptiveBalancer(deps(9));
  const peer = report(
    b,
    "peer",
    { busy: 3, inFlightTopLevel: 0, inFlightProfile: profile(4, 10, 12, 100) },
    1000,
  );
  const fresh = report(
    b,
    "fresh",
    { busy: 0.3, inFlightTopLevel: 0, inFlightProfile: profile(4, 10, 1, 100) },
    1000,
  );
  const pick = () =>
    b.pick(
      [view("peer", { reported: peer, inFlight: 3 }), view("fresh", { reported: fresh, inFlight: 2 })],
      1000,
    ).id;
  // Same speed; on 4 slots two calls in "fresh" leave it a free slot, as three do in "peer" (one
  // slot would cost it 3 service times).
  assert.equal(pick(), "fresh");
});

void test("adaptive eases in over the router's ease-in window, and not at all when it is 0", () => {
  const at = (b: ReturnType<typeof createAdaptiveBalancer>, now: number): string => {
    const r = report(b, "a", {}, now);
    report(b, "new", {}, now);
    return b.pick(
      [
        view("a", { reported: { ...r, receivedAtMs: now }, inFlight: 1 }),
        view("new", { reported: { ...r, receivedAtMs: now }, readySinceMs: now - 500, inFlight: 0 }),
      ],
      now,
    ).id;
  };
  // Half a second into rotation, idle, against a peer with one call: with no ease-in it wins; in a
  // 10 s window it is still credited with under a third of its slot and loses.
  assert.equal(at(createAdaptiveBalancer({ ...deps(10), easeInMs: 0 }), 5000), "new");
  assert.equal(at(createAdaptiveBalancer({ ...deps(10), easeInMs: 10_000 }), 5000), "a");
});

/**
 * A 4-slot server reporting every 100 ms with 3 calls always in it, 20 ms a call (each report's
 * profile delta says the calls found a slot free), so it ends 15 calls per report — but
 * `slowdown(t)`× slower where that is above 1, and `noise()` scatters the count. Returns the
 * server's score after each report.
 */
function runSpeeds(
  b: ReturnType<typeof createAdaptiveBalancer>,
  untilMs: number,
  slowdown: (t: number) => number,
  noise: () => number = () => 1,
): Map<number, number> {
  const scores = new Map<number, number>();
  for (let t = 100; t <= untilMs; t += 100) {
    const ms = 20 * slowdown(t);
    const ended = (15 * 20 * noise()) / ms;
    const perBucket = ended / 3;
    const seconds = (perBucket * ms) / 1000;
    const r = load({
      busy: 3,
      callRate: ended * 10,
      meanCallSeconds: ms / 1000,
      inFlightTopLevel: 3,
      receivedAtMs: t,
      inFlightProfile: { calls: [perBucket, perBucket, perBucket], taskSeconds: [seconds, seconds, seconds] },
    });
    b.onReport("s", r, t);
    scores.set(t, b.score(view("s", { reported: r }), t)!);
  }
  return scores;
}

/** Noise for {@link runSpeeds}: calls ended per report drawn from Poisson(mean) (Knuth's method), ÷ 15. */
function poissonNoise(seed: number, mean: number): () => number {
  const random = deps(seed).random;
  return () => {
    let k = 0;
    for (let p = random(); p > Math.exp(-mean); p *= random()) k++;
    return k / 15;
  };
}

/** Highest score ÷ lowest from `fromMs` on. */
function scoreSpread(scores: Map<number, number>, fromMs: number): number {
  const settled = [...scores].filter(([t]) => t >= fromMs).map(([, s]) => s);
  return Math.max(...settled) / Math.min(...settled);
}

void test("adaptive sees a server that suddenly works 4x slower within a second", () => {
  const slowdown = (t: number) => (t > 5000 ? 4 : 1);
  const withDetector = runSpeeds(createAdaptiveBalancer(deps(11)), 7000, slowdown);
  const without = runSpeeds(createAdaptiveBalancer(deps(11), { detect: false }), 7000, slowdown);
  const before = withDetector.get(5000)!;
  assert.equal(without.get(5000), before);
  // One second into the slowdown the detector has put the server at ≥ 3× its cost; the speed
  // estimate alone, learning from the server's few calls, has not yet reached 2×.
  assert.ok(withDetector.get(6000)! >= 3 * before, `with: ${withDetector.get(6000)} vs ${before}`);
  assert.ok(without.get(6000)! < 2 * before, `without: ${without.get(6000)} vs ${before}`);
});

void test("adaptive's slowdown detector does not fire on a steady server's Poisson counts", () => {
  // Calls ended per report drawn from Poisson(15), for 10 minutes of reports.
  const scores = runSpeeds(createAdaptiveBalancer(deps(12)), 600_000, () => 1, poissonNoise(12, 15));
  const moved = scoreSpread(scores, 20_000);
  assert.ok(moved < 1.2, `score moved ${moved}×`);
});

void test("adaptive's slowdown detector does not take a steady bias of its own figures for a slowdown", () => {
  // The server ends 30 % fewer calls than its busy slots and t say, for 10 minutes (a slot count
  // fitted too high, say, or time the app spends outside the slot model), with Poisson scatter.
  const noise = poissonNoise(13, 0.7 * 15);
  const run = (b: ReturnType<typeof createAdaptiveBalancer>) =>
    scoreSpread(
      runSpeeds(b, 600_000, () => 1, noise),
      30_000,
    );
  const moved = run(createAdaptiveBalancer(deps(13)));
  assert.ok(moved < 1.2, `score moved ${moved}×`);
  // Without the calibration to the server's own ratio the same counts look like a slowdown.
  const uncalibrated = run(createAdaptiveBalancer(deps(13), { detectCalibrateMs: 0 }));
  assert.ok(uncalibrated >= 1.5, `uncalibrated: score moved ${uncalibrated}×`);
});
