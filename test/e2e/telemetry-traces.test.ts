/**
 * Spans from real servers on loopback: a client calls the router, which forwards to a sidecar in
 * front of a test app; the app's `/outer` makes nested calls back through the sidecar carrying the
 * traceparent it received. Telemetry records into an in-memory exporter.
 */
import assert from "node:assert/strict";
import { test, type TestContext } from "node:test";
import { SpanKind } from "@opentelemetry/api";
import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { silentLogger } from "../../src/shared/log.js";
import { parseTraceparent } from "../../src/shared/trace-context.js";
import { setupTelemetry } from "../../src/telemetry/setup.js";
import { startTestApp } from "../helpers/app.js";
import { startRouter, waitInRotation } from "../helpers/router.js";
import { send, startSidecar, waitFor } from "../helpers/sidecar.js";

async function tracedCluster(t: TestContext, env: Record<string, string> = {}) {
  const memory = new InMemorySpanExporter();
  const app = await startTestApp();
  t.after(() => app.close());
  const sidecarTel = setupTelemetry({
    role: "sidecar",
    env,
    logger: silentLogger,
    spanProcessors: [new SimpleSpanProcessor(memory)],
  });
  t.after(() => sidecarTel.shutdown());
  const sidecar = await startSidecar(t, app.url, {}, { observer: sidecarTel.sidecarObserver });
  app.callbackUrl = sidecar.url;
  const routerTel = setupTelemetry({
    role: "router",
    env,
    logger: silentLogger,
    spanProcessors: [new SimpleSpanProcessor(memory)],
  });
  t.after(() => routerTel.shutdown());
  const router = await startRouter(t, ["--server", `${sidecar.url}=${sidecar.controlUrl}`], {
    observer: routerTel.routerObserver,
  });
  await waitInRotation(router.adminUrl, [sidecar.url]);
  return { memory, app, sidecar, router };
}

const serverSpans = (memory: InMemorySpanExporter, traceId: string): ReadableSpan[] =>
  memory.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);

void test("router → sidecar → app → nested calls: one trace, each span the child of the one before", async (t) => {
  const { memory, app, router } = await tracedCluster(t);
  const res = await send(router.url, { path: "/outer?ms=10&inner=2&innerMs=5" });
  assert.equal(res.status, 200);

  const outerSeen = app.requests.find((r) => r.url.startsWith("/outer"));
  const tp = parseTraceparent(outerSeen?.header("traceparent"));
  assert.ok(tp, "the app got a valid traceparent");
  const spans = await waitFor("router, sidecar and two nested spans", () => {
    const s = serverSpans(memory, tp.traceId);
    return s.length === 4 ? s : undefined;
  });
  const routerSpan = spans.find(
    (s) => s.instrumentationScope.name === "tasklb" && "tasklb.algorithm" in s.attributes,
  );
  const sidecarSpans = spans.filter((s) => s !== routerSpan);
  assert.ok(routerSpan);
  assert.equal(
    routerSpan.parentSpanContext,
    undefined,
    "the client sent no traceparent: the router span is the root",
  );
  assert.equal(routerSpan.kind, SpanKind.SERVER);
  assert.equal(routerSpan.name, "GET");
  assert.equal(routerSpan.attributes["tasklb.algorithm"], "adaptive");

  // The app's parent is the sidecar's span, whose parent is the router's span.
  const outer = sidecarSpans.find((s) => s.spanContext().spanId === tp.parentId);
  assert.ok(outer, "the traceparent the app saw names the sidecar's span");
  assert.equal(outer.parentSpanContext?.spanId, routerSpan.spanContext().spanId);
  assert.equal(outer.attributes["tasklb.call.top_level"], true);
  assert.equal(outer.attributes["url.path"], "/outer");
  assert.equal(outer.name, "GET");

  // The nested calls came back in with the app's traceparent: children of the outer sidecar span.
  const nested = sidecarSpans.filter((s) => s !== outer);
  assert.equal(nested.length, 2);
  for (const n of nested) {
    assert.equal(n.parentSpanContext?.spanId, outer.spanContext().spanId);
    assert.equal(n.attributes["tasklb.call.top_level"], false);
    assert.equal(n.attributes["url.path"], "/slow");
    assert.equal(n.attributes["http.response.status_code"], 200);
  }
  // And the app saw each nested call with the nested span as parent.
  const slowParents = app.requests
    .filter((r) => r.url.startsWith("/slow"))
    .map((r) => parseTraceparent(r.header("traceparent"))?.parentId)
    .sort();
  assert.deepEqual(slowParents, nested.map((n) => n.spanContext().spanId).sort());
});

void test("a client's traceparent: the router span is its child and the trace id is kept end to end", async (t) => {
  const { memory, app, router } = await tracedCluster(t);
  const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
  const res = await send(router.url, {
    path: "/echo",
    headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` },
  });
  assert.equal(res.status, 200);
  const spans = await waitFor("router and sidecar spans", () => {
    const s = serverSpans(memory, traceId);
    return s.length === 2 ? s : undefined;
  });
  const routerSpan = spans.find((s) => s.parentSpanContext?.spanId === "00f067aa0ba902b7");
  assert.ok(routerSpan, "the router span's parent is the client's span");
  const sidecarSpan = spans.find((s) => s !== routerSpan)!;
  assert.equal(sidecarSpan.parentSpanContext?.spanId, routerSpan.spanContext().spanId);
  const seen = parseTraceparent(app.requests.find((r) => r.url === "/echo")?.header("traceparent"));
  assert.equal(seen?.traceId, traceId);
  assert.equal(seen?.parentId, sidecarSpan.spanContext().spanId);
});

void test("sampling off: no spans, and the app sees the traceparent the client sent", async (t) => {
  const { memory, app, router } = await tracedCluster(t, { OTEL_TRACES_SAMPLER: "always_off" });
  const sent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  const res = await send(router.url, { path: "/echo", headers: { traceparent: sent } });
  assert.equal(res.status, 200);
  assert.equal(app.requests.find((r) => r.url === "/echo")?.header("traceparent"), sent);
  assert.equal(memory.getFinishedSpans().length, 0);
});
