/**
 * `tasklb demo`: the whole system on one machine in under a minute. Starts demo apps of different
 * speeds, a sidecar in front of each and a router over them (all in this process, on loopback),
 * drives open-loop Poisson load through the router, makes one server several times slower for a
 * while part-way, shows live how the router spreads the work, and ends with a summary table.
 */
import { formatHelp, loadOptions, type OptionSpec } from "../shared/config.js";
import { LOG_LEVELS, type LogLevel } from "../shared/log.js";
import { ALGORITHMS, type AlgorithmName } from "../router/config.js";
import { startDemoCluster, type DemoNode } from "./cluster.js";
import { renderLine, renderLive, renderSummary, type LiveRow } from "./display.js";
import { createLoadGenerator, percentile, type LoadSample } from "./load-generator.js";

export const DEMO_OPTIONS: readonly OptionSpec[] = [
  {
    key: "durationS",
    flag: "duration-s",
    type: "number",
    default: 25,
    min: 1,
    max: 600,
    help: "how long the load runs (s)",
  },
  {
    key: "rate",
    flag: "rate",
    type: "number",
    default: 150,
    min: 1,
    max: 5000,
    help: "requests per second offered (open loop, Poisson)",
  },
  {
    key: "algorithm",
    flag: "algorithm",
    type: "enum",
    choices: ALGORITHMS,
    default: "adaptive",
    help: "the router's balancing algorithm",
  },
  {
    key: "slowFactor",
    flag: "slow-factor",
    type: "number",
    default: 5,
    min: 1,
    max: 100,
    help: "how much slower the degraded server gets part-way",
  },
  {
    key: "logLevel",
    flag: "log-level",
    type: "enum",
    choices: LOG_LEVELS,
    default: "silent",
    help: "log level of the router and sidecars (stderr)",
  },
];

interface DemoConfig {
  readonly durationS: number;
  readonly rate: number;
  readonly algorithm: AlgorithmName;
  readonly slowFactor: number;
  readonly logLevel: LogLevel;
}

export const DEMO_SUMMARY =
  "Start a local cluster (demo apps of different speeds, a sidecar each, one router), drive load through it, and watch.";

/** Window of the live figures (ms). */
const WINDOW_MS = 3000;

export async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(formatHelp("demo", DEMO_SUMMARY, DEMO_OPTIONS));
    return 0;
  }
  const cfg = loadOptions<DemoConfig>({ command: "demo", specs: DEMO_OPTIONS, argv, env });
  const out = process.stdout;
  const tty = out.isTTY === true;
  const durationMs = cfg.durationS * 1000;

  const cluster = await startDemoCluster({ algorithm: cfg.algorithm, logLevel: cfg.logLevel });
  const names = cluster.nodes.map((n) => n.options.name);
  const byUrl = new Map(cluster.nodes.map((n) => [n.dataUrl, n]));
  // The fastest server degrades from 35 % to 65 % of the run: the router should notice and move work.
  const victim: DemoNode = cluster.nodes[0]!;
  const slowFrom = durationMs * 0.35;
  const slowUntil = durationMs * 0.65;

  const w = (s: string) => out.write(s + "\n");
  w(
    `tasklb demo: ${cluster.nodes.length} demo apps, each behind a sidecar, one router (${cfg.algorithm}), all on loopback`,
  );
  w(`  router (clients):  http://${cluster.addresses.listen}/`);
  w(
    `  router admin:      http://${cluster.addresses.admin}/v1/servers   (dashboard: http://${cluster.addresses.admin}/dashboard)`,
  );
  w(
    `  load: ${cfg.rate} req/s open-loop Poisson for ${cfg.durationS} s; ${victim.options.name} becomes ${cfg.slowFactor}× slower ` +
      `from ${(slowFrom / 1000).toFixed(0)} s to ${(slowUntil / 1000).toFixed(0)} s; 20 % of calls make a nested call through their own sidecar`,
  );
  w("");

  const load = createLoadGenerator({
    url: `http://${cluster.addresses.listen}`,
    ratePerSecond: cfg.rate,
    durationMs,
  });
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
    load.stop();
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  // A closed stdout (`tasklb demo | head`) ends the run quietly instead of crashing on EPIPE.
  out.on("error", onSignal);

  let lastLines = 0;
  const frame = () => {
    const t = load.elapsedMs();
    const recent = windowOf(load.samples, t - WINDOW_MS);
    const last1s = windowOf(recent, t - 1000);
    const snap = cluster.router.snapshot();
    const rows: LiveRow[] = names.map((name) => {
      const node = cluster.nodes.find((n) => n.options.name === name)!;
      const s = snap.servers.find((x) => byUrl.get(x.dataUrl) === node);
      const mine = recent
        .filter((x) => x.server === name && x.status > 0 && x.status < 500)
        .map((x) => x.latencyMs);
      return {
        name,
        speed: `${node.options.meanMs} ms × ${node.options.workers}`,
        state: s?.state ?? "-",
        share: recent.length ? recent.filter((x) => x.server === name).length / recent.length : 0,
        busy: s?.rates?.busy ?? null,
        inFlight: s?.router.inFlight ?? 0,
        p50: percentile(mine, 50),
        p99: percentile(mine, 99),
        note: node.app.slowFactor !== 1 ? `${node.app.slowFactor}× slower now` : "",
      };
    });
    const header = {
      elapsedS: Math.min(t, durationMs) / 1000,
      sent: load.sent,
      inFlight: load.inFlight,
      answeredPerS: last1s.length,
      errors: load.samples.filter((x) => x.status === 0 || x.status >= 500).length,
    };
    if (tty) {
      const lines = renderLive(header, rows);
      out.write((lastLines ? `\x1b[${lastLines}F\x1b[J` : "") + lines.join("\n") + "\n");
      lastLines = lines.length;
    } else {
      w(renderLine(header, rows));
    }
  };
  const timer = setInterval(frame, 1000);
  const slowTimers = [
    setTimeout(() => victim.app.setSlowFactor(cfg.slowFactor), slowFrom),
    setTimeout(() => victim.app.setSlowFactor(1), slowUntil),
  ];
  try {
    await load.run();
  } finally {
    clearInterval(timer);
    for (const st of slowTimers) clearTimeout(st);
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
  if (out.destroyed) {
    await cluster.close();
    return 0;
  }
  frame();
  const took = load.elapsedMs() / 1000;
  await cluster.close();

  const samples = load.samples;
  const errors = samples.filter((x) => x.status === 0 || x.status >= 500).length;
  w("");
  for (const line of renderSummary(
    `Summary: ${cfg.algorithm}, ${took.toFixed(1)} s${interrupted ? " (interrupted)" : ""}, ${samples.length} requests, ` +
      `${errors} errors, ${load.dropped} dropped at the client`,
    names,
    samples,
  )) {
    w(line);
  }
  w("");
  w(
    "Try another algorithm: tasklb demo --algorithm round-robin (or random, task-seconds, cpu, least-request, adaptive)",
  );
  return 0;
}

/** Samples that completed after `fromMs` (samples are in completion order). */
function windowOf(samples: readonly LoadSample[], fromMs: number): LoadSample[] {
  let i = samples.length;
  while (i > 0 && samples[i - 1]!.atMs >= fromMs) i--;
  return samples.slice(i);
}
