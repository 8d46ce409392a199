/**
 * `npm run bench:balance`: how well each balancer spreads work, on identical scenarios, in one run.
 *
 * Per scenario: a simulated cluster (bench/balance/cluster.ts: sleep-based app servers with worker
 * slots, queues, speeds and scheduled events, plus the oracle), each app behind a REAL tasklb
 * sidecar (`tasklb sidecar` CLI). Then, one balancer at a time, in front of the same sidecars:
 * every tasklb algorithm through the real router (`tasklb router` CLI), nginx `least_conn` and
 * `random two least_conn`, HAProxy `leastconn` and `roundrobin`, and the oracle. Load is an
 * open-loop Poisson stream with the same seed for every balancer, latency from the scheduled send
 * time (HDR histograms), bounded in count and time, on loopback only. Between balancers the cluster
 * drops leftover work and returns to normal.
 *
 * Nothing is pinned here: ~10 processes share the two cores, and service times are tens of ms
 * (sleep-based), so the proxies' CPU is not what limits the results.
 *
 * Repetitions (--reps N, default 2; 1 with --quick/--smoke) are interleaved within a scenario: every
 * balancer once, then again in an order turned by n/N, each repetition with its own arrival seed
 * (--seed S + repetition) shared by every balancer in it. Ratios are taken within a repetition;
 * tables show median (min–max). See docs/benchmarks.md.
 *
 * Flags: --reps N, --seed S, --quick (shorter runs, 6 balancers), --scenarios a,b, --balancers a,b
 * (`tasklb:<algorithm>/<router-flag>=<value>` passes a router flag), --capacity R (nominal capacity
 * of the servers up at the start, req/s; default 300), --warmup-ms, --out DIR, --smoke,
 * --from-json FILE (write the tables and plots again from a saved balance.json).
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { request } from "undici";
import { list, num, parseArgs } from "../lib/args.js";
import { machineInfo, machineLine, type MachineInfo } from "../lib/machine.js";
import { runOpenLoop, type OpenLoopResult, type TimelineBucket } from "../lib/open-loop.js";
import { startHaproxy, startNginx, type Upstream } from "../lib/peers.js";
import { startHostBusy } from "../lib/proc-stats.js";
import {
  benchModule,
  formatJson,
  jsonLine,
  repoRoot,
  requireTools,
  sleep,
  spawnProc,
  type Proc,
} from "../lib/proc.js";
import { fmt, fmtReps, spread, table } from "../lib/stats.js";
import { barChart, lineChart } from "../lib/svg.js";
import { startRouter, startSidecar, type TasklbProc } from "../lib/tasklb.js";
import {
  ALL_BALANCERS,
  NESTED_FRACTION,
  NESTED_PROBABILITY,
  PEERS,
  QUICK_BALANCERS,
  SLOTS,
  scenarios,
  type Scenario,
} from "./scenarios.js";
import type { SimServerConfig } from "./sim-server.js";

interface ClusterHandle {
  readonly proc: Proc;
  readonly control: string;
  readonly oracle: string;
  readonly sidecars: TasklbProc[];
  readonly ids: string[];
}

interface RunResult {
  readonly scenario: string;
  readonly balancer: string;
  /** Repetition (0-based) and its arrival seed; absent in results written before repetitions. */
  readonly rep?: number;
  readonly seed?: number;
  readonly rate: number;
  readonly result: Omit<OpenLoopResult, "histogram" | "config">;
  readonly hostBusyPct: number;
  readonly failed?: string;
}

async function post(url: string, body: unknown): Promise<void> {
  const res = await request(url, {
    method: "POST",
    body: JSON.stringify(body),
    headers: { "content-type": "application/json" },
  });
  await res.body.dump();
  if (res.statusCode !== 200) throw new Error(`POST ${url}: ${res.statusCode}`);
}

async function waitUntil(what: string, ok: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const until = performance.now() + timeoutMs;
  while (performance.now() < until) {
    if (await ok().catch(() => false)) return;
    await sleep(100);
  }
  throw new Error(`${what} not ready after ${timeoutMs} ms`);
}

async function status(url: string): Promise<number> {
  const res = await request(url, { headersTimeout: 2000, bodyTimeout: 2000 });
  await res.body.dump();
  return res.statusCode;
}

