/**
 * Referral and redirect modes, the header rules of proxy mode, and the "never an open proxy" rule,
 * against real sidecars on loopback.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { request } from "undici";
import type { Sidecar } from "../../src/sidecar/sidecar.js";
import {
  getJson,
  startCluster,
  startNamedServer,
  startRouter,
  startSidecar,
  waitInRotation,
  servers,
} from "../helpers/router.js";

const APPS = ["a", "b", "c"].map((name) => ({ name, workers: 4, meanMs: 5, sigma: 0.2 }));

void test("/v1/resolve refers only to healthy servers and needs the token", async (t) => {
  const cluster = await startCluster(t, APPS, ["--token", "tk"]);
  const { adminUrl } = await startRouter(t, [
    "--token",
    "tk",
    "--server",
    cluster.map((c) => c.serverSpec).join(","),
  ]);
  await waitInRotation(
    adminUrl,
    cluster.map((c) => c.dataUrl),
    "tk",
  );
  assert.equal((await getJson(`${adminUrl}/v1/resolve`)).status, 401);
  const seen = new Set<string>();
  for (let i = 0; i < 30; i++) {
    const r = await getJson<{ server: string; pool: string; algorithm: string }>(
      `${adminUrl}/v1/resolve`,
      "tk",
    );
    assert.equal(r.status, 200);
    assert.equal(r.body.pool, "default");
    assert.equal(r.body.algorithm, "adaptive");
    seen.add(r.body.server);
  }
  assert.ok([...seen].every((s) => cluster.some((c) => c.dataUrl === s)));

  // One server goes away: it is never referred to once the router noticed.
  await cluster[0]!.sidecar.close();
  await waitInRotation(adminUrl, [cluster[1]!.dataUrl, cluster[2]!.dataUrl], "tk");
  for (let i = 0; i < 40; i++) {
    const r = await getJson<{ server: string }>(`${adminUrl}/v1/resolve`, "tk");
    assert.equal(r.status, 200);
    assert.notEqual(r.body.server, cluster[0]!.dataUrl);
  }
  // A referred server really answers.
  const r = await getJson<{ server: string }>(`${adminUrl}/v1/resolve`, "tk");
  const direct = await request(`${r.body.server}/work`);
  assert.equal(direct.statusCode, 200);
  await direct.body.dump();

  // None left: 503 NO_SERVER with the proxy-made header.
  await Promise.all([cluster[1]!.sidecar.close(), cluster[2]!.sidecar.close()]);
  await waitInRotation(adminUrl, [], "tk");
  const none = await getJson<{ error: { code: string } }>(`${adminUrl}/v1/resolve`, "tk");
  assert.equal(none.status, 503);
  assert.equal(none.headers["x-tasklb-error"], "NO_SERVER");
  assert.equal(none.body.error.code, "NO_SERVER");
});

void test("redirect mode answers 307 to the chosen server's data URL with the original path", async (t) => {
  const cluster = await startCluster(t, APPS);
  const { url, adminUrl } = await startRouter(t, [
    "--mode",
    "redirect",
    "--server",
    cluster.map((c) => c.serverSpec).join(","),
  ]);
  await waitInRotation(
    adminUrl,
    cluster.map((c) => c.dataUrl),
  );
  const res = await request(`${url}/work?x=1`);
  assert.equal(res.statusCode, 307);
  await res.body.dump();
  const location = String(res.headers.location);
  assert.ok(
    cluster.some((c) => location === `${c.dataUrl}/work?x=1`),
    location,
  );
  const followed = await request(location);
  assert.equal(followed.statusCode, 200);
  await followed.body.dump();
});

void test("no server in the pool: 503 NO_SERVER with a JSON body and the proxy-made header", async (t) => {
  const { url } = await startRouter(t, []);
  const res = await request(`${url}/x`);
  assert.equal(res.statusCode, 503);
  assert.equal(res.headers["x-tasklb-error"], "NO_SERVER");
  assert.deepEqual(((await res.body.json()) as { error: { code: string } }).error.code, "NO_SERVER");
});

void test("proxy mode adds the router hop to Via, sets X-Forwarded-*, keeps or starts trace context", async (t) => {
  const seen: Record<string, string | string[] | undefined>[] = [];
  const app = await startNamedServer(t, "hdr", (req) => seen.push(req.headers));
  const sc = await startSidecar(t, app.url);
  const { url, adminUrl } = await startRouter(t, [
    "--server",
    `${sc.addresses!.dataUrl}=${sc.addresses!.controlUrl}`,
  ]);
  await waitInRotation(adminUrl, [sc.addresses!.dataUrl]);
  const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  const res = await request(`${url}/h`, {
    headers: { traceparent: tp, tracestate: "k=v", host: "example.test" },
  });
  assert.equal(res.statusCode, 200);
  await res.body.dump();
  assert.match(String(res.headers.via), /tasklb-router-/);
  assert.equal(res.headers["x-tasklb-load"], undefined, "the piggybacked load report is stripped");
  const h = seen[0]!;
  assert.match(String(h.via), /tasklb-router-[0-9a-f]+.*tasklb-/);
  assert.equal(h.host, "example.test", "Host passes both hops unchanged");
  assert.equal(h["x-forwarded-host"], undefined, "no hop trusts forwarded headers by default");
  assert.match(String(h["x-forwarded-for"]), /127\.0\.0\.1/);
  assert.match(String(h.traceparent), /^00-0af7651916cd43dd8448eb211c80319c-/);
  assert.equal(h.tracestate, "k=v");

  const res2 = await request(`${url}/h`, { headers: { traceparent: "garbage" } });
  await res2.body.dump();
  assert.match(String(seen[1]!.traceparent), /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
  assert.ok(!String(seen[1]!.traceparent).includes("garbage"));
});

function rawRequest(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, "127.0.0.1", () => s.write(text));
    let out = "";
    s.setEncoding("utf8");
    s.on("data", (c: string) => (out += c));
    s.on("end", () => resolve(out));
    s.on("error", reject);
    s.setTimeout(5000, () => s.destroy(new Error("timeout")));
  });
}

void test("never an open proxy: absolute-URI targets, foreign Hosts and CONNECT reach only pool members", async (t) => {
  const evil = await startNamedServer(t, "evil");
  const app = await startNamedServer(t, "ours");
  const sc = await startSidecar(t, app.url);
  const { url, adminUrl } = await startRouter(t, [
    "--server",
    `${sc.addresses!.dataUrl}=${sc.addresses!.controlUrl}`,
  ]);
  await waitInRotation(adminUrl, [sc.addresses!.dataUrl]);
  const port = Number(new URL(url).port);
  const evilHost = new URL(evil.url).host;

  const abs = await rawRequest(
    port,
    `GET ${evil.url}/steal HTTP/1.1\r\nHost: ${evilHost}\r\nConnection: close\r\n\r\n`,
  );
  assert.match(abs, /^HTTP\/1\.1 200/);
  assert.match(abs, /x-demo-server: ours/);
  const host = await rawRequest(
    port,
    `GET /steal HTTP/1.1\r\nHost: ${evilHost}\r\nConnection: close\r\n\r\n`,
  );
  assert.match(host, /x-demo-server: ours/);
  const conn = await rawRequest(port, `CONNECT ${evilHost} HTTP/1.1\r\nHost: ${evilHost}\r\n\r\n`);
  assert.doesNotMatch(conn, /^HTTP\/1\.1 200/);
  const weird = await rawRequest(port, `GET ftp://x/y HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
  assert.match(weird, /^HTTP\/1\.1 400/);
  assert.equal(evil.hits, 0, "the foreign server was never contacted");
  assert.equal(app.hits, 2);
  // And nothing new joined the pool.
  assert.deepEqual(
    (await servers(adminUrl)).map((s) => s.dataUrl),
    [sc.addresses!.dataUrl],
  );
});

void test("pools from a config file: requests are routed by path prefix and Host, the rest to the default pool", async (t) => {
  const apps = await Promise.all(["api", "web", "shop"].map((n) => startNamedServer(t, n)));
  const [sApi, sWeb, sShop] = (await Promise.all(apps.map((a) => startSidecar(t, a.url)))) as [
    Sidecar,
    Sidecar,
    Sidecar,
  ];
  const spec = (s: Sidecar) => `${s.addresses!.dataUrl}=${s.addresses!.controlUrl}`;
  const dir = await mkdtemp(join(tmpdir(), "tasklb-router-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, "router.json");
  await writeFile(
    file,
    JSON.stringify({
      pools: [
        { name: "api", algorithm: "least-request", servers: [spec(sApi)], match: { pathPrefix: "/api/" } },
        { name: "shop", servers: [spec(sShop)], match: { host: "shop.example" } },
      ],
    }),
  );
  const { url, adminUrl } = await startRouter(t, ["--config", file, "--server", spec(sWeb)]);
  await waitInRotation(
    adminUrl,
    [sApi, sWeb, sShop].map((s) => s.addresses!.dataUrl),
  );
  const who = async (path: string, host?: string) => {
    const res = await request(`${url}${path}`, { headers: host ? { host } : {} });
    await res.body.dump();
    return res.headers["x-demo-server"];
  };
  assert.equal(await who("/api/users"), "api");
  assert.equal(await who("/apiary"), "web");
  assert.equal(await who("/", "shop.example:8000"), "shop");
  assert.equal(await who("/", "other.example"), "web");
  const resolved = await getJson<{ server: string; pool: string; algorithm: string }>(
    `${adminUrl}/v1/resolve?pool=api`,
  );
  assert.equal(resolved.body.server, sApi.addresses!.dataUrl);
  assert.equal(resolved.body.pool, "api");
  assert.equal(resolved.body.algorithm, "least-request");
  const snap = await getJson<{ pools: { name: string }[] }>(`${adminUrl}/v1/servers`);
  assert.deepEqual(snap.body.pools.map((p) => p.name).sort(), ["api", "default", "shop"]);
});

void test("WebSocket upgrades pass through the router and the sidecar", async (t) => {
  const { WebSocketServer, WebSocket } = await import("ws");
  const { createServer } = await import("node:http");
  const server = createServer();
  const wss = new WebSocketServer({ server });
  wss.on("connection", (ws) => ws.on("message", (m: Buffer) => ws.send(`echo:${m.toString()}`)));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(
    () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close();
        server.close(() => resolve());
      }),
  );
  const port = (server.address() as import("node:net").AddressInfo).port;
  const sc = await startSidecar(t, `http://127.0.0.1:${port}`);
  const { url, adminUrl } = await startRouter(t, [
    "--server",
    `${sc.addresses!.dataUrl}=${sc.addresses!.controlUrl}`,
  ]);
  await waitInRotation(adminUrl, [sc.addresses!.dataUrl]);
  const ws = new WebSocket(url.replace("http:", "ws:") + "/socket");
  t.after(() => ws.terminate());
  const reply = await new Promise<string>((resolve, reject) => {
    ws.once("open", () => ws.send("hi"));
    ws.once("message", (m: Buffer) => resolve(m.toString()));
    ws.once("error", reject);
  });
  assert.equal(reply, "echo:hi");
});

void test("the router asks its sidecars for piggybacked reports with the shared token", async (t) => {
  const seen: Record<string, string | string[] | undefined>[] = [];
  const app = await startNamedServer(t, "pig", (req) => seen.push(req.headers));
  const sc = await startSidecar(t, app.url, ["--token", "tk"]);
  const { url, adminUrl } = await startRouter(t, [
    "--token",
    "tk",
    "--server",
    `${sc.addresses!.dataUrl}=${sc.addresses!.controlUrl}`,
  ]);
  await waitInRotation(adminUrl, [sc.addresses!.dataUrl], "tk");
  for (let i = 0; i < 5; i++) {
    const res = await request(`${url}/p`, { headers: { "x-tasklb-load": "forged by a client" } });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers["x-tasklb-load"], undefined, "the client never sees the report");
    await res.body.dump();
  }
  const [s] = await servers(adminUrl, "tk");
  assert.notEqual(s!.lastPiggybackAgeMs, null, "reports arrived on the responses");
  assert.ok(seen.length === 5 && seen.every((h) => h["x-tasklb-load"] === undefined), "the app sees no ask");
});
