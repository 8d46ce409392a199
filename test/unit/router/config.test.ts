/** Router configuration: defaults, sources, server specs, pools from a file, and clear errors. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { ConfigError } from "../../../src/shared/errors.js";
import { ALGORITHMS, loadRouterConfig, ROUTER_OPTIONS } from "../../../src/router/config.js";
import { BALANCER_NAMES } from "../../../src/router/balancers/index.js";

const files = (m: Record<string, string>) => (p: string) => {
  const v = m[p];
  if (v === undefined) throw new Error(`ENOENT: ${p}`);
  return v;
};

void test("defaults", () => {
  const c = loadRouterConfig([], {});
  assert.deepEqual(c.listen, { host: "0.0.0.0", port: 8000 });
  assert.deepEqual(c.admin, { host: "0.0.0.0", port: 9900 });
  assert.equal(c.algorithm, "adaptive");
  assert.equal(c.mode, "proxy");
  assert.equal(c.pollIntervalMs, 100);
  assert.equal(c.sidecarControlPort, 9901);
  assert.equal(c.token, undefined);
  assert.equal(c.pools.length, 1);
  assert.equal(c.pools[0]!.name, "default");
  assert.ok(Object.isFrozen(c));
});

void test("the flag names are exactly the contract's", () => {
  assert.deepEqual(
    ROUTER_OPTIONS.map((o) => o.flag),
    [
      "listen",
      "admin",
      "server",
      "dns",
      "dns-interval-ms",
      "sidecar-control-port",
      "token",
      "token-file",
      "algorithm",
      "mode",
      "poll-interval-ms",
      "poll-timeout-ms",
      "max-misses",
      "ease-in-ms",
      "retries",
      "upstream-timeout-ms",
      "upstream-keepalive-ms",
      "headers-timeout-ms",
      "max-header-size",
      "trust-forwarded",
      "drain-grace-ms",
      "registration-ttl-ms",
      "max-registrations",
      "log-level",
    ],
  );
  assert.deepEqual(
    [...ALGORITHMS].sort(),
    [...BALANCER_NAMES].sort(),
    "every registered balancer can be chosen",
  );
});

void test("servers: DATA_URL or DATA_URL=CONTROL_URL; the control URL defaults to --sidecar-control-port", () => {
  const c = loadRouterConfig(
    [
      "--server",
      "http://10.0.0.1:8080,http://10.0.0.2:8080=http://10.0.0.2:7000/",
      "--sidecar-control-port",
      "9999",
    ],
    {},
  );
  assert.deepEqual(c.pools[0]!.servers, [
    { dataUrl: "http://10.0.0.1:8080", controlUrl: "http://10.0.0.1:9999" },
    { dataUrl: "http://10.0.0.2:8080", controlUrl: "http://10.0.0.2:7000" },
  ]);
});

void test("flags beat TASKLB_* env, which beats the config file", () => {
  const read = files({ "/c.json": JSON.stringify({ retries: 5, pollIntervalMs: 250, mode: "redirect" }) });
  const c = loadRouterConfig(
    ["--config", "/c.json", "--retries", "1"],
    { TASKLB_POLL_INTERVAL_MS: "300" },
    read,
  );
  assert.equal(c.retries, 1);
  assert.equal(c.pollIntervalMs, 300);
  assert.equal(c.mode, "redirect");
});

void test("--max-registrations: 1024 by default, from TASKLB_MAX_REGISTRATIONS or the flag, 0 allowed", () => {
  assert.equal(loadRouterConfig([], {}).maxRegistrations, 1024);
  assert.equal(loadRouterConfig([], { TASKLB_MAX_REGISTRATIONS: "64" }).maxRegistrations, 64);
  assert.equal(
    loadRouterConfig(["--max-registrations", "0"], { TASKLB_MAX_REGISTRATIONS: "64" }).maxRegistrations,
    0,
  );
  assert.throws(
    () => loadRouterConfig(["--max-registrations", "-1"], {}),
    /--max-registrations must be at least 0/,
  );
  assert.throws(() => loadRouterConfig(["--max-registrations", "many"], {}), /--max-registrations/);
  assert.throws(() => loadRouterConfig(["--max-registrations", "1000000"], {}), /--max-registrations/);
});

void test("--token-file is read and trimmed; giving both is an error", () => {
  const read = files({ "/t": "s3cret\n" });
  assert.equal(loadRouterConfig(["--token-file", "/t"], {}, read).token, "s3cret");
  assert.throws(() => loadRouterConfig(["--token", "a", "--token-file", "/t"], {}, read), ConfigError);
  assert.throws(() => loadRouterConfig(["--token-file", "/missing"], {}, read), /cannot read --token-file/);
});

void test("pools from the config file", () => {
  const read = files({
    "/c.json": JSON.stringify({
      algorithm: "least-request",
      server: ["http://d:1"],
      pools: [
        { name: "api", algorithm: "task-seconds", servers: ["http://a:1"], match: { pathPrefix: "/api/" } },
        { name: "admin", dns: ["admin.svc:8080"], match: { host: "Admin.Example.com" } },
      ],
    }),
  });
  const c = loadRouterConfig(["--config", "/c.json"], {}, read);
  assert.deepEqual(
    c.pools.map((p) => [p.name, p.algorithm, p.servers.length, p.dns.length, p.match]),
    [
      ["default", "least-request", 1, 0, undefined],
      ["api", "task-seconds", 1, 0, { pathPrefix: "/api/" }],
      ["admin", "adaptive", 0, 1, { host: "admin.example.com" }],
    ],
  );
  assert.deepEqual(c.pools[2]!.dns[0], { name: "admin.svc", port: 8080 });
});

void test("bad configuration names the option and why", () => {
  const bad: [string[], RegExp, Record<string, string>?][] = [
    [["--algorithm", "fastest"], /--algorithm must be one of/],
    [["--mode", "teleport"], /--mode must be one of proxy, redirect/],
    [["--poll-interval-ms", "0"], /--poll-interval-ms must be at least 10/],
    [["--retries", "-1"], /--retries must be at least 0/],
    [["--listen", "nope"], /--listen must be HOST:PORT/],
    [["--server", "ftp://x:1"], /--server .* must use http: or https:/],
    [["--server", "http://x:1/path"], /must be an origin/],
    [["--server", "http://u:p@x:1"], /credentials/],
    [["--server", "not a url"], /absolute URL/],
    [["--dns", "svc"], /--dns "svc" must be NAME:PORT/],
    [["--dns", "svc:99999"], /must be NAME:PORT/],
    [["--bogus", "1"], /unknown flag --bogus/],
    [
      ["--config", "/c.json"],
      /"pools"\[0\]\.match needs host and\/or pathPrefix/,
      { "/c.json": '{"pools":[{"name":"x","match":{}}]}' },
    ],
    [
      ["--config", "/c.json"],
      /is used twice/,
      { "/c.json": '{"pools":[{"name":"default","match":{"host":"a"}}]}' },
    ],
    [
      ["--config", "/c.json"],
      /unknown key "weight"/,
      { "/c.json": '{"pools":[{"name":"x","weight":1,"match":{"host":"a"}}]}' },
    ],
    [
      ["--config", "/c.json"],
      /pathPrefix must start with \//,
      { "/c.json": '{"pools":[{"name":"x","match":{"pathPrefix":"api"}}]}' },
    ],
    [
      ["--config", "/c.json"],
      /algorithm must be one of/,
      { "/c.json": '{"pools":[{"name":"x","algorithm":"no","match":{"host":"a"}}]}' },
    ],
    [["--config", "/c.json"], /must be a list of pools/, { "/c.json": '{"pools":{}}' }],
    [["--config", "/c.json"], /not valid JSON/, { "/c.json": "{" }],
  ];
  for (const [argv, re, fs] of bad) {
    assert.throws(
      () => loadRouterConfig(argv, {}, files(fs ?? {})),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError, String(err));
        assert.match(err.message, re, argv.join(" "));
        return true;
      },
    );
  }
});
