/**
 * Counters and histograms for the request path, recorded in plain JavaScript and published through
 * the SDK's `MetricProducer` interface (the `metricProducers` option of a `MetricReader` and of the
 * Prometheus exporter: the reader appends the producer's scope metrics to the SDK's own).
 *
 * Why: an SDK instrument hashes the attribute object on every `add`/`record`, once per reader
 * (`hashAttributes`, ~4 µs a call here). Attribute sets on tasklb's request path are few and known,
 * so callers resolve a set once to a series handle and recording is a few additions.
 *
 * What comes out is what the SDK would produce for the same calls (the unit tests compare the two):
 * per reader, its own aggregation (each reader gets a cell in every series), the reader's
 * temporality per instrument type, start times (cumulative: the series' first record; delta: the
 * reader's previous collection when the series was reported then, else its first record in the
 * interval), series reported only once recorded (delta: only when recorded in the interval), and
 * the SDK's cardinality limit: per reader and collection interval at most `limit - 1` attribute sets,
 * later ones are recorded under `{ "otel.metric.overflow": true }`.
 */
import type { Attributes, HrTime } from "@opentelemetry/api";
import { ValueType } from "@opentelemetry/api";
import { millisToHrTime } from "@opentelemetry/core";
import {
  AggregationTemporality,
  DataPointType,
  InstrumentType,
  type CollectionResult,
  type DataPoint,
  type Histogram,
  type IMetricReader,
  type MetricData,
  type MetricProducer,
  type ResourceMetrics,
  type ScopeMetrics,
} from "@opentelemetry/sdk-metrics";
import { emptyResource } from "@opentelemetry/resources";

export interface FastScope {
  readonly name: string;
  readonly version?: string;
}

interface InstrumentOptions {
  readonly description?: string;
  readonly unit?: string;
}

export interface FastHistogramOptions extends InstrumentOptions {
  readonly boundaries: readonly number[];
}

/** The instrument descriptor the SDK would make for `meter.create<type>(name, options)`. */
function descriptor(name: string, type: InstrumentType, options: InstrumentOptions) {
  return {
    name,
    type,
    description: options.description ?? "",
    unit: options.unit ?? "",
    valueType: ValueType.DOUBLE,
  };
}

/** The SDK's default when a reader has no cardinality selector. */
const DEFAULT_CARDINALITY_LIMIT = 2000;
const OVERFLOW_ATTRIBUTES: Attributes = Object.freeze({ "otel.metric.overflow": true });

/** One reader's aggregation of one series. */
class Cell {
  /** Collection interval (reader epoch) in which this cell was last recorded into. */
  epoch = 0;
  /** Epoch of the reader's collection that last reported this cell. */
  reported = 0;
  /** ms: first record ever (cumulative start time). */
  firstMs = 0;
  /** ms: first record in the current interval (delta start time of a series new to the interval). */
  intervalMs = 0;
  value = 0;
  sum = 0;
  count = 0;
  min = Infinity;
  max = -Infinity;
  constructor(readonly counts: number[] | undefined) {}
}

/** One reader's state for one metric. */
class ReaderMetricState {
  epoch = 1;
  /** Attribute sets recorded in the current interval (the SDK's active storage size, minus overflow). */
  touched = 0;
  overflow: FastSeries | undefined;
  constructor(public limit: number) {}
}

abstract class FastMetric {
  readonly all: FastSeries[] = [];
  readonly #byKey = new Map<string, FastSeries>();
  readonly readers: ReaderMetricState[] = [];
  constructor(
    readonly descriptor: MetricData["descriptor"] & { readonly type: InstrumentType },
    readonly boundaries: readonly number[] | undefined,
  ) {}

  /** The handle for one attribute set; resolve once and keep it. Equal sets share one handle. */
  protected resolve(attributes: Attributes): FastSeries {
    const key = JSON.stringify(
      Object.keys(attributes)
        .sort()
        .map((k) => [k, attributes[k]]),
    );
    let s = this.#byKey.get(key);
    if (!s) {
      s = new FastSeries(this, attributes);
      for (let i = 0; i < this.readers.length; i++) s.cells.push(this.newCell());
      this.#byKey.set(key, s);
      this.all.push(s);
    }
    return s;
  }

  newCell(): Cell {
    return new Cell(this.boundaries ? new Array<number>(this.boundaries.length + 1).fill(0) : undefined);
  }

  addReader(limit: number): ReaderMetricState {
    const state = new ReaderMetricState(limit);
    this.readers.push(state);
    for (const s of this.all) s.cells.push(this.newCell());
    return state;
  }

