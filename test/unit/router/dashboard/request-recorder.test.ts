import assert from "node:assert/strict";
import { test } from "node:test";
import { FakeClock } from "../../../../src/shared/clock.js";
import { createRequestRecorder } from "../../../../src/router/dashboard/request-recorder.js";

const start = {
  method: "GET",
  target: "/",
  traceId: "0af7651916cd43dd8448eb211c80319c",
  parentSpanId: undefined,
  sampled: true,
  remoteAddress: "127.0.0.1",
  pool: "default",
  algorithm: "adaptive",
};

void test("requests, errors, failovers and latency percentiles per server, fed as the router's observer", () => {
  const clock = new FakeClock(1000);
  const rec = createRequestRecorder({ clock });
  for (let i = 0; i < 100; i++) {
    const scope = rec.onRequestStart(start)!;
    assert.equal(rec.router().inFlight, 1);
    scope.decision("http://a", 0.1);
    scope.end({ durationMs: i < 50 ? 10 : 100, status: 200, outcome: "ok", server: "http://a", attempts: 1 });
  }
  const failing = rec.onRequestStart(start)!;
  failing.failover("http://b", "UPSTREAM_UNREACHABLE");
  failing.end({
    durationMs: 3,
    status: 502,
    outcome: "UPSTREAM_UNREACHABLE",
    server: "http://a",
    attempts: 2,
  });

  const a = rec.server("http://a")!;
  assert.equal(a.requestsTotal, 101);
  assert.equal(a.errorsTotal, 1);
  assert.ok(a.latencyP50Ms! > 9 && a.latencyP50Ms! < 11, `p50 ${a.latencyP50Ms}`);
  assert.ok(a.latencyP99Ms! > 95 && a.latencyP99Ms! < 105, `p99 ${a.latencyP99Ms}`);
  assert.equal(rec.server("http://b")!.failoversTotal, 1);
  const r = rec.router();
  assert.equal(r.requestsTotal, 101);
  assert.equal(r.failoversTotal, 1);
  assert.equal(r.inFlight, 0);
});

void test("a client that gives up is counted but is neither an error nor a latency sample", () => {
  const rec = createRequestRecorder({ clock: new FakeClock() });
  rec
    .onRequestStart(start)!
    .end({ durationMs: 5000, status: 0, outcome: "aborted", server: "http://a", attempts: 1 });
  const a = rec.server("http://a")!;
  assert.equal(a.requestsTotal, 1);
  assert.equal(a.errorsTotal, 0);
  assert.equal(a.latencyP99Ms, undefined);
});

void test("percentiles forget old requests; servers that left are dropped", () => {
  const clock = new FakeClock();
  const rec = createRequestRecorder({ clock, windowMs: 10_000 });
  rec.record("http://a", 500, false);
  rec.record("http://b", 5, false);
  clock.advance(11_000);
  assert.equal(rec.server("http://a")!.latencyP50Ms, undefined);
  assert.equal(rec.server("http://a")!.requestsTotal, 1);
  rec.retain(new Set(["http://b"]));
  assert.equal(rec.server("http://a"), undefined);
  assert.ok(rec.server("http://b"));
});

void test("the number of servers tracked is capped", () => {
  const rec = createRequestRecorder({ clock: new FakeClock(), maxServers: 2 });
  for (const s of ["http://a", "http://b", "http://c"]) rec.record(s, 1, false);
  assert.equal(rec.server("http://c"), undefined);
  assert.equal(rec.router().requestsTotal, 3);
});
