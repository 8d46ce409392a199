/**
 * A simulated router: one real {@link ServerStats} per server and one real balancer, fed exactly as
 * the real router feeds them — polled reports (delivered after the network round trip), optionally
 * piggybacked reports, request start and end with the latency this router saw, failures. Servers
 * leave rotation after `maxMisses` failed polls and come back (eased in) when a poll succeeds.
 */
import type { Balancer, ServerView } from "../router/balancers/balancer.js";
import { ServerStats, type ReportSample } from "../router/server-stats.js";
import { InFlightProfileDeltas } from "../router/balancers/concurrency.js";
import { easeInShare, easingAdmitted } from "../router/pool.js";
import { MAX_POLL_GAP_MS } from "../router/poller.js";

/** A live view over one server's stats: the balancer reads current figures without a copy per pick. */
export class StatsView implements ServerView {
  readonly id: string;
  readonly index: number;
  readySinceMs = Number.NEGATIVE_INFINITY;
  readonly stats = new ServerStats();
  /** Interval deltas of `totals.byInFlight`, for as long as ServerStats does not derive them. */
  readonly profiles = new InFlightProfileDeltas();
  constructor(id: string, index: number) {
    this.id = id;
    this.index = index;
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
  #candidates: StatsView[] | undefined;
  readonly #offered: StatsView[] = [];
  readonly #maxMisses: number;
  readonly #piggybackMinMs: number;
  readonly #easeInMs: number;
  readonly #random: () => number;

  /**
   * `easeInMs` and `random`: the router pool's ease-in (--ease-in-ms) and its lottery; see
   * {@link SimRouter.offered}.
   */
  constructor(index: number, maxMisses: number, piggybackMinMs: number, easeInMs = 0, random = Math.random) {
    this.index = index;
    this.#maxMisses = maxMisses;
    this.#piggybackMinMs = piggybackMinMs;
    this.#easeInMs = easeInMs;
    this.#random = random;
  }

  /** A server the router knows of; `inRotation` for servers already running when the run starts. */
  addServer(id: string, index: number, inRotation: boolean): void {
    this.views[index] = new StatsView(id, index);
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
        view.profiles.reset();
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

  /** A report that rode on a response; used at most once per server per `piggybackMinMs`. */
  onPiggyback(index: number, sample: ReportSample, now: number): void {
    const view = this.views[index];
    if (!view || now - this.#lastPiggyback[index]! < this.#piggybackMinMs) return;
    this.#lastPiggyback[index] = now;
    this.#feed(view, sample, now);
  }

  #feed(view: StatsView, sample: ReportSample, now: number): void {
    const firstOfEpoch = view.stats.baseline?.epoch !== sample.epoch;
    let load = view.stats.onReport(sample, now);
    if (load !== undefined && load.inFlightProfile === undefined) {
      const delta = view.profiles.next(sample.epoch, sample.totals.byInFlight);
      if (delta !== undefined) load = { ...load, inFlightProfile: delta };
    } else if (firstOfEpoch) {
      view.profiles.next(sample.epoch, sample.totals.byInFlight);
    }
    if (load) {
      this.reportsUsed++;
      this.balancer.onReport?.(view.id, load, now);
    }
  }
}
