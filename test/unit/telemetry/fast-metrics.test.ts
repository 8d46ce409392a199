import assert from "node:assert/strict";
import { test, type TestContext } from "node:test";
import type { Attributes } from "@opentelemetry/api";
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
  type MetricData,
  type MetricProducer,
  type ResourceMetrics,
} from "@opentelemetry/sdk-metrics";
import { FastMetricRegistry, mergeScopes } from "../../../src/telemetry/fast-metrics.js";

const BOUNDS = [0.001, 0.01, 0.1, 1];

function reader(temporality: AggregationTemporality, producers: MetricProducer[], limit?: number) {
  return new PeriodicExportingMetricReader({
    exporter: new InMemoryMetricExporter(temporality),
    exportIntervalMillis: 3_600_000,
    metricProducers: producers,
    ...(limit !== undefined ? { cardinalityLimits: { default: limit } } : {}),
  });
}

/** The same instruments twice: as SDK instruments, and in plain JS published by producers. */
function pair(t: TestContext, temporality: AggregationTemporality, limit?: number) {
  const sdkReader = reader(temporality, [], limit);
  const sdk = new MeterProvider({ readers: [sdkReader] });
  t.after(() => sdk.shutdown());
  const meter = sdk.getMeter("tasklb", "1.2.3");
  const fast = new FastMetricRegistry({ name: "tasklb", version: "1.2.3" });
  const producer = fast.producer();
  const fastReader = reader(temporality, [producer], limit);
  producer.bind(fastReader);
  // A provider with no instruments of its own: only the producer's output.
  const host = new MeterProvider({ readers: [fastReader] });
  t.after(() => host.shutdown());

  const sdkCounter = meter.createCounter("c", { description: "a counter" });
  const sdkHist = meter.createHistogram("h", {
    description: "a histogram",
    unit: "s",
    advice: { explicitBucketBoundaries: BOUNDS },
  });
  const fastCounter = fast.counter("c", { description: "a counter" });
  const fastHist = fast.histogram("h", { description: "a histogram", unit: "s", boundaries: BOUNDS });
  return {
    add(v: number, a: Attributes) {
      sdkCounter.add(v, a);
      fastCounter.series(a).add(v);
    },
    record(v: number, a: Attributes) {
      sdkHist.record(v, a);
      fastHist.series(a).record(v);
    },
    async collect(): Promise<[MetricData[], MetricData[]]> {
      const a = await sdkReader.collect();
      const b = await fastReader.collect();
      return [
        a.resourceMetrics.scopeMetrics.flatMap((s) => s.metrics),
        b.resourceMetrics.scopeMetrics.flatMap((s) => s.metrics),
      ];
    },
  };
}

/** What an exporter reads from a metric, in a comparable form. */
function shape(metrics: MetricData[]) {
  return metrics
    .map((m) => ({
      name: m.descriptor.name,
      description: m.descriptor.description,
      unit: m.descriptor.unit,
      valueType: m.descriptor.valueType,
      temporality: m.aggregationTemporality,
      type: m.dataPointType,
      monotonic: "isMonotonic" in m ? m.isMonotonic : undefined,
      points: m.dataPoints
        .map((p) => ({
          attributes: JSON.stringify(Object.entries(p.attributes).sort()),
          startTime: p.startTime,
          endTime: p.endTime,
          value: p.value,
        }))
        .sort((x, y) => (x.attributes < y.attributes ? -1 : 1)),
    }))
    .sort((x, y) => (x.name < y.name ? -1 : 1));
}

for (const temporality of [AggregationTemporality.CUMULATIVE, AggregationTemporality.DELTA]) {
  const name = temporality === AggregationTemporality.DELTA ? "delta" : "cumulative";
  void test(`${name}: plain-JS counters and histograms publish exactly what the SDK's instruments do`, async (t) => {
    let now = 1_700_000_000_000;
    t.mock.method(Date, "now", () => now);
    const p = pair(t, temporality);
    const A = { status_class: "2xx" };
    const B = { status_class: "5xx", server: "x" };

    // Nothing recorded: no metric at all.
    let [sdk, fast] = await p.collect();
    assert.deepEqual(shape(fast), shape(sdk));
    assert.equal(fast.length, 0);

    now += 10;
    p.add(1, A);
    p.record(0.005, A);
    now += 5;
    p.add(2, B);
    p.record(0.0001, B);
    p.record(0.01, B); // on a boundary: that bucket (upper-inclusive)
    p.record(7, B); // past the last boundary
    p.add(-1, A); // counters drop negative increments
    now += 100;
    [sdk, fast] = await p.collect();
    assert.equal(fast.length, 2);
    assert.deepEqual(shape(fast), shape(sdk));

    // Only A is recorded in the next interval; then nothing; then B again.
    now += 1000;
    p.add(3, A);
    p.record(0.2, A);
    now += 1000;
    [sdk, fast] = await p.collect();
    assert.deepEqual(shape(fast), shape(sdk));
    now += 1000;
    [sdk, fast] = await p.collect();
    assert.deepEqual(shape(fast), shape(sdk));
    now += 7;
    p.add(1, B);
    p.record(0.5, B);
    now += 1000;
    [sdk, fast] = await p.collect();
    assert.deepEqual(shape(fast), shape(sdk));
  });

  void test(`${name}: past the reader's cardinality limit, attribute sets overflow as in the SDK`, async (t) => {
    let now = 1_700_000_000_000;
    t.mock.method(Date, "now", () => now);
    const p = pair(t, temporality, 4);
    for (let i = 0; i < 6; i++) {
      now += 1;
      p.add(1, { server: `s${i}` });
      p.record(0.05, { server: `s${i}` });
    }
    let [sdk, fast] = await p.collect();
    assert.deepEqual(shape(fast), shape(sdk));
    assert.ok(JSON.stringify(shape(fast)).includes("otel.metric.overflow"));
    // A new interval: earlier sets count again from zero.
    for (const i of [5, 0, 1, 2]) {
      now += 1;
      p.add(2, { server: `s${i}` });
    }
    now += 50;
    [sdk, fast] = await p.collect();
    assert.deepEqual(shape(fast), shape(sdk));
  });
}

void test("scope entries of the same scope are merged into one, others kept apart and in order", () => {
  const m = (name: string) => ({ name }) as unknown as MetricData;
  const rm = {
    resource: {},
    scopeMetrics: [
      { scope: { name: "tasklb", version: "1" }, metrics: [m("a")] },
      { scope: { name: "tasklb" }, metrics: [m("b")] },
      { scope: { name: "tasklb", version: "1" }, metrics: [m("c")] },
    ],
  } as unknown as ResourceMetrics;
  const out = mergeScopes(rm);
  assert.deepEqual(
    out.scopeMetrics.map((s) => [
      s.scope.version,
      s.metrics.map((x) => x.descriptor ?? (x as unknown as { name: string }).name),
    ]),
    [
      ["1", ["a", "c"]],
      [undefined, ["b"]],
    ],
  );
  assert.equal(rm.scopeMetrics.length, 3, "the input is not changed");
});
