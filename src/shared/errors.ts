/**
 * Every error tasklb reports has a stable string code, listed here once with the HTTP status it maps
 * to. Code elsewhere matches on `code`, never on message text. A response the proxy made itself
 * (rather than the app) carries the {@link PROXY_ERROR_HEADER} header with the code.
 */

export const PROXY_ERROR_HEADER = "x-tasklb-error";

export const ErrorCodes = {
  /** The app (sidecar) or the chosen server (router) refused or reset the connection. */
  UPSTREAM_UNREACHABLE: { status: 502, message: "the upstream server could not be reached" },
  /** The upstream failed after the request was sent (reset, malformed response). */
  UPSTREAM_ERROR: { status: 502, message: "the upstream server failed to answer" },
  /** The upstream did not send response headers in time. */
  UPSTREAM_TIMEOUT: { status: 504, message: "the upstream server did not answer in time" },
  /** The sidecar's app is known to be down (readiness failing) or the sidecar is draining. */
  UPSTREAM_UNAVAILABLE: { status: 503, message: "the upstream server is unavailable" },
  /** Max concurrent calls reached: the call was shed. Sent with Retry-After. */
  OVERLOADED: { status: 503, message: "too many concurrent calls; retry later" },
  /** The router has no server in rotation for this request. */
  NO_SERVER: { status: 503, message: "no server is available to take this request" },
  /** The router is draining and takes no new requests. */
  DRAINING: { status: 503, message: "the proxy is shutting down" },
  /** A request loop was detected (our own Via token came back to us). */
  LOOP_DETECTED: { status: 508, message: "request loop detected" },
  /** The control/admin API was called without the shared token. */
  UNAUTHORIZED: { status: 401, message: "missing or wrong token" },
  /** A malformed request to the control/admin API. */
  BAD_REQUEST: { status: 400, message: "malformed request" },
  NOT_FOUND: { status: 404, message: "no such endpoint" },
  METHOD_NOT_ALLOWED: { status: 405, message: "method not allowed" },
  /**
   * The router already holds `--max-registrations` self-registered servers: a new one is refused
   * (renewals are not). 507 Insufficient Storage, not 429: the limit is the router's capacity, not
   * the caller's request rate, and it frees up as entries expire. Sent with Retry-After.
   */
  REGISTRY_FULL: { status: 507, message: "the router's registry of servers is full" },
  /** Bad configuration: the process exits with this code's message. */
  CONFIG_INVALID: { status: 500, message: "invalid configuration" },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ErrorCodes;

export class TasklbError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  constructor(code: ErrorCode, message?: string, options?: { cause?: unknown }) {
    super(message ?? ErrorCodes[code].message, options);
    this.name = "TasklbError";
    this.code = code;
    this.status = ErrorCodes[code].status;
  }
}

/** Thrown by configuration loaders; the CLI prints the message and exits non-zero. */
export class ConfigError extends TasklbError {
  constructor(message: string) {
    super("CONFIG_INVALID", message);
    this.name = "ConfigError";
  }
}

/** undici error codes that mean "no byte of the request reached the upstream app". */
const CONNECT_CODES = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_SOCKET_CONNECT",
]);
const TIMEOUT_CODES = new Set(["UND_ERR_HEADERS_TIMEOUT", "UND_ERR_BODY_TIMEOUT", "ETIMEDOUT"]);

/** Classifies an upstream (undici/net) error into one of our codes. */
export function classifyUpstreamError(err: unknown): ErrorCode {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === "string") {
    if (CONNECT_CODES.has(code)) return "UPSTREAM_UNREACHABLE";
    if (TIMEOUT_CODES.has(code)) return "UPSTREAM_TIMEOUT";
  }
  return "UPSTREAM_ERROR";
}

/** True when the error proves the upstream never received the request (safe to retry anywhere). */
export function neverReachedUpstream(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && CONNECT_CODES.has(code);
}