  overflowSeries(state: ReaderMetricState): FastSeries {
    return (state.overflow ??= this.resolve(OVERFLOW_ATTRIBUTES));
  }
}

/** A resolved attribute set of one metric. */
export class FastSeries {
  readonly cells: Cell[] = [];
  constructor(
    readonly metric: FastMetric,
    readonly attributes: Attributes,
  ) {}

  /** The cell to record into for reader `i`, entering the current interval (or overflowing). */
  cell(i: number): Cell {
    const c = this.cells[i]!;
    const state = this.metric.readers[i]!;
    if (c.epoch === state.epoch) return c;
    if (state.touched >= state.limit - 1 && state.overflow !== this) {
      // The SDK's limit counts the overflow set too: at most limit - 1 others per interval.
      return this.metric.overflowSeries(state).cell(i);
    }
    if (state.overflow !== this) state.touched++;
    const now = Date.now();
    c.epoch = state.epoch;
    c.intervalMs = now;
    if (c.firstMs === 0) c.firstMs = now;
    return c;
  }
}

export class FastCounterSeries {
  constructor(readonly series: FastSeries) {}
  add(value: number): void {
    // The SDK drops negative and NaN increments of a counter.
    if (!(value >= 0)) return;
    const n = this.series.cells.length;
    for (let i = 0; i < n; i++) this.series.cell(i).value += value;
  }
}

export class FastHistogramSeries {
  readonly #boundaries: readonly number[];
  constructor(readonly series: FastSeries) {
    this.#boundaries = series.metric.boundaries!;
  }
  record(value: number): void {
    if (Number.isNaN(value)) return;
    // Upper-inclusive buckets, as the SDK (binarySearchUB): value ≤ boundary[i] goes to bucket i.
    const b = this.#boundaries;
    let lo = 0;
    let hi = b.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (b[mid]! < value) lo = mid + 1;
      else hi = mid;
    }
    const n = this.series.cells.length;
    for (let i = 0; i < n; i++) {
      const c = this.series.cell(i);
      c.count++;
      c.sum += value;
      if (value < c.min) c.min = value;
      if (value > c.max) c.max = value;
      c.counts![lo]!++;
    }
  }
}

export class FastCounter extends FastMetric {
  series(attributes: Attributes = {}): FastCounterSeries {
    return new FastCounterSeries(this.resolve(attributes));
  }
}

export class FastHistogram extends FastMetric {
  series(attributes: Attributes = {}): FastHistogramSeries {
    return new FastHistogramSeries(this.resolve(attributes));
  }
}

/** A MetricProducer for one reader; `bind` it to the reader once the reader exists. */
export interface FastMetricProducer extends MetricProducer {
  bind(reader: Pick<IMetricReader, "selectAggregationTemporality" | "selectCardinalityLimit">): void;
}

/** One reader as the registry sees it. */
interface ReaderSlot {
  reader: Pick<IMetricReader, "selectAggregationTemporality" | "selectCardinalityLimit"> | undefined;
}

function limitOf(slot: ReaderSlot, type: InstrumentType): number {
  const limit = slot.reader?.selectCardinalityLimit(type);
  return limit !== undefined && limit > 0 ? limit : DEFAULT_CARDINALITY_LIMIT;
}

export class FastMetricRegistry {
  readonly #metrics: FastMetric[] = [];
  readonly #slots: ReaderSlot[] = [];
  constructor(readonly scope: FastScope) {}

  #add<M extends FastMetric>(m: M): M {
    for (const slot of this.#slots) m.addReader(limitOf(slot, m.descriptor.type));
    this.#metrics.push(m);
    return m;
  }

  counter(name: string, options: InstrumentOptions = {}): FastCounter {
    return this.#add(new FastCounter(descriptor(name, InstrumentType.COUNTER, options), undefined));
  }

