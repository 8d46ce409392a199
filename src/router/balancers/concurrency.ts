/**
 * How many calls a server works on at once before new ones wait, learnt from the sidecar's
 * `totals.byInFlight` (latency of the calls that found k top-level calls in flight when they
 * arrived; Prequal, NSDI 2024, measures latency against requests-in-flight the same way).
 *
 * A server with c worker slots and mean service time S answers a call that finds k calls ahead of
 * it in about S while k < c and in S·(k+1)/c beyond (it waits for k − c + 1 completions at rate
 * c/S). Fitting that curve to the measured W(k) gives c; a per-request-time model that assumes one
 * slot (W / (L + 1)) makes a busy many-slot server look several times faster than it is.
 *
 * Pure: no clock, no I/O; the router's ServerStats (or the simulator) supplies interval deltas.
 */
import { OPEN_ENDED_BUCKET, type InFlightProfile } from "../../shared/load-report.js";

/**
 * Time of a call that finds `inSystem` calls ahead on `slots` slots, in service times: 1 while a
 * slot is free, (k + 1)/c once it waits. The slot model every fit and estimate here uses.
 */
export function slotWaitFactor(inSystem: number, slots: number): number {
  return Math.max(1, (inSystem + 1) / slots);
}

/** Per-bucket difference of two cumulative profiles of the same sidecar lifetime. */
export function profileDelta(
  base: InFlightProfile | undefined,
  sample: InFlightProfile | undefined,
): InFlightProfile | undefined {
  if (base === undefined || sample === undefined) return undefined;
  const n = sample.calls.length;
  // Buckets only ever appear at the end (the sidecar trims unused trailing ones); fewer means a reset.
  if (base.calls.length > n) return undefined;
  const calls: number[] = [];
  const taskSeconds: number[] = [];
  for (let k = 0; k < n; k++) {
    const dc = sample.calls[k]! - (base.calls[k] ?? 0);
    const dt = sample.taskSeconds[k]! - (base.taskSeconds[k] ?? 0);
    if (dc < 0 || dt < -1e-9) return undefined;
    calls.push(dc);
    taskSeconds.push(Math.max(0, dt));
  }
  return { calls, taskSeconds };
}

/** Two consecutive deltas as one, per bucket. */
export function profileSum(a: InFlightProfile, b: InFlightProfile): InFlightProfile {
  const add = (x: readonly number[], y: readonly number[]): number[] =>
    Array.from({ length: Math.max(x.length, y.length) }, (_, k) => (x[k] ?? 0) + (y[k] ?? 0));
  return { calls: add(a.calls, b.calls), taskSeconds: add(a.taskSeconds, b.taskSeconds) };
}

/** Smoothed W(k) of one server: mean call time (ms) per bucket and how many calls it rests on. */
export interface ConcurrencyProfile {
  readonly meanMs: number[];
  readonly calls: number[];
}

export function emptyProfile(): ConcurrencyProfile {
  return { meanMs: [], calls: [] };
}

/**
 * Folds one interval's delta in: per bucket a running mean until it has seen `windowCalls` calls,
 * then an exponential average over about that many calls (servers change speed and slots).
 */
export function addToProfile(p: ConcurrencyProfile, delta: InFlightProfile, windowCalls: number): void {
  for (let k = 0; k < delta.calls.length; k++) {
    const dc = delta.calls[k]!;
    if (dc <= 0) continue;
    const mean = (1000 * delta.taskSeconds[k]!) / dc;
    const seen = (p.calls[k] ?? 0) + dc;
    const prev = p.meanMs[k];
    while (p.meanMs.length <= k) {
      p.meanMs.push(Number.NaN);
      p.calls.push(0);
    }
    const g =
      prev === undefined || Number.isNaN(prev) ? 1 : Math.max(dc / seen, 1 - Math.exp(-dc / windowCalls));
    p.meanMs[k] = prev === undefined || Number.isNaN(prev) ? mean : prev + g * (mean - prev);
    p.calls[k] = Math.min(seen, 10 * windowCalls);
  }
}

/** Candidate slot counts: 1..8 in halves, then coarser (fits stay cheap at any fleet size). */
const CANDIDATES: readonly number[] = [
  ...Array.from({ length: 15 }, (_, i) => 1 + i / 2),
  10,
  12,
  14,
  16,
  20,
  24,
  28,
  32,
];

