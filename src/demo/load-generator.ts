/**
 * Open-loop load: requests arrive as a Poisson process at `ratePerSecond` whatever the answers do
 * (closed-loop load hides overload, because a slow system slows its own clients down). Bounded:
 * it stops issuing at `durationMs`, caps requests in flight, and times each one out.
 * Records who answered (the demo app's `x-demo-server` header), status and latency.
 */
import { Agent, request } from "undici";
import { DEMO_SERVER_HEADER } from "./demo-app.js";

export interface LoadSample {
  /** ms since the load started, at completion. */
  readonly atMs: number;
  readonly server: string;
  readonly status: number;
  readonly latencyMs: number;
}

export interface LoadGeneratorOptions {
  readonly url: string;
  readonly ratePerSecond: number;
  readonly durationMs: number;
  /** Requests in flight beyond which arrivals are dropped (counted) instead of sent. */
  readonly maxInFlight?: number;
  readonly timeoutMs?: number;
  readonly path?: string;
}

export interface LoadGenerator {
  /** Resolves when the last request has completed (or timed out). */
  run(): Promise<void>;
  stop(): void;
  readonly samples: readonly LoadSample[];
  readonly sent: number;
  readonly dropped: number;
  readonly inFlight: number;
  elapsedMs(): number;
}

export function createLoadGenerator(
  opts: LoadGeneratorOptions,
  random: () => number = Math.random,
): LoadGenerator {
  const maxInFlight = opts.maxInFlight ?? 2000;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const agent = new Agent({ connections: 512, keepAliveTimeout: 2000, keepAliveMaxTimeout: 2000 });
  const samples: LoadSample[] = [];
  let sent = 0;
  let dropped = 0;
  let inFlight = 0;
  let stopped = false;
  let t0 = 0;
  let timer: NodeJS.Timeout | undefined;
  let finish: (() => void) | undefined;
  const elapsed = () => performance.now() - t0;

  const maybeDone = () => {
    if ((stopped || elapsed() >= opts.durationMs) && inFlight === 0) finish?.();
  };

  const fire = () => {
    if (inFlight >= maxInFlight) {
      dropped++;
      return;
    }
    sent++;
    inFlight++;
    const start = performance.now();
    void request(opts.url + (opts.path ?? "/work"), {
      dispatcher: agent,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    })
      .then(async (res) => {
        await res.body.dump();
        const s = res.headers[DEMO_SERVER_HEADER];
        return { server: typeof s === "string" ? s : "", status: res.statusCode };
      })
      .catch(() => ({ server: "", status: 0 }))
      .then(({ server, status }) => {
        inFlight--;
        samples.push({ atMs: elapsed(), server, status, latencyMs: performance.now() - start });
        maybeDone();
      });
  };

  // Exponential gaps between arrivals; every arrival that is due fires on each tick, so the
  // offered rate holds even when timers run late.
  let nextAt = 0;
  const tick = () => {
    timer = undefined;
    if (stopped) return maybeDone();
    const now = elapsed();
    while (nextAt <= now && nextAt < opts.durationMs) {
      fire();
      nextAt += (-Math.log(1 - random()) * 1000) / opts.ratePerSecond;
    }
    if (nextAt >= opts.durationMs) {
      stopped = true;
      return maybeDone();
    }
    timer = setTimeout(tick, Math.max(1, nextAt - elapsed()));
  };

  return {
    async run() {
      t0 = performance.now();
      const done = new Promise<void>((resolve) => (finish = resolve));
      tick();
      await done;
      await agent.close();
    },
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
      maybeDone();
    },
    get samples() {
      return samples;
    },
    get sent() {
      return sent;
    },
    get dropped() {
      return dropped;
    },
    get inFlight() {
      return inFlight;
    },
    elapsedMs: elapsed,
  };
}

/** Percentile (0..100) of an unsorted list; NaN when empty. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}
