/**
 * The sidecar's load figures: cumulative, monotonic totals since start (task-seconds, top-level and
 * nested calls, errors), live figures (calls in flight, summed age of top-level calls in flight,
 * CPU and what it is measured against), a random epoch naming this process lifetime and a report sequence number. It turns
 * them into the `LoadReport` of src/shared/load-report.ts and its piggyback header form.
 *
 * Call lifecycle events are published on `node:diagnostics_channel` ({@link CALL_START_CHANNEL},
 * {@link CALL_END_CHANNEL}) so tests, telemetry or a debugger can watch calls without being wired
 * into the request path; publishing is skipped when nobody subscribes.
 */
import { randomBytes } from "node:crypto";
import { channel } from "node:diagnostics_channel";
import type { Clock } from "../shared/clock.js";
import {
  encodeLoadHeader,
  IN_FLIGHT_BUCKETS,
  LOAD_REPORT_VERSION,
  type InFlightProfile,
  type LoadReport,
  type SidecarState,
} from "../shared/load-report.js";
import { CausalityTable, type CallEndResult, type TrackedCall } from "./causality.js";
import type { CpuSampler } from "./cpu-sampler.js";

export const CALL_START_CHANNEL = "tasklb:sidecar:call-start";
export const CALL_END_CHANNEL = "tasklb:sidecar:call-end";

export interface CallStartMessage {
  readonly causalityId: string;
  readonly startMs: number;
}

export interface CallEndMessage {
  readonly causalityId: string;
  readonly startMs: number;
  readonly durationMs: number;
  readonly topLevel: boolean;
  /** Status the client got (0 when none was sent). */
  readonly status: number;
  /** "ok", "aborted" or an error code from src/shared/errors.ts. */
  readonly outcome: string;
  /** Whether the call counted as an error. */
  readonly error: boolean;
}

const startChannel = channel(CALL_START_CHANNEL);
const endChannel = channel(CALL_END_CHANNEL);

export interface LoadTrackerOptions {
  readonly clock: Clock;
  readonly cpu: CpuSampler;
  readonly maxTrackedCalls: number;
  readonly callMaxAgeMs: number;
  /** The piggyback header is recomputed at most this often (ms); responses in between reuse it. */
  readonly headerRefreshMs?: number;
  /** Fixed epoch, for tests; random otherwise. */
  readonly epoch?: string;
}

export interface ReportContext {
  readonly state: SidecarState;
  readonly appReachable: boolean;
  readonly dataUrl: string;
}

/** A call counts as an error when the client got a 5xx (the app's or ours) or no complete answer. */
export function isErrorOutcome(outcome: string, status: number): boolean {
  return outcome !== "ok" || status >= 500;
}

/** Buckets of `totals.byInFlight` (the contract's; see load-report.ts). */
export { IN_FLIGHT_BUCKETS };

export class LoadTracker {
  readonly epoch: string;
  readonly #clock: Clock;
  readonly #cpu: CpuSampler;
  readonly #table: CausalityTable;
  readonly #startedAt: number;
  readonly #headerRefreshMs: number;
  #seq = 0;
  #taskMs = 0;
  #topLevelCalls = 0;
  #nestedCalls = 0;
  #errors = 0;
  readonly #bucketCalls = new Array<number>(IN_FLIGHT_BUCKETS).fill(0);
  readonly #bucketMs = new Array<number>(IN_FLIGHT_BUCKETS).fill(0);
  #header = "";
  #headerAt = -Infinity;
  #headerState: SidecarState | undefined;

  constructor(opts: LoadTrackerOptions) {
    this.#clock = opts.clock;
    this.#cpu = opts.cpu;
    this.#table = new CausalityTable(opts);
    this.#startedAt = opts.clock.now();
    this.#headerRefreshMs = opts.headerRefreshMs ?? 5;
    this.epoch = opts.epoch ?? randomBytes(8).toString("hex");
  }

  get inFlight(): number {
    return this.#table.inFlight;
  }

