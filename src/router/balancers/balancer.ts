/**
 * The balancer interface: one algorithm per file in this folder, chosen per pool by name (see
 * index.ts). Balancers are pure functions of what they are shown and of `now` from an injected
 * clock, so the router, the unit tests and the simulator (src/sim/) run exactly the same code.
 */
import type { Clock } from "../../shared/clock.js";
import type { InFlightProfile } from "../../shared/load-report.js";

/** Rates the router derived from a sidecar's load reports (deltas of cumulative counters). */
export interface ReportedLoad {
  /** Router-clock time (ms) the report arrived. */
  readonly receivedAtMs: number;
  /** Task-seconds per second over the last report interval = mean number of busy top-level calls. */
  readonly busy: number;
  /** Top-level calls ended per second over the interval. */
  readonly callRate: number;
  /** Errors per second over the interval. */
  readonly errorRate: number;
  /** Mean duration (s) of the top-level calls that ended in the interval; undefined when none ended. */
  readonly meanCallSeconds: number | undefined;
  /** Live figures from the same report. */
  readonly inFlightTopLevel: number;
  readonly inFlightAgeSeconds: number;
  /** CPU 0..1 (of the sidecar's cgroup limit when it has one, else the host's) and cores, as reported. */
  readonly cpu: number;
  readonly cores: number;
  /**
   * Optional: the interval's top-level calls and task-seconds by the number of top-level calls in
   * flight when each arrived (deltas of the report's `totals.byInFlight`; see concurrency.ts).
   * Absent when the sidecar does not report it or the previous report had none.
   */
  readonly inFlightProfile?: InFlightProfile;
}

/** What a balancer sees of one candidate server. */
export interface ServerView {
  /** Stable id (the data URL, e.g. `http://10.0.0.7:8080`). */
  readonly id: string;
  /** Router-clock ms since which the server has been in rotation (for easing new servers in). */
  readonly readySinceMs: number;
  /** Latest derived rates; undefined until two reports of the same epoch arrived. */
  readonly reported: ReportedLoad | undefined;
  /** Requests this router has in flight to the server now. */
  readonly inFlight: number;
  /** Router-observed latency estimate (ms, peak-sensitive EWMA); undefined before the first response. */
  readonly latencyMs: number | undefined;
  /** EWMA (0..1) of the fraction of this router's requests to it that failed (connect errors, proxy-made 5xx). */
  readonly failureRate: number;
}

export interface Balancer {
  readonly name: string;
  /** The algorithm's parameters, for the admin API and the dashboard. */
  readonly params: Readonly<Record<string, number | string | boolean>>;
  /** A new report was turned into rates for a server. */
  onReport?(id: string, load: ReportedLoad, now: number): void;
  /** A server left the pool (forget its state). */
  onRemove?(id: string): void;
  /**
   * Chooses one of `candidates` (non-empty, every one eligible for new work). Must not keep a
   * reference to the array. A score may be returned for display (lower is better).
   */
  pick(candidates: readonly ServerView[], now: number): ServerView;
  /** Current score of a server for display (lower is better), if the algorithm has one. */
  score?(server: ServerView, now: number): number | undefined;
}

export interface BalancerDeps {
  readonly clock: Clock;
  /** Uniform [0, 1); injected so tests and the simulator are reproducible. */
  readonly random: () => number;
  /**
   * The pool's ease-in window (--ease-in-ms) for a server entering rotation; a balancer that eases
   * servers in itself uses the same window, so the operator's setting (0: no ease-in) holds for it.
   */
  readonly easeInMs?: number;
}

export type BalancerFactory = (deps: BalancerDeps) => Balancer;
