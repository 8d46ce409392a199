/**
 * What the demo shows: a live table refreshed about once a second (plain ANSI on a terminal, one
 * line per second otherwise) and a summary table at the end. Pure string rendering; main.ts writes.
 */
import { percentile, type LoadSample } from "./load-generator.js";

export interface LiveRow {
  readonly name: string;
  /** e.g. "20 ms × 4" */
  readonly speed: string;
  readonly state: string;
  /** Share of answers in the window, 0..1. */
  readonly share: number;
  /** Task-seconds per second from the sidecar's report (null before rates exist). */
  readonly busy: number | null;
  readonly inFlight: number;
  readonly p50: number;
  readonly p99: number;
  /** A note such as "5× slower now". */
  readonly note: string;
}

export interface LiveHeader {
  readonly elapsedS: number;
  readonly sent: number;
  readonly inFlight: number;
  readonly answeredPerS: number;
  readonly errors: number;
}

const ms = (x: number): string => (Number.isFinite(x) ? `${x < 10 ? x.toFixed(1) : Math.round(x)} ms` : "-");
const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;

export function renderTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  rightAlign: ReadonlySet<number>,
): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const fmt = (r: readonly string[]) =>
    "  " +
    r
      .map((c, i) => (rightAlign.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  return [fmt(header), ...rows.map(fmt)];
}

export function renderLive(h: LiveHeader, rows: readonly LiveRow[]): string[] {
  const lines = [
    `t=${h.elapsedS.toFixed(1)}s  sent ${h.sent}  in flight ${h.inFlight}  answered ${h.answeredPerS.toFixed(0)}/s  errors ${h.errors}`,
  ];
  lines.push(
    ...renderTable(
      ["server", "speed", "state", "share", "task-s/s", "in-flight", "p50", "p99", ""],
      rows.map((r) => [
        r.name,
        r.speed,
        r.state,
        pct(r.share),
        r.busy === null ? "-" : r.busy.toFixed(2),
        String(r.inFlight),
        ms(r.p50),
        ms(r.p99),
        r.note,
      ]),
      new Set([3, 4, 5, 6, 7]),
    ),
  );
  return lines;
}

export function renderLine(h: LiveHeader, rows: readonly LiveRow[]): string {
  const parts = rows.map(
    (r) =>
      `${r.name} ${r.state} ${pct(r.share)} busy ${r.busy === null ? "-" : r.busy.toFixed(2)} p99 ${ms(r.p99)}${r.note ? ` (${r.note})` : ""}`,
  );
  return `t=${h.elapsedS.toFixed(0)}s ${h.answeredPerS.toFixed(0)}/s err ${h.errors} | ${parts.join(" | ")}`;
}

export function renderSummary(
  title: string,
  names: readonly string[],
  samples: readonly LoadSample[],
): string[] {
  const isError = (s: LoadSample) => s.status === 0 || s.status >= 500;
  const rowFor = (label: string, list: readonly LoadSample[]) => {
    const lat = list.filter((s) => !isError(s)).map((s) => s.latencyMs);
    return [
      label,
      String(list.length),
      String(list.filter(isError).length),
      samples.length ? pct(list.length / samples.length) : "-",
      ms(percentile(lat, 50)),
      ms(percentile(lat, 99)),
      ms(percentile(lat, 99.9)),
    ];
  };
  const rows = names.map((n) =>
    rowFor(
      n,
      samples.filter((s) => s.server === n),
    ),
  );
  const unanswered = samples.filter((s) => !names.includes(s.server));
  if (unanswered.length > 0) rows.push(rowFor("(none)", unanswered));
  rows.push(rowFor("all", samples));
  return [
    title,
    ...renderTable(
      ["server", "requests", "errors", "share", "p50", "p99", "p99.9"],
      rows,
      new Set([1, 2, 3, 4, 5, 6]),
    ),
  ];
}
