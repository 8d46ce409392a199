/**
 * One pool of servers and the life of each in it. Pure: every event carries `now` from the
 * router's clock, so the state rules are unit-tested with a FakeClock.
 *
 *   (added) ──first good report──► easing ──easeInMs──► ready
 *      out ◄──maxMisses failed polls, or a connect failure── easing/ready/draining
 *      out ──good report──► easing           (probed back in by the poller, which never stops)
 *   easing/ready ──report says draining──► draining ──report says serving──► easing
 *   easing/ready ──report with a new epoch (the sidecar restarted)──► easing
 *
 * Candidates for new work are `ready` and `easing` servers. An easing server is offered to the
 * balancer only part of the time (a share growing from 10 % to 100 % over easeInMs) and only while
 * its in-flight count stays below that share of the busiest ready server's: an algorithm that
 * thinks an unmeasured server is idle (task-seconds does, as in the original) cannot flood it.
 */
import type { LoadReport, PiggybackReport } from "../shared/load-report.js";
import type { Balancer, ServerView } from "./balancers/balancer.js";
import type { ServerAddress } from "./config.js";
import { ServerStats } from "./server-stats.js";

export type ServerState = "easing" | "ready" | "draining" | "out";
export type ServerSource = "static" | "dns" | "registration";

export interface Member {
  /** The data URL (an origin); stable id. */
  readonly id: string;
  readonly dataUrl: string;
  readonly controlUrl: string;
  readonly sources: Set<ServerSource>;
  state: ServerState;
  /** Why the server is in its state (for `out` mostly), for the admin API. */
  reason: string;
  stateSinceMs: number;
  /** When the server last entered rotation (start of easing). */
  readySinceMs: number;
  /** Failed polls in a row. */
  misses: number;
  lastReport: LoadReport | undefined;
  lastReportAtMs: number | undefined;
  lastPiggybackAtMs: number | undefined;
  lastPollError: string | undefined;
  /**
   * Until then a good report does not bring the server back: its sidecar answered for an app it
   * could not reach, and its reports may still say the app is fine until its probe notices.
   */
  holdOutUntilMs: number;
  readonly stats: ServerStats;
  /** Insertion order: the round-robin order failover follows. */
  readonly order: number;
}

export type PoolEvent =
  | { readonly type: "added" | "removed"; readonly pool: string; readonly member: Member }
  | {
      readonly type: "state";
      readonly pool: string;
      readonly member: Member;
      readonly from: ServerState;
      readonly to: ServerState;
      readonly reason: string;
    };

export interface PoolOptions {
  readonly name: string;
  readonly easeInMs: number;
  readonly maxMisses: number;
  /** Passed to ServerStats: see ServerStatsOptions. */
  readonly minRateIntervalSeconds?: number;
}

export interface PoolDeps {
  readonly balancer: Balancer;
  /** Uniform [0, 1): the easing lottery. */
  readonly random: () => number;
  readonly onEvent?: (event: PoolEvent) => void;
}

export interface Pick {
  readonly member: Member;
  readonly score: number | undefined;
}

/** Share of picks an easing server is offered to the balancer at the start of its ease-in. */
export const EASE_IN_START_SHARE = 0.1;

/** Share of picks a server `sinceMs` into an ease-in of `easeInMs` takes part in (10 % → 100 %). */
export function easeInShare(sinceMs: number, easeInMs: number): number {
  if (easeInMs <= 0) return 1;
  const progress = Math.min(1, Math.max(0, sinceMs) / easeInMs);
  return EASE_IN_START_SHARE + (1 - EASE_IN_START_SHARE) * progress;
}

/**
 * Whether an easing server takes part in one pick: in a `share` of picks (one draw of `random`), and
 * only while its in-flight count stays below that share of the busiest ready server's. Shared with
 * the simulator, which mirrors this admission.
 */
export function easingAdmitted(
  share: number,
  inFlight: number,
  maxReadyInFlight: number,
  random: () => number,
): boolean {
  return random() < share && inFlight <= share * maxReadyInFlight;
}

export class Pool {
  readonly name: string;
  readonly balancer: Balancer;
  readonly #opts: PoolOptions;
  readonly #deps: PoolDeps;
  readonly #members = new Map<string, Member>();
  #order = 0;
  /** pick()'s candidate lists, reused: balancers must not keep a reference to the array. */
  readonly #views: ServerView[] = [];
  readonly #chosen: Member[] = [];

  constructor(options: PoolOptions, deps: PoolDeps) {
    this.name = options.name;
    this.balancer = deps.balancer;
    this.#opts = options;
    this.#deps = deps;
  }

  get size(): number {
    return this.#members.size;
  }

  get(id: string): Member | undefined {
    return this.#members.get(id);
  }

