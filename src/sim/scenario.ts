/**
 * Scenarios the simulator runs by name. Load is a fraction of the fleet's capacity at its normal
 * speeds (capacity of a server = slots × speed / mean service time), so "70%" means the same
 * pressure whatever the speeds. The 4-server scenarios mirror the real benchmark (bench/); the
 * scale scenarios are built from flags (see scale-study.ts).
 */

export type ServiceDistribution = "exponential" | "lognormal";

export interface ServerSpec {
  readonly speed: number;
  readonly slots: number;
  /** Seconds into the run at which the server starts (and registers); default 0. */
  readonly addAtS?: number;
}

export type ScenarioEvent =
  | { readonly atS: number; readonly kind: "slowdown"; readonly server: number; readonly factor: number }
  | {
      readonly atS: number;
      readonly kind: "die" | "recover" | "fail-fast" | "heal";
      readonly server: number;
    };

export interface Scenario {
  readonly name: string;
  readonly description: string;
  readonly servers: readonly ServerSpec[];
  /** Offered load as a fraction of the capacity of the servers present at the start. */
  readonly load: number;
  readonly routers: number;
  readonly pollIntervalMs: number;
  /** Routers also read reports piggybacked on responses (at most one per server per poll interval). */
  readonly piggyback: boolean;
  /** One-way network delay router ↔ server (ms). */
  readonly netDelayMs: number;
  /** Mean service time (ms) of a call on a speed-1 server. */
  readonly meanServiceMs: number;
  /**
   * Probability that a call makes one nested call back through its own sidecar (same trace): half
   * its service, the nested call, the other half, holding its worker slot throughout (as the real
   * bench's servers do). The sidecar counts the nested call in `inFlight` but not as top-level.
   * Default 0.
   */
  readonly nestedProbability?: number;
  /** Mean service of a nested call as a fraction of the server's mean service (default 0.1). */
  readonly nestedFraction?: number;
  /**
   * The servers present at the start are eased in too, as the real router does (it starts every
   * server easing on its first good report); default false (they start in full rotation).
   */
  readonly easeInAtStart?: boolean;
  /**
   * The router pool's ease-in (--ease-in-ms): a server entering rotation is offered to the balancer
   * in a share of picks growing from 10 % to 100 % over this time, and only while its in-flight
   * count is below that share of the busiest other server's (sim-router.ts). Default 0 (off).
   */
  readonly easeInMs?: number;
  readonly service: ServiceDistribution;
  /** Lognormal shape (sigma of the log). */
  readonly sigma: number;
  readonly durationS: number;
  /** Seconds at the start left out of the statistics. */
  readonly warmupS: number;
  /** Router upstream timeout (ms): the client gets a 504 and the call counts as a timeout. */
  readonly timeoutMs: number;
  /** Extra attempts for a request that never reached the app (or was reset: all simulated calls are idempotent). */
  readonly retries: number;
  /** Consecutive failed polls before a server leaves rotation. */
  readonly maxMisses: number;
  readonly events: readonly ScenarioEvent[];
}

const BASE = {
  routers: 1,
  pollIntervalMs: 100,
  piggyback: false,
  netDelayMs: 0.25,
  meanServiceMs: 40,
  service: "lognormal" as ServiceDistribution,
  sigma: 1,
  durationS: 60,
  warmupS: 3,
  timeoutMs: 5_000,
  retries: 2,
  maxMisses: 3,
  events: [] as ScenarioEvent[],
};

const four = (speeds: readonly number[], slots = 4): ServerSpec[] =>
  speeds.map((speed) => ({ speed, slots }));

