/**
 * Limits of self-registration against a real router and real sidecars on loopback: the registry
 * holds at most `--max-registrations` servers (a new one beyond that gets 507 REGISTRY_FULL, a
 * renewal still succeeds, a freed place is taken by the next registrant), `0` turns registration
 * off, and registration URLs are bounded in length.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { request } from "undici";
import {
  servers,
  startNamedServer,
  startRouter,
  startSidecar,
  waitFor,
  waitInRotation,
} from "../helpers/router.js";

const TOKEN = "tok";

function poster(adminUrl: string) {
  return async (body: unknown, method: "POST" | "DELETE" = "POST") => {
    const res = await request(`${adminUrl}/v1/register`, {
      method,
      body: JSON.stringify(body),
      headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}` },
    });
    const text = await res.body.text();
    return {
      status: res.statusCode,
      code: res.headers["x-tasklb-error"],
      retryAfter: res.headers["retry-after"],
      json: JSON.parse(text) as { new?: boolean; error?: { code: string; message: string } },
    };
  };
}

void test("a full registry refuses new servers with 507 REGISTRY_FULL, renews the ones it has, and fills a freed place", async (t) => {
  const app = await startNamedServer(t, "app");
  const [a, b] = await Promise.all([
    startSidecar(t, app.url, ["--token", TOKEN]),
    startSidecar(t, app.url, ["--token", TOKEN]),
  ]);
  const { adminUrl } = await startRouter(t, [
    "--token",
    TOKEN,
    "--max-registrations",
    "2",
    "--registration-ttl-ms",
    "60000",
  ]);
  const post = poster(adminUrl);
  const entry = (s: typeof a) => ({ dataUrl: s.addresses!.dataUrl, controlUrl: s.addresses!.controlUrl });

  assert.equal((await post(entry(a))).json.new, true);
  assert.equal((await post(entry(b))).json.new, true);
  await waitInRotation(adminUrl, [a.addresses!.dataUrl, b.addresses!.dataUrl], TOKEN);

  const refused = await post({ dataUrl: "http://127.0.0.1:1", controlUrl: "http://127.0.0.1:2" });
  assert.equal(refused.status, 507);
  assert.equal(refused.code, "REGISTRY_FULL");
  assert.equal(refused.json.error?.code, "REGISTRY_FULL");
  assert.match(refused.json.error?.message ?? "", /maximum of 2 .*--max-registrations/);
  assert.equal(refused.retryAfter, "60", "entries not renewed are gone within one TTL");

  const renewal = await post(entry(a));
  assert.equal(renewal.status, 200, "a renewal at the cap succeeds");
  assert.equal(renewal.json.new, false);

  // A real sidecar registering itself is refused at every renewal while the registry is full …
  const c = await startSidecar(t, app.url, [
    "--token",
    TOKEN,
    "--router",
    adminUrl,
    "--register-interval-ms",
    "150",
  ]);
  await new Promise((r) => setTimeout(r, 600));
  assert.deepEqual(
    (await servers(adminUrl, TOKEN)).map((s) => s.dataUrl).sort(),
    [a.addresses!.dataUrl, b.addresses!.dataUrl].sort(),
    "nothing beyond the cap got in",
  );

  // … and takes the place a deregistration frees, at its next renewal.
  assert.equal((await post(entry(b), "DELETE")).status, 200);
  await waitInRotation(adminUrl, [a.addresses!.dataUrl, c.addresses!.dataUrl], TOKEN);
  const again = await post(entry(b));
  assert.equal(again.status, 507, "and the registry is full again");
});

void test("--max-registrations 0 takes no registrations; over-long URLs are refused with 400", async (t) => {
  const closed = await startRouter(t, ["--token", TOKEN, "--max-registrations", "0"]);
  const r = await poster(closed.adminUrl)({ dataUrl: "http://127.0.0.1:1" });
  assert.equal(r.status, 507);
  assert.equal(r.code, "REGISTRY_FULL");
  assert.match(r.json.error?.message ?? "", /takes no registrations/);

  const open = await startRouter(t, ["--token", TOKEN]);
  const post = poster(open.adminUrl);
  const long = `http://${"a".repeat(600)}.example:8080`;
  for (const body of [{ dataUrl: long }, { dataUrl: "http://127.0.0.1:1", controlUrl: long }]) {
    const bad = await post(body);
    assert.equal(bad.status, 400);
    assert.equal(bad.code, "BAD_REQUEST");
    assert.match(bad.json.error?.message ?? "", /longer than 512 characters/);
  }
  await waitFor(async () => (await servers(open.adminUrl, TOKEN)).length === 0, "an empty pool", 2000);
});
