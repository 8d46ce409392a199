import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { test, type TestContext } from "node:test";
import { createTokenCheck } from "../../../../src/shared/auth.js";
import { FakeClock } from "../../../../src/shared/clock.js";
import { createDashboardFeed, type DashboardFeed } from "../../../../src/router/dashboard/feed.js";
import { createDashboardRoutes, type DashboardRoutes } from "../../../../src/router/dashboard/routes.js";
import { openSse, server, snapshot } from "./fixtures.js";

interface Harness {
  base: string;
  clock: FakeClock;
  feed: DashboardFeed;
  routes: DashboardRoutes;
  calls: () => number;
}

async function start(
  t: TestContext,
  opts: { token?: string; maxClients?: number; heartbeatMs?: number; trustForwarded?: boolean } = {},
): Promise<Harness> {
  const clock = new FakeClock();
  let calls = 0;
  let requests = 0;
  const feed = createDashboardFeed({
    clock,
    getSnapshot: () => {
      calls++;
      clock.advance(1000);
      requests += 10;
      return snapshot([
        server("http://127.0.0.1:1", { requestsTotal: requests }),
        server("http://127.0.0.1:2"),
      ]);
    },
  });
  const routes = createDashboardRoutes({
    feed,
    tokenCheck: createTokenCheck(opts.token),
    clock,
    ...(opts.trustForwarded !== undefined && { trustForwarded: opts.trustForwarded }),
    ...(opts.maxClients !== undefined && { maxClients: opts.maxClients }),
    ...(opts.heartbeatMs !== undefined && { heartbeatMs: opts.heartbeatMs }),
  });
  const srv: Server = createServer((req, res) => {
    if (!routes(req, res)) {
      res.writeHead(404, { "content-type": "text/plain" });
      res.end("not the dashboard's");
    }
  });
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
  t.after(async () => {
    routes.close();
    srv.closeAllConnections();
    await new Promise((resolve) => srv.close(resolve));
  });
  const { port } = srv.address() as AddressInfo;
  return { base: `http://127.0.0.1:${port}`, clock, feed, routes, calls: () => calls };
}

void test("without a token the page, its assets (uPlot from node_modules) and the history are served", async (t) => {
  const h = await start(t);
  h.feed.sample();
  const page = await fetch(`${h.base}/dashboard`);
  assert.equal(page.status, 200);
  assert.match(page.headers.get("content-type")!, /text\/html/);
  assert.match(page.headers.get("content-security-policy")!, /script-src 'self'/);
  const html = await page.text();
  for (const m of html.matchAll(/(?:href|src)="(dashboard\/assets\/[^"]+)"/g)) {
    const r = await fetch(`${h.base}/${m[1]}`);
    assert.equal(r.status, 200, m[1]);
    const body = await r.text();
    assert.ok(body.length > 500, `${m[1]} is ${body.length} bytes`);
    assert.match(r.headers.get("content-type")!, m[1]!.endsWith(".js") ? /javascript/ : /text\/css/);
    const again = await fetch(`${h.base}/${m[1]}`, { headers: { "if-none-match": r.headers.get("etag")! } });
    assert.equal(again.status, 304);
  }
  assert.equal((await fetch(`${h.base}/dashboard/assets/nope.js`)).status, 404);
  const hist = await fetch(`${h.base}/v1/history`);
  assert.equal(hist.status, 200);
  const body = (await hist.json()) as { points: unknown[]; latest: { pools: { servers: unknown[] }[] } };
  assert.equal(body.points.length, 1);
  assert.equal(body.latest.pools[0]!.servers.length, 2);
});

void test("other paths are left to the admin server; wrong methods get 405", async (t) => {
  const h = await start(t);
  const other = await fetch(`${h.base}/v1/servers`);
  assert.equal(other.status, 404);
  assert.equal(await other.text(), "not the dashboard's");
  const post = await fetch(`${h.base}/v1/history`, { method: "POST" });
  assert.equal(post.status, 405);
  assert.equal(post.headers.get("x-tasklb-error"), "METHOD_NOT_ALLOWED");
});

