/**
 * The dashboard's login session on a real router's admin port on loopback: the cookie holds a
 * session, never the token; it opens the dashboard's read-only routes and nothing else; forged,
 * tampered, foreign and expired sessions are refused; `Secure` follows TLS as a trusted proxy
 * reports it. (The browser test in dashboard.test.ts checks the same cookie in Chromium's jar.)
 */
import assert from "node:assert/strict";
import { get } from "node:http";
import { test, type TestContext } from "node:test";
import { performance } from "node:perf_hooks";
import { createRouterDashboard } from "../../src/router/dashboard/router-dashboard.js";
import type { Router } from "../../src/router/router.js";
import { startRouter } from "../helpers/router.js";

const TOKEN = "dashboard-session-token-7f3a";
const TWELVE_HOURS_MS = 12 * 3600 * 1000;

/** A router with the dashboard mounted as `tasklb router` mounts it, on a clock the test can move on. */
async function routerWithDashboard(t: TestContext, extraArgs: string[] = [], trustForwarded = false) {
  const clock = { skewMs: 0, now: () => performance.now() + clock.skewMs };
  const ref: { router?: Router } = {};
  const dashboard = createRouterDashboard(
    { token: TOKEN, trustForwarded },
    { servers: () => ref.router!.snapshot(), clock },
  );
  t.after(() => dashboard.close());
  const handle = await startRouter(t, ["--token", TOKEN, ...extraArgs], { adminRoutes: [dashboard.route] });
  ref.router = handle.router;
  return { adminUrl: handle.adminUrl, clock };
}

async function login(adminUrl: string, headers: Record<string, string> = {}): Promise<string> {
  const res = await fetch(`${adminUrl}/dashboard?token=${TOKEN}`, { redirect: "manual", headers });
  assert.equal(res.status, 303);
  return res.headers.get("set-cookie")!;
}

/** Status and content type of GET /v1/events (the stream is closed once the headers are in). */
function events(adminUrl: string, cookie: string): Promise<{ status: number; type: string }> {
  return new Promise((resolve, reject) => {
    const req = get(`${adminUrl}/v1/events`, { headers: { cookie, accept: "text/event-stream" } }, (res) => {
      resolve({ status: res.statusCode ?? 0, type: String(res.headers["content-type"]) });
      req.destroy();
    });
    req.on("error", (err: NodeJS.ErrnoException) => {
      if (err.code !== "ECONNRESET") reject(err);
    });
  });
}

void test("the dashboard cookie holds a session, not the token, and opens only the dashboard's read-only routes", async (t) => {
  const { adminUrl } = await routerWithDashboard(t);
  // Without --trust-forwarded the header proves nothing: no Secure.
  const setCookie = await login(adminUrl, { "x-forwarded-proto": "https" });
  assert.match(
    setCookie,
    /^tasklb_admin=v1\.\d+\.[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=43200$/,
  );
  for (const leak of [TOKEN, encodeURIComponent(TOKEN), Buffer.from(TOKEN).toString("base64url")]) {
    assert.ok(!setCookie.includes(leak), `the cookie does not carry the token (${leak})`);
  }
  const cookie = setCookie.split(";")[0]!;

  const page = await fetch(`${adminUrl}/dashboard`, { headers: { cookie } });
  assert.equal(page.status, 200);
  assert.doesNotMatch(await page.text(), /<form/, "the page itself, not the login form");
  const history = await fetch(`${adminUrl}/v1/history`, { headers: { cookie } });
  assert.equal(history.status, 200);
  assert.ok("points" in ((await history.json()) as object));
  assert.deepEqual(await events(adminUrl, cookie), { status: 200, type: "text/event-stream; charset=utf-8" });

  // Never the admin API: reading the servers, or registering one.
  const servers = await fetch(`${adminUrl}/v1/servers`, { headers: { cookie } });
  assert.equal(servers.status, 401);
  assert.equal(servers.headers.get("x-tasklb-error"), "UNAUTHORIZED");
  const register = await fetch(`${adminUrl}/v1/register`, {
    method: "POST",
    headers: { cookie, "content-type": "application/json" },
    body: JSON.stringify({ dataUrl: "http://127.0.0.1:1" }),
  });
  assert.equal(register.status, 401);
  assert.equal(
    (await fetch(`${adminUrl}/v1/servers`, { headers: { authorization: `Bearer ${TOKEN}` } })).status,
    200,
  );
});

void test("forged, tampered, foreign and expired dashboard sessions are refused", async (t) => {
  const a = await routerWithDashboard(t);
  const b = await routerWithDashboard(t);
  const cookie = (await login(a.adminUrl)).split(";")[0]!;
  const status = async (c: string, path = "/v1/history") =>
    (await fetch(`${a.adminUrl}${path}`, { headers: { cookie: c } })).status;
  assert.equal(await status(cookie), 200);

  const [, expiry, mac] = /^tasklb_admin=v1\.(\d+)\.(.+)$/.exec(cookie)!;
  for (const forged of [
    `tasklb_admin=${TOKEN}`, // what the cookie used to be
    `tasklb_admin=v1.${Number(expiry) + 1000}.${mac}`,
    `tasklb_admin=v1.${expiry}.${"A".repeat(43)}`,
    "tasklb_admin=v1.1.2",
    (await login(b.adminUrl)).split(";")[0]!, // another router's (or a restarted router's) session
  ]) {
    assert.equal(await status(forged), 401, forged);
    assert.equal((await events(a.adminUrl, forged)).status, 401, forged);
  }

  a.clock.skewMs = TWELVE_HOURS_MS + 1000;
  assert.equal(await status(cookie), 401, "expired after 12 h");
  const page = await fetch(`${a.adminUrl}/dashboard`, { headers: { cookie } });
  assert.equal(page.status, 401);
  assert.match(await page.text(), /<form/, "an expired session gets the login form");
  assert.equal(await status((await login(a.adminUrl)).split(";")[0]!), 200, "a new login works");
});

void test("behind a trusted proxy that reports https the session cookie is Secure", async (t) => {
  const { adminUrl } = await routerWithDashboard(t, ["--trust-forwarded", "true"], true);
  assert.match(await login(adminUrl, { "x-forwarded-proto": "https" }), /; Secure$/);
  assert.doesNotMatch(await login(adminUrl, { "x-forwarded-proto": "http" }), /Secure/);
  assert.doesNotMatch(await login(adminUrl), /Secure/);
});
