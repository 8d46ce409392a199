/**
 * A simulated application server with its sidecar: a fixed number of worker slots, a FIFO queue
 * behind them, service times drawn from a distribution and divided by the server's speed, and the
 * sidecar's cumulative load report (epoch, seq, uptime, totals, live in-flight and age, cpu ≈
 * busy slots / slots). Scheduled events slow it down, kill it (every call in it is reset) and bring
 * it back with a new epoch, or make it answer errors at once (fail-fast).
 */
import type { ReportSample } from "../router/server-stats.js";
import { IN_FLIGHT_BUCKETS } from "../shared/load-report.js";
import type { EventQueue } from "./event-queue.js";

export interface SimRequest {
  readonly id: number;
  /** Client arrival time (ms): latency is measured from here, so queueing is never hidden. */
  readonly arrivedAtMs: number;
  readonly routerIndex: number;
  /** Time this attempt was sent by the router. */
  sentAtMs: number;
  attempt: number;
  serverIndex: number;
  /** Set when the client already got an answer (timeout): a late response is dropped. */
  done: boolean;
  /** When the attempt reached the server (sidecar timing starts here). */
  atServerMs: number;
  /** Top-level calls in the server when it arrived (the sidecar's `byInFlight` bucket). */
  aheadAtServer: number;
}

export interface ServerOutcome {
  readonly ok: boolean;
  /** Reset by a server death (the app may have seen it) rather than refused or answered with an error. */
  readonly reset: boolean;
  readonly report: ReportSample | undefined;
}

export interface SimServerConfig {
  readonly index: number;
  readonly id: string;
  readonly slots: number;
  readonly speed: number;
  readonly sampleServiceMs: () => number;
  /**
   * Nested calls (as the real bench's servers make): whether this call makes one (drawn per call)
   * and its service time at speed 1; the call holds its slot through half its service, the nested
   * call (plus `nestedHopMs` through the sidecar and back) and the other half. Absent: none.
   */
  readonly nested?: {
    readonly makesNested: () => boolean;
    readonly sampleNestedMs: () => number;
    readonly hopMs: number;
  };
  /** Time to answer an error in fail-fast mode. */
  readonly failFastMs: number;
  readonly cpuSampleMs: number;
  /** Attach a report to every response (piggyback); costs an allocation per call, so off unless used. */
  readonly piggyback: boolean;
}

export class SimServer {
  readonly cfg: SimServerConfig;
  alive = false;
  /** Service time multiplier (1 = normal; 4 = four times slower). */
  slowFactor = 1;
  failFast = false;
  /** Requests sent to this server that have not arrived yet (the oracle counts them). */
  incoming = 0;
  busy = 0;
  /** Counts per server for the shares table (attempts that reached it, whatever the outcome). */
  served = 0;
  #queue: SimRequest[] = [];
  #head = 0;
  #generation = 0;
  #epochNo = 0;
  #startedAt = 0;
  #seq = 0;
  #taskSeconds = 0;
  #calls = 0;
  #errors = 0;
  #inSystem = 0;
  #nestedInFlight = 0;
  #nestedCalls = 0;
  #bucketCalls: number[] = [];
  #bucketSeconds: number[] = [];
  #sumArrival = 0;
  #busyIntegral = 0;
  #busyAt = 0;
  #cpu = 0;
  #cpuAt = 0;
  #cpuIntegralAt = 0;
  #inService = new Set<SimRequest>();
  readonly #events: EventQueue;
  readonly #respond: (req: SimRequest, outcome: ServerOutcome) => void;

  constructor(
    cfg: SimServerConfig,
    events: EventQueue,
    respond: (req: SimRequest, outcome: ServerOutcome) => void,
  ) {
    this.cfg = cfg;
    this.#events = events;
    this.#respond = respond;
  }

  get queued(): number {
    return this.#queue.length - this.#head;
  }

  /** Mean service time now (ms), for the oracle. */
  meanServiceMs(baseMeanMs: number): number {
    return (baseMeanMs * this.slowFactor) / this.cfg.speed;
  }

  start(now: number): void {
    this.alive = true;
    this.#generation++;
    this.#epochNo++;
    this.#startedAt = now;
    this.#seq = 0;
    this.#taskSeconds = 0;
    this.#calls = 0;
    this.#errors = 0;
    this.#inSystem = 0;
    this.#nestedInFlight = 0;
    this.#nestedCalls = 0;
    this.#bucketCalls = [];
    this.#bucketSeconds = [];
    this.#sumArrival = 0;
    this.busy = 0;
    // The busy integral runs across lifetimes (the utilisation statistics span the whole run).
    this.#busyAt = now;
    this.#cpu = 0;
    this.#cpuAt = now;
    this.#cpuIntegralAt = this.#busyIntegral;
  }

