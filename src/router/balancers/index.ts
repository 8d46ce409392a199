/**
 * The balancer registry: names a pool can be configured with (`--algorithm`), the default, and the
 * factory. The router, the simulator and the benchmark all create balancers through here.
 */
import type { Balancer, BalancerDeps } from "./balancer.js";
import { createAdaptiveBalancer } from "./adaptive.js";
import { createCpuBalancer } from "./cpu.js";
import { createLeastRequestBalancer } from "./least-request.js";
import { createRandomBalancer } from "./random.js";
import { createRoundRobinBalancer } from "./round-robin.js";
import { createTaskSecondsBalancer } from "./task-seconds.js";

const FACTORIES = {
  random: createRandomBalancer,
  "round-robin": createRoundRobinBalancer,
  "task-seconds": createTaskSecondsBalancer,
  cpu: createCpuBalancer,
  "least-request": createLeastRequestBalancer,
  adaptive: (deps: BalancerDeps): Balancer => createAdaptiveBalancer(deps),
} as const satisfies Record<string, (deps: BalancerDeps) => Balancer>;

export type BalancerName = keyof typeof FACTORIES;

export const BALANCER_NAMES: readonly BalancerName[] = Object.freeze(
  Object.keys(FACTORIES) as BalancerName[],
);

export const DEFAULT_BALANCER: BalancerName = "adaptive";

export function isBalancerName(name: string): name is BalancerName {
  return Object.hasOwn(FACTORIES, name);
}

/** Creates a balancer by name. Throws a RangeError naming the known algorithms for an unknown name. */
export function createBalancer(name: string, deps: BalancerDeps): Balancer {
  if (!isBalancerName(name)) {
    throw new RangeError(`unknown balancing algorithm "${name}" (known: ${BALANCER_NAMES.join(", ")})`);
  }
  return FACTORIES[name](deps);
}
