/**
 * OTLP export end to end: a router and a sidecar (real servers on loopback) configured only by the
 * standard OTEL_* variables export to an OTLP/HTTP receiver running in the test, which decodes the
 * real payload (protobuf by default, JSON with OTEL_EXPORTER_OTLP_PROTOCOL=http/json).
 */
import assert from "node:assert/strict";
import { test, type TestContext } from "node:test";
import type { LoadReport } from "../../src/shared/load-report.js";
import { silentLogger } from "../../src/shared/log.js";
import { parseTraceparent } from "../../src/shared/trace-context.js";
import { setupTelemetry } from "../../src/telemetry/setup.js";
import { startTestApp } from "../helpers/app.js";
import { startOtlpReceiver } from "../helpers/otlp-receiver.js";
import { startRouter, waitInRotation } from "../helpers/router.js";
import { send, startSidecar } from "../helpers/sidecar.js";

async function exportingCluster(t: TestContext, env: Record<string, string>) {
  const app = await startTestApp();
  t.after(() => app.close());
  const late: { report?: () => LoadReport } = {};
  const sidecarTel = setupTelemetry({
    role: "sidecar",
    env: { ...env, OTEL_SERVICE_NAME: "checkout-sidecar" },
    logger: silentLogger,
    getSidecarReport: () => late.report?.(),
  });
  t.after(() => sidecarTel.shutdown());
  const sidecar = await startSidecar(t, app.url, {}, { observer: sidecarTel.sidecarObserver });
  late.report = () => sidecar.sidecar.report();
  app.callbackUrl = sidecar.url;
  const routerTel = setupTelemetry({ role: "router", env, logger: silentLogger });
  t.after(() => routerTel.shutdown());
  const router = await startRouter(t, ["--server", `${sidecar.url}=${sidecar.controlUrl}`], {
    observer: routerTel.routerObserver,
  });
  await waitInRotation(router.adminUrl, [sidecar.url]);
  assert.equal(sidecarTel.tracing, true);
  assert.equal(routerTel.tracing, true);
  return { app, router };
}

for (const protocol of ["http/protobuf", "http/json"] as const) {
  void test(`OTLP ${protocol}: resource attributes, span names and trace ids as the app saw them; metrics`, async (t) => {
    const receiver = await startOtlpReceiver();
    t.after(() => receiver.close());
    const { app, router } = await exportingCluster(t, {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
      OTEL_EXPORTER_OTLP_HEADERS: "x-api-key=abc%20123",
      OTEL_RESOURCE_ATTRIBUTES: "deployment.environment=e2e,service.namespace=shop",
      OTEL_BSP_SCHEDULE_DELAY: "50",
      OTEL_METRIC_EXPORT_INTERVAL: "250",
    });

    for (let i = 0; i < 3; i++) {
      const res = await send(router.url, { path: `/outer?ms=5&inner=1&innerMs=5&i=${i}` });
      assert.equal(res.status, 200);
    }
    const traceIds = app.requests
      .filter((r) => r.url.startsWith("/outer"))
      .map((r) => parseTraceparent(r.header("traceparent"))?.traceId);
    assert.equal(traceIds.length, 3);
    // Per request: a router span, the sidecar's outer span and its nested span.
    const complete = await receiver.waitFor(
      () => traceIds.every((id) => receiver.spans.filter((s) => s.traceId === id).length === 3),
      15_000,
    );
    assert.ok(complete, `expected 3 spans per trace, got ${receiver.spans.length} spans`);

    const traces = receiver.requests.filter((r) => r.path === "/v1/traces");
    assert.ok(traces.length > 0);
    for (const r of traces) {
      assert.equal(r.contentType, protocol === "http/json" ? "application/json" : "application/x-protobuf");
      assert.equal(r.headers["x-api-key"], "abc 123");
    }

    for (const id of traceIds) {
      const spans = receiver.spans.filter((s) => s.traceId === id);
      const routerSpan = spans.find((s) => s.resource["service.name"] === "tasklb-router");
      const sidecarSpans = spans.filter((s) => s.resource["service.name"] === "checkout-sidecar");
      assert.ok(routerSpan, "a router span, named by OTEL_SERVICE_NAME's default");
      assert.equal(sidecarSpans.length, 2, "two sidecar spans named by OTEL_SERVICE_NAME");
      for (const s of spans) {
        assert.equal(s.name, "GET", "span names are methods, never raw paths");
        assert.equal(s.kind, 2, "SERVER");
        assert.equal(s.resource["deployment.environment"], "e2e");
        assert.equal(s.resource["service.namespace"], "shop");
        assert.equal(s.scope, "tasklb");
      }
      const outer = sidecarSpans.find((s) => s.attributes["tasklb.call.top_level"] === true)!;
      const nested = sidecarSpans.find((s) => s.attributes["tasklb.call.top_level"] === false)!;
      assert.equal(outer.parentSpanId, routerSpan.spanId);
      assert.equal(nested.parentSpanId, outer.spanId);
      assert.equal(routerSpan.attributes["tasklb.algorithm"], "adaptive");
      assert.match(String(routerSpan.attributes["tasklb.server"]), /^http:\/\/127\.0\.0\.1:\d+/);
      assert.ok(routerSpan.events.some((e) => e.name === "tasklb.decision"));
      const seen = app.requests.find(
        (r) => r.url.startsWith("/outer") && parseTraceparent(r.header("traceparent"))?.traceId === id,
      );
      assert.equal(parseTraceparent(seen?.header("traceparent"))?.parentId, outer.spanId);
    }

    // Metrics: the sidecar's task-seconds arrive with its resource; the router's request counter too.
    const gotMetrics = await receiver.waitFor(
      () =>
        receiver.metrics.some(
          (m) => m.name === "tasklb_sidecar_task_seconds" && m.dataPoints.some((p) => p.value > 0),
        ) && receiver.metrics.some((m) => m.name === "tasklb_router_requests"),
      15_000,
    );
    assert.ok(
      gotMetrics,
      `metrics received: ${[...new Set(receiver.metrics.map((m) => m.name))].join(", ")}`,
    );
    const ts = receiver.metrics.find((m) => m.name === "tasklb_sidecar_task_seconds")!;
    assert.equal(ts.kind, "sum");
    assert.equal(ts.resource["service.name"], "checkout-sidecar");
    const hist = receiver.metrics.find((m) => m.name === "tasklb_sidecar_call_duration_seconds");
    assert.equal(hist?.kind, "histogram");
  });
}
