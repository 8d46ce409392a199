/**
 * Instructions per request, counted by valgrind's callgrind: the tasklb sidecar (or router) of one or
 * more builds next to the two minimal undici proxies (the raw `Pool.dispatch` floor and the
 * `stream()` helper proxy issue 5 names).
 *
 * Why: on this kind of machine (2 shared cores, a VM, no hardware performance counters) CPU time per
 * request varies by ±15 % from round to round, so a change of a few per cent is invisible even to
 * `bench:ab`. The number of instructions the proxy's main thread executes per request is
 * repeatable to ~±1.5 % whatever the neighbours do (they only make the run slower). It is not time —
 * cache misses, branch mispredictions and syscalls' kernel time are not in it — but it moves with
 * the code the proxy runs per request, which is what a change to that code changes.
 *
 * Method, per target and round: start it under `valgrind --tool=callgrind` (10–40 s), warm it up
 * (JIT, connection pools) with `--warmup` requests, zero the counters with `callgrind_control -z`,
 * send `--requests` requests (GET /small, `--connections` at a time), dump; then zero again and let
 * it sit `--idle-seconds` without traffic, dump again. Instructions per request =
 * (window − idle instructions per second × window seconds) / requests. The idle subtraction matters:
 * under valgrind a proxy serves only ~200 requests per second, so the sidecar's 1-second timers (CPU
 * sampler, app probe) weigh ~50× more per request than at native speed. Reported for the main
 * thread (Node's event loop: what the proxy's code costs) and for all threads (adds V8's GC helpers
 * and compiler, ±10 % from run to run). The JIT is still settling after the warm-up, so absolute
 * figures fall with more warm-up or more requests (dispatch() proxy, main thread: 158 k at 3000 +
 * 3000, 150 k at 3000 + 5000, 146 k at 10000 + 5000): compare runs made with the same flags; the
 * ratios between targets moved by ~1 % across those settings.
 *
 *   node dist/bench/overhead/instructions.js --builds current=dist [--requests 5000] [--rounds 1] \
 *     [--role sidecar|router] [--warmup 10000] [--idle-seconds 15] [--connections 8] [--parallel 1] \
 *     [--node-args "name=--flag …;…"] [--out DIR]
 *
 * `--builds name=dir,…` as in `bench:ab` (default: the build this file belongs to; `--no-builds`:
 * only the minimal proxies). `--role router` measures each build's router in front of the upstream,
 * polling an idle sidecar of the same build that runs natively. With `--rounds N` every round runs
 * the targets in a rotated order; the table shows median (min–max) and ratios taken within a round.
 * `--parallel 2` measures two targets at a time (the counts do not change, the run is shorter).
 * `--node-args "semi4=--max-semi-space-size=4;…"` adds, per build, one more target of the role
 * started with those Node flags (`current[semi4]`), as bench:overhead's `--sidecar-node-args` does.
 * Writes into `--out DIR` (instructions.md, instructions.json) only when asked. Needs valgrind
 * (`bash scripts/install-test-deps.sh`). About 2 minutes per target and round with the defaults.
 */
import { once } from "node:events";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Client } from "undici";
import { namedEntries, nodeArgVariants, parseArgs, num, shellArgs } from "../lib/args.js";
import { driveSmall } from "../lib/drive.js";
import {
  callgrindArgs,
  callgrindControl,
  dumpFile,
  parseCallgrindDump,
  readDump,
  valgrindVersion,
  type CallgrindCost,
} from "../lib/callgrind.js";
import { machineInfo, machineLine } from "../lib/machine.js";
import {
  benchModule,
  findTool,
  formatJson,
  jsonLine,
  sleep,
  spawnProc,
  startNodeChild,
  type Proc,
} from "../lib/proc.js";
import { fmt, fmtReps, table } from "../lib/stats.js";
import { portsFromLogLine, routerArgs, sidecarArgs, startSidecar, type TasklbProc } from "../lib/tasklb.js";

/** Node under valgrind starts in 10–40 s on this machine, more when the machine is busy. */
const START_TIMEOUT_MS = 120_000;

interface TargetSpec {
  readonly name: string;
  /** Node arguments: Node's own flags, the script and its own arguments. */
  readonly args: readonly string[];
  /** The extra Node flags of a `--node-args` target (in `args` too), for the JSON. */
  readonly nodeArgs?: readonly string[];
  /** Finds the data port in one line of the target's output. */
  readonly port: (line: string) => number | undefined;
}

