/**
 * The sidecar's and the router's metric instruments, named in Prometheus style (the Prometheus
 * exporter appends `_total` to counters; OTLP receives the names without it).
 *
 * Whatever the sidecar already counts (task-seconds, calls, errors, report polls, live figures) is
 * read from its load report by observable instruments when a reader collects, so those figures cost
 * the request path nothing and can never disagree with `/v1/load`. Only what needs one value per
 * call (the duration histograms, per-server request and pick counts, poll figures) is recorded on
 * the request path, into plain-JS series resolved once per attribute set (fast-metrics.ts): no SDK
 * instrument call, and so no attribute hashing, per request.
 */
import { ValueType, type Attributes, type Meter } from "@opentelemetry/api";
import { hrTime } from "@opentelemetry/core";
import {
  AggregationTemporality,
  DataPointType,
  type CollectionResult,
  type DataPoint,
  type MetricData,
  type MetricProducer,
} from "@opentelemetry/sdk-metrics";
import { emptyResource } from "@opentelemetry/resources";
import type { RouterPoll, RouterRequestEnd, SidecarCallEnd } from "../shared/call-observer.js";
import type { FastCounterSeries, FastHistogramSeries, FastMetricRegistry } from "./fast-metrics.js";
import type { LoadReport } from "../shared/load-report.js";

/** Seconds: calls in tasklb's world last from a millisecond (a cache hit) to a minute (a report). */
export const DURATION_BUCKETS_S = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
];
/** Polls are small loopback or in-cluster requests: 0.5 ms to the poll timeout. */
export const POLL_BUCKETS_S = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

/** Distinct server label values kept; more (a churning DNS pool) are folded into "other". */
export const MAX_SERVER_LABELS = 1000;

const STATUS_CLASSES = ["none", "1xx", "2xx", "3xx", "4xx", "5xx"] as const;

function statusClassIndex(status: number): number {
  const c = Math.floor(status / 100);
  return c >= 1 && c <= 5 ? c : 0;
}

function safely<T>(fn: (() => T) | undefined): T | undefined {
  if (!fn) return undefined;
  try {
    return fn();
  } catch {
    // A failing snapshot only leaves this collection without those figures.
    return undefined;
  }
}

export interface SidecarCallMetrics {
  recordCall(end: SidecarCallEnd): void;
}

export function registerSidecarMetrics(
  meter: Meter,
  fast: FastMetricRegistry,
  getReport: (() => LoadReport | undefined) | undefined,
): SidecarCallMetrics {
  const duration = fast.histogram("tasklb_sidecar_call_duration_seconds", {
    description: "Duration of calls through the sidecar, top-level and nested (label top_level).",
    unit: "s",
    boundaries: DURATION_BUCKETS_S,
  });
  // [topLevel ? 1 : 0][status class] → resolved series.
  const series: FastHistogramSeries[][] = [false, true].map((top) =>
    STATUS_CLASSES.map((sc) => duration.series({ top_level: top ? "true" : "false", status_class: sc })),
  );

  const taskSeconds = meter.createObservableCounter("tasklb_sidecar_task_seconds", {
    description: "Sum of the durations of top-level calls that ended (the load tasklb balances on).",
    unit: "s",
  });
  const topLevel = meter.createObservableCounter("tasklb_sidecar_top_level_calls", {
    description: "Top-level calls that ended.",
  });
  const nested = meter.createObservableCounter("tasklb_sidecar_nested_calls", {
    description: "Nested calls that ended (counted; their time is inside an enclosing call).",
  });
  const errors = meter.createObservableCounter("tasklb_sidecar_errors", {
    description: "Calls that ended in error: app 5xx, proxy-made errors, aborts, resets.",
  });
  const polls = meter.createObservableCounter("tasklb_sidecar_load_reports", {
    description: "Load reports made for routers: GET /v1/load polls and piggybacked report headers.",
  });
  // getReport() is the sidecar's report(), which takes the next seq like a poll does: telemetry's
  // own reads are subtracted so the counter shows what routers got.
  let ownReads = 0;
  const inFlight = meter.createObservableGauge("tasklb_sidecar_in_flight_calls", {
    description: "Calls in flight now, top-level and nested.",
  });
  const inFlightTop = meter.createObservableGauge("tasklb_sidecar_in_flight_top_level_calls", {
    description: "Top-level calls in flight now.",
  });
  const inFlightAge = meter.createObservableGauge("tasklb_sidecar_in_flight_age_seconds", {
    description: "Summed age of the top-level calls in flight now.",
    unit: "s",
  });
  const cpu = meter.createObservableGauge("tasklb_sidecar_host_cpu_utilization", {
    description:
      "CPU utilisation 0..1, as in the load report: of the sidecar's cgroup CPU limit when it has one, else of the host's cores.",
    unit: "1",
  });
  const state = meter.createObservableGauge("tasklb_sidecar_state", {
    description: "1 for the sidecar's current state (serving or draining), 0 for the other.",
  });
  const appUp = meter.createObservableGauge("tasklb_sidecar_app_reachable", {
    description: "1 when the last readiness check reached the app, else 0.",
  });
  const serving = { state: "serving" };
  const draining = { state: "draining" };

  meter.addBatchObservableCallback(
    (obs) => {
      const r = safely(getReport);
      if (!r) return;
      ownReads++;
      obs.observe(taskSeconds, r.totals.taskSeconds);
      obs.observe(topLevel, r.totals.topLevelCalls);
      obs.observe(nested, r.totals.nestedCalls);
      obs.observe(errors, r.totals.errors);
      obs.observe(polls, Math.max(0, r.seq - ownReads));
      obs.observe(inFlight, r.live.inFlight);
      obs.observe(inFlightTop, r.live.inFlightTopLevel);
      obs.observe(inFlightAge, r.live.inFlightAgeSeconds);
      obs.observe(cpu, r.live.cpu);
      obs.observe(state, r.state === "serving" ? 1 : 0, serving);
      obs.observe(state, r.state === "draining" ? 1 : 0, draining);
      obs.observe(appUp, r.appReachable ? 1 : 0);
    },
    [taskSeconds, topLevel, nested, errors, polls, inFlight, inFlightTop, inFlightAge, cpu, state, appUp],
  );

  return {
    recordCall(end) {
      series[end.topLevel ? 1 : 0]![statusClassIndex(end.status)]!.record(end.durationMs / 1000);
    },
  };
}