void test("with a token: 401 without it, the header for programs, ?token= once and a cookie for people", async (t) => {
  const h = await start(t, { token: "s3cret" });
  h.feed.sample();
  const denied = await fetch(`${h.base}/v1/history`);
  assert.equal(denied.status, 401);
  assert.equal(((await denied.json()) as { error: { code: string } }).error.code, "UNAUTHORIZED");
  assert.equal((await openSse(h.base)).res.statusCode, 401);
  const login = await fetch(`${h.base}/dashboard`);
  assert.equal(login.status, 401);
  assert.match(await login.text(), /<form[^>]+method="post"/);
  assert.equal(
    (await fetch(`${h.base}/v1/history`, { headers: { authorization: "Bearer wrong" } })).status,
    401,
  );
  assert.equal(
    (await fetch(`${h.base}/v1/history`, { headers: { authorization: "Bearer s3cret" } })).status,
    200,
  );
  assert.equal((await fetch(`${h.base}/dashboard`, { headers: { "x-tasklb-token": "s3cret" } })).status, 200);

  const wrong = await fetch(`${h.base}/dashboard?token=nope`, { redirect: "manual" });
  assert.equal(wrong.status, 401);
  assert.equal(wrong.headers.get("set-cookie"), null);
  assert.match(await wrong.text(), /not right/);

  const once = await fetch(`${h.base}/dashboard?token=s3cret`, { redirect: "manual" });
  assert.equal(once.status, 303);
  assert.equal(once.headers.get("location"), "dashboard");
  const cookie = once.headers.get("set-cookie")!;
  assert.match(cookie, SESSION_COOKIE);
  assert.ok(!cookie.includes("s3cret"), "the cookie does not carry the token");
  const jar = cookie.split(";")[0]!;
  assert.equal((await fetch(`${h.base}/dashboard`, { headers: { cookie: jar } })).status, 200);
  assert.equal((await fetch(`${h.base}/v1/history`, { headers: { cookie: jar } })).status, 200);
  const { res, reader } = await openSse(h.base, { cookie: jar });
  assert.equal(res.statusCode, 200);
  reader!.close();
});

/** `tasklb_admin=v1.<expiry>.<HMAC-SHA256, base64url>` with the attributes a session needs. */
const SESSION_COOKIE =
  /^tasklb_admin=v1\.\d+\.[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=43200$/;

void test("a session cookie is refused when forged, tampered with, made by another router, or expired", async (t) => {
  const h = await start(t, { token: "s3cret" });
  const other = await start(t, { token: "s3cret" });
  const login = async (base: string) =>
    (await fetch(`${base}/dashboard?token=s3cret`, { redirect: "manual" })).headers
      .get("set-cookie")!
      .split(";")[0]!;
  const jar = await login(h.base);
  const history = async (cookie: string) =>
    (await fetch(`${h.base}/v1/history`, { headers: { cookie } })).status;
  assert.equal(await history(jar), 200);

  const [, expiry, mac] = /^tasklb_admin=v1\.(\d+)\.(.+)$/.exec(jar)!;
  const flipped = (mac!.startsWith("A") ? "B" : "A") + mac!.slice(1);
  for (const forged of [
    "tasklb_admin=s3cret", // the raw-token cookie of earlier versions
    "tasklb_admin=forged",
    `tasklb_admin=v1.${Number(expiry) + 3_600_000}.${mac}`, // a later expiry under the old MAC
    `tasklb_admin=v1.${expiry}.${flipped}`,
    `tasklb_admin=v2.${expiry}.${mac}`,
    `tasklb_admin=v1.${expiry}.${mac}x`,
    await login(other.base), // valid, but another router's key
  ]) {
    assert.equal(await history(forged), 401, forged);
  }
  assert.equal(
    (await fetch(`${h.base}/dashboard`, { headers: { cookie: "tasklb_admin=s3cret" } })).status,
    401,
    "an old cookie gets the login form",
  );

  h.clock.advance(12 * 3600 * 1000 - 10);
  assert.equal(await history(jar), 200, "still valid just before 12 h");
  h.clock.advance(10);
  assert.equal(await history(jar), 401, "expired after 12 h");
  assert.equal((await openSse(h.base, { cookie: jar })).res.statusCode, 401);
  assert.equal(await history(await login(h.base)), 200, "logging in again starts a new session");
});

void test("the session cookie is Secure only over TLS or behind a trusted proxy that says https", async (t) => {
  const cookieFor = async (base: string, headers: Record<string, string>) =>
    (await fetch(`${base}/dashboard?token=s3cret`, { redirect: "manual", headers })).headers.get(
      "set-cookie",
    )!;
  const trusting = await start(t, { token: "s3cret", trustForwarded: true });
  assert.match(await cookieFor(trusting.base, { "x-forwarded-proto": "https" }), /; Secure$/);
  assert.match(await cookieFor(trusting.base, { "x-forwarded-proto": "HTTPS, http" }), /; Secure$/);
  assert.doesNotMatch(await cookieFor(trusting.base, { "x-forwarded-proto": "http" }), /Secure/);
  assert.doesNotMatch(await cookieFor(trusting.base, {}), /Secure/);
  const plain = await start(t, { token: "s3cret" });
  assert.doesNotMatch(
    await cookieFor(plain.base, { "x-forwarded-proto": "https" }),
    /Secure/,
    "anyone can send the header: it counts only when the router trusts forwarded headers",
  );
});

void test("the login form sets the cookie on the right token and sends the wrong one back", async (t) => {
  const h = await start(t, { token: "s3cret" });
  const form = (token: string) =>
    fetch(`${h.base}/dashboard/login`, {
      method: "POST",
      redirect: "manual",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ token }).toString(),
    });
  const ok = await form("s3cret");
  assert.equal(ok.status, 303);
  assert.equal(ok.headers.get("location"), "../dashboard");
  assert.match(ok.headers.get("set-cookie")!, SESSION_COOKIE);
  assert.ok(!ok.headers.get("set-cookie")!.includes("s3cret"));
  const bad = await form("guess");
  assert.equal(bad.status, 303);
  assert.equal(bad.headers.get("location"), "../dashboard?login=failed");
  assert.equal(bad.headers.get("set-cookie"), null);
});