  get table(): CausalityTable {
    return this.#table;
  }

  callStart(causalityId: string): TrackedCall {
    const ahead = this.#table.inFlightTopLevel;
    const call = this.#table.start(causalityId);
    call.aheadTopLevel = ahead;
    if (startChannel.hasSubscribers) {
      startChannel.publish({ causalityId, startMs: call.startMs } satisfies CallStartMessage);
    }
    return call;
  }

  /** Ends a call once; a second end of the same call returns undefined and changes nothing. */
  callEnd(call: TrackedCall, status: number, outcome: string): CallEndResult | undefined {
    const result = this.#table.end(call);
    if (result === undefined) return undefined;
    if (result.topLevel) {
      this.#topLevelCalls++;
      this.#taskMs += result.durationMs;
      const k = Math.min(call.aheadTopLevel, IN_FLIGHT_BUCKETS - 1);
      this.#bucketCalls[k]!++;
      this.#bucketMs[k]! += result.durationMs;
    } else {
      this.#nestedCalls++;
    }
    const error = isErrorOutcome(outcome, status);
    if (error) this.#errors++;
    if (endChannel.hasSubscribers) {
      endChannel.publish({
        causalityId: call.causalityId,
        startMs: call.startMs,
        durationMs: result.durationMs,
        topLevel: result.topLevel,
        status,
        outcome,
        error,
      } satisfies CallEndMessage);
    }
    return result;
  }

  /** A new report; every report (and every new piggyback header) takes the next sequence number. */
  report(ctx: ReportContext): LoadReport {
    return this.#build(ctx, true);
  }

  #build(ctx: ReportContext, full: boolean): LoadReport {
    const now = this.#clock.now();
    return {
      version: LOAD_REPORT_VERSION,
      epoch: this.epoch,
      seq: ++this.#seq,
      uptimeSeconds: (now - this.#startedAt) / 1000,
      state: ctx.state,
      appReachable: ctx.appReachable,
      dataUrl: ctx.dataUrl,
      totals: {
        taskSeconds: this.#taskMs / 1000,
        topLevelCalls: this.#topLevelCalls,
        nestedCalls: this.#nestedCalls,
        errors: this.#errors,
        // The header has no room for it; building it per header would cost an allocation.
        ...(full ? { byInFlight: this.#profile() } : {}),
      },
      live: {
        inFlight: this.#table.inFlight,
        inFlightTopLevel: this.#table.inFlightTopLevel,
        inFlightAgeSeconds: this.#table.inFlightTopLevelAgeMs(now) / 1000,
        cpu: this.#cpu.utilisation,
        cores: this.#cpu.cores,
        // The header's format is fixed; the basis changes rarely and the JSON report carries it.
        ...(full ? { cpuSource: this.#cpu.source, cpuCores: this.#cpu.capacityCores } : {}),
      },
    };
  }

  /** `totals.byInFlight`, trimmed after the last bucket that ever counted a call (at least one). */
  #profile(): InFlightProfile {
    let n = IN_FLIGHT_BUCKETS;
    while (n > 1 && this.#bucketCalls[n - 1] === 0) n--;
    return {
      calls: this.#bucketCalls.slice(0, n),
      taskSeconds: this.#bucketMs.slice(0, n).map((ms) => ms / 1000),
    };
  }

  /**
   * The `x-tasklb-load` value. Rebuilt at most every `headerRefreshMs`, so a busy sidecar pays for
   * one report per few milliseconds instead of one per response.
   */
  loadHeader(state: SidecarState): string {
    const now = this.#clock.now();
    if (now - this.#headerAt < this.#headerRefreshMs && state === this.#headerState) return this.#header;
    this.#headerAt = now;
    this.#headerState = state;
    this.#header = encodeLoadHeader(this.#build({ state, appReachable: true, dataUrl: "" }, false));
    return this.#header;
  }

  close(): void {
    this.#cpu.close();
  }
}
