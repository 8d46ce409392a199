/**
 * Instructions per request, counted by valgrind's callgrind: the tasklb sidecar (or router) of one or
 * more builds next to the two minimal undici proxies (the raw `Pool.dispatch` floor and the
 * `stream()` helper proxy issue 5 names) and the peers issue 5 sets its targets against: http-proxy
 * 1.18 (a minimal Node proxy, measured exactly like the undici ones), nginx and HAProxy.
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
 * (window − idle instructions per second × window seconds) / requests. With `--idle-before` it
 * also sits `--idle-seconds` idle before the load (zeroed and dumped alike) and subtracts the lower
 * of the two idle rates, thread group by thread group: V8 collecting the garbage of the load lands
 * in the after-window in some rounds and not in others (the sidecar's main thread: 155–171 k per
 * request from round to round), and that work belongs to the requests. But an idle spell before
 * the load changes the load window too (the sidecar then counts 181–184 k per request, 296 k over
 * all threads, where the minimal proxies and http-proxy do not move), so it is an option for
 * studying the method, not the default. The idle subtraction matters:
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
 *     [--node-args "name=--flag …;…"] [--peers http-proxy,nginx,haproxy|none] [--idle-before] [--out DIR]
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
 *
 * Peers (`--peers http-proxy,nginx,haproxy`, the default, or `none`; one that is not installed is
 * skipped and the report says why). nginx and HAProxy run as one process under callgrind, so the
 * PID that is zeroed and dumped is the one that serves: nginx with `daemon off; master_process off;`
 * (the worker's request path in the one process), HAProxy in the foreground (`-db`) with
 * `nbthread 1`; both with upstream keep-alive as in bench:overhead (bench/lib/peers.ts). Their idle
 * cost is subtracted like a Node target's (it is near zero). Every dump is checked to name that PID,
 * the target must have no child process when the window starts, and a window that counts fewer
 * than 1,000 instructions per request fails the run (the requests were served elsewhere).
 *
 * Which count compares a Node proxy with nginx and HAProxy: both are shown, and the fair one is
 * **all threads**. nginx and HAProxy run one thread, so their main thread is all their user-space
 * work (the two counts are equal). A Node proxy's main thread leaves out V8's GC helpers and
 * concurrent compiler, which do work the requests cause (garbage to collect, code to optimise), so
 * its main-thread ratio to nginx is a lower bound; the all-threads ratio is like for like, with
 * Node's ±10 % run-to-run noise and a JIT that is still settling after the warm-up (which favours
 * nginx slightly). Between Node proxies (÷ http-proxy, ÷ dispatch()) both counts compare like with
 * like and the main thread is the repeatable one. Neither is time: kernel work (syscalls, the
 * loopback TCP stack) and cache misses are not counted, and nginx and HAProxy spend a larger share
 * of their time in the kernel than a Node proxy does, so their time ratio to a Node proxy is
 * closer to 1 than their instruction ratio.
 */
import { once } from "node:events";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Client } from "undici";
import { list, namedEntries, nodeArgVariants, parseArgs, num, shellArgs } from "../lib/args.js";
import { driveSmall } from "../lib/drive.js";
import {
  callgrindArgs,
  callgrindControl,
  dumpFile,
  dumpPid,
  parseCallgrindDump,
  readDump,
  valgrindVersion,
  type CallgrindCost,
} from "../lib/callgrind.js";
import { machineInfo, machineLine, toolVersion } from "../lib/machine.js";
import { startHaproxy, startNginx } from "../lib/peers.js";
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
import { processTree } from "../lib/proc-stats.js";
import { fmt, fmtReps, table } from "../lib/stats.js";
import { portsFromLogLine, routerArgs, sidecarArgs, startSidecar, type TasklbProc } from "../lib/tasklb.js";

/** Node under valgrind starts in 10–40 s on this machine, more when the machine is busy. */
const START_TIMEOUT_MS = 120_000;

/** No proxy serves a request in fewer instructions: a window below it counted the wrong process. */
const MIN_PER_REQUEST = 1000;

const PEERS = ["http-proxy", "nginx", "haproxy"] as const;
type Peer = (typeof PEERS)[number];
const PEER_LABELS: Record<Peer, string> = {
  "http-proxy": "http-proxy 1.18",
  nginx: "nginx (1 process)",
  haproxy: "HAProxy (1 thread)",
};
/** The peers the report divides by: issue 5's targets are ≥ 2× http-proxy and ≥ 0.8× nginx. */
const RATIO_PEERS: readonly Peer[] = ["http-proxy", "nginx"];

/** A target running under callgrind: its process (the one counted) and its data URL. */
interface Started {
  readonly proc: Proc;
  readonly url: string;
  /** Removes what the start left behind (a peer's configuration directory). */
  cleanup?(): Promise<void>;
}

