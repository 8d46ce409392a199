/**
 * Smoke test of bench:balance and bench:tune: each starts, runs a tiny bounded configuration end to end
 * and writes its results. See run.ts.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import assert from "node:assert/strict";
import { runBench, thisBuild } from "./run.js";

test("bench:balance starts a simulated cluster behind real sidecars and measures the oracle", async (t) => {
  const out = mkdtempSync(join(tmpdir(), "tasklb-bench-smoke-"));
  t.after(() => rmSync(out, { recursive: true, force: true }));
  const r = await runBench(
    "balance/main.js",
    ["--smoke", "--balancers", "oracle", "--scenarios", "heterogeneous-70,slowdown", "--out", out],
    150_000,
  );
  assert.equal(r.code, 0, r.stderr);
  const json = JSON.parse(readFileSync(join(out, "balance-quick.json"), "utf8")) as {
    runs: { balancer: string; result: { ok: number; perServer: Record<string, number> } }[];
  };
  assert.equal(json.runs.length, 2, "one run per scenario");
  for (const oracle of json.runs) {
    assert.ok(oracle.result.ok > 0, "the oracle served requests");
    assert.ok(Object.keys(oracle.result.perServer).length >= 2, "work went to more than one server");
  }
  // The slowdown's phases: s0's share and the worst p99 before and during (a 2 s smoke run is
  // over before "slow, rest" would start).
  const md = readFileSync(join(out, "balance-quick.md"), "utf8");
  assert.match(md, /Share of s0 \(%\) through its slowdown/);
  assert.match(
    md,
    /\| oracle +\| +[\d.]+ \| +[\d.]+ \|/,
    "the oracle's share before and early in the slowdown",
  );
  assert.match(md, /Worst p99 of any 0\.5 s bucket/);
});

test("bench:tune runs adaptive, a variant and another balancer on a mirror, and rejects an unknown parameter", async () => {
  const r = await runBench(
    "balance/tune.js",
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
  const bad = await runBench("balance/tune.js", ["--seeds", "1", "--variants", "x:speedCals=5"], 30_000);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /unknown adaptive parameter speedCals/);
});

test("bench:balance:ab runs two builds on the same seed and compares them seed by seed; bad builds are refused", async () => {
  const r = await runBench(
    "balance/ab.js",
    [
      ...["--builds", `a=${thisBuild},b=${thisBuild}`, "--scenarios", "slowdown"],
      ...["--balancer", "oracle", "--seeds", "1", "--smoke"],
    ],
    120_000,
  );
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^\| seed +\| a p99 ms \| b p99 ms \|$/m);
  assert.match(r.stdout, /^\| 101 +\| +[\d.]+ \| +[\d.]+ \|$/m, "one row per seed with each build's p99");
  assert.match(
    r.stdout,
    /^\| b +\|.*\| [\d.]+, higher on [01] of 1 \|/m,
    "b's p99 against a's, seed by seed",
  );
  const bad = await runBench("balance/ab.js", ["--builds", `a=${thisBuild},b=/nonexistent`], 30_000);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /b=\/nonexistent: no bench\/balance\/main\.js there/);
});
