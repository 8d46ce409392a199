/**
 * A simulated router: one real {@link ServerStats} per server and one real balancer, fed exactly as
 * the real router feeds them — polled reports (delivered after the network round trip), optionally
 * piggybacked reports, request start and end with the latency this router saw, failures. Servers
 * leave rotation after `maxMisses` failed polls and come back (eased in) when a poll succeeds.
 */
import type { Balancer, ServerView } from "../router/balancers/balancer.js";
import { ServerStats, type ReportSample } from "../router/server-stats.js";
import { easeInShare, easingAdmitted } from "../router/pool.js";
import { MAX_POLL_GAP_MS } from "../router/poller.js";

/** A live view over one server's stats: the balancer reads current figures without a copy per pick. */
export class StatsView implements ServerView {
  readonly id: string;
  readonly index: number;
  readySinceMs = Number.NEGATIVE_INFINITY;
  readonly stats: ServerStats;
  constructor(id: string, index: number, minRateIntervalSeconds: number) {
    this.id = id;
    this.index = index;
    this.stats = new ServerStats({ minRateIntervalSeconds });
  }
  get reported() {
    return this.stats.reported;
  }
  get inFlight(): number {
    return this.stats.inFlight;
  }
  get latencyMs(): number | undefined {
    return this.stats.latencyMs;
  }
  get failureRate(): number {
    return this.stats.failureRate;
  }
}

export class SimRouter {
  readonly index: number;
  readonly views: StatsView[] = [];
  balancer!: Balancer;
  polls = 0;
  reportsUsed = 0;
  #inRotation: boolean[] = [];
  #misses: number[] = [];
  #lastPiggyback: number[] = [];
  #lastPollAt: number[] = [];
  readonly #minRateIntervalSeconds: number;
  #candidates: StatsView[] | undefined;
  readonly #offered: StatsView[] = [];
  readonly #maxMisses: number;
  readonly #easeInMs: number;
  readonly #random: () => number;

  /**
   * `pollIntervalMs` sets the shortest interval rates are taken over, as in the router (router.ts);
   * `easeInMs` and `random`: the router pool's ease-in (--ease-in-ms) and its lottery; see
   * {@link SimRouter.offered}.
   */
  constructor(index: number, maxMisses: number, pollIntervalMs: number, easeInMs = 0, random = Math.random) {
    this.index = index;
    this.#maxMisses = maxMisses;
    this.#minRateIntervalSeconds = Math.min(0.05, pollIntervalMs / 2000);
    this.#easeInMs = easeInMs;
    this.#random = random;
  }

  /** A server the router knows of; `inRotation` for servers already running when the run starts. */
  addServer(id: string, index: number, inRotation: boolean): void {
    this.views[index] = new StatsView(id, index, this.#minRateIntervalSeconds);
    this.#inRotation[index] = inRotation;
    this.#misses[index] = 0;
    this.#lastPiggyback[index] = Number.NEGATIVE_INFINITY;
    this.#lastPollAt[index] = Number.NEGATIVE_INFINITY;
    this.#candidates = undefined;
  }

  /**
   * Whether the real poller (src/router/poller.ts) polls this server now: not while a piggybacked
   * report is younger than the interval, unless the last poll is MAX_POLL_GAP_MS old; always while
   * the server is out of rotation (only a poll brings it back). Records the poll when it is due.
   */
  pollDue(index: number, now: number, pollIntervalMs: number): boolean {
    if (
      this.#inRotation[index] &&
      now - this.#lastPiggyback[index]! < pollIntervalMs &&
      now - this.#lastPollAt[index]! < MAX_POLL_GAP_MS
    )
      return false;
    this.#lastPollAt[index] = now;
    return true;
  }

  knows(index: number): boolean {
    return this.views[index] !== undefined;
  }

  candidates(): readonly StatsView[] {
    if (!this.#candidates)
      this.#candidates = this.views.filter((v, i) => v !== undefined && this.#inRotation[i]);
    return this.#candidates;
  }

  /**
   * The servers offered to the balancer for one pick, as the real pool offers them (pool.ts): every
   * server in rotation, except that one still easing in (within easeInMs of entering rotation) takes
   * part only in a growing share of picks, and only while its in-flight count stays below that share
   * of the busiest fully-in server's. The returned array is reused by the next call.
   */
  offered(now: number): readonly StatsView[] {
    const all = this.candidates();
    if (this.#easeInMs <= 0) return all;
    let easing = false;
    let maxReadyInFlight = 0;
    let ready = 0;
    for (const v of all) {
      if (now - v.readySinceMs < this.#easeInMs) easing = true;
      else {
        ready++;
        if (v.inFlight > maxReadyInFlight) maxReadyInFlight = v.inFlight;
      }
    }
    if (!easing || ready === 0) return all;
    const out = this.#offered;
    out.length = 0;
    for (const v of all) {
      const since = now - v.readySinceMs;
      if (since < this.#easeInMs) {
        const share = easeInShare(since, this.#easeInMs);
        if (!easingAdmitted(share, v.inFlight, maxReadyInFlight, this.#random)) continue;
      }
      out.push(v);
    }
    return out;
  }

  /** A poll answered (report) or refused/timed out (undefined), seen at `now`. */
  onPoll(index: number, sample: ReportSample | undefined, now: number): void {
    const view = this.views[index];
    if (!view) return;
    if (sample === undefined) {
      this.#misses[index] = (this.#misses[index] ?? 0) + 1;
      if (this.#inRotation[index] && this.#misses[index] >= this.#maxMisses) {
        this.#inRotation[index] = false;
        this.#candidates = undefined;
        view.stats.resetReports();
        this.balancer.onRemove?.(view.id);
      }
      return;
    }
    this.#misses[index] = 0;
    if (!this.#inRotation[index]) {
      this.#inRotation[index] = true;
      view.readySinceMs = now;
      this.#candidates = undefined;
    }
    this.#feed(view, sample, now);
  }

  /** A report that rode on a response (every response carries one, as from the real sidecar). */
  onPiggyback(index: number, sample: ReportSample, now: number): void {
    const view = this.views[index];
    if (!view) return;
    this.#lastPiggyback[index] = now;
    this.#feed(view, sample, now);
  }

  #feed(view: StatsView, sample: ReportSample, now: number): void {
    const load = view.stats.onReport(sample, now);
    if (load) {
      this.reportsUsed++;
      this.balancer.onReport?.(view.id, load, now);
    }
  }
}
