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

test("bench:overhead starts, measures direct and the minimal undici proxy, and writes its results", async (t) => {
  if (!findTool("wrk")) return t.skip("wrk is not installed (bash scripts/install-test-deps.sh)");
  const out = mkdtempSync(join(tmpdir(), "tasklb-bench-smoke-"));
  t.after(() => rmSync(out, { recursive: true, force: true }));
  const r = await run(
    "./overhead/main.js",
    ["--smoke", "--targets", "direct,undici-minimal", "--out", out],
    90_000,
  );
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /minimal undici proxy/);
  const json = JSON.parse(readFileSync(join(out, "overhead.json"), "utf8")) as {
    runs: { target: string; small: { requestsPerSec: number } }[];
  };
  assert.deepEqual(new Set(json.runs.map((x) => x.target)), new Set(["direct", "undici-minimal"]));
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

test("bench:ab compares a build's sidecar with the minimal undici proxy, round by round", async () => {
  const build = fileURLToPath(new URL("..", import.meta.url));
  const r = await run(
    "./overhead/ab.js",
    ["--role", "sidecar", "--builds", `this=${build}`, "--requests", "200", "--rounds", "2"],
    90_000,
  );
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /\| minimal undici proxy \| [\d.]+ \(/);
  assert.match(
    r.stdout,
    /\| this \| [\d.]+ \([\d.]+–[\d.]+\) \| [\d.]+ \(/,
    "a ratio per round for the build",
  );
});
