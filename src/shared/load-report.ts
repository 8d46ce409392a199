/**
 * The load report: the contract between a sidecar (which serves it on `GET /v1/load`) and every
 * router (which polls it). Field names are stable; the path is versioned. Totals are cumulative
 * and monotonic since the sidecar started, so any number of routers can poll the same sidecar and
 * each compute its own rates from deltas; `epoch` changes when the process restarts (totals reset).
 * Rates are deltas divided by the delta of `uptimeSeconds`, the sidecar's own monotonic clock, so
 * poll latency jitter does not distort them. Documented field by field in docs/load-report.md.
 */

export const LOAD_REPORT_VERSION = 1;

export type SidecarState = "serving" | "draining";

export interface LoadTotals {
  /** Sum of the durations (s) of top-level calls that ended: the task-seconds. */
  readonly taskSeconds: number;
  /** Top-level calls that ended (successful or not). */
  readonly topLevelCalls: number;
  /** Nested calls that ended: counted, their time not added. */
  readonly nestedCalls: number;
  /** Calls that ended in error: app 5xx, proxy-made errors, client aborts, resets. */
  readonly errors: number;
  /**
   * Optional (added after version 1 shipped; routers that do not know it ignore it): the top-level
   * calls that ended, split by how many top-level calls were already in flight when each arrived
   * (index k; the last bucket also counts every larger k), with their summed durations. Latency as
   * a function of the load a call found, measured where the work happens: it shows how many calls
   * the app serves at once before they start to wait (Prequal's latency-vs-requests-in-flight).
   * Cumulative like the other totals; only in the JSON report, not in the piggyback header.
   */
  readonly byInFlight?: InFlightProfile;
}

/** Cumulative per-bucket totals; both arrays have the same length (1..{@link MAX_IN_FLIGHT_BUCKETS}). */
export interface InFlightProfile {
  readonly calls: readonly number[];
  readonly taskSeconds: readonly number[];
}

export const MAX_IN_FLIGHT_BUCKETS = 64;

/**
 * Buckets a sidecar keeps: a call that found k top-level calls in flight counts in bucket
 * min(k, IN_FLIGHT_BUCKETS − 1), so the last one is open-ended (it also counts every larger k, and
 * its mean call time belongs to no single k). 32 covers the concurrency at which typical apps
 * start to queue. A router fitting latency against k leaves out bucket {@link OPEN_ENDED_BUCKET}
 * and beyond.
 */
export const IN_FLIGHT_BUCKETS = 32;
export const OPEN_ENDED_BUCKET = IN_FLIGHT_BUCKETS - 1;

function validProfile(v: unknown): boolean {
  if (v === null || typeof v !== "object") return false;
  const p = v as Record<string, unknown>;
  const { calls, taskSeconds } = p;
  return (
    Array.isArray(calls) &&
    Array.isArray(taskSeconds) &&
    calls.length >= 1 &&
    calls.length <= MAX_IN_FLIGHT_BUCKETS &&
    calls.length === taskSeconds.length &&
    calls.every((x) => num(x)) &&
    taskSeconds.every((x) => num(x))
  );
}

export interface LoadLive {
  /** Calls in flight now (top-level and nested). */
  readonly inFlight: number;
  /** In-flight calls that no earlier in-flight call with the same causality ID encloses. */
  readonly inFlightTopLevel: number;
  /** Summed age (s) of those top-level calls still in flight: a server stuck on long calls is not idle. */
  readonly inFlightAgeSeconds: number;
  /**
   * CPU utilisation 0..1 over the last sampling period: of the sidecar's cgroup CPU limit when it
   * has one, else of all the host's cores (see `cpuSource`).
   */
  readonly cpu: number;
  /** Host logical CPU count. */
  readonly cores: number;
  /**
   * Optional (added 2026-11-21; older routers ignore it, older sidecars leave it out, which means
   * "host"): what `cpu` is measured against, one of {@link CPU_SOURCES}. Consumers treat a value they
   * do not know like "host". Only in the JSON report, not in the piggyback header.
   */
  readonly cpuSource?: string;
  /** Optional, with `cpuSource`: the cores `cpu` = 1 stands for (a cgroup quota may be fractional). */
  readonly cpuCores?: number;
}

/**
 * `host`: `os.cpus()` ticks over all cores; `cgroup-v2` / `cgroup-v1`: the cgroup's CPU time over
 * its CFS quota (Kubernetes `limits.cpu`, Docker `--cpus`).
 */
export const CPU_SOURCES = ["host", "cgroup-v2", "cgroup-v1"] as const;
export type CpuSource = (typeof CPU_SOURCES)[number];

