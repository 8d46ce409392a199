/** `random`: every eligible server equally likely. The baseline every other algorithm must beat. */
import type { Balancer, BalancerDeps, ServerView } from "./balancer.js";
import { randomIndex } from "./sampling.js";

export function createRandomBalancer(deps: BalancerDeps): Balancer {
  return {
    name: "random",
    params: Object.freeze({}),
    pick(candidates: readonly ServerView[]): ServerView {
      return candidates[randomIndex(deps.random, candidates.length)]!;
    },
  };
}
