import assert from "node:assert/strict";
import { test } from "node:test";
import { FakeClock } from "../../../../src/shared/clock.js";
import { createDashboardFeed } from "../../../../src/router/dashboard/feed.js";
import type { RouterSnapshot } from "../../../../src/router/dashboard/snapshot.js";
import { server, snapshot } from "./fixtures.js";

function counterFeed(opts: { historySeconds?: number; rateWindowMs?: number } = {}) {
  const clock = new FakeClock();
  let requests = 0;
  let calls = 0;
  const feed = createDashboardFeed({
    clock,
    wallClockMs: () => 1_700_000_000_000 + clock.now(),
    getSnapshot: (): RouterSnapshot => {
      calls++;
      return snapshot([server("http://a", { requestsTotal: requests })]);
    },
    ...opts,
  });
  return {
    feed,
    clock,
    calls: () => calls,
    tick(newRequests: number) {
      clock.advance(1000);
      requests += newRequests;
      return feed.sample()!;
    },
  };
}

void test("rates are taken over the rate window, not over one noisy second", () => {
  const f = counterFeed({ rateWindowMs: 3000 });
  f.feed.sample();
  f.tick(100);
  f.tick(100);
  f.tick(100);
  const frame = f.tick(500);
  // The window spans the last three seconds: (100 + 100 + 500) / 3.
  assert.equal(Math.round(frame.pools[0]!.servers[0]!.requestRate), 233);
  assert.equal(frame.rateWindowSeconds, 3);
});

void test("history is a bounded ring of one point per sample, oldest first", () => {
  const f = counterFeed({ historySeconds: 5 });
  for (let i = 0; i < 12; i++) f.tick(10);
  const points = f.feed.history();
  assert.equal(points.length, 5);
  assert.ok(points[0]!.t < points[4]!.t);
  const json = JSON.parse(f.feed.historyJson()) as {
    intervalMs: number;
    points: unknown[];
    latest: { t: number };
  };
  assert.equal(json.points.length, 5);
  assert.equal(json.intervalMs, 1000);
  assert.equal(json.latest.t, points[4]!.t);
});

void test("listeners get each sample serialized once; a throwing snapshot skips one sample", () => {
  const errors: unknown[] = [];
  let fail = false;
  const feed = createDashboardFeed({
    clock: new FakeClock(),
    getSnapshot: () => {
      if (fail) throw new Error("boom");
      return snapshot([server("http://a")]);
    },
    onError: (e) => errors.push(e),
  });
  const seen: string[] = [];
  const off = feed.subscribe((frame, json) => {
    assert.equal(JSON.parse(json).t, frame.t);
    seen.push(json);
  });
  feed.sample();
  fail = true;
  assert.equal(feed.sample(), undefined);
  assert.equal(errors.length, 1);
  fail = false;
  off();
  feed.sample();
  assert.equal(seen.length, 1);
  assert.equal(feed.latestJson(), JSON.stringify(feed.latest()));
});

void test("start samples at once and then on its timer; stop stops it", async () => {
  let calls = 0;
  const feed = createDashboardFeed({
    intervalMs: 20,
    getSnapshot: () => {
      calls++;
      return snapshot([]);
    },
  });
  feed.start();
  feed.start();
  assert.equal(calls, 1);
  const deadline = Date.now() + 5000;
  while (calls < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  feed.stop();
  assert.ok(calls >= 3);
  const after = calls;
  await new Promise((r) => setTimeout(r, 60));
  assert.equal(calls, after);
});
