import assert from "node:assert/strict";
import { test } from "node:test";
import { SpanKind, SpanStatusCode } from "@opentelemetry/api";
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import type { SidecarCallStart } from "../../../src/shared/call-observer.js";
import { silentLogger } from "../../../src/shared/log.js";
import { newSpanId, newTraceId } from "../../../src/shared/trace-context.js";
import { setupTelemetry } from "../../../src/telemetry/setup.js";

function traced(t: { after(fn: () => Promise<void>): void }, env: Record<string, string> = {}) {
  const memory = new InMemorySpanExporter();
  const tel = setupTelemetry({
    role: "sidecar",
    env,
    logger: silentLogger,
    spanProcessors: [new SimpleSpanProcessor(memory)],
  });
  t.after(() => tel.shutdown());
  return { tel, memory };
}

function call(over: Partial<SidecarCallStart> = {}): SidecarCallStart {
  return {
    method: "GET",
    target: "/orders/12345?token=secret",
    traceId: newTraceId(),
    parentSpanId: undefined,
    sampled: true,
    remoteAddress: "127.0.0.2",
    remotePort: 40000,
    serverAddress: "127.0.0.1",
    serverPort: 8080,
    upgrade: false,
    ...over,
  };
}

void test("a call with an incoming traceparent gets a SERVER span that is its child, named by method only", (t) => {
  const { tel, memory } = traced(t);
  const observer = tel.sidecarObserver!;
  const parent = newSpanId();
  const c = call({ parentSpanId: parent });
  const scope = observer.onCallStart(c)!;
  scope.end({ durationMs: 42.5, topLevel: true, status: 200, outcome: "ok" });

  const [span] = memory.getFinishedSpans();
  assert.ok(span);
  assert.equal(span.name, "GET");
  assert.equal(span.kind, SpanKind.SERVER);
  assert.equal(span.spanContext().traceId, c.traceId);
  assert.equal(span.parentSpanContext?.spanId, parent);
  assert.equal(span.parentSpanContext?.isRemote, true);
  // The scope names this span as the parent the app must see.
  assert.equal(scope.spanId, span.spanContext().spanId);
  assert.equal(scope.sampled, true);
  assert.deepEqual(span.attributes, {
    "http.request.method": "GET",
    "url.path": "/orders/12345",
    "client.address": "127.0.0.2",
    "network.peer.address": "127.0.0.2",
    "network.peer.port": 40000,
    "server.address": "127.0.0.1",
    "server.port": 8080,
    "tasklb.call.top_level": true,
    "tasklb.call.duration_ms": 42.5,
    "http.response.status_code": 200,
  });
  assert.equal(span.status.code, SpanStatusCode.UNSET);
});

void test("a trace the sidecar started: the span is a root whose trace id is the causality ID", (t) => {
  const { tel, memory } = traced(t);
  const c = call();
  const scope = tel.sidecarObserver!.onCallStart(c)!;
  scope.end({ durationMs: 1, topLevel: true, status: 204, outcome: "ok" });
  const [span] = memory.getFinishedSpans();
  assert.equal(span?.spanContext().traceId, c.traceId);
  assert.equal(span?.parentSpanContext, undefined);
  // Later roots without a given id still get fresh ones (the id is used once).
  const other = tel.sidecarObserver!.onCallStart(call({ traceId: newTraceId() }))!;
  other.end({ durationMs: 1, topLevel: true, status: 200, outcome: "ok" });
  assert.notEqual(memory.getFinishedSpans()[1]?.spanContext().traceId, c.traceId);
});

void test("nested calls are marked top_level=false; 5xx and proxy errors are span errors, 4xx and aborts are not", (t) => {
  const { tel, memory } = traced(t);
  const o = tel.sidecarObserver!;
  const traceId = newTraceId();
  const outer = o.onCallStart(call({ traceId }))!;
  const inner = o.onCallStart(call({ traceId, parentSpanId: outer.spanId }))!;
  inner.end({ durationMs: 3, topLevel: false, status: 503, outcome: "ok" });
  outer.end({ durationMs: 9, topLevel: true, status: 404, outcome: "ok" });
  o.onCallStart(call())!.end({ durationMs: 2, topLevel: true, status: 502, outcome: "UPSTREAM_UNREACHABLE" });
  o.onCallStart(call())!.end({ durationMs: 2, topLevel: true, status: 0, outcome: "aborted" });
  o.onCallStart(call())!.end({ durationMs: 2, topLevel: true, status: 0, outcome: "UPSTREAM_ERROR" });

  const [innerSpan, outerSpan, proxyErr, aborted, reset] = memory.getFinishedSpans();
  assert.equal(innerSpan?.attributes["tasklb.call.top_level"], false);
  assert.equal(innerSpan?.parentSpanContext?.spanId, outerSpan?.spanContext().spanId);
  assert.equal(innerSpan?.status.code, SpanStatusCode.ERROR);
  assert.equal(innerSpan?.attributes["error.type"], "503");
  assert.equal(outerSpan?.attributes["tasklb.call.top_level"], true);
  assert.equal(outerSpan?.status.code, SpanStatusCode.UNSET);
  assert.equal(proxyErr?.status.code, SpanStatusCode.ERROR);
  assert.equal(proxyErr?.attributes["error.type"], "UPSTREAM_UNREACHABLE");
  assert.equal(aborted?.status.code, SpanStatusCode.UNSET);
  assert.equal(aborted?.attributes["error.type"], "aborted");
  assert.equal(aborted?.attributes["http.response.status_code"], undefined);
  assert.equal(reset?.status.code, SpanStatusCode.ERROR);
});

