/**
 * `npm run bench:overhead`: what one proxy hop costs, side by side with the peers, in one run.
 *
 * One Node upstream (100 B and 64 KiB responses, keep-alive). Targets in front of it: direct, the
 * tasklb sidecar, the tasklb router alone (data straight to the upstream, load reports from the
 * idle sidecar), router → sidecar (two hops), nginx (1 worker, upstream keep-alive), HAProxy
 * (1 thread, http-reuse), http-proxy 1.18 (keep-alive agent), a minimal undici proxy written with
 * undici's `stream()` helper (the baseline issue 5 names) and a minimal undici `Pool.dispatch`
 * proxy (the raw path the sidecar itself takes: the floor). For each repetition, in a rotated order so drift spreads over all targets:
 * wrk closed-loop throughput on /small and /large, then open-loop latency at a fixed rate with
 * CPU and RSS of the proxy read from /proc meanwhile.
 *
 * Pinning (2 cores): the load generator (wrk, or the open-loop generator) on CPU 0; the proxy
 * under test and the upstream share CPU 1. One core for proxy + upstream is what FACTS.md's ratios
 * were measured with, and it keeps the generator from stealing the proxy's CPU. `--no-pin` turns
 * it off.
 *
 * Flags: --quick, --reps N, --wrk-seconds S, --connections C, --ol-seconds S, --rate R,
 * --targets a,b,…, --sidecar-node-args "name=--flag …;…" (more sidecar targets, started with those
 * Node flags, e.g. `semi4=--max-semi-space-size=4`), --router-node-args (the same for the router
 * alone), --no-pin, --out DIR, --cpu-prof DIR (profile
 * the sidecar; writes a .cpuprofile there when it exits), --wait-quiet S (before each measurement
 * wait up to S seconds for a second in which the machine is < 35% busy: on a shared machine this
 * keeps neighbours' builds out), --from-json FILE (write the tables and plots again from a saved
 * overhead.json).
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { request } from "undici";
import { list, nodeArgVariants, num, parseArgs, shellArgs } from "../lib/args.js";
import { machineInfo, machineLine, type MachineInfo } from "../lib/machine.js";
import { startHaproxy, startNginx } from "../lib/peers.js";
import { startHostBusy, startUsageSampler, waitQuiet } from "../lib/proc-stats.js";
import { formatJson, canPin, repoRoot, requireTools, startNodeChild } from "../lib/proc.js";
import { runOpenLoopProcess } from "../lib/run-open-loop.js";
import { fmt, fmtSpread, spread, table, type Spread } from "../lib/stats.js";
import { barChart } from "../lib/svg.js";
import { startRouter, startSidecar } from "../lib/tasklb.js";
import { runWrk, type WrkResult } from "../lib/wrk.js";

interface Target {
  readonly name: string;
  readonly label: string;
  readonly url: string;
  /** Processes whose CPU and memory count as this target's cost. */
  readonly pids: readonly number[];
  via?: string;
}

interface RunRecord {
  readonly rep: number;
  readonly target: string;
  readonly small: WrkResult;
  readonly large: WrkResult;
  readonly p50: number;
  readonly p99: number;
  readonly p999: number;
  readonly achievedRate: number;
  readonly errors: number;
  readonly sendLagP99: number;
  readonly cpuUsPerReq: number;
  readonly cpuPct: number;
  readonly rssMiB: number;
  readonly upstreamCpuPct: number;
  /** Whole machine (both cores, every process) busy % during this target's repetition. */
  readonly hostBusyPct: number;
}

const ALL_TARGETS = [
  "direct",
  "sidecar",
  "router",
  "router+sidecar",
  "nginx",
  "haproxy",
  "http-proxy",
  "undici-stream",
  "undici-minimal",
];

