/**
 * Figures the dashboard needs and the router's per-server state does not keep: request and error
 * counts, failovers and latency percentiles per server and for the whole router. It implements the
 * router's telemetry seam ({@link RouterRequestObserver}), so the router feeds it exactly as it
 * feeds telemetry; `record`/`failover` are the same entry points for a router that prefers to call
 * them directly. Cost per request: a few counter increments and one histogram bucket.
 */
import type { Clock } from "../../shared/clock.js";
import type {
  RouterRequestEnd,
  RouterRequestObserver,
  RouterRequestScope,
  RouterRequestStart,
} from "../../shared/call-observer.js";
import { WindowedHistogram } from "./windowed-histogram.js";

export interface RequestFigures {
  readonly requestsTotal: number;
  readonly errorsTotal: number;
  readonly failoversTotal: number;
  readonly latencyP50Ms: number | undefined;
  readonly latencyP99Ms: number | undefined;
}

export interface RouterRequestFigures extends RequestFigures {
  readonly inFlight: number;
}

export interface RequestRecorder extends RouterRequestObserver {
  /** A request ended on `server` (undefined: no server answered). Latency counts only when `failed` is false. */
  record(server: string | undefined, latencyMs: number, failed: boolean): void;
  /** An attempt on `server` failed and the router moved on. */
  failover(server: string): void;
  server(id: string): RequestFigures | undefined;
  router(): RouterRequestFigures;
  /** Drops the figures of servers not in `ids` (they left every pool), so churn cannot fill the table. */
  retain(ids: ReadonlySet<string>): void;
}

export interface RequestRecorderOptions {
  readonly clock: Clock;
  /** Window of the latency percentiles (ms). */
  readonly windowMs?: number;
  /** Servers tracked at most; requests to further ones count only in the router totals. */
  readonly maxServers?: number;
}

interface Counters {
  requests: number;
  errors: number;
  failovers: number;
  readonly latency: WindowedHistogram;
}

/** Outcomes that do not count against a server: the client gave up. */
const NOT_A_FAILURE = new Set(["ok", "aborted"]);

export function createRequestRecorder(options: RequestRecorderOptions): RequestRecorder {
  const { clock } = options;
  const windowMs = options.windowMs ?? 10_000;
  const maxServers = options.maxServers ?? 1024;
  const servers = new Map<string, Counters>();
  const total: Counters = {
    requests: 0,
    errors: 0,
    failovers: 0,
    latency: new WindowedHistogram({ windowMs }),
  };
  let inFlight = 0;

  const countersFor = (id: string): Counters | undefined => {
    let c = servers.get(id);
    if (c === undefined && servers.size < maxServers) {
      c = { requests: 0, errors: 0, failovers: 0, latency: new WindowedHistogram({ windowMs }) };
      servers.set(id, c);
    }
    return c;
  };

  const figures = (c: Counters): RequestFigures => {
    const [p50, p99] = c.latency.percentiles([0.5, 0.99], clock.now());
    return {
      requestsTotal: c.requests,
      errorsTotal: c.errors,
      failoversTotal: c.failovers,
      latencyP50Ms: p50,
      latencyP99Ms: p99,
    };
  };

  const recorder: RequestRecorder = {
    record(server, latencyMs, failed) {
      const now = clock.now();
      total.requests++;
      if (failed) total.errors++;
      else total.latency.record(latencyMs, now);
      if (server === undefined) return;
      const c = countersFor(server);
      if (c === undefined) return;
      c.requests++;
      if (failed) c.errors++;
      else c.latency.record(latencyMs, now);
    },
    failover(server) {
      total.failovers++;
      const c = countersFor(server);
      if (c) c.failovers++;
    },
    server(id) {
      const c = servers.get(id);
      return c === undefined ? undefined : figures(c);
    },
    router() {
      return { ...figures(total), inFlight };
    },
    retain(ids) {
      for (const id of servers.keys()) if (!ids.has(id)) servers.delete(id);
    },
    onRequestStart(_req: RouterRequestStart): RouterRequestScope {
      inFlight++;
      return scope;
    },
  };
  // Nothing per request lives in the scope, so every request shares this one: no allocation.
  const scope: RouterRequestScope = {
    decision() {},
    failover(server) {
      recorder.failover(server);
    },
    end(end: RouterRequestEnd) {
      inFlight = Math.max(0, inFlight - 1);
      const failed = !NOT_A_FAILURE.has(end.outcome) || end.status >= 500 || end.status === 0;
      // A client that gave up says nothing about the server; neither counted as error nor timed.
      if (end.outcome === "aborted") {
        total.requests++;
        if (end.server !== undefined) {
          const c = countersFor(end.server);
          if (c) c.requests++;
        }
        return;
      }
      recorder.record(end.server, end.durationMs, failed);
    },
  };
  return recorder;
}
