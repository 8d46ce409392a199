/**
 * Output of simulation runs: fixed-width tables for the terminal and CSV/JSON files for plots.
 */
import type { SimResult } from "./simulate.js";

const f1 = (n: number): string => (Number.isFinite(n) ? n.toFixed(1) : "-");
const f2 = (n: number): string => (Number.isFinite(n) ? n.toFixed(2) : "-");

/** One table per scenario: a row per algorithm, with the p99 ratio to the oracle's when it ran. */
export function formatScenarioTable(title: string, results: readonly SimResult[]): string {
  const oracle = results.find((r) => r.algorithm === "oracle");
  const ids = Object.keys(results[0]?.share ?? {});
  const showShares = ids.length <= 8;
  const header = ["algorithm", "rate/s", "p50 ms", "p99 ms", "p99.9 ms", "errors", "t/o+open", "p99/oracle"];
  if (showShares) header.push(`share ${ids.join("/")}`);
  const rows = results.map((r) => {
    const row = [
      r.algorithm,
      r.achievedRate.toFixed(0),
      f1(r.p50Ms),
      f1(r.p99Ms),
      f1(r.p999Ms),
      String(r.errors),
      String(r.timeouts + r.unfinished),
      oracle ? f2(r.p99Ms / oracle.p99Ms) : "-",
    ];
    if (showShares)
      row.push(ids.map((id) => Math.round(100 * (r.share[id] ?? 0)).toString()).join("/") + " %");
    return row;
  });
  return `${title}\n${table(header, rows)}`;
}

export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]): string =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n") + "\n";
}

/** Summary rows as CSV (one per run), for plots. */
export function resultsCsv(
  results: readonly SimResult[],
  extra: (r: SimResult) => Record<string, string | number> = () => ({}),
): string {
  const base = (r: SimResult): Record<string, string | number> => ({
    scenario: r.scenario,
    algorithm: r.algorithm,
    seed: r.seed,
    duration_s: r.durationS,
    offered_rate: r.offeredRate.toFixed(1),
    achieved_rate: r.achievedRate.toFixed(1),
    p50_ms: r.p50Ms.toFixed(3),
    p99_ms: r.p99Ms.toFixed(3),
    p999_ms: r.p999Ms.toFixed(3),
    errors: r.errors,
    timeouts: r.timeouts,
    unfinished: r.unfinished,
    polls_per_s_per_router: r.pollsPerSecondPerRouter.toFixed(1),
    ...extra(r),
  });
  const rows = results.map(base);
  const cols = Object.keys(rows[0] ?? {});
  return (
    [cols.join(","), ...rows.map((r) => cols.map((c) => String(r[c] ?? "")).join(","))].join("\n") + "\n"
  );
}

/** Traffic share over time: one row per (algorithm, second), one column per server. */
export function sharePerSecondCsv(results: readonly SimResult[]): string {
  const ids = Object.keys(results[0]?.sharePerSecond ?? {});
  const lines = [["algorithm", "second", ...ids].join(",")];
  for (const r of results) {
    const n = r.sharePerSecond[ids[0] ?? ""]?.length ?? 0;
    for (let s = 0; s < n; s++)
      lines.push([r.algorithm, s, ...ids.map((id) => r.sharePerSecond[id]?.[s] ?? 0)].join(","));
  }
  return lines.join("\n") + "\n";
}