const LABELS: Record<string, string> = {
  direct: "direct (no proxy)",
  sidecar: "tasklb sidecar",
  router: "tasklb router (1 hop)",
  "router+sidecar": "tasklb router → sidecar (2 hops)",
  nginx: "nginx 1 worker",
  haproxy: "HAProxy 1 thread",
  "http-proxy": "http-proxy 1.18",
  "undici-stream": "minimal undici stream() proxy",
  "undici-minimal": "minimal undici dispatch() proxy",
};

/**
 * `--sidecar-node-args "semi4=--max-semi-space-size=4;opt=--a --b"` (and `--router-node-args`): one
 * more sidecar (router) target per entry, started with those Node flags, named `sidecar[semi4]`
 * (`router[semi4]`).
 */
function nodeVariants(
  args: Map<string, string>,
  role: "sidecar" | "router",
): { name: string; label: string; nodeArgs: string[] }[] {
  return nodeArgVariants(args.get(`${role}-node-args`), `--${role}-node-args`).map(({ name, nodeArgs }) => ({
    name: `${role}[${name}]`,
    label: `${LABELS[role]!}, node ${nodeArgs.join(" ")}`,
    nodeArgs,
  }));
}

async function check(t: Target): Promise<void> {
  for (const [path, len] of [
    ["/small", 100],
    ["/large", 65536],
  ] as const) {
    const res = await request(t.url + path);
    const body = Buffer.from(await res.body.arrayBuffer());
    if (res.statusCode !== 200 || body.length !== len) {
      throw new Error(
        `${t.name}: GET ${path} gave ${res.statusCode} with ${body.length} bytes (want 200, ${len})`,
      );
    }
    const via = res.headers.via;
    t.via = Array.isArray(via) ? via.join(", ") : via;
  }
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const fromJson = args.get("from-json");
  if (fromJson) {
    // Tables and plots again from a saved overhead.json, without measuring.
    const saved = JSON.parse(readFileSync(fromJson, "utf8")) as {
      runs: RunRecord[];
      targets: Target[];
      machine: MachineInfo;
      settings: Settings;
      skipped: Record<string, string>;
    };
    const out = args.get("out") ?? join(repoRoot(), "bench", "results");
    const report = summarize(saved.runs, saved.targets, saved.machine, saved.settings, saved.skipped);
    process.stdout.write(report.text + "\n");
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, "overhead.json"), await formatJson(report.json));
    writeFileSync(join(out, "overhead.md"), report.text + "\n");
    for (const [file, svg] of Object.entries(report.svgs)) writeFileSync(join(out, file), svg);
    return 0;
  }
  const quick = args.has("quick");
  const smoke = args.has("smoke");
  const reps = num(args, "reps", smoke ? 1 : quick ? 2 : 5);
  const wrkSeconds = num(args, "wrk-seconds", smoke ? 1 : quick ? 2 : 4);
  const connections = num(args, "connections", 50);
  const olSeconds = num(args, "ol-seconds", smoke ? 1 : quick ? 3 : 6);
  const rate = num(args, "rate", 1000);
  const pin = !args.has("no-pin") && canPin();
  const genCpu = pin ? "0" : undefined;
  const srvCpu = pin ? "1" : undefined;
  const sidecarVariants = nodeVariants(args, "sidecar");
  const routerVariants = nodeVariants(args, "router");
  const variants = [...sidecarVariants, ...routerVariants];
  const wanted = [...(list(args, "targets") ?? ALL_TARGETS), ...variants.map((v) => v.name)];
  const outDir = args.get("out") ?? join(repoRoot(), "bench", "results");
  const needed = [
    ...(args.has("no-wrk") ? [] : ["wrk"]),
    ...(wanted.includes("nginx") ? ["nginx"] : []),
    ...(wanted.includes("haproxy") ? ["haproxy"] : []),
  ];
  const tools = requireTools(needed);
  const machine = machineInfo(tools);
  const cpuProf = args.get("cpu-prof");
  const quietWaitS = num(args, "wait-quiet", 0);
  const noWrk = args.has("no-wrk");
  const profArgs = cpuProf ? ["--cpu-prof", `--cpu-prof-dir=${cpuProf}`] : [];
  const load = loadavg()[0]!;
  if (load > cpus().length) {
    process.stderr.write(
      `overhead: warning: load average ${load.toFixed(1)} on ${cpus().length} cores — others are using this machine; results will be noisy (try --wait-quiet 60)\n`,
    );
  }

  process.stderr.write(
    `overhead: ${reps} reps × ${wanted.length} targets; wrk ${wrkSeconds}s c=${connections}; open loop ${rate} req/s × ${olSeconds}s; pinning ${pin ? "gen→CPU0, proxy+upstream→CPU1" : "off"}\n`,
  );

  const procs: { stop(): Promise<void> }[] = [];
  const targets: Target[] = [];
  const skipped: Record<string, string> = {};
  try {
    const up = await startNodeChild("upstream", "overhead/upstream.js", [], srvCpu);
    procs.push(up.proc);
    const upstream = `http://127.0.0.1:${up.port}`;
    const add = async (name: string, start: () => Promise<Omit<Target, "name" | "label">>) => {
      if (!wanted.includes(name)) return;
      try {
        const label = LABELS[name] ?? variants.find((v) => v.name === name)?.label ?? name;
        const t: Target = { name, label, ...(await start()) };
        await check(t);
        targets.push(t);
      } catch (err) {
        skipped[name] = err instanceof Error ? err.message.split("\n")[0]! : String(err);
        process.stderr.write(
          `overhead: skipping ${name}: ${err instanceof Error ? err.message : String(err)}\n`,
        );
      }
    };
    await add("direct", async () => ({ url: upstream, pids: [] }));
    let sidecar: Awaited<ReturnType<typeof startSidecar>> | undefined;
    const needSidecar = wanted.some((w) => w.startsWith("sidecar") || w.startsWith("router"));
    if (needSidecar) {
      try {
        sidecar = await startSidecar({
          app: upstream,
          cpus: srvCpu,
          nodeArgs: profArgs,
        });
        procs.push(sidecar);
      } catch (err) {
        const msg = err instanceof Error ? err.message.split("\n")[0]! : String(err);
        for (const n of ["sidecar", "router", "router+sidecar"])
          if (wanted.includes(n)) skipped[n] = `sidecar did not start: ${msg}`;
        process.stderr.write(`overhead: the tasklb sidecar did not start: ${msg}\n`);
      }
    }
    if (sidecar) {
      const sc = sidecar;
      await add("sidecar", async () => ({ url: sc.dataUrl, pids: [sc.proc.pid] }));
      // The same sidecar under other Node/V8 flags, e.g. a smaller young generation.
      for (const v of sidecarVariants) {
        await add(v.name, async () => {
          const p = await startSidecar({
            app: upstream,
            cpus: srvCpu,
            nodeArgs: [...profArgs, ...v.nodeArgs],
          });
          procs.push(p);
          return { url: p.dataUrl, pids: [p.proc.pid] };
        });
      }
      await add("router", async () => {
        // Data straight to the upstream; load reports from the (idle) sidecar's control port.
        const r = await startRouter({
          servers: [{ data: upstream, control: sc.controlUrl }],
          cpus: srvCpu,
          nodeArgs: profArgs,
        });
        procs.push(r);
        return { url: r.dataUrl, pids: [r.proc.pid] };
      });
      // The router alone under other Node flags, against the same idle sidecar.
      for (const v of routerVariants) {
        await add(v.name, async () => {
          const r = await startRouter({
            servers: [{ data: upstream, control: sc.controlUrl }],
            cpus: srvCpu,
            nodeArgs: [...profArgs, ...v.nodeArgs],
          });
          procs.push(r);
          return { url: r.dataUrl, pids: [r.proc.pid] };
        });
      }
      await add("router+sidecar", async () => {
        const r = await startRouter({
          servers: [{ data: sc.dataUrl, control: sc.controlUrl }],
          cpus: srvCpu,
          nodeArgs: profArgs,
        });
        procs.push(r);
        return { url: r.dataUrl, pids: [r.proc.pid, sc.proc.pid] };
      });
    }
    await add("nginx", async () => {
      const p = await startNginx(tools.nginx!, {
        upstreams: [{ host: "127.0.0.1", port: up.port }],
        cpus: srvCpu,
      });
      procs.push(p);
      return { url: p.url, pids: [p.proc.pid] };
    });
    await add("haproxy", async () => {
      const p = await startHaproxy(tools.haproxy!, {
        upstreams: [{ host: "127.0.0.1", port: up.port }],
        cpus: srvCpu,
      });
      procs.push(p);
      return { url: p.url, pids: [p.proc.pid] };
    });
    // The Node proxies written for this bench: one child each, in front of the upstream.
    const nodeProxies: [name: string, module: string][] = [
      ["http-proxy", "overhead/minimal-http-proxy.js"],
      ["undici-stream", "overhead/minimal-undici-stream-proxy.js"],
      ["undici-minimal", "overhead/minimal-undici-proxy.js"],
    ];
    for (const [name, module] of nodeProxies) {
      await add(name, async () => {
        const p = await startNodeChild(name, module, [upstream], srvCpu, profArgs);
        procs.push(p.proc);
        return { url: `http://127.0.0.1:${p.port}`, pids: [p.proc.pid] };
      });
    }
    if (!targets.some((t) => t.name === "direct"))
      throw new Error("the direct target is needed as the baseline");

    // Warm-up: JIT, connection pools, nginx/HAProxy caches. Not recorded.
    for (const t of noWrk ? [] : targets) {
      await runWrk(tools.wrk!, {
        url: t.url + "/small",
        connections,
        threads: 1,
        durationS: 1,
        cpus: genCpu,
      });
    }

    const runs: RunRecord[] = [];
    for (let rep = 0; rep < reps; rep++) {
      const order = targets.map((_, i) => targets[(i + rep) % targets.length]!);
      for (const t of order) {
        if (quietWaitS > 0) await waitQuiet(quietWaitS * 1000);
        const host = startHostBusy();
        const none: WrkResult = {
          requestsPerSec: NaN,
          requests: 0,
          non2xx: 0,
          socketErrors: 0,
          meanLatencyMs: NaN,
        };
        const small = noWrk
          ? none
          : await runWrk(tools.wrk!, {
              url: t.url + "/small",
              connections,
              threads: 1,
              durationS: wrkSeconds,
              cpus: genCpu,
            });
        const large = noWrk
          ? none
          : await runWrk(tools.wrk!, {
              url: t.url + "/large",
              connections,
              threads: 1,
              durationS: wrkSeconds,
              cpus: genCpu,
            });
        const usage = startUsageSampler(t.pids);
        const upUsage = startUsageSampler([up.proc.pid]);
        const warmupMs = 1000;
        const ol = await runOpenLoopProcess(
          {
            targets: [t.url],
            path: "/small",
            rate,
            warmupMs,
            durationMs: olSeconds * 1000,
            arrivals: "uniform",
            connections: 16,
            timeoutMs: 10_000,
            precise: true,
            bucketMs: 1000,
          },
          genCpu,
        );
        const u = usage.stop();
        const uu = upUsage.stop();
        const sentRequests = (rate * (warmupMs + olSeconds * 1000)) / 1000;
        const cpuUsPerReq = (u.cpuSeconds * 1e6) / sentRequests;
        const rec: RunRecord = {
          rep,
          target: t.name,
          small,
          large,
          p50: ol.latencyMs.p50,
          p99: ol.latencyMs.p99,
          p999: ol.latencyMs.p999,
          achievedRate: ol.achievedRate,
          errors: ol.errorCount + small.non2xx + small.socketErrors + large.non2xx + large.socketErrors,
          sendLagP99: ol.sendLagMs.p99,
          cpuUsPerReq,
          cpuPct: (cpuUsPerReq * rate) / 1e4,
          rssMiB: u.peakRssBytes / 2 ** 20,
          upstreamCpuPct: ((uu.cpuSeconds * 1e6) / sentRequests) * (rate / 1e4),
          hostBusyPct: host.stop(),
        };
        runs.push(rec);
        process.stderr.write(
          `  rep ${rep + 1}/${reps} ${t.name.padEnd(15)} 100B ${fmt(small.requestsPerSec).padStart(6)} r/s  64KiB ${fmt(large.requestsPerSec).padStart(6)} r/s  ` +
            `@${rate}/s p50 ${fmt(rec.p50)} ms p99 ${fmt(rec.p99)} ms  cpu ${fmt(rec.cpuPct)}%  rss ${fmt(rec.rssMiB)} MiB${rec.errors ? `  errors ${rec.errors}` : ""}\n`,
        );
      }
    }
    const report = summarize(
      runs,
      targets,
      machine,
      { reps, wrkSeconds, connections, olSeconds, rate, pin, args: shellArgs(process.argv.slice(2)) },
      skipped,
    );
    process.stdout.write(report.text + "\n");
    mkdirSync(outDir, { recursive: true });
    writeFileSync(join(outDir, "overhead.json"), await formatJson(report.json));
    writeFileSync(join(outDir, "overhead.md"), report.text + "\n");
    for (const [file, svg] of Object.entries(report.svgs)) writeFileSync(join(outDir, file), svg);
    process.stderr.write(
      `overhead: wrote overhead.json, overhead.md and ${Object.keys(report.svgs).join(", ")} to ${outDir}\n`,
    );
    return 0;
  } finally {
    for (const p of procs.reverse()) await p.stop();
  }
}

