import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  forwardRequestHeaders,
  forwardResponseHeaders,
  rawHeaderValues,
  viaHasLoop,
  type RequestHeaderContext,
} from "../../../src/shared/headers.js";

const ctx: RequestHeaderContext = {
  via: "1.1 tasklb-x",
  trustForwarded: false,
  remoteAddress: "10.0.0.9",
  proto: "http",
};

function pairs(flat: string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i < flat.length; i += 2) out.push([flat[i]!.toLowerCase(), flat[i + 1]!]);
  return out;
}
const get = (flat: string[], name: string) =>
  pairs(flat)
    .filter(([n]) => n === name)
    .map(([, v]) => v);

describe("headers: request rules", () => {
  it("drops hop-by-hop fields and the fields Connection names", () => {
    const out: string[] = [];
    const raw = [
      "Host",
      "app",
      "Connection",
      "keep-alive, X-Secret",
      "X-Secret",
      "1",
      "Keep-Alive",
      "timeout=5",
      "TE",
      "trailers",
      "Trailer",
      "x",
      "Proxy-Connection",
      "keep-alive",
      "Upgrade",
      "h2c",
      "Expect",
      "100-continue",
      "X-Kept",
      "yes",
    ];
    forwardRequestHeaders(raw, ctx, undefined, out);
    const names = pairs(out).map(([n]) => n);
    for (const n of [
      "connection",
      "x-secret",
      "keep-alive",
      "te",
      "trailer",
      "proxy-connection",
      "upgrade",
      "expect",
    ]) {
      assert.ok(!names.includes(n), n);
    }
    assert.deepEqual(get(out, "x-kept"), ["yes"]);
    assert.deepEqual(get(out, "host"), ["app"]);
  });

  it("appends our Via to an existing one", () => {
    const out: string[] = [];
    forwardRequestHeaders(["Via", "1.0 fred", "via", "1.1 p.example"], ctx, undefined, out);
    assert.deepEqual(get(out, "via"), ["1.0 fred, 1.1 p.example, 1.1 tasklb-x"]);
  });

  it("X-Forwarded-*: untrusted incoming values are dropped; only the client's address is added", () => {
    const out: string[] = [];
    const raw = [
      "Host",
      "h.example",
      "X-Forwarded-For",
      "6.6.6.6",
      "X-Forwarded-Proto",
      "https",
      "X-Forwarded-Host",
      "evil",
      "Forwarded",
      "for=6.6.6.6",
    ];
    forwardRequestHeaders(raw, ctx, undefined, out);
    assert.deepEqual(get(out, "x-forwarded-for"), ["10.0.0.9"]);
    // The app's own connection says http, and Host passes unchanged: nothing more to tell it.
    assert.deepEqual(get(out, "x-forwarded-proto"), []);
    assert.deepEqual(get(out, "x-forwarded-host"), []);
    assert.deepEqual(get(out, "host"), ["h.example"]);
    assert.deepEqual(get(out, "forwarded"), []);
  });

  it("X-Forwarded-*: trusted incoming values are kept and extended", () => {
    const out: string[] = [];
    const raw = [
      "Host",
      "h.example",
      "X-Forwarded-For",
      "1.2.3.4",
      "X-Forwarded-Proto",
      "https",
      "X-Forwarded-Host",
      "public.example",
      "Forwarded",
      "for=1.2.3.4",
    ];
    forwardRequestHeaders(raw, { ...ctx, trustForwarded: true }, undefined, out);
    assert.deepEqual(get(out, "x-forwarded-for"), ["1.2.3.4, 10.0.0.9"]);
    assert.deepEqual(get(out, "x-forwarded-proto"), ["https"]);
    assert.deepEqual(get(out, "x-forwarded-host"), ["public.example"]);
    assert.deepEqual(get(out, "forwarded"), ["for=1.2.3.4"]);
  });

  it("reports whether the request has a body", () => {
    assert.equal(forwardRequestHeaders(["Content-Length", "0"], ctx, undefined, []), false);
    assert.equal(forwardRequestHeaders(["Content-Length", "12"], ctx, undefined, []), true);
    assert.equal(forwardRequestHeaders(["Transfer-Encoding", "chunked"], ctx, undefined, []), true);
    assert.equal(forwardRequestHeaders(["Host", "x"], ctx, undefined, []), false);
  });

  it("skips the names the caller rewrites", () => {
    const out: string[] = [];
    forwardRequestHeaders(
      ["traceparent", "a", "tracestate", "b", "x", "y"],
      ctx,
      new Set(["traceparent", "tracestate"]),
      out,
    );
    assert.deepEqual(get(out, "traceparent"), []);
    assert.deepEqual(get(out, "tracestate"), []);
  });

  it("keeps Upgrade and sends Connection: upgrade for an upgrade handshake", () => {
    const out: string[] = [];
    forwardRequestHeaders(
      ["Connection", "Upgrade", "Upgrade", "websocket"],
      { ...ctx, keepUpgrade: true },
      undefined,
      out,
    );
    assert.deepEqual(get(out, "upgrade"), ["websocket"]);
    assert.deepEqual(get(out, "connection"), ["upgrade"]);
  });
});

