/**
 * The sidecar as a transparent proxy, end to end: a real app and a real sidecar on loopback.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { request as httpRequest, Agent } from "node:http";
import { createServer } from "node:net";
import { once } from "node:events";
import WebSocket from "ws";
import type {
  SidecarCallEnd,
  SidecarCallObserver,
  SidecarCallStart,
} from "../../src/shared/call-observer.js";
import { startTestApp } from "../helpers/app.js";
import { send, startSidecar, waitFor } from "../helpers/sidecar.js";

async function freePort(): Promise<number> {
  const s = createServer().listen(0, "127.0.0.1");
  await once(s, "listening");
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

describe("sidecar proxy", () => {
  it("forwards method, path, query and body; answers as the app did", async (t) => {
    const app = await startTestApp();
    t.after(() => app.close());
    const sc = await startSidecar(t, app.url);
    const r = await send(sc.url, { method: "POST", path: "/echo?x=1&y=%20", body: "hello world" });
    assert.equal(r.status, 200);
    const seen = r.json<{ method: string; url: string; bytes: number }>();
    assert.deepEqual([seen.method, seen.url, seen.bytes], ["POST", "/echo?x=1&y=%20", 11]);
  });

  it("drops hop-by-hop request fields and those named in Connection", async (t) => {
    const app = await startTestApp();
    t.after(() => app.close());
    const sc = await startSidecar(t, app.url);
    await send(sc.url, {
      path: "/echo",
      headers: [
        "Connection",
        "keep-alive, X-Secret",
        "X-Secret",
        "1",
        "Keep-Alive",
        "timeout=9",
        "TE",
        "trailers",
        "Proxy-Connection",
        "keep-alive",
        "Upgrade",
        "h2c",
        "X-Kept",
        "yes",
      ],
    });
    const got = app.requests.at(-1)!;
    for (const h of ["x-secret", "keep-alive", "te", "proxy-connection", "upgrade"]) {
      assert.deepEqual(got.headers(h), [], `${h} must not reach the app`);
    }
    assert.equal(got.header("x-kept"), "yes");
    // The upstream connection is the sidecar's own keep-alive connection.
    assert.notEqual(got.header("connection"), "keep-alive, X-Secret");
  });

  it("drops hop-by-hop response fields, keeps repeated Set-Cookie, appends Via both ways", async (t) => {
    const app = await startTestApp();
    t.after(() => app.close());
    const sc = await startSidecar(t, app.url);
    const r = await send(sc.url, { path: "/hop", headers: ["Via", "1.0 client-proxy"] });
    assert.equal(r.status, 200);
    assert.equal(r.headers["x-internal"], undefined);
    assert.equal(r.headers["proxy-connection"], undefined);
    assert.equal(r.headers["x-public"], "yes");
    assert.match(String(r.headers.via), /^1\.1 app-server, 1\.1 tasklb-[0-9a-f]+$/);
    assert.match(app.requests.at(-1)!.header("via")!, /^1\.0 client-proxy, 1\.1 tasklb-[0-9a-f]+$/);
    const c = await send(sc.url, { path: "/cookies" });
    assert.deepEqual(c.headers["set-cookie"], ["a=1; Path=/", "b=2; Path=/"]);
  });

  it("X-Forwarded-*: dropped when not trusted (only the client's address is added), kept and extended when trusted", async (t) => {
    const app = await startTestApp();
    t.after(() => app.close());
    const spoof = [
      "X-Forwarded-For",
      "6.6.6.6",
      "X-Forwarded-Proto",
      "https",
      "X-Forwarded-Host",
      "evil.example",
    ];
    const plain = await startSidecar(t, app.url);
    await send(plain.url, { path: "/echo", headers: ["Host", "shop.example", ...spoof] });
    let got = app.requests.at(-1)!;
    assert.equal(got.header("x-forwarded-for"), "127.0.0.1");
    assert.equal(got.header("x-forwarded-proto"), undefined, "the spoofed proto is dropped");
    assert.equal(got.header("x-forwarded-host"), undefined, "the spoofed host is dropped");
    assert.equal(got.header("host"), "shop.example", "Host passes unchanged");

    const trusting = await startSidecar(t, app.url, { trustForwarded: true });
    await send(trusting.url, { path: "/echo", headers: ["Host", "shop.example", ...spoof] });
    got = app.requests.at(-1)!;
    assert.equal(got.header("x-forwarded-for"), "6.6.6.6, 127.0.0.1");
    assert.equal(got.header("x-forwarded-proto"), "https");
    assert.equal(got.header("x-forwarded-host"), "evil.example");
  });

  it("a request carrying our own Via pseudonym is a loop: 508", async (t) => {
    const app = await startTestApp();
    t.after(() => app.close());
    const sc = await startSidecar(t, app.url);
    const first = await send(sc.url, { path: "/echo" });
    const ours = /tasklb-[0-9a-f]+/.exec(String(first.headers.via))![0];
    const before = app.requests.length;
    const r = await send(sc.url, { path: "/echo", headers: { via: `1.1 ${ours}` } });
    assert.equal(r.status, 508);
    assert.equal(r.headers["x-tasklb-error"], "LOOP_DETECTED");
    assert.equal(app.requests.length, before, "the looped request is not forwarded");
  });

  it("HEAD, 204 and 304 behave as the app's, and the connection stays usable", async (t) => {
    const app = await startTestApp();
    t.after(() => app.close());
    const sc = await startSidecar(t, app.url);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    t.after(() => agent.destroy());
    const viaAgent = (method: string, path: string, headers: Record<string, string> = {}) =>
      new Promise<{ status: number; headers: Record<string, unknown>; body: string }>((resolve, reject) => {
        const req = httpRequest(new URL(path, sc.url), { method, agent, headers }, (res) => {
          let body = "";
          res.setEncoding("utf8");
          res.on("data", (c: string) => (body += c));
          res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body }));
        });
        req.on("error", reject);
        req.end();
      });
    const head = await viaAgent("HEAD", "/head");
    assert.equal(head.status, 200);
    assert.equal(head.headers["content-length"], "1234");
    assert.equal(head.body, "");
    const noContent = await viaAgent("GET", "/status/204");
    assert.equal(noContent.status, 204);
    assert.equal(noContent.body, "");
    const notModified = await viaAgent("GET", "/status/304", { "if-none-match": '"v1"' });
    assert.equal(notModified.status, 304);
    assert.equal(notModified.headers.etag, '"v1"');
    assert.equal(notModified.body, "");
    const after = await viaAgent("GET", "/head");
    assert.equal(after.body.length, 1234, "no stray body bytes were left on the kept-alive connection");
  });

  it("103 Early Hints reach the client before the final answer", async (t) => {
    const app = await startTestApp();
    t.after(() => app.close());
    const sc = await startSidecar(t, app.url);
    const hints: { statusCode: number; headers: Record<string, unknown> }[] = [];
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(new URL("/hints", sc.url), { agent: false }, (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode!));
      });
      req.on("information", (info) => hints.push({ statusCode: info.statusCode, headers: info.headers }));
      req.on("error", reject);
      req.end();
    });
    assert.equal(status, 200);
    assert.equal(hints.length, 1);
    assert.equal(hints[0]!.statusCode, 103);
    assert.equal(hints[0]!.headers.link, "</style.css>; rel=preload; as=style");
  });

  it("Expect: 100-continue: the client gets 100 Continue, sends the body, the app gets it", async (t) => {
    const app = await startTestApp();
    t.after(() => app.close());
    const sc = await startSidecar(t, app.url);
    let continued = false;
    const body = await new Promise<string>((resolve, reject) => {
      const req = httpRequest(
        new URL("/upload", sc.url),
        { method: "PUT", agent: false, headers: { expect: "100-continue", "content-length": "5" } },
        (res) => {
          let b = "";
          res.setEncoding("utf8");
          res.on("data", (c: string) => (b += c));
          res.on("end", () => resolve(b));
        },
      );
      req.on("continue", () => {
        continued = true;
        req.end("12345");
      });
      req.on("error", reject);
    });
    assert.equal(continued, true);
    assert.deepEqual(JSON.parse(body), { bytes: 5 });
  });

  it("WebSocket echo passes through and the connection is timed as one call", async (t) => {
    const app = await startTestApp();
    t.after(() => app.close());
    const sc = await startSidecar(t, app.url);
    const before = sc.sidecar.report().totals.topLevelCalls;
    const ws = new WebSocket(sc.url.replace("http:", "ws:") + "/socket");
    t.after(() => ws.terminate());
    await once(ws, "open");
    const replies: string[] = [];
    ws.on("message", (d: Buffer) => replies.push(d.toString()));
    for (const m of ["one", "two", "three"]) ws.send(m);
    await waitFor("echoes", () => replies.length === 3);
    assert.deepEqual(replies, ["one", "two", "three"]);
    assert.equal(sc.sidecar.report().live.inFlight, 1, "the open connection is a call in flight");
    await new Promise((r) => setTimeout(r, 100));
    ws.close();
    await once(ws, "close");
    const r = await waitFor("ws call end", () => {
      const rep = sc.sidecar.report();
      return rep.live.inFlight === 0 ? rep : undefined;
    });
    assert.equal(r.totals.topLevelCalls, before + 1);
    assert.ok(r.totals.taskSeconds >= 0.1, `the whole connection is timed (${r.totals.taskSeconds})`);
    assert.equal(r.totals.errors, 0);
  });

  it("a client abort reaches the app (its request closes) and counts as an error", async (t) => {
    const app = await startTestApp();
    t.after(() => app.close());
    const sc = await startSidecar(t, app.url);
    const aborted = once(app.events, "aborted");
    const arrived = app.nextRequest("/hang");
    const req = httpRequest(new URL("/hang", sc.url), { agent: false });
    req.on("error", () => undefined);
    req.end();
    await arrived;
    req.destroy();
    const [url] = (await aborted) as [string];
    assert.equal(url, "/hang");
    const r = await waitFor("abort counted", () => {
      const rep = sc.sidecar.report();
      return rep.live.inFlight === 0 ? rep : undefined;
    });
    assert.equal(r.totals.errors, 1);
    assert.equal(r.totals.topLevelCalls, 1);
  });

  it("app down: 502 marked as made by the proxy; readiness fails", async (t) => {
    const port = await freePort();
    const sc = await startSidecar(t, `http://127.0.0.1:${port}`);
    const r = await send(sc.url, { path: "/anything" });
    assert.equal(r.status, 502);
    assert.equal(r.headers["x-tasklb-error"], "UPSTREAM_UNREACHABLE");
    assert.equal(r.json<{ error: { code: string } }>().error.code, "UPSTREAM_UNREACHABLE");
    const ready = await send(sc.controlUrl, { path: "/readyz" });
    assert.equal(ready.status, 503);
    assert.equal(sc.sidecar.report().totals.errors, 1);
  });

  it("app too slow: 504 after --upstream-timeout-ms", async (t) => {
    const app = await startTestApp();
    t.after(() => app.close());
    const sc = await startSidecar(t, app.url, { upstreamTimeoutMs: 300 });
    const r = await send(sc.url, { path: "/slow?ms=5000" });
    assert.equal(r.status, 504);
    assert.equal(r.headers["x-tasklb-error"], "UPSTREAM_TIMEOUT");
  });

  it("above --max-concurrent calls are shed with 503 + Retry-After; others still pass", async (t) => {
    const app = await startTestApp();
    t.after(() => app.close());
    const sc = await startSidecar(t, app.url, { maxConcurrent: 1 });
    const arrived = app.nextRequest("/slow");
    const slow = send(sc.url, { path: "/slow?ms=1500" });
    await arrived;
    const shed = await send(sc.url, { path: "/echo" });
    assert.equal(shed.status, 503);
    assert.equal(shed.headers["x-tasklb-error"], "OVERLOADED");
    assert.equal(shed.headers["retry-after"], "1");
    assert.equal((await slow).status, 200);
    assert.equal((await send(sc.url, { path: "/echo" })).status, 200, "served again once below the limit");
  });

  it("an app cannot pass its answer off as the proxy's: x-tasklb-error from the app is dropped", async (t) => {
    // A router retries answers marked as the proxy's "never reached the app" on another server; a
    // forged mark would get a request the app did handle sent again.
    const app = await startTestApp();
    t.after(() => app.close());
    const sc = await startSidecar(t, app.url);
    const r = await send(sc.url, { path: "/status/502?forge=UPSTREAM_UNREACHABLE" });
    assert.equal(r.status, 502);
    assert.equal(r.headers["x-tasklb-error"], undefined);
    assert.equal(r.text, "status 502");
  });

  it("app 5xx passes through unmarked and counts as an error", async (t) => {
    const app = await startTestApp();
    t.after(() => app.close());
    const sc = await startSidecar(t, app.url);
    const r = await send(sc.url, { path: "/status/500" });
    assert.equal(r.status, 500);
    assert.equal(r.headers["x-tasklb-error"], undefined, "the app's own error is not marked as the proxy's");
    assert.equal(r.text, "status 500");
    assert.equal(sc.sidecar.report().totals.errors, 1);
  });

  it("piggybacks the load report only to callers that ask with the token; never forwards the ask", async (t) => {
    const app = await startTestApp();
    t.after(() => app.close());
    const open = await startSidecar(t, app.url);
    const plain = await send(open.url, { path: "/status/200?body=hi" });
    assert.equal(plain.headers["x-tasklb-load"], undefined, "a plain client gets no load report");
    const asked = await send(open.url, { path: "/status/200?body=hi", headers: { "x-tasklb-load": "1" } });
    assert.match(String(asked.headers["x-tasklb-load"]), new RegExp(`^v1;${open.sidecar.epoch};\\d+;`));
    assert.equal(app.requests.at(-1)!.header("x-tasklb-load"), undefined, "the ask never reaches the app");

    const guarded = await startSidecar(t, app.url, { token: "s3cret" });
    const wrong = await send(guarded.url, { path: "/echo", headers: { "x-tasklb-load": "guess" } });
    assert.equal(wrong.status, 200, "a wrong ask is not an error");
    assert.equal(wrong.headers["x-tasklb-load"], undefined, "without the token, no figures");
    const right = await send(guarded.url, { path: "/echo", headers: { "x-tasklb-load": "s3cret" } });
    assert.match(String(right.headers["x-tasklb-load"]), /^v1;/);

    const off = await startSidecar(t, app.url, { piggyback: false });
    const r2 = await send(off.url, { path: "/status/200?body=hi", headers: { "x-tasklb-load": "1" } });
    assert.equal(r2.headers["x-tasklb-load"], undefined);
  });

  it("a telemetry observer sees each call start and end once; its span becomes the app's parent", async (t) => {
    const app = await startTestApp();
    t.after(() => app.close());
    const ends: SidecarCallEnd[] = [];
    const starts: SidecarCallStart[] = [];
    const observer: SidecarCallObserver = {
      onCallStart(call) {
        starts.push(call);
        return { spanId: "1234567890abcdef", sampled: true, end: (e) => void ends.push(e) };
      },
    };
    const sc = await startSidecar(t, app.url, {}, { observer });
    const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
    await send(sc.url, { path: "/echo?q=1", headers: { traceparent: tp, tracestate: "k=v" } });
    const got = app.requests.at(-1)!;
    assert.equal(got.header("traceparent"), "00-4bf92f3577b34da6a3ce929d0e0e4736-1234567890abcdef-01");
    assert.equal(got.header("tracestate"), "k=v");
    assert.equal(starts[0]!.traceId, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert.equal(starts[0]!.parentSpanId, "00f067aa0ba902b7");
    assert.equal(starts[0]!.target, "/echo?q=1");
    await waitFor("end", () => ends.length === 1);
    assert.equal(ends[0]!.status, 200);
    assert.equal(ends[0]!.topLevel, true);
    assert.equal(ends[0]!.outcome, "ok");
  });

  it("an observer that throws never breaks a call", async (t) => {
    const app = await startTestApp();
    t.after(() => app.close());
    const observer: SidecarCallObserver = {
      onCallStart: () => ({
        end: () => {
          throw new Error("telemetry bug");
        },
      }),
    };
    const broken: SidecarCallObserver = {
      onCallStart: () => {
        throw new Error("telemetry bug");
      },
    };
    for (const o of [observer, broken]) {
      const sc = await startSidecar(t, app.url, {}, { observer: o });
      assert.equal((await send(sc.url, { path: "/echo" })).status, 200);
      assert.equal((await send(sc.url, { path: "/echo" })).status, 200);
      await waitFor("counted", () => sc.sidecar.report().totals.topLevelCalls === 2);
    }
  });
});
