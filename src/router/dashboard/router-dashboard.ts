/**
 * The dashboard as the router mounts it: a request recorder (the router's request observer, for
 * per-server request counts, latency percentiles and failovers), a feed that samples the router
 * once per second, and the admin routes. The router wires it in three places: the observer, the
 * admin routes, and start/close next to its own listen/close (see docs/dashboard.md).
 */
import { createTokenCheck } from "../../shared/auth.js";
import { monotonicClock, type Clock } from "../../shared/clock.js";
import type { ServersSnapshot } from "../servers-snapshot.js";
import { createDashboardFeed, type DashboardFeed } from "./feed.js";
import { createRequestRecorder, type RequestRecorder } from "./request-recorder.js";
import { toRouterSnapshot } from "./router-adapter.js";
import { createDashboardRoutes, type DashboardRoutes } from "./routes.js";

export interface RouterDashboardOptions {
  /** The admin token (undefined or "": the dashboard is open, like the rest of the admin port). */
  readonly token: string | undefined;
  /** Concurrent event streams at most. */
  readonly maxClients?: number;
  readonly historySeconds?: number;
  /** How long a dashboard login lasts (default 12 h; a router restart ends every session anyway). */
  readonly sessionTtlMs?: number;
  /**
   * The router's `--trust-forwarded`: a trusted proxy's `X-Forwarded-Proto: https` then marks the
   * session cookie `Secure`.
   */
  readonly trustForwarded?: boolean;
}

export interface RouterDashboardDeps {
  /** The router's `GET /v1/servers` document; called once per second. */
  readonly servers: () => ServersSnapshot;
  /** Requests in flight on the router's data port. */
  readonly inFlight?: () => number;
  /** Display names by data URL (the demo names its apps). */
  readonly nameOf?: (dataUrl: string) => string | undefined;
  readonly clock?: Clock;
  readonly onError?: (err: unknown) => void;
}

export interface RouterDashboard {
  /** Pass to the router as (or combined into) its request observer. */
  readonly recorder: RequestRecorder;
  /** Mount on the admin port (an AdminRoute). */
  readonly route: DashboardRoutes;
  readonly feed: DashboardFeed;
  /** Starts sampling (call when the router starts listening). */
  start(): void;
  /** Stops sampling and ends the event streams (call before closing the admin server). */
  close(): void;
}

export function createRouterDashboard(
  options: RouterDashboardOptions,
  deps: RouterDashboardDeps,
): RouterDashboard {
  const clock = deps.clock ?? monotonicClock;
  const recorder = createRequestRecorder({ clock });
  const feed = createDashboardFeed({
    clock,
    ...(options.historySeconds !== undefined && { historySeconds: options.historySeconds }),
    ...(deps.onError !== undefined && { onError: deps.onError }),
    getSnapshot: () => {
      const servers = deps.servers();
      recorder.retain(new Set(servers.servers.map((s) => s.dataUrl)));
      return toRouterSnapshot({
        servers,
        recorder,
        ...(deps.inFlight !== undefined && { inFlight: deps.inFlight() }),
        ...(deps.nameOf !== undefined && { nameOf: deps.nameOf }),
      });
    },
  });
  const route = createDashboardRoutes({
    feed,
    tokenCheck: createTokenCheck(options.token),
    clock,
    ...(options.maxClients !== undefined && { maxClients: options.maxClients }),
    ...(options.sessionTtlMs !== undefined && { sessionTtlMs: options.sessionTtlMs }),
    ...(options.trustForwarded !== undefined && { trustForwarded: options.trustForwarded }),
  });
  return {
    recorder,
    route,
    feed,
    start: () => feed.start(),
    close() {
      feed.stop();
      route.close();
    },
  };
}
