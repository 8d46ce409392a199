import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import type { LoadReport } from "../../../src/shared/load-report.js";
import { silentLogger } from "../../../src/shared/log.js";
import { newTraceId } from "../../../src/shared/trace-context.js";
import { metricsAdminRoute } from "../../../src/telemetry/metrics-route.js";
import {
  pollFailureLabel,
  routerServersFromSnapshot,
  type RouterServerMetrics,
} from "../../../src/telemetry/metrics.js";
import { setupTelemetry, type MetricsHandler } from "../../../src/telemetry/setup.js";
import { promtoolCheckMetrics } from "../../helpers/prometheus.js";

async function serve(
  t: { after(fn: () => Promise<void> | void): void },
  handler: MetricsHandler,
): Promise<string> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Parses `name{labels} value` lines into a map from `name{labels}` to value. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const i = line.lastIndexOf(" ");
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

function report(seq: number, taskSeconds: number): LoadReport {
  return {
    version: 1,
    epoch: "e1",
    seq,
    uptimeSeconds: 10,
    state: "serving",
    appReachable: true,
    dataUrl: "http://127.0.0.1:8080",
    totals: { taskSeconds, topLevelCalls: 7, nestedCalls: 2, errors: 1 },
    live: { inFlight: 3, inFlightTopLevel: 2, inFlightAgeSeconds: 0.5, cpu: 0.25, cores: 4 },
  };
}

