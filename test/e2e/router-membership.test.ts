/**
 * Membership and load collection against real sidecars and real control endpoints on loopback:
 * a hanging poll does not delay the others, a sidecar with the wrong token is out, registration
 * needs the token (and expires without renewal), and two routers polling the same sidecars both
 * derive correct rates.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { request } from "undici";
import {
  runLoad,
  servers,
  startCluster,
  startReportServer,
  startRouter,
  startSidecar,
  startNamedServer,
  waitFor,
  waitInRotation,
} from "../helpers/router.js";

void test("a sidecar whose poll hangs does not delay the polls of the others", async (t) => {
  const good = [await startReportServer(t), await startReportServer(t)];
  const hung = await startReportServer(t);
  hung.hang = true;
  const { adminUrl } = await startRouter(t, [
    "--server",
    [...good, hung].map((s, i) => `http://127.0.0.1:${40001 + i}=${s.url}`).join(","),
    "--poll-interval-ms",
    "100",
    "--poll-timeout-ms",
    "1000",
    "--max-misses",
    "3",
  ]);
  const before = good.map((g) => g.polls);
  // Three timed-out polls of the hanging one take at least 3 s; meanwhile the others keep their pace.
  const out = await waitFor(
    async () =>
      (await servers(adminUrl)).find((s) => s.dataUrl === "http://127.0.0.1:40003" && s.misses >= 3),
    "the hanging server to be out",
    15_000,
  );
  assert.equal(out.state, "out");
  assert.match(out.reason, /timed out/);
  for (const [i, g] of good.entries()) {
    const polls = g.polls - before[i]!;
    // ~30 at 100 ms; a poller serialised behind the hanging one would manage about 3.
    assert.ok(polls >= 12, `server ${i} was polled ${polls} times while the other hung`);
  }
  const s = await servers(adminUrl);
  assert.deepEqual(
    s
      .filter((x) => x.state !== "out")
      .map((x) => x.dataUrl)
      .sort(),
    ["http://127.0.0.1:40001", "http://127.0.0.1:40002"],
  );
});

void test("a sidecar with a wrong token is out; one with the right token serves", async (t) => {
  const [a, b] = await Promise.all([startNamedServer(t, "right"), startNamedServer(t, "wrong")]);
  const right = await startSidecar(t, a.url, ["--token", "s3cret"]);
  const wrong = await startSidecar(t, b.url, ["--token", "other"]);
  const { url, adminUrl } = await startRouter(t, [
    "--token",
    "s3cret",
    "--server",
    [right, wrong].map((s) => `${s.addresses!.dataUrl}=${s.addresses!.controlUrl}`).join(","),
  ]);
  await waitInRotation(adminUrl, [right.addresses!.dataUrl], "s3cret");
  const w = await waitFor(
    async () =>
      (await servers(adminUrl, "s3cret")).find(
        (s) => s.dataUrl === wrong.addresses!.dataUrl && s.misses >= 3,
      ),
    "the wrong-token sidecar to have missed polls",
  );
  assert.equal(w.state, "out");
  assert.match(w.lastPollError ?? "", /401/);
  const r = await runLoad(url, { count: 20, concurrency: 2, path: "/" });
  assert.deepEqual([...r.byServer], [["right", 20]]);
  assert.equal(b.hits, 0);
});

void test("registration needs the token, validates the body and expires without renewal", async (t) => {
  const app = await startNamedServer(t, "reg");
  const sc = await startSidecar(t, app.url, ["--token", "tok"]);
  const { adminUrl } = await startRouter(t, ["--token", "tok", "--registration-ttl-ms", "600"]);
  const body = JSON.stringify({ dataUrl: sc.addresses!.dataUrl, controlUrl: sc.addresses!.controlUrl });
  const post = async (b: string, token?: string, method: "POST" | "DELETE" = "POST") => {
    const res = await request(`${adminUrl}/v1/register`, {
      method,
      body: b,
      headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    });
    return { status: res.statusCode, code: res.headers["x-tasklb-error"], body: await res.body.text() };
  };
  assert.equal((await post(body)).status, 401);
  assert.equal((await post(body, "wrong")).status, 401);
  assert.equal((await post(body, "wrong")).code, "UNAUTHORIZED");
  for (const bad of [
    "not json",
    JSON.stringify({ dataUrl: "ftp://127.0.0.1:21" }),
    JSON.stringify({ dataUrl: "file:///etc/passwd" }),
    JSON.stringify({ dataUrl: "http://127.0.0.1:1/some/path" }),
    JSON.stringify({ dataUrl: "http://user:pw@127.0.0.1:1" }),
    JSON.stringify({ dataUrl: sc.addresses!.dataUrl, controlUrl: "gopher://x" }),
    JSON.stringify({ dataUrl: sc.addresses!.dataUrl, extra: 1 }),
    JSON.stringify([1]),
  ]) {
    const r = await post(bad, "tok");
    assert.equal(r.status, 400, `${bad} → ${r.status} ${r.body}`);
    assert.equal(r.code, "BAD_REQUEST");
  }
  assert.equal((await servers(adminUrl, "tok")).length, 0, "nothing bad got in");

  assert.equal((await post(body, "tok")).status, 200);
  await waitInRotation(adminUrl, [sc.addresses!.dataUrl], "tok");
  // Not renewed: gone after the TTL.
  await waitFor(
    async () => (await servers(adminUrl, "tok")).length === 0,
    "the registration to expire",
    5000,
  );

  // Renewed by a real sidecar registering itself (--router): it joins and stays.
  const self = await startSidecar(t, app.url, [
    "--token",
    "tok",
    "--router",
    adminUrl,
    "--register-interval-ms",
    "150",
  ]);
  await waitInRotation(adminUrl, [self.addresses!.dataUrl], "tok");
  await new Promise((r) => setTimeout(r, 1000));
  await waitInRotation(adminUrl, [self.addresses!.dataUrl], "tok", 100);

  // A sidecar with the wrong token is refused and never appears.
  const intruder = await startSidecar(t, app.url, [
    "--token",
    "nope",
    "--router",
    adminUrl,
    "--register-interval-ms",
    "150",
  ]);
  await new Promise((r) => setTimeout(r, 500));
  assert.ok(!(await servers(adminUrl, "tok")).some((s) => s.dataUrl === intruder.addresses!.dataUrl));

  // Explicit deregistration.
  const del = await post(JSON.stringify({ dataUrl: self.addresses!.dataUrl }), "tok", "DELETE");
  assert.equal(del.status, 200);
});

void test("two routers polling the same sidecars both derive correct rates", async (t) => {
  // Constant 60 ms calls, two in flight per server at all times: busy (task-seconds/s) ≈ 2.
  const cluster = await startCluster(
    t,
    ["a", "b"].map((name) => ({ name, workers: 8, meanMs: 60, sigma: 0 })),
  );
  const args = ["--server", cluster.map((c) => c.serverSpec).join(","), "--algorithm", "round-robin"];
  const r1 = await startRouter(t, args);
  const r2 = await startRouter(t, [...args, "--poll-interval-ms", "170"]);
  await waitInRotation(
    r1.adminUrl,
    cluster.map((c) => c.dataUrl),
  );
  await waitInRotation(
    r2.adminUrl,
    cluster.map((c) => c.dataUrl),
  );
  const load = runLoad(r1.url, { count: 240, concurrency: 4 });
  await new Promise((r) => setTimeout(r, 800));
  const samples: number[][] = [[], []];
  for (let i = 0; i < 8; i++) {
    for (const [k, r] of [r1, r2].entries()) {
      for (const s of await servers(r.adminUrl)) if (s.rates) samples[k]!.push(s.rates.busy);
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  const res = await load;
  assert.deepEqual([...res.byStatus], [[200, 240]]);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const [m1, m2] = [mean(samples[0]!), mean(samples[1]!)];
  t.diagnostic(
    `mean busy seen by router 1: ${m1.toFixed(2)}, by router 2 (which sent nothing): ${m2.toFixed(2)}`,
  );
  assert.ok(m1 > 1.3 && m1 < 2.7, `router 1 busy ${m1}`);
  assert.ok(m2 > 1.3 && m2 < 2.7, `router 2 busy ${m2}`);
});

void test("DNS names join the pool with all their addresses and follow re-resolution", async (t) => {
  const app = await startNamedServer(t, "dns");
  const sc = await startSidecar(t, app.url);
  const { data, control } = sc.addresses!;
  let answer: { address: string; family: number }[] | Error = [{ address: "127.0.0.1", family: 4 }];
  const lookup = async (name: string) => {
    assert.equal(name, "app.test");
    if (answer instanceof Error) throw answer;
    return answer;
  };
  const { url, adminUrl } = await startRouter(
    t,
    [
      "--dns",
      `app.test:${data.port}`,
      "--sidecar-control-port",
      String(control.port),
      "--dns-interval-ms",
      "100",
    ],
    { lookup },
  );
  await waitInRotation(adminUrl, [`http://127.0.0.1:${data.port}`]);
  const r = await runLoad(url, { count: 5, concurrency: 1, path: "/" });
  assert.deepEqual([...r.byServer], [["dns", 5]]);
  assert.deepEqual((await servers(adminUrl))[0]!.sources, ["dns"]);

  answer = Object.assign(new Error("lookup failed"), { code: "EAI_AGAIN" });
  await new Promise((r) => setTimeout(r, 400));
  await waitInRotation(adminUrl, [`http://127.0.0.1:${data.port}`], undefined, 100);

  answer = [{ address: "127.0.0.2", family: 4 }];
  await waitFor(
    async () => (await servers(adminUrl)).map((s) => s.dataUrl).join() === `http://127.0.0.2:${data.port}`,
    "the pool to follow the new address",
  );
});
