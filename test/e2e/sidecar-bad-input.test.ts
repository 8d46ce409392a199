/**
 * Hostile and malformed input: the sidecar refuses it the way the protocol says and keeps serving
 * everyone else.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { connect } from "node:net";
import { once } from "node:events";
import { parseTraceparent } from "../../src/shared/trace-context.js";
import { startTestApp } from "../helpers/app.js";
import { send, startSidecar } from "../helpers/sidecar.js";

const TID = "4bf92f3577b34da6a3ce929d0e0e4736";
const VALID = `00-${TID}-00f067aa0ba902b7-01`;

describe("sidecar: bad input", () => {
  it("a valid traceparent and its tracestate reach the app unchanged", async (t) => {
    const app = await startTestApp();
    t.after(() => app.close());
    const sc = await startSidecar(t, app.url);
    await send(sc.url, { path: "/echo", headers: { traceparent: VALID, tracestate: "congo=t61rcWkgMzE" } });
    const got = app.requests.at(-1)!;
    assert.deepEqual(got.headers("traceparent"), [VALID]);
    assert.deepEqual(got.headers("tracestate"), ["congo=t61rcWkgMzE"]);
  });

  it("malformed traceparent values: a new trace is injected and tracestate dropped", async (t) => {
    const app = await startTestApp();
    t.after(() => app.close());
    const sc = await startSidecar(t, app.url);
    const bad: (string | string[])[] = [
      VALID.toUpperCase(),
      `00-${"0".repeat(32)}-00f067aa0ba902b7-01`,
      `00-${TID}-${"0".repeat(16)}-01`,
      `ff-${TID}-00f067aa0ba902b7-01`,
      `00-${TID}-00f067aa0ba902b7-01-extra`,
      "not a traceparent",
      "x".repeat(2000),
      [VALID, VALID],
    ];
    for (const value of bad) {
      const headers = Array.isArray(value)
        ? value.flatMap((v) => ["traceparent", v]).concat(["tracestate", "a=b"])
        : ["traceparent", value, "tracestate", "a=b"];
      const r = await send(sc.url, { path: "/echo", headers });
      assert.equal(r.status, 200);
      const got = app.requests.at(-1)!;
      const sent = got.headers("traceparent");
      assert.equal(sent.length, 1, `one traceparent for ${String(value).slice(0, 60)}`);
      const parsed = parseTraceparent(sent[0]);
      assert.ok(parsed, `a valid traceparent replaces ${String(value).slice(0, 60)}`);
      assert.notEqual(parsed.traceId, TID);
      assert.deepEqual(got.headers("tracestate"), [], "tracestate of an invalid trace is dropped");
    }
    assert.equal(sc.sidecar.report().totals.topLevelCalls, bad.length);
  });

  it("oversized request headers get 431 and the sidecar keeps serving", async (t) => {
    const app = await startTestApp();
    t.after(() => app.close());
    const sc = await startSidecar(t, app.url, { maxHeaderSize: 8192 });
    const before = app.requests.length;
    const r = await send(sc.url, { path: "/echo", headers: { "x-big": "a".repeat(10_000) } });
    assert.equal(r.status, 431);
    assert.equal(app.requests.length, before, "nothing reached the app");
    assert.equal((await send(sc.url, { path: "/echo", headers: { "x-ok": "a".repeat(4_000) } })).status, 200);
  });

  it("a slowloris client is cut off while other clients keep being served", async (t) => {
    const app = await startTestApp();
    t.after(() => app.close());
    const sc = await startSidecar(t, app.url, { headersTimeoutMs: 1_000 });
    const port = Number(new URL(sc.url).port);
    const sock = connect({ host: "127.0.0.1", port });
    t.after(() => sock.destroy());
    await once(sock, "connect");
    let answer = "";
    sock.setEncoding("utf8");
    sock.on("data", (d: string) => (answer += d));
    sock.on("error", () => undefined);
    const closed = once(sock, "close");
    sock.write("GET /echo HTTP/1.1\r\nHost: x\r\n");
    // Drip a header byte every 100 ms, forever (bounded by the test), as slowloris does.
    const drip = setInterval(() => sock.writable && sock.write("X-A: b\r\n"), 100);
    t.after(() => clearInterval(drip));
    const start = performance.now();
    let served = 0;
    let cut = false;
    void closed.then(() => (cut = true));
    while (!cut && performance.now() - start < 10_000) {
      const r = await send(sc.url, { path: "/echo" });
      assert.equal(r.status, 200);
      served++;
      await new Promise((r) => setTimeout(r, 50));
    }
    clearInterval(drip);
    assert.ok(cut, "the slow client was disconnected within 10 s");
    assert.ok(served > 0, "others were served meanwhile");
    assert.ok(answer === "" || answer.startsWith("HTTP/1.1 408"), `got ${answer.slice(0, 40)}`);
  });

  it("control port: /v1/load needs the token; probes do not; unknown paths and methods are refused", async (t) => {
    const app = await startTestApp();
    t.after(() => app.close());
    const sc = await startSidecar(t, app.url, { token: "s3cret" });
    const none = await send(sc.controlUrl, { path: "/v1/load" });
    assert.equal(none.status, 401);
    assert.equal(none.headers["x-tasklb-error"], "UNAUTHORIZED");
    assert.equal(none.json<{ error: { code: string } }>().error.code, "UNAUTHORIZED");
    assert.equal(
      (await send(sc.controlUrl, { path: "/v1/load", headers: { authorization: "Bearer wrong" } })).status,
      401,
    );
    assert.equal(
      (await send(sc.controlUrl, { path: "/v1/load", headers: { authorization: "Bearer s3cret" } })).status,
      200,
    );
    assert.equal(
      (await send(sc.controlUrl, { path: "/v1/load", headers: { "x-tasklb-token": "s3cret" } })).status,
      200,
    );
    assert.equal((await send(sc.controlUrl, { path: "/livez" })).status, 200);
    const ready = await send(sc.controlUrl, { path: "/readyz" });
    assert.ok(ready.status === 200 || ready.status === 503);
    const nf = await send(sc.controlUrl, { path: "/nope" });
    assert.equal(nf.status, 404);
    assert.equal(nf.headers["x-tasklb-error"], "NOT_FOUND");
    const post = await send(sc.controlUrl, {
      path: "/v1/load",
      method: "POST",
      headers: { authorization: "Bearer s3cret" },
    });
    assert.equal(post.status, 405);
    assert.equal(post.headers.allow, "GET, HEAD");
  });

  it("control port: extra routes (telemetry's /metrics) plug in and share the token check", async (t) => {
    const app = await startTestApp();
    t.after(() => app.close());
    const sc = await startSidecar(
      t,
      app.url,
      { token: "tok" },
      {
        controlRoutes: {
          "/metrics": { handle: (_req, res) => void res.end("# metrics\n") },
          "/v1/load": { auth: false, handle: (_req, res) => void res.end("hijacked") },
        },
      },
    );
    assert.equal((await send(sc.controlUrl, { path: "/metrics" })).status, 401);
    const m = await send(sc.controlUrl, { path: "/metrics", headers: { authorization: "Bearer tok" } });
    assert.equal(m.text, "# metrics\n");
    assert.equal(
      (await send(sc.controlUrl, { path: "/v1/load" })).status,
      401,
      "built-in routes cannot be replaced",
    );
  });

  it("readiness follows the app: ready once it is reachable", async (t) => {
    const app = await startTestApp();
    t.after(() => app.close());
    const sc = await startSidecar(t, app.url);
    let status = 0;
    for (let i = 0; i < 100 && status !== 200; i++) {
      status = (await send(sc.controlUrl, { path: "/readyz" })).status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(status, 200);
    assert.equal(sc.sidecar.report().appReachable, true);
    await app.close();
    for (let i = 0; i < 100 && status !== 503; i++) {
      status = (await send(sc.controlUrl, { path: "/readyz" })).status;
      if (status !== 503) await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(status, 503);
  });
});
