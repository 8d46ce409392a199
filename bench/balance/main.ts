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
 * Flags: --quick (shorter runs, 6 balancers), --scenarios a,b, --balancers a,b, --capacity R
 * (nominal cluster capacity, req/s; default 300), --warmup-ms, --out DIR, --smoke, --from-json FILE
 * (write the tables and plots again from a saved balance.json).
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { request } from "undici";
import { list, num, parseArgs } from "../lib/args.js";
import { machineInfo, machineLine, type MachineInfo } from "../lib/machine.js";
import { runOpenLoop, type OpenLoopResult } from "../lib/open-loop.js";
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
import { fmt, table } from "../lib/stats.js";
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
  // Nominal capacity: Σ slots × speed / mean = capacity → the mean service at speed 1.
  const baseMeanMs = (1000 * SLOTS * sc.speeds.reduce((a, b) => a + b, 0)) / capacity;
  const servers: SimServerConfig[] = sc.speeds.map((speed, i) => ({
    id: `s${i}`,
    slots: SLOTS,
    baseMeanMs,
    speed,
    dist: sc.dist,
    nestedProbability: NESTED_PROBABILITY,
    nestedFraction: NESTED_FRACTION,
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
        const r = await startRouter({
          servers: c.sidecars.map((s) => ({ data: s.dataUrl, control: s.controlUrl })),
          algorithm: variant,
        });
        started.push(r);
        // Ready when the router has heard from every sidecar.
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
  const args = parseArgs(process.argv.slice(2));
  const fromJson = args.get("from-json");
  if (fromJson) return rewrite(fromJson, args.get("out") ?? join(repoRoot(), "bench", "results"));
  const quick = args.has("quick") || args.has("smoke");
  const smoke = args.has("smoke");
  const capacity = num(args, "capacity", 300);
  const warmupMs = num(args, "warmup-ms", smoke ? 2000 : 4000);
  const outDir = args.get("out") ?? join(repoRoot(), "bench", "results");
  let all = scenarios(quick);
  const wantScenarios = list(args, "scenarios") ?? (smoke ? ["heterogeneous-70"] : undefined);
  if (wantScenarios) all = all.filter((s) => wantScenarios.includes(s.name));
  if (smoke) all = all.map((s) => ({ ...s, durationMs: 2000 }));
  const wantBalancers =
    list(args, "balancers") ??
    (smoke ? ["tasklb:adaptive", "oracle"] : quick ? QUICK_BALANCERS : ALL_BALANCERS);
  const needTools = ["nginx", "haproxy"].filter((t) => wantBalancers.some((b) => b.startsWith(t)));
  const tools = requireTools(needTools);
  const machine = machineInfo(tools);
  const t0 = performance.now();
  const runs: RunResult[] = [];
  for (const sc of all) {
    const balancers = wantBalancers.filter((b) => !sc.balancers || sc.balancers.includes(b));
    const rate = Math.round(sc.load * capacity);
    process.stderr.write(
      `balance: ${sc.name} (${sc.title}) at ${rate} req/s for ${sc.durationMs / 1000}s × ${balancers.length} balancers\n`,
    );
    const cluster = await startCluster(sc, capacity);
    try {
      for (const b of balancers) {
        await post(`${cluster.control}/reset`, {});
        await waitUntil(
          "sidecars",
          async () =>
            (await Promise.all(cluster.sidecars.map((s) => status(`${s.controlUrl}/readyz`)))).every(
              (st) => st === 200,
            ),
          10_000,
        );
        let bal: BalancerHandle;
        try {
          bal = await startBalancer(b, cluster, sc.instances, tools);
        } catch (err) {
          const msg = err instanceof Error ? err.message.split("\n")[0]! : String(err);
          process.stderr.write(`  ${b}: could not start: ${msg}\n`);
          runs.push({
            scenario: sc.name,
            balancer: b,
            rate,
            result: emptyResult(),
            hostBusyPct: NaN,
            failed: msg,
          });
          continue;
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
            bucketMs: 500,
            serverHeader: "x-sim-server",
            seed: 42,
          });
          const { histogram: _h, config: _c, ...result } = r;
          runs.push({ scenario: sc.name, balancer: b, rate, result, hostBusyPct: host.stop() });
          process.stderr.write(
            `  ${b.padEnd(28)} ${fmt(r.achievedRate).padStart(5)} req/s  p50 ${fmt(r.latencyMs.p50).padStart(6)}  p99 ${fmt(r.latencyMs.p99).padStart(6)}  p99.9 ${fmt(r.latencyMs.p999).padStart(6)} ms  errors ${r.errorCount}  share ${shareText(r.perServer, cluster.ids)}\n`,
          );
        } finally {
          await bal.stop();
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

/** Tables and plots again from a saved balance.json (after changing the report, without re-measuring). */
async function rewrite(file: string, outDir: string): Promise<number> {
  const saved = JSON.parse(readFileSync(file, "utf8")) as {
    machine: MachineInfo;
    settings: { capacity: number; warmupMs: number; quick: boolean; minutes: number };
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

function summarize(
  runs: RunResult[],
  all: Scenario[],
  machine: MachineInfo,
  s: { capacity: number; warmupMs: number; quick: boolean; minutes: number },
) {
  const lines: string[] = [];
  const svgs: Record<string, string> = {};
  lines.push(`## Balancing quality — ${machineLine(machine)}`);
  lines.push("");
  lines.push(
    `Command: \`npm run bench:balance${s.quick ? " -- --quick" : ""}\` (took ${fmt(s.minutes, 2)} min). 4 simulated servers × ${SLOTS} worker slots, ` +
      `nominal capacity ${s.capacity} req/s, ${NESTED_PROBABILITY * 100}% of requests make a nested call through their sidecar; ` +
      `open-loop Poisson arrivals (same seed for every balancer), latency from the scheduled send time, ${s.warmupMs / 1000}s warm-up not counted, ` +
      `10 s timeout. One run per balancer and scenario: differences under ~10–15% are within noise on this machine.`,
  );
  const verdicts: string[][] = [];
  const ratioRows: { scenario: string; values: Record<string, number> }[] = [];
  for (const sc of all) {
    const rs = runs.filter((r) => r.scenario === sc.name);
    if (rs.length === 0) continue;
    const ids = sc.speeds.map((_, i) => `s${i}`);
    const oracle = rs.find((r) => r.balancer === "oracle" && !r.failed);
    const peers = rs.filter((r) => PEERS.has(r.balancer) && !r.failed);
    const bestPeer = peers.length
      ? peers.reduce((a, b) => (effectiveP99(a) <= effectiveP99(b) ? a : b))
      : undefined;
    // A balancer whose requests time out has no honest p99 from successes alone: count errors as infinitely slow.
    const p99 = (r: RunResult) => effectiveP99(r);
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
        rs.map((r) => {
          const total = Object.values(r.result.perServer).reduce((a, b) => a + b, 0) || 1;
          return r.failed
            ? [r.balancer, "–", "–", "–", "–", "–", "–", "–", "–", `not run: ${r.failed}`]
            : [
                r.balancer,
                fmt(r.result.achievedRate),
                fmt(r.result.latencyMs.p50),
                fmt(p99(r)),
                fmt(r.result.latencyMs.p999),
                r.result.errorCount
                  ? `${r.result.errorCount} (${fmt((100 * r.result.errorCount) / Math.max(1, r.result.scheduled), 2)}%)`
                  : "0",
                ids.map((id) => Math.round((100 * (r.result.perServer[id] ?? 0)) / total)).join("/"),
                oracle ? fmt(p99(r) / p99(oracle), 3) : "–",
                bestPeer ? fmt(p99(r) / p99(bestPeer), 3) : "–",
                fmt(r.hostBusyPct, 2),
              ];
        }),
      ),
    );
    lines.push(
      `\n*p99 over all requests, errors and timeouts counted as the 10 s timeout. ${bestPeer ? `Best peer here: ${bestPeer.balancer}. ` : ""}Errors: ${errorCodes(rs)}.`,
    );
    ratioRows.push({
      scenario: sc.name,
      values: Object.fromEntries(
        rs.filter((r) => !r.failed && oracle).map((r) => [r.balancer, p99(r) / p99(oracle!)]),
      ),
    });
    const def = rs.find((r) => r.balancer === "tasklb:adaptive" && !r.failed);
    if (def && oracle) {
      const lc = rs.find((r) => r.balancer === "nginx:least_conn" && !r.failed);
      const differ = new Set(sc.speeds).size > 1 || sc.events.length > 0;
      verdicts.push([
        sc.name,
        `${fmt(p99(def) / p99(oracle), 3)} ${p99(def) / p99(oracle) <= 1.15 ? "✓" : "✗"}`,
        differ && peers.length
          ? `${peers.every((p) => p99(def) < p99(p)) ? "✓" : "✗"} (best peer ${fmt(p99(def) / p99(bestPeer!), 3)}×)`
          : "n/a (servers equal)",
        lc ? `${fmt(p99(def) / p99(lc), 3)}× ${p99(def) <= p99(lc) * 1.1 ? "✓" : "✗"}` : "–",
      ]);
    }
    svgs[`balance-${sc.name}.svg`] = barChart({
      title: `${sc.name}: latency per balancer (ms, log scale)`,
      yLabel: "latency (ms)",
      series: ["p50", "p99", "p99.9"],
      logY: true,
      groups: rs
        .filter((r) => !r.failed)
        .map((r) => ({
          label: r.balancer,
          values: [{ value: r.result.latencyMs.p50 }, { value: p99(r) }, { value: r.result.latencyMs.p999 }],
        })),
    });
    if (sc.events.length > 0) {
      const focus = sc.events[0]!.server;
      // A readable subset: the default, the best tasklb alternatives, the faithful task-seconds (herding), the peers, the limit.
      const plotted = [
        "tasklb:adaptive",
        "tasklb:least-request",
        "tasklb:task-seconds",
        "nginx:least_conn",
        "haproxy:leastconn",
        "oracle",
      ];
      const shown = rs.filter((r) => !r.failed && plotted.includes(r.balancer));
      svgs[`balance-${sc.name}-share.svg`] = lineChart({
        title: `${sc.name}: share of requests served by s${focus} over time`,
        xLabel: "seconds since measuring began",
        yLabel: `share served by s${focus} (%)`,
        yMax: 100,
        shade: sc.window
          ? [{ from: sc.window.from / 1000, to: sc.window.to / 1000, label: sc.window.label }]
          : [],
        series: shown.map((r) => ({
          name: r.balancer,
          points: r.result.timeline.map((b) => {
            const tot = Object.values(b.perServer).reduce((a, c) => a + c, 0);
            return [b.t / 1000, tot ? (100 * (b.perServer[`s${focus}`] ?? 0)) / tot : 0] as const;
          }),
        })),
        width: 900,
      });
      svgs[`balance-${sc.name}-p99.svg`] = lineChart({
        title: `${sc.name}: p99 latency per 0.5 s window (ms, log scale)`,
        xLabel: "seconds since measuring began",
        yLabel: "p99 (ms)",
        logY: true,
        shade: sc.window
          ? [{ from: sc.window.from / 1000, to: sc.window.to / 1000, label: sc.window.label }]
          : [],
        series: shown.map((r) => ({
          name: r.balancer,
          points: r.result.timeline.map((b) => [b.t / 1000, Math.max(1, b.p99Ms)] as const),
        })),
        width: 900,
      });
      for (const r of shown.filter((x) =>
        ["tasklb:adaptive", "nginx:least_conn", "oracle"].includes(x.balancer),
      )) {
        svgs[`balance-${sc.name}-stacked-${r.balancer.replace(/[:_]/g, "-")}.svg`] = lineChart({
          title: `${sc.name}, ${r.balancer}: requests per server per 0.5 s`,
          xLabel: "seconds since measuring began",
          yLabel: "requests per 0.5 s (stacked)",
          stacked: true,
          shade: sc.window
            ? [{ from: sc.window.from / 1000, to: sc.window.to / 1000, label: sc.window.label }]
            : [],
          series: ids.map((id) => ({
            name: id,
            points: r.result.timeline.map((b) => [b.t / 1000, b.perServer[id] ?? 0] as const),
          })),
        });
      }
    }
  }
  if (verdicts.length) {
    lines.push("");
    lines.push("### The default algorithm (adaptive) against the targets of issue 5");
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
      title: "p99 ÷ oracle's p99, per scenario (log scale; 1 = as good as perfect knowledge)",
      yLabel: "p99 ÷ oracle",
      series: balancerNames,
      logY: true,
      groups: ratioRows.map((r) => ({
        label: r.scenario,
        values: balancerNames.map((b) => ({ value: r.values[b] ?? 0 })),
      })),
      refLines: [{ value: 1.15, label: "1.15× oracle" }],
      width: 1100,
      height: 480,
    });
  }
  return {
    text: lines.join("\n"),
    svgs,
    json: { kind: "balance", machine, settings: s, scenarios: all, runs },
  };
}

/** p99 where errors and timeouts count as the timeout (a balancer cannot look good by failing fast). */
function effectiveP99(r: RunResult): number {
  return r.result.latencyWithErrorsMs.p99;
}

function errorCodes(rs: RunResult[]): string {
  const parts = rs
    .filter((r) => r.result.errorCount > 0)
    .map(
      (r) =>
        `${r.balancer}: ${Object.entries(r.result.errors)
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
