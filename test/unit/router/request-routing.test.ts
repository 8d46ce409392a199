/** Pool selection, request-target normalisation, the retry rules' method list, and registration bodies. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { loadRouterConfig } from "../../../src/router/config.js";
import { IDEMPOTENT_METHODS, originForm, selectPool } from "../../../src/router/request-handler.js";
import { parseRegistration, Registry } from "../../../src/router/membership/registration.js";

void test("pool selection: first matching pool by host and path prefix, else the default pool", () => {
  const c = loadRouterConfig(["--config", "/c"], {}, () =>
    JSON.stringify({
      pools: [
        { name: "api", match: { pathPrefix: "/api/" } },
        { name: "shop", match: { host: "shop.example", pathPrefix: "/cart" } },
        { name: "shophost", match: { host: "shop.example" } },
      ],
    }),
  );
  const pools = [...c.pools.slice(1), c.pools[0]!].map((config) => ({ config }));
  const pick = (host: string | undefined, path: string) => selectPool(pools, host, path)?.config.name;
  assert.equal(pick("any", "/api/x"), "api");
  assert.equal(pick("SHOP.example:8443", "/cart/1"), "shop");
  assert.equal(pick("shop.example", "/other"), "shophost");
  assert.equal(pick("elsewhere.example", "/"), "default");
  assert.equal(pick(undefined, "/"), "default");
});

void test("request targets: origin-form kept, absolute-form reduced to its path, anything else refused", () => {
  assert.deepEqual(originForm("/a?b=1"), { path: "/a?b=1", authority: undefined });
  assert.deepEqual(originForm("http://evil.example:81/x?y"), { path: "/x?y", authority: "evil.example:81" });
  assert.deepEqual(originForm("https://evil.example"), { path: "/", authority: "evil.example" });
  assert.equal(originForm("ftp://x/y"), undefined);
  assert.equal(originForm("*"), undefined);
  assert.equal(originForm("evil.example:443"), undefined);
});

void test("only RFC 9110 idempotent methods are retried after the request may have reached an app", () => {
  for (const m of ["GET", "HEAD", "OPTIONS", "PUT", "DELETE"]) assert.ok(IDEMPOTENT_METHODS.has(m), m);
  for (const m of ["POST", "PATCH", "CONNECT"]) assert.ok(!IDEMPOTENT_METHODS.has(m), m);
});

void test("registration bodies: http(s) origins only, known pools, no extra fields", () => {
  const pools = new Set(["default", "api"]);
  assert.deepEqual(parseRegistration({ dataUrl: "http://10.0.0.7:8080" }, 9901, pools), {
    pool: "default",
    address: { dataUrl: "http://10.0.0.7:8080", controlUrl: "http://10.0.0.7:9901" },
  });
  assert.deepEqual(
    parseRegistration({ dataUrl: "https://a:1/", controlUrl: "http://a:2", pool: "api" }, 9901, pools),
    { pool: "api", address: { dataUrl: "https://a:1", controlUrl: "http://a:2" } },
  );
  for (const body of [
    null,
    [],
    "x",
    {},
    { dataUrl: 5 },
    { dataUrl: "javascript:alert(1)" },
    { dataUrl: "ftp://a:1" },
    { dataUrl: "http://a:1/p" },
    { dataUrl: "http://a:1?q" },
    { dataUrl: "http://a:1", controlUrl: "file:///x" },
    { dataUrl: "http://a:1", pool: "nope" },
    { dataUrl: "http://a:1", admin: true },
    { dataUrl: `http://${"a".repeat(510)}:1` },
    { dataUrl: "http://a:1", controlUrl: `http://${"a".repeat(510)}:1` },
  ]) {
    assert.ok("error" in parseRegistration(body, 9901, pools), JSON.stringify(body));
  }
});

void test("registrations expire without renewal and renewals keep them", () => {
  const added: string[] = [];
  const removed: string[] = [];
  const r = new Registry(1000, {
    onAdd: (g) => added.push(g.address.dataUrl),
    onRemove: (_p, u) => removed.push(u),
  });
  const reg = { pool: "default", address: { dataUrl: "http://a:1", controlUrl: "http://a:2" } };
  assert.equal(r.register(reg, 0), "added");
  assert.equal(r.register(reg, 800), "renewed", "a renewal is not new");
  r.expire(1700);
  assert.deepEqual(removed, [], "renewed at 800: good until 1800");
  r.expire(1800);
  assert.deepEqual(removed, ["http://a:1"]);
  assert.deepEqual(added, ["http://a:1"]);
  assert.equal(r.unregister("default", "http://a:1"), false);
});

void test("the registry holds at most maxEntries servers; renewals always succeed; expired ones make room", () => {
  const added: string[] = [];
  const r = new Registry(1000, { onAdd: (g) => added.push(g.address.dataUrl), onRemove: () => undefined }, 2);
  const reg = (n: number, pool = "default") => ({
    pool,
    address: { dataUrl: `http://a:${n}`, controlUrl: `http://a:${n + 1000}` },
  });
  assert.equal(r.register(reg(1), 0), "added");
  assert.equal(r.register(reg(2), 100), "added");
  assert.equal(r.register(reg(3), 200), "full");
  assert.equal(r.register(reg(3, "api"), 200), "full", "the bound is over all pools");
  assert.equal(r.size, 2);
  assert.deepEqual(added, ["http://a:1", "http://a:2"], "a refused server is not added to a pool");
  assert.equal(r.register(reg(1), 900), "renewed", "a renewal at the cap succeeds");
  assert.equal(r.register(reg(2), 900), "renewed");
  // a:1 renewed at 900 (good until 1900); a:2 renewed at 900 too; at 1950 both are stale.
  assert.equal(r.register(reg(3), 1950), "added", "stale entries are expired to make room");
  assert.equal(r.size, 1);
  assert.equal(r.unregister("default", "http://a:3"), true);
  assert.equal(r.register(reg(4), 2000), "added", "a deregistration frees a place");

  const closed = new Registry(
    1000,
    { onAdd: () => assert.fail("nothing is added"), onRemove: () => undefined },
    0,
  );
  assert.equal(closed.register(reg(1), 0), "full");
});
