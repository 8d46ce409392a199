/**
 * Polls made redundant by piggybacked reports are skipped, but never at the price of missing a
 * server that stops answering. Real sidecar-like servers on loopback: a data port that piggybacks
 * `x-tasklb-load` on every response and a control port that serves `/v1/load` and counts polls.
 */
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { test, type TestContext } from "node:test";
import { Agent, request } from "undici";
import { createPoller, MAX_POLL_GAP_MS } from "../../../src/router/poller.js";
import { monotonicClock } from "../../../src/shared/clock.js";
import { encodeLoadHeader, LOAD_HEADER, LOAD_REPORT_VERSION } from "../../../src/shared/load-report.js";
import { startReportServer, startRouter, waitFor } from "../../helpers/router.js";

interface FakeSidecar {
  readonly dataUrl: string;
  readonly controlUrl: string;
  /** `/v1/load` requests received. */
  polls: number;
  /** Data requests answered. */
  served: number;
  epoch: string;
  /** Stop answering anything (data and control): the process hangs. */
  freeze(): void;
}

async function listen(t: TestContext, handler: (req: IncomingMessage, res: ServerResponse) => void) {
  const server: Server = createServer(handler);
  const held = new Set<ServerResponse>();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(
    () =>
      new Promise<void>((resolve) => {
        for (const r of held) r.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, held };
}

async function startFakeSidecar(t: TestContext): Promise<FakeSidecar> {
  const started = performance.now();
  let seq = 0;
  let frozen = false;
  let calls = 0;
  const report = (s: FakeSidecar) => ({
    version: LOAD_REPORT_VERSION,
    epoch: s.epoch,
    seq: ++seq,
    uptimeSeconds: (performance.now() - started) / 1000,
    state: "serving" as const,
    appReachable: true,
    dataUrl: s.dataUrl,
    totals: { taskSeconds: calls * 0.001, topLevelCalls: calls, nestedCalls: 0, errors: 0 },
    live: { inFlight: 0, inFlightTopLevel: 0, inFlightAgeSeconds: 0, cpu: 0.1, cores: 2 },
  });
  const s: FakeSidecar = {
    dataUrl: "",
    controlUrl: "",
    polls: 0,
    served: 0,
    epoch: "epoch-1",
    freeze: () => {
      frozen = true;
    },
  };
  const data = await listen(t, (req, res) => {
    if (frozen) return void data.held.add(res);
    calls++;
    s.served++;
    res.writeHead(200, { [LOAD_HEADER]: encodeLoadHeader(report(s)), "content-length": "2" }).end("ok");
  });
  const control = await listen(t, (req, res) => {
    if (frozen) return void control.held.add(res);
    s.polls++;
    const body = JSON.stringify(report(s));
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
    res.end(body);
  });
  Object.assign(s, { dataUrl: data.url, controlUrl: control.url });
  return s;
}

/** Sequential requests through the router for `ms` (bounded by count too); each gives up after 300 ms. */
async function traffic(url: string, ms: number, agent: Agent): Promise<number> {
  const until = performance.now() + ms;
  let ok = 0;
  for (let i = 0; i < 2000 && performance.now() < until; i++) {
    try {
      const res = await request(`${url}/x`, { dispatcher: agent, signal: AbortSignal.timeout(300) });
      await res.body.dump();
      if (res.statusCode === 200) ok++;
    } catch {
      // a request to a frozen server: abandoned
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  return ok;
}

void test("the poller skips a server whose piggybacked report is fresh, and polls it at least every MAX_POLL_GAP_MS", async (t) => {
  const fresh = await startReportServer(t);
  const stale = await startReportServer(t);
  const polled: Record<string, number> = {};
  const poller = createPoller(
    { pollIntervalMs: 40, pollTimeoutMs: 500, token: undefined },
    {
      clock: monotonicClock,
      onSuccess: (id) => (polled[id] = (polled[id] ?? 0) + 1),
      onFailure: () => undefined,
      // "fresh" always has a report that has just arrived; "stale" one from long ago.
      heardAt: (id) => (id === "fresh" ? monotonicClock.now() : monotonicClock.now() - 10_000),
    },
  );
  t.after(() => poller.close());
  await Promise.all([
    poller.add({ id: "fresh", controlUrl: fresh.url }),
    poller.add({ id: "stale", controlUrl: stale.url }),
  ]);
  const startedAt = performance.now();
  await waitFor(() => fresh.polls >= 3, "the fresh server's forced polls", 10_000);
  const elapsed = performance.now() - startedAt;
  // Two forced polls after the first: at least about 2 × MAX_POLL_GAP_MS apart from it.
  assert.ok(elapsed >= 1.5 * MAX_POLL_GAP_MS, `fresh server polled 3 times within ${elapsed.toFixed(0)} ms`);
  // Meanwhile the other one was polled on schedule (every 40 ms; a loaded machine may stretch that).
  assert.ok(stale.polls >= 10, `stale server polled ${stale.polls} times`);
  assert.ok(stale.polls > 3 * fresh.polls, `stale ${stale.polls} vs fresh ${fresh.polls} polls`);
});

void test("under steady traffic a sidecar gets far fewer polls; idle, it is polled on schedule", async (t) => {
  const sc = await startFakeSidecar(t);
  const h = await startRouter(t, [
    "--server",
    `${sc.dataUrl}=${sc.controlUrl}`,
    "--poll-interval-ms",
    "50",
    "--ease-in-ms",
    "0",
  ]);
  const agent = new Agent({ connections: 1 });
  t.after(() => agent.close());

  const idleFrom = sc.polls;
  await new Promise((r) => setTimeout(r, 1500));
  const idlePolls = sc.polls - idleFrom;

  const busyFrom = sc.polls;
  const served = await traffic(h.url, 1500, agent);
  const busyPolls = sc.polls - busyFrom;

  assert.ok(served >= 20, `only ${served} requests served`);
  assert.ok(idlePolls >= 10, `idle sidecar polled only ${idlePolls} times in 1.5 s at a 50 ms interval`);
  assert.ok(
    busyPolls * 3 <= idlePolls,
    `polls under traffic (${busyPolls}) should be well under a third of idle ones (${idlePolls})`,
  );
});

void test("a server that stops answering under traffic is still polled and taken out after max-misses", async (t) => {
  const a = await startFakeSidecar(t);
  const b = await startFakeSidecar(t);
  const h = await startRouter(t, [
    "--server",
    `${a.dataUrl}=${a.controlUrl},${b.dataUrl}=${b.controlUrl}`,
    "--poll-interval-ms",
    "50",
    "--poll-timeout-ms",
    "150",
    "--max-misses",
    "3",
    "--ease-in-ms",
    "0",
    "--algorithm",
    "round-robin",
  ]);
  const agent = new Agent({ connections: 4 });
  t.after(() => agent.close());
  const member = h.router.pools[0]!.pool.get(a.dataUrl)!;

  await traffic(h.url, 600, agent);
  assert.ok(a.served > 0 && b.served > 0, "both servers took traffic");
  assert.equal(member.state, "ready");

  a.freeze();
  const servedByB = b.served;
  const trafficDone = traffic(h.url, 3000, agent);
  await waitFor(() => member.state === "out", "the frozen server out of rotation", 5000, 20);
  assert.match(member.reason, /^3 polls failed \(last: timed out after 150 ms\)/);
  await trafficDone;
  assert.ok(b.served > servedByB, "the other server kept serving");
});

void test("a restart seen only in piggybacked reports is confirmed by a poll (easing, new epoch)", async (t) => {
  const sc = await startFakeSidecar(t);
  const h = await startRouter(t, [
    "--server",
    `${sc.dataUrl}=${sc.controlUrl}`,
    "--poll-interval-ms",
    "50",
    "--ease-in-ms",
    "60000",
  ]);
  const agent = new Agent({ connections: 1 });
  t.after(() => agent.close());
  const member = h.router.pools[0]!.pool.get(sc.dataUrl)!;
  await traffic(h.url, 300, agent);
  const eased = member.readySinceMs;

  sc.epoch = "epoch-2";
  const trafficDone = traffic(h.url, 3000, agent);
  await waitFor(() => member.lastReport?.epoch === "epoch-2", "a poll reporting the new epoch", 5000, 20);
  assert.equal(member.state, "easing");
  assert.match(member.reason, /new epoch/);
  assert.ok(member.readySinceMs > eased, "the ease-in started over");
  await trafficDone;
});
