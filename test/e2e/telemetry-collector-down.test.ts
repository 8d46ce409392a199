/**
 * A collector that is down (connection refused) or stuck (accepts and never answers) must not be
 * noticed by anyone sending requests: every request succeeds, latency stays where it is without
 * telemetry, spans that cannot be queued are dropped and counted, and shutdown (and so the
 * process exit) does not wait for the collector.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { test, type TestContext } from "node:test";
import { silentLogger } from "../../src/shared/log.js";
import { setupTelemetry } from "../../src/telemetry/setup.js";
import { startTestApp } from "../helpers/app.js";
import { startOtlpReceiver } from "../helpers/otlp-receiver.js";
import { send, startSidecar } from "../helpers/sidecar.js";

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function collectorUrl(t: TestContext, mode: "refused" | "hang"): Promise<string> {
  if (mode === "hang") {
    const r = await startOtlpReceiver({ mode: "hang" });
    t.after(() => r.close());
    return r.url;
  }
  // A port that was just closed: connections are refused.
  const r = await startOtlpReceiver();
  await r.close();
  return r.url;
}

for (const mode of ["refused", "hang"] as const) {
  void test(`collector ${mode}: requests succeed, latency is unaffected, spans are dropped and counted`, async (t) => {
    const app = await startTestApp();
    t.after(() => app.close());
    const url = await collectorUrl(t, mode);
    const tel = setupTelemetry({
      role: "sidecar",
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: url,
        // Export as often as possible and keep the queue small: the worst case for the request path.
        OTEL_BSP_SCHEDULE_DELAY: "10",
        OTEL_BSP_MAX_QUEUE_SIZE: "20",
        OTEL_METRIC_EXPORT_INTERVAL: "100",
      },
      logger: silentLogger,
      shutdownTimeoutMs: 1000,
    });
    assert.equal(tel.tracing, true);
    const traced = await startSidecar(
      t,
      app.url,
      {},
      { observer: tel.sidecarObserver, controlRoutes: { "/metrics": { handle: tel.metricsHandler } } },
    );
    const plain = await startSidecar(t, app.url);

    // Interleaved, so both see the same machine load.
    const withTelemetry: number[] = [];
    const without: number[] = [];
    for (let i = 0; i < 120; i++) {
      for (const [base, into] of [
        [traced.url, withTelemetry],
        [plain.url, without],
      ] as const) {
        const t0 = performance.now();
        const res = await send(base, { path: "/echo" });
        into.push(performance.now() - t0);
        assert.equal(res.status, 200);
      }
    }
    const mWith = median(withTelemetry);
    const mWithout = median(without);
    assert.ok(
      mWith < mWithout * 3 + 5,
      `median latency with a ${mode} collector ${mWith.toFixed(2)} ms vs ${mWithout.toFixed(2)} ms without telemetry`,
    );

    const metrics = await (await fetch(`${traced.controlUrl}/metrics`)).text();
    const dropped = Number(/^tasklb_telemetry_spans_dropped_total (\S+)$/m.exec(metrics)?.[1]);
    const failed = Number(
      /^tasklb_telemetry_spans_exported_total\{result="error"\} (\S+)$/m.exec(metrics)?.[1],
    );
    if (mode === "hang") {
      // The one export in flight never ends, so the queue fills and the rest are dropped.
      assert.ok(dropped > 0, `spans dropped and counted: ${dropped}`);
    } else {
      assert.ok(dropped + failed > 0, `spans dropped (${dropped}) or failed (${failed}) are counted`);
    }

    const t0 = performance.now();
    await tel.shutdown();
    const took = performance.now() - t0;
    assert.ok(took < 4000, `shutdown took ${took.toFixed(0)} ms with a ${mode} collector (bound 1000 ms)`);
  });
}

void test("a process whose collector hangs still exits promptly after telemetry shutdown", async (t) => {
  const receiver = await startOtlpReceiver({ mode: "hang" });
  t.after(() => receiver.close());
  const setupUrl = new URL("../../src/telemetry/setup.js", import.meta.url).href;
  const logUrl = new URL("../../src/shared/log.js", import.meta.url).href;
  // A span is exported at shutdown (the batch delay is long), to a collector that never answers.
  const script = `
    const { setupTelemetry } = await import(${JSON.stringify(setupUrl)});
    const { silentLogger } = await import(${JSON.stringify(logUrl)});
    const tel = setupTelemetry({ role: "sidecar", env: { OTEL_EXPORTER_OTLP_ENDPOINT: ${JSON.stringify(receiver.url)} },
      logger: silentLogger, shutdownTimeoutMs: 500 });
    const scope = tel.sidecarObserver.onCallStart({ method: "GET", target: "/", traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
      parentSpanId: undefined, sampled: true, remoteAddress: undefined, remotePort: undefined,
      serverAddress: undefined, serverPort: undefined, upgrade: false });
    scope.end({ durationMs: 1, topLevel: true, status: 200, outcome: "ok" });
    await tel.shutdown();
  `;
  const t0 = performance.now();
  const child = spawn(process.execPath, ["--input-type=module", "-e", script], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const killer = setTimeout(() => child.kill("SIGKILL"), 20_000);
  const code = await new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
  clearTimeout(killer);
  const took = performance.now() - t0;
  assert.equal(code, 0, stderr);
  assert.ok(
    receiver.requests.some((r) => r.path === "/v1/traces"),
    "the export reached the (stuck) collector",
  );
  // The OTLP timeout is 10 s; exiting well before it means the stuck connection was cut.
  t.diagnostic(`exited after ${took.toFixed(0)} ms`);
  assert.ok(took < 8000, `the process exited after ${took.toFixed(0)} ms`);
});