async function startCluster(sc: Scenario, capacity: number): Promise<ClusterHandle> {
  // Nominal capacity of the servers up at the start: Σ slots × speed / mean = capacity → the mean
  // service at speed 1.
  const down = new Set(sc.startDown ?? []);
  const upSpeeds = sc.speeds.filter((_, i) => !down.has(i));
  const baseMeanMs = (1000 * SLOTS * upSpeeds.reduce((a, b) => a + b, 0)) / capacity;
  const servers: SimServerConfig[] = sc.speeds.map((speed, i) => ({
    id: `s${i}`,
    slots: SLOTS,
    baseMeanMs,
    speed,
    dist: sc.dist,
    nestedProbability: NESTED_PROBABILITY,
    nestedFraction: NESTED_FRACTION,
    startDown: down.has(i),
  }));
  const proc = spawnProc("cluster", process.execPath, [
    benchModule("balance/cluster.js"),
    JSON.stringify({ servers }),
  ]);
  const ready = await proc.waitFor(
    (l) => jsonLine(l) as { apps: Record<string, number>; control: number; oracle: number } | undefined,
  );
  const ids = servers.map((s) => s.id);
  const sidecars: TasklbProc[] = [];
  try {
    for (const id of ids) sidecars.push(await startSidecar({ app: `http://127.0.0.1:${ready.apps[id]}` }));
  } catch (err) {
    for (const s of sidecars) await s.stop();
    await proc.stop();
    throw err;
  }
  const control = `http://127.0.0.1:${ready.control}`;
  await post(`${control}/sidecars`, Object.fromEntries(ids.map((id, i) => [id, sidecars[i]!.dataUrl])));
  return { proc, control, oracle: `http://127.0.0.1:${ready.oracle}`, sidecars, ids };
}

async function stopCluster(c: ClusterHandle): Promise<void> {
  for (const s of c.sidecars) await s.stop();
  await c.proc.stop();
}

interface BalancerHandle {
  readonly urls: string[];
  stop(): Promise<void>;
}

