import { describe, it, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { createHook } from "node:async_hooks";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { createAppProbe, PROBE_USER_AGENT, type AppProbeOptions } from "../../../src/sidecar/app-probe.js";
import { listenLoopback } from "../../helpers/loopback.js";
import { waitFor } from "../../helpers/sidecar.js";

type Mode = { status: number; body?: string } | "hang" | "endless";

interface HealthApp {
  readonly port: number;
  mode: Mode;
  readonly requests: IncomingMessage[];
  /** Connections currently open on the app's side. */
  readonly open: Set<Socket>;
}

/** A real app on loopback port 0 whose answer to every request is `mode`. */
async function startHealthApp(t: TestContext, mode: Mode): Promise<HealthApp> {
  const app: HealthApp = { port: 0, mode, requests: [], open: new Set() };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    app.requests.push(req);
    const m = app.mode;
    if (m === "hang") return;
    if (m === "endless") {
      res.writeHead(200, { "content-type": "application/octet-stream" });
      const chunk = Buffer.alloc(4096, 120);
      const pump = () => {
        while (!res.destroyed && res.write(chunk));
      };
      res.on("drain", pump);
      res.on("error", () => {});
      pump();
      return;
    }
    const headers: Record<string, string> = m.status === 302 ? { location: "/elsewhere" } : {};
    res.writeHead(m.status, headers);
    res.end(m.body ?? "ok");
  });
  server.on("connection", (s: Socket) => {
    app.open.add(s);
    s.once("close", () => app.open.delete(s));
  });
  return Object.assign(app, { port: await listenLoopback(t, server) });
}

interface Changes {
  readonly list: [boolean, string][];
}

function probeFor(
  port: number,
  extra: Partial<AppProbeOptions> = {},
): { probe: ReturnType<typeof createAppProbe>; changes: Changes } {
  const changes: Changes = { list: [] };
  const probe = createAppProbe({
    host: "127.0.0.1",
    port,
    healthPath: "/healthz",
    intervalMs: 50,
    timeoutMs: 1_000,
    onChange: (reachable, reason) => changes.list.push([reachable, reason]),
    ...extra,
  });
  return { probe, changes };
}

/** A port nothing listens on: bound once, then released. */
async function closedPort(): Promise<number> {
  const s = createServer();
  s.listen(0, "127.0.0.1");
  await once(s, "listening");
  const port = (s.address() as AddressInfo).port;
  s.close();
  await once(s, "close");
  return port;
}

/**
 * Records every timer and TCP handle created from now until `stop()` (on both sides of a loopback
 * connection), and forgets each as it is released; `released()` waits until none is left.
 */
function trackHandles(t: TestContext): { stop(): void; released(): Promise<unknown> } {
  const live = new Map<number, string>();
  let recording = true;
  const hook = createHook({
    init(id, type) {
      if (recording && (type === "Timeout" || type === "TCPWRAP")) live.set(id, type);
    },
    destroy(id) {
      live.delete(id);
    },
  }).enable();
  t.after(() => hook.disable());
  return {
    stop: () => {
      recording = false;
    },
    released: () =>
      waitFor("the check's timers and sockets to be released", () => live.size === 0, 5_000).catch(
        (err: Error) => {
          throw new Error(`${err.message}; left: ${[...live.values()].join(", ")}`);
        },
      ),
  };
}

