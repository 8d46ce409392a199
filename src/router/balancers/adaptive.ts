/**
 * `adaptive` (the default): power of d choices over an estimate of each server's expected
 * completion time for one more request. Designed from the literature and tuned in the simulator
 * (src/sim/, docs/balancing.md records each step):
 *
 * - Linkerd/Finagle peak-EWMA: cost = latency × (in-flight + 1). Here "latency" is replaced by a
 *   per-request time `t` that the sidecar's reports measure without the router's network or the
 *   other routers in the way: mean call seconds / (busy + 1). For a single queue that is exactly
 *   1/μ (W / (L + 1) = 1/μ for M/M/1), so it measures service speed, not how loaded the server was.
 * - C3 (NSDI 2015): the queue estimate joins the server-reported queue with this router's own
 *   outstanding requests, and the penalty grows faster than linearly in it, so a server that
 *   looks fast cannot be piled onto.
 * - Prequal (NSDI 2024) / Mitzenmacher: the choice is between d randomly drawn servers, never the
 *   global argmin, so many routers acting on the same stale reports do not all pick the same server.
 *   The router's own in-flight count is always fresh and is counted in full; the foreign load from a
 *   report is weighted by the report's age (exp(−age/τ)), and with no report the algorithm falls
 *   back to router-only figures (peak-EWMA latency × (in-flight + 1)).
 * - ORCA weighted round robin: errors count against a server (errors per call from its reports and
 *   this router's failure EWMA), exponentially, so a server that fails fast never looks fast; a
 *   server that just joined is eased in (credited with a quarter of its slots at first, all of them
 *   at the end of the router's ease-in window, --ease-in-ms; with one slot that is the cost × 4 → 1).
 * - A server not yet seen to queue (new, or only ever sent a call at a time) is assumed to have as
 *   many worker slots as its measured peers until its own profile shows fewer: taking the smallest
 *   count its data allows, as a first version did, kept such a server at one call at a time for good.
 */
import type { InFlightProfile } from "../../shared/load-report.js";
import type { Balancer, BalancerDeps, ReportedLoad, ServerView } from "./balancer.js";
import {
  addToProfile,
  emptyProfile,
  fitSlots,
  profileServiceMsAt,
  slotWaitFactor,
  type ConcurrencyProfile,
} from "./concurrency.js";
import { sampleIndices } from "./sampling.js";

export interface AdaptiveParams {
  /** Servers drawn per pick (power of d choices) while this router sends most of the traffic. */
  readonly choices: number;
  /** Servers drawn per pick when other routers send most of the servers' calls (they act on the
   * same stale reports, and a wider choice herds: measured in the simulator). */
  readonly choicesShared: number;
  /** Share of the servers' calls below which this router uses `choicesShared`. */
  readonly sharedBelow: number;
  /** Age (ms) up to which a report counts in full; beyond it its weight decays with this time constant. */
  readonly reportTauMs: number;
  /** Calls it takes for the per-request time estimate to move ~63% of the way to new readings. */
  readonly speedCalls: number;
  /** Same for the long-term estimate an idle server's figure returns to. */
  readonly baselineCalls: number;
  /** Time constant (ms) with which an idle server's estimate returns to its long-term value. */
  readonly idleTauMs: number;
  /** Largest factor by which one report can raise the estimate (one freak call is not a trend). */
  readonly maxStep: number;
  /** Time constant (ms) of the smoothing of the load other routers put on a server. */
  readonly foreignTauMs: number;
  /** Other routers' load from the report's live in-flight count instead of the interval's occupancy. */
  readonly foreignLive: boolean;
  /** Exponent of the queue penalty: cost = t × max(1, (queue + 1)/slots)^exponent. */
  readonly queueExponent: number;
  /** Calls per bucket over which the latency-by-in-flight profile averages (see concurrency.ts). */
  readonly profileCalls: number;
  /** Calls a bucket needs before the slot fit uses it. */
  readonly profileMinCalls: number;
  /** Relative excess error (log space) within which a smaller slot count is preferred to the best fit. */
  readonly profileTolerance: number;
  /** Ms between two slot fits of one server. */
  readonly fitIntervalMs: number;
  /** Weight, in calls, of the other servers' per-request time in a server's own (a prior). */
  readonly priorCalls: number;
  /** Share of t/c by which each call adds to the cost while slots are free (see cost()). */
  readonly freeSlotSlope: number;