  members(): Member[] {
    return [...this.#members.values()];
  }

  /**
   * Adds a server (or notes one more source for a known one). A new server starts `out` with reason
   * "awaiting first report": it takes no work until its sidecar has answered once.
   */
  add(addr: ServerAddress, source: ServerSource, now: number): Member {
    const known = this.#members.get(addr.dataUrl);
    if (known) {
      known.sources.add(source);
      return known;
    }
    const m: Member = {
      id: addr.dataUrl,
      dataUrl: addr.dataUrl,
      controlUrl: addr.controlUrl,
      sources: new Set([source]),
      state: "out",
      reason: "awaiting first report",
      stateSinceMs: now,
      readySinceMs: now,
      misses: 0,
      lastReport: undefined,
      lastReportAtMs: undefined,
      lastPiggybackAtMs: undefined,
      lastPollError: undefined,
      holdOutUntilMs: 0,
      stats: new ServerStats({ minRateIntervalSeconds: this.#opts.minRateIntervalSeconds ?? 0 }),
      order: this.#order++,
    };
    this.#members.set(m.id, m);
    this.#emit({ type: "added", pool: this.name, member: m });
    return m;
  }

  /** Drops one source of a server; the server leaves the pool when it has none left. */
  removeSource(id: string, source: ServerSource): boolean {
    const m = this.#members.get(id);
    if (!m || !m.sources.delete(source)) return false;
    if (m.sources.size > 0) return false;
    this.#members.delete(id);
    this.#deps.balancer.onRemove?.(id);
    this.#emit({ type: "removed", pool: this.name, member: m });
    return true;
  }

  onPollSuccess(id: string, report: LoadReport, now: number): void {
    const m = this.#members.get(id);
    if (!m) return;
    const previousEpoch = m.lastReport?.epoch;
    m.misses = 0;
    m.lastPollError = undefined;
    m.lastReport = report;
    m.lastReportAtMs = now;
    this.#feed(m, report, now);
    if (report.state === "draining") {
      this.#setState(m, "draining", "the sidecar reports draining", now);
    } else if (!report.appReachable) {
      this.#out(m, "the sidecar cannot reach its app", now);
    } else if (m.state === "out" && now < m.holdOutUntilMs) {
      // The data path saw the app unreachable more recently than this report can know.
    } else if (m.state === "out" || m.state === "draining") {
      this.#setState(m, "easing", "reporting", now);
    } else if (previousEpoch !== undefined && previousEpoch !== report.epoch) {
      this.#setState(m, "easing", "the sidecar restarted (new epoch)", now);
    }
  }

  onPollFailure(id: string, reason: string, now: number): void {
    const m = this.#members.get(id);
    if (!m) return;
    m.misses++;
    m.lastPollError = reason;
    if (m.misses < this.#opts.maxMisses) return;
    const why = `${m.misses} polls failed (last: ${reason})`;
    if (m.state !== "out") this.#out(m, why, now);
    else if (!m.reason.startsWith("connect failed")) m.reason = why;
  }

  /** A report that rode on a proxied response. It refreshes figures; only polls bring a server back. */
  onPiggyback(id: string, report: PiggybackReport, now: number): void {
    const m = this.#members.get(id);
    if (!m || m.state === "out") return;
    m.lastPiggybackAtMs = now;
    this.#feed(m, report, now);
    if (report.state === "draining") this.#setState(m, "draining", "the sidecar reports draining", now);
  }

  /** The router could not connect to the server's data port: out at once, until a poll succeeds. */
  onConnectFailure(id: string, reason: string, now: number): void {
    const m = this.#members.get(id);
    if (!m || m.state === "out") return;
    this.#out(m, `connect failed: ${reason}`, now);
  }

  /**
   * A sidecar answered a request itself with a proxy-made refusal (`x-tasklb-error`) that proves
   * the request never reached its app. The app unreachable or unavailable: out at once, like a
   * connect failure, and kept out for `holdMs` even if a report says otherwise (the sidecar's own
   * probe may not have noticed yet). Draining: draining. Overloaded (shedding): no state change —
   * the failure rate the router counts is the signal, the server is only busy.
   */
  onSidecarRefusal(id: string, code: string, now: number, holdMs: number): void {
    const m = this.#members.get(id);
    if (!m) return;
    if (code === "DRAINING") {
      if (m.state === "ready" || m.state === "easing") {
        this.#setState(m, "draining", "the sidecar answered DRAINING", now);
      }
    } else if (code === "UPSTREAM_UNREACHABLE" || code === "UPSTREAM_UNAVAILABLE") {
      m.holdOutUntilMs = Math.max(m.holdOutUntilMs, now + holdMs);
      if (m.state !== "out") this.#out(m, `the sidecar cannot reach its app (answered ${code})`, now);
    }
  }

  /** Moves easing servers whose ease-in is over to ready. */
  refresh(now: number): void {
    for (const m of this.#members.values()) {
      if (m.state === "easing" && now - m.readySinceMs >= this.#opts.easeInMs) {
        this.#setState(m, "ready", "eased in", now);
      }
    }
  }

  /** Chooses a server for one request, or undefined when none is in rotation. */
  pick(now: number): Pick | undefined {
    this.refresh(now);
    const views = this.#views;
    const chosen = this.#chosen;
    views.length = 0;
    chosen.length = 0;
    let readyCount = 0;
    let maxReadyInFlight = 0;
    for (const m of this.#members.values()) {
      if (m.state !== "ready") continue;
      readyCount++;
      if (m.stats.inFlight > maxReadyInFlight) maxReadyInFlight = m.stats.inFlight;
      views.push(viewOf(m));
      chosen.push(m);
    }
    for (const m of this.#members.values()) {
      if (m.state !== "easing") continue;
      if (readyCount > 0) {
        const share = this.easeShare(m, now);
        if (!easingAdmitted(share, m.stats.inFlight, maxReadyInFlight, this.#deps.random)) continue;
      }
      views.push(viewOf(m));
      chosen.push(m);
    }
    if (views.length === 0) return undefined;
    const v = this.#deps.balancer.pick(views, now);
    const i = views.indexOf(v);
    const member = chosen[i >= 0 ? i : 0]!;
    // Hold no members between picks (one may leave the pool meanwhile).
    views.length = 0;
    chosen.length = 0;
    return { member, score: safeScore(this.#deps.balancer, v, now) };
  }

  /** Share of picks an easing server takes part in now (1 once ready). */
  easeShare(m: Member, now: number): number {
    if (m.state !== "easing") return 1;
    return easeInShare(now - m.readySinceMs, this.#opts.easeInMs);
  }

  /**
   * Failover: the next server after `afterId` in round-robin (insertion) order that is in rotation
   * and was not tried yet for this request.
   */
  next(afterId: string, tried: ReadonlySet<string>, now: number): Member | undefined {
    this.refresh(now);
    const all = [...this.#members.values()];
    const start = all.findIndex((m) => m.id === afterId);
    for (let k = 1; k <= all.length; k++) {
      const m = all[(start + k + all.length) % all.length]!;
      if ((m.state === "ready" || m.state === "easing") && !tried.has(m.id)) return m;
    }
    return undefined;
  }

  /** Score (lower is better, as the algorithm computes it) and rank among candidates, for display. */
  scores(now: number): Map<string, { score: number | undefined; rank: number | undefined }> {
    this.refresh(now);
    const out = new Map<string, { score: number | undefined; rank: number | undefined }>();
    const ranked: { id: string; score: number }[] = [];
    for (const m of this.#members.values()) {
      const score = safeScore(this.#deps.balancer, viewOf(m), now);
      out.set(m.id, { score, rank: undefined });
      if (score !== undefined && (m.state === "ready" || m.state === "easing"))
        ranked.push({ id: m.id, score });
    }
    ranked.sort((a, b) => a.score - b.score);
    ranked.forEach((r, i) => out.set(r.id, { score: r.score, rank: i + 1 }));
    return out;
  }

  #feed(m: Member, report: LoadReport | PiggybackReport, now: number): void {
    const rates = m.stats.onReport(report, now);
    if (rates) this.#deps.balancer.onReport?.(m.id, rates, now);
  }

  #out(m: Member, reason: string, now: number): void {
    m.stats.resetReports();
    this.#setState(m, "out", reason, now);
  }

  #setState(m: Member, to: ServerState, reason: string, now: number): void {
    const from = m.state;
    if (from === to) {
      m.reason = reason;
      // A restart while easing starts the ease-in over.
      if (to === "easing") m.readySinceMs = now;
      return;
    }
    m.state = to;
    m.reason = reason;
    m.stateSinceMs = now;
    if (to === "easing") {
      m.readySinceMs = now;
      // Back from out or draining: start from a clean slate, in the balancer too (its per-server
      // state dates from before the outage). The ease-in protects the server meanwhile.
      if (from === "out" || from === "draining") {
        m.stats.resetRouterFigures();
        this.#deps.balancer.onRemove?.(m.id);
      }
    }
    this.#emit({ type: "state", pool: this.name, member: m, from, to, reason });
  }

  #emit(e: PoolEvent): void {
    try {
      this.#deps.onEvent?.(e);
    } catch {
      // An observer must not break the pool.
    }
  }
}

export function viewOf(m: Member): ServerView {
  return {
    id: m.id,
    readySinceMs: m.readySinceMs,
    reported: m.stats.reported,
    inFlight: m.stats.inFlight,
    latencyMs: m.stats.latencyMs,
    failureRate: m.stats.failureRate,
  };
}

function safeScore(b: Balancer, v: ServerView, now: number): number | undefined {
  try {
    const s = b.score?.(v, now);
    return s === undefined || !Number.isFinite(s) ? undefined : s;
  } catch {
    return undefined;
  }
}
