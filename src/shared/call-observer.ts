/**
 * The seam between the request path and telemetry. The sidecar and the router call an observer at
 * the start of each call and the scope it returns at the end; telemetry (src/telemetry/) implements
 * it with OpenTelemetry spans and histograms. With telemetry off no observer is installed and the
 * request path pays one `undefined` check. Observers are synchronous, cheap and must never throw
 * into the request path (the callers guard anyway).
 */

/** A call as the sidecar sees it when it starts. */
export interface SidecarCallStart {
  readonly method: string;
  /** Request target as received (path and query). Telemetry must not use it as a span name. */
  readonly target: string;
  /** Causality ID = W3C trace-id (incoming, or newly started). */
  readonly traceId: string;
  /** The incoming traceparent's parent-id; undefined when the sidecar started the trace. */
  readonly parentSpanId: string | undefined;
  /** Incoming sampled flag (true when the sidecar started the trace). */
  readonly sampled: boolean;
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  readonly serverAddress: string | undefined;
  readonly serverPort: number | undefined;
  /** HTTP Upgrade (WebSocket) connection, timed as one call. */
  readonly upgrade: boolean;
}

export interface SidecarCallEnd {
  /** Measured duration on the monotonic clock. */
  readonly durationMs: number;
  /** False when another call with the same causality ID enclosed it (its time is not added). */
  readonly topLevel: boolean;
  /** Status the client got (0 when none was sent). */
  readonly status: number;
  /** "ok", "aborted" or an error code from shared/errors.ts. */
  readonly outcome: string;
}

export interface CallScope<End> {
  /** The span id the forwarded `traceparent` should carry as parent; undefined keeps the incoming one. */
  readonly spanId?: string;
  /** Sampled flag to forward with `spanId`. */
  readonly sampled?: boolean;
  /** Called exactly once. */
  end(end: End): void;
}

export interface SidecarCallObserver {
  /** `call` may read the request lazily: read what you need during this call, do not keep it. */
  onCallStart(call: SidecarCallStart): CallScope<SidecarCallEnd> | undefined;
}

/** A request as the router sees it when it starts. */
export interface RouterRequestStart {
  readonly method: string;
  readonly target: string;
  readonly traceId: string;
  readonly parentSpanId: string | undefined;
  readonly sampled: boolean;
  readonly remoteAddress: string | undefined;
  readonly pool: string;
  readonly algorithm: string;
}

export interface RouterRequestEnd {
  readonly durationMs: number;
  readonly status: number;
  readonly outcome: string;
  /** Server that answered (data URL), if any. */
  readonly server: string | undefined;
  readonly attempts: number;
}

export interface RouterRequestScope extends CallScope<RouterRequestEnd> {
  /** The balancer chose `server` (with its score, when the algorithm has one). */
  decision(server: string, score: number | undefined): void;
  /** An attempt on `server` failed with `code`; the router moves on to another server. */
  failover(server: string, code: string): void;
}

/** One poll of a sidecar's `GET /v1/load` by the router. */
export interface RouterPoll {
  /** The server polled (its data URL, as in `RouterRequestEnd.server`). */
  readonly server: string;
  /** Time from sending the poll to having the parsed report (or the failure). */
  readonly durationMs: number;
  /** Undefined when a valid report arrived; else a short stable reason (an error code, "timeout", "invalid"). */
  readonly error: string | undefined;
}

export interface RouterRequestObserver {
  onRequestStart(req: RouterRequestStart): RouterRequestScope | undefined;
  /** Optional: called after every poll of a sidecar's load report (for poll latency and failure metrics). */
  onPoll?(poll: RouterPoll): void;
}