interface TargetSpec {
  readonly name: string;
  /** Set for a peer, which the report may divide by. */
  readonly peer?: Peer;
  /** The extra Node flags of a `--node-args` target, for the JSON. */
  readonly nodeArgs?: readonly string[];
  /** Starts the target under callgrind (dumps into `dir`); resolves once it listens. */
  start(dir: string): Promise<Started>;
}

interface RoundResult {
  readonly round: number;
  readonly pid: number;
  readonly requests: number;
  readonly windowSeconds: number;
  readonly window: CallgrindCost;
  readonly idleSeconds: number;
  readonly idle: CallgrindCost;
  /** The same idle window before the load (with --idle-before). */
  readonly idleBeforeSeconds?: number;
  readonly idleBefore?: CallgrindCost;
  /** Instructions per request after subtracting the idle cost, main thread and all threads. */
  readonly mainPerRequest: number;
  readonly allPerRequest: number;
}

interface Options {
  readonly requests: number;
  readonly warmup: number;
  readonly connections: number;
  readonly idleSeconds: number;
  readonly idleBefore: boolean;
}

/**
 * A Node target: `args` are Node's own flags, the script and its arguments; `port` finds the data
 * port in one line of its output.
 */
function nodeTarget(
  name: string,
  args: readonly string[],
  port: (line: string) => number | undefined,
  extra: { nodeArgs?: readonly string[]; peer?: Peer } = {},
): TargetSpec {
  return {
    name,
    ...extra,
    async start(dir) {
      const proc = spawnProc(name, "valgrind", [...callgrindArgs(dir), process.execPath, ...args]);
      try {
        return { proc, url: `http://127.0.0.1:${await proc.waitFor(port, START_TIMEOUT_MS)}` };
      } catch (err) {
        await stopGently(proc);
        throw err;
      }
    },
  };
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

/**
 * Zeroes the counters, runs `during`, dumps: the cost and the seconds between zero and dump. Fails
 * when the dump names another process than `pid`.
 */
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
  const text = await readDump(file);
  rmSync(file, { force: true });
  const owner = dumpPid(text);
  if (owner !== pid) throw new Error(`${file} is the dump of PID ${String(owner)}, not of ${pid}`);
  return { cost: parseCallgrindDump(text), seconds };
}

