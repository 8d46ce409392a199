/**
 * The `GET /v1/servers` document: every server of every pool with its state, score, rank, last
 * report, derived rates and what this router sees of it. Plain JSON, documented in docs/router.md;
 * the dashboard and the demo read the same object.
 */
import type { LoadLive, LoadTotals, SidecarState } from "../shared/load-report.js";
import type { PoolConfig, RouterMode } from "./config.js";
import type { Pool, ServerSource, ServerState } from "./pool.js";

export interface ServerSnapshot {
  readonly id: string;
  readonly pool: string;
  readonly dataUrl: string;
  readonly controlUrl: string;
  readonly sources: readonly ServerSource[];
  readonly state: ServerState;
  readonly reason: string;
  /** Time in the current state (ms). */
  readonly stateAgeMs: number;
  /** For easing servers: the share of picks it takes part in (0.1 → 1). */
  readonly easeShare: number;
  readonly score: number | null;
  /** 1 = best among servers in rotation; null without a score or out of rotation. */
  readonly rank: number | null;
  readonly misses: number;
  readonly lastPollError: string | null;
  readonly lastReport: {
    readonly ageMs: number;
    readonly epoch: string;
    readonly seq: number;
    readonly state: SidecarState;
    readonly appReachable: boolean;
    readonly uptimeSeconds: number;
    readonly totals: LoadTotals;
    readonly live: LoadLive;
  } | null;
  readonly lastPiggybackAgeMs: number | null;
  /** Derived from report deltas; null until two reports of one epoch arrived. */
  readonly rates: {
    readonly ageMs: number;
    readonly busy: number;
    readonly callRate: number;
    readonly errorRate: number;
    readonly meanCallSeconds: number | null;
    readonly inFlightTopLevel: number;
    readonly inFlightAgeSeconds: number;
    readonly cpu: number;
    readonly cores: number;
  } | null;
  /** What this router itself sees. */
  readonly router: {
    readonly inFlight: number;
    readonly requests: number;
    readonly errors: number;
    readonly latencyMs: number | null;
    readonly failureRate: number;
  };
}

export interface ServersSnapshot {
  readonly mode: RouterMode;
  readonly draining: boolean;
  readonly uptimeSeconds: number;
  readonly pools: readonly {
    readonly name: string;
    readonly algorithm: string;
    readonly params: Readonly<Record<string, number | string | boolean>>;
    readonly match: PoolConfig["match"] | null;
    readonly servers: number;
    readonly inRotation: number;
  }[];
  readonly servers: readonly ServerSnapshot[];
}

const round = (x: number, digits = 4): number => Number(x.toFixed(digits));

export function serversSnapshot(
  pools: readonly { readonly config: PoolConfig; readonly pool: Pool }[],
  now: number,
  info: { mode: RouterMode; draining: boolean; uptimeSeconds: number },
): ServersSnapshot {
  const servers: ServerSnapshot[] = [];
  const poolDocs: ServersSnapshot["pools"][number][] = [];
  for (const { config, pool } of pools) {
    const scores = pool.scores(now);
    let inRotation = 0;
    for (const m of pool.members()) {
      if (m.state === "ready" || m.state === "easing") inRotation++;
      const sc = scores.get(m.id);
      const r = m.lastReport;
      const rates = m.stats.reported;
      servers.push({
        id: m.id,
        pool: pool.name,
        dataUrl: m.dataUrl,
        controlUrl: m.controlUrl,
        sources: [...m.sources],
        state: m.state,
        reason: m.reason,
        stateAgeMs: Math.round(now - m.stateSinceMs),
        easeShare: round(pool.easeShare(m, now), 3),
        score: sc?.score === undefined ? null : round(sc.score, 6),
        rank: sc?.rank ?? null,
        misses: m.misses,
        lastPollError: m.lastPollError ?? null,
        lastReport:
          r && m.lastReportAtMs !== undefined
            ? {
                ageMs: Math.round(now - m.lastReportAtMs),
                epoch: r.epoch,
                seq: r.seq,
                state: r.state,
                appReachable: r.appReachable,
                uptimeSeconds: r.uptimeSeconds,
                totals: r.totals,
                live: r.live,
              }
            : null,
        lastPiggybackAgeMs: m.lastPiggybackAtMs === undefined ? null : Math.round(now - m.lastPiggybackAtMs),
        rates: rates
          ? {
              ageMs: Math.round(now - rates.receivedAtMs),
              busy: round(rates.busy),
              callRate: round(rates.callRate, 2),
              errorRate: round(rates.errorRate, 2),
              meanCallSeconds: rates.meanCallSeconds === undefined ? null : round(rates.meanCallSeconds, 6),
              inFlightTopLevel: rates.inFlightTopLevel,
              inFlightAgeSeconds: round(rates.inFlightAgeSeconds),
              cpu: round(rates.cpu, 3),
              cores: rates.cores,
            }
          : null,
        router: {
          inFlight: m.stats.inFlight,
          requests: m.stats.requests,
          errors: m.stats.failures,
          latencyMs: m.stats.latencyMs === undefined ? null : round(m.stats.latencyMs, 3),
          failureRate: round(m.stats.failureRate),
        },
      });
    }
    poolDocs.push({
      name: pool.name,
      algorithm: pool.balancer.name,
      params: pool.balancer.params,
      match: config.match ?? null,
      servers: pool.size,
      inRotation,
    });
  }
  return {
    mode: info.mode,
    draining: info.draining,
    uptimeSeconds: round(info.uptimeSeconds, 3),
    pools: poolDocs,
    servers,
  };
}
