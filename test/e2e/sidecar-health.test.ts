/**
 * `--app-health-path`: an app that accepts connections but says it is unhealthy keeps the sidecar
 * out of rotation (readiness and the load report), and comes back once it answers 2xx.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { listenLoopback } from "../helpers/loopback.js";
import { runSidecarCli, send, spawnSidecar, waitFor } from "../helpers/sidecar.js";

interface Readiness {
  readonly ready: boolean;
  readonly appReachable: boolean;
}

describe("tasklb sidecar --app-health-path", () => {
  it("an app whose /healthz answers 503 is not ready; once it answers 200 it is", async (t) => {
    let health = 503;
    const probes: (string | undefined)[] = [];
    const app = createServer((req, res) => {
      if (req.url === "/healthz") {
        probes.push(req.headers["user-agent"]);
        res.writeHead(health, { "content-type": "text/plain" });
        res.end(health === 200 ? "ok" : "not yet");
        return;
      }
      res.writeHead(200, { "content-type": "text/plain" });
      res.end("app says hi");
    });
    const appUrl = `http://127.0.0.1:${await listenLoopback(t, app)}`;

    const sc = await spawnSidecar(t, [
      "--app",
      appUrl,
      "--listen",
      "127.0.0.1:0",
      "--control",
      "127.0.0.1:0",
      "--app-health-path",
      "/healthz",
    ]);

    // The first check's result is logged with its reason, so a wrong path is visible at once.
    await waitFor("the first health check to be logged", () => sc.stderr().includes('"app unreachable"'));
    assert.match(sc.stderr(), /"msg":"app unreachable".*"check":"GET \/healthz","reason":"HTTP 503"/);
    assert.equal(probes[0], "tasklb-sidecar-probe");

    const notReady = await send(sc.controlUrl, { path: "/readyz" });
    assert.equal(notReady.status, 503);
    assert.deepEqual(
      { ...notReady.json<Readiness>() },
      { ready: false, state: "serving", appReachable: false },
    );
    const report = await send(sc.controlUrl, { path: "/v1/load" });
    assert.equal(report.status, 200);
    assert.equal(report.json<Readiness>().appReachable, false);
    // Readiness only takes it out of rotation; whoever still sends traffic gets the app's answer.
    assert.equal((await send(sc.url, { path: "/" })).text, "app says hi");

    health = 200;
    const ready = await waitFor("readiness once /healthz answers 200", async () => {
      const r = await send(sc.controlUrl, { path: "/readyz" });
      return r.status === 200 ? r : undefined;
    });
    assert.deepEqual({ ...ready.json<Readiness>() }, { ready: true, state: "serving", appReachable: true });
    assert.equal((await send(sc.controlUrl, { path: "/v1/load" })).json<Readiness>().appReachable, true);
    assert.match(sc.stderr(), /"msg":"app reachable".*"reason":"HTTP 200"/);
  });

  it("a path that is not a plain request path exits with code 2 and says so", async () => {
    const r = await runSidecarCli(["--app", "http://127.0.0.1:3000", "--app-health-path", "healthz"]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /--app-health-path must start with "\/" \(got "healthz"\)/);
    assert.ok(!r.stderr.includes("    at "), "a message, not a stack trace");
  });
});