describe("app probe with a health path", () => {
  it("2xx is reachable; the request is a plain GET with the probe's headers", async (t) => {
    const app = await startHealthApp(t, { status: 200 });
    // A timeout far beyond the test's wait, so a deadline timer left behind would be seen.
    const { probe, changes } = probeFor(app.port, { timeoutMs: 60_000 });
    t.after(() => probe.close());
    assert.equal(probe.reachable, false, "unknown until the first check");
    const handles = trackHandles(t);
    assert.equal(await probe.check(), true);
    handles.stop();
    assert.equal(probe.reachable, true);
    assert.deepEqual(changes.list, [[true, "HTTP 200"]]);
    const req = app.requests[0]!;
    assert.equal(req.method, "GET");
    assert.equal(req.url, "/healthz");
    assert.equal(req.headers.host, `127.0.0.1:${app.port}`);
    assert.equal(req.headers["user-agent"], PROBE_USER_AGENT);
    assert.equal(req.headers.connection, "close");
    await waitFor("the probe's connection to close", () => app.open.size === 0, 5_000);
    await handles.released();
  });

  it("500 is not reachable, and the first result is reported with its reason", async (t) => {
    const app = await startHealthApp(t, { status: 500, body: "broken" });
    const { probe, changes } = probeFor(app.port);
    t.after(() => probe.close());
    assert.equal(await probe.check(), false);
    assert.equal(probe.reachable, false);
    assert.deepEqual(changes.list, [[false, "HTTP 500"]]);
    assert.equal(await probe.check(), false);
    assert.equal(changes.list.length, 1, "an unchanged result is not reported again");
  });

  it("a redirect (302) is reachable", async (t) => {
    const app = await startHealthApp(t, { status: 302 });
    const { probe, changes } = probeFor(app.port);
    t.after(() => probe.close());
    assert.equal(await probe.check(), true);
    assert.deepEqual(changes.list, [[true, "HTTP 302"]]);
    assert.equal(app.requests.length, 1, "the redirect is not followed");
  });

  it("connection refused is not reachable", async (t) => {
    const { probe, changes } = probeFor(await closedPort());
    t.after(() => probe.close());
    assert.equal(await probe.check(), false);
    assert.deepEqual(changes.list, [[false, "connect error ECONNREFUSED"]]);
  });

  it("an app that hangs past the timeout is not reachable, and no socket or timer is left", async (t) => {
    const app = await startHealthApp(t, "hang");
    const { probe, changes } = probeFor(app.port, { timeoutMs: 300 });
    t.after(() => probe.close());

    const handles = trackHandles(t);
    const result = await probe.check();
    handles.stop();
    assert.equal(result, false);
    assert.deepEqual(changes.list, [[false, "timeout after 300 ms"]]);
    assert.equal(app.requests.length, 1, "the request reached the app");
    await waitFor("the app to see the probe's connection close", () => app.open.size === 0, 5_000);
    await handles.released();
  });

  it("a huge body is cut after a few KiB, and the status still decides", async (t) => {
    const app = await startHealthApp(t, "endless");
    // A timeout far beyond the test's wait: only the body limit can end this check in time.
    const { probe, changes } = probeFor(app.port, { timeoutMs: 120_000 });
    t.after(() => probe.close());
    const result = await Promise.race([
      probe.check(),
      new Promise<string>((resolve) => setTimeout(resolve, 15_000, "still reading").unref()),
    ]);
    assert.equal(result, true);
    assert.deepEqual(changes.list, [[true, "HTTP 200"]]);
    await waitFor("the app to see the connection dropped", () => app.open.size === 0, 5_000);
  });

  it("flips back and forth as the app recovers and breaks, on its own timer", async (t) => {
    const app = await startHealthApp(t, { status: 503 });
    const { probe, changes } = probeFor(app.port);
    t.after(() => probe.close());
    probe.start();
    await waitFor("the first result", () => changes.list.length === 1, 5_000);
    assert.equal(probe.reachable, false);

    app.mode = { status: 200 };
    await waitFor("recovery", () => probe.reachable, 5_000);
    app.mode = "hang";
    await waitFor("the hang to be noticed", () => !probe.reachable, 5_000);
    app.mode = { status: 204 };
    await waitFor("recovery again", () => probe.reachable, 5_000);
    probe.close();
    assert.deepEqual(changes.list, [
      [false, "HTTP 503"],
      [true, "HTTP 200"],
      [false, "timeout after 1000 ms"],
      [true, "HTTP 204"],
    ]);
  });

  it("close() cuts a check in flight without changing the result", async (t) => {
    const app = await startHealthApp(t, { status: 200 });
    const { probe, changes } = probeFor(app.port, { timeoutMs: 60_000 });
    assert.equal(await probe.check(), true);
    app.mode = "hang";
    const pending = probe.check();
    await waitFor("the request to reach the app", () => app.requests.length === 2, 5_000);
    probe.close();
    assert.equal(await pending, true, "still the last real result");
    assert.deepEqual(changes.list, [[true, "HTTP 200"]]);
    await waitFor("the app to see the connection close", () => app.open.size === 0, 5_000);
  });

  it("never keeps the process alive (a hanging check in a process with nothing else to do)", async (t) => {
    const app = await startHealthApp(t, "hang");
    const probeUrl = new URL("../../../src/sidecar/app-probe.js", import.meta.url).href;
    // The child holds itself up (IPC and a timer) until the check is under way, then lets go.
    const script =
      `const { createAppProbe } = await import(${JSON.stringify(probeUrl)});` +
      `const hold = setInterval(() => {}, 1000);` +
      `process.once("message", () => { clearInterval(hold); process.disconnect(); });` +
      `createAppProbe({ host: "127.0.0.1", port: ${app.port}, healthPath: "/healthz",` +
      ` intervalMs: 1000, timeoutMs: 120000 }).start();`;
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], {
      stdio: ["ignore", "ignore", "inherit", "ipc"],
    });
    const exited = once(child, "exit") as Promise<[number | null, NodeJS.Signals | null]>;
    t.after(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    });
    await waitFor("the probe's request to reach the app", () => app.requests.length > 0, 15_000);
    child.send("let go");
    const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
    const [code, signal] = await exited;
    clearTimeout(timer);
    assert.deepEqual({ code, signal }, { code: 0, signal: null }, "exited by itself");
  });
});

describe("app probe without a health path (TCP connect)", () => {
  it("a port that accepts connections is reachable, whatever the app would answer", async (t) => {
    const app = await startHealthApp(t, { status: 500 });
    const { probe, changes } = probeFor(app.port, { healthPath: "" });
    t.after(() => probe.close());
    assert.equal(await probe.check(), true);
    assert.deepEqual(changes.list, [[true, "connected"]]);
    assert.equal(app.requests.length, 0, "no HTTP request is made");
  });

  it("connection refused is not reachable", async (t) => {
    const { probe, changes } = probeFor(await closedPort(), { healthPath: undefined });
    t.after(() => probe.close());
    assert.equal(await probe.check(), false);
    assert.deepEqual(changes.list, [[false, "connect error ECONNREFUSED"]]);
  });
});