void test("event stream: history on connect, then one snapshot per sample to every client", async (t) => {
  const h = await start(t);
  h.feed.sample();
  h.feed.sample();
  const streams = await Promise.all([openSse(h.base), openSse(h.base), openSse(h.base)]);
  const readers = streams.map((c) => c.reader!);
  t.after(() => readers.forEach((r) => r.close()));
  assert.equal(streams[0].res.headers["content-type"], "text/event-stream; charset=utf-8");
  for (const r of readers) await r.until(() => r.events.length >= 2);
  const [first, latest] = readers[0]!.events;
  assert.equal(first!.event, "history");
  assert.equal((JSON.parse(first!.data) as { points: unknown[] }).points.length, 2);
  assert.equal(latest!.event, "snapshot");
  assert.equal(h.routes.clients, 3);

  const callsBefore = h.calls();
  h.feed.sample();
  h.feed.sample();
  for (const r of readers) await r.until(() => r.events.length >= 4);
  // Three viewers, two samples: the router was asked twice, not six times.
  assert.equal(h.calls() - callsBefore, 2);
  const frame = JSON.parse(readers[2]!.events[3]!.data) as {
    pools: { servers: { requestRate: number }[] }[];
  };
  assert.ok(frame.pools[0]!.servers[0]!.requestRate > 0);

  readers[0]!.close();
  const deadline = Date.now() + 5000;
  const clients = (): number => h.routes.clients;
  while (clients() !== 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  assert.equal(h.routes.clients, 2, "a closed tab is forgotten");
});

void test("event streams are capped, send heartbeats, and end when the routes close", async (t) => {
  const h = await start(t, { maxClients: 2, heartbeatMs: 30 });
  const a = await openSse(h.base);
  const b = await openSse(h.base);
  const c = await openSse(h.base);
  assert.equal(c.res.statusCode, 503);
  assert.equal(c.res.headers["retry-after"], "5");
  await a.reader!.until(() => a.reader!.comments >= 2);
  h.routes.close();
  await a.reader!.until(() => a.reader!.ended).catch(() => undefined);
  await b.reader!.until(() => b.reader!.ended).catch(() => undefined);
  assert.ok(a.reader!.ended && b.reader!.ended);
  assert.equal(h.routes.clients, 0);
});
