/**
 * The demo's cluster, all in one process on loopback: demo apps of different speeds, a real
 * sidecar in front of each (the same code `tasklb sidecar` runs), and one real router over them.
 */
import type { LogLevel } from "../shared/log.js";
import { createLogger } from "../shared/log.js";
import { loadRouterConfig, type AlgorithmName } from "../router/config.js";
import { createRouterDashboard } from "../router/dashboard/router-dashboard.js";
import { createRouter, type Router, type RouterAddresses } from "../router/router.js";
import { loadSidecarConfig } from "../sidecar/config.js";
import { createSidecar, type Sidecar } from "../sidecar/sidecar.js";
import { createDemoApp, type DemoApp, type DemoAppOptions } from "./demo-app.js";

/** Speeds chosen so the fastest server has six times the capacity of the slowest. */
export const DEMO_APPS: readonly DemoAppOptions[] = [
  { name: "alpha", workers: 4, meanMs: 20, sigma: 0.5, nestedProbability: 0.2 },
  { name: "bravo", workers: 4, meanMs: 30, sigma: 0.5, nestedProbability: 0.2 },
  { name: "charlie", workers: 4, meanMs: 45, sigma: 0.5, nestedProbability: 0.2 },
  { name: "delta", workers: 2, meanMs: 60, sigma: 0.5, nestedProbability: 0.2 },
];

export interface DemoNode {
  readonly options: DemoAppOptions;
  readonly app: DemoApp;
  readonly sidecar: Sidecar;
  readonly dataUrl: string;
}

export interface DemoCluster {
  readonly nodes: readonly DemoNode[];
  readonly router: Router;
  readonly addresses: RouterAddresses;
  close(): Promise<void>;
}

export async function startDemoCluster(opts: {
  algorithm: AlgorithmName;
  logLevel: LogLevel;
  apps?: readonly DemoAppOptions[];
}): Promise<DemoCluster> {
  const logger = createLogger(opts.logLevel, { role: "demo" });
  const closers: (() => Promise<unknown>)[] = [];
  const close = async () => {
    for (const c of closers.reverse()) await c().catch(() => undefined);
  };
  try {
    const nodes = await Promise.all(
      (opts.apps ?? DEMO_APPS).map(async (options) => {
        const app = createDemoApp(options);
        closers.push(() => app.close());
        const appUrl = await app.listen("127.0.0.1", 0);
        const config = loadSidecarConfig(
          [
            "--app",
            appUrl,
            "--listen",
            "127.0.0.1:0",
            "--control",
            "127.0.0.1:0",
            "--log-level",
            opts.logLevel,
          ],
          {},
        );
        const sidecar = createSidecar(config, {
          logger: logger.child({ role: "sidecar", app: options.name }),
          appProbeIntervalMs: 250,
        });
        closers.push(() => sidecar.close());
        const a = await sidecar.listen();
        app.setSelfUrl(a.dataUrl);
        return { options, app, sidecar, dataUrl: a.dataUrl, controlUrl: a.controlUrl };
      }),
    );
    const config = loadRouterConfig(
      [
        "--listen",
        "127.0.0.1:0",
        "--admin",
        "127.0.0.1:0",
        "--server",
        nodes.map((n) => `${n.dataUrl}=${n.controlUrl}`).join(","),
        "--algorithm",
        opts.algorithm,
        "--ease-in-ms",
        "1000",
        "--log-level",
        opts.logLevel,
      ],
      {},
    );
    const names = new Map(nodes.map((n) => [n.dataUrl, n.options.name]));
    const ref: { router?: Router } = {};
    const dashboard = createRouterDashboard(
      { token: undefined },
      {
        servers: () => ref.router!.snapshot(),
        inFlight: () => ref.router?.inFlight ?? 0,
        nameOf: (dataUrl) => names.get(dataUrl),
      },
    );
    const router = createRouter(config, {
      logger: logger.child({ role: "router" }),
      observer: dashboard.recorder,
      adminRoutes: [dashboard.route],
    });
    ref.router = router;
    closers.push(() => router.close());
    closers.push(async () => dashboard.close());
    const addresses = await router.listen();
    dashboard.start();
    return { nodes, router, addresses, close };
  } catch (err) {
    await close();
    throw err;
  }
}
