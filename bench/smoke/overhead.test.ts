/**
 * Smoke test of bench:overhead and bench:ab: each starts, runs a tiny bounded configuration end to end
 * and writes its results. See run.ts.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import assert from "node:assert/strict";
import { findTool } from "../lib/proc.js";
import { runBench, thisBuild } from "./run.js";

test("bench:overhead starts, measures direct, both minimal undici proxies and a sidecar and a router under other Node flags, and writes its results", async (t) => {
  if (!findTool("wrk")) return t.skip("wrk is not installed (bash scripts/install-test-deps.sh)");
  const out = mkdtempSync(join(tmpdir(), "tasklb-bench-smoke-"));
  t.after(() => rmSync(out, { recursive: true, force: true }));
  const r = await runBench(
    "overhead/main.js",
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

test("bench:ab compares a build's sidecar with both minimal undici proxies, round by round", async () => {
  const r = await runBench(
    "overhead/ab.js",
    ["--role", "sidecar", "--builds", `this=${thisBuild}`, "--requests", "200", "--rounds", "2"],
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
