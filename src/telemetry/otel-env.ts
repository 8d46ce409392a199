/**
 * Reads the standard OpenTelemetry SDK variables
 * (https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/ and the OTLP
 * exporter page) from an env object passed in, never from `process.env`, so tests can set them
 * per case. Pure: returns the settings plus warnings for values it could not use. A bad telemetry
 * variable never stops the proxy; like the SDKs, it falls back and says so.
 */

export type SamplerName =
  | "always_on"
  | "always_off"
  | "traceidratio"
  | "parentbased_always_on"
  | "parentbased_always_off"
  | "parentbased_traceidratio";

const SAMPLERS: readonly SamplerName[] = [
  "always_on",
  "always_off",
  "traceidratio",
  "parentbased_always_on",
  "parentbased_always_off",
  "parentbased_traceidratio",
];

export type OtlpProtocol = "http/protobuf" | "http/json";

export interface OtlpTarget {
  /** Full URL the exporter posts to (…/v1/traces or …/v1/metrics). */
  readonly url: string;
  readonly protocol: OtlpProtocol;
  readonly headers: Readonly<Record<string, string>>;
  readonly timeoutMs: number;
  readonly compression: "gzip" | "none";
}

export interface TraceSettings {
  /** Where spans go; undefined when tracing is off for any reason. */
  readonly exporter: "otlp" | "console" | "none";
  readonly otlp: OtlpTarget | undefined;
  readonly sampler: SamplerName;
  /** Ratio for the *traceidratio samplers, 0..1. */
  readonly ratio: number;
  readonly maxQueueSize: number;
  readonly maxExportBatchSize: number;
  readonly scheduledDelayMs: number;
  readonly exportTimeoutMs: number;
}

export interface MetricSettings {
  /** Serve `/metrics` in the Prometheus text format (on unless OTEL_METRICS_EXPORTER excludes it). */
  readonly prometheus: boolean;
  /** Push over OTLP; set when an endpoint is configured and OTEL_METRICS_EXPORTER allows otlp. */
  readonly otlp: OtlpTarget | undefined;
  readonly exportIntervalMs: number;
  readonly exportTimeoutMs: number;
}

export interface TelemetrySettings {
  readonly sdkDisabled: boolean;
  readonly serviceName: string;
  /** From OTEL_RESOURCE_ATTRIBUTES (service.name there is overridden by OTEL_SERVICE_NAME). */
  readonly resourceAttributes: Readonly<Record<string, string>>;
  readonly traces: TraceSettings;
  readonly metrics: MetricSettings;
  readonly warnings: readonly string[];
}

type Env = Readonly<Record<string, string | undefined>>;

function get(env: Env, name: string): string | undefined {
  const v = env[name]?.trim();
  return v === undefined || v === "" ? undefined : v;
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** Parses `k1=v1,k2=v2` (values percent-encoded), the format of OTEL_RESOURCE_ATTRIBUTES and *_HEADERS. */
export function parseKeyValueList(
  value: string | undefined,
  warn: (msg: string) => void,
  what: string,
): Record<string, string> {
  const out: Record<string, string> = {};
  if (value === undefined) return out;
  for (const part of value.split(",")) {
    if (part.trim() === "") continue;
    const eq = part.indexOf("=");
    const key = eq > 0 ? part.slice(0, eq).trim() : "";
    if (key === "") {
      warn(`${what}: ignoring "${part.trim()}" (expected key=value)`);
      continue;
    }
    out[decode(key)] = decode(part.slice(eq + 1).trim());
  }
  return out;
}

function int(env: Env, name: string, dflt: number, min: number, warn: (m: string) => void): number {
  const raw = get(env, name);
  if (raw === undefined) return dflt;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) {
    warn(`${name}=${raw} is not an integer >= ${min}; using ${dflt}`);
    return dflt;
  }
  return n;
}

function signalUrl(env: Env, signal: "TRACES" | "METRICS", warn: (m: string) => void): string | undefined {
  const specific = get(env, `OTEL_EXPORTER_OTLP_${signal}_ENDPOINT`);
  const generic = get(env, "OTEL_EXPORTER_OTLP_ENDPOINT");
  let url: string;
  let from: string;
  if (specific !== undefined) {
    // The signal-specific endpoint is used as is (the spec: no path is appended).
    url = specific;
    from = `OTEL_EXPORTER_OTLP_${signal}_ENDPOINT`;
  } else if (generic !== undefined) {
    url = generic.replace(/\/+$/, "") + (signal === "TRACES" ? "/v1/traces" : "/v1/metrics");
    from = "OTEL_EXPORTER_OTLP_ENDPOINT";
  } else {
    return undefined;
  }
  try {
    const u = new URL(url);
    if (u.protocol !== "http:" && u.protocol !== "https:") throw new Error("not http(s)");
    return u.href;
  } catch {
    warn(`${from}=${url} is not an http(s) URL; ${signal.toLowerCase()} are not exported over OTLP`);
    return undefined;
  }
}

