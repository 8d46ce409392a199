/**
 * `tasklb router` as a real process: SIGTERM makes readiness fail, lets the request in flight
 * finish, refuses new connections, and exits 0. Also: --help and a bad flag.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import { request } from "undici";
import {
  CLI,
  getJson,
  servers,
  spawnRouter,
  startCluster,
  waitFor,
  waitInRotation,
} from "../helpers/router.js";

void test("SIGTERM: readiness fails, the in-flight request finishes, the process exits 0", async (t) => {
  const [c] = await startCluster(t, [{ name: "slow", workers: 2, meanMs: 1500, sigma: 0 }]);
  const r = await spawnRouter(t, [
    "--server",
    c!.serverSpec,
    "--drain-grace-ms",
    "8000",
    "--log-level",
    "info",
  ]);
  await waitInRotation(r.adminUrl, [c!.dataUrl]);
  assert.equal((await getJson(`${r.adminUrl}/readyz`)).status, 200);

  const slow = request(`${r.url}/work`).then(async (res) => ({
    status: res.statusCode,
    body: await res.body.text(),
  }));
  await waitFor(
    async () => (await servers(r.adminUrl))[0]!.router.inFlight === 1,
    "the request to be in flight",
  );
  r.proc.kill("SIGTERM");
  await waitFor(
    async () => (await getJson(`${r.adminUrl}/readyz`)).status === 503,
    "readiness to fail",
    5000,
    20,
  );
  const done = await slow;
  assert.equal(done.status, 200);
  assert.match(done.body, /"server":"slow"/);
  assert.equal(await r.exited, 0, r.stderr());
  await assert.rejects(request(`${r.url}/work`), /ECONNREFUSED/);
  assert.match(r.stderr(), /"msg":"draining"/);
});

void test("tasklb router --help lists every flag; a bad flag exits 2 with a message", () => {
  const help = spawnSync(process.execPath, [CLI, "router", "--help"], { encoding: "utf8" });
  assert.equal(help.status, 0);
  for (const flag of [
    "--listen",
    "--admin",
    "--server",
    "--dns",
    "--algorithm",
    "--mode",
    "--poll-interval-ms",
    "--retries",
  ]) {
    assert.ok(help.stdout.includes(flag), flag);
  }
  const bad = spawnSync(process.execPath, [CLI, "router", "--algorithm", "fastest"], { encoding: "utf8" });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--algorithm must be one of/);
});