export interface LoadReport {
  readonly version: typeof LOAD_REPORT_VERSION;
  /** Random id of this sidecar process lifetime. A new epoch means the totals restarted from zero. */
  readonly epoch: string;
  /** Increases by one with every report this process serves. */
  readonly seq: number;
  /** Seconds since the sidecar started, on its monotonic clock, when the report was made. */
  readonly uptimeSeconds: number;
  readonly state: SidecarState;
  /** Whether the last readiness check reached the app. */
  readonly appReachable: boolean;
  /** Where a router should send data traffic for this sidecar (its advertised data URL). */
  readonly dataUrl: string;
  readonly totals: LoadTotals;
  readonly live: LoadLive;
}

function num(v: unknown, min = 0): v is number {
  return typeof v === "number" && Number.isFinite(v) && v >= min;
}

/**
 * Validates a report received over the network. Returns an error string instead of throwing, so a
 * router can count a malformed report as a failed poll and carry on.
 */
export function validateLoadReport(value: unknown): { report: LoadReport } | { error: string } {
  if (value === null || typeof value !== "object") return { error: "report is not a JSON object" };
  const r = value as Record<string, unknown>;
  if (r.version !== LOAD_REPORT_VERSION) return { error: `unsupported report version ${String(r.version)}` };
  if (typeof r.epoch !== "string" || r.epoch.length === 0 || r.epoch.length > 64)
    return { error: "bad epoch" };
  if (!num(r.seq) || !num(r.uptimeSeconds)) return { error: "bad seq or uptimeSeconds" };
  if (r.state !== "serving" && r.state !== "draining") return { error: "bad state" };
  const t = r.totals as Record<string, unknown> | undefined;
  if (!t || !num(t.taskSeconds) || !num(t.topLevelCalls) || !num(t.nestedCalls) || !num(t.errors)) {
    return { error: "bad totals" };
  }
  if (t.byInFlight !== undefined && !validProfile(t.byInFlight)) return { error: "bad totals.byInFlight" };
  const l = r.live as Record<string, unknown> | undefined;
  if (
    !l ||
    !num(l.inFlight) ||
    !num(l.inFlightTopLevel) ||
    !num(l.inFlightAgeSeconds) ||
    !num(l.cpu) ||
    !num(l.cores)
  ) {
    return { error: "bad live figures" };
  }
  // Any short token, not just today's CPU_SOURCES: a newer sidecar's source must not void the report.
  if (
    l.cpuSource !== undefined &&
    (typeof l.cpuSource !== "string" || !/^[a-z0-9-]{1,32}$/.test(l.cpuSource))
  )
    return { error: "bad live.cpuSource" };
  if (l.cpuCores !== undefined && !(num(l.cpuCores) && l.cpuCores > 0)) return { error: "bad live.cpuCores" };
  if (typeof r.dataUrl !== "string") return { error: "bad dataUrl" };
  return { report: value as LoadReport };
}

/**
 * Compact form piggybacked on responses in {@link LOAD_HEADER} (the channel hook's trick: data riding
 * on replies). The router reads and strips it; clients never see it.
 * Format: `v1;<epoch>;<seq>;<uptimeSeconds>;<taskSeconds>;<topLevelCalls>;<nestedCalls>;<errors>;<inFlight>;<inFlightTopLevel>;<inFlightAgeSeconds>;<cpu>;<state>`
 */
export const LOAD_HEADER = "x-tasklb-load";

export function encodeLoadHeader(
  r: Omit<LoadReport, "version" | "dataUrl" | "appReachable" | "live"> & { live: LoadLive },
): string {
  const t = r.totals;
  const l = r.live;
  return `v1;${r.epoch};${r.seq};${r.uptimeSeconds.toFixed(4)};${t.taskSeconds.toFixed(6)};${t.topLevelCalls};${t.nestedCalls};${t.errors};${l.inFlight};${l.inFlightTopLevel};${l.inFlightAgeSeconds.toFixed(4)};${l.cpu.toFixed(3)};${r.state === "draining" ? "d" : "s"}`;
}

export interface PiggybackReport {
  readonly epoch: string;
  readonly seq: number;
  readonly uptimeSeconds: number;
  readonly state: SidecarState;
  readonly totals: LoadTotals;
  readonly live: Omit<LoadLive, "cores">;
}

export function decodeLoadHeader(value: string): PiggybackReport | undefined {
  const p = value.split(";");
  if (p.length !== 13 || p[0] !== "v1") return undefined;
  const n = p.slice(2, 12).map(Number);
  if (n.some((x) => !Number.isFinite(x) || x < 0)) return undefined;
  const [seq, up, ts, top, nested, errors, inFlight, inTop, age, cpu] = n as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  return {
    epoch: p[1]!,
    seq,
    uptimeSeconds: up,
    state: p[12] === "d" ? "draining" : "serving",
    totals: { taskSeconds: ts, topLevelCalls: top, nestedCalls: nested, errors },
    live: { inFlight, inFlightTopLevel: inTop, inFlightAgeSeconds: age, cpu },
  };
}