async function startBalancer(
  name: string,
  c: ClusterHandle,
  instances: number,
  tools: Record<string, string>,
): Promise<BalancerHandle> {
  if (name === "oracle") return { urls: [c.oracle], stop: async () => undefined };
  const started: { stop(): Promise<void> }[] = [];
  const stopAll = async () => {
    for (const s of started) await s.stop();
  };
  try {
    const urls: string[] = [];
    const [kind, variant] = name.split(":") as [string, string];
    const upstreams: Upstream[] = c.sidecars.map((s) => ({
      host: "127.0.0.1",
      port: Number(new URL(s.dataUrl).port),
      checkPort: Number(new URL(s.controlUrl).port),
    }));
    for (let i = 0; i < instances; i++) {
      if (kind === "tasklb") {
        // `tasklb:adaptive/ease-in-ms=0`: the algorithm, then router flags.
        const [algorithm, ...flags] = variant.split("/");
        const r = await startRouter({
          servers: c.sidecars.map((s) => ({ data: s.dataUrl, control: s.controlUrl })),
          algorithm,
          extra: flags.flatMap((f) => {
            const eq = f.indexOf("=");
            return eq > 0 ? [`--${f.slice(0, eq)}`, f.slice(eq + 1)] : [`--${f}`];
          }),
        });
        started.push(r);
        await waitUntil("router", async () => (await status(`${r.controlUrl}/readyz`)) === 200, 10_000);
        urls.push(r.dataUrl);
      } else if (kind === "nginx") {
        const balance = variant === "least_conn" ? "least_conn" : "random two least_conn";
        const p = await startNginx(tools.nginx!, { upstreams, balance, failover: true });
        started.push(p);
        urls.push(p.url);
      } else if (kind === "haproxy") {
        const p = await startHaproxy(tools.haproxy!, {
          upstreams,
          balance: variant as "leastconn" | "roundrobin",
          healthCheck: true,
        });
        started.push(p);
        urls.push(p.url);
      } else {
        throw new Error(`unknown balancer ${name}`);
      }
    }
    return { urls, stop: stopAll };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const args = parseArgs(argv);
  const fromJson = args.get("from-json");
  if (fromJson) return rewrite(fromJson, args.get("out") ?? join(repoRoot(), "bench", "results"));
  const quick = args.has("quick") || args.has("smoke");
  const smoke = args.has("smoke");
  const capacity = num(args, "capacity", 300);
  const warmupMs = num(args, "warmup-ms", smoke ? 2000 : 4000);
  const reps = Math.max(1, Math.floor(num(args, "reps", quick ? 1 : 2)));
  const seed0 = num(args, "seed", 42);
  const outDir = args.get("out") ?? join(repoRoot(), "bench", "results");
  let all = scenarios(quick);
  const wantScenarios = list(args, "scenarios") ?? (smoke ? ["heterogeneous-70"] : undefined);
  if (wantScenarios) {
    const unknown = wantScenarios.filter((n) => !all.some((s) => s.name === n));
    if (unknown.length) throw new Error(`unknown scenario ${unknown.join(", ")}`);
    all = all.filter((s) => wantScenarios.includes(s.name));
  }
  if (smoke) all = all.map((s) => ({ ...s, durationMs: 2000 }));
  const explicitBalancers = list(args, "balancers");
  const wantBalancers =
    explicitBalancers ?? (smoke ? ["tasklb:adaptive", "oracle"] : quick ? QUICK_BALANCERS : ALL_BALANCERS);
  const balancersOf = (sc: Scenario): string[] => {
    const bs = wantBalancers.filter((b) => !sc.balancers || sc.balancers.includes(b));
    // Variants of a tasklb algorithm (e.g. without ease-in) join only where that algorithm runs anyway.
    if (!explicitBalancers)
      for (const extra of sc.extraBalancers ?? [])
        if (bs.includes(extra.split("/")[0]!) && !bs.includes(extra)) bs.push(extra);
    return bs;
  };
  const needTools = ["nginx", "haproxy"].filter((t) =>
    all.some((sc) => balancersOf(sc).some((b) => b.startsWith(t))),
  );
  const tools = requireTools(needTools);
  const machine = machineInfo(tools);
  const t0 = performance.now();
  const runs: RunResult[] = [];
  for (const sc of all) {
    const balancers = balancersOf(sc);
    const rate = Math.round(sc.load * capacity);
    process.stderr.write(
      `balance: ${sc.name} (${sc.title}) at ${rate} req/s for ${sc.durationMs / 1000}s × ${balancers.length} balancers × ${reps} reps\n`,
    );
    const cluster = await startCluster(sc, capacity);
    try {
      for (let rep = 0; rep < reps; rep++) {
        // Same arrivals for every balancer within a repetition, new ones for the next; the order
        // turns by n/reps each time so that no balancer always runs first or last.
        const seed = seed0 + rep;
        const shift = Math.floor((rep * balancers.length) / reps);
        const order = balancers.map((_, i) => balancers[(i + shift) % balancers.length]!);
        for (const b of order) {
          runs.push(await runOne({ sc, b, rep, reps, seed, rate, warmupMs, cluster, tools }));
        }
      }
    } finally {
      await stopCluster(cluster);
    }
  }
  const report = summarize(runs, all, machine, {
    capacity,
    warmupMs,
    quick,
    minutes: (performance.now() - t0) / 60_000,
    reps,
    args: argv.filter((a) => a !== "--out" && a !== outDir),
  });
  process.stdout.write(report.text + "\n");
  if (!smoke || args.has("out")) {
    mkdirSync(outDir, { recursive: true });
    const suffix = quick ? "-quick" : "";
    writeFileSync(join(outDir, `balance${suffix}.json`), await formatJson(report.json));
    writeFileSync(join(outDir, `balance${suffix}.md`), report.text + "\n");
    for (const [file, svg] of Object.entries(report.svgs))
      writeFileSync(join(outDir, file.replace(".svg", `${suffix}.svg`)), svg);
    process.stderr.write(`balance: wrote results to ${outDir}\n`);
  }
  return runs.some((r) => r.failed) ? 1 : 0;
}

/** Every sidecar ready, except those of servers that start down: those must say so (503) first. */
async function waitForSidecars(cluster: ClusterHandle, sc: Scenario): Promise<void> {
  const down = new Set(sc.startDown ?? []);
  await waitUntil(
    "sidecars",
    async () =>
      (await Promise.all(cluster.sidecars.map((s) => status(`${s.controlUrl}/readyz`)))).every(
        (st, i) => st === (down.has(i) ? 503 : 200),
      ),
    10_000,
  );
}

async function runOne(o: {
  sc: Scenario;
  b: string;
  rep: number;
  reps: number;
  seed: number;
  rate: number;
  warmupMs: number;
  cluster: ClusterHandle;
  tools: Record<string, string>;
}): Promise<RunResult> {
  const { sc, b, rep, seed, rate, warmupMs, cluster } = o;
  await post(`${cluster.control}/reset`, {});
  await waitForSidecars(cluster, sc);
  let bal: BalancerHandle;
  try {
    bal = await startBalancer(b, cluster, sc.instances, o.tools);
  } catch (err) {
    const msg = err instanceof Error ? err.message.split("\n")[0]! : String(err);
    process.stderr.write(`  rep ${rep + 1}/${o.reps} ${b}: could not start: ${msg}\n`);
    return {
      scenario: sc.name,
      balancer: b,
      rep,
      seed,
      rate,
      result: emptyResult(),
      hostBusyPct: NaN,
      failed: msg,
    };
  }
  try {
    await post(`${cluster.control}/schedule`, {
      events: sc.events.map((e) => ({ ...e, atMs: e.atMs + warmupMs, server: cluster.ids[e.server] })),
    });
    const host = startHostBusy();
    const r = await runOpenLoop({
      targets: bal.urls,
      path: "/work",
      rate,
      warmupMs,
      durationMs: sc.durationMs,
      arrivals: "poisson",
      connections: 256,
      timeoutMs: 10_000,
      precise: false,
      bucketMs: TIMELINE_BUCKET_MS,
      serverHeader: "x-sim-server",
      seed,
    });
    const { histogram: _h, config: _c, ...result } = r;
    const run: RunResult = {
      scenario: sc.name,
      balancer: b,
      rep,
      seed,
      rate,
      result,
      hostBusyPct: host.stop(),
    };
    process.stderr.write(
      `  rep ${rep + 1}/${o.reps} ${b.padEnd(28)} ${fmt(r.achievedRate).padStart(5)} req/s  p50 ${fmt(r.latencyMs.p50).padStart(6)}  p99* ${fmt(effectiveP99(run)).padStart(6)}  p99.9 ${fmt(r.latencyMs.p999).padStart(6)} ms  errors ${r.errorCount}  share ${shareText(r.perServer, cluster.ids)}\n`,
    );
    return run;
  } finally {
    await bal.stop();
  }
}

/** Tables and plots again from a saved balance.json (after changing the report, without re-measuring). */
async function rewrite(file: string, outDir: string): Promise<number> {
  const saved = JSON.parse(readFileSync(file, "utf8")) as {
    machine: MachineInfo;
    settings: Settings;
    scenarios: Scenario[];
    runs: RunResult[];
  };
  for (const r of saved.runs) {
    // Results written before the generator's fix counted unfinished requests twice (also as the
    // UND_ERR_DESTROYED of the pool being closed under them).
    const e = r.result.errors;
    if (e.unfinished !== undefined && e.UND_ERR_DESTROYED === e.unfinished) {
      delete e.UND_ERR_DESTROYED;
      (r.result as { errorCount: number }).errorCount -= e.unfinished;
    }
  }
  const report = summarize(saved.runs, saved.scenarios, saved.machine, saved.settings);
  process.stdout.write(report.text + "\n");
  const suffix = saved.settings.quick ? "-quick" : "";
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, `balance${suffix}.json`), await formatJson(report.json));
  writeFileSync(join(outDir, `balance${suffix}.md`), report.text + "\n");
  for (const [f, svg] of Object.entries(report.svgs))
    writeFileSync(join(outDir, f.replace(".svg", `${suffix}.svg`)), svg);
  return 0;
}

