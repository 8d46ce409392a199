/**
 * Polls sidecars' `GET /v1/load`. Every server has its own loop: a poll starts every
 * `pollIntervalMs` (or as soon as the previous one ends, if it took longer) and is cut off after
 * `pollTimeoutMs`, so one slow or hanging sidecar never delays the polls of the others. The loop
 * keeps running while a server is out of rotation: that is how it is probed back in.
 *
 * A poll is skipped while the router holds a fresher report from the same sidecar: one that rode
 * on a proxied response less than `pollIntervalMs` ago (`deps.heardAt`). Under traffic a server
 * is then polled about once per {@link MAX_POLL_GAP_MS} (the full report carries what the
 * piggybacked one does not: `appReachable`, `totals.byInFlight`, the control port's health), and
 * as soon as its responses stop — a server that stops answering is polled, and missed, on schedule.
 *
 * The cost of a poll is mostly undici's and V8's (a few polls per second per server run mostly
 * unoptimised code), so each loop keeps what it can: one keep-alive `Client` per sidecar, used
 * through the raw dispatch API (no Agent/Pool layers, no body stream, no AbortSignal), the same
 * request options every time, and two timers re-armed with `refresh()` instead of new ones.
 */
import { Client, type Dispatcher } from "undici";
import { authorizationHeader } from "../shared/auth.js";
import type { Clock } from "../shared/clock.js";
import { validateLoadReport, type LoadReport } from "../shared/load-report.js";

/** A report is a few hundred bytes; anything far larger is not one. */
const MAX_REPORT_BYTES = 64 * 1024;

/**
 * Longest a server in traffic goes without a full poll. Piggybacked reports refresh the figures the
 * balancers rank by; the full report also says whether the app is reachable and carries the
 * in-flight profile, and a poll proves the control port (and token) still work.
 */
export const MAX_POLL_GAP_MS = 1000;

export interface PollTarget {
  readonly id: string;
  readonly controlUrl: string;
}

export interface PollerOptions {
  readonly pollIntervalMs: number;
  readonly pollTimeoutMs: number;
  readonly token: string | undefined;
}

export interface PollerDeps {
  readonly clock: Clock;
  readonly onSuccess: (id: string, report: LoadReport, now: number) => void;
  readonly onFailure: (id: string, reason: string, now: number) => void;
  /** Every finished poll with its duration (telemetry: poll latency and failures). */
  readonly onPolled?: (id: string, durationMs: number, error: string | undefined) => void;
  /**
   * When the router last received a report from this server by other means (piggybacked on a
   * response), on `clock`; undefined when it has none it trusts (the server is out, or the
   * piggybacked report shows an epoch no poll has confirmed yet). A poll that falls due less than
   * `pollIntervalMs` after it is skipped (see {@link MAX_POLL_GAP_MS}).
   */
  readonly heardAt?: (id: string) => number | undefined;
}

export interface Poller {
  /** Starts polling a server now (no-op when already polled); resolves once its first poll is recorded. */
  add(target: PollTarget): Promise<void>;
  /** Stops polling a server. */
  remove(id: string): void;
  close(): Promise<void>;
}

/** What a poll found: the report, or why there is none. */
type Outcome = { readonly report: LoadReport; readonly error?: undefined } | { readonly error: string };

/**
 * One exchange with a sidecar (undici's legacy raw handler, as in src/shared/forward.ts). A fresh
 * object per poll, so a callback from an abandoned exchange (a connect that outlived its deadline)
 * can never be mistaken for the next one's.
 */
class PollExchange implements Dispatcher.DispatchHandler {
  readonly #loop: PollLoop;
  #abort: ((err?: Error) => void) | undefined;
  #done = false;
  #status = 0;
  #body: Buffer | undefined;
  #chunks: Buffer[] | undefined;
  #size = 0;

  constructor(loop: PollLoop) {
    this.#loop = loop;
  }