function otlpTarget(
  env: Env,
  signal: "TRACES" | "METRICS",
  warn: (m: string) => void,
): OtlpTarget | undefined {
  const url = signalUrl(env, signal, warn);
  if (url === undefined) return undefined;
  const protoName = `OTEL_EXPORTER_OTLP_${signal}_PROTOCOL`;
  const rawProto = get(env, protoName) ?? get(env, "OTEL_EXPORTER_OTLP_PROTOCOL");
  let protocol: OtlpProtocol = "http/protobuf";
  if (rawProto === "http/json") protocol = "http/json";
  else if (rawProto !== undefined && rawProto !== "http/protobuf") {
    warn(
      `OTLP protocol "${rawProto}" is not supported (use http/protobuf or http/json); using http/protobuf`,
    );
  }
  const headers = {
    ...parseKeyValueList(get(env, "OTEL_EXPORTER_OTLP_HEADERS"), warn, "OTEL_EXPORTER_OTLP_HEADERS"),
    ...parseKeyValueList(
      get(env, `OTEL_EXPORTER_OTLP_${signal}_HEADERS`),
      warn,
      `OTEL_EXPORTER_OTLP_${signal}_HEADERS`,
    ),
  };
  const timeoutMs = int(
    env,
    `OTEL_EXPORTER_OTLP_${signal}_TIMEOUT`,
    int(env, "OTEL_EXPORTER_OTLP_TIMEOUT", 10_000, 1, warn),
    1,
    warn,
  );
  const rawComp =
    get(env, `OTEL_EXPORTER_OTLP_${signal}_COMPRESSION`) ?? get(env, "OTEL_EXPORTER_OTLP_COMPRESSION");
  const compression = rawComp === "gzip" ? "gzip" : "none";
  if (rawComp !== undefined && rawComp !== "gzip" && rawComp !== "none") {
    warn(`OTLP compression "${rawComp}" is not supported (gzip or none); using none`);
  }
  return { url, protocol, headers, timeoutMs, compression };
}

/** The exporter list variables (`OTEL_TRACES_EXPORTER=otlp,console`); undefined when unset. */
function exporterList(env: Env, name: string): string[] | undefined {
  const raw = get(env, name);
  if (raw === undefined) return undefined;
  return raw
    .split(",")
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s !== "");
}

export function readTelemetrySettings(env: Env, defaultServiceName: string): TelemetrySettings {
  const warnings: string[] = [];
  const warn = (m: string) => warnings.push(m);

  const sdkDisabled = get(env, "OTEL_SDK_DISABLED")?.toLowerCase() === "true";
  const resourceAttributes = parseKeyValueList(
    get(env, "OTEL_RESOURCE_ATTRIBUTES"),
    warn,
    "OTEL_RESOURCE_ATTRIBUTES",
  );
  const serviceName =
    get(env, "OTEL_SERVICE_NAME") ?? resourceAttributes["service.name"] ?? defaultServiceName;

  // Traces.
  const rawSampler = get(env, "OTEL_TRACES_SAMPLER")?.toLowerCase();
  let sampler: SamplerName = "parentbased_always_on";
  if (rawSampler !== undefined) {
    if ((SAMPLERS as readonly string[]).includes(rawSampler)) sampler = rawSampler as SamplerName;
    else warn(`OTEL_TRACES_SAMPLER=${rawSampler} is not supported; using parentbased_always_on`);
  }
  let ratio = 1;
  const rawArg = get(env, "OTEL_TRACES_SAMPLER_ARG");
  if (rawArg !== undefined && sampler.endsWith("traceidratio")) {
    const r = Number(rawArg);
    if (Number.isFinite(r) && r >= 0 && r <= 1) ratio = r;
    else warn(`OTEL_TRACES_SAMPLER_ARG=${rawArg} is not a ratio in [0, 1]; using 1`);
  }
  const traceExporters = exporterList(env, "OTEL_TRACES_EXPORTER") ?? ["otlp"];
  let traceExporter: TraceSettings["exporter"] = "none";
  let traceOtlp: OtlpTarget | undefined;
  if (traceExporters.includes("otlp")) {
    traceOtlp = otlpTarget(env, "TRACES", warn);
    if (traceOtlp) traceExporter = "otlp";
  }
  if (traceExporter === "none" && traceExporters.includes("console")) traceExporter = "console";
  for (const e of traceExporters) {
    if (e !== "otlp" && e !== "console" && e !== "none")
      warn(`OTEL_TRACES_EXPORTER: "${e}" is not supported`);
  }
  const maxQueueSize = int(env, "OTEL_BSP_MAX_QUEUE_SIZE", 2048, 1, warn);
  const traces: TraceSettings = {
    exporter: traceExporter,
    otlp: traceOtlp,
    sampler,
    ratio,
    maxQueueSize,
    maxExportBatchSize: Math.min(maxQueueSize, int(env, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512, 1, warn)),
    scheduledDelayMs: int(env, "OTEL_BSP_SCHEDULE_DELAY", 5000, 0, warn),
    exportTimeoutMs: int(env, "OTEL_BSP_EXPORT_TIMEOUT", 30_000, 1, warn),
  };

  // Metrics: Prometheus text on the control/admin port unless the user lists exporters without it;
  // OTLP push whenever an endpoint is configured and the list allows it.
  const metricExporters = exporterList(env, "OTEL_METRICS_EXPORTER");
  const prometheus = metricExporters === undefined || metricExporters.includes("prometheus");
  const wantOtlp = metricExporters === undefined || metricExporters.includes("otlp");
  for (const e of metricExporters ?? []) {
    if (e !== "otlp" && e !== "prometheus" && e !== "none")
      warn(`OTEL_METRICS_EXPORTER: "${e}" is not supported`);
  }
  const metrics: MetricSettings = {
    prometheus,
    otlp: wantOtlp ? otlpTarget(env, "METRICS", warn) : undefined,
    exportIntervalMs: int(env, "OTEL_METRIC_EXPORT_INTERVAL", 60_000, 1, warn),
    exportTimeoutMs: int(env, "OTEL_METRIC_EXPORT_TIMEOUT", 30_000, 1, warn),
  };

  return { sdkDisabled, serviceName, resourceAttributes, traces, metrics, warnings };
}