function emptyResult(): RunResult["result"] {
  const z = { count: 0, mean: NaN, p50: NaN, p90: NaN, p99: NaN, p999: NaN, max: NaN };
  return {
    scheduled: 0,
    ok: 0,
    errors: {},
    errorCount: 0,
    achievedRate: 0,
    latencyMs: z,
    latencyWithErrorsMs: z,
    serviceMs: z,
    sendLagMs: z,
    perServer: {},
    timeline: [],
  };
}

function shareText(perServer: Record<string, number>, ids: readonly string[]): string {
  const total = Object.values(perServer).reduce((a, b) => a + b, 0) || 1;
  return ids.map((id) => `${Math.round((100 * (perServer[id] ?? 0)) / total)}`).join("/") + " %";
}

interface Settings {
  readonly capacity: number;
  readonly warmupMs: number;
  readonly quick: boolean;
  readonly minutes: number;
  /** Absent in results written before repetitions (one run each). */
  readonly reps?: number;
  /** The flags the bench ran with. */
  readonly args?: readonly string[];
}

const repOf = (r: RunResult): number => r.rep ?? 0;
/** Width of the per-server timeline's buckets (traffic-share plots, worst-window p99). */
const TIMELINE_BUCKET_MS = 500;

/** Requests per server in [fromMs, toMs) of the measured window, from the 0.5 s timeline. */
function countsIn(r: RunResult, fromMs: number, toMs: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const b of r.result.timeline)
    if (b.t >= fromMs && b.t < toMs)
      for (const [id, n] of Object.entries(b.perServer)) out[id] = (out[id] ?? 0) + n;
  return out;
}

function sharePct(counts: Record<string, number>, id: string): number {
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  return total ? (100 * (counts[id] ?? 0)) / total : NaN;
}

