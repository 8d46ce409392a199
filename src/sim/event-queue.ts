/**
 * The simulator's clock and agenda: a binary min-heap of timed events. Events at the same time run
 * in the order they were scheduled (a sequence number breaks ties), so a run is deterministic.
 */

interface Entry {
  at: number;
  seq: number;
  run: () => void;
}

export class EventQueue {
  #heap: Entry[] = [];
  #seq = 0;
  #now = 0;
  /** Events run so far (for the run's statistics). */
  executed = 0;

  now(): number {
    return this.#now;
  }

  get size(): number {
    return this.#heap.length;
  }

  /** Schedules `run` at absolute time `at` (ms); times in the past run at the current time. */
  at(at: number, run: () => void): void {
    const e: Entry = { at: Math.max(at, this.#now), seq: this.#seq++, run };
    const h = this.#heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!less(e, h[parent]!)) break;
      h[i] = h[parent]!;
      i = parent;
    }
    h[i] = e;
  }

  after(delayMs: number, run: () => void): void {
    this.at(this.#now + delayMs, run);
  }

  /** Runs events in time order until none is left at or before `untilMs`. */
  runUntil(untilMs: number): void {
    const h = this.#heap;
    while (h.length > 0 && h[0]!.at <= untilMs) {
      const top = h[0]!;
      const last = h.pop()!;
      if (h.length > 0) {
        let i = 0;
        const n = h.length;
        for (;;) {
          const l = 2 * i + 1;
          if (l >= n) break;
          const r = l + 1;
          const c = r < n && less(h[r]!, h[l]!) ? r : l;
          if (!less(h[c]!, last)) break;
          h[i] = h[c]!;
          i = c;
        }
        h[i] = last;
      }
      this.#now = top.at;
      this.executed++;
      top.run();
    }
    this.#now = Math.max(this.#now, untilMs);
  }
}

function less(a: Entry, b: Entry): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}
