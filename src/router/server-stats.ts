/**
 * Per-server figures a router keeps: rates derived from the sidecar's cumulative load report, and
 * what the router itself sees (in flight, latency, failures). Pure and clock-driven: the router
 * and the simulator feed it the same events.
 *
 * Rates come from deltas between two reports of the same epoch, divided by the delta of the
 * sidecar's own uptime, so several routers polling one sidecar each get correct rates and poll
 * jitter does not distort them. A new epoch (the sidecar restarted) resets the baseline.
 */
import type { InFlightProfile, LoadLive, LoadTotals, SidecarState } from "../shared/load-report.js";
import type { ReportedLoad } from "./balancers/balancer.js";
import { InFlightProfileDeltas, profileSum } from "./balancers/concurrency.js";

export interface ReportSample {
  readonly epoch: string;
  readonly seq: number;
  readonly uptimeSeconds: number;
  readonly state: SidecarState;
  readonly totals: LoadTotals;
  readonly live: Omit<LoadLive, "cores"> & { readonly cores?: number };
}

/** Decay of the router-side latency and failure EWMAs (Finagle/Linkerd peak-EWMA uses ~10 s). */
export const LATENCY_DECAY_MS = 10_000;
export const FAILURE_DECAY_MS = 5_000;

export interface ServerStatsOptions {
  /**
   * Reports closer than this (sidecar uptime, s) to the rate baseline only refresh the live figures:
   * piggybacked reports can arrive milliseconds apart, and rates over such short windows are noise.
   */
  readonly minRateIntervalSeconds?: number;
}

export class ServerStats {
  reported: ReportedLoad | undefined;
  lastState: SidecarState | undefined;
  lastEpoch: string | undefined;
  inFlight = 0;
  latencyMs: number | undefined;
  failureRate = 0;
  requests = 0;
  failures = 0;
  #base: ReportSample | undefined;
  #latencyAt = 0;
  #failureAt = 0;
  #cores = 1;
  readonly #profiles = new InFlightProfileDeltas();
  /** The in-flight profile's delta since the last rates, when the report that brought it gave none. */
  #pendingProfile: InFlightProfile | undefined;
  readonly #minDt: number;

  constructor(options: ServerStatsOptions = {}) {
    this.#minDt = options.minRateIntervalSeconds ?? 0;
  }

  /**
   * Feeds a report (polled or piggybacked). Returns the new rates when it is a later report of the
   * same epoch; undefined when it is the first of an epoch, stale (older seq/uptime) or a duplicate.
   */
  onReport(sample: ReportSample, now: number): ReportedLoad | undefined {
    this.lastState = sample.state;
    if (sample.live.cores !== undefined) this.#cores = sample.live.cores;
    const base = this.#base;
    if (base === undefined || base.epoch !== sample.epoch) {
      this.#base = sample;
      this.lastEpoch = sample.epoch;
      this.reported = undefined;
      this.#profiles.reset();
      this.#profiles.next(sample.epoch, sample.totals.byInFlight);
      this.#pendingProfile = undefined;
      return undefined;
    }
    // The profile comes only in polled reports (about once a second under traffic), which often
    // arrive within the minimum interval of a piggybacked report or after one that left the sidecar
    // later: their rates are dropped, but the profile is not (it has its own baseline), and its
    // delta rides on the next rates. Dropping it, as the router did until 2026-11-22, left servers
    // in traffic with a profile every 2–3 s and their slot counts unfitted for 10 s after a start.
    if (sample.totals.byInFlight !== undefined) {
      const delta = this.#profiles.next(sample.epoch, sample.totals.byInFlight);
      if (delta !== undefined)
        this.#pendingProfile =
          this.#pendingProfile === undefined ? delta : profileSum(this.#pendingProfile, delta);
    }
    const dt = sample.uptimeSeconds - base.uptimeSeconds;
    // Out of order or duplicate (piggybacked and polled reports can cross): ignore.
    if (dt <= 0 || sample.seq <= base.seq) return undefined;
    if (dt < this.#minDt) {
      if (this.reported !== undefined) {
        this.reported = {
          ...this.reported,
          receivedAtMs: now,
          inFlightTopLevel: sample.live.inFlightTopLevel,
          inFlightAgeSeconds: sample.live.inFlightAgeSeconds,
          cpu: sample.live.cpu,
        };
      }
      return undefined;
    }
    const dTask = Math.max(0, sample.totals.taskSeconds - base.totals.taskSeconds);
    const dCalls = Math.max(0, sample.totals.topLevelCalls - base.totals.topLevelCalls);
    const dErr = Math.max(0, sample.totals.errors - base.totals.errors);
    this.#base = sample;
    const inFlightProfile = this.#pendingProfile;
    this.#pendingProfile = undefined;
    this.reported = {
      receivedAtMs: now,
      busy: dTask / dt,
      callRate: dCalls / dt,
      errorRate: dErr / dt,
      meanCallSeconds: dCalls > 0 ? dTask / dCalls : undefined,
      inFlightTopLevel: sample.live.inFlightTopLevel,
      inFlightAgeSeconds: sample.live.inFlightAgeSeconds,
      cpu: sample.live.cpu,
      cores: this.#cores,
      ...(inFlightProfile !== undefined ? { inFlightProfile } : {}),
    };
    return this.reported;
  }

  /** The sidecar's latest report minus the rates, for the admin API. */
  get baseline(): ReportSample | undefined {
    return this.#base;
  }

  onRequestStart(): void {
    this.inFlight++;
  }

  /**
   * A request this router sent has ended. `latencyMs` is time to response headers (or to failure);
   * undefined when it was already given to {@link observeLatency}.
   */
  onRequestEnd(now: number, latencyMs: number | undefined, failed: boolean): void {
    if (this.inFlight > 0) this.inFlight--;
    this.requests++;
    if (failed) this.failures++;
    const fw = decayWeight(now - this.#failureAt, FAILURE_DECAY_MS);
    this.failureRate = this.failureRate * fw + (failed ? 1 : 0) * (1 - fw);
    this.#failureAt = now;
    if (failed || latencyMs === undefined) return;
    this.observeLatency(now, latencyMs);
  }

  /**
   * A response started after `latencyMs` (the router records this when headers arrive and counts
   * the request as ended only when its body is done). Peak-EWMA: a slower sample replaces the
   * estimate at once, faster ones decay in.
   */
  observeLatency(now: number, latencyMs: number): void {
    if (this.latencyMs === undefined || latencyMs > this.latencyMs) {
      this.latencyMs = latencyMs;
    } else {
      const w = decayWeight(now - this.#latencyAt, LATENCY_DECAY_MS);
      this.latencyMs = this.latencyMs * w + latencyMs * (1 - w);
    }
    this.#latencyAt = now;
  }

  /** Forget report-derived rates (server taken out of rotation; its next report starts afresh). */
  resetReports(): void {
    this.#base = undefined;
    this.#profiles.reset();
    this.#pendingProfile = undefined;
    this.reported = undefined;
  }

  /**
   * Forget what this router learnt from its own requests (failure rate, latency estimate). Used when
   * a server comes back into rotation: figures from before its outage describe a process that is
   * gone, and since they only change when requests end, a server that gets little traffic would
   * otherwise carry them for a long time and be starved.
   */
  resetRouterFigures(): void {
    this.failureRate = 0;
    this.latencyMs = undefined;
  }
}

/** Weight of the old value after `elapsedMs` with time constant `tauMs` (exp(-Δt/τ)). */
export function decayWeight(elapsedMs: number, tauMs: number): number {
  return elapsedMs <= 0 ? 1 : Math.exp(-elapsedMs / tauMs);
}