/** The timelines of several repetitions, bucket by bucket: `f` gets each repetition's bucket at t. */
function mergeTimelines(
  rs: readonly RunResult[],
  f: (buckets: readonly TimelineBucket[]) => number,
): [number, number][] {
  const byT = new Map<number, TimelineBucket[]>();
  for (const r of rs)
    for (const b of r.result.timeline) {
      const list = byT.get(b.t) ?? [];
      list.push(b);
      byT.set(b.t, list);
    }
  return [...byT.entries()].sort((a, b) => a[0] - b[0]).map(([t, bs]) => [t / 1000, f(bs)]);
}

function summarize(runs: RunResult[], all: Scenario[], machine: MachineInfo, s: Settings) {
  const lines: string[] = [];
  const svgs: Record<string, string> = {};
  const reps = s.reps ?? Math.max(1, ...runs.map((r) => repOf(r) + 1));
  const shown = (s.args ?? (s.quick ? ["--quick"] : [])).join(" ");
  lines.push(`## Balancing quality — ${machineLine(machine)}`);
  lines.push("");
  lines.push(
    `Command: \`npm run bench:balance${shown ? ` -- ${shown}` : ""}\` (took ${fmt(s.minutes, 2)} min). 4 simulated servers × ${SLOTS} worker slots, ` +
      `nominal capacity ${s.capacity} req/s, ${NESTED_PROBABILITY * 100}% of requests make a nested call through their sidecar; ` +
      `open-loop Poisson arrivals, latency from the scheduled send time, ${s.warmupMs / 1000}s warm-up not counted, 10 s timeout. ` +
      (reps > 1
        ? `${reps} interleaved repetitions per balancer and scenario (all balancers once, then again in a turned order); ` +
          `within a repetition every balancer faces the same arrival times (seed ${runs[0]?.seed ?? 42} + repetition). ` +
          `Figures are the median (min–max) over the repetitions; ratios are taken within each repetition, against the oracle and the peers of the same repetition.`
        : `One run per balancer and scenario (same arrival seed for every balancer): differences under ~10–15% are within noise on this machine.`),
  );
  const verdicts: string[][] = [];
  const ratioRows: { scenario: string; values: Record<string, readonly number[]> }[] = [];
  const p99 = (r: RunResult) => effectiveP99(r);
  for (const sc of all) {
    const rs = runs.filter((r) => r.scenario === sc.name);
    if (rs.length === 0) continue;
    const ids = sc.speeds.map((_, i) => `s${i}`);
    const names = [...new Set(rs.map((r) => r.balancer))];
    const ok = rs.filter((r) => !r.failed);
    const repsHere = [...new Set(rs.map(repOf))].sort((a, b) => a - b);
    const oracleOf = new Map<number, RunResult>();
    const bestPeerOf = new Map<number, RunResult>();
    for (const rep of repsHere) {
      const o = ok.find((r) => r.balancer === "oracle" && repOf(r) === rep);
      if (o) oracleOf.set(rep, o);
      const peers = ok.filter((r) => PEERS.has(r.balancer) && repOf(r) === rep);
      if (peers.length)
        bestPeerOf.set(
          rep,
          peers.reduce((a, b) => (p99(a) <= p99(b) ? a : b)),
        );
    }
    const ratio = (r: RunResult, of: Map<number, RunResult>) => {
      const ref = of.get(repOf(r));
      return ref ? p99(r) / p99(ref) : NaN;
    };
    const byName = (name: string) => ok.filter((r) => r.balancer === name);
    lines.push("");
    lines.push(
      `### ${sc.name}: ${sc.title}, ${sc.instances > 1 ? `${sc.instances} instances, ` : ""}offered ${rs[0]!.rate} req/s for ${sc.durationMs / 1000}s`,
    );
    lines.push("");
    lines.push(
      table(
        [
          "balancer",
          "req/s",
          "p50 ms",
          "p99 ms*",
          "p99.9 ms",
          "errors",
          `share ${ids.join("/")} %`,
          "p99 ÷ oracle",
          "p99 ÷ best peer",
          "host busy %",
        ],
        names.map((name) => {
          const mine = byName(name);
          if (mine.length === 0) {
            const why = rs.find((r) => r.balancer === name)?.failed ?? "?";
            return [name, "–", "–", "–", "–", "–", "–", "–", "–", `not run: ${why}`];
          }
          const errs = mine.map((r) => r.result.errorCount);
          const errTotal = errs.reduce((a, b) => a + b, 0);
          const scheduled = mine.reduce((a, r) => a + r.result.scheduled, 0);
          return [
            name,
            fmtReps(mine.map((r) => r.result.achievedRate)),
            fmtReps(mine.map((r) => r.result.latencyMs.p50)),
            fmtReps(mine.map(p99)),
            fmtReps(mine.map((r) => r.result.latencyMs.p999)),
            errTotal ? `${fmtReps(errs)} (${fmt((100 * errTotal) / Math.max(1, scheduled), 2)}%)` : "0",
            ids
              .map((id) => Math.round(spread(mine.map((r) => sharePct(r.result.perServer, id))).median))
              .join("/"),
            fmtReps(mine.map((r) => ratio(r, oracleOf))),
            fmtReps(mine.map((r) => ratio(r, bestPeerOf))),
            fmtReps(
              mine.map((r) => r.hostBusyPct),
              2,
            ),
          ];
        }),
      ),
    );
    const bestPeers = [...new Set([...bestPeerOf.values()].map((r) => r.balancer))];
    const notRun = rs.filter((r) => r.failed).map((r) => `${r.balancer} (repetition ${repOf(r) + 1})`);
    lines.push(
      `\n*p99 over all requests, errors and timeouts counted as the 10 s timeout. ` +
        (bestPeers.length
          ? `Best peer ${repsHere.length > 1 ? (bestPeers.length > 1 ? "per repetition" : "in every repetition") : "here"}: ${bestPeers.join(", ")}. `
          : "") +
        (reps > 1
          ? `Errors column: per run, and (in %) the share of all requests of the ${reps} runs. Error codes, summed over the runs: `
          : "Errors: ") +
        `${errorCodes(rs)}.` +
        (notRun.length ? ` Could not start: ${notRun.join(", ")}.` : ""),
    );
    for (const e of sc.events.filter((x) => x.kind === "revive"))
      lines.push("", comesUp(sc, e, names, byName));
    for (const slow of sc.events.filter((x) => x.kind === "slow")) {
      const back = sc.events.find(
        (x) => x.kind === "normal" && x.server === slow.server && x.atMs > slow.atMs,
      );
      if (back) lines.push("", throughSlowdown(sc, slow, back, names, byName));
    }
    ratioRows.push({
      scenario: sc.name,
      values: Object.fromEntries(
        names.map((name) => [name, byName(name).map((r) => ratio(r, oracleOf))] as const),
      ),
    });
    const def = byName("tasklb:adaptive").filter((r) => oracleOf.has(repOf(r)));
    if (def.length) {
      const lcOf = new Map(byName("nginx:least_conn").map((r) => [repOf(r), r]));
      const differ = new Set(sc.speeds).size > 1 || sc.events.length > 0;
      const vsOracle = def.map((r) => ratio(r, oracleOf));
      const vsBest = def.map((r) => ratio(r, bestPeerOf));
      const vsLc = def.map((r) => ratio(r, lcOf));
      const med = (v: number[]) => spread(v).median;
      verdicts.push([
        sc.name,
        `${fmtReps(vsOracle)} ${med(vsOracle) <= 1.15 ? "✓" : "✗"}`,
        !differ
          ? "n/a (servers equal)"
          : bestPeerOf.size
            ? `${med(vsBest) < 1 ? "✓" : "✗"} (÷ best peer ${fmtReps(vsBest)})`
            : "– (no peer run)",
        lcOf.size ? `${fmtReps(vsLc)} ${med(vsLc) <= 1.1 ? "✓" : "✗"}` : "–",
      ]);
    }
    const whisker = (v: number[]) => {
      const sp = spread(v);
      return sp.n > 1 ? { value: sp.median, lo: sp.min, hi: sp.max } : { value: sp.median };
    };
    svgs[`balance-${sc.name}.svg`] = barChart({
      title: `${sc.name}: latency per balancer (ms, log scale${reps > 1 ? "; median, whiskers min–max" : ""})`,
      yLabel: "latency (ms)",
      series: ["p50", "p99", "p99.9"],
      logY: true,
      groups: names
        .filter((n) => byName(n).length)
        .map((n) => {
          const mine = byName(n);
          return {
            label: n,
            values: [
              whisker(mine.map((r) => r.result.latencyMs.p50)),
              whisker(mine.map(p99)),
              whisker(mine.map((r) => r.result.latencyMs.p999)),
            ],
          };
        }),
    });
    if (sc.events.length > 0) {
      const focus = sc.events[0]!.server;
      const fid = `s${focus}`;
      // A readable subset: the default, the best tasklb alternatives, the faithful task-seconds (herding), the peers, the limit.
      const plotted = [
        "tasklb:adaptive",
        ...names.filter((n) => n.startsWith("tasklb:adaptive/")),
        "tasklb:least-request",
        "tasklb:task-seconds",
        "nginx:least_conn",
        "haproxy:leastconn",
        "oracle",
      ].filter((n) => byName(n).length);
      const shade = sc.window
        ? [{ from: sc.window.from / 1000, to: sc.window.to / 1000, label: sc.window.label }]
        : [];
      const pooled = reps > 1 ? ` (${reps} repetitions pooled)` : "";
      const revive = sc.events.find((e) => e.kind === "revive" && e.server === focus);
      const fair = (100 * sc.speeds[focus]!) / sc.speeds.reduce((a, b) => a + b, 0);
      svgs[`balance-${sc.name}-share.svg`] = lineChart({
        title: `${sc.name}: share of requests served by ${fid} over time${pooled}`,
        xLabel: "seconds since measuring began",
        yLabel: `share served by ${fid} (%)`,
        yMax: 100,
        shade,
        series: [
          ...plotted.map((n) => ({
            name: n,
            points: mergeTimelines(byName(n), (bs) => {
              let mineN = 0;
              let tot = 0;
              for (const b of bs)
                for (const [id, c] of Object.entries(b.perServer)) {
                  tot += c;
                  if (id === fid) mineN += c;
                }
              return tot ? (100 * mineN) / tot : 0;
            }),
          })),
          ...(revive
            ? [
                {
                  name: `fair share once up (${fmt(fair)} %)`,
                  points: [
                    [revive.atMs / 1000, fair],
                    [sc.durationMs / 1000, fair],
                  ] as [number, number][],
                },
              ]
            : []),
        ],
        width: 900,
      });
      svgs[`balance-${sc.name}-p99.svg`] = lineChart({
        title: `${sc.name}: p99 latency per 0.5 s window (ms, log scale${reps > 1 ? "; median of the repetitions" : ""})`,
        xLabel: "seconds since measuring began",
        yLabel: "p99 (ms)",
        logY: true,
        shade,
        series: plotted.map((n) => ({
          name: n,
          points: mergeTimelines(byName(n), (bs) => Math.max(1, spread(bs.map((b) => b.p99Ms)).median)),
        })),
        width: 900,
      });
      for (const n of plotted.filter((x) => ["tasklb:adaptive", "nginx:least_conn", "oracle"].includes(x))) {
        const mine = byName(n);
        svgs[`balance-${sc.name}-stacked-${n.replace(/[:_]/g, "-")}.svg`] = lineChart({
          title: `${sc.name}, ${n}: requests per server per 0.5 s${reps > 1 ? " (mean of the repetitions)" : ""}`,
          xLabel: "seconds since measuring began",
          yLabel: "requests per 0.5 s (stacked)",
          stacked: true,
          shade,
          series: ids.map((id) => ({
            name: id,
            points: mergeTimelines(
              mine,
              (bs) => bs.reduce((a, b) => a + (b.perServer[id] ?? 0), 0) / mine.length,
            ),
          })),
        });
      }
    }
  }
  if (verdicts.length) {
    lines.push("");
    lines.push(
      `### The default algorithm (adaptive) against the targets of issue 5${reps > 1 ? ` (median (min–max) of ${reps} repetitions; ✓/✗ on the median)` : ""}`,
    );
    lines.push("");
    lines.push(
      table(
        [
          "scenario",
          "p99 ÷ oracle (≤ 1.15)",
          "better than every peer where servers differ",
          "÷ nginx least_conn (≤ 1.1)",
        ],
        verdicts,
      ),
    );
  }
  const balancerNames = [...new Set(ratioRows.flatMap((r) => Object.keys(r.values)))].filter(
    (b) => b !== "oracle",
  );
  if (ratioRows.length) {
    svgs["balance-p99-vs-oracle.svg"] = barChart({
      title: `p99 ÷ oracle's p99, per scenario (log scale; 1 = as good as perfect knowledge${reps > 1 ? "; median, whiskers min–max" : ""})`,
      yLabel: "p99 ÷ oracle",
      series: balancerNames,
      logY: true,
      groups: ratioRows.map((r) => ({
        label: r.scenario,
        values: balancerNames.map((b) => {
          const sp = spread(r.values[b] ?? []);
          if (sp.n === 0) return { value: 0 };
          return sp.n > 1 ? { value: sp.median, lo: sp.min, hi: sp.max } : { value: sp.median };
        }),
      })),
      refLines: [{ value: 1.15, label: "1.15× oracle" }],
      width: 1100,
      height: 480,
    });
  }
  return {
    text: lines.join("\n"),
    svgs,
    json: { kind: "balance", machine, settings: { ...s, reps }, scenarios: all, runs },
  };
}