  onConnect(abort: (err?: Error) => void): void {
    if (this.#done) abort();
    else this.#abort = abort;
  }

  onHeaders(statusCode: number): boolean {
    this.#status = statusCode;
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.#done) return false;
    // Not a report: read on so the connection stays usable, keep nothing.
    if (this.#status !== 200) return true;
    this.#size += chunk.length;
    if (this.#size > MAX_REPORT_BYTES) {
      this.#fail("report too large");
      return false;
    }
    if (this.#body === undefined) this.#body = chunk;
    else (this.#chunks ??= [this.#body]).push(chunk);
    return true;
  }

  onComplete(): void {
    if (this.#done) return;
    const status = this.#status;
    if (status !== 200) {
      this.#finish({ error: status === 401 ? "401 (wrong or missing token)" : `status ${status}` });
      return;
    }
    const buf = this.#chunks ? Buffer.concat(this.#chunks) : this.#body;
    let json: unknown;
    try {
      json = JSON.parse(buf === undefined ? "" : buf.toString("utf8"));
    } catch {
      this.#finish({ error: "report is not JSON" });
      return;
    }
    const v = validateLoadReport(json);
    this.#finish("report" in v ? v : { error: `invalid report: ${v.error}` });
  }

  onError(err: Error): void {
    if (this.#done) return;
    const e = err as { code?: unknown; message?: unknown };
    this.#finish({ error: typeof e.code === "string" ? e.code : String(e.message) });
  }

  /** Ends the exchange with `reason` and closes its connection (a half-read response cannot be reused). */
  #fail(reason: string): void {
    const abort = this.#abort;
    this.#finish({ error: reason });
    abort?.(new Error(reason));
  }

  /** The deadline passed. Before a connection exists there is nothing to abort: connectTimeout ends the attempt. */
  timeout(reason: string): void {
    if (!this.#done) this.#fail(reason);
  }

  /** The server was removed or the poller is closing: end without reporting. */
  cancel(): void {
    const abort = this.#abort;
    this.#done = true;
    abort?.(new Error("poll cancelled"));
  }

  #finish(outcome: Outcome): void {
    this.#done = true;
    this.#body = undefined;
    this.#chunks = undefined;
    this.#loop.finished(this, outcome);
  }
}

class PollLoop {
  readonly target: PollTarget;
  readonly #client: Client;
  readonly #dispatchOptions: Dispatcher.DispatchOptions;
  readonly #options: PollerOptions;
  readonly #deps: PollerDeps;
  /** Fires `pollIntervalMs` after each poll started (or after a skipped one was due). */
  readonly #tick: NodeJS.Timeout;
  /** Fires `pollTimeoutMs` after each poll started; re-armed by the next, so it fires only for a slow one. */
  readonly #deadline: NodeJS.Timeout;
  readonly #timeoutReason: string;
  #current: PollExchange | undefined;
  #startedAt = 0;
  /** The poll that started last (skips do not count), for MAX_POLL_GAP_MS. */
  #lastPollAt = 0;
  /** A tick came while a poll was running: start the next one as soon as it ends. */
  #due = false;
  #stopped = false;
  #firstDone: (() => void) | undefined;

  constructor(
    target: PollTarget,
    headers: readonly string[],
    options: PollerOptions,
    deps: PollerDeps,
    firstDone: () => void,
  ) {
    this.target = target;
    this.#options = options;
    this.#deps = deps;
    this.#firstDone = firstDone;
    this.#timeoutReason = `timed out after ${options.pollTimeoutMs} ms`;
    // Kept alive (one connection per sidecar is plenty) and closed before the sidecar's own keep-alive
    // timeout would (Node's default is 5 s), so a poll never races a closing socket. undici's own
    // header/body timers are off: the deadline below covers the whole poll.
    this.#client = new Client(target.controlUrl, {
      keepAliveTimeout: 4000,
      keepAliveMaxTimeout: 4000,
      connectTimeout: options.pollTimeoutMs,
      headersTimeout: 0,
      bodyTimeout: 0,
    });
    this.#dispatchOptions = { path: "/v1/load", method: "GET", headers: headers as string[] };
    // Polling alone must not keep a process alive that has nothing else to do.
    this.#tick = setTimeout(() => this.#onTick(), options.pollIntervalMs).unref();
    this.#deadline = setTimeout(() => this.#current?.timeout(this.#timeoutReason), options.pollTimeoutMs);
    this.#deadline.unref();
  }

  /** The first poll, right away. */
  begin(): void {
    this.#start();
  }

  #onTick(): void {
    if (this.#stopped) return;
    if (this.#current !== undefined) {
      this.#due = true;
      return;
    }
    const heardAt = this.#deps.heardAt?.(this.target.id);
    if (heardAt !== undefined) {
      const now = this.#deps.clock.now();
      if (now - heardAt < this.#options.pollIntervalMs && now - this.#lastPollAt < MAX_POLL_GAP_MS) {
        this.#tick.refresh();
        return;
      }
    }
    this.#start();
  }

  #start(): void {
    this.#due = false;
    this.#startedAt = this.#lastPollAt = this.#deps.clock.now();
    this.#tick.refresh();
    this.#deadline.refresh();
    const ex = new PollExchange(this);
    this.#current = ex;
    this.#client.dispatch(this.#dispatchOptions, ex);
  }

  finished(ex: PollExchange, outcome: Outcome): void {
    if (ex !== this.#current) return;
    this.#current = undefined;
    if (this.#stopped) return;
    const id = this.target.id;
    const now = this.#deps.clock.now();
    try {
      this.#deps.onPolled?.(id, now - this.#startedAt, outcome.error);
      if (outcome.error === undefined) this.#deps.onSuccess(id, outcome.report, now);
      else this.#deps.onFailure(id, outcome.error, now);
    } catch (err) {
      // Not undici's to handle (this runs inside its parser): surface it as any other bug would.
      queueMicrotask(() => {
        throw err;
      });
    }
    const first = this.#firstDone;
    if (first) {
      this.#firstDone = undefined;
      first();
    }
    // A tick that came during a slow poll runs now, through the same freshness check: a poll slower
    // than the interval (a loaded host) must not turn into back-to-back polls of a server whose
    // piggybacked reports are fresh.
    if (this.#due && !this.#stopped) {
      this.#due = false;
      this.#onTick();
    }
  }

  /** Stops the loop; resolves when its connection is closed. */
  stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#tick);
    clearTimeout(this.#deadline);
    this.#current?.cancel();
    this.#current = undefined;
    const first = this.#firstDone;
    this.#firstDone = undefined;
    first?.();
    return this.#client.destroy().catch(() => undefined);
  }
}

export function createPoller(options: PollerOptions, deps: PollerDeps): Poller {
  const auth = authorizationHeader(options.token);
  const headers: string[] = ["accept", "application/json"];
  for (const [k, v] of Object.entries(auth)) headers.push(k, v);
  const loops = new Map<string, PollLoop>();
  let closed = false;

  return {
    add(target) {
      if (closed || loops.has(target.id)) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const loop = new PollLoop(target, headers, options, deps, resolve);
        loops.set(target.id, loop);
        loop.begin();
      });
    },
    remove(id) {
      const loop = loops.get(id);
      if (!loop) return;
      loops.delete(id);
      void loop.stop();
    },
    async close() {
      closed = true;
      const stopping = [...loops.values()].map((l) => l.stop());
      loops.clear();
      await Promise.all(stopping);
    },
  };
}