interface Settings {
  reps: number;
  wrkSeconds: number;
  connections: number;
  olSeconds: number;
  rate: number;
  pin: boolean;
  /** The flags the run was started with, as typed (absent in results written before they were kept). */
  args?: string;
}

function summarize(
  runs: RunRecord[],
  targets: Target[],
  machine: MachineInfo,
  s: Settings,
  skipped: Record<string, string>,
) {
  const byRep = (name: string) => runs.filter((r) => r.target === name);
  const direct = (rep: number) => runs.find((r) => r.target === "direct" && r.rep === rep)!;
  const has = (n: string) => targets.some((t) => t.name === n);
  const perTarget = targets.map((t) => {
    const rs = byRep(t.name);
    const ratio = (pick: (r: RunRecord) => number, base: string) =>
      spread(
        rs.map((r) => {
          const b = runs.find((x) => x.target === base && x.rep === r.rep);
          return b ? pick(r) / pick(b) : NaN;
        }),
      );
    return {
      name: t.name,
      label: t.label,
      via: t.via ?? null,
      small: spread(rs.map((r) => r.small.requestsPerSec)),
      large: spread(rs.map((r) => r.large.requestsPerSec)),
      smallVsDirect: ratio((r) => r.small.requestsPerSec, "direct"),
      largeVsDirect: ratio((r) => r.large.requestsPerSec, "direct"),
      smallVsNginx: has("nginx") ? ratio((r) => r.small.requestsPerSec, "nginx") : undefined,
      largeVsNginx: has("nginx") ? ratio((r) => r.large.requestsPerSec, "nginx") : undefined,
      p50: spread(rs.map((r) => r.p50)),
      p99: spread(rs.map((r) => r.p99)),
      p999: spread(rs.map((r) => r.p999)),
      addedP50: spread(rs.map((r) => r.p50 - direct(r.rep).p50)),
      addedP99: spread(rs.map((r) => r.p99 - direct(r.rep).p99)),
      cpuPct: spread(rs.map((r) => r.cpuPct)),
      cpuUsPerReq: spread(rs.map((r) => r.cpuUsPerReq)),
      rssMiB: spread(rs.map((r) => r.rssMiB)),
      errors: rs.reduce((a, r) => a + r.errors, 0),
      achievedRate: spread(rs.map((r) => r.achievedRate)),
      sendLagP99: spread(rs.map((r) => r.sendLagP99)),
    };
  });
  const get = (n: string) => perTarget.find((p) => p.name === n);
  // The router's own hop inside router → sidecar: the pair minus the sidecar, per repetition.
  const pairHop =
    has("router+sidecar") && has("sidecar")
      ? {
          addedP50: spread(
            byRep("router+sidecar").map((r) => r.p50 - byRep("sidecar").find((x) => x.rep === r.rep)!.p50),
          ),
          addedP99: spread(
            byRep("router+sidecar").map((r) => r.p99 - byRep("sidecar").find((x) => x.rep === r.rep)!.p99),
          ),
        }
      : undefined;

  const ratioCell = (sp: Spread | undefined) =>
    sp ? `${fmt(sp.median, 2)}× (${fmt(sp.min, 2)}–${fmt(sp.max, 2)})` : "–";
  const lines: string[] = [];
  lines.push(`## Proxy overhead — ${machineLine(machine)}`);
  lines.push("");
  lines.push(
    `Command: \`npm run bench:overhead${s.args ? ` -- ${s.args}` : ""}\` (${s.reps} interleaved repetitions; wrk -t1 -c${s.connections} ${s.wrkSeconds}s per body size; ` +
      `open loop ${s.rate} req/s for ${s.olSeconds}s after 1s warm-up, 16 connections; pinning: ${s.pin ? "load generator on CPU 0, proxy + upstream on CPU 1" : "off"}). ` +
      `Cells: median (min–max) over repetitions; ratios are per repetition, against the target measured in the same repetition.`,
  );
  lines.push("");
  lines.push("### Closed-loop throughput (wrk)");
  lines.push("");
  lines.push(
    table(
      ["target", "100 B req/s", "× direct", "× nginx", "64 KiB req/s", "× direct", "× nginx"],
      perTarget.map((p) => [
        p.label,
        fmtSpread(p.small),
        ratioCell(p.smallVsDirect),
        ratioCell(p.smallVsNginx),
        fmtSpread(p.large),
        ratioCell(p.largeVsDirect),
        ratioCell(p.largeVsNginx),
      ]),
    ),
  );
  lines.push("");
  lines.push(`### Open-loop latency at ${s.rate} req/s (100 B), and the proxy's cost`);
  lines.push("");
  lines.push(
    table(
      [
        "target",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "added p50 ms",
        "added p99 ms",
        "CPU % of a core",
        "CPU µs/req",
        "RSS MiB",
        "errors",
      ],
      perTarget.map((p) => [
        p.label,
        fmtSpread(p.p50),
        fmtSpread(p.p99),
        fmtSpread(p.p999),
        p.name === "direct" ? "–" : fmtSpread(p.addedP50, 2),
        p.name === "direct" ? "–" : fmtSpread(p.addedP99, 2),
        p.name === "direct" ? "–" : fmtSpread(p.cpuPct),
        p.name === "direct" ? "–" : fmtSpread(p.cpuUsPerReq),
        p.name === "direct" ? "–" : fmtSpread(p.rssMiB),
        String(p.errors),
      ]),
    ),
  );
  if (pairHop) {
    lines.push("");
    lines.push(
      `Router hop inside router → sidecar (pair minus sidecar, per repetition): added p50 ${fmtSpread(pairHop.addedP50, 2)} ms, added p99 ${fmtSpread(pairHop.addedP99, 2)} ms.`,
    );
  }
  const busy = spread(runs.map((r) => r.hostBusyPct));
  lines.push(
    `Whole machine busy during the runs (both cores, all processes incl. the load generator and neighbours): ${fmtSpread(busy, 2)} %.`,
  );
  const directLag = get("direct")?.sendLagP99;
  if (directLag)
    lines.push(
      `Generator send lag p99 (how late requests left, same for all targets): ${fmtSpread(directLag, 2)} ms.`,
    );
  if (Object.keys(skipped).length) {
    lines.push("");
    lines.push(
      "Not measured: " +
        Object.entries(skipped)
          .map(([k, v]) => `${k} (${v})`)
          .join("; "),
    );
  }
  const sc = get("sidecar");
  const verdicts: { goal: string; value: string; met: boolean }[] = [];
  if (sc) {
    const rel = (other: string) => {
      const vals = byRep("sidecar").map((r) => {
        const o = runs.find((x) => x.target === other && x.rep === r.rep);
        return o ? r.small.requestsPerSec / o.small.requestsPerSec : NaN;
      });
      return spread(vals);
    };
    // [target, goal, the ratio that meets it]
    const throughputGoals: [string, string, number][] = [
      ["nginx", "throughput ≥ 0.8× nginx (stretch)", 0.8],
      ["undici-stream", "throughput ≥ minimal undici stream() proxy", 1],
      ["undici-minimal", "throughput ≥ minimal undici dispatch() proxy (floor)", 1],
      ["http-proxy", "throughput ≥ 2× http-proxy", 2],
    ];
    for (const [target, goal, ratio] of throughputGoals) {
      if (!has(target)) continue;
      const r = rel(target);
      verdicts.push({ goal, value: ratioCell(r), met: r.median >= ratio });
    }
    verdicts.push({
      goal: `added p99 at ${s.rate} req/s ≤ 0.5 ms`,
      value: `${fmtSpread(sc.addedP99, 2)} ms`,
      met: sc.addedP99.median <= 0.5,
    });
    lines.push("");
    lines.push("### Sidecar against the targets of issue 5 (100 B bodies)");
    lines.push("");
    lines.push(
      table(
        ["goal", "measured", "met"],
        verdicts.map((v) => [v.goal, v.value, v.met ? "yes" : "no"]),
      ),
    );
  }
  const text = lines.join("\n");

  const proxies = perTarget.filter((p) => p.name !== "direct");
  const svgs: Record<string, string> = {
    "overhead-throughput.svg": barChart({
      title: `Closed-loop throughput relative to direct (wrk -c${s.connections}; median, whiskers min–max of ${s.reps})`,
      yLabel: "throughput ÷ direct",
      series: ["100 B", "64 KiB"],
      groups: proxies.map((p) => ({
        label: p.label,
        values: [
          { value: p.smallVsDirect.median, lo: p.smallVsDirect.min, hi: p.smallVsDirect.max },
          { value: p.largeVsDirect.median, lo: p.largeVsDirect.min, hi: p.largeVsDirect.max },
        ],
      })),
    }),
    "overhead-latency.svg": barChart({
      title: `Added latency vs direct at ${s.rate} req/s, open loop (median, whiskers min–max of ${s.reps})`,
      yLabel: "added latency (ms)",
      series: ["added p50", "added p99"],
      groups: proxies.map((p) => ({
        label: p.label,
        values: [
          { value: p.addedP50.median, lo: p.addedP50.min, hi: p.addedP50.max },
          { value: p.addedP99.median, lo: p.addedP99.min, hi: p.addedP99.max },
        ],
      })),
      refLines: [{ value: 0.5, label: "sidecar target: added p99 ≤ 0.5 ms" }],
    }),
    "overhead-cpu.svg": barChart({
      title: `Proxy CPU at ${s.rate} req/s (% of one core; median, min–max)`,
      yLabel: "CPU % of one core",
      series: ["CPU %"],
      groups: proxies.map((p) => ({
        label: p.label,
        values: [{ value: p.cpuPct.median, lo: p.cpuPct.min, hi: p.cpuPct.max }],
      })),
    }),
  };
  return {
    text,
    svgs,
    json: {
      kind: "overhead",
      machine,
      settings: s,
      targets,
      skipped,
      summary: perTarget,
      routerHopInPair: pairHop,
      verdicts,
      runs,
    },
  };
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`overhead: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