interface RoundResult {
  readonly round: number;
  readonly pid: number;
  readonly requests: number;
  readonly windowSeconds: number;
  readonly window: CallgrindCost;
  readonly idleSeconds: number;
  readonly idle: CallgrindCost;
  /** Instructions per request after subtracting the idle cost, main thread and all threads. */
  readonly mainPerRequest: number;
  readonly allPerRequest: number;
}

interface Options {
  readonly requests: number;
  readonly warmup: number;
  readonly connections: number;
  readonly idleSeconds: number;
}

/**
 * Waits (bounded) for the first 200: a router is listening before its first poll of the sidecar has
 * put the server in rotation, which under valgrind takes seconds.
 */
async function untilServing(url: string, timeoutMs = 60_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let last = "";
  // Its own connection, closed before the measurement starts.
  const client = new Client(url, { headersTimeout: 30_000, bodyTimeout: 30_000 });
  try {
    while (performance.now() < deadline) {
      try {
        const r = await client.request({ path: "/small", method: "GET" });
        await r.body.dump();
        if (r.statusCode === 200) return;
        last = `status ${r.statusCode} ${String(r.headers["x-tasklb-error"] ?? "")}`;
      } catch (err) {
        last = err instanceof Error ? err.message : String(err);
      }
      await sleep(500);
    }
  } finally {
    await client.close();
  }
  throw new Error(`${url} did not answer 200 within ${timeoutMs} ms (last: ${last})`);
}

/** SIGTERM and wait for the exit (valgrind writes its final dump then); KILL only if it hangs. */
async function stopGently(proc: Proc): Promise<void> {
  const { child } = proc;
  if (child.exitCode === null && child.signalCode === null) {
    const exited = once(child, "exit");
    child.kill("SIGTERM");
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 30_000)))]);
    clearTimeout(timer);
  }
  await proc.stop();
}

/** Zeroes the counters, runs `during`, dumps: the cost and the seconds between zero and dump. */
async function measureWindow(
  pid: number,
  dir: string,
  dump: number,
  during: () => Promise<void>,
): Promise<{ cost: CallgrindCost; seconds: number }> {
  await callgrindControl("-z", pid);
  // Both timestamps are taken when callgrind_control returns, i.e. just after the command took
  // effect, so the latency of the two calls cancels out.
  const t0 = performance.now();
  await during();
  await callgrindControl("-d", pid);
  const seconds = (performance.now() - t0) / 1000;
  const file = dumpFile(dir, pid, dump);
  const cost = parseCallgrindDump(await readDump(file));
  rmSync(file, { force: true });
  return { cost, seconds };
}

async function measure(spec: TargetSpec, o: Options, dir: string, round: number): Promise<RoundResult> {
  const proc = spawnProc(spec.name, "valgrind", [...callgrindArgs(dir), process.execPath, ...spec.args]);
  try {
    const port = await proc.waitFor(spec.port, START_TIMEOUT_MS);
    const url = `http://127.0.0.1:${port}`;
    await untilServing(url);
    await driveSmall(url, o.warmup, o.connections);
    // Lets the warm-up's tail (closing connections, deferred work) finish outside the window.
    await sleep(1000);
    const busy = await measureWindow(proc.pid, dir, 1, () => driveSmall(url, o.requests, o.connections));
    const idle = await measureWindow(proc.pid, dir, 2, () => sleep(o.idleSeconds * 1000));
    const perRequest = (w: number, i: number) => (w - (i / idle.seconds) * busy.seconds) / o.requests;
    return {
      round,
      pid: proc.pid,
      requests: o.requests,
      windowSeconds: busy.seconds,
      window: busy.cost,
      idleSeconds: idle.seconds,
      idle: idle.cost,
      mainPerRequest: perRequest(busy.cost.main, idle.cost.main),
      allPerRequest: perRequest(busy.cost.all, idle.cost.all),
    };
  } finally {
    await stopGently(proc);
  }
}

function parseBuilds(args: Map<string, string>): { name: string; cli: string }[] {
  if (args.has("no-builds")) return [];
  const thisBuild = fileURLToPath(new URL("../..", import.meta.url));
  const spec = args.get("builds") ?? `current=${thisBuild}`;
  return namedEntries(spec, ",", "--builds wants name=dir pairs").map(({ name, value }) => ({
    name,
    cli: join(value, "src", "cli.js"),
  }));
}