void test("a client cannot mint span names: unknown methods become HTTP / _OTHER", (t) => {
  const { tel, memory } = traced(t);
  tel.sidecarObserver!.onCallStart(call({ method: "PURGE-ALL-THE-THINGS" }))!.end({
    durationMs: 1,
    topLevel: true,
    status: 405,
    outcome: "ok",
  });
  const [span] = memory.getFinishedSpans();
  assert.equal(span?.name, "HTTP");
  assert.equal(span?.attributes["http.request.method"], "_OTHER");
  assert.equal(span?.attributes["http.request.method_original"], "PURGE-ALL-THE-THINGS");
});

void test("a scope ends once: a second end neither re-ends the span nor records again", (t) => {
  const { tel, memory } = traced(t);
  const scope = tel.sidecarObserver!.onCallStart(call())!;
  scope.end({ durationMs: 1, topLevel: true, status: 200, outcome: "ok" });
  scope.end({ durationMs: 5, topLevel: false, status: 500, outcome: "ok" });
  assert.equal(memory.getFinishedSpans().length, 1);
  assert.equal(memory.getFinishedSpans()[0]?.attributes["tasklb.call.top_level"], true);
});

void test("sampling: an unsampled parent is respected and its traceparent left alone", (t) => {
  const { tel, memory } = traced(t);
  const scope = tel.sidecarObserver!.onCallStart(call({ parentSpanId: newSpanId(), sampled: false }))!;
  assert.equal(scope.spanId, undefined);
  scope.end({ durationMs: 1, topLevel: true, status: 200, outcome: "ok" });
  assert.equal(memory.getFinishedSpans().length, 0);
});

void test("sampling: a root the ratio sampler drops tells the app it is not sampled", (t) => {
  const { tel, memory } = traced(t, {
    OTEL_TRACES_SAMPLER: "parentbased_traceidratio",
    OTEL_TRACES_SAMPLER_ARG: "0.5",
  });
  // TraceIdRatioBased XORs the trace id's four 32-bit words and compares the result with ratio * 2^32.
  const dropped = tel.sidecarObserver!.onCallStart(call({ traceId: "000000000000000000000000ffffffff" }))!;
  assert.equal(dropped.sampled, false);
  assert.match(dropped.spanId ?? "", /^[0-9a-f]{16}$/);
  dropped.end({ durationMs: 1, topLevel: true, status: 200, outcome: "ok" });
  const kept = tel.sidecarObserver!.onCallStart(call({ traceId: "00000000000000000000000000000001" }))!;
  assert.equal(kept.sampled, true);
  kept.end({ durationMs: 1, topLevel: true, status: 200, outcome: "ok" });
  assert.deepEqual(
    memory.getFinishedSpans().map((s) => s.spanContext().traceId),
    ["00000000000000000000000000000001"],
  );
});

void test("sampling off: no spans, tracing is not installed, and the traceparent is left alone", (t) => {
  const { tel, memory } = traced(t, { OTEL_TRACES_SAMPLER: "always_off" });
  assert.equal(tel.tracing, false);
  // With metrics on, the observer only feeds the duration histogram: one shared scope, no span id.
  const a = tel.sidecarObserver!.onCallStart(call({ parentSpanId: newSpanId() }))!;
  const b = tel.sidecarObserver!.onCallStart(call())!;
  assert.equal(a, b);
  assert.equal(a.spanId, undefined);
  a.end({ durationMs: 1, topLevel: true, status: 200, outcome: "ok" });
  assert.equal(memory.getFinishedSpans().length, 0);
});

void test("no endpoint, no metrics: no observer at all, so the request path does no telemetry work", (t) => {
  const tel = setupTelemetry({
    role: "sidecar",
    env: { OTEL_METRICS_EXPORTER: "none" },
    logger: silentLogger,
  });
  t.after(() => tel.shutdown());
  assert.equal(tel.tracing, false);
  assert.equal(tel.sidecarObserver, undefined);
  const off = setupTelemetry({
    role: "sidecar",
    env: {
      OTEL_TRACES_SAMPLER: "always_off",
      OTEL_METRICS_EXPORTER: "none",
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:9",
    },
    logger: silentLogger,
  });
  t.after(() => off.shutdown());
  assert.equal(off.sidecarObserver, undefined);
  const disabled = setupTelemetry({
    role: "sidecar",
    env: { OTEL_SDK_DISABLED: "true", OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:9" },
    logger: silentLogger,
  });
  assert.equal(disabled.sidecarObserver, undefined);
  assert.equal(disabled.tracing, false);
});
