/**
 * Smoke test for the benches: each one starts, runs a tiny bounded configuration end to end and
 * writes its results. It checks that the benches work, never their timings. `npm test` runs it
 * (CI installs wrk, nginx and HAProxy); alone: `node --test dist/bench/smoke.test.js`.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { parseCallgrindDump } from "./lib/callgrind.js";
import { findTool } from "./lib/proc.js";

function run(
  script: string,
  args: string[],
  timeoutMs: number,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [fileURLToPath(new URL(script, import.meta.url)), ...args], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

test("bench:overhead starts, measures direct, both minimal undici proxies and a sidecar and a router under other Node flags, and writes its results", async (t) => {
  if (!findTool("wrk")) return t.skip("wrk is not installed (bash scripts/install-test-deps.sh)");
  const out = mkdtempSync(join(tmpdir(), "tasklb-bench-smoke-"));
  t.after(() => rmSync(out, { recursive: true, force: true }));
  const r = await run(
    "./overhead/main.js",
    [
      "--smoke",
      "--targets",
      "direct,undici-minimal,undici-stream",
      "--sidecar-node-args",
      "semi2=--max-semi-space-size=2",
      "--router-node-args",
      "semi4=--max-semi-space-size=4",
      "--out",
      out,
    ],
    90_000,
  );
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /minimal undici dispatch\(\) proxy/);
  assert.match(r.stdout, /minimal undici stream\(\) proxy/);
  assert.match(r.stdout, /tasklb sidecar, node --max-semi-space-size=2/);
  assert.match(r.stdout, /tasklb router \(1 hop\), node --max-semi-space-size=4/);
  assert.match(
    r.stdout,
    /Command: `npm run bench:overhead -- --smoke --targets direct,undici-minimal,undici-stream --sidecar-node-args semi2=--max-semi-space-size=2 --router-node-args semi4=--max-semi-space-size=4 /,
    "the report names the flags it ran with",
  );
  const json = JSON.parse(readFileSync(join(out, "overhead.json"), "utf8")) as {
    runs: { target: string; small: { requestsPerSec: number } }[];
  };
  assert.deepEqual(
    new Set(json.runs.map((x) => x.target)),
    new Set(["direct", "undici-minimal", "undici-stream", "sidecar[semi2]", "router[semi4]"]),
  );
  assert.ok(json.runs.every((x) => x.small.requestsPerSec > 0));
  assert.ok(existsSync(join(out, "overhead-throughput.svg")));
});

test("bench:balance starts a simulated cluster behind real sidecars and measures the oracle", async (t) => {
  const out = mkdtempSync(join(tmpdir(), "tasklb-bench-smoke-"));
  t.after(() => rmSync(out, { recursive: true, force: true }));
  const r = await run("./balance/main.js", ["--smoke", "--balancers", "oracle", "--out", out], 120_000);
  assert.equal(r.code, 0, r.stderr);
  const json = JSON.parse(readFileSync(join(out, "balance-quick.json"), "utf8")) as {
    runs: { balancer: string; result: { ok: number; perServer: Record<string, number> } }[];
  };
  const oracle = json.runs.find((x) => x.balancer === "oracle");
  assert.ok(oracle && oracle.result.ok > 0, "the oracle served requests");
  assert.ok(Object.keys(oracle.result.perServer).length >= 2, "work went to more than one server");
});

test("bench:ab compares a build's sidecar with both minimal undici proxies, round by round", async () => {
  const build = fileURLToPath(new URL("..", import.meta.url));
  const r = await run(
    "./overhead/ab.js",
    ["--role", "sidecar", "--builds", `this=${build}`, "--requests", "200", "--rounds", "2"],
    90_000,
  );
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /\| minimal undici dispatch\(\) proxy \| [\d.]+ \(/);
  assert.match(r.stdout, /\| minimal undici stream\(\) proxy \| [\d.]+ \(/);
  assert.match(
    r.stdout,
    /\| this \| [\d.]+ \([\d.]+–[\d.]+\) \| [\d.]+ \([\d.]+–[\d.]+\) \| [\d.]+ \(/,
    "a ratio per round to each minimal proxy for the build",
  );
});

test("bench:instructions counts instructions per request of both minimal undici proxies and a sidecar under other Node flags", async (t) => {
  if (!findTool("valgrind") || !findTool("callgrind_control"))
    return t.skip("valgrind is not installed (bash scripts/install-test-deps.sh)");
  const out = mkdtempSync(join(tmpdir(), "tasklb-bench-smoke-"));
  t.after(() => rmSync(out, { recursive: true, force: true }));
  const build = fileURLToPath(new URL("..", import.meta.url));
  // Tiny on purpose: Node under valgrind needs 10–40 s to start and serves ~100 requests/s. Four
  // targets (both minimal proxies, this build's sidecar with and without the extra flag), 2 at a time.
  const r = await run(
    "./overhead/instructions.js",
    [
      ...["--builds", `this=${build}`, "--node-args", "semi2=--max-semi-space-size=2"],
      ...["--requests", "300", "--warmup", "300", "--idle-seconds", "2", "--parallel", "2"],
      ...["--out", out],
    ],
    175_000,
  );
  assert.equal(r.code, 0, r.stderr);
  const json = JSON.parse(readFileSync(join(out, "instructions.json"), "utf8")) as {
    targets: { name: string; nodeArgs: string[]; rounds: { mainPerRequest: number }[] }[];
  };
  assert.deepEqual(
    json.targets.map((x) => [x.name, x.nodeArgs]),
    [
      ["minimal undici dispatch() proxy", []],
      ["minimal undici stream() proxy", []],
      ["this", []],
      ["this[semi2]", ["--max-semi-space-size=2"]],
    ],
  );
  assert.ok(json.targets.every((x) => x.rounds.length === 1 && x.rounds[0]!.mainPerRequest > 1000));
  assert.equal(readFileSync(join(out, "instructions.md"), "utf8"), r.stdout);
  assert.match(
    r.stdout,
    / --node-args semi2=--max-semi-space-size=2 /,
    "the report's command line names the extra Node flags",
  );
  for (const name of ["dispatch", "stream"].map((n) => `minimal undici ${n}\\(\\) proxy`)) {
    const row = new RegExp(`^\\| ${name} +\\| +([\\d.]+) \\|[^|]+\\|[^|]+\\| +([\\d.]+) \\|`, "m").exec(
      r.stdout,
    );
    assert.ok(row, `a row for ${name}:\n${r.stdout}`);
    const [main, all] = [Number(row[1]), Number(row[2])];
    // k instructions per request: no request is served in under 1,000 instructions, and the main
    // thread is a part of all threads.
    assert.ok(main > 1 && all > main, `${name}: main ${main} k, all threads ${all} k`);
  }
  // The sidecar's idle timers are subtracted per thread, so only the main thread's count is checked.
  const semi2 = /^\| this\[semi2\] +\| +([\d.]+) \|/m.exec(r.stdout);
  assert.ok(semi2 && Number(semi2[1]) > 1, `a row for this[semi2]:\n${r.stdout}`);
});

test("a callgrind dump's main-thread cost is the outermost (below main), not the sum of both", () => {
  // The shape of a real dump (glibc ≥ 2.34): _start's "(below main)" calls __libc_start_main, which
  // calls __libc_start_call_main, also named "(below main)"; a GC thread starts in start_thread.
  const dump = [
    "# callgrind format",
    "positions: line",
    "events: Ir",
    "summary: 1500",
    "",
    "fl=(1) libc-start.c",
    "fn=(2) __libc_start_main",
    "cfl=(3) libc_start_call_main.h",
    "cfn=(4) (below main)",
    "calls=1 29",
    "360 1000",
    "",
    "fl=(3)",
    "fn=(4)",
    "29 10",
    "cfn=(5) main",
    "calls=1 0",
    "+1 990",
    "",
    "fl=(6) ???",
    "fn=(7) (below main)",
    "0 5",
    "cfn=(2)",
    "calls=1 0",
    "0 1000",
    "",
    "fn=(8) start_thread",
    "0 495",
    "",
    "totals: 1500",
  ].join("\n");
  assert.deepEqual(parseCallgrindDump(dump), { all: 1500, main: 1005 });
});

test("bench:tune runs adaptive, a variant and another balancer on a mirror, and rejects an unknown parameter", async () => {
  const r = await run(
    "./balance/tune.js",
    [
      "--seeds",
      "1",
      "--scenarios",
      "homogeneous-70",
      "--duration-s",
      "10",
      "--variants",
      "w50:speedCalls=50;least-request",
    ],
    60_000,
  );
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /\| scenario \| adaptive \| w50 \| least-request \|/);
  // One row per table (p99 and p99.9), each with a ratio to the oracle per column.
  const rows = r.stdout.split("\n").filter((l) => l.startsWith("| bench-homogeneous-70 |"));
  assert.equal(rows.length, 2);
  for (const row of rows) assert.equal(row.match(/\d+\.\d\d \(\d+\.\d\d–\d+\.\d\d\)/g)?.length, 3, row);
  const bad = await run("./balance/tune.js", ["--seeds", "1", "--variants", "x:speedCals=5"], 30_000);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /unknown adaptive parameter speedCals/);
});
