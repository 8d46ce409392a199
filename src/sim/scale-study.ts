/**
 * The scale study: what one machine cannot run. Fleets of 100 to 1,000 servers (speeds 4:4:2:1
 * cycling, 2 slots each, 100 ms mean service at speed 1), 1 to 50 routers, poll intervals from
 * 10 ms to 2 s, with and without piggybacked reports. Three series answer three questions:
 * herding as routers are added, what staleness (and the polling that buys freshness) costs, and
 * how p99 grows with the fleet. With --servers/--routers/--poll-interval-ms it runs that one
 * configuration instead.
 */
import type { SimulateOptions } from "./main.js";
import { table } from "./report.js";
import type { Scenario, ServerSpec } from "./scenario.js";
import { ORACLE, simulate, type SimResult } from "./simulate.js";

const SPEEDS = [4, 4, 2, 1];

export function scaleScenario(
  servers: number,
  routers: number,
  pollIntervalMs: number,
  piggyback: boolean,
  durationS: number,
  load = 0.7,
): Scenario {
  const specs: ServerSpec[] = Array.from({ length: servers }, (_, i) => ({
    speed: SPEEDS[i % 4]!,
    slots: 2,
  }));
  return {
    name: `scale-${servers}s-${routers}r-${pollIntervalMs}ms${piggyback ? "-pb" : ""}`,
    description: `${servers} servers (4:4:2:1), ${routers} routers, poll ${pollIntervalMs} ms${piggyback ? " + piggyback" : ""}`,
    servers: specs,
    load,
    routers,
    pollIntervalMs,
    piggyback,
    netDelayMs: 0.25,
    meanServiceMs: 100,
    service: "lognormal",
    sigma: 1,
    durationS,
    warmupS: Math.min(1, durationS / 5),
    timeoutMs: 5_000,
    retries: 2,
    maxMisses: 3,
    events: [],
  };
}

interface Row {
  readonly label: string;
  readonly scenario: Scenario;
}

function runSeries(
  title: string,
  rows: readonly Row[],
  algorithms: readonly string[],
  seed: number,
  write: (text: string) => void,
): SimResult[] {
  const out: SimResult[] = [];
  const lines: string[][] = [];
  for (const row of rows) {
    const results = algorithms.map((a) => simulate(row.scenario, a, seed));
    out.push(...results);
    const oracle = results.find((r) => r.algorithm === ORACLE);
    for (const r of results) {
      const shares = Object.values(r.share);
      const fair = 1 / shares.length;
      lines.push([
        row.label,
        r.algorithm,
        r.achievedRate.toFixed(0),
        r.p50Ms.toFixed(1),
        r.p99Ms.toFixed(1),
        r.p999Ms.toFixed(1),
        String(r.errors + r.timeouts + r.unfinished),
        oracle ? (r.p99Ms / oracle.p99Ms).toFixed(2) : "-",
        (Math.max(...shares) / fair).toFixed(1),
        r.pollsPerSecondPerRouter.toFixed(0),
        (r.wallMs / 1000).toFixed(1),
      ]);
    }
  }
  write(
    title +
      "\n" +
      table(
        [
          "config",
          "algorithm",
          "rate/s",
          "p50 ms",
          "p99 ms",
          "p99.9 ms",
          "err+t/o+open",
          "p99/oracle",
          "max share/fair",
          "polls/s/router",
          "wall s",
        ],
        lines,
      ) +
      "\n",
  );
  return out;
}

export function runScaleStudy(o: SimulateOptions, write: (text: string) => void): SimResult[] {
  const durationS = o.durationS ?? 4;
  const algorithms = o.algorithms.filter(
    (a) =>
      a === "least-request" || a === "adaptive" || a === "random" || a === "task-seconds" || a === ORACLE,
  );
  const algos = algorithms.length > 0 ? algorithms : o.algorithms;
  if (o.servers !== undefined || o.routers !== undefined || o.pollIntervalMs !== undefined) {
    const sc = scaleScenario(
      o.servers ?? 100,
      o.routers ?? 10,
      o.pollIntervalMs ?? 100,
      o.piggyback ?? false,
      durationS,
      o.load ?? 0.7,
    );
    return runSeries(
      `scale: ${sc.description}, ${durationS} s`,
      [{ label: sc.name, scenario: sc }],
      o.algorithms,
      o.seed,
      write,
    );
  }
  const results: SimResult[] = [];
  results.push(
    ...runSeries(
      `scale A — herding as routers are added (100 servers, poll 100 ms, ${durationS} s)`,
      [1, 10, 50].map((r) => ({
        label: `${r} router(s)`,
        scenario: scaleScenario(100, r, 100, false, durationS),
      })),
      algos,
      o.seed,
      write,
    ),
  );
  const fresh = algos.filter((a) => a !== "random" && a !== ORACLE);
  results.push(
    ...runSeries(
      `scale B — report staleness and polling cost (100 servers, 10 routers, ${durationS} s)`,
      [
        ...[10, 100, 500, 2000].map((p) => ({
          label: `poll ${p} ms`,
          scenario: scaleScenario(100, 10, p, false, durationS),
        })),
        { label: "poll 2000 ms + piggyback", scenario: scaleScenario(100, 10, 2000, true, durationS) },
      ],
      fresh.length > 0 ? [...fresh, ORACLE] : algos,
      o.seed,
      write,
    ),
  );
  results.push(
    ...runSeries(
      `scale C — p99 as the fleet grows (10 routers, poll 100 ms, ${durationS} s)`,
      [100, 300, 1000].map((n) => ({
        label: `${n} servers`,
        scenario: scaleScenario(n, 10, 100, false, durationS),
      })),
      algos.filter((a) => a !== "task-seconds"),
      o.seed,
      write,
    ),
  );
  return results;
}
