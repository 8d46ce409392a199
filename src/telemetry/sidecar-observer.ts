/**
 * The sidecar's call observer: one SERVER span per inbound call (child of the incoming
 * `traceparent`, or the root of the trace the sidecar started, in both cases with the causality ID
 * as trace id) and the per-call metrics. The returned scope names the span as the parent the sidecar
 * forwards to the app, so the app's own spans nest under it.
 *
 * Without tracing, every call gets the same shared scope that only records the duration histogram:
 * no allocation, and no `spanId`, so the forwarded `traceparent` is left as it was.
 */
import { SpanStatusCode, TraceFlags, type Attributes, type Span } from "@opentelemetry/api";
import type {
  CallScope,
  SidecarCallEnd,
  SidecarCallObserver,
  SidecarCallStart,
} from "../shared/call-observer.js";
import type { SidecarCallMetrics } from "./metrics.js";
import { httpMethodAttributes, startServerSpan, targetPath, type TracerHandle } from "./server-span.js";

export interface SidecarObserverDeps {
  /** Absent: no spans. */
  readonly tracing?: TracerHandle;
  /** Absent: no per-call metrics. */
  readonly metrics?: SidecarCallMetrics;
}

/** Attributes common to the sidecar's and the router's SERVER spans at start. */
export function startAttributes(
  call: Pick<SidecarCallStart, "method" | "target" | "remoteAddress"> & Partial<SidecarCallStart>,
): { name: string; attributes: Attributes } {
  const attributes: Attributes = {};
  const name = httpMethodAttributes(call.method, attributes);
  attributes["url.path"] = targetPath(call.target);
  if (call.remoteAddress !== undefined) {
    attributes["client.address"] = call.remoteAddress;
    attributes["network.peer.address"] = call.remoteAddress;
  }
  if (call.remotePort !== undefined) attributes["network.peer.port"] = call.remotePort;
  if (call.serverAddress !== undefined) attributes["server.address"] = call.serverAddress;
  if (call.serverPort !== undefined) attributes["server.port"] = call.serverPort;
  return { name, attributes };
}

/** Span status and error attributes at the end of a call, the same for both roles. */
export function endStatus(span: Span, status: number, outcome: string): void {
  if (status > 0) span.setAttribute("http.response.status_code", status);
  if (outcome !== "ok") span.setAttribute("error.type", outcome);
  else if (status >= 500) span.setAttribute("error.type", String(status));
  // Semantic conventions for SERVER spans: 5xx is an error, 4xx is the client's; a call that got no
  // response because the proxy or the app failed is an error, a client that went away is not ours.
  if (status >= 500 || (status === 0 && outcome !== "ok" && outcome !== "aborted")) {
    span.setStatus({ code: SpanStatusCode.ERROR });
  }
}

export function createSidecarObserver(deps: SidecarObserverDeps): SidecarCallObserver {
  const { tracing, metrics } = deps;
  const recordOnly = (e: SidecarCallEnd): void => metrics?.recordCall(e);
  const metricsOnly: CallScope<SidecarCallEnd> = { end: recordOnly };

  return {
    onCallStart(call) {
      if (!tracing) return metricsOnly;
      const { name, attributes } = startAttributes(call);
      if (call.upgrade) attributes["tasklb.call.upgrade"] = true;
      const span = startServerSpan(tracing, name, call, attributes);
      const ctx = span.spanContext();
      const sampled = (ctx.traceFlags & TraceFlags.SAMPLED) !== 0;
      if (!span.isRecording()) {
        // Not sampled. With an incoming parent, leave its traceparent (and its decision) alone;
        // on a trace the sidecar started, tell the app it is not sampled either.
        return call.parentSpanId !== undefined
          ? metricsOnly
          : { spanId: ctx.spanId, sampled, end: recordOnly };
      }
      let ended = false;
      return {
        spanId: ctx.spanId,
        sampled,
        end(e) {
          if (ended) return;
          ended = true;
          metrics?.recordCall(e);
          span.setAttribute("tasklb.call.top_level", e.topLevel);
          span.setAttribute("tasklb.call.duration_ms", e.durationMs);
          endStatus(span, e.status, e.outcome);
          span.end();
        },
      };
    },
  };
}