/** A server's fair share of the requests (%), by speed. */
function fairSharePct(sc: Scenario, server: number): number {
  return (100 * sc.speeds[server]!) / sc.speeds.reduce((a, b) => a + b, 0);
}

/**
 * How each balancer brings a server that comes up (added, or back from a failure) into rotation:
 * its share of the requests in windows after the event, against its fair share by speed.
 */
function comesUp(
  sc: Scenario,
  e: Scenario["events"][number],
  names: readonly string[],
  byName: (n: string) => RunResult[],
): string {
  const id = `s${e.server}`;
  const fair = fairSharePct(sc, e.server);
  const left = sc.durationMs - e.atMs;
  const edges = [0, 1000, 3000, 6000, Infinity];
  const windows = edges
    .slice(1)
    .map((to, i) => ({ from: edges[i]!, to: Math.min(to, left) }))
    .filter((w) => w.from < w.to);
  const label = (w: { from: number; to: number }) => `${fmt(w.from / 1000)}–${fmt(w.to / 1000)} s`;
  return [
    `Share of ${id} after it comes up at ${fmt(e.atMs / 1000)} s (fair share ${fmt(fair)} %), by time since then:`,
    "",
    table(
      ["balancer", ...windows.map(label)],
      names
        .filter((n) => byName(n).length)
        .map((n) => [
          n,
          ...windows.map((w) =>
            fmtReps(
              byName(n).map((r) => sharePct(countsIn(r, e.atMs + w.from, e.atMs + w.to), id)),
              2,
            ),
          ),
        ]),
    ),
  ].join("\n");
}

