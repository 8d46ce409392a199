/**
 * Small helpers the algorithms share: distinct random indices for power-of-d choices and a stable
 * argmin. Randomness always comes from the injected `random` so runs are reproducible.
 */
import type { ServerView } from "./balancer.js";

/** Index in [0, n) from a uniform [0, 1) source. */
export function randomIndex(random: () => number, n: number): number {
  // min() guards a source that returns exactly 1 through rounding.
  return Math.min(n - 1, Math.floor(random() * n));
}

/**
 * Up to `d` distinct indices in [0, n), uniformly at random (partial Fisher–Yates over an index
 * list for small d; `d >= n` returns every index in order).
 */
export function sampleIndices(random: () => number, n: number, d: number): number[] {
  if (d >= n) return Array.from({ length: n }, (_, i) => i);
  if (d === 2) {
    const a = randomIndex(random, n);
    let b = randomIndex(random, n - 1);
    if (b >= a) b++;
    return [a, b];
  }
  const chosen: number[] = [];
  const swapped = new Map<number, number>();
  for (let i = 0; i < d; i++) {
    const j = i + randomIndex(random, n - i);
    const vj = swapped.get(j) ?? j;
    swapped.set(j, swapped.get(i) ?? i);
    chosen.push(vj);
  }
  return chosen;
}

/**
 * The candidate with the lowest `value`; ties go to the lowest id, so the choice does not depend on
 * the order of the array (stable across calls while the figures stay the same).
 */
export function argminStable(
  candidates: readonly ServerView[],
  value: (s: ServerView) => number,
): ServerView {
  let best = candidates[0]!;
  let bestValue = value(best);
  for (let i = 1; i < candidates.length; i++) {
    const c = candidates[i]!;
    const v = value(c);
    if (v < bestValue || (v === bestValue && c.id < best.id)) {
      best = c;
      bestValue = v;
    }
  }
  return best;
}
