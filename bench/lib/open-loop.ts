/**
 * An open-loop load generator: requests leave on a schedule (fixed interval or Poisson arrivals)
 * whether or not earlier ones have answered, and latency is measured from the *scheduled* send
 * time, so a stalled proxy or a queue shows up in the latency instead of silently lowering the
 * request rate (the coordinated-omission trap of closed-loop tools like wrk). Histograms are HDR
 * (3 significant digits, microseconds). Bounded: it stops scheduling after `durationMs` and gives
 * outstanding requests at most `timeoutMs` more.
 */
import * as hdr from "hdr-histogram-js";
import { Pool } from "undici";

export interface OpenLoopConfig {
  /** Origins (`http://127.0.0.1:port`); requests go to them in turn (several routers at once). */
  readonly targets: readonly string[];
  readonly path: string;
  /** Requests per second. */
  readonly rate: number;
  /** Sent before measuring starts; not recorded. */
  readonly warmupMs: number;
  /** Measured window (by scheduled send time). */
  readonly durationMs: number;
  readonly arrivals: "uniform" | "poisson";
  /** Connections per target. */
  readonly connections: number;
  /** Per-request limit for response headers and between body chunks. */
  readonly timeoutMs: number;
  /** Spin (setImmediate) in the last 2 ms before a send, for sub-millisecond schedule accuracy. */
  readonly precise: boolean;
  /** Width of the time buckets of the per-server timeline. */
  readonly bucketMs: number;
  /** Response header that names the server that did the work (counted per server). */
  readonly serverHeader?: string;
  /** Extra request headers. */
  readonly headers?: Record<string, string>;
  /** Seed for the Poisson arrivals (same seed → same schedule for every balancer). */
  readonly seed?: number;
}

export interface LatencySummary {
  readonly count: number;
  readonly mean: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
}

export interface TimelineBucket {
  /** Bucket start, ms after measuring began. */
  readonly t: number;
  readonly perServer: Record<string, number>;
  readonly errors: number;
  readonly p99Ms: number;
}

export interface OpenLoopResult {
  readonly config: OpenLoopConfig;
  readonly scheduled: number;
  readonly ok: number;
  readonly errors: Record<string, number>;
  readonly errorCount: number;
  /** Successful responses per second of the measured window. */
  readonly achievedRate: number;
  /** Milliseconds from the scheduled send time to the last body byte (successful requests). */
  readonly latencyMs: LatencySummary;
  /** Like latencyMs over every measured request, errors counted as `timeoutMs` (failing fast cannot look good). */
  readonly latencyWithErrorsMs: LatencySummary;
  /** Milliseconds from the actual send to the last body byte (what a closed-loop tool reports). */
  readonly serviceMs: LatencySummary;
  /** How late the generator itself sent requests (ms); large values mean the generator was saturated. */
  readonly sendLagMs: LatencySummary;
  readonly perServer: Record<string, number>;
  readonly timeline: readonly TimelineBucket[];
  /** HDR histogram of latencyMs (µs), compressed base64, for merging later. */
  readonly histogram: string;
}

function newHist(): hdr.Histogram {
  return hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 120_000_000,
    numberOfSignificantValueDigits: 3,
  });
}

function summarize(h: hdr.Histogram): LatencySummary {
  const ms = (us: number) => Math.round(us) / 1000;
  if (h.totalCount === 0) return { count: 0, mean: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0 };
  return {
    count: h.totalCount,
    mean: ms(h.mean),
    p50: ms(h.getValueAtPercentile(50)),
    p90: ms(h.getValueAtPercentile(90)),
    p99: ms(h.getValueAtPercentile(99)),
    p999: ms(h.getValueAtPercentile(99.9)),
    max: ms(h.maxValue),
  };
}