/**
 * How each balancer follows a server through a slowdown: the slowed server's share of the requests
 * and the worst p99 of any timeline bucket, before, early and late in the slowdown, and early and
 * late after it. Detection shows in the early-slowdown share (the oracle sends nothing), recovery
 * in the after shares (fair share again), and what either costs in the worst p99.
 */
function throughSlowdown(
  sc: Scenario,
  slow: Scenario["events"][number],
  back: Scenario["events"][number],
  names: readonly string[],
  byName: (n: string) => RunResult[],
): string {
  const id = `s${slow.server}`;
  const fair = fairSharePct(sc, slow.server);
  const early = 3000;
  const s = (ms: number) => fmt(ms / 1000);
  const phases = [
    { label: `before (0–${s(slow.atMs)} s)`, from: 0, to: slow.atMs },
    { label: `slow, first ${s(early)} s`, from: slow.atMs, to: Math.min(slow.atMs + early, back.atMs) },
    { label: "slow, rest", from: slow.atMs + early, to: back.atMs },
    { label: `back, first ${s(early)} s`, from: back.atMs, to: Math.min(back.atMs + early, sc.durationMs) },
    { label: "back, rest", from: back.atMs + early, to: sc.durationMs },
  ].filter((ph) => ph.from < ph.to);
  const worstP99 = (r: RunResult, from: number, to: number): number =>
    Math.max(...r.result.timeline.filter((b) => b.t >= from && b.t < to).map((b) => b.p99Ms), 0);
  const rows = (cell: (r: RunResult, from: number, to: number) => number, digits: number) =>
    names
      .filter((n) => byName(n).length)
      .map((n) => [
        n,
        ...phases.map((ph) =>
          fmtReps(
            byName(n).map((r) => cell(r, ph.from, ph.to)),
            digits,
          ),
        ),
      ]);
  const header = ["balancer", ...phases.map((ph) => ph.label)];
  return [
    `Share of ${id} (%) through its slowdown (${s(slow.atMs)}–${s(back.atMs)} s; fair share ${fmt(fair)} % ` +
      `before and after, as little as possible during):`,
    "",
    table(
      header,
      rows((r, from, to) => sharePct(countsIn(r, from, to), id), 2),
    ),
    "",
    `Worst p99 of any ${s(TIMELINE_BUCKET_MS)} s bucket (ms), same phases:`,
    "",
    table(header, rows(worstP99, 3)),
  ].join("\n");
}

/** p99 where errors and timeouts count as the timeout (a balancer cannot look good by failing fast). */
function effectiveP99(r: RunResult): number {
  return r.result.latencyWithErrorsMs.p99;
}

function errorCodes(rs: RunResult[]): string {
  // Summed over the repetitions, per balancer.
  const by = new Map<string, Record<string, number>>();
  for (const r of rs) {
    if (r.result.errorCount === 0) continue;
    const acc = by.get(r.balancer) ?? {};
    for (const [k, v] of Object.entries(r.result.errors)) acc[k] = (acc[k] ?? 0) + v;
    by.set(r.balancer, acc);
  }
  const parts = [...by].map(
    ([b, errs]) =>
      `${b}: ${Object.entries(errs)
        .map(([k, v]) => `${k}×${v}`)
        .join(", ")}`,
  );
  return parts.length ? parts.join("; ") : "none";
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`balance: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