  /** Calls it takes for the reported error fraction to move ~63% of the way to new readings. */
  readonly failureCalls: number;
  /** cost × exp(failurePenalty × failure fraction). */
  readonly failurePenalty: number;
  /** Ease-in window (ms) after a server enters rotation, when the router does not pass its own. */
  readonly easeInMs: number;
  /** Cost multiplier at the start of the ease-in window (falls linearly to 1). */
  readonly easeInFactor: number;

  /** Slowdown detector on calls ended against busy slot-time (see detectSlowdown); false: off. */
  readonly detect: boolean;
  /** Slowdown (factor) the detector's CUSUM tests for. */
  readonly detectFactor: number;
  /** CUSUM threshold (log-likelihood ratio, nats) at which the detector acts. */
  readonly detectH: number;
  /** Overdispersion assumed of the counts of calls ended (heavy-tailed service is burstier than Poisson). */
  readonly detectDispersion: number;
  /**
   * Time constant (ms) of the server's own ratio of calls ended to calls expected, which the test
   * is relative to (0: none), so that a bias of t or of the slot count is not taken for a slowdown.
   */
  readonly detectCalibrateMs: number;
}

export const DEFAULT_ADAPTIVE_PARAMS: AdaptiveParams = Object.freeze({
  choices: 3,
  choicesShared: 2,
  sharedBelow: 0.2,
  reportTauMs: 1_000,
  speedCalls: 100,
  baselineCalls: 500,
  idleTauMs: 2_000,
  maxStep: 4,
  foreignTauMs: 500,
  foreignLive: true,
  queueExponent: 1,
  profileCalls: 200,
  profileMinCalls: 30,
  profileTolerance: 0.1,
  fitIntervalMs: 1_000,
  priorCalls: 20,
  freeSlotSlope: 0.3,
  failureCalls: 5,
  failurePenalty: 12,
  easeInMs: 3_000,
  easeInFactor: 4,
  detect: true,
  detectFactor: 3,
  detectH: 7,
  detectDispersion: 2,
  detectCalibrateMs: 20_000,
});

interface ServerEstimate {
  /** Per-request time (ms): recent, and long-term (what an idle server's figure returns to). */
  tMs: number | undefined;
  baselineMs: number | undefined;
  /** Smoothed number of calls in the server that other routers sent. */
  foreign: number;
  /** This router's picks of the server since its last report, and when that report came. */
  picks: number;
  lastReportMs: number | undefined;
  lastAgeSeconds: number;
  /** Smoothed share of the server's calls that this router sends. */
  ownShare: number;
  /** Errors per call from reports; decays while the server gets no calls, so it gets a new chance. */
  fail: number;
  /** Calls the speed estimates have learnt from (they are running means until their window fills). */
  calls: number;
  /** Latency by calls in flight at arrival, and the worker slots fitted to it (1 without a profile). */
  profile: ConcurrencyProfile;
  slots: number;
  /** The slot count was measured (calls were seen waiting), not a lower bound or a peer's figure. */
  measuredSlots: boolean;
  fittedAtMs: number;
  /**
   * Slowdown detector: its CUSUM, the calls ended and expected (busy slot-time ÷ t) since the CUSUM
   * last stood at zero, and the live count of top-level calls in the last report.
   */
  slower: Cusum;
  /** Decayed calls ended and expected over detectCalibrateMs: the server's usual ratio of the two. */
  calEnded: number;
  calExpected: number;
  lastLive: number;
}

/** Servers that left rotation whose slot counts are kept for their return. */
const MAX_REMEMBERED = 1024;

/**
 * Per-request time (ms) from an interval's calls by the load each found: their total time over the
 * service times the slot model charges them (1 below `slots` calls ahead, (k+1)/slots beyond).
 * Unlike W / (L + 1) it stays right when arrivals depend on the server's state, as they do under
 * any balancer that avoids busy servers (a server only sent calls while idle has W = S, not S/(L+1)).
 */
function profileServiceMs(
  profile: InFlightProfile | undefined,
  slots: number,
): { ms: number; calls: number } | undefined {
  if (profile === undefined) return undefined;
  let seconds = 0;
  let units = 0;
  let calls = 0;
  // The open-ended last bucket is charged as if its calls found exactly its index ahead: an
  // overestimate of their service time, which errs towards sending a deeply queued server less.
  for (let k = 0; k < profile.calls.length; k++) {
    seconds += profile.taskSeconds[k]!;
    units += profile.calls[k]! * slotWaitFactor(k, slots);
    calls += profile.calls[k]!;
  }
  return units > 0 ? { ms: (1000 * seconds) / units, calls } : undefined;
}

