import assert from "node:assert/strict";
import { test } from "node:test";
import { SpanKind, SpanStatusCode } from "@opentelemetry/api";
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { silentLogger } from "../../../src/shared/log.js";
import { newSpanId, newTraceId } from "../../../src/shared/trace-context.js";
import { setupTelemetry } from "../../../src/telemetry/setup.js";

function traced(
  t: { after(fn: () => Promise<void>): void },
  role: "router" | "sidecar",
  memory: InMemorySpanExporter,
) {
  const tel = setupTelemetry({
    role,
    env: {},
    logger: silentLogger,
    spanProcessors: [new SimpleSpanProcessor(memory)],
  });
  t.after(() => tel.shutdown());
  return tel;
}

void test("router span: algorithm, pool, chosen server and score, failovers as events, span id to propagate", (t) => {
  const memory = new InMemorySpanExporter();
  const tel = traced(t, "router", memory);
  const traceId = newTraceId();
  const parent = newSpanId();
  const scope = tel.routerObserver!.onRequestStart({
    method: "POST",
    target: "/jobs/77?x=1",
    traceId,
    parentSpanId: parent,
    sampled: true,
    remoteAddress: "10.1.2.3",
    pool: "default",
    algorithm: "adaptive",
  })!;
  scope.decision("http://10.0.0.1:8080", 0.75);
  scope.failover("http://10.0.0.1:8080", "UPSTREAM_UNREACHABLE");
  scope.decision("http://10.0.0.2:8080", 1.5);
  scope.end({ durationMs: 12, status: 201, outcome: "ok", server: "http://10.0.0.2:8080", attempts: 2 });

  const [span] = memory.getFinishedSpans();
  assert.ok(span);
  assert.equal(span.name, "POST");
  assert.equal(span.kind, SpanKind.SERVER);
  assert.equal(span.spanContext().traceId, traceId);
  assert.equal(span.parentSpanContext?.spanId, parent);
  assert.equal(scope.spanId, span.spanContext().spanId);
  assert.equal(span.attributes["tasklb.algorithm"], "adaptive");
  assert.equal(span.attributes["tasklb.pool"], "default");
  assert.equal(span.attributes["tasklb.server"], "http://10.0.0.2:8080");
  assert.equal(span.attributes["tasklb.score"], 1.5);
  assert.equal(span.attributes["tasklb.attempts"], 2);
  assert.equal(span.attributes["tasklb.retries"], 1);
  assert.equal(span.attributes["url.path"], "/jobs/77");
  assert.equal(span.attributes["http.response.status_code"], 201);
  assert.deepEqual(
    span.events.map((e) => [e.name, e.attributes]),
    [
      ["tasklb.decision", { "tasklb.server": "http://10.0.0.1:8080", "tasklb.score": 0.75 }],
      ["tasklb.failover", { "tasklb.server": "http://10.0.0.1:8080", "error.type": "UPSTREAM_UNREACHABLE" }],
      ["tasklb.decision", { "tasklb.server": "http://10.0.0.2:8080", "tasklb.score": 1.5 }],
    ],
  );
});

void test("router span without a server: NO_SERVER is an error, no score when the algorithm has none", (t) => {
  const memory = new InMemorySpanExporter();
  const tel = traced(t, "router", memory);
  const scope = tel.routerObserver!.onRequestStart({
    method: "GET",
    target: "/",
    traceId: newTraceId(),
    parentSpanId: undefined,
    sampled: true,
    remoteAddress: undefined,
    pool: "default",
    algorithm: "random",
  })!;
  scope.end({ durationMs: 1, status: 503, outcome: "NO_SERVER", server: undefined, attempts: 0 });
  const [span] = memory.getFinishedSpans();
  assert.equal(span?.parentSpanContext, undefined);
  assert.equal(span?.status.code, SpanStatusCode.ERROR);
  assert.equal(span?.attributes["error.type"], "NO_SERVER");
  assert.equal(span?.attributes["tasklb.score"], undefined);
});

