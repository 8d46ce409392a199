/**
 * The scenarios every balancer faces, identical for all (same servers, same seeded Poisson
 * arrivals, same scheduled events). Capacity is normalised: whatever the speeds, the cluster's
 * nominal capacity is `capacity` req/s (slots × speed / mean service, summed), and `load` is the
 * offered fraction of it. Event times are ms after measuring starts.
 */
import type { ServiceDist } from "./sim-server.js";

export interface ScenarioEvent {
  readonly atMs: number;
  readonly server: number;
  readonly kind: "slow" | "normal" | "kill" | "revive";
  readonly factor?: number;
}

export interface Scenario {
  readonly name: string;
  readonly title: string;
  readonly speeds: readonly number[];
  readonly load: number;
  readonly dist: ServiceDist;
  readonly durationMs: number;
  readonly events: readonly ScenarioEvent[];
  /** Balancer instances side by side, sharing the same sidecars (requests spread over them in turn). */
  readonly instances: number;
  /** Restrict to these balancers (undefined: all). */
  readonly balancers?: readonly string[];
  /** A shaded window in the plots. */
  readonly window?: { readonly from: number; readonly to: number; readonly label: string };
  /**
   * Servers (indices) that are down when the run starts and come up on a `revive` event: a server
   * added mid-run. Every balancer lists them from the start (see docs/benchmarks.md, "A server is
   * added"); nominal capacity and `load` refer to the servers up at the start.
   */
  readonly startDown?: readonly number[];
  /** Balancers run in this scenario only, when the default balancer list is used (not with --balancers). */
  readonly extraBalancers?: readonly string[];
}

export const SLOTS = 4;
export const NESTED_PROBABILITY = 0.2;
export const NESTED_FRACTION = 0.1;

export function scenarios(quick: boolean): Scenario[] {
  const d = quick ? 6_000 : 15_000;
  const ev = quick ? 12_000 : 24_000;
  const at = (f: number) => Math.round(ev * f);
  const exp: ServiceDist = { kind: "exponential" };
  const logn: ServiceDist = { kind: "lognormal", sigma: 1 };
  return [
    {
      name: "homogeneous-70",
      title: "4 equal servers, 70% load",
      speeds: [1, 1, 1, 1],
      load: 0.7,
      dist: exp,
      durationMs: d,
      events: [],
      instances: 1,
    },
    {
      name: "heterogeneous-70",
      title: "speeds 4:4:2:1, 70% load",
      speeds: [4, 4, 2, 1],
      load: 0.7,
      dist: logn,
      durationMs: d,
      events: [],
      instances: 1,
    },
    {
      name: "heterogeneous-90",
      title: "speeds 4:4:2:1, 90% load",
      speeds: [4, 4, 2, 1],
      load: 0.9,
      dist: logn,
      durationMs: d,
      events: [],
      instances: 1,
    },
    {
      name: "slowdown",
      title: "4 equal servers, 70% load; s0 4× slower for a while",
      speeds: [1, 1, 1, 1],
      load: 0.7,
      dist: exp,
      durationMs: ev,
      events: [
        { atMs: at(0.25), server: 0, kind: "slow", factor: 4 },
        { atMs: at(0.65), server: 0, kind: "normal" },
      ],
      instances: 1,
      window: { from: at(0.25), to: at(0.65), label: "s0 4× slower" },
    },
    {
      name: "failure",
      title: "4 equal servers, 60% load; s1 dies and comes back",
      speeds: [1, 1, 1, 1],
      load: 0.6,
      dist: exp,
      durationMs: ev,
      events: [
        { atMs: at(0.25), server: 1, kind: "kill" },
        { atMs: at(0.6), server: 1, kind: "revive" },
      ],
      instances: 1,
      window: { from: at(0.25), to: at(0.6), label: "s1 down" },
    },
    {
      name: "server-added",
      title:
        "3 equal servers at 70% load; a 4th equal server s3 joins a third of the way in (52% load after)",
      speeds: [1, 1, 1, 1],
      startDown: [3],
      load: 0.7,
      dist: exp,
      durationMs: ev,
      events: [{ atMs: at(1 / 3), server: 3, kind: "revive" }],
      instances: 1,
      window: { from: 0, to: at(1 / 3), label: "s3 not up yet" },
      // What the router's ease-in (--ease-in-ms, default 3 s) costs or buys against taking the new server at once.
      extraBalancers: ["tasklb:adaptive/ease-in-ms=0"],
    },
    {
      name: "three-routers",
      title: "speeds 4:4:2:1, 70% load, 3 balancer instances sharing the sidecars",
      speeds: [4, 4, 2, 1],
      load: 0.7,
      dist: logn,
      durationMs: d,
      events: [],
      instances: 3,
      balancers: [
        "tasklb:adaptive",
        "tasklb:least-request",
        "tasklb:task-seconds",
        "nginx:least_conn",
        "haproxy:leastconn",
        "oracle",
      ],
    },
  ];
}

export const ALL_BALANCERS = [
  "tasklb:random",
  "tasklb:round-robin",
  "tasklb:task-seconds",
  "tasklb:cpu",
  "tasklb:least-request",
  "tasklb:adaptive",
  "nginx:least_conn",
  "nginx:random-two-least_conn",
  "haproxy:leastconn",
  "haproxy:roundrobin",
  "oracle",
];

export const QUICK_BALANCERS = [
  "tasklb:round-robin",
  "tasklb:least-request",
  "tasklb:adaptive",
  "nginx:least_conn",
  "haproxy:leastconn",
  "oracle",
];

export const PEERS = new Set([
  "nginx:least_conn",
  "nginx:random-two-least_conn",
  "haproxy:leastconn",
  "haproxy:roundrobin",
]);