/** Page's CUSUM on counts of calls ended against calls expected, with the counts since it last stood at zero. */
interface Cusum {
  sum: number;
  ended: number;
  expected: number;
}

function newCusum(): Cusum {
  return { sum: 0, ended: 0, expected: 0 };
}

function resetCusum(c: Cusum): void {
  c.sum = c.ended = c.expected = 0;
}

/**
 * One step of the test of "calls end at `rate` × the expected rate" against "as expected", on a
 * Poisson count overdispersed by `phi`. True when the evidence reaches `h` nats.
 */
function cusumStep(c: Cusum, ended: number, expected: number, rate: number, phi: number, h: number): boolean {
  const llr = (ended * Math.log(rate) - expected * (rate - 1)) / phi;
  if (c.sum + llr <= 0) {
    resetCusum(c);
    return false;
  }
  c.sum += llr;
  c.ended += ended;
  c.expected += expected;
  return c.sum >= h;
}

export interface AdaptiveBalancer extends Balancer {
  readonly params: Readonly<AdaptiveParams>;
  onReport(id: string, load: ReportedLoad, now: number): void;
  onRemove(id: string): void;
  score(server: ServerView, now: number): number | undefined;
}

export function createAdaptiveBalancer(
  deps: BalancerDeps,
  overrides: Partial<AdaptiveParams> = {},
): AdaptiveBalancer {
  const p: AdaptiveParams = Object.freeze({ ...DEFAULT_ADAPTIVE_PARAMS, ...overrides });
  const estimates = new Map<string, ServerEstimate>();
  /** Profiles and slots of servers that left rotation, for when they come back. */
  const remembered = new Map<string, { profile: ConcurrencyProfile; slots: number }>();
  /** Smoothed share of the servers' calls this router sends (1 = the only router). */
  let routerShare = 1;
  /** The pool's ease-in window when the router says it (its --ease-in-ms), else the parameter. */
  const easeInMs = deps.easeInMs ?? p.easeInMs;

  /**
   * Median measured slot count of the other servers: what a server not yet seen to queue is assumed
   * to have (servers of one pool usually run the same app). Computed only for such servers.
   */
  function peerSlots(id: string): number | undefined {
    const xs: number[] = [];
    for (const [other, e] of estimates) if (other !== id && e.measuredSlots) xs.push(e.slots);
    if (xs.length === 0) return undefined;
    xs.sort((a, b) => a - b);
    return xs[(xs.length - 1) >> 1];
  }

  function onReport(id: string, load: ReportedLoad, now: number): void {
    let est = estimates.get(id);
    if (!est) {
      est = {
        tMs: undefined,
        baselineMs: undefined,
        foreign: 0,
        picks: 0,
        lastReportMs: undefined,
        lastAgeSeconds: 0,
        ownShare: 1,
        fail: 0,
        calls: 0,
        profile: remembered.get(id)?.profile ?? emptyProfile(),
        slots: remembered.get(id)?.slots ?? peerSlots(id) ?? 1,
        measuredSlots: false,
        fittedAtMs: Number.NEGATIVE_INFINITY,
        slower: newCusum(),
        calEnded: 0,
        calExpected: 0,
        lastLive: load.inFlightTopLevel,
      };
      estimates.set(id, est);
      remembered.delete(id);
    }
    const dtS = est.lastReportMs === undefined ? 0 : (now - est.lastReportMs) / 1000;
    const calls = load.callRate * dtS;

    // Worker slots, from latency against the load each call found (measured by the sidecar).
    // Refitted at most every fitIntervalMs: the slot count is a property of the app, not of the moment.
    if (load.inFlightProfile !== undefined) {
      addToProfile(est.profile, load.inFlightProfile, p.profileCalls);
      if (now - est.fittedAtMs >= p.fitIntervalMs) {
        est.fittedAtMs = now;
        const fit = fitSlots(est.profile, p.profileMinCalls, p.profileCalls, p.profileTolerance);
        let slots = est.slots;
        if (fit !== undefined) {
          est.measuredSlots = !fit.lowerBound;
          // Not seen to queue yet (a new server, or one only ever sent a call at a time): at least
          // what it was seen to serve at once, and as many as its peers have, until it shows fewer.
          slots = fit.lowerBound ? Math.max(fit.slots, peerSlots(id) ?? fit.slots) : fit.slots;
        }
        if (slots !== est.slots && est.tMs !== undefined && est.baselineMs !== undefined) {
          // Keep the speed estimates in the new unit (per-request time at the new slot count),
          // converted over the loads the profiled calls found (not just the latest report's).
          const from = profileServiceMsAt(est.profile, est.slots);
          const to = profileServiceMsAt(est.profile, slots);
          const r = from !== undefined && to !== undefined ? to / from : 1;
          est.tMs *= r;
          est.baselineMs *= r;
        }
        est.slots = slots;
      }
    }

    // Service speed: W / (L + 1) is exactly 1/μ for a single queue (M/M/1: W = 1/(μ−λ),
    // L = λ/(μ−λ)), so it measures how fast the server works rather than how loaded it was. With c
    // slots the call only waits once more than c are in: W / max(1, (L + 1)/c).
    const errorShare = load.callRate > 0 ? Math.min(1, load.errorRate / load.callRate) : 0;
    if (load.callRate > 0) {
      est.fail += (1 - Math.exp(-Math.max(calls, 1) / p.failureCalls)) * (errorShare - est.fail);
    } else if (dtS > 0) {
      est.fail *= Math.exp((-1000 * dtS) / p.idleTauMs);
    }

    // Calls that failed say nothing about speed (a server failing fast would look fast).
    // Once a sidecar has sent a profile, only reports carrying one update the speed: a report
    // without it (piggybacked) leaves its calls to the next profile's delta, which covers them.
    const profileSample = profileServiceMs(load.inFlightProfile, est.slots);
    const usable =
      est.profile.meanMs.length > 0
        ? profileSample !== undefined
        : load.meanCallSeconds !== undefined && load.callRate > 0;
    if (usable && errorShare < 0.2) {
      let sample =
        profileSample?.ms ?? (1000 * (load.meanCallSeconds ?? 0)) / slotWaitFactor(load.busy, est.slots);
      const n = profileSample?.calls ?? Math.max(calls, 1);
      est.calls += n;
      if (est.tMs === undefined || est.baselineMs === undefined) {
        est.tMs = sample;
        est.baselineMs = sample;
      } else {
        sample = Math.min(sample, p.maxStep * est.tMs);
        // Running means of every call so far until the windows have filled: a server that gets few
        // calls would otherwise keep its first (lognormal: usually short) call as its long-term
        // figure, drift back to it whenever idle, and look far faster than it is.
        const running = n / est.calls;
        est.tMs += Math.max(running, 1 - Math.exp(-n / p.speedCalls)) * (sample - est.tMs);
        est.baselineMs += Math.max(running, 1 - Math.exp(-n / p.baselineCalls)) * (sample - est.baselineMs);
      }
    } else if (
      est.tMs !== undefined &&
      est.baselineMs !== undefined &&
      load.inFlightTopLevel === 0 &&
      dtS > 0
    ) {
      // Idle and nothing new learned: drift back to the long-term figure, so one bad spell (or one
      // freak call) cannot keep a server out of rotation for ever once nobody sends it work.
      est.tMs += (1 - Math.exp((-1000 * dtS) / p.idleTauMs)) * (est.baselineMs - est.tMs);
    }

    // Load from other routers: mean occupancy over the interval (task-seconds of ended calls plus the
    // growth of the age of running ones, so calls stuck in flight count) times the share of the
    // server's calls this router did not send.
    if (dtS > 0) {
      const occupancy = p.foreignLive
        ? load.inFlightTopLevel
        : Math.max(0, load.busy + (load.inFlightAgeSeconds - est.lastAgeSeconds) / dtS);
      const ownRate = est.picks / dtS;
      const foreignShare = load.callRate > 0 ? Math.max(0, 1 - ownRate / load.callRate) : ownRate > 0 ? 0 : 1;
      const g = 1 - Math.exp((-1000 * dtS) / p.foreignTauMs);
      est.foreign += g * (occupancy * foreignShare - est.foreign);
      if (load.callRate > 0) {
        est.ownShare += g * (1 - foreignShare - est.ownShare);
        routerShare += 0.05 * (est.ownShare - routerShare);
      }
    }
    if (p.detect && dtS > 0) detectSlowdown(est, load, dtS, calls);
    est.picks = 0;
    est.lastReportMs = now;
    est.lastAgeSeconds = load.inFlightAgeSeconds;
    est.lastLive = load.inFlightTopLevel;
  }

  /**
   * Slowdown detection between the speed estimate's updates, which need ~speedCalls of a server's
   * calls to follow a change: too slow for a server that suddenly works several times slower,
   * since it then ends few calls (in the simulator's slowdown mirror `adaptive` kept sending the
   * slowed server 6 % of the calls for 3 s; the oracle sends none). Every report, piggybacked ones
   * too (every few ms under traffic), says how many calls ended since the last; a server working
   * at the estimated speed ends busy slot-time ÷ t of them (busy slots from the live counts at
   * both ends of the interval, capped at the slot count). That is the likelihood of exponential
   * service with the running calls' time so far counted, so a stall shows before its slow calls
   * end. The expectation is scaled by the server's own ratio of ended to expected calls over
   * detectCalibrateMs, so that a steady bias of t or of the slot count (or the call a piggybacked
   * report still counts in flight) is not taken for a slowdown. Page's CUSUM on those counts,
   * overdispersed by detectDispersion for heavy-tailed service, tests for a server detectFactor×
   * slower; when it crosses detectH, t jumps by what the calls since the CUSUM last stood at zero
   * say (at most maxStep) and the test starts again. Only this direction: a test for faster
   * servers (a shunned one that recovered) fired falsely on heavy-tailed servers, and one armed
   * only after a detected slowdown never gathered enough calls to fire (docs/balancing.md,
   * "Slowdown detection").
   */
  function detectSlowdown(est: ServerEstimate, load: ReportedLoad, dtS: number, ended: number): void {
    // Not before the estimates rest on a window of calls (the start-up figures are still moving).
    if (est.tMs === undefined || est.tMs <= 0 || est.calls < p.speedCalls) return;
    const busySlots = (Math.min(est.lastLive, est.slots) + Math.min(load.inFlightTopLevel, est.slots)) / 2;
    let expected = (1000 * dtS * busySlots) / est.tMs;
    if (p.detectCalibrateMs > 0) {
      const keep = Math.exp((-1000 * dtS) / p.detectCalibrateMs);
      const usual = est.calExpected > 50 ? Math.min(2, Math.max(0.5, est.calEnded / est.calExpected)) : 1;
      est.calEnded = est.calEnded * keep + ended;
      est.calExpected = est.calExpected * keep + expected;
      expected *= usual;
    }
    const c = est.slower;
    if (!cusumStep(c, ended, expected, 1 / p.detectFactor, p.detectDispersion, p.detectH)) return;
    est.tMs *= Math.min(p.maxStep, c.expected / Math.max(c.ended, 1e-9));
    resetCusum(c);
  }

  function weight(s: ServerView, now: number): number {
    const r = s.reported;
    if (!r) return 0;
    // Full weight while the report is younger than τ (the router polls far more often than that),
    // then exp(−(age − τ)/τ): a server whose reports stopped is judged on router-only figures.
    const age = now - r.receivedAtMs;
    return age <= p.reportTauMs ? 1 : Math.exp(-(age - p.reportTauMs) / p.reportTauMs);
  }

  /** Estimated calls in the server now: ours (always fresh) plus others' (from reports, aged). */
  function queue(s: ServerView, w: number): number {
    const est = estimates.get(s.id);
    if (!est || w === 0) return s.inFlight;
    return s.inFlight + w * est.foreign;
  }

  /**
   * Failure fraction: from the reports' errors per call while they are fresh (they see every
   * router's calls, recover as soon as the server does, and decay while it gets no calls so that
   * it is tried again), sliding to this router's failure EWMA as they age.
   */
  function failure(s: ServerView, w: number): number {
    const est = estimates.get(s.id);
    if (!est || w === 0) return s.failureRate;
    return w * est.fail + (1 - w) * s.failureRate;
  }

  /**
   * Per-request time: from reports while they are fresh, sliding to router-observed latency as
   * they age. A server with fresh reports but no finished call yet (just back, or idle since it
   * joined) has no figure: the caller then uses the others' (a latency remembered from before it
   * went away would be stale and could keep it out of rotation for good).
   */
  function perRequestMs(s: ServerView, w: number): number | undefined {
    const fromReports = estimates.get(s.id)?.tMs;
    if (w >= 1) return fromReports;
    // Router-only fallback, Linkerd-style: its latency estimate stands for the per-request time.
    const fromLatency = s.latencyMs === undefined ? undefined : s.latencyMs / (s.inFlight + 1);
    if (fromReports === undefined) return fromLatency;
    if (fromLatency === undefined) return fromReports;
    return w * fromReports + (1 - w) * fromLatency;
  }

  /** `fallbackTMs`: the others' per-request time, for a server without figures of its own. */
  function cost(s: ServerView, now: number, fallbackTMs: number | undefined): number {
    const w = weight(s, now);
    const est = estimates.get(s.id);
    let t = perRequestMs(s, w) ?? fallbackTMs ?? 1;
    // A server known from a few calls only is pulled towards the others' figure as if it had also
    // answered `priorCalls` calls at their speed: with heavy-tailed service one unlucky first call
    // would otherwise make it look slow, and a server that gets no calls never learns otherwise.
    if (fallbackTMs !== undefined && est !== undefined && w > 0 && est.calls < 50 * p.priorCalls)
      t = (est.calls * t + p.priorCalls * fallbackTMs) / (est.calls + p.priorCalls);
    // Ease-in: a server new in rotation is credited with fewer slots (a quarter at first): it
    // takes calls as readily as the others while nearly empty, and its cost rises faster as it
    // fills. With one slot this is the old cost × factor; servers easing in together keep their order.
    const since = now - s.readySinceMs;
    const ease = since < easeInMs ? 1 + (p.easeInFactor - 1) * (1 - Math.max(0, since) / easeInMs) : 1;
    const slots = (est?.slots ?? 1) / ease;
    const q = queue(s, w);
    // Expected completion on c slots: t while a slot is free, t·(q+1)/c once calls wait (the
    // oracle's figure) — but never flat: below the knee each call still adds freeSlotSlope × t/c, so
    // that several routers acting on the same stale picture do not all pile onto the server with
    // the lowest t while its slots look free (measured on the real bench: without it, three routers
    // swung all traffic between servers every half second). With one slot this is t·(q+1).
    const f = Math.max(1 + (p.freeSlotSlope * q) / slots, (q + 1) / slots);
    let c = t * Math.pow(f, p.queueExponent);
    // Failures count exponentially: a server that answers errors fast must never look fast.
    c *= Math.exp(p.failurePenalty * failure(s, w));
    return c;
  }

  return {
    name: "adaptive",
    params: p,
    onReport,
    onRemove(id: string): void {
      // The slot count and the profile it came from describe the app, which a restart does not
      // change; everything measured of the process that went away is forgotten.
      const est = estimates.get(id);
      estimates.delete(id);
      if (est !== undefined) remembered.set(id, { profile: est.profile, slots: est.slots });
      // Bounded under churn (DNS or registration can bring ever new ids): the oldest goes first.
      if (remembered.size > MAX_REMEMBERED) remembered.delete(remembered.keys().next().value!);
    },
    pick(candidates: readonly ServerView[], now: number): ServerView {
      const n = candidates.length;
      if (n === 1) return candidates[0]!;
      const d = routerShare >= p.sharedBelow ? p.choices : p.choicesShared;
      const idx = sampleIndices(deps.random, n, Math.max(2, d));
      // A server with no figures yet is costed at the mean per-request time of the others drawn,
      // so it competes on queue length (and the ease-in factor) instead of looking free.
      let known = 0;
      let sum = 0;
      for (const i of idx) {
        const s = candidates[i]!;
        const t = perRequestMs(s, weight(s, now));
        if (t !== undefined) {
          known++;
          sum += t;
        }
      }
      const fallback = known > 0 ? sum / known : 1;
      let best = candidates[idx[0]!]!;
      let bestCost = cost(best, now, fallback);
      for (let k = 1; k < idx.length; k++) {
        const s = candidates[idx[k]!]!;
        const c = cost(s, now, fallback);
        if (c < bestCost) {
          best = s;
          bestCost = c;
        }
      }
      const picked = estimates.get(best.id);
      if (picked) picked.picks++;
      return best;
    },
    score(server: ServerView, now: number): number | undefined {
      const w = weight(server, now);
      if (perRequestMs(server, w) === undefined) return undefined;
      return cost(server, now, undefined);
    },
  };
}