/**
 * Least-squares fit (in log space, each bucket weighted by its calls up to `capCalls`) of
 * W(k) = S·max(1, (k+1)/c) over the buckets with at least `minCalls` calls. Among fits whose error
 * is within the factor (1 + `tolerance`) of the best the smallest c wins (relative, because models
 * with different c differ only in the buckets below c: on a wide profile every error is small).
 * The smallest, because a server never seen to queue is only known to have at least as many slots as
 * the concurrency it was seen at: such a fit is flagged `lowerBound` (it rests on one bucket, or no
 * bucket it rests on is in the fitted curve's queueing part by a quarter of the service time) and the caller
 * decides what to assume beyond it. Treating it as the slot count starves a server that is only ever
 * sent one call at a time (it never shows more, so it is never sent more).
 * Returns undefined when no bucket has enough calls.
 */
export interface SlotFit {
  readonly slots: number;
  /** The data only bounds the slot count from below: no bucket used shows calls waiting. */
  readonly lowerBound: boolean;
}

/** A fit counts as a measurement once some bucket it rests on is predicted to wait this much. */
const QUEUEING_EVIDENCE = 1.25;

export function fitSlots(
  p: ConcurrencyProfile,
  minCalls: number,
  capCalls: number,
  tolerance: number,
): SlotFit | undefined {
  const ks: number[] = [];
  const logs: number[] = [];
  const ws: number[] = [];
  // The sidecar's last bucket also holds every larger k (a burst's deep queue): no k to fit it at.
  const end = Math.min(p.meanMs.length, OPEN_ENDED_BUCKET);
  for (let k = 0; k < end; k++) {
    const m = p.meanMs[k]!;
    if ((p.calls[k] ?? 0) < minCalls || !(m > 0)) continue;
    ks.push(k);
    logs.push(Math.log(m));
    ws.push(Math.min(p.calls[k]!, capCalls));
  }
  if (ks.length === 0) return undefined;
  let sumW = 0;
  for (const w of ws) sumW += w;
  const errs = CANDIDATES.map((c) => {
    // For a given c the best log S is the weighted mean of the residuals; the error is their variance.
    let mean = 0;
    for (let i = 0; i < ks.length; i++) mean += ws[i]! * (logs[i]! - Math.log(slotWaitFactor(ks[i]!, c)));
    mean /= sumW;
    let err = 0;
    for (let i = 0; i < ks.length; i++) {
      const r = logs[i]! - Math.log(slotWaitFactor(ks[i]!, c)) - mean;
      err += ws[i]! * r * r;
    }
    return err / sumW;
  });
  const best = Math.min(...errs);
  const i = errs.findIndex((e) => e <= best * (1 + tolerance) + 1e-6);
  const slots = CANDIDATES[Math.max(0, i)]!;
  // One bucket fits every c from 1 to k + 1 exactly (the level absorbs it): only a lower bound.
  const lowerBound = ks.length < 2 || (ks[ks.length - 1]! + 1) / slots < QUEUEING_EVIDENCE;
  return { slots, lowerBound };
}

/**
 * Mean service time (ms) the profile implies on `slots` slots: each bucket's calls over the service
 * times the slot model charges them. The ratio of two such figures converts a per-request time
 * from one slot count to another using the loads the calls really found.
 */
export function profileServiceMsAt(p: ConcurrencyProfile, slots: number): number | undefined {
  let ms = 0;
  let units = 0;
  for (let k = 0; k < p.meanMs.length; k++) {
    const n = p.calls[k] ?? 0;
    const m = p.meanMs[k]!;
    if (n <= 0 || !(m > 0)) continue;
    ms += n * m;
    units += n * slotWaitFactor(k, slots);
  }
  return units > 0 ? ms / units : undefined;
}

/**
 * Turns the cumulative `totals.byInFlight` of successive reports into interval deltas (what
 * `ReportedLoad.inFlightProfile` carries). Feed it the reports a rate was derived from, plus the
 * first report of each epoch; reports without a profile (piggybacked ones) leave the baseline
 * alone, so the next delta simply spans a longer interval.
 */
export class InFlightProfileDeltas {
  #base: { readonly epoch: string; readonly profile: InFlightProfile } | undefined;

  next(epoch: string, profile: InFlightProfile | undefined): InFlightProfile | undefined {
    if (profile === undefined) return undefined;
    const base = this.#base;
    this.#base = { epoch, profile };
    return base !== undefined && base.epoch === epoch ? profileDelta(base.profile, profile) : undefined;
  }

  reset(): void {
    this.#base = undefined;
  }
}
