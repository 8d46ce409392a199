/**
 * Maps the router's `GET /v1/servers` document (servers-snapshot.ts) and the request recorder's
 * figures onto the dashboard's {@link RouterSnapshot}. The only file here that knows the router's
 * shapes: if they change, this stops compiling rather than the page going blank.
 */
import type { ServersSnapshot } from "../servers-snapshot.js";
import type { RequestRecorder } from "./request-recorder.js";
import type { RouterSnapshot, ServerSnapshot } from "./snapshot.js";

export interface AdapterInputs {
  readonly servers: ServersSnapshot;
  readonly recorder: RequestRecorder;
  /** Requests in flight on the router's data port (its own counter, when it has one). */
  readonly inFlight?: number;
  /** Optional display names by data URL (the demo names its apps). */
  readonly nameOf?: (dataUrl: string) => string | undefined;
}

export function toRouterSnapshot(inputs: AdapterInputs): RouterSnapshot {
  const { servers, recorder } = inputs;
  const totals = recorder.router();
  return {
    router: {
      uptimeSeconds: servers.uptimeSeconds,
      draining: servers.draining,
      mode: servers.mode,
      inFlight: inputs.inFlight ?? totals.inFlight,
      requestsTotal: totals.requestsTotal,
      failoversTotal: totals.failoversTotal,
      latencyP50Ms: totals.latencyP50Ms,
      latencyP99Ms: totals.latencyP99Ms,
    },
    pools: servers.pools.map((pool) => ({
      name: pool.name,
      algorithm: pool.algorithm,
      params: pool.params,
      servers: servers.servers.filter((s) => s.pool === pool.name).map((s) => toServer(s, inputs)),
    })),
  };
}

function toServer(s: ServersSnapshot["servers"][number], inputs: AdapterInputs): ServerSnapshot {
  const figures = inputs.recorder.server(s.dataUrl);
  const name = inputs.nameOf?.(s.dataUrl);
  // A piggybacked report is as fresh a report as a polled one.
  const ages = [s.lastReport?.ageMs, s.lastPiggybackAgeMs ?? undefined].filter(
    (a): a is number => a !== undefined,
  );
  return {
    id: s.dataUrl,
    ...(name !== undefined && { name }),
    controlUrl: s.controlUrl,
    state: s.state,
    rank: s.rank ?? undefined,
    score: s.score ?? undefined,
    busy: s.rates?.busy,
    reportedInFlight: s.rates?.inFlightTopLevel ?? s.lastReport?.live.inFlightTopLevel,
    inFlight: s.router.inFlight,
    cpu: s.rates?.cpu ?? s.lastReport?.live.cpu,
    requestsTotal: s.router.requests,
    errorsTotal: s.router.errors,
    latencyP50Ms: figures?.latencyP50Ms,
    latencyP99Ms: figures?.latencyP99Ms,
    latencyEstimateMs: s.router.latencyMs ?? undefined,
    reportAgeMs: ages.length > 0 ? Math.min(...ages) : undefined,
    ...(s.lastReport && {
      report: {
        epoch: s.lastReport.epoch,
        uptimeSeconds: s.lastReport.uptimeSeconds,
        taskSeconds: s.lastReport.totals.taskSeconds,
      },
    }),
  };
}
