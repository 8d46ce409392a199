/**
 * What the dashboard needs from a router, as two shapes:
 *
 * - {@link RouterSnapshot}: what the router hands over once per second (via the adapter in
 *   router-adapter.ts). Counters are cumulative since the router started tracking a server, so the
 *   feed alone decides the window rates are computed over and the router does no extra work.
 * - {@link DashboardFrame}: what the page receives — the snapshot plus rates and shares derived by
 *   the feed from two snapshots, and one {@link HistoryPoint} for the charts.
 *
 * Field names are part of the `/v1/events` and `/v1/history` JSON (docs/dashboard.md).
 */

/** ready: in rotation; easing: new, getting a growing share; draining: no new work; out: not in rotation. */
export type ServerState = "ready" | "easing" | "draining" | "out";

export const SERVER_STATES: readonly ServerState[] = ["ready", "easing", "draining", "out"];

export interface ServerSnapshot {
  /** Stable id: the data URL (`http://10.0.0.7:8080`). */
  readonly id: string;
  /** Optional short label (the demo names its apps); the page shows host:port otherwise. */
  readonly name?: string;
  readonly controlUrl?: string;
  readonly state: ServerState;
  /** 1 = the server the algorithm likes best; undefined when the algorithm does not rank. */
  readonly rank: number | undefined;
  /** The algorithm's score (lower is better); undefined when it has none. */
  readonly score: number | undefined;
  /** Reported task-seconds per second = mean number of calls the server is busy with. */
  readonly busy: number | undefined;
  /** Top-level calls in flight as the sidecar reported them. */
  readonly reportedInFlight: number | undefined;
  /** Requests this router has in flight to the server now. */
  readonly inFlight: number;
  /** Host CPU 0..1 as reported. */
  readonly cpu: number | undefined;
  /** Requests this router sent to the server (cumulative). */
  readonly requestsTotal: number;
  /** Of those, requests that failed (proxy-made errors, 5xx) (cumulative). */
  readonly errorsTotal: number;
  /** Router-observed latency percentiles over a recent window (ms). */
  readonly latencyP50Ms: number | undefined;
  readonly latencyP99Ms: number | undefined;
  /**
   * The router's running latency estimate (peak-sensitive EWMA, ms). Unlike the percentiles it
   * keeps the last figure when a server gets no traffic, which is when a viewer asks why.
   */
  readonly latencyEstimateMs?: number | undefined;
  /** Time since the last load report arrived (ms); undefined before the first one. */
  readonly reportAgeMs: number | undefined;
  /**
   * The sidecar's cumulative counters from its last report. With them the feed computes busy over
   * its own rate window (seconds) rather than over one poll interval (tens of ms), which is noisy.
   */
  readonly report?: ReportCounters;
}

export interface ReportCounters {
  readonly epoch: string;
  /** The sidecar's own uptime when it made the report. */
  readonly uptimeSeconds: number;
  readonly taskSeconds: number;
}

export interface PoolSnapshot {
  readonly name: string;
  readonly algorithm: string;
  readonly params: Readonly<Record<string, number | string | boolean>>;
  readonly servers: readonly ServerSnapshot[];
}

export interface RouterHealthSnapshot {
  readonly uptimeSeconds: number;
  readonly draining: boolean;
  /** `proxy` or `redirect`. */
  readonly mode: string;
  /** Requests in flight through the router now. */
  readonly inFlight: number;
  /** Requests the router has finished (cumulative). */
  readonly requestsTotal: number;
  /** Attempts abandoned for another server (cumulative). */
  readonly failoversTotal: number;
  /** Router latency percentiles over all servers, over a recent window (ms). */
  readonly latencyP50Ms: number | undefined;
  readonly latencyP99Ms: number | undefined;
}

export interface RouterSnapshot {
  readonly router: RouterHealthSnapshot;
  readonly pools: readonly PoolSnapshot[];
}

/**
 * A server's row on the page: the snapshot plus figures derived over the feed's rate window. `busy`
 * is taken over that window when two reports of one epoch allow it, else it is the router's figure.
 */
export interface ServerFigures extends Omit<ServerSnapshot, "report"> {
  /** Series key, unique across pools: `<pool>|<id>`. */
  readonly key: string;
  /** Requests per second this router sent to it. */
  readonly requestRate: number;
  /** Its fraction (0..1) of the pool's requests. */
  readonly share: number;
  /** Fraction (0..1) of its requests that failed; undefined when it got none. */
  readonly errorRatio: number | undefined;
}

export interface PoolFigures extends Omit<PoolSnapshot, "servers"> {
  readonly servers: readonly ServerFigures[];
  readonly requestRate: number;
}

export interface RouterHealthFigures extends RouterHealthSnapshot {
  readonly requestRate: number;
  readonly failoverRate: number;
}

/** One point of the charts. `busy` and `share` are keyed by {@link ServerFigures.key}. */
export interface HistoryPoint {
  /** Wall-clock time, ms since 1970 (the charts' x axis). */
  readonly t: number;
  /** Null in the first sample, which has no window to take rates over (as are the shares). */
  readonly rps: number | null;
  readonly p50: number | null;
  readonly p99: number | null;
  readonly failovers: number | null;
  readonly busy: Readonly<Record<string, number | null>>;
  readonly share: Readonly<Record<string, number | null>>;
}

export interface DashboardFrame {
  readonly version: 1;
  /** Wall-clock ms when the sample was taken. */
  readonly t: number;
  /** Seconds the rates were computed over (0 for the first sample). */
  readonly rateWindowSeconds: number;
  readonly router: RouterHealthFigures;
  readonly pools: readonly PoolFigures[];
  /** The server that is busiest (highest task-seconds/s among those not out), if any. */
  readonly busiest: string | undefined;
  readonly point: HistoryPoint;
}
