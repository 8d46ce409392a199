/**
 * Latency percentiles over a sliding window (default: the last ~10 s), in constant memory and O(1)
 * per recorded value, so it can sit on the router's request-end path. Values fall into logarithmic
 * buckets (8% wide: a percentile is within ~4% of the true value); the window is a ring of time
 * slices that are cleared as the clock moves past them. Pure: time comes in as `now` (ms).
 */
export interface WindowedHistogramOptions {
  /** Length of the window (ms). */
  readonly windowMs?: number;
  /** Number of slices the window is cut into: the window slides in steps of windowMs / slices. */
  readonly slices?: number;
  /** Values at or below this land in the first bucket (ms). */
  readonly minMs?: number;
  /** Values above this land in the last bucket (ms). */
  readonly maxMs?: number;
}

const RATIO = 1.08;
const LOG_RATIO = Math.log(RATIO);

export class WindowedHistogram {
  readonly #sliceMs: number;
  readonly #slices: number;
  readonly #minMs: number;
  readonly #buckets: number;
  readonly #counts: Uint32Array[];
  readonly #totals: Float64Array;
  /** Which time slice (floor(now / sliceMs)) each slot currently holds; -Infinity when none. */
  readonly #sliceIds: Float64Array;

  constructor(options: WindowedHistogramOptions = {}) {
    const windowMs = options.windowMs ?? 10_000;
    this.#slices = Math.max(1, Math.floor(options.slices ?? 10));
    this.#sliceMs = windowMs / this.#slices;
    this.#minMs = options.minMs ?? 0.05;
    const maxMs = options.maxMs ?? 600_000;
    this.#buckets = 2 + Math.ceil(Math.log(maxMs / this.#minMs) / LOG_RATIO);
    this.#counts = Array.from({ length: this.#slices }, () => new Uint32Array(this.#buckets));
    this.#totals = new Float64Array(this.#slices);
    this.#sliceIds = new Float64Array(this.#slices).fill(-Infinity);
  }

  record(valueMs: number, now: number): void {
    if (!Number.isFinite(valueMs) || valueMs < 0) return;
    const id = Math.floor(now / this.#sliceMs);
    const slot = ((id % this.#slices) + this.#slices) % this.#slices;
    const counts = this.#counts[slot] as Uint32Array;
    if (this.#sliceIds[slot] !== id) {
      counts.fill(0);
      this.#totals[slot] = 0;
      this.#sliceIds[slot] = id;
    }
    const b = this.#bucket(valueMs);
    counts[b] = (counts[b] as number) + 1;
    this.#totals[slot] = (this.#totals[slot] as number) + 1;
  }

  /** Values recorded in the window ending at `now`. */
  count(now: number): number {
    let n = 0;
    const oldest = Math.floor(now / this.#sliceMs) - this.#slices + 1;
    for (let i = 0; i < this.#slices; i++)
      if ((this.#sliceIds[i] as number) >= oldest) n += this.#totals[i] as number;
    return n;
  }

  /** The q-quantile (0 < q ≤ 1) of the values in the window ending at `now`; undefined when empty. */
  percentile(q: number, now: number): number | undefined {
    return this.percentiles([q], now)[0];
  }

  /** Several quantiles in one pass over the window. */
  percentiles(qs: readonly number[], now: number): (number | undefined)[] {
    const oldest = Math.floor(now / this.#sliceMs) - this.#slices + 1;
    const merged = new Float64Array(this.#buckets);
    let total = 0;
    for (let i = 0; i < this.#slices; i++) {
      if ((this.#sliceIds[i] as number) < oldest) continue;
      const counts = this.#counts[i] as Uint32Array;
      for (let b = 0; b < this.#buckets; b++) merged[b] = (merged[b] as number) + (counts[b] as number);
      total += this.#totals[i] as number;
    }
    if (total === 0) return qs.map(() => undefined);
    return qs.map((q) => {
      const rank = Math.max(1, Math.ceil(Math.min(1, Math.max(0, q)) * total));
      let seen = 0;
      for (let b = 0; b < this.#buckets; b++) {
        seen += merged[b] as number;
        if (seen >= rank) return this.#value(b);
      }
      return this.#value(this.#buckets - 1);
    });
  }

  #bucket(v: number): number {
    if (v <= this.#minMs) return 0;
    const b = 1 + Math.floor(Math.log(v / this.#minMs) / LOG_RATIO);
    return Math.min(b, this.#buckets - 1);
  }

  /** A bucket's representative value: the geometric middle of its bounds. */
  #value(b: number): number {
    if (b === 0) return this.#minMs;
    return this.#minMs * Math.pow(RATIO, b - 0.5);
  }
}
