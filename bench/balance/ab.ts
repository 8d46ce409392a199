/**
 * A/B of balancing quality between builds: `bench:balance` of each build, run alternately on the
 * same arrival seeds, compared by the balancer's own latency, seed by seed.
 *
 * Why not the ratio to the oracle: the oracle is the same code in every build, but its p99 on one
 * seed scatters as much as the balancer's (260–385 ms on `slowdown` in the sixth session's A/B), so
 * a build's "p99 ÷ oracle" carries the noise of two runs. Between builds the fair comparison is the
 * balancer's p99 on identical arrivals, paired by seed: eight seeds of `slowdown` that gave medians
 * of 1.02 and 1.11 ÷ oracle for two builds gave p99s of 310 and 315 ms, higher for the second build
 * on 4 seeds of 8.
 *
 *   node dist/bench/balance/ab.js --builds old=/tmp/old/build,new=dist [--scenarios slowdown] \
 *     [--balancer tasklb:adaptive] [--seeds 8] [--seed 101] [--out DIR] [--smoke]
 *
 * Builds as for `bench:ab` (each compiled into its own directory: `git archive <rev> | tar -x -C
 * /tmp/old && ln -s $PWD/node_modules /tmp/old/ && (cd /tmp/old && npx tsc -p . --outDir build)`).
 * Per seed every build runs once, in an order turned by one each seed (A B, B A, … for two builds),
 * so a drift of the machine's load over the run hits every build alike. One run per build and
 * seed is `bench/balance/main.js --scenarios … --balancers <balancer> --reps 1 --seed S` of that
 * build; its balance.json files stay in `--out DIR` (default: a temporary directory, removed).
 * About 40 s per scenario, build and seed (`--smoke`: 2 s runs, for the smoke test only).
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { list, namedEntries, num, parseArgs, shellArgs } from "../lib/args.js";
import { machineInfo, machineLine } from "../lib/machine.js";
import { runNodeScript } from "../lib/proc.js";
import { fmt, fmtReps, table } from "../lib/stats.js";
import { scenarios as benchScenarios } from "./scenarios.js";

interface Measured {
  readonly p50: number;
  readonly p99: number;
  readonly p999: number;
  readonly errors: number;
}

interface SavedRun {
  readonly scenario: string;
  readonly balancer: string;
  readonly failed?: boolean;
  readonly result: {
    readonly errorCount: number;
    readonly latencyWithErrorsMs: { readonly p50: number; readonly p99: number; readonly p999: number };
  };
}

/** A mistake in the command line: reported without a stack, exit code 2. */
class UsageError extends Error {}