void test("sidecar /metrics: report totals as counters, live figures as gauges, a duration histogram; promtool accepts it", async (t) => {
  let seq = 100; // the sidecar's report() takes the next seq on every call, as for a poll
  let taskSeconds = 1.25;
  const tel = setupTelemetry({
    role: "sidecar",
    env: { OTEL_SERVICE_NAME: "checkout-sidecar", OTEL_RESOURCE_ATTRIBUTES: "deployment.environment=test" },
    logger: silentLogger,
    getSidecarReport: () => report(++seq, taskSeconds),
  });
  t.after(() => tel.shutdown());
  const o = tel.sidecarObserver!;
  const traceId = newTraceId();
  const base = {
    method: "GET",
    target: "/",
    traceId,
    parentSpanId: undefined,
    sampled: true,
    remoteAddress: undefined,
    remotePort: undefined,
    serverAddress: undefined,
    serverPort: undefined,
    upgrade: false,
  };
  o.onCallStart(base)!.end({ durationMs: 20, topLevel: true, status: 200, outcome: "ok" });
  o.onCallStart(base)!.end({ durationMs: 3, topLevel: false, status: 200, outcome: "ok" });
  o.onCallStart(base)!.end({ durationMs: 700, topLevel: true, status: 502, outcome: "UPSTREAM_ERROR" });

  const url = await serve(t, tel.metricsHandler);
  const res = await fetch(`${url}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  const s = samples(text);
  assert.equal(s.get("tasklb_sidecar_task_seconds_total"), 1.25);
  assert.equal(s.get("tasklb_sidecar_top_level_calls_total"), 7);
  assert.equal(s.get("tasklb_sidecar_nested_calls_total"), 2);
  assert.equal(s.get("tasklb_sidecar_errors_total"), 1);
  // seq 101 on the first read, minus that one read of telemetry's own.
  assert.equal(s.get("tasklb_sidecar_load_reports_total"), 100);
  assert.equal(s.get("tasklb_sidecar_in_flight_calls"), 3);
  assert.equal(s.get('tasklb_sidecar_state{state="serving"}'), 1);
  assert.equal(s.get('tasklb_sidecar_call_duration_seconds_count{top_level="true",status_class="2xx"}'), 1);
  assert.equal(s.get('tasklb_sidecar_call_duration_seconds_count{top_level="false",status_class="2xx"}'), 1);
  assert.equal(
    s.get('tasklb_sidecar_call_duration_seconds_bucket{top_level="true",status_class="5xx",le="0.5"}'),
    0,
  );
  assert.equal(
    s.get('tasklb_sidecar_call_duration_seconds_bucket{top_level="true",status_class="5xx",le="1"}'),
    1,
  );
  assert.match(text, /target_info\{[^}]*service_name="checkout-sidecar"/);
  assert.match(text, /target_info\{[^}]*deployment_environment="test"/);
  assert.match(text, /# TYPE tasklb_sidecar_task_seconds_total counter/);

  const check = promtoolCheckMetrics(text);
  assert.ok(check.ok, `promtool check metrics:\n${check.output}`);

  // Counters follow the report between scrapes.
  taskSeconds = 2.5;
  const again = samples(await (await fetch(`${url}/metrics`)).text());
  assert.equal(again.get("tasklb_sidecar_task_seconds_total"), 2.5);
  assert.equal(again.get("tasklb_sidecar_load_reports_total"), 100);

  const post = await fetch(`${url}/metrics`, { method: "POST" });
  assert.equal(post.status, 405);
});

void test("router /metrics: requests, picks, failovers, retries, polls, and per-server score and state", async (t) => {
  const servers: RouterServerMetrics[] = [
    {
      id: "http://10.0.0.1:8080",
      pool: "default",
      state: "ready",
      score: 0.5,
      inFlight: 2,
      busy: 1.5,
      latencyMs: 12,
      taskSeconds: 30,
    },
    { id: "http://10.0.0.2:8080", pool: "default", state: "out", inFlight: 0 },
  ];
  const tel = setupTelemetry({
    role: "router",
    env: {},
    logger: silentLogger,
    getRouterServers: () => servers,
  });
  t.after(() => tel.shutdown());
  const o = tel.routerObserver!;
  const start = {
    method: "GET",
    target: "/",
    traceId: newTraceId(),
    parentSpanId: undefined,
    sampled: true,
    remoteAddress: undefined,
    pool: "default",
    algorithm: "adaptive",
  };
  const a = o.onRequestStart(start)!;
  a.decision("http://10.0.0.2:8080", 2);
  a.failover("http://10.0.0.2:8080", "UPSTREAM_UNREACHABLE");
  a.decision("http://10.0.0.1:8080", 0.5);
  a.end({ durationMs: 30, status: 200, outcome: "ok", server: "http://10.0.0.1:8080", attempts: 2 });
  const b = o.onRequestStart(start)!;
  b.end({ durationMs: 1, status: 503, outcome: "NO_SERVER", server: undefined, attempts: 0 });
  o.onPoll?.({ server: "http://10.0.0.1:8080", durationMs: 2, error: undefined });
  o.onPoll?.({ server: "http://10.0.0.2:8080", durationMs: 500, error: "timed out after 500 ms" });
  o.onPoll?.({ server: "http://10.0.0.2:8080", durationMs: 1, error: "ECONNREFUSED" });

  const url = await serve(t, tel.metricsHandler);
  const text = await (await fetch(`${url}/metrics`)).text();
  const s = samples(text);
  assert.equal(s.get('tasklb_router_requests_total{server="http://10.0.0.1:8080",status_class="2xx"}'), 1);
  assert.equal(s.get('tasklb_router_requests_total{server="none",status_class="5xx"}'), 1);
  assert.equal(s.get('tasklb_router_picks_total{algorithm="adaptive",server="http://10.0.0.1:8080"}'), 1);
  assert.equal(s.get('tasklb_router_picks_total{algorithm="adaptive",server="http://10.0.0.2:8080"}'), 1);
  assert.equal(
    s.get('tasklb_router_failovers_total{server="http://10.0.0.2:8080",code="UPSTREAM_UNREACHABLE"}'),
    1,
  );
  assert.equal(s.get("tasklb_router_retries_total"), 1);
  assert.equal(s.get("tasklb_router_poll_duration_seconds_count"), 3);
  assert.equal(s.get('tasklb_router_poll_failures_total{server="http://10.0.0.2:8080",reason="timeout"}'), 1);
  assert.equal(
    s.get('tasklb_router_poll_failures_total{server="http://10.0.0.2:8080",reason="ECONNREFUSED"}'),
    1,
  );
  assert.equal(s.get('tasklb_router_server_score{server="http://10.0.0.1:8080",pool="default"}'), 0.5);
  assert.equal(s.get('tasklb_router_server_score{server="http://10.0.0.2:8080",pool="default"}'), undefined);
  assert.equal(
    s.get('tasklb_router_server_state{server="http://10.0.0.2:8080",pool="default",state="out"}'),
    1,
  );
  assert.equal(
    s.get('tasklb_router_server_latency_seconds{server="http://10.0.0.1:8080",pool="default"}'),
    0.012,
  );
  assert.equal(
    s.get('tasklb_router_server_task_seconds_total{server="http://10.0.0.1:8080",pool="default"}'),
    30,
  );
  const check = promtoolCheckMetrics(text);
  assert.ok(check.ok, `promtool check metrics:\n${check.output}`);

  // A server that leaves the pool stops being reported.
  servers.pop();
  const later = samples(await (await fetch(`${url}/metrics`)).text());
  assert.equal(
    later.get('tasklb_router_server_state{server="http://10.0.0.2:8080",pool="default",state="out"}'),
    undefined,
  );
});

void test("the router admin route serves /metrics only, behind the shared token", async (t) => {
  const tel = setupTelemetry({ role: "router", env: {}, logger: silentLogger });
  t.after(() => tel.shutdown());
  const route = metricsAdminRoute(tel.metricsHandler, "s3cret");
  const url = await serve(t, (req, res) => {
    if (!route(req, res, new URL(req.url ?? "/", "http://x"))) res.writeHead(404).end();
  });
  assert.equal((await fetch(`${url}/metrics`)).status, 401);
  const ok = await fetch(`${url}/metrics`, { headers: { authorization: "Bearer s3cret" } });
  assert.equal(ok.status, 200);
  assert.match(await ok.text(), /target_info/);
  assert.equal((await fetch(`${url}/other`)).status, 404);
});

void test("OTEL_SDK_DISABLED: /metrics answers 404", async (t) => {
  const tel = setupTelemetry({ role: "sidecar", env: { OTEL_SDK_DISABLED: "true" }, logger: silentLogger });
  const url = await serve(t, tel.metricsHandler);
  const res = await fetch(`${url}/metrics`);
  assert.equal(res.status, 404);
  await res.text();
});

void test("snapshot adapter and poll failure labels", () => {
  const list = routerServersFromSnapshot({
    servers: [
      {
        dataUrl: "http://a:1",
        pool: "p",
        state: "easing",
        score: null,
        lastReport: { totals: { taskSeconds: 4 } },
        rates: null,
        router: { inFlight: 1, latencyMs: null },
      },
    ],
  });
  assert.deepEqual(list, [
    {
      id: "http://a:1",
      pool: "p",
      state: "easing",
      score: undefined,
      inFlight: 1,
      busy: undefined,
      latencyMs: undefined,
      taskSeconds: 4,
    },
  ]);
  assert.equal(pollFailureLabel("UND_ERR_CONNECT_TIMEOUT"), "timeout");
  assert.equal(pollFailureLabel("HTTP 401"), "error");
  assert.equal(pollFailureLabel("invalid"), "invalid");
});