void test("router → sidecar → app → nested call: one trace, each span the child of the one before", (t) => {
  // Each process has its own SDK; they share one in-memory exporter here, as a backend would.
  const memory = new InMemorySpanExporter();
  const router = traced(t, "router", memory);
  const sidecar = traced(t, "sidecar", memory);
  const appProvider = traced(t, "sidecar", memory); // stands in for the app's own SDK below

  const traceId = newTraceId();
  const r = router.routerObserver!.onRequestStart({
    method: "GET",
    target: "/page",
    traceId,
    parentSpanId: undefined,
    sampled: true,
    remoteAddress: "127.0.0.1",
    pool: "default",
    algorithm: "adaptive",
  })!;
  r.decision("http://127.0.0.1:8080", 0.1);
  // The sidecar receives traceparent 00-<traceId>-<r.spanId>-01.
  const outer = sidecar.sidecarObserver!.onCallStart({
    method: "GET",
    target: "/page",
    traceId,
    parentSpanId: r.spanId,
    sampled: r.sampled ?? true,
    remoteAddress: "127.0.0.1",
    remotePort: 1,
    serverAddress: "127.0.0.1",
    serverPort: 8080,
    upgrade: false,
  })!;
  // The app receives 00-<traceId>-<outer.spanId>-01 and makes a call back through the sidecar,
  // propagating the context of its own span.
  const appSpan = appProvider.sidecarObserver!.onCallStart({
    method: "GET",
    target: "/page",
    traceId,
    parentSpanId: outer.spanId,
    sampled: true,
    remoteAddress: undefined,
    remotePort: undefined,
    serverAddress: undefined,
    serverPort: undefined,
    upgrade: false,
  })!;
  const nested = sidecar.sidecarObserver!.onCallStart({
    method: "GET",
    target: "/fragment",
    traceId,
    parentSpanId: appSpan.spanId,
    sampled: true,
    remoteAddress: "127.0.0.1",
    remotePort: 2,
    serverAddress: "127.0.0.1",
    serverPort: 8080,
    upgrade: false,
  })!;
  nested.end({ durationMs: 2, topLevel: false, status: 200, outcome: "ok" });
  appSpan.end({ durationMs: 5, topLevel: true, status: 200, outcome: "ok" });
  outer.end({ durationMs: 6, topLevel: true, status: 200, outcome: "ok" });
  r.end({ durationMs: 7, status: 200, outcome: "ok", server: "http://127.0.0.1:8080", attempts: 1 });

  const spans = memory.getFinishedSpans();
  assert.equal(spans.length, 4);
  assert.ok(spans.every((s) => s.spanContext().traceId === traceId));
  const byId = new Map(spans.map((s) => [s.spanContext().spanId, s]));
  const routerSpan = byId.get(r.spanId!)!;
  const outerSpan = byId.get(outer.spanId!)!;
  const nestedSpan = byId.get(nested.spanId!)!;
  assert.equal(routerSpan.parentSpanContext, undefined);
  assert.equal(outerSpan.parentSpanContext?.spanId, r.spanId);
  assert.equal(byId.get(appSpan.spanId!)?.parentSpanContext?.spanId, outer.spanId);
  assert.equal(nestedSpan.parentSpanContext?.spanId, appSpan.spanId);
  assert.equal(outerSpan.attributes["tasklb.call.top_level"], true);
  assert.equal(nestedSpan.attributes["tasklb.call.top_level"], false);
});

void test("router with tracing and metrics off installs no observer", (t) => {
  const tel = setupTelemetry({
    role: "router",
    env: { OTEL_METRICS_EXPORTER: "none" },
    logger: silentLogger,
  });
  t.after(() => tel.shutdown());
  assert.equal(tel.routerObserver, undefined);
  assert.equal(tel.sidecarObserver, undefined);
});
