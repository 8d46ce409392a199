/**
 * One simulation run: a scenario, one algorithm (the same on every router), one seed. Open-loop
 * Poisson arrivals spread uniformly over the routers; each router picks with its own balancer
 * instance and sends the call over a network with a fixed one-way delay; latency is measured from
 * the client's arrival, so queueing anywhere is counted. Deterministic: the same inputs give the
 * same result, event for event.
 */
import * as hdr from "hdr-histogram-js";
import { createBalancer } from "../router/balancers/index.js";
import type { Balancer, BalancerDeps, ServerView } from "../router/balancers/balancer.js";
import { EventQueue } from "./event-queue.js";
import { createOracle } from "./oracle.js";
import { createRandom, exponential, lognormal, type Random } from "./prng.js";
import { offeredRate, scenarioEvents, type Scenario } from "./scenario.js";
import { SimRouter, type StatsView } from "./sim-router.js";
import { SimServer, type ServerOutcome, type SimRequest } from "./sim-server.js";

export const ORACLE = "oracle";

export interface SimResult {
  readonly scenario: string;
  readonly algorithm: string;
  readonly seed: number;
  readonly durationS: number;
  readonly offeredRate: number;
  /** Calls answered successfully per second (after warm-up). */
  readonly achievedRate: number;
  readonly requests: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  readonly meanMs: number;
  readonly maxMs: number;
  /** Calls answered with an error (app error, or no attempt left after resets/refusals). */
  readonly errors: number;
  readonly timeouts: number;
  /** Calls still unanswered when the run ended (timed at their age then). */
  readonly unfinished: number;
  /** Fraction of the attempts that reached each server (after warm-up), by server id. */
  readonly share: Readonly<Record<string, number>>;
  /** Busy slot time / slot time over the run, per server id. */
  readonly utilisation: Readonly<Record<string, number>>;
  /** p99 (ms) of the calls that arrived in each second of the run (0 where none was timed). */
  readonly p99PerSecond: readonly number[];
  /** Calls that reached each server per second of the run, by server id: the share over time. */
  readonly sharePerSecond: Readonly<Record<string, readonly number[]>>;
  readonly pollsPerSecondPerRouter: number;
  readonly events: number;
  readonly wallMs: number;
}

/**
 * Runs one scenario with one algorithm. `factory` replaces the registry's balancer (the simulator's
 * tuning runs use it to try parameters of `adaptive`); `algorithm` then only labels the result.
 */
