import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { hostname } from "node:os";
import { ConfigError } from "../../../src/shared/errors.js";
import { envName, formatHelp } from "../../../src/shared/config.js";
import { loadSidecarConfig, SIDECAR_OPTIONS } from "../../../src/sidecar/config.js";

const APP = ["--app", "http://127.0.0.1:3000"];
const noFile = (path: string): string => {
  throw new Error(`ENOENT: no such file ${path}`);
};

function bad(argv: string[], env: Record<string, string> = {}, readFile = noFile): string {
  try {
    loadSidecarConfig(argv, env, readFile);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err.message;
  }
  assert.fail(`expected ${JSON.stringify(argv)} to be rejected`);
}

describe("sidecar config", () => {
  it("declares exactly the flags of the contract", () => {
    assert.deepEqual(
      SIDECAR_OPTIONS.map((s) => s.flag),
      [
        "app",
        "app-health-path",
        "listen",
        "control",
        "token",
        "token-file",
        "router",
        "advertise-host",
        "trust-forwarded",
        "max-concurrent",
        "headers-timeout-ms",
        "request-timeout-ms",
        "max-header-size",
        "upstream-timeout-ms",
        "upstream-keepalive-ms",
        "keepalive-timeout-ms",
        "drain-grace-ms",
        "max-tracked-calls",
        "call-max-age-ms",
        "piggyback",
        "register-interval-ms",
        "log-level",
      ],
    );
    const help = formatHelp("sidecar", "", SIDECAR_OPTIONS);
    for (const s of SIDECAR_OPTIONS) {
      assert.ok(help.includes(`--${s.flag} `), s.flag);
      assert.ok(help.includes(envName(s)), envName(s));
    }
  });

  it("defaults", () => {
    const c = loadSidecarConfig(APP, {}, noFile);
    assert.equal(c.app.origin, "http://127.0.0.1:3000");
    assert.deepEqual({ ...c.listen }, { host: "0.0.0.0", port: 8080 });
    assert.deepEqual({ ...c.control }, { host: "0.0.0.0", port: 9901 });
    assert.equal(c.token, undefined);
    assert.deepEqual(c.router, []);
    assert.equal(c.advertiseHost, hostname(), "listening on all addresses advertises the host name");
    assert.equal(c.trustForwarded, false);
    assert.equal(c.maxConcurrent, 0);
    assert.equal(c.piggyback, true);
    assert.equal(c.appHealthPath, undefined, "readiness is a TCP connect unless a path is given");
    assert.ok(c.upstreamKeepaliveMs < 5_000, "below Node's default keep-alive, the usual app");
    assert.ok(Object.isFrozen(c));
  });

  it("flags beat environment beat config file", () => {
    const file = JSON.stringify({ maxConcurrent: 3, drainGraceMs: 7, piggyback: false });
    const c = loadSidecarConfig(
      [...APP, "--config", "/etc/tasklb.json", "--max-concurrent", "5"],
      { TASKLB_MAX_CONCURRENT: "4", TASKLB_DRAIN_GRACE_MS: "8" },
      () => file,
    );
    assert.equal(c.maxConcurrent, 5);
    assert.equal(c.drainGraceMs, 8);
    assert.equal(c.piggyback, false);
    const e = loadSidecarConfig(
      [],
      { TASKLB_APP: "http://10.0.0.1:80", TASKLB_LISTEN: "127.0.0.1:0" },
      noFile,
    );
    assert.equal(e.app.origin, "http://10.0.0.1");
    assert.equal(e.advertiseHost, "127.0.0.1", "a specific listen host is advertised as is");
  });

  it("token from --token-file, trailing newline removed", () => {
    const c = loadSidecarConfig([...APP, "--token-file", "/run/secret"], {}, (p) => {
      assert.equal(p, "/run/secret");
      return "s3cret\n";
    });
    assert.equal(c.token, "s3cret");
    assert.equal(loadSidecarConfig([...APP, "--token", "abc"], {}, noFile).token, "abc");
  });

  it("routers and advertise host", () => {
    const c = loadSidecarConfig(
      [...APP, "--router", "http://r1:9900,http://r2:9900/", "--advertise-host", "10.1.2.3"],
      {},
      noFile,
    );
    assert.deepEqual(
      c.router.map((u) => u.href),
      ["http://r1:9900/", "http://r2:9900/"],
    );
    assert.equal(c.advertiseHost, "10.1.2.3");
  });

  it("--app-health-path: a path for the readiness check, from a flag, the environment or a file", () => {
    const path = (argv: string[], env: Record<string, string> = {}, file?: string) =>
      loadSidecarConfig([...APP, ...argv], env, () => file ?? "{}").appHealthPath;
    assert.equal(path(["--app-health-path", "/healthz"]), "/healthz");
    assert.equal(path(["--app-health-path=/health/ready?full=1"]), "/health/ready?full=1");
    assert.equal(path([], { TASKLB_APP_HEALTH_PATH: "/ready" }), "/ready");
    assert.equal(path(["--config", "/c.json"], {}, '{"appHealthPath":"/up"}'), "/up");
    assert.equal(path(["--app-health-path", ""]), undefined, "empty: TCP connect");
    assert.equal(path([], { TASKLB_APP_HEALTH_PATH: "" }), undefined);
    assert.equal(path(["--app-health-path", "/%20x"]), "/%20x", "percent-encoded is fine");
    assert.equal(path(["--app-health-path", "/" + "a".repeat(1023)])?.length, 1024);
  });

  it("--app-health-path: anything that is not a plain request path is rejected", () => {
    const cases: [string[], RegExp, Record<string, string>?][] = [
      [["--app-health-path", "healthz"], /--app-health-path must start with "\/" \(got "healthz"\)/],
      [["--app-health-path", "http://app/healthz"], /--app-health-path must start with "\/"/],
      [["--app-health-path", "/health z"], /--app-health-path must not contain spaces, control/],
      [["--app-health-path", "/health\tz"], /must not contain spaces, control/],
      [["--app-health-path", "/health\r\nX-Evil: 1"], /must not contain spaces, control/],
      [["--app-health-path", "/x\u0000"], /must not contain spaces, control/],
      [["--app-health-path", "/gesundheit-prüfen"], /non-ASCII characters \(percent-encode them\)/],
      [["--app-health-path", "/healthz#top"], /must not contain a fragment/],
      [["--app-health-path", "/" + "a".repeat(1024)], /--app-health-path must be at most 1024 characters/],
      [[], /--app-health-path must start with "\/"/, { TASKLB_APP_HEALTH_PATH: "ready" }],
    ];
    for (const [argv, re, env] of cases) {
      const msg = bad([...APP, ...argv], env);
      assert.match(msg, re, `${JSON.stringify(argv)} → ${msg}`);
      assert.ok(msg.length < 300, "a long value is shortened in the message");
    }
  });

  it("rejects bad configuration with a message that names the problem", () => {
    const cases: [string[], RegExp, Record<string, string>?][] = [
      [[], /--app is required.*TASKLB_APP/],
      [["--app", "not a url"], /--app must be an absolute URL/],
      [["--app", "ftp://x:21"], /--app must use http:/],
      [["--app", "https://x:443"], /--app must use http:/],
      [["--app", "http://x:3000/base"], /--app must be an origin without a path/],
      [[...APP, "--listen", "nohost"], /--listen must be HOST:PORT/],
      [[...APP, "--listen", "1.2.3.4:70000"], /--listen has a port above 65535/],
      [[...APP, "--max-concurrent", "-1"], /--max-concurrent must be at least 0/],
      [[...APP, "--max-concurrent", "2.5"], /--max-concurrent must be a whole number/],
      [[...APP, "--piggyback", "maybe"], /--piggyback must be true or false/],
      [[...APP, "--log-level", "loud"], /--log-level must be one of/],
      [[...APP, "--frobnicate", "1"], /unknown flag --frobnicate/],
      [[...APP, "stray"], /unexpected argument "stray"/],
      [[...APP, "--token", "a", "--token-file", "/x"], /either --token or --token-file/],
      [[...APP, "--token-file", "/nope"], /cannot read --token-file \/nope/],
      [[...APP, "--router", "http://ok:1,bad url"], /--router entry "bad url" must be an absolute URL/],
      [
        [...APP, "--headers-timeout-ms", "5000", "--request-timeout-ms", "1000"],
        /must not exceed --request-timeout-ms/,
      ],
      [[...APP, "--listen", "127.0.0.1:9000", "--control", "127.0.0.1:9000"], /must be different ports/],
      [[...APP, "--max-header-size", "10"], /--max-header-size must be at least 1024/],
      [
        [],
        /TASKLB_MAX_TRACKED_CALLS must be at least 1/,
        { TASKLB_APP: "http://a:1", TASKLB_MAX_TRACKED_CALLS: "0" },
      ],
      [[...APP, "--config", "/c.json"], /cannot read config file \/c.json/],
    ];
    for (const [argv, re, env] of cases) {
      const msg = bad(argv, env);
      assert.match(msg, re, `${JSON.stringify(argv)} → ${msg}`);
    }
    assert.match(
      bad([...APP, "--config", "/c.json"], {}, () => "{ nope"),
      /not valid JSON/,
    );
    assert.match(
      bad([...APP, "--config", "/c.json"], {}, () => '{"colour":1}'),
      /unknown key "colour"/,
    );
  });

  it("never prints a secret token in an error", () => {
    const msg = bad([...APP, "--token", "hunter2", "--token-file", "/x"]);
    assert.ok(!msg.includes("hunter2"));
  });
});
