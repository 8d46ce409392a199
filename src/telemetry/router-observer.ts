/**
 * The router's request observer: one SERVER span per request covering the routing decision and
 * every attempt. The span id is returned so the router forwards it as the parent in `traceparent`,
 * which makes the chosen sidecar's SERVER span a child of it. Each pick is a `tasklb.decision` event
 * and each failed attempt a `tasklb.failover` event; the final server, its score, the algorithm and
 * the number of attempts are attributes. One span per request, not one per attempt: the span id the
 * sidecars see has to be known before the first pick.
 */
import { TraceFlags, type Span } from "@opentelemetry/api";
import type { RouterRequestObserver, RouterRequestScope } from "../shared/call-observer.js";
import type { RouterRequestMetrics } from "./metrics.js";
import type { TracerHandle } from "./server-span.js";
import { startServerSpan } from "./server-span.js";
import { endStatus, startAttributes } from "./sidecar-observer.js";

export interface RouterObserverDeps {
  readonly tracing?: TracerHandle;
  readonly metrics?: RouterRequestMetrics;
}

export function createRouterObserver(deps: RouterObserverDeps): RouterRequestObserver {
  const { tracing, metrics } = deps;

  return {
    onRequestStart(req) {
      let span: Span | undefined;
      let spanId: string | undefined;
      let sampled: boolean | undefined;
      if (tracing) {
        const { name, attributes } = startAttributes(req);
        attributes["tasklb.algorithm"] = req.algorithm;
        attributes["tasklb.pool"] = req.pool;
        const s = startServerSpan(tracing, name, req, attributes);
        const ctx = s.spanContext();
        if (s.isRecording()) {
          span = s;
          spanId = ctx.spanId;
          sampled = (ctx.traceFlags & TraceFlags.SAMPLED) !== 0;
        } else if (req.parentSpanId === undefined) {
          // A trace the router started and the sampler dropped: tell the sidecars and the app.
          spanId = ctx.spanId;
          sampled = false;
        }
      }
      if (!span && !metrics && spanId === undefined) return undefined;
      const algorithm = req.algorithm;
      let ended = false;
      const scope: RouterRequestScope = {
        ...(spanId !== undefined ? { spanId, sampled: sampled ?? false } : {}),
        decision(server, score) {
          metrics?.picked(algorithm, server);
          if (!span || ended) return;
          span.setAttribute("tasklb.server", server);
          if (score !== undefined && Number.isFinite(score)) span.setAttribute("tasklb.score", score);
          span.addEvent(
            "tasklb.decision",
            score !== undefined && Number.isFinite(score)
              ? { "tasklb.server": server, "tasklb.score": score }
              : { "tasklb.server": server },
          );
        },
        failover(server, code) {
          metrics?.failedOver(server, code);
          if (!span || ended) return;
          span.addEvent("tasklb.failover", { "tasklb.server": server, "error.type": code });
        },
        end(e) {
          if (ended) return;
          ended = true;
          metrics?.ended(e);
          if (!span) return;
          span.setAttribute("tasklb.attempts", e.attempts);
          span.setAttribute("tasklb.retries", Math.max(0, e.attempts - 1));
          if (e.server !== undefined) span.setAttribute("tasklb.server", e.server);
          span.setAttribute("tasklb.request.duration_ms", e.durationMs);
          endStatus(span, e.status, e.outcome);
          span.end();
        },
      };
      return scope;
    },
    onPoll(poll) {
      metrics?.polled(poll);
    },
  };
}
