/**
 * Smoke test of bench:instructions (valgrind): it starts, counts a tiny bounded configuration end to
 * end and writes its results; and the callgrind dump parser on a real dump's shape. See run.ts.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseCallgrindDump } from "../lib/callgrind.js";
import { findTool } from "../lib/proc.js";
import { runBench, thisBuild } from "./run.js";

test("bench:instructions counts instructions per request of both minimal undici proxies, a sidecar under other Node flags and nginx", async (t) => {
  if (!findTool("valgrind") || !findTool("callgrind_control"))
    return t.skip("valgrind is not installed (bash scripts/install-test-deps.sh)");
  const out = mkdtempSync(join(tmpdir(), "tasklb-bench-smoke-"));
  t.after(() => rmSync(out, { recursive: true, force: true }));
  const nginx = findTool("nginx") !== undefined;
  // Tiny on purpose: Node under valgrind needs 10–40 s to start and serves ~100 requests/s. Four
  // Node targets (both minimal proxies, this build's sidecar with and without the extra flag) and
  // nginx (a C peer: it starts and serves fast under valgrind), 2 at a time.
  const r = await runBench(
    "overhead/instructions.js",
    [
      ...[
        "--builds",
        `this=${thisBuild}`,
        "--node-args",
        "semi2=--max-semi-space-size=2",
        "--peers",
        "nginx",
      ],
      ...["--requests", "300", "--warmup", "300", "--idle-seconds", "2", "--idle-before", "--parallel", "2"],
      ...["--out", out],
    ],
    175_000,
  );
  assert.equal(r.code, 0, r.stderr);
  const json = JSON.parse(readFileSync(join(out, "instructions.json"), "utf8")) as {
    targets: {
      name: string;
      nodeArgs: string[];
      rounds: { mainPerRequest: number; idleBefore?: { main: number } }[];
    }[];
  };
  assert.deepEqual(
    json.targets.map((x) => [x.name, x.nodeArgs]),
    [
      ["minimal undici dispatch() proxy", []],
      ["minimal undici stream() proxy", []],
      ["this", []],
      ["this[semi2]", ["--max-semi-space-size=2"]],
      ...(nginx ? [["nginx (1 process)", []]] : []),
    ],
  );
  assert.ok(json.targets.every((x) => x.rounds.length === 1 && x.rounds[0]!.mainPerRequest > 1000));
  assert.equal(readFileSync(join(out, "instructions.md"), "utf8"), r.stdout);
  assert.match(
    r.stdout,
    / --node-args semi2=--max-semi-space-size=2 /,
    "the report's command line names the extra Node flags",
  );
  if (!nginx) assert.match(r.stdout, /Skipped: nginx \(nginx is not installed/);
  // The first table: k instructions per request in the columns named "main thread…"/"all threads…".
  const lines = r.stdout.split("\n").filter((l) => l.startsWith("| "));
  const cells = (l: string) => l.split("|").map((c) => c.trim());
  const header = cells(lines[0]!);
  const [mainCol, allCol] = ["main thread, k", "all threads, k"].map((h) =>
    header.findIndex((c) => c.startsWith(h)),
  );
  assert.equal(header.includes("÷ nginx"), nginx, `a ÷ nginx column exactly when nginx ran:\n${r.stdout}`);
  const count = (name: string) => {
    const row = lines.map(cells).find((c) => c[1] === name);
    assert.ok(row, `a row for ${name}:\n${r.stdout}`);
    return { main: Number(row[mainCol!]), all: Number(row[allCol!]) };
  };
  for (const name of ["dispatch", "stream"].map((n) => `minimal undici ${n}() proxy`)) {
    const { main, all } = count(name);
    // k instructions per request: no request is served in under 1,000 instructions, and the main
    // thread is a part of all threads.
    assert.ok(main > 1 && all > main, `${name}: main ${main} k, all threads ${all} k`);
  }
  // The sidecar's idle timers are subtracted per thread, so only the main thread's count is checked.
  assert.ok(count("this[semi2]").main > 1, r.stdout);
  // --idle-before: every target was also counted idle before the load (a Node process runs its
  // event loop's housekeeping even then, so the count is never zero).
  assert.ok(
    json.targets.every((x) => (x.rounds[0]!.idleBefore?.main ?? 0) > 0),
    "an idle window before the load for every target",
  );
  if (nginx) {
    // One process, one thread: the dump counted the process that served, and it has no other thread.
    const { main, all } = count("nginx (1 process)");
    assert.ok(main > 1 && all === main, `nginx: main ${main} k, all threads ${all} k`);
  }
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
