/**
 * An app dies (or is refused) behind a sidecar that stays up: the sidecar answers for it with a
 * proxy-made 502/503 that proves the request never reached an app, and the router retries such
 * answers on the next server (any method, while the request body is untouched) and takes the
 * server out of rotation, without waiting for a poll.
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { connect, type AddressInfo } from "node:net";
import { test, type TestContext } from "node:test";
import { request } from "undici";
import { DEMO_SERVER_HEADER } from "../../src/demo/demo-app.js";
import type { RouterRequestObserver } from "../../src/shared/call-observer.js";
import { LOAD_REPORT_VERSION, type LoadReport } from "../../src/shared/load-report.js";
import { writeProxyError } from "../../src/shared/proxy-response.js";
import { runLoad, servers, startRouter, startSidecar, waitFor, waitInRotation } from "../helpers/router.js";

interface App {
  readonly name: string;
  readonly url: string;
  /** Requests whose headers arrived. */
  seen: number;
  /** Bodies of the requests answered. */
  readonly bodies: string[];
  /** Stops listening (new connections are refused); requests in flight still finish. */
  kill(): Promise<void>;
}

/** An app that answers after `delayMs` with its name; no keep-alive, so killing it loses nothing in flight. */
async function startApp(t: TestContext, name: string, delayMs = 2): Promise<App> {
  const app: App = {
    name,
    url: "",
    seen: 0,
    bodies: [],
    kill: () =>
      new Promise<void>((resolve) => {
        if (!server.listening) return resolve();
        server.close(() => resolve());
      }),
  };
  const server: Server = createServer((req, res) => {
    app.seen++;
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (c: string) => (body += c));
    req.on("end", () => {
      setTimeout(() => {
        app.bodies.push(body);
        res.writeHead(200, { [DEMO_SERVER_HEADER]: name, connection: "close", "content-type": "text/plain" });
        res.end(`${name}:${body}`);
      }, delayMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  (app as { url: string }).url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  t.after(() => {
    server.closeAllConnections();
    return app.kill();
  });
  return app;
}

async function startApps(t: TestContext, names: readonly string[], sidecarArgs: readonly string[][] = []) {
  return Promise.all(
    names.map(async (name, i) => {
      const app = await startApp(t, name, sidecarArgs[i]?.length ? 150 : 2);
      const sidecar = await startSidecar(t, app.url, sidecarArgs[i] ?? []);
      const a = sidecar.addresses!;
      return { app, sidecar, dataUrl: a.dataUrl, spec: `${a.dataUrl}=${a.controlUrl}` };
    }),
  );
}

/** Records the router's failover events (what telemetry counts as failovers). */
function failoverRecorder(): {
  observer: RouterRequestObserver;
  failovers: { server: string; code: string }[];
} {
  const failovers: { server: string; code: string }[] = [];
  return {
    failovers,
    observer: {
      onRequestStart: () => ({
        decision: () => undefined,
        failover: (server, code) => failovers.push({ server, code }),
        end: () => undefined,
      }),
    },
  };
}

/**
 * A slow uploader: sends a POST's headers and the first `early` bytes of its body at once, the rest
 * only once `ready` resolves. Returns the raw response.
 */
async function postLateBody(
  url: string,
  path: string,
  body: string,
  early: number,
  ready: () => Promise<unknown>,
) {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  let response = "";
  socket.setEncoding("latin1");
  socket.on("data", (c: string) => (response += c));
  const closed = new Promise<void>((resolve, reject) => {
    socket.once("close", () => resolve());
    socket.once("error", reject);
  });
  socket.setTimeout(15_000, () => socket.destroy(new Error("no response")));
  socket.write(
    `POST ${path} HTTP/1.1\r\nhost: ${hostname}\r\nconnection: close\r\n` +
      `content-type: text/plain\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n` +
      body.slice(0, early),
  );
  await ready();
  socket.write(body.slice(early));
  await closed;
  return response;
}

const SLOW_POLLS = ["--poll-interval-ms", "60000", "--max-misses", "1000"];

void test("an app dies behind its live sidecar mid-run: no GET or POST fails, and its server leaves rotation", async (t) => {
  const cluster = await startApps(t, ["a", "b", "c"]);
  const { url, adminUrl } = await startRouter(t, [
    "--server",
    cluster.map((c) => c.spec).join(","),
    "--algorithm",
    "round-robin",
    "--ease-in-ms",
    "300",
  ]);
  await waitInRotation(
    adminUrl,
    cluster.map((c) => c.dataUrl),
  );
  const victim = cluster[1]!;
  const gets = runLoad(url, { count: 400, concurrency: 4 });
  const posts = runLoad(url, { count: 200, concurrency: 2, method: "POST" });
  await waitFor(() => victim.app.bodies.length >= 20, "the victim to serve part of the run");
  await victim.app.kill();
  const [g, p] = await Promise.all([gets, posts]);
  assert.equal(g.failures + p.failures, 0, "no request failed at the network level");
  assert.deepEqual([...g.byStatus], [[200, 400]], "every GET answered 200");
  // A POST is retried when the app provably never got it. One the app's dying listener had
  // already accepted (then reset, unanswered) may have reached it: the sidecar says UPSTREAM_ERROR
  // and, POST not being idempotent, the router must not send it again. That window is one
  // connection wide, so at most a couple of POSTs can fall into it.
  const postErrors = [...p.byError].filter(([code]) => code !== "UPSTREAM_ERROR");
  assert.deepEqual(postErrors, [], "no POST that never reached the app failed");
  assert.ok((p.byStatus.get(200) ?? 0) >= 198, `POSTs answered 200: ${JSON.stringify([...p.byStatus])}`);
  assert.equal(victim.sidecar.state, "serving", "the sidecar itself stayed up");

  const out = await waitFor(
    async () => (await servers(adminUrl)).find((s) => s.dataUrl === victim.dataUrl && s.state === "out"),
    "the dead app's server to be out",
  );
  assert.match(out.reason, /cannot reach its app/);
  const before = out.router.requests;
  const after = await runLoad(url, { count: 90, concurrency: 3 });
  assert.deepEqual([...after.byStatus], [[200, 90]]);
  const now = (await servers(adminUrl)).find((s) => s.dataUrl === victim.dataUrl)!;
  assert.equal(now.router.requests, before, "no request is sent to the dead app's server any more");
});

void test("without a poll, the sidecar's 502 UPSTREAM_UNREACHABLE is retried on the next server and takes the server out at once", async (t) => {
  const cluster = await startApps(t, ["a", "b", "c"]);
  const rec = failoverRecorder();
  const { url, adminUrl } = await startRouter(
    t,
    ["--server", cluster.map((c) => c.spec).join(","), "--algorithm", "round-robin", ...SLOW_POLLS],
    { observer: rec.observer },
  );
  await waitInRotation(
    adminUrl,
    cluster.map((c) => c.dataUrl),
  );
  const victim = cluster[0]!;
  await victim.app.kill();

  const methods = ["GET", "POST", "DELETE", "PATCH", "HEAD"] as const;
  for (let i = 0; i < 30; i++) {
    const method = methods[i % methods.length]!;
    const res = await request(`${url}/x${i}`, { method });
    await res.body.dump();
    assert.equal(res.statusCode, 200, `${method} /x${i}`);
    assert.notEqual(res.headers[DEMO_SERVER_HEADER], "a");
  }
  const s = (await servers(adminUrl)).find((x) => x.dataUrl === victim.dataUrl)!;
  assert.equal(s.state, "out");
  assert.match(s.reason, /answered UPSTREAM_UNREACHABLE/);
  assert.equal(s.router.requests, 1, "one request found out, then the server got no more");
  assert.equal(s.router.errors, 1, "that attempt counts as a failure of the server");
  assert.deepEqual(rec.failovers, [{ server: victim.dataUrl, code: "UPSTREAM_UNREACHABLE" }]);
});

void test("a POST refused by a sidecar whose app is dead is retried with its body (a slow uploader)", async (t) => {
  // The client sends the head and part of the body (undici sends a request's head upstream only with
  // its first body byte), and the rest only once the router has moved the request on (the dead
  // app's server is out) or the live app has it: the part already read must be sent again.
  const cluster = await startApps(t, ["dead", "live"]);
  const { url, adminUrl } = await startRouter(t, [
    "--server",
    cluster.map((c) => c.spec).join(","),
    "--algorithm",
    "round-robin",
    ...SLOW_POLLS,
  ]);
  await waitInRotation(
    adminUrl,
    cluster.map((c) => c.dataUrl),
  );
  const [dead, live] = cluster as [(typeof cluster)[0], (typeof cluster)[0]];
  await dead.app.kill();
  const deadOut = async () =>
    (await servers(adminUrl)).some((s) => s.dataUrl === dead.dataUrl && s.state === "out");

  for (let i = 0; i < 2; i++) {
    const seen = live.app.seen;
    const payload = `late-${i}-${"y".repeat(500)}`;
    const res = await postLateBody(url, "/submit", payload, 100, () =>
      waitFor(async () => live.app.seen > seen || (await deadOut()), "the first attempt to be over"),
    );
    assert.match(res, /^HTTP\/1\.1 200 /);
    assert.ok(res.includes(`\r\nlive:${payload}\r\n`), `the body arrived whole at the live app: ${res}`);
  }
  const s = (await servers(adminUrl)).find((x) => x.dataUrl === dead.dataUrl)!;
  assert.equal(s.state, "out");
  assert.equal(s.router.requests, 1, "one of the two POSTs went to the dead app's server first");
  assert.deepEqual(live.app.bodies.map((b) => b.slice(0, 6)).sort(), ["late-0", "late-1"]);
});

/** A sidecar that has begun draining since its last report: serving reports, 503 DRAINING to calls. */
async function startDrainingSidecar(t: TestContext): Promise<{ url: string; calls: number }> {
  const s = { url: "", calls: 0 };
  const started = performance.now();
  let seq = 0;
  const server = createServer((req, res) => {
    if (req.url === "/v1/load") {
      const report: LoadReport = {
        version: LOAD_REPORT_VERSION,
        epoch: "drain-1",
        seq: ++seq,
        uptimeSeconds: (performance.now() - started) / 1000,
        state: "serving",
        appReachable: true,
        dataUrl: s.url,
        totals: { taskSeconds: 0, topLevelCalls: 0, nestedCalls: 0, errors: 0 },
        live: { inFlight: 0, inFlightTopLevel: 0, inFlightAgeSeconds: 0, cpu: 0, cores: 1 },
      };
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(report));
      return;
    }
    s.calls++;
    req.resume();
    writeProxyError(res, "DRAINING", "1.1 tasklb-sidecar-test");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  s.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  t.after(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return s;
}

void test("a draining sidecar's 503 DRAINING is retried on another server, which takes the work", async (t) => {
  const draining = await startDrainingSidecar(t);
  const [live] = await startApps(t, ["live"]);
  const rec = failoverRecorder();
  const { url, adminUrl } = await startRouter(
    t,
    [
      "--server",
      `${draining.url}=${draining.url},${live!.spec}`,
      "--algorithm",
      "round-robin",
      ...SLOW_POLLS,
    ],
    { observer: rec.observer },
  );
  await waitInRotation(adminUrl, [draining.url, live!.dataUrl]);
  for (const method of ["POST", "GET", "PUT", "GET"] as const) {
    const res = await request(`${url}/job`, { method });
    assert.equal(res.statusCode, 200, await res.body.text());
  }
  assert.equal(draining.calls, 1, "after its 503 the draining server got no more work");
  const s = (await servers(adminUrl)).find((x) => x.dataUrl === draining.url)!;
  assert.equal(s.state, "draining");
  assert.deepEqual(rec.failovers, [{ server: draining.url, code: "DRAINING" }]);
});

void test("a sidecar shedding load (503 OVERLOADED) has its refusals retried elsewhere", async (t) => {
  // The first app is slow and its sidecar takes one call at a time: concurrent calls are shed.
  const cluster = await startApps(t, ["slow", "fast"], [["--max-concurrent", "1"], []]);
  const rec = failoverRecorder();
  const { url, adminUrl } = await startRouter(
    t,
    ["--server", cluster.map((c) => c.spec).join(","), "--algorithm", "round-robin"],
    { observer: rec.observer },
  );
  await waitInRotation(
    adminUrl,
    cluster.map((c) => c.dataUrl),
  );
  const r = await runLoad(url, { count: 40, concurrency: 4 });
  assert.equal(r.failures, 0);
  assert.deepEqual([...r.byStatus], [[200, 40]], "no client saw a 503");
  assert.ok(
    rec.failovers.some((f) => f.code === "OVERLOADED" && f.server === cluster[0]!.dataUrl),
    JSON.stringify(rec.failovers),
  );
});

void test("an app that fails mid-call: the sidecar's 502 UPSTREAM_ERROR is retried for GET, never for POST", async (t) => {
  // One app resets every connection once the request has arrived; the other answers.
  const broken = createServer((req) => req.socket.destroy());
  await new Promise<void>((resolve) => broken.listen(0, "127.0.0.1", resolve));
  t.after(() => {
    broken.closeAllConnections();
    broken.close();
  });
  const good = await startApp(t, "good");
  const brokenUrl = `http://127.0.0.1:${(broken.address() as AddressInfo).port}`;
  const sidecars = [await startSidecar(t, brokenUrl, []), await startSidecar(t, good.url, [])];
  const rec = failoverRecorder();
  const { url, adminUrl } = await startRouter(
    t,
    [
      "--server",
      sidecars.map((s) => `${s.addresses!.dataUrl}=${s.addresses!.controlUrl}`).join(","),
      "--algorithm",
      "round-robin",
      ...SLOW_POLLS,
    ],
    { observer: rec.observer },
  );
  await waitInRotation(
    adminUrl,
    sidecars.map((s) => s.addresses!.dataUrl),
  );
  const gets = await runLoad(url, { count: 20, concurrency: 1 });
  assert.deepEqual([...gets.byStatus], [[200, 20]], "every GET answered by the good app");
  assert.ok(
    rec.failovers.some((f) => f.code === "UPSTREAM_ERROR"),
    "GETs that met the broken app failed over",
  );
  const posts = await runLoad(url, { count: 10, concurrency: 1, method: "POST" });
  assert.ok(
    (posts.byError.get("UPSTREAM_ERROR") ?? 0) > 0,
    "a POST the app may have handled is not sent again",
  );
  assert.equal(posts.byStatus.get(200) ?? 0, 10 - (posts.byError.get("UPSTREAM_ERROR") ?? 0));
});
