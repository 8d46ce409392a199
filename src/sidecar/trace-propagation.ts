/**
 * Which causality ID a call has, and which trace headers go to the app (W3C Trace Context).
 *
 * - Exactly one valid `traceparent`: its trace-id is the causality ID, and `traceparent` and
 *   `tracestate` go to the app unchanged — unless telemetry opened a span for the call, in which
 *   case the app's parent becomes that span (`00-<trace-id>-<span-id>-<flags>`) and `tracestate`
 *   still passes unchanged (it belongs to the same trace).
 * - Absent, invalid, or repeated (several `traceparent` fields cannot be told apart): a new trace
 *   is started and its `traceparent` injected, so an app that propagates trace context carries the
 *   same ID into its own calls back through this sidecar; `tracestate` is dropped, as it belonged
 *   to no valid trace.
 */
import {
  formatTraceparent,
  newSpanId,
  newTraceId,
  parseTraceparent,
  FLAG_SAMPLED,
} from "../shared/trace-context.js";

export interface IncomingTrace {
  /** The causality ID. */
  readonly traceId: string;
  /** The caller's span (the incoming parent-id); undefined when the sidecar started the trace. */
  readonly parentSpanId: string | undefined;
  readonly flags: number;
  /** True when a valid incoming `traceparent` was found (and is kept). */
  readonly continued: boolean;
}

/** Header names the caller must not copy when the trace headers are rewritten. */
export const SKIP_TRACEPARENT: ReadonlySet<string> = new Set(["traceparent"]);
export const SKIP_TRACE_HEADERS: ReadonlySet<string> = new Set(["traceparent", "tracestate"]);

/** Reads the trace context from a flat raw header list (one pass, no header object). */
export function readIncomingTrace(raw: readonly string[]): IncomingTrace {
  let value: string | undefined;
  let count = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 11 && name.toLowerCase() === "traceparent") {
      value = raw[i + 1];
      count++;
    }
  }
  const parsed = count === 1 ? parseTraceparent(value) : undefined;
  if (parsed !== undefined) {
    return { traceId: parsed.traceId, parentSpanId: parsed.parentId, flags: parsed.flags, continued: true };
  }
  return { traceId: newTraceId(), parentSpanId: undefined, flags: FLAG_SAMPLED, continued: false };
}

/**
 * The headers to skip when copying the request's headers (undefined: copy all), given the span id
 * telemetry chose for this hop (undefined: none).
 */
export function traceHeadersToSkip(
  trace: IncomingTrace,
  spanId: string | undefined,
): ReadonlySet<string> | undefined {
  if (!trace.continued) return SKIP_TRACE_HEADERS;
  return spanId === undefined ? undefined : SKIP_TRACEPARENT;
}

/**
 * Appends the `traceparent` to send to the app, when it differs from the incoming one. `sampled`
 * (from telemetry) overrides the incoming sampled flag.
 */
export function appendTraceparent(
  trace: IncomingTrace,
  spanId: string | undefined,
  sampled: boolean | undefined,
  out: string[],
): void {
  if (trace.continued && spanId === undefined) return;
  let flags = trace.flags;
  if (sampled !== undefined) flags = sampled ? flags | FLAG_SAMPLED : flags & ~FLAG_SAMPLED;
  out.push("traceparent", formatTraceparent(trace.traceId, spanId ?? newSpanId(), flags));
}
