// Shared fixtures for the balancer tests: views with sensible defaults and a seeded random source.
import type { ReportedLoad, ServerView } from "../../../../src/router/balancers/balancer.js";
import { FakeClock } from "../../../../src/shared/clock.js";
import { createRandom } from "../../../../src/sim/prng.js";

export function view(id: string, over: Partial<ServerView> = {}): ServerView {
  return {
    id,
    readySinceMs: -1e9,
    reported: undefined,
    inFlight: 0,
    latencyMs: undefined,
    failureRate: 0,
    ...over,
  };
}

export function load(over: Partial<ReportedLoad> = {}): ReportedLoad {
  return {
    receivedAtMs: 0,
    busy: 1,
    callRate: 50,
    errorRate: 0,
    meanCallSeconds: 0.02,
    inFlightTopLevel: 1,
    inFlightAgeSeconds: 0.01,
    cpu: 0.5,
    cores: 4,
    ...over,
  };
}

export function deps(seed = 42): { clock: FakeClock; random: () => number } {
  return { clock: new FakeClock(0), random: createRandom(seed) };
}

/** Counts how often each id is picked in `n` picks. */
export function tally(n: number, pick: (i: number) => ServerView): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const id = pick(i).id;
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
}