  histogram(name: string, options: FastHistogramOptions): FastHistogram {
    return this.#add(
      new FastHistogram(descriptor(name, InstrumentType.HISTOGRAM, options), [...options.boundaries]),
    );
  }

  /**
   * A producer for one more reader. Readers need their own because temporality, intervals and
   * cardinality are per reader. Until `bind`, the reader counts as cumulative with the SDK's
   * default limit.
   */
  producer(): FastMetricProducer {
    const slotState: ReaderSlot = { reader: undefined };
    const slot = this.#slots.length;
    this.#slots.push(slotState);
    const metrics = this.#metrics;
    for (const m of metrics) m.addReader(DEFAULT_CARDINALITY_LIMIT);
    const temporality = new Map<InstrumentType, AggregationTemporality>();
    let lastCollectionMs = 0;
    const scope = this.scope;

    const temporalityOf = (type: InstrumentType): AggregationTemporality => {
      // Chosen once per instrument type, like the SDK's storage on its first collection.
      let t = temporality.get(type);
      if (t === undefined) {
        t = slotState.reader?.selectAggregationTemporality(type) ?? AggregationTemporality.CUMULATIVE;
        temporality.set(type, t);
      }
      return t;
    };

    return {
      bind(r) {
        slotState.reader = r;
        for (const m of metrics) m.readers[slot]!.limit = limitOf(slotState, m.descriptor.type);
      },
      collect(): Promise<CollectionResult> {
        const nowMs = Date.now();
        const endTime = millisToHrTime(nowMs);
        const lastTime = millisToHrTime(lastCollectionMs);
        const out: MetricData[] = [];
        for (const m of metrics) {
          const state = m.readers[slot]!;
          const delta = temporalityOf(m.descriptor.type) === AggregationTemporality.DELTA;
          const epoch = state.epoch;
          const points: DataPoint<number>[] | DataPoint<Histogram>[] = [];
          for (const s of m.all) {
            const c = s.cells[slot]!;
            if (delta ? c.epoch !== epoch : c.firstMs === 0) continue;
            let startTime: HrTime;
            if (!delta) startTime = millisToHrTime(c.firstMs);
            else if (c.reported === epoch - 1 && lastCollectionMs !== 0) startTime = lastTime;
            else startTime = millisToHrTime(c.intervalMs);
            if (c.epoch === epoch) c.reported = epoch;
            if (m.boundaries) {
              (points as DataPoint<Histogram>[]).push({
                attributes: s.attributes,
                startTime,
                endTime,
                value: {
                  min: c.count > 0 ? c.min : undefined,
                  max: c.count > 0 ? c.max : undefined,
                  sum: c.sum,
                  buckets: { boundaries: m.boundaries as number[], counts: c.counts!.slice() },
                  count: c.count,
                },
              });
              if (delta) {
                c.counts!.fill(0);
                c.sum = 0;
                c.count = 0;
                c.min = Infinity;
                c.max = -Infinity;
              }
            } else {
              (points as DataPoint<number>[]).push({
                attributes: s.attributes,
                startTime,
                endTime,
                value: c.value,
              });
              if (delta) c.value = 0;
            }
          }
          state.epoch++;
          state.touched = 0;
          if (points.length === 0) continue;
          const aggregationTemporality = delta
            ? AggregationTemporality.DELTA
            : AggregationTemporality.CUMULATIVE;
          out.push(
            m.boundaries
              ? {
                  descriptor: m.descriptor,
                  aggregationTemporality,
                  dataPointType: DataPointType.HISTOGRAM,
                  dataPoints: points as DataPoint<Histogram>[],
                }
              : {
                  descriptor: m.descriptor,
                  aggregationTemporality,
                  dataPointType: DataPointType.SUM,
                  isMonotonic: true,
                  dataPoints: points as DataPoint<number>[],
                },
          );
        }
        lastCollectionMs = nowMs;
        return Promise.resolve({
          // The reader replaces the resource with the SDK's.
          resourceMetrics: {
            resource: emptyResource(),
            scopeMetrics: out.length > 0 ? [{ scope: { ...scope }, metrics: out }] : [],
          },
          errors: [],
        });
      },
    };
  }
}

/**
 * Joins scope entries with the same scope (name, version, schema URL) into one, in order of first
 * appearance: the reader appends producers' scope metrics after the SDK's, and an OTLP payload
 * should carry one ScopeMetrics per scope, as it did when these instruments were the SDK's.
 */
export function mergeScopes(rm: ResourceMetrics): ResourceMetrics {
  const list = rm.scopeMetrics;
  if (list.length < 2) return rm;
  const merged: ScopeMetrics[] = [];
  for (const sm of list) {
    const same = merged.find(
      (m) =>
        m.scope.name === sm.scope.name &&
        m.scope.version === sm.scope.version &&
        m.scope.schemaUrl === sm.scope.schemaUrl,
    );
    if (same) same.metrics.push(...sm.metrics);
    else merged.push({ scope: sm.scope, metrics: [...sm.metrics] });
  }
  return merged.length === list.length ? rm : { resource: rm.resource, scopeMetrics: merged };
}
