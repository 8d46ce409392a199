/**
 * A real Prometheus (Debian's `prometheus`, started on loopback with its own config and data dir)
 * scrapes a running sidecar's control port and a router's admin port while traffic flows, and
 * its query API shows every server's task-seconds increasing. Fails, with a message saying how to
 * install it, when prometheus is missing.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { LoadReport } from "../../src/shared/load-report.js";
import { silentLogger } from "../../src/shared/log.js";
import { metricsAdminRoute } from "../../src/telemetry/metrics-route.js";
import { routerServersFromSnapshot, type RouterServerMetrics } from "../../src/telemetry/metrics.js";
import { setupTelemetry } from "../../src/telemetry/setup.js";
import { startTestApp } from "../helpers/app.js";
import { startPrometheus } from "../helpers/prometheus.js";
import { startRouter, waitInRotation } from "../helpers/router.js";
import { send, startSidecar } from "../helpers/sidecar.js";

void test("Prometheus scrapes the sidecar and the router and sees task-seconds increase", async (t) => {
  const app = await startTestApp();
  t.after(() => app.close());
  const late: { report?: () => LoadReport; servers?: () => RouterServerMetrics[] } = {};
  const sidecarTel = setupTelemetry({
    role: "sidecar",
    env: {},
    logger: silentLogger,
    getSidecarReport: () => late.report?.(),
  });
  t.after(() => sidecarTel.shutdown());
  const sc = await startSidecar(
    t,
    app.url,
    {},
    {
      observer: sidecarTel.sidecarObserver,
      controlRoutes: { "/metrics": { handle: sidecarTel.metricsHandler } },
    },
  );
  late.report = () => sc.sidecar.report();

  const routerTel = setupTelemetry({
    role: "router",
    env: {},
    logger: silentLogger,
    getRouterServers: () => late.servers?.(),
  });
  t.after(() => routerTel.shutdown());
  const r = await startRouter(t, ["--server", `${sc.url}=${sc.controlUrl}`], {
    observer: routerTel.routerObserver,
    adminRoutes: [metricsAdminRoute(routerTel.metricsHandler, undefined)],
  });
  late.servers = () => routerServersFromSnapshot(r.router.snapshot());
  await waitInRotation(r.adminUrl, [sc.url]);

  const prom = await startPrometheus([
    { job: "tasklb-sidecar", address: new URL(sc.controlUrl).host },
    { job: "tasklb-router", address: new URL(r.adminUrl).host },
  ]);
  t.after(() => prom.close());

  // Traffic for the whole test, bounded in count and time.
  let stop = false;
  let sent = 0;
  let failed = 0;
  const load = (async () => {
    const deadline = performance.now() + 60_000;
    while (!stop && sent < 3000 && performance.now() < deadline) {
      const res = await send(r.url, { path: "/slow?ms=20" }).catch(() => undefined);
      if (res?.status !== 200) failed++;
      sent++;
    }
  })();
  t.after(async () => {
    stop = true;
    await load;
  });

  const up = await prom.waitFor("up", (res) => res.length === 2 && res.every((x) => x.value[1] === "1"));
  assert.deepEqual(
    up.map((x) => [x.metric.job, x.value[1]]).sort(),
    [
      ["tasklb-router", "1"],
      ["tasklb-sidecar", "1"],
    ],
    "both targets scraped successfully",
  );

  const value = (res: { value: [number, string] }[]) => Number(res[0]?.value[1] ?? NaN);
  const first = await prom.waitFor("tasklb_sidecar_task_seconds_total", (res) => value(res) > 0);
  assert.ok(value(first) > 0, "task-seconds scraped from the sidecar");
  const later = await prom.waitFor("tasklb_sidecar_task_seconds_total", (res) => value(res) > value(first));
  assert.ok(value(later) > value(first), `task-seconds increased: ${value(first)} → ${value(later)}`);

  // The rate a dashboard would graph: busy top-level calls per second, about 1 with one client.
  const rate = await prom.waitFor("rate(tasklb_sidecar_task_seconds_total[5s])", (res) => value(res) > 0);
  assert.ok(
    value(rate) > 0.05 && value(rate) < 1.5,
    `task-seconds per second ≈ 1 with one sequential client: ${value(rate)}`,
  );

  // The router reports every server's task-seconds too, and its own request counts.
  const perServer = await prom.waitFor("tasklb_router_server_task_seconds_total", (res) => value(res) > 0);
  assert.equal(perServer[0]?.metric.server, sc.url);
  const requests = await prom.waitFor("sum(tasklb_router_requests_total)", (res) => value(res) > 0);
  assert.ok(value(requests) > 0);
  stop = true;
  await load;
  assert.ok(sent > 0);
  assert.equal(failed, 0, "every request succeeded");
});
