/**
 * The real `tasklb sidecar` process: configuration errors, --help, registration with routers, and
 * the SIGTERM drain.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createServer, request as httpRequest } from "node:http";
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { SIDECAR_OPTIONS } from "../../src/sidecar/config.js";
import { startTestApp } from "../helpers/app.js";
import { runSidecarCli, send, spawnSidecar, waitFor } from "../helpers/sidecar.js";

const PORTS = ["--listen", "127.0.0.1:0", "--control", "127.0.0.1:0"];

describe("tasklb sidecar (CLI)", () => {
  it("bad configuration exits with code 2 and says what is wrong", async () => {
    const cases: [string[], RegExp, NodeJS.ProcessEnv?][] = [
      [[], /--app is required/],
      [["--app", "ftp://127.0.0.1:21"], /--app must use http:/],
      [["--app", "http://127.0.0.1:3000", "--listen", "nonsense"], /--listen must be HOST:PORT/],
      [["--app", "http://127.0.0.1:3000", "--max-concurrent", "many"], /--max-concurrent must be a number/],
      [["--app", "http://127.0.0.1:3000", "--bogus"], /unknown flag --bogus/],
      [
        [],
        /TASKLB_UPSTREAM_TIMEOUT_MS must be at least 1/,
        { TASKLB_APP: "http://127.0.0.1:1", TASKLB_UPSTREAM_TIMEOUT_MS: "0" },
      ],
    ];
    await Promise.all(
      cases.map(async ([argv, re, env]) => {
        const r = await runSidecarCli(argv, env);
        assert.equal(r.code, 2, `${argv.join(" ")}: ${r.stderr}`);
        assert.match(r.stderr, re);
        assert.ok(!r.stderr.includes("    at "), "a message, not a stack trace");
      }),
    );
  });

  it("--help lists every flag with its environment variable and exits 0", async () => {
    const r = await runSidecarCli(["--help"]);
    assert.equal(r.code, 0);
    for (const s of SIDECAR_OPTIONS) assert.ok(r.stdout.includes(`--${s.flag} `), s.flag);
    assert.ok(r.stdout.includes("TASKLB_MAX_CONCURRENT"));
  });

  it("a port in use is a clear startup error", async (t) => {
    const app = await startTestApp();
    t.after(() => app.close());
    const r = await runSidecarCli([
      "--app",
      app.url,
      "--listen",
      `127.0.0.1:${app.port}`,
      "--control",
      "127.0.0.1:0",
    ]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /cannot listen on 127\.0\.0\.1:\d+/);
  });

  it("SIGTERM drains: readiness fails, the report says draining, the in-flight call completes, exit 0", async (t) => {
    const app = await startTestApp();
    t.after(() => app.close());
    // Configuration from the environment, as in a container.
    const sc = await spawnSidecar(t, PORTS, { TASKLB_APP: app.url, TASKLB_DRAIN_GRACE_MS: "20000" });
    await waitFor("ready", async () => (await send(sc.controlUrl, { path: "/readyz" })).status === 200);

    const arrived = app.nextRequest("/slow");
    const inFlight = send(sc.url, { path: "/slow?ms=1500" });
    await arrived;
    sc.proc.kill("SIGTERM");

    const ready = await waitFor("readiness to fail", async () => {
      const r = await send(sc.controlUrl, { path: "/readyz" });
      return r.status === 503 ? r : undefined;
    });
    assert.equal(ready.json<{ state: string }>().state, "draining");
    const report = (await send(sc.controlUrl, { path: "/v1/load" })).json<{
      state: string;
      live: { inFlight: number };
    }>();
    assert.equal(report.state, "draining");
    assert.equal(report.live.inFlight, 1);
    await assert.rejects(
      send(sc.url, { path: "/echo", timeoutMs: 2_000 }),
      "no new connections while draining",
    );

    const r = await inFlight;
    assert.equal(r.status, 200, "the in-flight call completed");
    const exit = await sc.exited;
    assert.deepEqual(exit, { code: 0, signal: null });
    assert.match(sc.stderr(), /"msg":"sidecar stopped"/);
  });

  it("drain grace expires: calls still running are cut and the process still exits 0", async (t) => {
    const app = await startTestApp();
    t.after(() => app.close());
    const sc = await spawnSidecar(t, ["--app", app.url, ...PORTS, "--drain-grace-ms", "300"]);
    const arrived = app.nextRequest("/hang");
    const hung = send(sc.url, { path: "/hang" }).then(
      () => "answered",
      () => "cut",
    );
    await arrived;
    const aborted = once(app.events, "aborted");
    sc.proc.kill("SIGTERM");
    assert.deepEqual(await sc.exited, { code: 0, signal: null });
    assert.equal(await hung, "cut");
    await aborted;
    assert.match(sc.stderr(), /drain grace expired/);
  });

  it("registers with --router (with the token), re-registers on the interval, deregisters on drain", async (t) => {
    const app = await startTestApp();
    t.after(() => app.close());
    const calls: {
      method: string;
      auth: string | undefined;
      body: { dataUrl: string; controlUrl: string };
    }[] = [];
    const router = createServer((req, res) => {
      let body = "";
      req.setEncoding("utf8");
      req.on("data", (c: string) => (body += c));
      req.on("end", () => {
        if (req.url === "/v1/register") {
          calls.push({ method: req.method!, auth: req.headers.authorization, body: JSON.parse(body) });
        }
        res.writeHead(req.url === "/v1/register" ? 200 : 404).end();
      });
    });
    router.listen(0, "127.0.0.1");
    await once(router, "listening");
    t.after(() => router.close());
    const routerUrl = `http://127.0.0.1:${(router.address() as AddressInfo).port}`;

    const sc = await spawnSidecar(t, [
      "--app",
      app.url,
      ...PORTS,
      "--router",
      `${routerUrl},http://127.0.0.1:1`,
      "--token",
      "tok",
      "--register-interval-ms",
      "200",
      "--advertise-host",
      "127.0.0.1",
    ]);
    await waitFor("two registrations", () => calls.filter((c) => c.method === "POST").length >= 2);
    const first = calls[0]!;
    assert.equal(first.auth, "Bearer tok");
    assert.deepEqual(first.body, { dataUrl: sc.url, controlUrl: sc.controlUrl });
    sc.proc.kill("SIGTERM");
    assert.equal((await sc.exited).code, 0, "an unreachable router is never fatal");
    assert.equal(calls.at(-1)!.method, "DELETE");
    assert.deepEqual(calls.at(-1)!.body, first.body);
    assert.match(sc.stderr(), /registration failed.*127\.0\.0\.1:1/);
  });

  it("keep-alive on both sides: one client connection, reused app connections", async (t) => {
    const app = await startTestApp();
    t.after(() => app.close());
    const sc = await spawnSidecar(t, ["--app", app.url, ...PORTS]);
    const { Agent } = await import("node:http");
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    t.after(() => agent.destroy());
    const ports = new Set<number>();
    for (let i = 0; i < 20; i++) {
      await new Promise<void>((resolve, reject) => {
        const req = httpRequest(new URL("/echo", sc.url), { agent }, (res) => {
          ports.add(res.socket.localPort!);
          res.resume();
          res.on("end", resolve);
        });
        req.on("error", reject);
        req.end();
      });
    }
    assert.equal(ports.size, 1, "all 20 calls used one client connection");
    const upstream = new Set(app.requests.map((r) => r.remotePort));
    assert.ok(upstream.size <= 2, `the sidecar reused its connections to the app (${upstream.size} used)`);
  });
});
