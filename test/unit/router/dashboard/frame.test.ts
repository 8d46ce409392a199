import assert from "node:assert/strict";
import { test } from "node:test";
import { buildFrame, serverKey } from "../../../../src/router/dashboard/frame.js";
import { server, snapshot } from "./fixtures.js";

void test("request rates and shares come from counter deltas over the window", () => {
  const before = snapshot([
    server("http://a", { requestsTotal: 100 }),
    server("http://b", { requestsTotal: 50 }),
  ]);
  const after = snapshot([
    server("http://a", { requestsTotal: 400, errorsTotal: 30 }),
    server("http://b", { requestsTotal: 150 }),
  ]);
  const f = buildFrame(after, before, 2000, 1_700_000_000_000);
  const [a, b] = f.pools[0]!.servers;
  assert.equal(a!.requestRate, 150);
  assert.equal(b!.requestRate, 50);
  assert.equal(a!.share, 0.75);
  assert.equal(b!.share, 0.25);
  assert.equal(a!.errorRatio, 0.1);
  assert.equal(b!.errorRatio, 0);
  assert.equal(f.router.requestRate, 200);
  assert.equal(f.rateWindowSeconds, 2);
  assert.equal(f.point.share[serverKey("default", "http://a")], 0.75);
  assert.equal(f.point.rps, 200);
});

void test("the first frame has no rates rather than made-up ones", () => {
  const f = buildFrame(snapshot([server("http://a", { requestsTotal: 10 })]), undefined, 0, 0);
  assert.equal(f.pools[0]!.servers[0]!.requestRate, 0);
  assert.equal(f.pools[0]!.servers[0]!.errorRatio, undefined);
  assert.equal(f.rateWindowSeconds, 0);
  assert.equal(f.point.rps, null, "the chart shows a gap, not a drop to zero");
  assert.equal(f.point.share[serverKey("default", "http://a")], null);
});

void test("a counter that went down (server rejoined) counts from zero, never negative", () => {
  const before = snapshot([server("http://a", { requestsTotal: 1000 })]);
  const after = snapshot([server("http://a", { requestsTotal: 20 })]);
  assert.equal(buildFrame(after, before, 1000, 0).pools[0]!.servers[0]!.requestRate, 20);
});

void test("the busiest server is the one with most task-seconds/s among those in rotation", () => {
  const f = buildFrame(
    snapshot([
      server("http://a", { busy: 0.5 }),
      server("http://b", { busy: 3.2 }),
      server("http://c", { busy: 9, state: "out" }),
      server("http://d", { busy: undefined }),
    ]),
    undefined,
    0,
    0,
  );
  assert.equal(f.busiest, serverKey("default", "http://b"));
  assert.equal(f.point.busy[serverKey("default", "http://d")], null);
});

void test("no busiest server when nothing is busy", () => {
  const f = buildFrame(
    snapshot([server("http://a", { busy: 0 }), server("http://b", { busy: undefined })]),
    undefined,
    0,
    0,
  );
  assert.equal(f.busiest, undefined);
});

void test("busy is taken over the window from the sidecar's counters when one lifetime spans it", () => {
  const report = (taskSeconds: number, uptimeSeconds: number, epoch = "e1") => ({
    epoch,
    uptimeSeconds,
    taskSeconds,
  });
  const before = snapshot([server("http://a", { busy: 0, report: report(10, 100) })]);
  const after = snapshot([server("http://a", { busy: 0, report: report(16, 103) })]);
  const f = buildFrame(after, before, 3000, 0);
  assert.equal(f.pools[0]!.servers[0]!.busy, 2);
  assert.equal("report" in f.pools[0]!.servers[0]!, false, "the page does not get the raw counters");
  // A restarted sidecar (new epoch): fall back to the router's own figure.
  const restarted = snapshot([server("http://a", { busy: 0.7, report: report(1, 2, "e2") })]);
  assert.equal(buildFrame(restarted, before, 3000, 0).pools[0]!.servers[0]!.busy, 0.7);
});
