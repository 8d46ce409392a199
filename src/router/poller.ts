/**
 * Polls sidecars' `GET /v1/load`. Every server has its own loop: a poll starts every
 * `pollIntervalMs` (or as soon as the previous one ends, if it took longer) and is cut off after
 * `pollTimeoutMs`, so one slow or hanging sidecar never delays the polls of the others. The loop
 * keeps running while a server is out of rotation: that is how it is probed back in.
 */
import { Agent, request } from "undici";
import { authorizationHeader } from "../shared/auth.js";
import type { Clock } from "../shared/clock.js";
import { validateLoadReport, type LoadReport } from "../shared/load-report.js";

/** A report is a few hundred bytes; anything far larger is not one. */
const MAX_REPORT_BYTES = 64 * 1024;

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
}

export interface Poller {
  /** Starts polling a server now (no-op when already polled); resolves once its first poll is recorded. */
  add(target: PollTarget): Promise<void>;
  /** Stops polling a server. */
  remove(id: string): void;
  close(): Promise<void>;
}

interface Loop {
  readonly target: PollTarget;
  stopped: boolean;
  timer: NodeJS.Timeout | undefined;
  running: Promise<void> | undefined;
  abort: AbortController | undefined;
}

export function createPoller(options: PollerOptions, deps: PollerDeps): Poller {
  // Control connections are kept alive (one per sidecar is plenty) and closed before the sidecar's
  // own keep-alive timeout would (Node's default is 5 s) to avoid racing a closing socket.
  const agent = new Agent({ connections: 2, keepAliveTimeout: 4000, keepAliveMaxTimeout: 4000 });
  const headers = { accept: "application/json", ...authorizationHeader(options.token) };
  const loops = new Map<string, Loop>();
  let closed = false;

  async function pollOnce(loop: Loop): Promise<void> {
    const ac = new AbortController();
    loop.abort = ac;
    const startedAt = deps.clock.now();
    const timer = setTimeout(
      () => ac.abort(new Error(`timed out after ${options.pollTimeoutMs} ms`)),
      options.pollTimeoutMs,
    );
    let outcome: { report: LoadReport } | { error: string };
    try {
      outcome = await fetchReport(loop.target.controlUrl, ac.signal);
    } catch (err) {
      outcome = { error: describe(err, ac.signal) };
    } finally {
      clearTimeout(timer);
      loop.abort = undefined;
    }
    if (loop.stopped) return;
    const now = deps.clock.now();
    deps.onPolled?.(loop.target.id, now - startedAt, "report" in outcome ? undefined : outcome.error);
    if ("report" in outcome) deps.onSuccess(loop.target.id, outcome.report, now);
    else deps.onFailure(loop.target.id, outcome.error, now);
  }

  async function fetchReport(
    controlUrl: string,
    signal: AbortSignal,
  ): Promise<{ report: LoadReport } | { error: string }> {
    const res = await request(`${controlUrl}/v1/load`, {
      dispatcher: agent,
      headers,
      signal,
      headersTimeout: options.pollTimeoutMs,
      bodyTimeout: options.pollTimeoutMs,
    });
    if (res.statusCode !== 200) {
      await res.body.dump();
      return { error: res.statusCode === 401 ? "401 (wrong or missing token)" : `status ${res.statusCode}` };
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_REPORT_BYTES) {
        res.body.destroy();
        return { error: "report too large" };
      }
      chunks.push(chunk);
    }
    let json: unknown;
    try {
      json = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    } catch {
      return { error: "report is not JSON" };
    }
    const v = validateLoadReport(json);
    return "report" in v ? v : { error: `invalid report: ${v.error}` };
  }

  function run(loop: Loop): Promise<void> {
    const started = deps.clock.now();
    const p = pollOnce(loop).finally(() => {
      loop.running = undefined;
      const took = deps.clock.now() - started;
      schedule(loop, Math.max(0, options.pollIntervalMs - took));
    });
    loop.running = p;
    return p;
  }

  function schedule(loop: Loop, delayMs: number): void {
    if (loop.stopped || closed) return;
    loop.timer = setTimeout(() => {
      loop.timer = undefined;
      void run(loop);
    }, delayMs);
    // Polling alone must not keep a process alive that has nothing else to do.
    loop.timer.unref();
  }

  return {
    add(target) {
      if (closed || loops.has(target.id)) return Promise.resolve();
      const loop: Loop = { target, stopped: false, timer: undefined, running: undefined, abort: undefined };
      loops.set(target.id, loop);
      return run(loop);
    },
    remove(id) {
      const loop = loops.get(id);
      if (!loop) return;
      loops.delete(id);
      loop.stopped = true;
      if (loop.timer) clearTimeout(loop.timer);
      loop.abort?.abort(new Error("server removed"));
    },
    async close() {
      closed = true;
      const running: Promise<void>[] = [];
      for (const loop of loops.values()) {
        loop.stopped = true;
        if (loop.timer) clearTimeout(loop.timer);
        loop.abort?.abort(new Error("router closing"));
        if (loop.running) running.push(loop.running);
      }
      loops.clear();
      await Promise.allSettled(running);
      await agent.close();
    },
  };
}

function describe(err: unknown, signal: AbortSignal): string {
  if (signal.aborted) {
    const r: unknown = signal.reason;
    return r instanceof Error ? r.message : "aborted";
  }
  const e = err as { code?: unknown; message?: unknown };
  if (typeof e?.code === "string") return e.code;
  return typeof e?.message === "string" ? e.message : String(err);
}
