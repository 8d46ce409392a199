/**
 * The `oracle` policy (simulator only): it sees every server's true state — calls in service and
 * queued, calls on their way, current speed, whether it is alive or failing — and picks the least
 * expected completion time. For a server with k slots, mean service time S and q calls waiting, a
 * new call starts after q + 1 completions at rate k/S: E[T] = S when a slot is free, otherwise
 * S + (q + 1)·S/k. It is the practical limit a balancer can approach, not a perfect schedule
 * (it cannot know the service time of the call itself).
 */
import type { Balancer, ServerView } from "../router/balancers/balancer.js";
import type { SimServer } from "./sim-server.js";

export function createOracle(
  servers: readonly SimServer[],
  indexOf: (view: ServerView) => number,
  meanServiceMs: number,
  random: () => number,
): Balancer {
  const ect = (s: SimServer): number => {
    if (!s.alive || s.failFast) return Number.POSITIVE_INFINITY;
    const S = s.meanServiceMs(meanServiceMs);
    const k = s.cfg.slots;
    const ahead = s.busy + s.queued + s.incoming;
    return ahead < k ? S : S + ((ahead - k + 1) * S) / k;
  };
  return {
    name: "oracle",
    params: Object.freeze({}),
    pick(candidates: readonly ServerView[]): ServerView {
      let best = candidates[0]!;
      let bestCost = Number.POSITIVE_INFINITY;
      let ties = 0;
      for (const c of candidates) {
        const cost = ect(servers[indexOf(c)]!);
        if (cost < bestCost) {
          best = c;
          bestCost = cost;
          ties = 1;
        } else if (cost === bestCost && random() * ++ties < 1) {
          best = c;
        }
      }
      return best;
    },
  };
}
