/**
 * Measured time comes from a monotonic clock that can be injected. Production code uses
 * {@link monotonicClock}; tests pass a {@link FakeClock} and advance it instead of sleeping.
 * Times are in milliseconds (fractional) from an arbitrary origin: only differences mean anything.
 */
import { performance } from "node:perf_hooks";

export interface Clock {
  /** Monotonic milliseconds. */
  now(): number;
}

export const monotonicClock: Clock = { now: () => performance.now() };

export class FakeClock implements Clock {
  #now: number;
  constructor(startMs = 0) {
    this.#now = startMs;
  }
  now(): number {
    return this.#now;
  }
  advance(ms: number): void {
    if (ms < 0) throw new RangeError("a monotonic clock cannot go back");
    this.#now += ms;
  }
  set(ms: number): void {
    if (ms < this.#now) throw new RangeError("a monotonic clock cannot go back");
    this.#now = ms;
  }
}
