/**
 * Keeps exporter trouble away from requests and visible to operators: exporter wrappers that count
 * results and log only when exporting starts or stops failing (a down collector must not flood the
 * log), and an adapter that turns the BatchSpanProcessor's "queue full, span dropped" signal into
 * our own counter. Export already runs off the request path (batched, on a timer, with a timeout);
 * a full queue drops spans instead of blocking.
 */
import {
  createNoopMeter,
  type Attributes,
  type Counter,
  type Meter,
  type MeterProvider,
} from "@opentelemetry/api";
import { ExportResultCode, type ExportResult } from "@opentelemetry/core";
import type { ReadableSpan, SpanExporter } from "@opentelemetry/sdk-trace-base";
import type { PushMetricExporter, ResourceMetrics } from "@opentelemetry/sdk-metrics";
import type { Logger } from "../shared/log.js";
import { mergeScopes } from "./fast-metrics.js";
import type { TelemetrySelfCounts } from "./metrics.js";

/** The code of errors made by telemetry's own shutdown (connections cut on purpose). */
export const SHUTDOWN_CODE = "ERR_TASKLB_TELEMETRY_SHUTDOWN";

/** Logs once when a signal's exports start failing and once when they recover. */
class FailureLog {
  #failing = false;
  constructor(
    readonly logger: Logger,
    readonly what: string,
    readonly url: string,
  ) {}
  result(r: ExportResult): void {
    if (r.code === ExportResultCode.SUCCESS) {
      if (this.#failing) this.logger.info(`telemetry: ${this.what} export recovered`, { url: this.url });
      this.#failing = false;
    } else if ((r.error as { code?: unknown } | undefined)?.code === SHUTDOWN_CODE) {
      // Cut by our own shutdown: not news.
    } else if (!this.#failing) {
      this.#failing = true;
      this.logger.warn(
        `telemetry: ${this.what} export failing (data is dropped, requests are not affected)`,
        {
          url: this.url,
          err: r.error,
        },
      );
    }
  }
}

export class GuardedSpanExporter implements SpanExporter {
  readonly #log: FailureLog;
  constructor(
    readonly inner: SpanExporter,
    readonly counts: TelemetrySelfCounts,
    logger: Logger,
    url: string,
  ) {
    this.#log = new FailureLog(logger, "span", url);
  }
  export(spans: ReadableSpan[], done: (r: ExportResult) => void): void {
    let called = false;
    const finish = (r: ExportResult) => {
      if (called) return;
      called = true;
      if (r.code === ExportResultCode.SUCCESS) this.counts.spansExported += spans.length;
      else this.counts.spansFailed += spans.length;
      this.#log.result(r);
      done(r);
    };
    try {
      this.inner.export(spans, finish);
    } catch (err) {
      finish({ code: ExportResultCode.FAILED, error: err instanceof Error ? err : new Error(String(err)) });
    }
  }
  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }
  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}

export class GuardedMetricExporter implements PushMetricExporter {
  readonly #log: FailureLog;
  constructor(
    readonly inner: PushMetricExporter,
    readonly counts: TelemetrySelfCounts,
    logger: Logger,
    url: string,
  ) {
    this.#log = new FailureLog(logger, "metric", url);
    if (inner.selectAggregationTemporality) {
      this.selectAggregationTemporality = inner.selectAggregationTemporality.bind(inner);
    }
    if (inner.selectAggregation) this.selectAggregation = inner.selectAggregation.bind(inner);
  }
  selectAggregationTemporality?: PushMetricExporter["selectAggregationTemporality"];
  selectAggregation?: PushMetricExporter["selectAggregation"];
  export(metrics: ResourceMetrics, done: (r: ExportResult) => void): void {
    let called = false;
    const finish = (r: ExportResult) => {
      if (called) return;
      called = true;
      if (r.code !== ExportResultCode.SUCCESS) this.counts.metricExportsFailed += 1;
      this.#log.result(r);
      done(r);
    };
    try {
      this.inner.export(mergeScopes(metrics), finish);
    } catch (err) {
      finish({ code: ExportResultCode.FAILED, error: err instanceof Error ? err : new Error(String(err)) });
    }
  }
  forceFlush(): Promise<void> {
    return this.inner.forceFlush();
  }
  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }
}

/**
 * A MeterProvider for the BatchSpanProcessor's self-observability hook that only listens for the
 * span-processed counter with `error.type=queue_full` (spans dropped because the queue was full)
 * and adds them to `counts.spansDropped`. Everything else is a no-op.
 */
export function droppedSpanListener(counts: TelemetrySelfCounts): MeterProvider {
  const noop = createNoopMeter();
  const counter = {
    add(value: number, attributes?: Attributes) {
      if (attributes?.["error.type"] === "queue_full") counts.spansDropped += value;
    },
  } as Counter;
  const meter: Meter = Object.create(noop) as Meter;
  meter.createCounter = () => counter;
  return { getMeter: () => meter };
}
