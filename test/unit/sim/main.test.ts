import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const cli = fileURLToPath(new URL("../../../src/cli.js", import.meta.url));

void test("tasklb simulate prints a table per scenario and writes CSV/JSON", (t) => {
  const out = mkdtempSync(join(tmpdir(), "tasklb-sim-"));
  t.after(() => rmSync(out, { recursive: true, force: true }));
  const r = spawnSync(
    process.execPath,
    [
      cli,
      "simulate",
      "--scenario",
      "hetero-70",
      "--algorithms",
      "least-request,adaptive,oracle",
      "--duration-s",
      "4",
      "--out",
      out,
    ],
    { encoding: "utf8", timeout: 60_000 },
  );
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /hetero-70/);
  assert.match(r.stdout, /adaptive\s+\d+/);
  assert.match(r.stdout, /p99\/oracle/);
  const csv = readFileSync(join(out, "results.csv"), "utf8").trim().split("\n");
  assert.equal(csv.length, 4);
  const json = JSON.parse(readFileSync(join(out, "results.json"), "utf8")) as { results: unknown[] };
  assert.equal(json.results.length, 3);
});

void test("tasklb simulate rejects an unknown algorithm with exit code 2", () => {
  const r = spawnSync(process.execPath, [cli, "simulate", "--algorithms", "fastest"], {
    encoding: "utf8",
    timeout: 30_000,
  });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown algorithm "fastest"/);
});

void test("tasklb simulate runs the mirrors of the real bench, with service time and nested calls from flags", () => {
  const r = spawnSync(
    process.execPath,
    [
      cli,
      "simulate",
      "--scenario",
      "bench-heterogeneous-70",
      "--algorithms",
      "adaptive,oracle",
      "--duration-s",
      "4",
      "--mean-service-ms",
      "100",
      "--nested-probability",
      "0.3",
    ],
    { encoding: "utf8", timeout: 60_000 },
  );
  assert.equal(r.status, 0, r.stderr);
  // 4 slots × (4+4+2+1) / 100 ms = 440 req/s of capacity; 70% of it is offered.
  assert.match(r.stdout, /bench-heterogeneous-70: .*offered 308\/s/);
  assert.match(r.stdout, /adaptive\s+\d+/);
});
