/**
 * Interleaved A/B of CPU per request: the tasklb sidecar (or router) of several builds side by side
 * with two minimal undici proxies, in one run: the raw `Pool.dispatch` floor and the `stream()`
 * helper proxy issue 5 names. On a shared machine a change of a few µs per request drowns in the
 * noise of separate runs; here every round sends the same fixed number of requests through every
 * target in a rotated order, reads each proxy's CPU time from /proc, and reports each build's CPU
 * per request as a ratio to each minimal proxy *of the same round*.
 *
 * Usage (build each version into its own directory first, e.g. `git archive <rev> | tar -x -C
 * /tmp/old && ln -s $PWD/node_modules /tmp/old/ && (cd /tmp/old && npx tsc -p . --outDir build)`):
 *
 *   taskset -c 0 node dist/bench/overhead/ab.js --role sidecar \
 *     --builds old=/tmp/old/build,new=dist [--requests 20000] [--connections 8] [--rounds 8]
 *
 * Proxies and the upstream run on CPU 1 (when taskset works); pin this process to CPU 0 as above.
 * `--role router` starts each build's router in front of the upstream, polling an idle sidecar of
 * the same build. Every request loop is bounded by `--requests` × `--rounds`.
 */
import { join } from "node:path";
import { namedEntries, parseArgs, num } from "../lib/args.js";
import { driveSmall } from "../lib/drive.js";
import { cpuSeconds } from "../lib/proc-stats.js";
import { canPin, startNodeChild } from "../lib/proc.js";
import { fmtSpread, spread } from "../lib/stats.js";
import { startRouter, startSidecar } from "../lib/tasklb.js";

interface Target {
  readonly name: string;
  readonly url: string;
  readonly pid: number;
  readonly cpuUsPerReq: number[];
}

const CPU = canPin() ? "1" : undefined;

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const role = args.get("role") ?? "sidecar";
  if (role !== "sidecar" && role !== "router") throw new Error("--role must be sidecar or router");
  const builds = namedEntries(args.get("builds") ?? "current=dist", ",", "--builds wants name=dir pairs").map(
    ({ name, value }) => ({ name, cli: join(value, "src", "cli.js") }),
  );
  const requests = num(args, "requests", 20_000);
  const connections = num(args, "connections", 8);
  const rounds = num(args, "rounds", 8);
  const started: { stop(): Promise<void> }[] = [];
  try {
    const up = await startNodeChild("upstream", "overhead/upstream.js", [], CPU);
    started.push(up.proc);
    const upstream = `http://127.0.0.1:${up.port}`;
    const minimal = await startNodeChild("minimal", "overhead/minimal-undici-proxy.js", [upstream], CPU);
    started.push(minimal.proc);
    const streamProxy = await startNodeChild(
      "minimal-stream",
      "overhead/minimal-undici-stream-proxy.js",
      [upstream],
      CPU,
    );
    started.push(streamProxy.proc);
    const targets: Target[] = [
      {
        name: "minimal undici dispatch() proxy",
        url: `http://127.0.0.1:${minimal.port}`,
        pid: minimal.proc.pid,
        cpuUsPerReq: [],
      },
      {
        name: "minimal undici stream() proxy",
        url: `http://127.0.0.1:${streamProxy.port}`,
        pid: streamProxy.proc.pid,
        cpuUsPerReq: [],
      },
    ];
    for (const b of builds) {
      const sc = await startSidecar({ app: upstream, cpus: CPU, cli: b.cli });
      started.push(sc);
      const proxy =
        role === "sidecar"
          ? sc
          : await startRouter({
              servers: [{ data: upstream, control: sc.controlUrl }],
              cpus: CPU,
              cli: b.cli,
            });
      if (proxy !== sc) started.push(proxy);
      targets.push({ name: b.name, url: proxy.dataUrl, pid: proxy.proc.pid, cpuUsPerReq: [] });
    }
    // Warm-up (JIT, connection pools), not measured.
    for (const t of targets) await driveSmall(t.url, Math.min(requests, 3000), connections);
    for (let round = 0; round < rounds; round++) {
      for (let k = 0; k < targets.length; k++) {
        const t = targets[(k + round) % targets.length]!;
        const before = cpuSeconds(t.pid);
        await driveSmall(t.url, requests, connections);
        t.cpuUsPerReq.push(((cpuSeconds(t.pid) - before) * 1e6) / requests);
      }
      process.stderr.write(`ab: round ${round + 1}/${rounds} done\n`);
    }
    const [floor, stream] = targets as [Target, Target];
    process.stdout.write(
      `ab (${role}): ${rounds} rounds × ${requests} requests, ${connections} connections, proxies ${CPU ? "on CPU 1" : "unpinned"}\n\n`,
    );
    process.stdout.write(
      "| target | CPU µs/request | ÷ minimal dispatch() (per round) | ÷ minimal stream() (per round) |\n|---|---:|---:|---:|\n",
    );
    const ratioTo = (t: Target, base: Target) =>
      t === base ? "1" : fmtSpread(spread(t.cpuUsPerReq.map((v, i) => v / base.cpuUsPerReq[i]!)));
    for (const t of targets) {
      process.stdout.write(
        `| ${t.name} | ${fmtSpread(spread(t.cpuUsPerReq))} | ${ratioTo(t, floor)} | ${ratioTo(t, stream)} |\n`,
      );
    }
    return 0;
  } finally {
    for (const p of started.reverse()) await p.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`ab: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
