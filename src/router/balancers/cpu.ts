/**
 * `cpu`: all new work to the server whose host reported the lowest CPU utilisation (the argmin of
 * COM+ Component Load Balancing's CPU-based mode). Like `task-seconds` it only changes its mind
 * when a report arrives, so it herds between reports.
 *
 * Missing CPU: a server without a report yet (new, or its reports were reset) counts as idle
 * (cpu 0), so it is tried at once — that is what an argmin over "no load seen" does. Ties go to the
 * lowest id. CPU is a poor signal for I/O-bound apps (a server waiting on a database is "idle"):
 * that weakness is part of what the comparison shows.
 */
import type { Balancer, BalancerDeps, ServerView } from "./balancer.js";
import { argminStable } from "./sampling.js";

export function createCpuBalancer(_deps: BalancerDeps): Balancer {
  const cpu = (s: ServerView): number => s.reported?.cpu ?? 0;
  return {
    name: "cpu",
    params: Object.freeze({ missingCpu: "counts as idle (0)" }),
    pick(candidates: readonly ServerView[]): ServerView {
      return argminStable(candidates, cpu);
    },
    score(server: ServerView): number | undefined {
      return server.reported?.cpu;
    },
  };
}
