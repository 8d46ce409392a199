/**
 * `round-robin`: each eligible server in turn. Blind to speed and load, so a slow server gets the
 * same share as a fast one (and at high load it overloads: that is what the comparison shows).
 */
import type { Balancer, BalancerDeps, ServerView } from "./balancer.js";

export function createRoundRobinBalancer(_deps: BalancerDeps): Balancer {
  let next = 0;
  return {
    name: "round-robin",
    params: Object.freeze({}),
    pick(candidates: readonly ServerView[]): ServerView {
      // The counter wraps modulo the current size, so servers joining or leaving keep the cycle going.
      const i = next % candidates.length;
      next = i + 1;
      return candidates[i]!;
    },
  };
}