export function simulate(
  scenario: Scenario,
  algorithm: string,
  seed: number,
  factory?: (deps: BalancerDeps) => Balancer,
): SimResult {
  const wallStart = performance.now();
  const events = new EventQueue();
  const rngArrivals = createRandom(seed, 1);
  const rngService = createRandom(seed, 2);
  const rngRouting = createRandom(seed, 3);
  const sampleService: () => number =
    scenario.service === "exponential"
      ? () => exponential(rngService, scenario.meanServiceMs)
      : () => lognormal(rngService, scenario.meanServiceMs, scenario.sigma);

  // Nested calls draw from their own stream (only when enabled), so scenarios without them keep
  // exactly the results they had before nested calls were modelled.
  const nestedP = scenario.nestedProbability ?? 0;
  const rngNested = createRandom(seed, 4);
  const nestedFraction = scenario.nestedFraction ?? 0.1;
  const nested =
    nestedP > 0
      ? {
          makesNested: () => rngNested() < nestedP,
          sampleNestedMs: () =>
            scenario.service === "exponential"
              ? exponential(rngNested, scenario.meanServiceMs * nestedFraction)
              : lognormal(rngNested, scenario.meanServiceMs * nestedFraction, scenario.sigma),
          hopMs: 4 * scenario.netDelayMs,
        }
      : undefined;

  const warmupMs = scenario.warmupS * 1000;
  const endMs = scenario.durationS * 1000;
  const net = scenario.netDelayMs;
  const newHistogram = (): hdr.Histogram =>
    hdr.build({
      lowestDiscernibleValue: 1,
      highestTrackableValue: 3_600_000_000,
      numberOfSignificantValueDigits: 3,
    });
  const hist = newHistogram();
  const perSecondHist: hdr.Histogram[] = [];
  let requests = 0;
  let okCount = 0;
  let errors = 0;
  let timeouts = 0;
  const servedAfterWarmup: number[] = [];
  const perSecond: number[][] = [];
  const seconds = Math.ceil(scenario.durationS);

  const servers: SimServer[] = [];
  const routers: SimRouter[] = [];

  const open = new Set<SimRequest>();
  const record = (req: SimRequest, now: number, outcome: "ok" | "error" | "timeout"): void => {
    req.done = true;
    open.delete(req);
    if (req.arrivedAtMs < warmupMs) return;
    requests++;
    // Errors are counted, not timed: a fast error must not make the latency percentiles look better.
    if (outcome !== "error") {
      const us = Math.max(1, Math.round((now - req.arrivedAtMs) * 1000));
      hist.recordValue(us);
      const sec = Math.floor(req.arrivedAtMs / 1000);
      if (sec < seconds) (perSecondHist[sec] ??= newHistogram()).recordValue(us);
    }
    if (outcome === "ok") okCount++;
    else if (outcome === "error") errors++;
    else timeouts++;
  };

  const respond = (req: SimRequest, outcome: ServerOutcome): void => {
    const attempt = req.attempt;
    events.after(net, () => onResponse(req, attempt, outcome));
  };

  scenario.servers.forEach((spec, i) => {
    const id = `s${String(i).padStart(scenario.servers.length > 100 ? 4 : 2, "0")}`;
    servers.push(
      new SimServer(
        {
          index: i,
          id,
          slots: spec.slots,
          speed: spec.speed,
          sampleServiceMs: sampleService,
          ...(nested ? { nested } : {}),
          failFastMs: 1,
          cpuSampleMs: 250,
          piggyback: scenario.piggyback,
        },
        events,
        respond,
      ),
    );
    servedAfterWarmup.push(0);
    perSecond.push(new Array<number>(seconds).fill(0));
  });

  const indexOf = (v: ServerView): number => (v as StatsView).index;
  for (let r = 0; r < scenario.routers; r++) {
    const router = new SimRouter(
      r,
      scenario.maxMisses,
      scenario.pollIntervalMs,
      scenario.easeInMs ?? 0,
      createRandom(seed, 200 + r),
    );
    const random: Random = createRandom(seed, 100 + r);
    router.balancer =
      algorithm === ORACLE
        ? createOracle(servers, indexOf, scenario.meanServiceMs, random)
        : factory
          ? factory({ clock: events, random, easeInMs: scenario.easeInMs ?? 0 })
          : createBalancer(algorithm, { clock: events, random, easeInMs: scenario.easeInMs ?? 0 });
    routers.push(router);
  }

  const startServer = (i: number, initial: boolean): void => {
    const s = servers[i]!;
    s.start(events.now());
    for (const router of routers) {
      if (router.knows(i)) continue;
      router.addServer(s.cfg.id, i, initial);
      if (initial && scenario.easeInAtStart) router.views[i]!.readySinceMs = events.now();
    }
  };
  scenario.servers.forEach((spec, i) => {
    const at = (spec.addAtS ?? 0) * 1000;
    if (at <= 0) startServer(i, true);
    else events.at(at, () => startServer(i, false));
  });

  for (const e of scenarioEvents(scenario)) {
    events.at(e.atS * 1000, () => {
      const s = servers[e.server];
      if (!s) return;
      if (e.kind === "slowdown") s.slowFactor = e.factor;
      else if (e.kind === "die") s.kill(events.now());
      else if (e.kind === "recover") s.start(events.now());
      else s.failFast = e.kind === "fail-fast";
    });
  }

  // Polling: every router polls every server it knows each interval, at its own phase. A refused
  // poll (server down) is seen after one round trip, as is a report. With piggybacked reports a
  // poll is skipped as the real poller skips it (SimRouter.pollDue).
  const pollMs = scenario.pollIntervalMs;
  const pollTick = (router: SimRouter): void => {
    const now = events.now();
    const known = router.views.map(
      (v, i) => v !== undefined && (!scenario.piggyback || router.pollDue(i, now, pollMs)),
    );
    const samples = router.views.map((v, i) => (known[i] ? servers[i]!.report(now) : undefined));
    router.polls += known.filter(Boolean).length;
    events.after(2 * net, () => {
      const t = events.now();
      samples.forEach((sample, i) => {
        if (known[i]) router.onPoll(i, sample, t);
      });
    });
    events.after(pollMs, () => pollTick(router));
  };
  if (pollMs > 0) for (const router of routers) events.at(rngRouting() * pollMs, () => pollTick(router));

  const send = (req: SimRequest, view: StatsView): void => {
    const now = events.now();
    req.attempt++;
    req.sentAtMs = now;
    req.serverIndex = view.index;
    view.stats.onRequestStart();
    const server = servers[view.index]!;
    server.incoming++;
    const attempt = req.attempt;
    events.after(net, () => {
      server.incoming--;
      if (req.done) return;
      const t = events.now();
      if (t >= warmupMs) {
        servedAfterWarmup[view.index]!++;
        const sec = Math.floor(t / 1000);
        if (sec < seconds) perSecond[view.index]![sec]!++;
      }
      if (!server.arrive(req, t)) {
        events.after(net, () =>
          onResponse(req, attempt, { ok: false, reset: false, report: undefined }, true),
        );
      }
    });
  };

  const onResponse = (req: SimRequest, attempt: number, outcome: ServerOutcome, refused = false): void => {
    if (req.done || attempt !== req.attempt) return;
    const router = routers[req.routerIndex]!;
    const view = router.views[req.serverIndex]!;
    const now = events.now();
    const failed = !outcome.ok;
    view.stats.onRequestEnd(now, now - req.sentAtMs, failed);
    if (outcome.report) router.onPiggyback(req.serverIndex, outcome.report, now);
    if (outcome.ok) return record(req, now, "ok");
    // Failover: a call that never reached the app (refused) or was reset (simulated calls are all
    // idempotent) goes to the next server in round-robin order, within the retry budget.
    if ((refused || outcome.reset) && req.attempt <= scenario.retries) {
      const cands = router.candidates();
      const pos = cands.findIndex((c) => c.index === req.serverIndex);
      const next = cands[(pos + 1) % cands.length];
      if (next && next.index !== req.serverIndex) return send(req, next);
    }
    record(req, now, "error");
  };

  let nextId = 0;
  const rate = offeredRate(scenario);
  const meanGapMs = 1000 / rate;
  const arrive = (): void => {
    const now = events.now();
    const routerIndex =
      scenario.routers === 1
        ? 0
        : Math.min(scenario.routers - 1, Math.floor(rngRouting() * scenario.routers));
    const router = routers[routerIndex]!;
    const req: SimRequest = {
      id: nextId++,
      arrivedAtMs: now,
      routerIndex,
      sentAtMs: now,
      attempt: 0,
      serverIndex: -1,
      done: false,
      atServerMs: now,
      aheadAtServer: 0,
    };
    const cands = router.offered(now);
    if (now >= warmupMs) open.add(req);
    if (cands.length === 0) {
      record(req, now, "error");
    } else {
      send(req, router.balancer.pick(cands, now) as StatsView);
      events.after(scenario.timeoutMs, () => {
        if (req.done) return;
        const t = events.now();
        routers[req.routerIndex]!.views[req.serverIndex]!.stats.onRequestEnd(t, t - req.sentAtMs, true);
        record(req, t, "timeout");
      });
    }
    const next = now + exponential(rngArrivals, meanGapMs);
    if (next < endMs) events.at(next, arrive);
  };
  events.at(exponential(rngArrivals, meanGapMs), arrive);

  events.runUntil(endMs);
  // Calls still unanswered at the end are timed at their age so far (a lower bound): leaving them
  // out would flatter exactly the algorithms that let queues grow without bound.
  const unfinished = open.size;
  for (const req of open) {
    requests++;
    hist.recordValue(Math.max(1, Math.round((endMs - req.arrivedAtMs) * 1000)));
  }

  const measuredS = (endMs - warmupMs) / 1000;
  const totalServed = servedAfterWarmup.reduce((a, b) => a + b, 0) || 1;
  const share: Record<string, number> = {};
  const utilisation: Record<string, number> = {};
  const sharePerSecond: Record<string, number[]> = {};
  servers.forEach((s, i) => {
    share[s.cfg.id] = servedAfterWarmup[i]! / totalServed;
    const lifeMs = endMs - (scenario.servers[i]!.addAtS ?? 0) * 1000;
    utilisation[s.cfg.id] = s.busySlotSeconds(endMs) / ((s.cfg.slots * lifeMs) / 1000);
    sharePerSecond[s.cfg.id] = perSecond[i]!;
  });
  const polls = routers.reduce((a, r) => a + r.polls, 0);
  const ms = (us: number): number => us / 1000;
  return {
    scenario: scenario.name,
    algorithm,
    seed,
    durationS: scenario.durationS,
    offeredRate: rate,
    achievedRate: okCount / measuredS,
    requests,
    p50Ms: ms(hist.getValueAtPercentile(50)),
    p99Ms: ms(hist.getValueAtPercentile(99)),
    p999Ms: ms(hist.getValueAtPercentile(99.9)),
    meanMs: ms(hist.mean),
    maxMs: ms(hist.maxValue),
    errors,
    timeouts,
    unfinished,
    share,
    utilisation,
    sharePerSecond,
    p99PerSecond: Array.from({ length: seconds }, (_, i) =>
      ms(perSecondHist[i]?.getValueAtPercentile(99) ?? 0),
    ),
    pollsPerSecondPerRouter: polls / routers.length / scenario.durationS,
    events: events.executed,
    wallMs: performance.now() - wallStart,
  };
}
