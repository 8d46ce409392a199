/**
 * Wires the OpenTelemetry SDK once, at start-up, from the standard `OTEL_*` variables. Called only
 * by the entry points (`src/sidecar/main.ts`, `src/router/main.ts`); everything else depends on the
 * observer interfaces in `shared/call-observer.ts` and never on the SDK.
 *
 * - Traces: on when an OTLP endpoint is configured (or `OTEL_TRACES_EXPORTER=console`, or a test
 *   passes span processors) and the sampler is not `always_off`. Spans go through a bounded
 *   BatchSpanProcessor that drops (and counts) when the collector is slow or down; the OTLP exporter
 *   uses its own HTTP agent, never the proxy, and is never timed as a call.
 * - Metrics: served in the Prometheus text format by `metricsHandler` (mount it on the control/admin
 *   port as `GET /metrics`), and pushed over OTLP when an endpoint is configured.
 * - `OTEL_SDK_DISABLED=true` turns everything off: no observer, `/metrics` answers 404.
 *
 * The providers are not registered globally: tests build several in one process, and nothing in
 * tasklb looks them up through the global API.
 */
import { randomUUID } from "node:crypto";
import http from "node:http";
import https from "node:https";
import { createRequire } from "node:module";
import { Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { IncomingMessage, ServerResponse } from "node:http";
import { defaultResource, resourceFromAttributes, type Resource } from "@opentelemetry/resources";
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BasicTracerProvider,
  BatchSpanProcessor,
  ConsoleSpanExporter,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  type BufferConfig,
  type Sampler,
  type SpanExporter,
  type SpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import {
  MeterProvider,
  PeriodicExportingMetricReader,
  type IMetricReader,
  type MetricReader,
  type MetricProducer,
} from "@opentelemetry/sdk-metrics";
import { PrometheusExporter, PrometheusSerializer } from "@opentelemetry/exporter-prometheus";
import { OTLPTraceExporter as OTLPTraceExporterProto } from "@opentelemetry/exporter-trace-otlp-proto";
import { OTLPTraceExporter as OTLPTraceExporterJson } from "@opentelemetry/exporter-trace-otlp-http";
import { OTLPMetricExporter as OTLPMetricExporterProto } from "@opentelemetry/exporter-metrics-otlp-proto";
import { OTLPMetricExporter as OTLPMetricExporterJson } from "@opentelemetry/exporter-metrics-otlp-http";
import type { MeterProvider as ApiMeterProvider } from "@opentelemetry/api";
import type { RouterRequestObserver, SidecarCallObserver } from "../shared/call-observer.js";
import type { LoadReport } from "../shared/load-report.js";
import type { Logger } from "../shared/log.js";
import { writeJson } from "../shared/proxy-response.js";
import {
  droppedSpanListener,
  GuardedMetricExporter,
  GuardedSpanExporter,
  SHUTDOWN_CODE,
} from "./export-guard.js";
import {
  registerRouterMetrics,
  registerSelfMetrics,
  registerSidecarMetrics,
  routerServerProducer,
  type RouterServerMetrics,
  type TelemetrySelfCounts,
} from "./metrics.js";
import { FastMetricRegistry, mergeScopes, type FastMetricProducer } from "./fast-metrics.js";
import { readTelemetrySettings, type OtlpTarget, type TelemetrySettings } from "./otel-env.js";
import { createRouterObserver } from "./router-observer.js";
import { CausalityIdGenerator, type TracerHandle } from "./server-span.js";
import { createSidecarObserver } from "./sidecar-observer.js";

export type TelemetryRole = "sidecar" | "router";

export interface TelemetryOptions {
  readonly role: TelemetryRole;
  /** The process environment (the `OTEL_*` variables are read from it, nothing else). */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Sidecar: the current load report, for the task-seconds and other counters. Must not count as a poll. */
  readonly getSidecarReport?: () => LoadReport | undefined;
  /** Router: a snapshot of the servers, for the score/state gauges. */
  readonly getRouterServers?: () => readonly RouterServerMetrics[] | undefined;
  readonly logger: Logger;
  /** For tests: extra span processors (e.g. SimpleSpanProcessor + InMemorySpanExporter); turns tracing on. */
  readonly spanProcessors?: readonly SpanProcessor[];
  /**
   * For tests: extra metric readers, each made from the producers it must be given as its
   * `metricProducers` (without them it would miss the request path's counters and histograms).
   */
  readonly metricReaders?: readonly ((metricProducers: MetricProducer[]) => MetricReader)[];
  /** Upper bound on `shutdown()` (flushing to a hung collector must not hold the process). Default 3000. */
  readonly shutdownTimeoutMs?: number;
}

export type MetricsHandler = (req: IncomingMessage, res: ServerResponse) => void;

export interface Telemetry {
  /** Pass as `deps.observer` to `createSidecar`; undefined when telemetry is off. */
  readonly sidecarObserver?: SidecarCallObserver;
  /** Pass as `deps.observer` to `createRouter`; undefined when telemetry is off. */
  readonly routerObserver?: RouterRequestObserver;
  /** `GET /metrics` on the control/admin port: Prometheus text format (404 when metrics are off). */
  readonly metricsHandler: MetricsHandler;
  /** Whether spans are recorded. */
  readonly tracing: boolean;
  readonly settings: TelemetrySettings;
  /** Flushes what it can within the shutdown bound, then drops the exporters' connections. */
  shutdown(): Promise<void>;
}

export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

function tasklbVersion(): string | undefined {
  try {
    // src/telemetry/setup.js → the package root, from dist/ or any other output directory.
    const pkg = createRequire(import.meta.url)("../../../package.json") as {
      name?: string;
      version?: string;
    };
    return pkg.name === "tasklb" ? pkg.version : undefined;
  } catch {
    return undefined;
  }
}

function buildResource(settings: TelemetrySettings, version: string | undefined): Resource {
  return defaultResource().merge(
    resourceFromAttributes({
      "service.instance.id": randomUUID(),
      ...(version !== undefined ? { "service.version": version } : {}),
      ...settings.resourceAttributes,
      "service.name": settings.serviceName,
    }),
  );
}

function buildSampler(settings: TelemetrySettings): Sampler {
  const ratio = new TraceIdRatioBasedSampler(settings.traces.ratio);
  switch (settings.traces.sampler) {
    case "always_on":
      return new AlwaysOnSampler();
    case "always_off":
      return new AlwaysOffSampler();
    case "traceidratio":
      return ratio;
    case "parentbased_always_off":
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case "parentbased_traceidratio":
      return new ParentBasedSampler({ root: ratio });
    case "parentbased_always_on":
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
  }
}

/** True when no span could ever be sampled, whatever the parent says. */
function neverSamples(settings: TelemetrySettings): boolean {
  const t = settings.traces;
  return t.sampler === "always_off" || (t.sampler === "traceidratio" && t.ratio === 0);
}

/**
 * The exporters get their own agents, so shutdown can cut a connection to a hung collector. Once
 * shutdown begins, a connection error is final (recoded so the OTLP exporter does not schedule
 * retries over seconds); once it ends, open connections are cut and new ones fail at once.
 */
class AgentPool {
  readonly #agents = new Set<http.Agent>();
  #draining = false;
  #closed = false;

  static shutdownError(): Error {
    return Object.assign(new Error("telemetry shut down"), { code: SHUTDOWN_CODE });
  }

  factory = (protocol: string): http.Agent => {
    const options = { keepAlive: true, maxSockets: 4 };
    const agent = protocol === "https:" ? new https.Agent(options) : new http.Agent(options);
    const connect = agent.createConnection.bind(agent) as (...args: unknown[]) => Duplex;
    (agent as unknown as { createConnection: (...args: unknown[]) => Duplex }).createConnection = (
      ...args
    ) => {
      if (this.#closed) {
        const dead = new Socket();
        process.nextTick(() => dead.destroy(AgentPool.shutdownError()));
        return dead;
      }
      const socket = connect(...args);
      // Runs before the HTTP client's own error listener, which reads the code.
      socket.prependListener("error", (err: NodeJS.ErrnoException) => {
        if (this.#draining) err.code = SHUTDOWN_CODE;
      });
      return socket;
    };
    this.#agents.add(agent);
    return agent;
  };

  beginShutdown(): void {
    this.#draining = true;
  }

  destroy(): void {
    this.#draining = true;
    this.#closed = true;
    for (const agent of this.#agents) {
      for (const list of [agent.sockets, agent.freeSockets]) {
        for (const sockets of Object.values(list))
          for (const s of sockets ?? []) s.destroy(AgentPool.shutdownError());
      }
      agent.destroy();
    }
  }
}

// The exporters' node config type, without importing their (transitive) base package.
type ExporterConfig = NonNullable<ConstructorParameters<typeof OTLPTraceExporterProto>[0]>;

function exporterConfig(target: OtlpTarget, agents: AgentPool): ExporterConfig {
  return {
    url: target.url,
    headers: { ...target.headers },
    timeoutMillis: target.timeoutMs,
    compression: target.compression as NonNullable<ExporterConfig["compression"]>,
    httpAgentOptions: agents.factory,
  };
}

function notFound(_req: IncomingMessage, res: ServerResponse): void {
  writeJson(res, 404, {
    error: {
      code: "NOT_FOUND",
      message: "metrics are disabled (OTEL_SDK_DISABLED or OTEL_METRICS_EXPORTER)",
    },
  });
}

function prometheusHandler(reader: PrometheusExporter, logger: Logger): MetricsHandler {
  const serializer = new PrometheusSerializer("", false, undefined, false, true);
  return (req, res) => {
    if (req.method !== "GET" && req.method !== "HEAD") {
      writeJson(
        res,
        405,
        { error: { code: "METHOD_NOT_ALLOWED", message: "use GET" } },
        { allow: "GET, HEAD" },
      );
      return;
    }
    reader.collect().then(
      ({ resourceMetrics, errors }) => {
        if (errors.length > 0)
          logger.debug("telemetry: metric collection errors", { errors: errors.map(String) });
        const body = serializer.serialize(mergeScopes(resourceMetrics));
        res.writeHead(200, {
          "content-type": PROMETHEUS_CONTENT_TYPE,
          "content-length": Buffer.byteLength(body),
          "cache-control": "no-store",
        });
        res.end(req.method === "HEAD" ? undefined : body);
      },
      (err: unknown) => {
        logger.warn("telemetry: metric collection failed", { err });
        if (!res.headersSent)
          writeJson(res, 500, { error: { code: "METRICS_FAILED", message: "metric collection failed" } });
      },
    );
  };
}

export function setupTelemetry(opts: TelemetryOptions): Telemetry {
  const { role, logger } = opts;
  const settings = readTelemetrySettings(opts.env, `tasklb-${role}`);
  for (const w of settings.warnings) logger.warn(`telemetry: ${w}`);
  if (settings.sdkDisabled) {
    logger.info("telemetry: disabled by OTEL_SDK_DISABLED");
    return { metricsHandler: notFound, tracing: false, settings, shutdown: async () => {} };
  }

  const resource = buildResource(settings, tasklbVersion());
  const agents = new AgentPool();
  const counts: TelemetrySelfCounts = {
    spansDropped: 0,
    spansExported: 0,
    spansFailed: 0,
    metricExportsFailed: 0,
  };

  // Traces.
  let tracerProvider: BasicTracerProvider | undefined;
  let tracing: TracerHandle | undefined;
  const extraProcessors = opts.spanProcessors ?? [];
  const t = settings.traces;
  if (!neverSamples(settings) && (t.exporter !== "none" || extraProcessors.length > 0)) {
    const processors: SpanProcessor[] = [...extraProcessors];
    let exporter: SpanExporter | undefined;
    if (t.exporter === "otlp" && t.otlp) {
      const cfg = exporterConfig(t.otlp, agents);
      const inner =
        t.otlp.protocol === "http/json" ? new OTLPTraceExporterJson(cfg) : new OTLPTraceExporterProto(cfg);
      exporter = new GuardedSpanExporter(inner, counts, logger, t.otlp.url);
    } else if (t.exporter === "console") {
      exporter = new ConsoleSpanExporter();
    }
    if (exporter) {
      const config: BufferConfig & { selfObsMeterProvider: ApiMeterProvider } = {
        maxQueueSize: t.maxQueueSize,
        maxExportBatchSize: t.maxExportBatchSize,
        scheduledDelayMillis: t.scheduledDelayMs,
        exportTimeoutMillis: t.exportTimeoutMs,
        selfObsMeterProvider: droppedSpanListener(counts),
      };
      processors.push(new BatchSpanProcessor(exporter, config));
    }
    const ids = new CausalityIdGenerator();
    tracerProvider = new BasicTracerProvider({
      resource,
      sampler: buildSampler(settings),
      idGenerator: ids,
      spanProcessors: processors,
    });
    tracing = { tracer: tracerProvider.getTracer("tasklb", tasklbVersion()), ids };
    logger.info("telemetry: tracing on", {
      exporter: t.exporter,
      url: t.otlp?.url,
      protocol: t.otlp?.protocol,
      sampler: t.sampler,
      ...(t.sampler.endsWith("traceidratio") ? { ratio: t.ratio } : {}),
    });
  }

  // Metrics. The request path's counters and histograms are recorded in plain JS (fast-metrics.ts)
  // and published to each reader by a producer of its own; the rest are SDK instruments.
  const m = settings.metrics;
  const fast = new FastMetricRegistry({ name: "tasklb", version: tasklbVersion() });
  const serverProducer = role === "router" ? routerServerProducer(opts.getRouterServers) : undefined;
  const producersFor = (): { producer: FastMetricProducer; metricProducers: MetricProducer[] } => {
    const producer = fast.producer();
    return { producer, metricProducers: serverProducer ? [producer, serverProducer] : [producer] };
  };
  const readers: IMetricReader[] = [];
  for (const make of opts.metricReaders ?? []) {
    const { producer, metricProducers } = producersFor();
    const reader = make(metricProducers);
    producer.bind(reader);
    readers.push(reader);
  }
  let prometheus: PrometheusExporter | undefined;
  if (m.prometheus) {
    const { producer, metricProducers } = producersFor();
    prometheus = new PrometheusExporter({
      preventServerStart: true,
      withoutScopeInfo: true,
      metricProducers,
    });
    producer.bind(prometheus);
    readers.push(prometheus);
  }
  if (m.otlp) {
    const cfg = exporterConfig(m.otlp, agents);
    const inner =
      m.otlp.protocol === "http/json" ? new OTLPMetricExporterJson(cfg) : new OTLPMetricExporterProto(cfg);
    const { producer, metricProducers } = producersFor();
    const reader = new PeriodicExportingMetricReader({
      exporter: new GuardedMetricExporter(inner, counts, logger, m.otlp.url),
      exportIntervalMillis: m.exportIntervalMs,
      exportTimeoutMillis: Math.min(m.exportTimeoutMs, m.exportIntervalMs),
      metricProducers,
    });
    producer.bind(reader);
    readers.push(reader);
    logger.info("telemetry: OTLP metrics on", {
      url: m.otlp.url,
      protocol: m.otlp.protocol,
      intervalMs: m.exportIntervalMs,
    });
  }
  let meterProvider: MeterProvider | undefined;
  let sidecarObserver: SidecarCallObserver | undefined;
  let routerObserver: RouterRequestObserver | undefined;
  if (readers.length > 0) {
    meterProvider = new MeterProvider({ resource, readers });
    const meter = meterProvider.getMeter("tasklb", tasklbVersion());
    if (tracing || m.otlp) registerSelfMetrics(meter, counts);
    if (role === "sidecar") {
      const metrics = registerSidecarMetrics(meter, fast, opts.getSidecarReport);
      sidecarObserver = createSidecarObserver({ ...(tracing ? { tracing } : {}), metrics });
    } else {
      const metrics = registerRouterMetrics(fast);
      routerObserver = createRouterObserver({ ...(tracing ? { tracing } : {}), metrics });
    }
  } else if (tracing) {
    if (role === "sidecar") sidecarObserver = createSidecarObserver({ tracing });
    else routerObserver = createRouterObserver({ tracing });
  }

  let shutdownPromise: Promise<void> | undefined;
  const shutdown = (): Promise<void> => {
    shutdownPromise ??= (async () => {
      const limit = opts.shutdownTimeoutMs ?? 3000;
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<"timeout">((resolve) => {
        timer = setTimeout(() => resolve("timeout"), limit);
        timer.unref();
      });
      agents.beginShutdown();
      const work = Promise.allSettled([tracerProvider?.shutdown(), meterProvider?.shutdown()]);
      const r = await Promise.race([work, deadline]);
      clearTimeout(timer);
      if (r === "timeout")
        logger.warn("telemetry: shutdown timed out; unexported data dropped", { limitMs: limit });
      // Cuts any connection to a collector that never answers, so the process can exit now.
      agents.destroy();
    })();
    return shutdownPromise;
  };

  return {
    ...(sidecarObserver ? { sidecarObserver } : {}),
    ...(routerObserver ? { routerObserver } : {}),
    metricsHandler: prometheus ? prometheusHandler(prometheus, logger) : notFound,
    tracing: tracing !== undefined,
    settings,
    shutdown,
  };
}
