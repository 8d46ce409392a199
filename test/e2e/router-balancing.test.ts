/**
 * Three demo apps behind real sidecars, one four times slower, behind a real router: the slow one
 * gets clearly less traffic under `task-seconds` and the default `adaptive`, and about a third
 * under `round-robin`. Load is bounded (a fixed number of requests, a few in flight at once).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { runLoad, startCluster, startRouter, waitInRotation, type ClusterMember } from "../helpers/router.js";

const APPS = [
  { name: "fast-a", workers: 4, meanMs: 15, sigma: 0.3 },
  { name: "fast-b", workers: 4, meanMs: 15, sigma: 0.3 },
  { name: "slow", workers: 4, meanMs: 80, sigma: 0.3 },
];

async function slowShare(t: import("node:test").TestContext, cluster: ClusterMember[], algorithm: string) {
  const { url, adminUrl } = await startRouter(t, [
    "--server",
    cluster.map((c) => c.serverSpec).join(","),
    "--algorithm",
    algorithm,
    "--ease-in-ms",
    "0",
  ]);
  await waitInRotation(
    adminUrl,
    cluster.map((c) => c.dataUrl),
  );
  // Warm up so every algorithm has reports with rates, then measure.
  await runLoad(url, { count: 60, concurrency: 6 });
  const r = await runLoad(url, { count: 450, concurrency: 6 });
  assert.equal(r.failures, 0);
  assert.equal(r.byStatus.get(200), 450, `all requests answered 200: ${JSON.stringify([...r.byStatus])}`);
  const share = (r.byServer.get("slow") ?? 0) / 450;
  t.diagnostic(
    `${algorithm}: ${JSON.stringify(Object.fromEntries(r.byServer))} slow share ${share.toFixed(3)}`,
  );
  return share;
}

void test("the slow server gets clearly less traffic under task-seconds", async (t) => {
  const cluster = await startCluster(t, APPS);
  const share = await slowShare(t, cluster, "task-seconds");
  assert.ok(share < 0.2, `slow share ${share} should be well below 1/3`);
});

void test("the slow server gets clearly less traffic under the default (adaptive)", async (t) => {
  const cluster = await startCluster(t, APPS);
  const share = await slowShare(t, cluster, "adaptive");
  assert.ok(share < 0.2, `slow share ${share} should be well below 1/3`);
});

void test("round-robin gives the slow server about a third", async (t) => {
  const cluster = await startCluster(t, APPS);
  const share = await slowShare(t, cluster, "round-robin");
  assert.ok(share > 0.27 && share < 0.4, `slow share ${share} should be about 1/3`);
});
