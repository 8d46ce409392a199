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

/** The scenarios `--scenario all` runs, in order. */
export const FOUR_SERVER_SCENARIOS: readonly string[] = Object.freeze(Object.keys(SCENARIOS));

/** Events placed relative to the duration (so a shorter --duration-s keeps the same shape). */
export function scenarioEvents(s: Scenario): ScenarioEvent[] {
  const d = s.durationS;
  const at = (f: number): number => Math.round(d * f * 1000) / 1000;
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
