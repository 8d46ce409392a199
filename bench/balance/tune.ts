/**
 * `npm run bench:tune`: tries parameters of `adaptive` on the simulator's mirrors of this bench
 * (`tasklb simulate --scenario bench`, src/sim/scenario.ts) and prints, per scenario and variant,
 * p99 and p99.9 ÷ the oracle's as median (min–max) over seeds. It runs the same balancer code as the
 * router, with `createAdaptiveBalancer(deps, overrides)` as the simulator's factory, in seconds, so
 * a change to the algorithm is screened here before the real bench (an hour and a half) judges it.
 *
 *   --variants "label:param=value,param=value;…"  variants besides the defaults (label optional);
 *                        an entry that is just a balancer's name (`least-request`) runs that balancer
 *   --scenarios a,b      mirrors to run (default: every bench mirror; the `bench-` prefix may be left out)
 *   --seeds N            seeds 1..N (default 5)
 *   --duration-s S       simulated seconds of the non-event mirrors (default: the mirror's)
 */
import {
  DEFAULT_ADAPTIVE_PARAMS,
  createAdaptiveBalancer,
  type AdaptiveParams,
} from "../../src/router/balancers/adaptive.js";
import { BENCH_SCENARIO_NAMES, findScenario, type Scenario } from "../../src/sim/scenario.js";
import { isBalancerName } from "../../src/router/balancers/index.js";
import { ORACLE, simulate } from "../../src/sim/simulate.js";
import { list, namedEntries, num, parseArgs } from "../lib/args.js";

interface Variant {
  readonly label: string;
  readonly overrides: Partial<AdaptiveParams>;
  /** Another registered balancer instead of an `adaptive` variant. */
  readonly balancer?: string;
}

/** `label:param=value,…` entries separated by `;`; every param must be one of {@link AdaptiveParams}. */
export function parseVariants(spec: string): Variant[] {
  const out: Variant[] = [];
  for (const entry of spec.split(";").map((s) => s.trim())) {
    if (entry === "") continue;
    if (isBalancerName(entry)) {
      out.push({ label: entry, overrides: {}, balancer: entry });
      continue;
    }
    const colon = entry.indexOf(":");
    const label = colon >= 0 ? entry.slice(0, colon).trim() : entry;
    const overrides: Record<string, number | boolean> = {};
    for (const { name, value } of namedEntries(entry.slice(colon + 1), ",", "want param=value")) {
      const dflt = (DEFAULT_ADAPTIVE_PARAMS as unknown as Record<string, unknown>)[name];
      if (dflt === undefined)
        throw new Error(
          `unknown adaptive parameter ${name} (one of ${Object.keys(DEFAULT_ADAPTIVE_PARAMS).join(", ")})`,
        );
      if (typeof dflt === "boolean") {
        if (value !== "true" && value !== "false")
          throw new Error(`${name} takes true or false, got ${value}`);
        overrides[name] = value === "true";
      } else {
        const n = Number(value);
        if (value === "" || Number.isNaN(n)) throw new Error(`${name} takes a number, got ${value}`);
        overrides[name] = n;
      }
    }
    out.push({ label, overrides: overrides });
  }
  return out;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function cell(xs: readonly number[]): string {
  return `${median(xs).toFixed(2)} (${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)})`;
}

function main(argv: readonly string[]): void {
  const args = parseArgs(argv);
  const seeds = num(args, "seeds", 5);
  const durationS = args.has("duration-s") ? num(args, "duration-s", 60) : undefined;
  const names = (list(args, "scenarios") ?? BENCH_SCENARIO_NAMES).map((n) =>
    n.startsWith("bench-") ? n : `bench-${n}`,
  );
  const scenarios: Scenario[] = names.map((n) => {
    const sc = findScenario(n);
    if (sc === undefined || !BENCH_SCENARIO_NAMES.includes(n))
      throw new Error(`unknown bench mirror ${n} (one of ${BENCH_SCENARIO_NAMES.join(", ")})`);
    // Event mirrors keep the bench's timing; only the steady ones take --duration-s.
    return durationS !== undefined && sc.durationS === 60 ? { ...sc, durationS } : sc;
  });
  const variants: Variant[] = [
    { label: "adaptive", overrides: {} },
    ...parseVariants(args.get("variants") ?? ""),
  ];

  console.log(`adaptive on the bench mirrors, seeds 1–${seeds}: p99 and p99.9 ÷ oracle, median (min–max)`);
  for (const v of variants.slice(1))
    console.log(`  ${v.label}: ${v.balancer !== undefined ? "balancer" : JSON.stringify(v.overrides)}`);
  const header = ["scenario", ...variants.map((v) => v.label)];
  const rows99: string[][] = [];
  const rows999: string[][] = [];
  for (const sc of scenarios) {
    const r99: number[][] = variants.map(() => []);
    const r999: number[][] = variants.map(() => []);
    for (let seed = 1; seed <= seeds; seed++) {
      const oracle = simulate(sc, ORACLE, seed);
      variants.forEach((v, i) => {
        const r =
          v.balancer !== undefined
            ? simulate(sc, v.balancer, seed)
            : simulate(sc, "adaptive", seed, (deps) => createAdaptiveBalancer(deps, v.overrides));
        r99[i]!.push(r.p99Ms / oracle.p99Ms);
        r999[i]!.push(r.p999Ms / oracle.p999Ms);
      });
    }
    rows99.push([sc.name, ...r99.map(cell)]);
    rows999.push([sc.name, ...r999.map(cell)]);
  }
  for (const [title, rows] of [
    ["p99 ÷ oracle", rows99],
    ["p99.9 ÷ oracle", rows999],
  ] as const) {
    console.log(`\n${title}\n| ${header.join(" | ")} |\n|${header.map(() => " --- |").join("")}`);
    for (const r of rows) console.log(`| ${r.join(" | ")} |`);
  }
}

try {
  main(process.argv.slice(2));
} catch (err) {
  console.error(`bench:tune: ${(err as Error).message}`);
  process.exitCode = 2;
}
