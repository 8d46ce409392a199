/**
 * A simulated router: one real {@link ServerStats} per server and one real balancer, fed exactly as
 * the real router feeds them — polled reports (delivered after the network round trip), optionally
 * piggybacked reports, request start and end with the latency this router saw, failures. Servers
 * leave rotation after `maxMisses` failed polls and come back (eased in) when a poll succeeds.
 */
import type { Balancer, ServerView } from "../router/balancers/balancer.js";
import { ServerStats, type ReportSample } from "../router/server-stats.js";
import { InFlightProfileDeltas } from "../router/balancers/concurrency.js";

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
  #candidates: StatsView[] | undefined;
  readonly #maxMisses: number;
  readonly #piggybackMinMs: number;

  constructor(index: number, maxMisses: number, piggybackMinMs: number) {
    this.index = index;
    this.#maxMisses = maxMisses;
    this.#piggybackMinMs = piggybackMinMs;
  }

  /** A server the router knows of; `inRotation` for servers already running when the run starts. */
  addServer(id: string, index: number, inRotation: boolean): void {
    this.views[index] = new StatsView(id, index);
    this.#inRotation[index] = inRotation;
    this.#misses[index] = 0;
    this.#lastPiggyback[index] = Number.NEGATIVE_INFINITY;
    this.#candidates = undefined;
  }

  knows(index: number): boolean {
    return this.views[index] !== undefined;
  }

  candidates(): readonly StatsView[] {
    if (!this.#candidates)
      this.#candidates = this.views.filter((v, i) => v !== undefined && this.#inRotation[i]);
    return this.#candidates;
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
