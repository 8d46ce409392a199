/**
 * `tasklb sidecar`: parse the configuration, bind the ports, log where they are, and on SIGTERM or
 * SIGINT drain gracefully and resolve (exit 0). A second signal during the drain cuts it short.
 */
import { formatHelp, formatHostPort } from "../shared/config.js";
import { createLogger } from "../shared/log.js";
import { loadSidecarConfig, SIDECAR_COMMAND, SIDECAR_OPTIONS, SIDECAR_SUMMARY } from "./config.js";
import { createSidecar } from "./sidecar.js";
import { setupTelemetry } from "../telemetry/setup.js";

export async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(formatHelp(SIDECAR_COMMAND, SIDECAR_SUMMARY, SIDECAR_OPTIONS));
    return 0;
  }
  const config = loadSidecarConfig(argv, env);
  const logger = createLogger(config.logLevel, { role: "sidecar" });
  // Telemetry first: the sidecar takes its observer; the metrics read the sidecar's report only
  // when scraped or exported, i.e. after the sidecar exists.
  const telemetry = setupTelemetry({
    role: "sidecar",
    env,
    logger,
    getSidecarReport: () => sidecar.report(),
  });
  const sidecar = createSidecar(config, {
    logger,
    observer: telemetry.sidecarObserver,
    // Open like /livez: Prometheus scraping by pod annotation cannot send a token, and the
    // figures carry no secrets. Keep the control port off the public network.
    controlRoutes: { "/metrics": { handle: telemetry.metricsHandler, auth: false } },
  });

  let signalled: (signal: NodeJS.Signals) => void = () => undefined;
  const stop = new Promise<NodeJS.Signals>((resolve) => (signalled = resolve));
  const onSignal = (signal: NodeJS.Signals) => signalled(signal);
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);

  try {
    const addr = await sidecar.listen();
    // One line with the actual ports: tests and scripts started with port 0 read them from here.
    logger.info("sidecar listening", {
      listen: formatHostPort(addr.data),
      control: formatHostPort(addr.control),
      app: config.app.origin,
      dataUrl: addr.dataUrl,
      controlUrl: addr.controlUrl,
      epoch: sidecar.epoch,
      routers: config.router.map((u) => u.href),
      pid: process.pid,
    });

    const signal = await stop;
    logger.info("signal received; draining", { signal });
    process.off("SIGTERM", onSignal);
    process.off("SIGINT", onSignal);
    const again = () => {
      logger.warn("second signal; closing now");
      void sidecar.close();
    };
    process.once("SIGTERM", again);
    process.once("SIGINT", again);
    const { unfinishedCalls } = await sidecar.drain();
    await sidecar.close();
    process.off("SIGTERM", again);
    process.off("SIGINT", again);
    logger.info("sidecar stopped", { unfinishedCalls });
    return 0;
  } catch (err) {
    await sidecar.close();
    throw err;
  } finally {
    process.off("SIGTERM", onSignal);
    process.off("SIGINT", onSignal);
    await telemetry.shutdown();
  }
}
