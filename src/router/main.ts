/**
 * `tasklb router`: parse the configuration, set up telemetry (OTEL_* variables) and the dashboard,
 * build the router, bind its ports, and drain on SIGTERM/SIGINT (readiness fails, no new
 * connections, in-flight requests finish within --drain-grace-ms). Logs one `router listening`
 * line with the bound addresses, which tests that start it on port 0 read.
 */
import { formatHelp } from "../shared/config.js";
import { createLogger } from "../shared/log.js";
import { metricsAdminRoute } from "../telemetry/metrics-route.js";
import { routerServersFromSnapshot } from "../telemetry/metrics.js";
import { setupTelemetry } from "../telemetry/setup.js";
import { loadRouterConfig, ROUTER_OPTIONS } from "./config.js";
import { combineRequestObservers } from "./dashboard/combine-observers.js";
import { createRouterDashboard } from "./dashboard/router-dashboard.js";
import { createRouter, type Router } from "./router.js";

export const ROUTER_SUMMARY =
  "Poll the sidecars' load reports, rank the servers, and forward (or refer) each request to the best one.";

export async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(formatHelp("router", ROUTER_SUMMARY, ROUTER_OPTIONS));
    return 0;
  }
  const config = loadRouterConfig(argv, env);
  const logger = createLogger(config.logLevel, { role: "router" });
  // The router is built after telemetry and the dashboard, which read it through these closures.
  const ref: { router?: Router } = {};
  const telemetry = setupTelemetry({
    role: "router",
    env,
    logger,
    getRouterServers: () => (ref.router ? routerServersFromSnapshot(ref.router.snapshot()) : undefined),
  });
  const dashboard = createRouterDashboard(
    { token: config.token, trustForwarded: config.trustForwarded },
    {
      servers: () => ref.router!.snapshot(),
      inFlight: () => ref.router?.inFlight ?? 0,
      onError: (err) => logger.warn("dashboard sampling failed", { err: err as Error }),
    },
  );
  const router = createRouter(config, {
    logger,
    observer: combineRequestObservers(telemetry.routerObserver, dashboard.recorder),
    adminRoutes: [metricsAdminRoute(telemetry.metricsHandler, undefined), dashboard.route],
  });
  ref.router = router;
  let addresses;
  try {
    addresses = await router.listen();
  } catch (err) {
    await router.close();
    await telemetry.shutdown();
    throw err;
  }
  dashboard.start();
  logger.info("router listening", {
    listen: addresses.listen,
    admin: addresses.admin,
    mode: config.mode,
    pools: config.pools.map((p) => ({
      name: p.name,
      algorithm: p.algorithm,
      servers: p.servers.length,
      dns: p.dns.length,
    })),
  });

  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.info("signal received; draining", { signal });
      router.drain().then(resolve, (err: unknown) => {
        logger.error("drain failed", { err: err as Error });
        resolve();
      });
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });
  dashboard.close();
  await telemetry.shutdown();
  logger.info("router stopped");
  return 0;
}