function missingValgrind(): string | undefined {
  const missing = ["valgrind", "callgrind_control"].filter((t) => !findTool(t));
  return missing.length === 0
    ? undefined
    : `missing tool(s): ${missing.join(", ")}. Install valgrind: bash scripts/install-test-deps.sh ` +
        `(Debian/Ubuntu: apt-get install valgrind)`;
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const missing = missingValgrind();
  if (missing) {
    process.stderr.write(`instructions: ${missing}\n`);
    return 3;
  }
  const role = args.get("role") ?? "sidecar";
  if (role !== "sidecar" && role !== "router") throw new Error("--role must be sidecar or router");
  const builds = parseBuilds(args);
  const variants = nodeArgVariants(args.get("node-args"), "--node-args");
  if (variants.length > 0 && builds.length === 0)
    throw new Error(
      "--node-args starts builds' targets under other flags: it needs a build, not --no-builds",
    );
  const o: Options = {
    requests: num(args, "requests", 5000),
    warmup: num(args, "warmup", 10_000),
    connections: num(args, "connections", 8),
    idleSeconds: num(args, "idle-seconds", 15),
  };
  const rounds = num(args, "rounds", 1);
  const parallel = num(args, "parallel", 1);
  if (!(
    o.requests >= 1 &&
    o.connections >= 1 &&
    o.idleSeconds > 0 &&
    rounds >= 1 &&
    parallel >= 1 &&
    o.warmup >= 0
  ))
    throw new Error(
      "--requests, --connections, --rounds, --parallel must be ≥ 1, --idle-seconds > 0, --warmup ≥ 0",
    );
  const outDir = args.get("out");
  const machine = machineInfo();
  const valgrind = valgrindVersion() ?? "unknown";
  const dir = mkdtempSync(join(tmpdir(), "tasklb-instructions-"));
  const started: { stop(): Promise<void> }[] = [];
  try {
    const up = await startNodeChild("upstream", "overhead/upstream.js", [], undefined);
    started.push(up.proc);
    const upstream = `http://127.0.0.1:${up.port}`;
    const readyPort = (l: string) => jsonLine(l)?.port as number | undefined;
    const specs: TargetSpec[] = [
      {
        name: "minimal undici dispatch() proxy",
        args: [benchModule("overhead/minimal-undici-proxy.js"), upstream],
        port: readyPort,
      },
      {
        name: "minimal undici stream() proxy",
        args: [benchModule("overhead/minimal-undici-stream-proxy.js"), upstream],
        port: readyPort,
      },
    ];
    for (const b of builds) {
      // Each build as it is, then once more per --node-args entry (e.g. `current[semi4]`).
      const flavours = [{ suffix: "", nodeArgs: [] as string[] }].concat(
        variants.map((v) => ({ suffix: `[${v.name}]`, nodeArgs: v.nodeArgs })),
      );
      if (role === "sidecar") {
        for (const f of flavours) {
          specs.push({
            name: b.name + f.suffix,
            // The same flags as startSidecar's, which bench:ab uses.
            args: [...f.nodeArgs, b.cli, ...sidecarArgs(upstream)],
            ...(f.nodeArgs.length > 0 ? { nodeArgs: f.nodeArgs } : {}),
            port: (l) => portsFromLogLine(l, "control")?.data,
          });
        }
      } else {
        // The router's load reports come from a sidecar that gets no traffic and is not measured
        // (Node's default flags; the build's routers share it).
        const sc: TasklbProc = await startSidecar({ app: upstream, cli: b.cli });
        started.push(sc);
        for (const f of flavours) {
          specs.push({
            name: b.name + f.suffix,
            args: [
              ...f.nodeArgs,
              b.cli,
              // Under valgrind the router runs ~30× slower: its polls of the sidecar's /v1/load
              // would miss the 500 ms default while it starts or is busy, and take the only server
              // out of rotation.
              ...routerArgs([{ data: upstream, control: sc.controlUrl }], ["--poll-timeout-ms", "5000"]),
            ],
            ...(f.nodeArgs.length > 0 ? { nodeArgs: f.nodeArgs } : {}),
            port: (l) => portsFromLogLine(l, "admin")?.data,
          });
        }
      }
    }
    const results = specs.map(() => [] as RoundResult[]);
    for (let round = 0; round < rounds; round++) {
      // Rotated so that no target always runs first (or always shares the machine with the same
      // neighbour when --parallel 2).
      const order = specs.map((_, k) => (k + round) % specs.length);
      const runOne = async (i: number) => {
        const spec = specs[i]!;
        process.stderr.write(`instructions: round ${round + 1}/${rounds}: ${spec.name} …\n`);
        const r = await measure(spec, o, dir, round);
        results[i]!.push(r);
        process.stderr.write(
          `instructions: ${spec.name}: ${fmt(r.mainPerRequest / 1000, 4)} k main thread, ` +
            `${fmt(r.allPerRequest / 1000, 4)} k all threads per request ` +
            `(${fmt(o.requests / r.windowSeconds)} req/s under valgrind)\n`,
        );
      };
      // Instruction counts do not depend on how busy the machine is, so targets may share it.
      const workers = Array.from({ length: Math.min(parallel, order.length) }, async () => {
        for (let i = order.shift(); i !== undefined; i = order.shift()) await runOne(i);
      });
      // Every worker finishes (and stops its target) before a failure is reported.
      const failed = (await Promise.allSettled(workers)).find((w) => w.status === "rejected");
      if (failed) throw failed.reason;
    }
    const text = report(specs, results, o, rounds, parallel, role, machine, valgrind);
    process.stdout.write(text);
    if (outDir !== undefined) {
      mkdirSync(outDir, { recursive: true });
      writeFileSync(join(outDir, "instructions.md"), text);
      writeFileSync(
        join(outDir, "instructions.json"),
        await formatJson({
          command: commandLine(),
          machine,
          valgrind,
          role,
          rounds,
          parallel,
          ...o,
          targets: specs.map((s, i) => ({ name: s.name, nodeArgs: s.nodeArgs ?? [], rounds: results[i] })),
        }),
      );
    }
    return 0;
  } finally {
    for (const p of started.reverse()) await p.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** As typed, quoted for a shell (a `--node-args` value holds `;` and spaces). */
function commandLine(): string {
  return shellArgs(["node", ...process.argv.slice(1)]);
}

function report(
  specs: readonly TargetSpec[],
  results: readonly (readonly RoundResult[])[],
  o: Options,
  rounds: number,
  parallel: number,
  role: string,
  machine: ReturnType<typeof machineInfo>,
  valgrind: string,
): string {
  const [dispatch, stream] = results as [RoundResult[], RoundResult[]];
  const k = (v: number) => v / 1000;
  // Ratios are taken within a round (round r of the target against round r of the proxy).
  const ratio = (
    rs: readonly RoundResult[],
    base: readonly RoundResult[],
    pick: (r: RoundResult) => number,
  ) => (rs === base ? "1" : fmtReps(rs.map((r, i) => pick(r) / pick(base[i]!))));
  const main = (r: RoundResult) => r.mainPerRequest;
  const all = (r: RoundResult) => r.allPerRequest;
  const rows = specs.map((s, i) => {
    const rs = results[i]!;
    return [
      s.name,
      fmtReps(
        rs.map((r) => k(r.mainPerRequest)),
        4,
      ),
      ratio(rs, dispatch, main),
      ratio(rs, stream, main),
      fmtReps(
        rs.map((r) => k(r.allPerRequest)),
        4,
      ),
      ratio(rs, dispatch, all),
      ratio(rs, stream, all),
    ];
  });
  const idleRows = specs.map((s, i) => {
    const rs = results[i]!;
    return [
      s.name,
      fmtReps(rs.map((r) => k(r.idle.main / r.idleSeconds))),
      fmtReps(rs.map((r) => k(r.idle.all / r.idleSeconds))),
      fmtReps(rs.map((r) => r.requests / r.windowSeconds)),
    ];
  });
  return [
    `instructions (${role}): ${rounds} round(s) × ${o.requests} requests after ${o.warmup} warm-up, ` +
      `${o.connections} connections, idle cost from ${o.idleSeconds} s without traffic subtracted` +
      (parallel > 1 ? `, ${parallel} targets at a time` : ""),
    "",
    table(
      [
        "target",
        "main thread, k instructions/request",
        "÷ dispatch()",
        "÷ stream()",
        "all threads, k instructions/request",
        "÷ dispatch()",
        "÷ stream()",
      ],
      rows,
    ),
    "",
    table(
      [
        "target",
        "idle main thread, k instructions/s",
        "idle all threads, k instructions/s",
        "req/s under valgrind",
      ],
      idleRows,
    ),
    "",
    `Command: \`${commandLine()}\` · valgrind ${valgrind} (callgrind) · ${machineLine(machine)}`,
    "",
  ].join("\n");
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`instructions: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