/** The 4-server scenarios (names are what `--scenario` takes). */
export const SCENARIOS: Readonly<Record<string, Scenario>> = Object.freeze({
  homogeneous: {
    ...BASE,
    name: "homogeneous",
    description: "4 equal servers (4 slots each), 70% load",
    servers: four([1, 1, 1, 1]),
    load: 0.7,
  },
  "hetero-70": {
    ...BASE,
    name: "hetero-70",
    description: "speeds 4:4:2:1, 70% load",
    servers: four([4, 4, 2, 1]),
    load: 0.7,
  },
  "hetero-90": {
    ...BASE,
    name: "hetero-90",
    description: "speeds 4:4:2:1, 90% load",
    servers: four([4, 4, 2, 1]),
    load: 0.9,
  },
  slowdown: {
    ...BASE,
    name: "slowdown",
    description: "4 equal servers, 70% load; server 0 runs 5x slower from 30% to 60% of the run",
    servers: four([1, 1, 1, 1]),
    load: 0.7,
    events: [],
  },
  failure: {
    ...BASE,
    name: "failure",
    description: "4 equal servers, 60% load; server 0 dies at 30% of the run and comes back at 60%",
    servers: four([1, 1, 1, 1]),
    load: 0.6,
  },
  "fail-fast": {
    ...BASE,
    name: "fail-fast",
    description:
      "speeds 4:4:2:1, 50% load; server 1 answers every call with an error in 1 ms from 30% to 60%",
    servers: four([4, 4, 2, 1]),
    load: 0.5,
  },
  routers: {
    ...BASE,
    name: "routers",
    description: "speeds 4:4:2:1, 70% load, 8 routers sharing the same sidecars",
    servers: four([4, 4, 2, 1]),
    load: 0.7,
    routers: 8,
  },
});

/**
 * Mirrors of the real harness (bench/balance/scenarios.ts), run by `--scenario bench` and not part
 * of `all`: 4 slots per server, nominal capacity 300 req/s (so the mean service at speed 1 is
 * 4 × Σspeeds × 1000 / 300 ms: 146.7 ms for 4:4:2:1, 53.3 ms for four equal servers), 20% of
 * calls nested, 4 s warm-up, 10 s timeout, and the bench's service distributions (exponential on
 * equal servers, lognormal σ = 1 where speeds differ). The event scenarios also have the bench's
 * timing (24 s measured, events at its fractions of that; see scenarioEvents): a slowdown of 9.6 s
 * tests how fast a balancer detects and forgets it, which a longer one would dilute. The others run
 * 60 s for steadier figures (the bench runs them 15 s).
 */
const BENCH_CAPACITY = 300;
const benchMean = (speeds: readonly number[]): number =>
  (4 * speeds.reduce((a, b) => a + b, 0) * 1000) / BENCH_CAPACITY;
const BENCH_WARMUP_S = 4;
/** The bench's event scenarios: 24 s measured after the warm-up. */
const BENCH_EVENT_S = BENCH_WARMUP_S + 24;
const BENCH = {
  ...BASE,
  // The real router also reads the reports piggybacked on responses, and eases every server in
  // when it starts.
  piggyback: true,
  easeInAtStart: true,
  easeInMs: 3_000,
  warmupS: BENCH_WARMUP_S,
  timeoutMs: 10_000,
  nestedProbability: 0.2,
  nestedFraction: 0.1,
};
export const BENCH_SCENARIOS: Readonly<Record<string, Scenario>> = Object.freeze({
  "bench-homogeneous-70": {
    ...BENCH,
    name: "bench-homogeneous-70",
    description: "bench mirror: 4 equal servers, 70% of 300 req/s, 20% nested",
    servers: four([1, 1, 1, 1]),
    meanServiceMs: benchMean([1, 1, 1, 1]),
    service: "exponential",
    load: 0.7,
  },
  "bench-heterogeneous-70": {
    ...BENCH,
    name: "bench-heterogeneous-70",
    description: "bench mirror: speeds 4:4:2:1, 70% of 300 req/s, 20% nested",
    servers: four([4, 4, 2, 1]),
    meanServiceMs: benchMean([4, 4, 2, 1]),
    load: 0.7,
  },
  "bench-heterogeneous-90": {
    ...BENCH,
    name: "bench-heterogeneous-90",
    description: "bench mirror: speeds 4:4:2:1, 90% of 300 req/s, 20% nested",
    servers: four([4, 4, 2, 1]),
    meanServiceMs: benchMean([4, 4, 2, 1]),
    load: 0.9,
  },
  "bench-slowdown": {
    ...BENCH,
    name: "bench-slowdown",
    description: "bench mirror: 4 equal servers, 70%; s0 4x slower from 25% to 65% of the 24 s measured",
    servers: four([1, 1, 1, 1]),
    meanServiceMs: benchMean([1, 1, 1, 1]),
    service: "exponential",
    durationS: BENCH_EVENT_S,
    load: 0.7,
  },
  "bench-failure": {
    ...BENCH,
    name: "bench-failure",
    description: "bench mirror: 4 equal servers, 60%; s1 dies at 25% of the 24 s measured, back at 60%",
    servers: four([1, 1, 1, 1]),
    meanServiceMs: benchMean([1, 1, 1, 1]),
    service: "exponential",
    durationS: BENCH_EVENT_S,
    load: 0.6,
  },
  "bench-server-added": {
    ...BENCH,
    name: "bench-server-added",
    description: "bench mirror: 3 equal servers at 70% of 300 req/s, a 4th joins a third of the way in",
    // Joins a third of the way into the bench's 24 s measured run; capacity and load refer to the 3
    // servers up at the start.
    servers: [...four([1, 1, 1]), { speed: 1, slots: 4, addAtS: BENCH_WARMUP_S + 8 }],
    meanServiceMs: benchMean([1, 1, 1]),
    service: "exponential",
    durationS: BENCH_EVENT_S,
    load: 0.7,
  },
  "bench-three-routers": {
    ...BENCH,
    name: "bench-three-routers",
    description: "bench mirror: speeds 4:4:2:1, 70%, 3 routers sharing the sidecars",
    servers: four([4, 4, 2, 1]),
    meanServiceMs: benchMean([4, 4, 2, 1]),
    load: 0.7,
    routers: 3,
  },
});

