/**
 * Starting a SERVER span whose trace id is the call's causality ID.
 *
 * With an incoming `traceparent` the span is a child of that remote parent. When the proxy started
 * the trace itself there is no parent, yet the span's trace id must still equal the causality ID
 * the proxy already forwarded: a remote-parent trick would leave a dangling parent id in every
 * backend. Instead the tracer's {@link CausalityIdGenerator} hands out the wanted trace id for exactly
 * the one synchronous `startSpan` call that asks for it, so the span is a true root of that trace.
 */
import {
  ROOT_CONTEXT,
  SpanKind,
  TraceFlags,
  trace,
  type Attributes,
  type Span,
  type Tracer,
} from "@opentelemetry/api";
import type { IdGenerator } from "@opentelemetry/sdk-trace-base";
import { newSpanId, newTraceId } from "../shared/trace-context.js";

export class CausalityIdGenerator implements IdGenerator {
  #next: string | undefined;

  /** Runs `fn` (which must start exactly one root span synchronously) with `traceId` as the next root trace id. */
  withTraceId<T>(traceId: string, fn: () => T): T {
    this.#next = traceId;
    try {
      return fn();
    } finally {
      this.#next = undefined;
    }
  }

  generateTraceId(): string {
    const id = this.#next;
    if (id !== undefined) {
      this.#next = undefined;
      return id;
    }
    return newTraceId();
  }

  generateSpanId(): string {
    return newSpanId();
  }
}

export interface TracerHandle {
  readonly tracer: Tracer;
  readonly ids: CausalityIdGenerator;
}

export interface IncomingTrace {
  readonly traceId: string;
  readonly parentSpanId: string | undefined;
  readonly sampled: boolean;
}

export function startServerSpan(
  handle: TracerHandle,
  name: string,
  incoming: IncomingTrace,
  attributes: Attributes,
): Span {
  const options = { kind: SpanKind.SERVER, attributes };
  if (incoming.parentSpanId !== undefined) {
    const parent = trace.setSpanContext(ROOT_CONTEXT, {
      traceId: incoming.traceId,
      spanId: incoming.parentSpanId,
      traceFlags: incoming.sampled ? TraceFlags.SAMPLED : TraceFlags.NONE,
      isRemote: true,
    });
    return handle.tracer.startSpan(name, options, parent);
  }
  return handle.ids.withTraceId(incoming.traceId, () => handle.tracer.startSpan(name, options, ROOT_CONTEXT));
}

const KNOWN_METHODS = new Set([
  "GET",
  "HEAD",
  "POST",
  "PUT",
  "DELETE",
  "CONNECT",
  "OPTIONS",
  "TRACE",
  "PATCH",
]);

/**
 * HTTP semantic conventions: a known method as is, anything else as `_OTHER` (with the original
 * kept in `http.request.method_original`), so a client cannot mint span names or label values.
 */
export function httpMethodAttributes(method: string, into: Attributes): string {
  if (KNOWN_METHODS.has(method)) {
    into["http.request.method"] = method;
    return method;
  }
  into["http.request.method"] = "_OTHER";
  into["http.request.method_original"] = method.slice(0, 32);
  return "HTTP";
}

/** The path of a request target, without the query (which may carry secrets) and bounded in length. */
export function targetPath(target: string): string {
  let path = target;
  if (!path.startsWith("/")) {
    // Absolute-form (`GET http://host/p`) or authority-form (CONNECT) targets.
    try {
      path = new URL(target).pathname;
    } catch {
      return "";
    }
  }
  const q = path.indexOf("?");
  if (q >= 0) path = path.slice(0, q);
  return path.length > 256 ? path.slice(0, 256) : path;
}
