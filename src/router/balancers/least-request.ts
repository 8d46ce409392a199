/**
 * `least-request`: power of two choices (Mitzenmacher) on the router's own in-flight counts, as in
 * Envoy's LEAST_REQUEST and nginx `random two least_conn`. Two distinct servers are drawn at random
 * and the one with fewer requests in flight from this router wins (a tie goes to the first drawn).
 * Needs no reports at all, and the random draw keeps it from herding.
 */
import type { Balancer, BalancerDeps, ServerView } from "./balancer.js";
import { sampleIndices } from "./sampling.js";

export function createLeastRequestBalancer(deps: BalancerDeps): Balancer {
  return {
    name: "least-request",
    params: Object.freeze({ choices: 2 }),
    pick(candidates: readonly ServerView[]): ServerView {
      if (candidates.length === 1) return candidates[0]!;
      const [i, j] = sampleIndices(deps.random, candidates.length, 2) as [number, number];
      const a = candidates[i]!;
      const b = candidates[j]!;
      return b.inFlight < a.inFlight ? b : a;
    },
    score(server: ServerView): number {
      return server.inFlight;
    },
  };
}