async function measure(spec: TargetSpec, o: Options, dir: string, round: number): Promise<RoundResult> {
  const started = await spec.start(dir);
  const { proc, url } = started;
  try {
    await untilServing(url);
    await driveSmall(url, o.warmup, o.connections);
    // Lets the warm-up's tail (closing connections, deferred work) finish outside the window.
    await sleep(1000);
    // A forked worker (nginx with a master) would serve the requests uncounted: only `proc` is.
    const tree = processTree(proc.pid);
    if (tree.length !== 1)
      throw new Error(
        `${spec.name} runs as several processes (${tree.join(", ")}); only ${proc.pid} is counted`,
      );
    const before = o.idleBefore
      ? await measureWindow(proc.pid, dir, 1, () => sleep(o.idleSeconds * 1000))
      : undefined;
    const n = before ? 2 : 1;
    const busy = await measureWindow(proc.pid, dir, n, () => driveSmall(url, o.requests, o.connections));
    const idle = await measureWindow(proc.pid, dir, n + 1, () => sleep(o.idleSeconds * 1000));
    const perRequest = (thread: keyof CallgrindCost) => {
      const after = idle.cost[thread] / idle.seconds;
      const rate = before ? Math.min(before.cost[thread] / before.seconds, after) : after;
      return (busy.cost[thread] - rate * busy.seconds) / o.requests;
    };
    const r: RoundResult = {
      round,
      pid: proc.pid,
      requests: o.requests,
      windowSeconds: busy.seconds,
      window: busy.cost,
      idleSeconds: idle.seconds,
      idle: idle.cost,
      idleBeforeSeconds: before?.seconds,
      idleBefore: before?.cost,
      mainPerRequest: perRequest("main"),
      allPerRequest: perRequest("all"),
    };
    if (!(r.mainPerRequest >= MIN_PER_REQUEST))
      throw new Error(
        `${spec.name}: ${fmt(r.mainPerRequest)} instructions per request in PID ${proc.pid}: ` +
          "the requests were not served by the counted process",
      );
    return r;
  } finally {
    await stopGently(proc);
    await started.cleanup?.();
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

interface PeerChoice {
  /** The peers to measure, with their version (and the binary for nginx and HAProxy). */
  readonly peers: { peer: Peer; version: string; bin?: string }[];
  /** Peers asked for (or in the default) that are not installed, with the reason. */
  readonly skipped: Partial<Record<Peer, string>>;
}

/** `--peers http-proxy,nginx,haproxy` (the default) or `none`; what is not installed is skipped. */
function choosePeers(args: Map<string, string>): PeerChoice {
  const asked = list(args, "peers") ?? [...PEERS];
  const wanted = asked.length === 1 && asked[0] === "none" ? [] : asked;
  for (const p of wanted)
    if (!(PEERS as readonly string[]).includes(p))
      throw new Error(`--peers: unknown peer ${p} (known: ${PEERS.join(", ")}, or none)`);
  const peers: PeerChoice["peers"] = [];
  const skipped: Partial<Record<Peer, string>> = {};
  for (const peer of PEERS.filter((p) => wanted.includes(p))) {
    if (peer === "http-proxy") {
      try {
        const pkg = createRequire(import.meta.url).resolve("http-proxy/package.json");
        const version = (JSON.parse(readFileSync(pkg, "utf8")) as { version?: string }).version;
        peers.push({ peer, version: version ?? "unknown" });
      } catch {
        skipped[peer] = "the http-proxy package is not installed (a devDependency: npm ci)";
      }
      continue;
    }
    const bin = findTool(peer);
    if (!bin) {
      skipped[peer] =
        `${peer} is not installed (bash scripts/install-test-deps.sh --bench; ` +
        `Debian: apt-get install ${peer === "nginx" ? "nginx-light" : "haproxy"})`;
      continue;
    }
    peers.push({ peer, version: toolVersion(peer, bin), bin });
  }
  return { peers, skipped };
}

function peerSpec(p: PeerChoice["peers"][number], upstreamPort: number): TargetSpec {
  const name = PEER_LABELS[p.peer];
  if (p.peer === "http-proxy") {
    const upstream = `http://127.0.0.1:${upstreamPort}`;
    return nodeTarget(name, [benchModule("overhead/minimal-http-proxy.js"), upstream], readyPort, {
      peer: p.peer,
    });
  }
  const bin = p.bin!;
  const upstreams = [{ host: "127.0.0.1", port: upstreamPort }];
  return {
    name,
    peer: p.peer,
    async start(dir) {
      // The same configuration as bench:overhead's (upstream keep-alive), in one process.
      const launch = {
        upstreams,
        wrapper: ["valgrind", ...callgrindArgs(dir)],
        startTimeoutMs: START_TIMEOUT_MS,
      };
      const h =
        p.peer === "nginx"
          ? await startNginx(bin, { ...launch, singleProcess: true })
          : await startHaproxy(bin, launch);
      // stop() also removes the peer's configuration directory (its process is gone by then).
      return { proc: h.proc, url: h.url, cleanup: () => h.stop() };
    },
  };
}

const readyPort = (l: string) => jsonLine(l)?.port as number | undefined;

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
  const { peers, skipped } = choosePeers(args);
  for (const [peer, reason] of Object.entries(skipped))
    process.stderr.write(`instructions: skipping ${peer}: ${reason}\n`);
  const o: Options = {
    requests: num(args, "requests", 5000),
    warmup: num(args, "warmup", 10_000),
    connections: num(args, "connections", 8),
    idleSeconds: num(args, "idle-seconds", 15),
    idleBefore: args.has("idle-before"),
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
    const specs: TargetSpec[] = [
      nodeTarget(
        "minimal undici dispatch() proxy",
        [benchModule("overhead/minimal-undici-proxy.js"), upstream],
        readyPort,
      ),
      nodeTarget(
        "minimal undici stream() proxy",
        [benchModule("overhead/minimal-undici-stream-proxy.js"), upstream],
        readyPort,
      ),
    ];
    for (const b of builds) {
      // Each build as it is, then once more per --node-args entry (e.g. `current[semi4]`).
      const flavours = [{ suffix: "", nodeArgs: [] as string[] }].concat(
        variants.map((v) => ({ suffix: `[${v.name}]`, nodeArgs: v.nodeArgs })),
      );
      const extra = (f: { nodeArgs: string[] }) => (f.nodeArgs.length > 0 ? { nodeArgs: f.nodeArgs } : {});
      if (role === "sidecar") {
        for (const f of flavours) {
          // The same flags as startSidecar's, which bench:ab uses.
          specs.push(
            nodeTarget(
              b.name + f.suffix,
              [...f.nodeArgs, b.cli, ...sidecarArgs(upstream)],
              (l) => portsFromLogLine(l, "control")?.data,
              extra(f),
            ),
          );
        }
      } else {
        // The router's load reports come from a sidecar that gets no traffic and is not measured
        // (Node's default flags; the build's routers share it).
        const sc: TasklbProc = await startSidecar({ app: upstream, cli: b.cli });
        started.push(sc);
        for (const f of flavours) {
          specs.push(
            nodeTarget(
              b.name + f.suffix,
              [
                ...f.nodeArgs,
                b.cli,
                // Under valgrind the router runs ~30× slower: its polls of the sidecar's /v1/load
                // would miss the 500 ms default while it starts or is busy, and take the only server
                // out of rotation.
                ...routerArgs([{ data: upstream, control: sc.controlUrl }], ["--poll-timeout-ms", "5000"]),
              ],
              (l) => portsFromLogLine(l, "admin")?.data,
              extra(f),
            ),
          );
        }
      }
    }
    for (const p of peers) specs.push(peerSpec(p, up.port));
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
    const peerVersions = Object.fromEntries(peers.map((p) => [p.peer, p.version]));
    const text = report(specs, results, o, rounds, parallel, role, machine, valgrind, {
      versions: peerVersions,
      skipped,
    });
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
          peers: peerVersions,
          skipped,
          targets: specs.map((s, i) => ({
            name: s.name,
            ...(s.peer ? { peer: s.peer } : {}),
            nodeArgs: s.nodeArgs ?? [],
            rounds: results[i],
          })),
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
  peers: { versions: Record<string, string>; skipped: Partial<Record<Peer, string>> },
): string {
  const k = (v: number) => v / 1000;
  // The targets every row is divided by: both minimal proxies, then the peers issue 5 names.
  const bases: { label: string; rs: readonly RoundResult[] }[] = [
    { label: "÷ dispatch()", rs: results[0]! },
    { label: "÷ stream()", rs: results[1]! },
  ];
  for (const peer of RATIO_PEERS) {
    const i = specs.findIndex((s) => s.peer === peer);
    if (i >= 0) bases.push({ label: `÷ ${peer}`, rs: results[i]! });
  }
  // Ratios are taken within a round (round r of the target against round r of the base).
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
      ...bases.map((b) => ratio(rs, b.rs, main)),
      fmtReps(
        rs.map((r) => k(r.allPerRequest)),
        4,
      ),
      ...bases.map((b) => ratio(rs, b.rs, all)),
    ];
  });
  const before = (rs: readonly RoundResult[], thread: keyof CallgrindCost): number[] =>
    rs.flatMap((r) =>
      r.idleBefore && r.idleBeforeSeconds ? [k(r.idleBefore[thread] / r.idleBeforeSeconds)] : [],
    );
  const idleRows = specs.map((s, i) => {
    const rs = results[i]!;
    return [
      s.name,
      ...(o.idleBefore ? [fmtReps(before(rs, "main"))] : []),
      fmtReps(rs.map((r) => k(r.idle.main / r.idleSeconds))),
      ...(o.idleBefore ? [fmtReps(before(rs, "all"))] : []),
      fmtReps(rs.map((r) => k(r.idle.all / r.idleSeconds))),
      fmtReps(rs.map((r) => r.requests / r.windowSeconds)),
    ];
  });
  const hasNative = specs.some((s) => s.peer === "nginx" || s.peer === "haproxy");
  const versions = Object.entries(peers.versions).map(([p, v]) => `${p} ${v}`);
  const skipped = Object.entries(peers.skipped).map(([p, why]) => `${p} (${why})`);
  return [
    `instructions (${role}): ${rounds} round(s) × ${o.requests} requests after ${o.warmup} warm-up, ` +
      `${o.connections} connections, idle cost from ${o.idleSeconds} s without traffic ` +
      (o.idleBefore ? "before and after the load (the lower rate) subtracted" : "subtracted") +
      (parallel > 1 ? `, ${parallel} targets at a time` : ""),
    "",
    table(
      [
        "target",
        "main thread, k instructions/request",
        ...bases.map((b) => b.label),
        "all threads, k instructions/request",
        ...bases.map((b) => b.label),
      ],
      rows,
    ),
    "",
    ...(hasNative
      ? [
          "nginx and HAProxy run one thread: their main thread is all they run. Against them the " +
            "like-for-like cost of a Node proxy is its all-threads count (with V8's GC helpers and " +
            "compiler); its main-thread ratio is a lower bound. Kernel time (syscalls, loopback TCP) " +
            "is in neither count.",
          "",
        ]
      : []),
    table(
      [
        "target",
        ...(o.idleBefore
          ? ["idle main thread before, k instructions/s", "after", "idle all threads before", "after"]
          : ["idle main thread, k instructions/s", "idle all threads, k instructions/s"]),
        "req/s under valgrind",
      ],
      idleRows,
    ),
    "",
    ...(skipped.length > 0 ? [`Skipped: ${skipped.join("; ")}.`, ""] : []),
    `Command: \`${commandLine()}\` · valgrind ${valgrind} (callgrind)` +
      (versions.length > 0 ? ` · ${versions.join(", ")}` : "") +
      ` · ${machineLine(machine)}`,
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