/** One server as the router's metrics see it; a subset of what `/v1/servers` shows. */
export interface RouterServerMetrics {
  /** The server's data URL (the same string the observer gets as `server`). */
  readonly id: string;
  readonly pool?: string;
  /** e.g. "ready", "easing-in", "down", "draining": whatever the router calls its states. */
  readonly state: string;
  /** The balancer's current score (lower is better), when the algorithm has one. */
  readonly score?: number | undefined;
  /** Requests this router has in flight to the server. */
  readonly inFlight?: number;
  /** Reported task-seconds per second (mean busy top-level calls). */
  readonly busy?: number | undefined;
  /** Router-observed latency estimate (ms). */
  readonly latencyMs?: number | undefined;
  /** The server's cumulative task-seconds from its last report (restarts from 0 with a new epoch). */
  readonly taskSeconds?: number | undefined;
}

/** The parts of the router's `/v1/servers` document (`router.snapshot()`) the metrics read. */
export interface ServersSnapshotLike {
  readonly servers: readonly {
    readonly dataUrl: string;
    readonly pool: string;
    readonly state: string;
    readonly score: number | null;
    readonly lastReport: { readonly totals: { readonly taskSeconds: number } } | null;
    readonly rates: { readonly busy: number } | null;
    readonly router: { readonly inFlight: number; readonly latencyMs: number | null };
  }[];
}

export function routerServersFromSnapshot(snapshot: ServersSnapshotLike): RouterServerMetrics[] {
  return snapshot.servers.map((s) => ({
    id: s.dataUrl,
    pool: s.pool,
    state: s.state,
    score: s.score ?? undefined,
    inFlight: s.router.inFlight,
    busy: s.rates?.busy,
    latencyMs: s.router.latencyMs ?? undefined,
    taskSeconds: s.lastReport?.totals.taskSeconds,
  }));
}

/** Poll failure reasons become a small set of label values: codes as they are, prose as "error". */
export function pollFailureLabel(error: string): string {
  if (/timed? ?out|timeout/i.test(error)) return "timeout";
  return /^[A-Za-z0-9_.-]{1,40}$/.test(error) ? error : "error";
}

export interface RouterRequestMetrics {
  picked(algorithm: string, server: string): void;
  failedOver(server: string, code: string): void;
  ended(end: RouterRequestEnd): void;
  polled(poll: RouterPoll): void;
}