/** The scenarios `--scenario all` runs, in order. */
export const FOUR_SERVER_SCENARIOS: readonly string[] = Object.freeze(Object.keys(SCENARIOS));

/** The scenarios `--scenario bench` runs, in order. */
export const BENCH_SCENARIO_NAMES: readonly string[] = Object.freeze(Object.keys(BENCH_SCENARIOS));

/** A named scenario of either set. */
export function findScenario(name: string): Scenario | undefined {
  return SCENARIOS[name] ?? BENCH_SCENARIOS[name];
}

/** Events placed relative to the duration (so a shorter --duration-s keeps the same shape). */
export function scenarioEvents(s: Scenario): ScenarioEvent[] {
  const d = s.durationS;
  const at = (f: number): number => Math.round(d * f * 1000) / 1000;
  // The bench mirrors time their events as the bench does: fractions of the measured part.
  const atMeasured = (f: number): number => Math.round((s.warmupS + (d - s.warmupS) * f) * 1000) / 1000;
  switch (s.name) {
    case "slowdown":
      return [
        { atS: at(0.3), kind: "slowdown", server: 0, factor: 5 },
        { atS: at(0.6), kind: "slowdown", server: 0, factor: 1 },
      ];
    case "failure":
      return [
        { atS: at(0.3), kind: "die", server: 0 },
        { atS: at(0.6), kind: "recover", server: 0 },
      ];
    case "bench-slowdown":
      return [
        { atS: atMeasured(0.25), kind: "slowdown", server: 0, factor: 4 },
        { atS: atMeasured(0.65), kind: "slowdown", server: 0, factor: 1 },
      ];
    case "bench-failure":
      return [
        { atS: atMeasured(0.25), kind: "die", server: 1 },
        { atS: atMeasured(0.6), kind: "recover", server: 1 },
      ];
    case "fail-fast":
      return [
        { atS: at(0.3), kind: "fail-fast", server: 1 },
        { atS: at(0.6), kind: "heal", server: 1 },
      ];
    default:
      return [...s.events];
  }
}

/** Offered rate (req/s) for a scenario: load × capacity of the servers present at the start. */
export function offeredRate(s: Scenario): number {
  let capacity = 0;
  for (const spec of s.servers) {
    if ((spec.addAtS ?? 0) === 0) capacity += (spec.slots * spec.speed * 1000) / s.meanServiceMs;
  }
  return s.load * capacity;
}
