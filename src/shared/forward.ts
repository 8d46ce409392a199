/**
 * The forwarding step shared by the sidecar and the router: one HTTP exchange relayed to an
 * upstream through an undici dispatcher, streaming both bodies with backpressure and no buffering.
 *
 * It uses undici's raw dispatch handler (onConnect/onHeaders/onData/onComplete/onError) because
 * that is undici's own internal path: raw header buffers, no per-response header object and no
 * stream wrapper. Measured here it is the fastest way to proxy with undici (see BENCHMARKS.md).
 *
 * Lifecycle, guarded so it cannot run twice: the observer's `onResponseStart` fires once with the
 * final status, then `onEnd` fires exactly once with the outcome — "ok", "aborted" (the client
 * went away; the upstream request is aborted too) or an error code. An upstream failure before
 * any response byte is offered to `onUpstreamError` first, which may take the request over (the
 * router retries elsewhere); then this exchange ends silently. A final response can likewise be
 * declined before any of it is written (`declineResponse`: a sidecar's own "never reached the
 * app" answer, which the router retries elsewhere): the upstream request is aborted, and the
 * exchange ends silently too.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Readable } from "node:stream";
import type { Dispatcher } from "undici";
import { classifyUpstreamError, type ErrorCode } from "./errors.js";
import { forwardResponseHeaders } from "./headers.js";
import { writeProxyError } from "./proxy-response.js";

export type ForwardOutcome = "ok" | "aborted" | ErrorCode;

export interface ForwardObserver {
  /**
   * The final (≥ 200) status is known; called before it is written to the client. `out` holds the
   * response headers about to be written (flat [name, value, …]); the observer may append to it
   * (the sidecar's piggybacked load report) without the cost of `res.setHeader`.
   */
  onResponseStart?(status: number, rawHeaders: readonly Buffer[], out: string[]): void;
  /**
   * Called with every final (≥ 200) response before anything of it is handled; keep it cheap (look
   * at `status` first). Return a function to decline the response: the upstream request is
   * aborted (its connection is closed, never reused mid-body; a body stream given to `forward` is
   * destroyed), nothing is written to the client, neither `onResponseStart` nor `onEnd` is called
   * by this exchange, and then the function runs (where the router starts its next attempt).
   * Return undefined to go on as usual.
   */
  declineResponse?(status: number, rawHeaders: readonly Buffer[]): (() => void) | undefined;
  /**
   * The upstream failed before any response byte. Return true to take the request over (nothing
   * has been written to the client, and `onEnd` will not be called by this exchange).
   */
  onUpstreamError?(err: Error): boolean;
  /** Exactly once, when the exchange is over. `status` is what the client got (0 if nothing). */
  onEnd(outcome: ForwardOutcome, status: number, err?: Error): void;
}

export interface ForwardOptions {
  /** Our `Via` entry for responses. */
  readonly via: string;
  /** Response header names (lowercase) to drop, e.g. the sidecar's piggybacked load report. */
  readonly stripResponseHeaders?: ReadonlySet<string>;
  /** Time allowed for the upstream's response headers (→ 504). */
  readonly headersTimeoutMs: number;
  /** Time allowed between response body chunks. */
  readonly bodyTimeoutMs: number;
}

const CLIENT_ABORTED = "TASKLB_CLIENT_ABORTED";
const RESPONSE_DECLINED = "TASKLB_RESPONSE_DECLINED";

/** The exchange currently relaying into a response (the router may run several in turn). */
const HANDLER = Symbol("tasklb.forwardHandler");
type TrackedResponse = ServerResponse & { [HANDLER]?: ForwardHandler };

/**
 * One listener function for every response, instead of a closure per exchange: it finds its
 * exchange through {@link HANDLER}.
 */
function onResponseClose(this: TrackedResponse): void {
  this[HANDLER]?.clientClosed();
}

class ForwardHandler implements Dispatcher.DispatchHandler {
  #abort: ((err?: Error) => void) | undefined;
  #status = 0;
  #ended = false;
  #clientGone = false;
  #resume: (() => void) | undefined;
  /** Body bytes the response still owes by its Content-Length; -1 when it has none. */
  #bodyLeft = -1;
  /** The body's last chunk, kept for `res.end(chunk)` (see onData). */
  #last: Buffer | undefined;
  readonly #res: ServerResponse;
  readonly #opts: ForwardOptions;
  readonly #observer: ForwardObserver;

  constructor(req: IncomingMessage, res: ServerResponse, opts: ForwardOptions, observer: ForwardObserver) {
    this.#res = res;
    this.#opts = opts;
    this.#observer = observer;
    (res as TrackedResponse)[HANDLER] = this;
    res.on("close", onResponseClose);
  }

  /** The response closed: before we finished it, that means the client went away. */
  clientClosed(): void {
    if (this.#ended) return;
    // The response closed before we finished it: the client went away. Abort the upstream call.
    this.#clientGone = true;
    const err = Object.assign(new Error("client aborted the request"), { code: CLIENT_ABORTED });
    if (this.#abort) this.#abort(err);
    else this.#finish("aborted", err);
  }

  #detach(): void {
    this.#res.off("close", onResponseClose);
    const res = this.#res as TrackedResponse;
    if (res[HANDLER] === this) res[HANDLER] = undefined;
  }

  #finish(outcome: ForwardOutcome, err?: Error): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#observer.onEnd(outcome, this.#status, err);
  }