/** mulberry32: small, seedable, good enough for arrival times. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export async function runOpenLoop(cfg: OpenLoopConfig): Promise<OpenLoopResult> {
  const pools = cfg.targets.map(
    (t) =>
      new Pool(t, {
        connections: cfg.connections,
        pipelining: 1,
        headersTimeout: cfg.timeoutMs,
        bodyTimeout: cfg.timeoutMs,
        keepAliveTimeout: 4000,
      }),
  );
  const latency = newHist();
  const withErrors = newHist();
  const service = newHist();
  const lag = newHist();
  const errors: Record<string, number> = {};
  const perServer: Record<string, number> = {};
  const buckets: { perServer: Record<string, number>; errors: number; hist: hdr.Histogram }[] = [];
  let ok = 0;
  let scheduled = 0;
  let outstanding = 0;
  const random = rng(cfg.seed ?? 1);
  const meanGapMs = 1000 / cfg.rate;
  const gap = cfg.arrivals === "poisson" ? () => -Math.log(1 - random()) * meanGapMs : () => meanGapMs;

  const start = performance.now() + 20;
  const measureFrom = start + cfg.warmupMs;
  const stopAt = measureFrom + cfg.durationMs;
  let next = start;
  let turn = 0;
  let allSentResolve!: () => void;
  const allDone = new Promise<void>((r) => (allSentResolve = r));
  let schedulingOver = false;

  const bucketOf = (at: number) => {
    const i = Math.floor((at - measureFrom) / cfg.bucketMs);
    while (buckets.length <= i) buckets.push({ perServer: {}, errors: 0, hist: newHist() });
    return buckets[i]!;
  };
  // Once the run is over, requests still outstanding are counted once as "unfinished"; their
  // rejection when the pools are destroyed must not count them again.
  let over = false;
  const countError = (key: string, at: number, measured: boolean) => {
    if (!measured || over) return;
    errors[key] = (errors[key] ?? 0) + 1;
    withErrors.recordValue(cfg.timeoutMs * 1000);
    bucketOf(at).errors++;
  };
  const settle = () => {
    outstanding--;
    if (schedulingOver && outstanding === 0) allSentResolve();
  };

  const fire = (at: number) => {
    const pool = pools[turn++ % pools.length]!;
    const measured = at >= measureFrom;
    if (measured) scheduled++;
    outstanding++;
    const sentAt = performance.now();
    if (measured) lag.recordValue(Math.max(0, Math.round((sentAt - at) * 1000)));
    pool
      .request({ path: cfg.path, method: "GET", headers: cfg.headers })
      .then(async ({ statusCode, headers, body }) => {
        for await (const _chunk of body) {
          // drain: the last byte is the end of the exchange
        }
        const end = performance.now();
        if (!measured) return;
        if (statusCode >= 400) {
          const proxyErr = headers["x-tasklb-error"];
          countError(`http_${statusCode}${typeof proxyErr === "string" ? ":" + proxyErr : ""}`, at, true);
          return;
        }
        ok++;
        const us = Math.max(1, Math.round((end - at) * 1000));
        latency.recordValue(us);
        withErrors.recordValue(us);
        service.recordValue(Math.max(1, Math.round((end - sentAt) * 1000)));
        const b = bucketOf(at);
        b.hist.recordValue(us);
        if (cfg.serverHeader) {
          const s = headers[cfg.serverHeader];
          const name = typeof s === "string" ? s : "?";
          perServer[name] = (perServer[name] ?? 0) + 1;
          b.perServer[name] = (b.perServer[name] ?? 0) + 1;
        }
      })
      .catch((err: unknown) => {
        const code = (err as { code?: string }).code ?? "error";
        countError(code, at, measured);
      })
      .finally(settle);
  };

  await new Promise<void>((resolve) => {
    const pump = () => {
      const now = performance.now();
      while (next <= now && next < stopAt) {
        fire(next);
        next += gap();
      }
      if (next >= stopAt) return resolve();
      const wait = next - performance.now();
      if (cfg.precise && wait < 2) setImmediate(pump);
      else setTimeout(pump, Math.max(0, wait - (cfg.precise ? 1.5 : 0.5)));
    };
    pump();
  });
  schedulingOver = true;
  if (outstanding > 0) {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([allDone, new Promise<void>((r) => (timer = setTimeout(r, cfg.timeoutMs + 1000)))]);
    clearTimeout(timer);
  }
  over = true;
  const unfinished = outstanding;
  if (unfinished > 0) {
    errors.unfinished = (errors.unfinished ?? 0) + unfinished;
    withErrors.recordValueWithCount(cfg.timeoutMs * 1000, unfinished);
  }
  await Promise.all(pools.map((p) => p.destroy().catch(() => undefined)));

  const seconds = cfg.durationMs / 1000;
  return {
    config: cfg,
    scheduled,
    ok,
    errors,
    errorCount: Object.values(errors).reduce((a, b) => a + b, 0),
    achievedRate: Math.round((ok / seconds) * 10) / 10,
    latencyMs: summarize(latency),
    latencyWithErrorsMs: summarize(withErrors),
    serviceMs: summarize(service),
    sendLagMs: summarize(lag),
    perServer,
    timeline: buckets.map((b, i) => ({
      t: i * cfg.bucketMs,
      perServer: b.perServer,
      errors: b.errors,
      p99Ms: summarize(b.hist).p99,
    })),
    histogram: hdr.encodeIntoCompressedBase64(latency),
  };
}
