import assert from "node:assert/strict";
import { test } from "node:test";
import { readTelemetrySettings } from "../../../src/telemetry/otel-env.js";

void test("defaults: no endpoint means no OTLP, Prometheus on, parent-based always-on sampling", () => {
  const s = readTelemetrySettings({}, "tasklb-sidecar");
  assert.equal(s.sdkDisabled, false);
  assert.equal(s.serviceName, "tasklb-sidecar");
  assert.equal(s.traces.exporter, "none");
  assert.equal(s.traces.otlp, undefined);
  assert.equal(s.traces.sampler, "parentbased_always_on");
  assert.equal(s.metrics.prometheus, true);
  assert.equal(s.metrics.otlp, undefined);
  assert.deepEqual(s.warnings, []);
});

void test("OTEL_EXPORTER_OTLP_ENDPOINT gets the signal paths appended; signal endpoints are used as is", () => {
  const s = readTelemetrySettings(
    {
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318/",
      OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: "https://metrics.example/custom",
    },
    "x",
  );
  assert.equal(s.traces.exporter, "otlp");
  assert.equal(s.traces.otlp?.url, "http://collector:4318/v1/traces");
  assert.equal(s.traces.otlp?.protocol, "http/protobuf");
  assert.equal(s.traces.otlp?.timeoutMs, 10_000);
  assert.equal(s.metrics.otlp?.url, "https://metrics.example/custom");
});

void test("protocol, headers (percent-decoded, signal-specific wins), timeout and compression", () => {
  const s = readTelemetrySettings(
    {
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://c:4318/v1/traces",
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      OTEL_EXPORTER_OTLP_HEADERS: "api-key=a%20b,x-team=one",
      OTEL_EXPORTER_OTLP_TRACES_HEADERS: "x-team=two",
      OTEL_EXPORTER_OTLP_TIMEOUT: "2500",
      OTEL_EXPORTER_OTLP_COMPRESSION: "gzip",
    },
    "x",
  );
  assert.equal(s.traces.otlp?.protocol, "http/json");
  assert.deepEqual(s.traces.otlp?.headers, { "api-key": "a b", "x-team": "two" });
  assert.equal(s.traces.otlp?.timeoutMs, 2500);
  assert.equal(s.traces.otlp?.compression, "gzip");
});

void test("service name: OTEL_SERVICE_NAME over service.name in OTEL_RESOURCE_ATTRIBUTES over the default", () => {
  const attrs = "service.name=from-attrs,deployment.environment=prod%2Deu,team=core";
  const a = readTelemetrySettings({ OTEL_RESOURCE_ATTRIBUTES: attrs }, "d");
  assert.equal(a.serviceName, "from-attrs");
  assert.equal(a.resourceAttributes["deployment.environment"], "prod-eu");
  const b = readTelemetrySettings({ OTEL_RESOURCE_ATTRIBUTES: attrs, OTEL_SERVICE_NAME: "svc" }, "d");
  assert.equal(b.serviceName, "svc");
});

void test("samplers and ratios; bad values fall back with a warning", () => {
  const r = readTelemetrySettings(
    { OTEL_TRACES_SAMPLER: "parentbased_traceidratio", OTEL_TRACES_SAMPLER_ARG: "0.25" },
    "x",
  );
  assert.equal(r.traces.sampler, "parentbased_traceidratio");
  assert.equal(r.traces.ratio, 0.25);
  const bad = readTelemetrySettings(
    { OTEL_TRACES_SAMPLER: "jaeger_remote", OTEL_TRACES_SAMPLER_ARG: "2" },
    "x",
  );
  assert.equal(bad.traces.sampler, "parentbased_always_on");
  assert.equal(bad.warnings.length, 1);
  const badArg = readTelemetrySettings(
    { OTEL_TRACES_SAMPLER: "traceidratio", OTEL_TRACES_SAMPLER_ARG: "lots" },
    "x",
  );
  assert.equal(badArg.traces.ratio, 1);
  assert.match(badArg.warnings[0] ?? "", /OTEL_TRACES_SAMPLER_ARG/);
});

void test("OTEL_SDK_DISABLED, exporter lists and a bad endpoint", () => {
  assert.equal(readTelemetrySettings({ OTEL_SDK_DISABLED: "TRUE" }, "x").sdkDisabled, true);
  assert.equal(readTelemetrySettings({ OTEL_SDK_DISABLED: "false" }, "x").sdkDisabled, false);
  const none = readTelemetrySettings(
    {
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318",
      OTEL_TRACES_EXPORTER: "none",
      OTEL_METRICS_EXPORTER: "none",
    },
    "x",
  );
  assert.equal(none.traces.exporter, "none");
  assert.equal(none.metrics.prometheus, false);
  assert.equal(none.metrics.otlp, undefined);
  const otlpOnly = readTelemetrySettings(
    { OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_METRICS_EXPORTER: "otlp" },
    "x",
  );
  assert.equal(otlpOnly.metrics.prometheus, false);
  assert.equal(otlpOnly.metrics.otlp?.url, "http://c:4318/v1/metrics");
  const bad = readTelemetrySettings({ OTEL_EXPORTER_OTLP_ENDPOINT: "collector:4318" }, "x");
  assert.equal(bad.traces.exporter, "none");
  assert.ok(bad.warnings.some((w) => w.includes("not an http(s) URL")));
});