/** Caps distinct label values: past the cap, new values become "other". */
class LabelLimiter {
  readonly #seen = new Set<string>();
  constructor(readonly max: number) {}
  label(v: string): string {
    if (this.#seen.has(v)) return v;
    if (this.#seen.size >= this.max) return "other";
    this.#seen.add(v);
    return v;
  }
}

/** A server's resolved series, made on its first use; at most MAX_SERVER_LABELS of them plus "other". */
interface ServerSeries {
  readonly label: string;
  /** By algorithm. */
  readonly picks: Map<string, FastCounterSeries>;
  /** By status class index. */
  readonly requests: (FastCounterSeries | undefined)[];
  /** By error code. */
  readonly failovers: Map<string, FastCounterSeries>;
  /** By reason label. */
  readonly pollFailures: Map<string, FastCounterSeries>;
}

export function registerRouterMetrics(fast: FastMetricRegistry): RouterRequestMetrics {
  const requests = fast.counter("tasklb_router_requests", {
    description: "Requests the router finished, by the server that answered ('none' when none did).",
  });
  const duration = fast.histogram("tasklb_router_request_duration_seconds", {
    description: "Duration of requests through the router, including failovers.",
    unit: "s",
    boundaries: DURATION_BUCKETS_S,
  });
  const picks = fast.counter("tasklb_router_picks", {
    description: "Servers chosen by the balancer, by algorithm and server.",
  });
  const failovers = fast.counter("tasklb_router_failovers", {
    description: "Attempts that failed and moved on to another server, by server and error code.",
  });
  const retries = fast.counter("tasklb_router_retries", {
    description: "Attempts beyond the first one, summed over requests.",
  });
  const pollDuration = fast.histogram("tasklb_router_poll_duration_seconds", {
    description: "Latency of load report polls (GET /v1/load) to the sidecars.",
    unit: "s",
    boundaries: POLL_BUCKETS_S,
  });
  const pollFailures = fast.counter("tasklb_router_poll_failures", {
    description: "Load report polls that failed, by server and reason.",
  });
  const durationBy = STATUS_CLASSES.map((sc) => duration.series({ status_class: sc }));
  const retriesAll = retries.series();
  const pollDurationAll = pollDuration.series();

  const limiter = new LabelLimiter(MAX_SERVER_LABELS);
  const entries = new Map<string, ServerSeries>();
  const entry = (label: string): ServerSeries => ({
    label,
    picks: new Map(),
    requests: [],
    failovers: new Map(),
    pollFailures: new Map(),
  });
  // Servers past the cap share "other" and are not remembered (a churning pool must not grow this).
  const other = entry("other");
  const none = entry("none");
  const serverSeries = (server: string): ServerSeries => {
    let e = entries.get(server);
    if (e) return e;
    const label = limiter.label(server);
    if (label !== server) return label === "other" ? other : entry(label);
    entries.set(server, (e = entry(label)));
    return e;
  };
  const byKey = (
    map: Map<string, FastCounterSeries>,
    key: string,
    make: () => FastCounterSeries,
  ): FastCounterSeries => {
    let c = map.get(key);
    if (!c) map.set(key, (c = make()));
    return c;
  };

  return {
    picked(algorithm, server) {
      const e = serverSeries(server);
      byKey(e.picks, algorithm, () => picks.series({ algorithm, server: e.label })).add(1);
    },
    failedOver(server, code) {
      const e = serverSeries(server);
      byKey(e.failovers, code, () => failovers.series({ server: e.label, code })).add(1);
    },
    ended(end) {
      const sc = statusClassIndex(end.status);
      const e = end.server === undefined ? none : serverSeries(end.server);
      (e.requests[sc] ??= requests.series({ server: e.label, status_class: STATUS_CLASSES[sc]! })).add(1);
      durationBy[sc]!.record(end.durationMs / 1000);
      if (end.attempts > 1) retriesAll.add(end.attempts - 1);
    },
    polled(poll) {
      pollDurationAll.record(poll.durationMs / 1000);
      if (poll.error !== undefined) {
        const e = serverSeries(poll.server);
        const reason = pollFailureLabel(poll.error);
        byKey(e.pollFailures, reason, () => pollFailures.series({ server: e.label, reason })).add(1);
      }
    },
  };
}

/**
 * The router's per-server gauges, made fresh from the server list at every collection. They are a
 * MetricProducer rather than observable instruments because the SDK keeps reporting every
 * attribute set an observable instrument ever saw (cumulative temporality): a server that left the
 * pool, or a state a server has left, would stay in `/metrics` at its last value forever.
 */
export function routerServerProducer(
  getServers: (() => readonly RouterServerMetrics[] | undefined) | undefined,
): MetricProducer {
  const startTime = hrTime();
  const descriptor = (name: string, description: string, unit = "") => ({
    name,
    description,
    unit,
    valueType: ValueType.DOUBLE,
  });
  const d = {
    score: descriptor(
      "tasklb_router_server_score",
      "The balancer's current score of each server (lower is better).",
    ),
    state: descriptor(
      "tasklb_router_server_state",
      "1 for each server's current state (one series per server).",
    ),
    inFlight: descriptor(
      "tasklb_router_server_in_flight_requests",
      "Requests this router has in flight to each server.",
    ),
    busy: descriptor(
      "tasklb_router_server_busy",
      "Reported task-seconds per second of each server (mean number of busy top-level calls).",
    ),
    latency: descriptor(
      "tasklb_router_server_latency_seconds",
      "Router-observed latency estimate (peak EWMA) of each server.",
      "s",
    ),
    taskSeconds: descriptor(
      "tasklb_router_server_task_seconds",
      "Each server's cumulative task-seconds as last reported (resets when the sidecar restarts).",
      "s",
    ),
  };
  const labels = new LabelLimiter(MAX_SERVER_LABELS);
  return {
    collect(): Promise<CollectionResult> {
      const now = hrTime();
      const points = {
        score: [] as DataPoint<number>[],
        state: [] as DataPoint<number>[],
        inFlight: [] as DataPoint<number>[],
        busy: [] as DataPoint<number>[],
        latency: [] as DataPoint<number>[],
        taskSeconds: [] as DataPoint<number>[],
      };
      const list = safely(getServers) ?? [];
      for (const s of list) {
        const a: Attributes = { server: labels.label(s.id), pool: s.pool ?? "default" };
        const p = (value: number, attributes: Attributes = a): DataPoint<number> => ({
          startTime,
          endTime: now,
          attributes,
          value,
        });
        if (s.score !== undefined && Number.isFinite(s.score)) points.score.push(p(s.score));
        points.state.push(p(1, { ...a, state: s.state }));
        if (s.inFlight !== undefined) points.inFlight.push(p(s.inFlight));
        if (s.busy !== undefined) points.busy.push(p(s.busy));
        if (s.latencyMs !== undefined) points.latency.push(p(s.latencyMs / 1000));
        if (s.taskSeconds !== undefined) points.taskSeconds.push(p(s.taskSeconds));
      }
      const gauge = (descriptor: MetricData["descriptor"], dataPoints: DataPoint<number>[]): MetricData => ({
        descriptor,
        aggregationTemporality: AggregationTemporality.CUMULATIVE,
        dataPointType: DataPointType.GAUGE,
        dataPoints,
      });
      const metrics: MetricData[] = [
        gauge(d.score, points.score),
        gauge(d.state, points.state),
        gauge(d.inFlight, points.inFlight),
        gauge(d.busy, points.busy),
        gauge(d.latency, points.latency),
        {
          descriptor: d.taskSeconds,
          aggregationTemporality: AggregationTemporality.CUMULATIVE,
          dataPointType: DataPointType.SUM,
          isMonotonic: true,
          dataPoints: points.taskSeconds,
        } satisfies MetricData,
      ].filter((m) => m.dataPoints.length > 0);
      return Promise.resolve({
        // The reader replaces the resource with the SDK's.
        resourceMetrics: {
          resource: emptyResource(),
          scopeMetrics: [{ scope: { name: "tasklb" }, metrics }],
        },
        errors: [],
      });
    },
  };
}

/** Counters about telemetry itself: what it dropped or failed to export. */
export interface TelemetrySelfCounts {
  spansDropped: number;
  spansExported: number;
  spansFailed: number;
  metricExportsFailed: number;
}

export function registerSelfMetrics(meter: Meter, counts: TelemetrySelfCounts): void {
  const dropped = meter.createObservableCounter("tasklb_telemetry_spans_dropped", {
    description: "Spans dropped because the export queue was full (the collector is slow or down).",
  });
  const exported = meter.createObservableCounter("tasklb_telemetry_spans_exported", {
    description: "Spans handed to the exporter, by result.",
  });
  const metricFails = meter.createObservableCounter("tasklb_telemetry_metric_export_failures", {
    description: "OTLP metric exports that failed.",
  });
  const ok = { result: "ok" };
  const failed = { result: "error" };
  meter.addBatchObservableCallback(
    (obs) => {
      obs.observe(dropped, counts.spansDropped);
      obs.observe(exported, counts.spansExported, ok);
      obs.observe(exported, counts.spansFailed, failed);
      obs.observe(metricFails, counts.metricExportsFailed);
    },
    [dropped, exported, metricFails],
  );
}
