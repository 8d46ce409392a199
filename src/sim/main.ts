/**
 * `tasklb simulate`: runs the balancers against a simulated fleet (src/sim/) and prints tables.
 * `--scenario all` (default) runs every 4-server scenario; `--scenario scale` runs the scale study
 * (hundreds of servers, many routers, poll intervals). Flags override a scenario's figures.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BALANCER_NAMES } from "../router/balancers/index.js";
import { ConfigError } from "../shared/errors.js";
import { formatHelp, loadOptions, type OptionSpec } from "../shared/config.js";
import { formatScenarioTable, resultsCsv, sharePerSecondCsv } from "./report.js";
import { BENCH_SCENARIO_NAMES, findScenario, FOUR_SERVER_SCENARIOS, type Scenario } from "./scenario.js";
import { runScaleStudy } from "./scale-study.js";
import { ORACLE, simulate, type SimResult } from "./simulate.js";

export interface SimulateOptions {
  readonly scenario: string;
  readonly algorithms: readonly string[];
  readonly durationS: number | undefined;
  readonly seed: number;
  readonly servers: number | undefined;
  readonly routers: number | undefined;
  readonly pollIntervalMs: number | undefined;
  readonly load: number | undefined;
  readonly piggyback: boolean | undefined;
  readonly meanServiceMs: number | undefined;
  readonly nestedProbability: number | undefined;
  readonly out: string | undefined;
  readonly help: boolean;
}

export const SIMULATE_OPTIONS: readonly OptionSpec[] = [
  {
    key: "scenario",
    flag: "scenario",
    type: "string",
    help:
      `all | scale | bench | ${[...FOUR_SERVER_SCENARIOS, ...BENCH_SCENARIO_NAMES].join(" | ")} ` +
      "(comma-separated for several; bench = the mirrors of the real harness, bench/balance)",
    default: "all",
  },
  {
    key: "algorithms",
    flag: "algorithms",
    type: "list",
    help: `algorithms to compare (${[...BALANCER_NAMES, ORACLE].join(", ")})`,
    default: Object.freeze([...BALANCER_NAMES, ORACLE]),
  },
  {
    key: "durationS",
    flag: "duration-s",
    type: "number",
    min: 1,
    max: 3600,
    help: "simulated seconds per run (scenario default)",
  },
  { key: "seed", flag: "seed", type: "integer", min: 0, help: "seed of every random stream", default: 1 },
  {
    key: "servers",
    flag: "servers",
    type: "integer",
    min: 1,
    max: 100_000,
    help: "number of servers (speeds cycle 4,4,2,1 when changed)",
  },
  {
    key: "routers",
    flag: "routers",
    type: "integer",
    min: 1,
    max: 1000,
    help: "number of routers sharing the servers",
  },
  {
    key: "pollIntervalMs",
    flag: "poll-interval-ms",
    type: "number",
    min: 0,
    help: "poll interval of every router (0 = no polls)",
  },
  {
    key: "load",
    flag: "load",
    type: "number",
    min: 0.01,
    max: 2,
    help: "offered load as a fraction of capacity",
  },
  {
    key: "piggyback",
    flag: "piggyback",
    type: "boolean",
    help: "routers also read reports piggybacked on responses",
  },
  {
    key: "meanServiceMs",
    flag: "mean-service-ms",
    type: "number",
    min: 0.01,
    help: "mean service time (ms) at speed 1 (scenario default; the offered rate follows the capacity)",
  },
  {
    key: "nestedProbability",
    flag: "nested-probability",
    type: "number",
    min: 0,
    max: 1,
    help: "probability that a call makes a nested call through its own sidecar (scenario default)",
  },
  { key: "out", flag: "out", type: "string", help: "directory for CSV/JSON files (plots)" },
  { key: "help", flag: "help", type: "boolean", help: "show this help", default: false },
];

const SUMMARY =
  "Run the balancers against a simulated fleet and print latency tables (see docs/balancing.md).";

export function applyOverrides(base: Scenario, o: SimulateOptions): Scenario {
  let servers = base.servers;
  if (o.servers !== undefined && o.servers !== base.servers.length) {
    const speeds = [4, 4, 2, 1];
    const slots = base.servers[0]?.slots ?? 4;
    const homogeneous = base.servers.every((s) => s.speed === base.servers[0]?.speed);
    servers = Array.from({ length: o.servers }, (_, i) => ({
      speed: homogeneous ? 1 : speeds[i % 4]!,
      slots,
    }));
  }
  return {
    ...base,
    servers,
    durationS: o.durationS ?? base.durationS,
    warmupS: Math.min(base.warmupS, (o.durationS ?? base.durationS) / 10),
    routers: o.routers ?? base.routers,
    pollIntervalMs: o.pollIntervalMs ?? base.pollIntervalMs,
    load: o.load ?? base.load,
    piggyback: o.piggyback ?? base.piggyback,
    meanServiceMs: o.meanServiceMs ?? base.meanServiceMs,
    nestedProbability: o.nestedProbability ?? base.nestedProbability ?? 0,
  };
}

export async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const o = loadOptions<SimulateOptions>({ command: "simulate", specs: SIMULATE_OPTIONS, argv, env });
  if (o.help) {
    process.stdout.write(formatHelp("simulate", SUMMARY, SIMULATE_OPTIONS));
    return 0;
  }
  for (const a of o.algorithms) {
    if (a !== ORACLE && !(BALANCER_NAMES as readonly string[]).includes(a)) {
      throw new ConfigError(
        `simulate: unknown algorithm "${a}" (known: ${[...BALANCER_NAMES, ORACLE].join(", ")})`,
      );
    }
  }
  const names = o.scenario
    .split(",")
    .map((s) => s.trim())
    .flatMap((s) => (s === "all" ? FOUR_SERVER_SCENARIOS : s === "bench" ? BENCH_SCENARIO_NAMES : [s]));
  const started = new Date().toISOString();
  process.stdout.write(`tasklb simulate — seed ${o.seed}, ${started}\n\n`);
  const all: SimResult[] = [];
  for (const name of names) {
    if (name === "scale") {
      all.push(...runScaleStudy(o, (text) => process.stdout.write(text)));
      continue;
    }
    const base = findScenario(name);
    if (!base)
      throw new ConfigError(
        `simulate: unknown scenario "${name}" (known: all, scale, bench, ${[...FOUR_SERVER_SCENARIOS, ...BENCH_SCENARIO_NAMES].join(", ")})`,
      );
    const scenario = applyOverrides(base, o);
    const results = o.algorithms.map((a) => simulate(scenario, a, o.seed));
    const rate = results[0]?.offeredRate ?? 0;
    const title =
      `${scenario.name}: ${scenario.description}; ${scenario.servers.length} servers, ${scenario.routers} router(s), ` +
      `poll ${scenario.pollIntervalMs} ms, ${scenario.durationS} s, offered ${rate.toFixed(0)}/s`;
    process.stdout.write(formatScenarioTable(title, results) + "\n");
    all.push(...results);
    if (o.out) {
      mkdirSync(o.out, { recursive: true });
      writeFileSync(join(o.out, `share-${scenario.name}.csv`), sharePerSecondCsv(results));
    }
  }
  if (o.out) {
    mkdirSync(o.out, { recursive: true });
    writeFileSync(
      join(o.out, "results.csv"),
      resultsCsv(all, (r) => ({ share: JSON.stringify(r.share).replace(/,/g, ";") })),
    );
    writeFileSync(
      join(o.out, "results.json"),
      JSON.stringify(
        { started, seed: o.seed, results: all.map(({ sharePerSecond: _s, ...r }) => r) },
        null,
        2,
      ) + "\n",
    );
    process.stdout.write(`wrote ${join(o.out, "results.csv")}, results.json and share-*.csv\n`);
  }
  return 0;
}