  onConnect(abort: (err?: Error) => void): void {
    if (this.#clientGone) abort(new Error("client aborted the request"));
    else this.#abort = abort;
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    if (this.#clientGone) return false;
    if (statusCode < 200) {
      // 1xx informational: relay Early Hints and Processing as the app sent them. (100 Continue is
      // answered by Node for the client, and `expect` is not forwarded, so the app sends none.)
      if (statusCode === 103) {
        const hints: Record<string, string | string[]> = {};
        for (let i = 0; i < rawHeaders.length; i += 2) {
          const k = rawHeaders[i]!.toString("latin1").toLowerCase();
          const v = rawHeaders[i + 1]!.toString("latin1");
          const prev = hints[k];
          hints[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
        }
        if (hints.link !== undefined) this.#res.writeEarlyHints(hints);
      } else if (statusCode === 102) {
        this.#res.writeProcessing();
      }
      return true;
    }
    const declined = this.#observer.declineResponse?.(statusCode, rawHeaders);
    if (declined !== undefined) {
      this.#ended = true;
      this.#detach();
      // Aborting destroys the socket: the rest of this response (and of the request body) must
      // not be read or sent on a connection that would then be reused.
      this.#abort?.(Object.assign(new Error("response declined"), { code: RESPONSE_DECLINED }));
      declined();
      return false;
    }
    this.#status = statusCode;
    this.#resume = resume;
    const out: string[] = [];
    this.#bodyLeft = forwardResponseHeaders(rawHeaders, this.#opts.via, this.#opts.stripResponseHeaders, out);
    this.#observer.onResponseStart?.(statusCode, rawHeaders, out);
    // writeHead with a flat array keeps repeated fields (Set-Cookie) and their order.
    this.#res.writeHead(statusCode, statusText || undefined, out as unknown as string[][]);
    return true;
  }

  onData(chunk: Buffer): boolean {
    // The chunk that completes a Content-Length body waits for onComplete, which undici calls in
    // the same parse: `res.end(chunk)` sends it without the cork and next-tick flush every
    // `res.write` schedules (a single-chunk response is then one write and nothing more).
    if (this.#last !== undefined) {
      // More data than the length announced (never from undici's parser; kept safe regardless).
      this.#res.write(this.#last);
      this.#last = undefined;
    } else if (chunk.length === this.#bodyLeft) {
      this.#bodyLeft = 0;
      this.#last = chunk;
      return true;
    }
    if (this.#bodyLeft > 0) this.#bodyLeft -= chunk.length;
    if (this.#res.write(chunk)) return true;
    // undici's own resume function: no closure of ours on the backpressure path either.
    this.#res.once("drain", this.#resume!);
    return false;
  }

  onComplete(trailers: string[] | null): void {
    if (trailers && trailers.length > 0) {
      const t: [string, string][] = [];
      for (let i = 0; i < trailers.length; i += 2) t.push([String(trailers[i]), String(trailers[i + 1])]);
      this.#res.addTrailers(t);
    }
    // Mark ended before end(): the 'close' that follows a finished response is not an abort.
    this.#ended = true;
    const last = this.#last;
    this.#last = undefined;
    if (last !== undefined) this.#res.end(last);
    else this.#res.end();
    this.#observer.onEnd("ok", this.#status);
  }

  onError(err: Error): void {
    if (this.#ended) return;
    if (this.#clientGone) {
      this.#finish("aborted", err);
      return;
    }
    const code = classifyUpstreamError(err);
    if (this.#status === 0) {
      if (this.#observer.onUpstreamError?.(err)) {
        this.#ended = true;
        this.#detach();
        return;
      }
      this.#status = 502;
      writeProxyError(this.#res, code, this.#opts.via);
      this.#status = this.#res.statusCode;
    } else {
      // Headers already went out: the only honest signal left is to cut the connection.
      this.#last = undefined;
      this.#res.destroy(err);
    }
    this.#finish(code, err);
  }
}

/**
 * Relays `req` to `dispatcher` with the given prepared headers. `body` says whether the request
 * carries a body (Content-Length > 0 or Transfer-Encoding): `true` streams it from `req`; a
 * Readable streams that instead (the router's relay, which an aborted attempt may destroy without
 * destroying `req`, so that another attempt can still send the body).
 */
export function forward(
  req: IncomingMessage,
  res: ServerResponse,
  dispatcher: Dispatcher,
  headers: string[],
  body: boolean | Readable,
  opts: ForwardOptions,
  observer: ForwardObserver,
): void {
  const handler = new ForwardHandler(req, res, opts, observer);
  dispatcher.dispatch(
    {
      path: req.url ?? "/",
      method: req.method ?? "GET",
      headers,
      body: body === true ? req : body === false ? null : body,
      headersTimeout: opts.headersTimeoutMs,
      bodyTimeout: opts.bodyTimeoutMs,
    },
    handler,
  );
}
