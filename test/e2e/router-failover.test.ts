/**
 * Failover with real sidecars: a server killed in the middle of a load run costs no GET, leaves
 * rotation and comes back (eased in, new epoch) when restarted; a POST sent to a dead server never
 * reached any app, so it is retried on another one with its body intact.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { request } from "undici";
import {
  runLoad,
  servers,
  startCluster,
  startNamedServer,
  startRouter,
  startSidecar,
  waitFor,
  waitInRotation,
} from "../helpers/router.js";
import { formatHostPort } from "../../src/shared/config.js";

const APPS = ["a", "b", "c"].map((name) => ({ name, workers: 4, meanMs: 10, sigma: 0.3 }));

void test("kill a server mid-run: no GET fails; it leaves rotation and comes back when restarted", async (t) => {
  const cluster = await startCluster(t, APPS);
  const { url, adminUrl } = await startRouter(t, [
    "--server",
    cluster.map((c) => c.serverSpec).join(","),
    "--algorithm",
    "round-robin",
    "--ease-in-ms",
    "500",
  ]);
  await waitInRotation(
    adminUrl,
    cluster.map((c) => c.dataUrl),
  );
  const victim = cluster[1]!;
  const oldEpoch = victim.sidecar.epoch;
  const { data, control } = victim.sidecar.addresses!;

  const run = runLoad(url, { count: 600, concurrency: 6 });
  await waitFor(() => victim.app.stats.served >= 40, "the victim to serve some of the run");
  await victim.sidecar.close();
  const r = await run;
  assert.equal(r.failures, 0, "no request failed at the network level");
  assert.deepEqual([...r.byStatus], [[200, 600]], "every GET answered 200");

  const out = await waitFor(
    async () => (await servers(adminUrl)).find((s) => s.dataUrl === victim.dataUrl && s.state === "out"),
    "the killed server to be out",
  );
  assert.match(out.reason, /connect failed|polls failed/);
  const during = await runLoad(url, { count: 60, concurrency: 3 });
  assert.equal(during.byServer.get("b"), undefined, "no traffic to the dead server");
  assert.deepEqual([...during.byStatus], [[200, 60]]);

  // Restart on the same ports: a new sidecar process lifetime (new epoch).
  const again = await startSidecar(t, victim.appUrl, [], formatHostPort(data), formatHostPort(control));
  assert.notEqual(again.epoch, oldEpoch);
  await waitInRotation(
    adminUrl,
    cluster.map((c) => c.dataUrl),
  );
  const back = await waitFor(
    async () =>
      (await servers(adminUrl)).find(
        (s) => s.dataUrl === victim.dataUrl && s.lastReport?.epoch === again.epoch,
      ),
    "the router to see the new epoch",
  );
  assert.ok(back.state === "easing" || back.state === "ready");
  const after = await runLoad(url, { count: 150, concurrency: 3 });
  assert.deepEqual([...after.byStatus], [[200, 150]]);
  assert.ok(
    (after.byServer.get("b") ?? 0) > 0,
    `the restarted server gets traffic again: ${JSON.stringify([...after.byServer])}`,
  );
});

void test("a POST that never reached an app is retried on another server, body intact", async (t) => {
  const bodies: string[] = [];
  const apps = await Promise.all(
    ["a", "b", "c"].map((name) =>
      startNamedServer(t, name, (req) => {
        let b = "";
        req.setEncoding("utf8");
        req.on("data", (c: string) => (b += c));
        req.on("end", () => bodies.push(`${name}:${b}`));
      }),
    ),
  );
  const sidecars = await Promise.all(apps.map((a) => startSidecar(t, a.url)));
  // Polls after the first are far apart, so only the failed connection tells the router.
  const { url, adminUrl } = await startRouter(t, [
    "--server",
    sidecars.map((s) => `${s.addresses!.dataUrl}=${s.addresses!.controlUrl}`).join(","),
    "--algorithm",
    "round-robin",
    "--poll-interval-ms",
    "60000",
    "--max-misses",
    "1000",
  ]);
  const dataUrls = sidecars.map((s) => s.addresses!.dataUrl);
  await waitInRotation(adminUrl, dataUrls);
  const dead = dataUrls[1]!;
  await sidecars[1]!.close();

  // Round-robin over three servers: one of three POSTs is sent to the dead one first.
  for (let i = 0; i < 3; i++) {
    const res = await request(`${url}/submit`, { method: "POST", body: `payload-${i}-${"x".repeat(1000)}` });
    assert.equal(res.statusCode, 200, await res.body.text());
  }
  await waitFor(() => bodies.length === 3, "three bodies at the apps");
  assert.deepEqual(bodies.map((b) => b.split(":")[1]!.slice(0, 9)).sort(), [
    "payload-0",
    "payload-1",
    "payload-2",
  ]);
  assert.ok(bodies.every((b) => b.length === 2 + 9 + 1 + 1000));
  assert.ok(bodies.every((b) => !b.startsWith("b:")));
  const s = (await servers(adminUrl)).find((x) => x.dataUrl === dead)!;
  assert.equal(s.state, "out");
  assert.match(s.reason, /connect failed/);
  assert.ok(s.router.errors >= 1);
});

void test("a sidecar that drains gets no new work and no request fails", async (t) => {
  const cluster = await startCluster(t, APPS);
  const { url, adminUrl } = await startRouter(t, [
    "--server",
    cluster.map((c) => c.serverSpec).join(","),
    "--algorithm",
    "round-robin",
  ]);
  await waitInRotation(
    adminUrl,
    cluster.map((c) => c.dataUrl),
  );
  const victim = cluster[2]!;
  const run = runLoad(url, { count: 400, concurrency: 6, method: "POST" });
  await waitFor(() => victim.app.stats.served >= 30, "the victim to serve some of the run");
  const drained = victim.sidecar.drain();
  const r = await run;
  await drained;
  assert.equal(r.failures, 0);
  assert.deepEqual([...r.byStatus], [[200, 400]], "every POST answered 200");
  const s = (await servers(adminUrl)).find((x) => x.dataUrl === victim.dataUrl)!;
  assert.ok(s.state === "draining" || s.state === "out", s.state);
});