describe("headers: response rules", () => {
  const b = (xs: string[]) => xs.map((x) => Buffer.from(x, "latin1"));
  it("drops hop-by-hop fields, keeps repeated fields, appends Via", () => {
    const out: string[] = [];
    forwardResponseHeaders(
      b([
        "Connection",
        "x-internal",
        "X-Internal",
        "1",
        "Keep-Alive",
        "timeout=5",
        "Transfer-Encoding",
        "chunked",
        "Set-Cookie",
        "a=1",
        "Set-Cookie",
        "b=2",
        "Via",
        "1.1 app",
        "x-tasklb-load",
        "v1;...",
      ]),
      "1.1 tasklb-x",
      new Set(["x-tasklb-load"]),
      out,
    );
    assert.deepEqual(get(out, "set-cookie"), ["a=1", "b=2"]);
    assert.deepEqual(get(out, "via"), ["1.1 app, 1.1 tasklb-x"]);
    for (const n of ["connection", "x-internal", "keep-alive", "transfer-encoding", "x-tasklb-load"]) {
      assert.deepEqual(get(out, n), [], n);
    }
  });

  it("returns the body length a single valid Content-Length declares, else -1", () => {
    const len = (xs: string[]) => forwardResponseHeaders(b(xs), "1.1 tasklb-x", undefined, []);
    assert.equal(len(["Content-Type", "text/plain", "Content-Length", "100"]), 100);
    assert.equal(len(["content-length", "0"]), 0);
    assert.equal(len(["Content-Type", "text/plain"]), -1, "no length: chunked or close-delimited");
    assert.equal(len(["Content-Length", "5", "Content-Length", "5"]), -1, "repeated");
    assert.equal(len(["Content-Length", "1e3"]), -1, "not a plain count");
  });

  it("drops fields named in Connection wherever they stand, keeping the rest in order", () => {
    const out: string[] = ["already", "there"];
    forwardResponseHeaders(
      b([
        "X-Before",
        "1",
        "Content-Type",
        "text/plain",
        "Connection",
        "x-before, X-After",
        "X-After",
        "2",
        "ETag",
        "e",
      ]),
      "1.1 tasklb-x",
      undefined,
      out,
    );
    assert.deepEqual(out, [
      "already",
      "there",
      "Content-Type",
      "text/plain",
      "ETag",
      "e",
      "via",
      "1.1 tasklb-x",
    ]);
  });

  it("detects our own Via pseudonym (a loop) but not a similar one", () => {
    assert.equal(viaHasLoop("1.1 a, 1.1 tasklb-abc123", "tasklb-abc123"), true);
    assert.equal(viaHasLoop(["1.1 a", "1.1 tasklb-abc123"], "tasklb-abc123"), true);
    assert.equal(viaHasLoop("1.1 tasklb-abc124", "tasklb-abc123"), false);
    assert.equal(viaHasLoop(undefined, "tasklb-abc123"), false);
  });

  it("finds every value of a header case-insensitively", () => {
    assert.deepEqual(rawHeaderValues(["A", "1", "b", "2", "a", "3"], "a"), ["1", "3"]);
    assert.equal(rawHeaderValues(["b", "2"], "a"), undefined);
  });
});