  /** Death: every call in the server is reset; their routers learn it after the network delay. */
  kill(now: number): void {
    if (!this.alive) return;
    this.#accrue(now);
    this.alive = false;
    this.#generation++;
    const dropped = [...this.#inService, ...this.#queue.slice(this.#head)];
    this.#inService.clear();
    this.#queue = [];
    this.#head = 0;
    this.busy = 0;
    this.#inSystem = 0;
    this.#nestedInFlight = 0;
    for (const req of dropped) this.#respond(req, { ok: false, reset: true, report: undefined });
  }

  /** A request reaches the sidecar. Returns false when nothing listens (connection refused). */
  arrive(req: SimRequest, now: number): boolean {
    if (!this.alive) return false;
    this.served++;
    req.atServerMs = now;
    req.aheadAtServer = this.#inSystem;
    this.#inSystem++;
    this.#sumArrival += now;
    if (this.failFast) {
      const gen = this.#generation;
      this.#events.after(this.cfg.failFastMs, () => {
        if (gen === this.#generation) this.#finish(req, this.#events.now(), false);
      });
      return true;
    }
    if (this.busy < this.cfg.slots) this.#startService(req, now);
    else this.#queue.push(req);
    return true;
  }

  #startService(req: SimRequest, now: number): void {
    this.#accrue(now);
    this.busy++;
    this.#inService.add(req);
    const gen = this.#generation;
    const duration = (this.cfg.sampleServiceMs() * this.slowFactor) / this.cfg.speed;
    const done = (): void => {
      if (gen !== this.#generation) return;
      const t = this.#events.now();
      this.#accrue(t);
      this.busy--;
      this.#inService.delete(req);
      this.#finish(req, t, true);
      if (this.#head < this.#queue.length) {
        const next = this.#queue[this.#head++]!;
        if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
          this.#queue = this.#queue.slice(this.#head);
          this.#head = 0;
        }
        this.#startService(next, t);
      }
    };
    const nested = this.cfg.nested;
    if (nested === undefined || !nested.makesNested()) {
      this.#events.after(duration, done);
      return;
    }
    const nestedMs = (nested.sampleNestedMs() * this.slowFactor) / this.cfg.speed;
    this.#events.after(duration / 2 + nested.hopMs / 2, () => {
      if (gen !== this.#generation) return;
      this.#nestedInFlight++;
      this.#events.after(nestedMs, () => {
        if (gen !== this.#generation) return;
        this.#nestedInFlight--;
        this.#nestedCalls++;
        this.#events.after(nested.hopMs / 2 + duration / 2, done);
      });
    });
  }

  #finish(req: SimRequest, now: number, ok: boolean): void {
    // As the real sidecar does, the piggybacked report is made as the response starts: the call is
    // still in the live figures and not yet in the totals (docs/load-report.md).
    const report = this.cfg.piggyback ? this.report(now, false) : undefined;
    this.#inSystem--;
    this.#sumArrival -= req.atServerMs;
    this.#taskSeconds += (now - req.atServerMs) / 1000;
    this.#calls++;
    const k = Math.min(req.aheadAtServer, IN_FLIGHT_BUCKETS - 1);
    while (this.#bucketCalls.length <= k) {
      this.#bucketCalls.push(0);
      this.#bucketSeconds.push(0);
    }
    this.#bucketCalls[k]!++;
    this.#bucketSeconds[k]! += (now - req.atServerMs) / 1000;
    if (!ok) this.#errors++;
    this.#respond(req, { ok, reset: false, report });
  }

  #accrue(now: number): void {
    this.#busyIntegral += this.busy * (now - this.#busyAt);
    this.#busyAt = now;
  }

  /**
   * The sidecar's report now (undefined when the server is down: the poll is refused). The
   * piggybacked form has no room for `byInFlight`, as in the real sidecar.
   */
  report(now: number, withProfile = true): ReportSample | undefined {
    if (!this.alive) return undefined;
    this.#accrue(now);
    // CPU is sampled over fixed periods, as a host sampler would, not per poll.
    if (now - this.#cpuAt >= this.cfg.cpuSampleMs) {
      this.#cpu = (this.#busyIntegral - this.#cpuIntegralAt) / (this.cfg.slots * (now - this.#cpuAt));
      this.#cpuAt = now;
      this.#cpuIntegralAt = this.#busyIntegral;
    }
    const inFlight = Math.max(0, this.#inSystem);
    return {
      epoch: `${this.cfg.id}#${this.#epochNo}`,
      seq: ++this.#seq,
      uptimeSeconds: (now - this.#startedAt) / 1000,
      state: "serving",
      totals: {
        taskSeconds: this.#taskSeconds,
        topLevelCalls: this.#calls,
        nestedCalls: this.#nestedCalls,
        errors: this.#errors,
        ...(withProfile && this.#bucketCalls.length > 0
          ? { byInFlight: { calls: [...this.#bucketCalls], taskSeconds: [...this.#bucketSeconds] } }
          : {}),
      },
      live: {
        inFlight: inFlight + this.#nestedInFlight,
        inFlightTopLevel: inFlight,
        inFlightAgeSeconds: Math.max(0, (inFlight * now - this.#sumArrival) / 1000),
        cpu: Math.min(1, Math.max(0, this.#cpu)),
        cores: this.cfg.slots,
      },
    };
  }

  /** Seconds of busy slot time so far (utilisation = this / (slots × elapsed)). */
  busySlotSeconds(now: number): number {
    this.#accrue(now);
    return this.#busyIntegral / 1000;
  }

  /** Calls in the server (in service + queued). */
  get inSystem(): number {
    return this.#inSystem;
  }
}
