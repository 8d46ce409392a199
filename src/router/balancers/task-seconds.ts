/**
 * `task-seconds`: the method-timing load balancer of the sources, kept faithful so it can be
 * compared. Per server, an EWMA of the reported busy figure (task-seconds per second = mean number
 * of busy top-level calls) that applies 1/4 of the difference between each new reading and the
 * previous value; ALL new work goes to the server with the lowest value until another has better
 * figures. Between reports nothing changes, so every request in that window goes to one server:
 * it herds, by design of the original, and the benchmark shows what that costs.
 *
 * A server with no reading yet counts as 0 (idle), so a new server gets work at once, as in the
 * original. Ties go to the lowest id (stable).
 */
import type { Balancer, BalancerDeps, ReportedLoad, ServerView } from "./balancer.js";
import { argminStable } from "./sampling.js";

/** Fraction of the difference between a new reading and the previous value that is applied. */
export const TASK_SECONDS_GAIN = 0.25;

export function createTaskSecondsBalancer(_deps: BalancerDeps): Balancer {
  const ewma = new Map<string, number>();
  const value = (s: ServerView): number => ewma.get(s.id) ?? 0;
  return {
    name: "task-seconds",
    params: Object.freeze({ gain: TASK_SECONDS_GAIN }),
    onReport(id: string, load: ReportedLoad): void {
      const prev = ewma.get(id);
      ewma.set(id, prev === undefined ? load.busy : prev + TASK_SECONDS_GAIN * (load.busy - prev));
    },
    onRemove(id: string): void {
      ewma.delete(id);
    },
    pick(candidates: readonly ServerView[]): ServerView {
      return argminStable(candidates, value);
    },
    score(server: ServerView): number | undefined {
      return ewma.get(server.id);
    },
  };
}