function usage<T>(f: () => T): T {
  try {
    return f();
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
}

/** Runs one build's bench:balance for one seed; its results by scenario. */
async function runBuild(
  dir: string,
  scenarios: readonly string[],
  balancer: string,
  seed: number,
  out: string,
  smoke: boolean,
): Promise<Map<string, Measured>> {
  const script = join(dir, "bench", "balance", "main.js");
  const argv = [
    ...["--scenarios", scenarios.join(","), "--balancers", balancer, "--reps", "1", "--seed", String(seed)],
    ...["--out", out],
    ...(smoke ? ["--smoke"] : []),
  ];
  const run = await runNodeScript(script, argv);
  if (run.code !== 0)
    throw new Error(`${script} (seed ${seed}) exited with ${run.code}: ${run.stderr.trim()}`);
  const saved = JSON.parse(
    readFileSync(join(out, smoke ? "balance-quick.json" : "balance.json"), "utf8"),
  ) as { runs: SavedRun[] };
  const by = new Map<string, Measured>();
  for (const r of saved.runs) {
    if (r.balancer !== balancer || r.failed) continue;
    const l = r.result.latencyWithErrorsMs;
    by.set(r.scenario, { p50: l.p50, p99: l.p99, p999: l.p999, errors: r.result.errorCount });
  }
  const missing = scenarios.filter((s) => !by.has(s));
  if (missing.length) throw new Error(`no result for ${missing.join(", ")} in ${out}`);
  return by;
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const args = parseArgs(argv);
  const builds = usage(() => namedEntries(args.get("builds") ?? "", ",", "--builds wants name=dir pairs"));
  if (builds.length < 2) throw new UsageError("--builds wants at least two name=dir pairs");
  for (const b of builds)
    if (!existsSync(join(b.value, "bench", "balance", "main.js")))
      throw new UsageError(
        `--builds ${b.name}=${b.value}: no bench/balance/main.js there (not a build directory?)`,
      );
  const scenarios = list(args, "scenarios") ?? ["slowdown"];
  const known = benchScenarios(false).map((s) => s.name);
  const unknown = scenarios.filter((s) => !known.includes(s));
  if (unknown.length)
    throw new UsageError(`unknown scenario ${unknown.join(", ")} (known: ${known.join(", ")})`);
  const balancer = args.get("balancer") ?? "tasklb:adaptive";
  const seeds = Math.max(1, Math.floor(usage(() => num(args, "seeds", 8))));
  const seed0 = Math.floor(usage(() => num(args, "seed", 101)));
  const keep = args.get("out");
  const smoke = args.has("smoke");
  const out = keep ?? mkdtempSync(join(tmpdir(), "tasklb-balance-ab-"));
  const machine = machineInfo();
  // results[scenario][build][seed index]
  const results = new Map<string, Map<string, Measured[]>>(
    scenarios.map((s) => [s, new Map(builds.map((b) => [b.name, [] as Measured[]]))]),
  );
  try {
    for (let i = 0; i < seeds; i++) {
      const seed = seed0 + i;
      const order = builds.map((_, k) => builds[(k + i) % builds.length]!);
      for (const b of order) {
        const dir = join(out, `${b.name}-seed${seed}`);
        mkdirSync(dir, { recursive: true });
        const by = await runBuild(b.value, scenarios, balancer, seed, dir, smoke);
        for (const s of scenarios) results.get(s)!.get(b.name)![i] = by.get(s)!;
        process.stderr.write(
          `seed ${seed} ${b.name}: ${scenarios.map((s) => `${s} p99 ${fmt(by.get(s)!.p99)} ms`).join(", ")}\n`,
        );
      }
    }
  } finally {
    if (!keep) rmSync(out, { recursive: true, force: true });
  }

  const base = builds[0]!.name;
  const lines = [
    `## Balancing A/B — ${machineLine(machine)}`,
    "",
    `Command: \`npm run bench:balance:ab -- ${shellArgs(argv)}\`. ${balancer}, ${seeds} seeds (${seed0}–${seed0 + seeds - 1}), ` +
      `every build once per seed in a turned order. Latency from the scheduled send time, errors and timeouts ` +
      `counted as the 10 s timeout. Ratios are per seed, against ${base} on the same arrivals: median (min–max), ` +
      `and on how many seeds it was higher.`,
  ];
  for (const s of scenarios) {
    const per = results.get(s)!;
    const a = per.get(base)!;
    lines.push("", `### ${s}`, "");
    lines.push(
      table(
        ["seed", ...builds.map((b) => `${b.name} p99 ms`)],
        a.map((_, i) => [String(seed0 + i), ...builds.map((b) => fmt(per.get(b.name)![i]!.p99))]),
      ),
      "",
    );
    const rows = builds.map((b) => {
      const m = per.get(b.name)!;
      const cells = (["p50", "p99", "p999"] as const).map((q) => fmtReps(m.map((x) => x[q])));
      const vsBase = (q: "p50" | "p99" | "p999"): string => {
        if (b.name === base) return "1";
        const r = m.map((x, i) => x[q] / a[i]![q]);
        return `${fmtReps(r)}, higher on ${r.filter((v) => v > 1).length} of ${r.length}`;
      };
      return [
        b.name,
        ...cells,
        vsBase("p50"),
        vsBase("p99"),
        vsBase("p999"),
        String(m.reduce((n, x) => n + x.errors, 0)),
      ];
    });
    lines.push(
      table(
        [
          "build",
          "p50 ms",
          "p99 ms",
          "p99.9 ms",
          `p50 ÷ ${base}`,
          `p99 ÷ ${base}`,
          `p99.9 ÷ ${base}`,
          "errors",
        ],
        rows,
      ),
    );
  }
  const text = lines.join("\n") + "\n";
  process.stdout.write(text);
  if (keep) {
    writeFileSync(join(keep, "balance-ab.md"), text);
    const json = {
      kind: "balance-ab",
      machine,
      settings: { builds, scenarios, balancer, seeds, seed0 },
      results: Object.fromEntries([...results].map(([s, per]) => [s, Object.fromEntries(per)])),
    };
    writeFileSync(join(keep, "balance-ab.json"), JSON.stringify(json, null, 1));
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`balance-ab: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(err instanceof UsageError ? 2 : 1);
  },
);
