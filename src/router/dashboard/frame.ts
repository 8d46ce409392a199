/**
 * Turns two router snapshots into what the page shows: rates and shares over the window between
 * them, the busiest server, and one chart point. Pure, so the arithmetic is tested without timers.
 */
import type {
  DashboardFrame,
  HistoryPoint,
  PoolFigures,
  RouterSnapshot,
  ServerFigures,
  ServerSnapshot,
} from "./snapshot.js";

export function serverKey(pool: string, id: string): string {
  return `${pool}|${id}`;
}

/**
 * @param current the snapshot just taken
 * @param base an earlier snapshot (the start of the rate window), or undefined for the first one
 * @param windowMs monotonic ms between `base` and `current`
 * @param wallMs wall-clock ms of `current`, for the charts' time axis
 */
export function buildFrame(
  current: RouterSnapshot,
  base: RouterSnapshot | undefined,
  windowMs: number,
  wallMs: number,
): DashboardFrame {
  const seconds = base !== undefined && windowMs > 0 ? windowMs / 1000 : 0;
  const before = new Map<string, ServerSnapshot>();
  if (base) {
    for (const pool of base.pools) for (const s of pool.servers) before.set(serverKey(pool.name, s.id), s);
  }
  const rate = (now: number, then: number | undefined): number => {
    if (seconds === 0) return 0;
    // A counter that went down was restarted (the server left and rejoined): count from zero.
    const delta = then === undefined || now < then ? now : now - then;
    return delta / seconds;
  };

  let busiest: { key: string; busy: number } | undefined;
  const pools: PoolFigures[] = current.pools.map((pool) => {
    const rows = pool.servers.map((s) => {
      const key = serverKey(pool.name, s.id);
      const prev = before.get(key);
      const requestRate = rate(s.requestsTotal, prev?.requestsTotal);
      const errorRate = rate(s.errorsTotal, prev?.errorsTotal);
      const busy = windowBusy(s, prev) ?? s.busy;
      if (s.state !== "out" && busy !== undefined && (busiest === undefined || busy > busiest.busy)) {
        busiest = { key, busy };
      }
      return { s, key, requestRate, errorRate, busy };
    });
    const poolRate = rows.reduce((sum, r) => sum + r.requestRate, 0);
    const servers: ServerFigures[] = rows.map(({ s, key, requestRate, errorRate, busy }) => ({
      ...withoutReport(s),
      busy,
      key,
      requestRate,
      share: poolRate > 0 ? requestRate / poolRate : 0,
      errorRatio: requestRate > 0 ? Math.min(1, errorRate / requestRate) : undefined,
    }));
    return {
      name: pool.name,
      algorithm: pool.algorithm,
      params: pool.params,
      servers,
      requestRate: poolRate,
    };
  });

  const router = {
    ...current.router,
    requestRate: rate(current.router.requestsTotal, base?.router.requestsTotal),
    failoverRate: rate(current.router.failoversTotal, base?.router.failoversTotal),
  };
  const b: { key: string; busy: number } | undefined = busiest;
  return {
    version: 1,
    t: wallMs,
    rateWindowSeconds: seconds,
    router,
    pools,
    busiest: b !== undefined && b.busy > 0 ? b.key : undefined,
    point: historyPoint(wallMs, router, pools, seconds > 0),
  };
}

/** Task-seconds per second between two reports of one sidecar lifetime, on the sidecar's clock. */
function windowBusy(now: ServerSnapshot, then: ServerSnapshot | undefined): number | undefined {
  const a = then?.report;
  const b = now.report;
  if (a === undefined || b === undefined || a.epoch !== b.epoch) return undefined;
  const dt = b.uptimeSeconds - a.uptimeSeconds;
  // Under a second apart the window is too short to be better than the router's own figure.
  if (dt < 1) return undefined;
  return Math.max(0, b.taskSeconds - a.taskSeconds) / dt;
}

function withoutReport(s: ServerSnapshot): Omit<ServerSnapshot, "report"> {
  const { report: _report, ...rest } = s;
  return rest;
}

function historyPoint(
  t: number,
  router: DashboardFrame["router"],
  pools: readonly PoolFigures[],
  hasRates: boolean,
): HistoryPoint {
  const busy: Record<string, number | null> = {};
  const share: Record<string, number | null> = {};
  for (const pool of pools) {
    for (const s of pool.servers) {
      busy[s.key] = s.busy === undefined ? null : round(s.busy);
      share[s.key] = hasRates ? round(s.share) : null;
    }
  }
  return {
    t: Math.round(t),
    rps: hasRates ? round(router.requestRate) : null,
    p50: router.latencyP50Ms === undefined ? null : round(router.latencyP50Ms),
    p99: router.latencyP99Ms === undefined ? null : round(router.latencyP99Ms),
    failovers: hasRates ? round(router.failoverRate) : null,
    busy,
    share,
  };
}

/** Four significant digits: enough for a chart, and keeps five minutes of history small. */
export function round(v: number): number {
  if (!Number.isFinite(v) || v === 0) return 0;
  return Number(v.toPrecision(4));
}
