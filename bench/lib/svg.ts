/**
 * Small SVG charts written by hand (no plotting dependency): grouped bars with a spread whisker,
 * lines over time, and stacked areas for traffic shares. Enough for BENCHMARKS.md; readable as
 * plain files in any browser or on GitHub.
 */

const PALETTE = [
  "#4e79a7",
  "#f28e2b",
  "#e15759",
  "#76b7b2",
  "#59a14f",
  "#edc948",
  "#b07aa1",
  "#ff9da7",
  "#9c755f",
  "#bab0ac",
  "#1f77b4",
  "#8c564b",
];

export function color(i: number): string {
  return PALETTE[i % PALETTE.length]!;
}

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function tickLabel(v: number): string {
  if (v === 0) return "0";
  if (Math.abs(v) >= 1000) return `${Number((v / 1000).toPrecision(3))}k`;
  return String(Number(v.toPrecision(3)));
}

function frame(width: number, height: number, title: string, body: string[]): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="15" font-weight="bold">${esc(title)}</text>`,
    ...body,
    `</svg>`,
  ].join("\n");
}

export interface BarGroup {
  readonly label: string;
  /** One value per series; `lo`/`hi` draw a whisker (e.g. min–max over repetitions). */
  readonly values: readonly { readonly value: number; readonly lo?: number; readonly hi?: number }[];
}

export function barChart(opts: {
  title: string;
  yLabel: string;
  series: readonly string[];
  groups: readonly BarGroup[];
  width?: number;
  height?: number;
  /** Horizontal reference lines, e.g. a target. */
  refLines?: readonly { value: number; label: string }[];
  /** Logarithmic y axis (latencies spanning ms to seconds). */
  logY?: boolean;
}): string {
  const longest = Math.max(0, ...opts.groups.map((g) => g.label.length));
  const width =
    opts.width ??
    Math.max(640, opts.title.length * 9 + 60, 200 + opts.groups.length * (opts.series.length * 18 + 30));
  const legendRows =
    opts.series.length > 1 ? Math.ceil(opts.series.length / Math.max(1, Math.floor((width - 80) / 210))) : 0;
  const height = (opts.height ?? 360 + Math.round(longest * 3.5)) + legendRows * 18;
  const left = 70;
  // Rotated group labels run down and to the right: leave room for the last one.
  const right = Math.max(20, Math.round(longest * 6));
  const top = 40;
  const bottom = 60 + Math.round(longest * 3.5) + legendRows * 18;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  let max = 0;
  for (const g of opts.groups) for (const v of g.values) max = Math.max(max, v.hi ?? v.value, v.value);
  for (const r of opts.refLines ?? []) max = Math.max(max, r.value);
  max = niceMax(max);
  let minPos = Infinity;
  for (const g of opts.groups)
    for (const v of g.values)
      if (v.value > 0) minPos = Math.min(minPos, v.lo !== undefined && v.lo > 0 ? v.lo : v.value);
  const log = opts.logY === true && Number.isFinite(minPos);
  const lMin = log ? 10 ** Math.floor(Math.log10(minPos)) : 0;
  const lMax = log ? 10 ** Math.ceil(Math.log10(max)) : max;
  const y = (v: number) =>
    log
      ? top +
        plotH -
        ((Math.log10(Math.max(v, lMin)) - Math.log10(lMin)) / (Math.log10(lMax) - Math.log10(lMin))) * plotH
      : top + plotH - (Math.max(0, v) / max) * plotH;
  const out: string[] = [];
  const ticks = log
    ? Array.from({ length: Math.round(Math.log10(lMax / lMin)) + 1 }, (_, i) => lMin * 10 ** i)
    : Array.from({ length: 6 }, (_, i) => (max * i) / 5);
  for (const v of ticks) {
    out.push(`<line x1="${left}" x2="${width - right}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`);
    out.push(`<text x="${left - 6}" y="${y(v) + 4}" text-anchor="end">${tickLabel(v)}</text>`);
  }
  out.push(
    `<text transform="translate(16 ${top + plotH / 2}) rotate(-90)" text-anchor="middle">${esc(opts.yLabel)}</text>`,
  );
  const groupW = plotW / Math.max(1, opts.groups.length);
  const barW = Math.min(28, (groupW - 12) / Math.max(1, opts.series.length));
  opts.groups.forEach((g, gi) => {
    const x0 = left + gi * groupW + (groupW - barW * opts.series.length) / 2;
    g.values.forEach((v, si) => {
      const x = x0 + si * barW;
      out.push(
        `<rect x="${x}" y="${y(v.value)}" width="${barW - 2}" height="${Math.max(0, top + plotH - y(v.value))}" fill="${color(si)}"><title>${esc(`${g.label} ${opts.series[si] ?? ""}: ${v.value}`)}</title></rect>`,
      );
      if (v.lo !== undefined && v.hi !== undefined) {
        const cx = x + (barW - 2) / 2;
        out.push(`<line x1="${cx}" x2="${cx}" y1="${y(v.lo)}" y2="${y(v.hi)}" stroke="black"/>`);
        out.push(`<line x1="${cx - 3}" x2="${cx + 3}" y1="${y(v.lo)}" y2="${y(v.lo)}" stroke="black"/>`);
        out.push(`<line x1="${cx - 3}" x2="${cx + 3}" y1="${y(v.hi)}" y2="${y(v.hi)}" stroke="black"/>`);
      }
    });
    const lx = left + gi * groupW + groupW / 2;
    out.push(
      `<text transform="translate(${lx} ${top + plotH + 14}) rotate(30)" text-anchor="start">${esc(g.label)}</text>`,
    );
  });
  for (const r of opts.refLines ?? []) {
    out.push(
      `<line x1="${left}" x2="${width - right}" y1="${y(r.value)}" y2="${y(r.value)}" stroke="#c00" stroke-dasharray="5,4"/>`,
    );
    out.push(
      `<text x="${width - right - 4}" y="${y(r.value) - 4}" text-anchor="end" fill="#c00">${esc(r.label)}</text>`,
    );
  }
  out.push(`<line x1="${left}" x2="${left}" y1="${top}" y2="${top + plotH}" stroke="black"/>`);
  out.push(
    `<line x1="${left}" x2="${width - right}" y1="${top + plotH}" y2="${top + plotH}" stroke="black"/>`,
  );
  if (legendRows > 0) {
    const perRow = Math.ceil(opts.series.length / legendRows);
    opts.series.forEach((s, si) => {
      const lx = left + (si % perRow) * 210;
      const ly = height - legendRows * 18 + Math.floor(si / perRow) * 18 - 4;
      out.push(`<rect x="${lx}" y="${ly - 10}" width="12" height="12" fill="${color(si)}"/>`);
      out.push(`<text x="${lx + 16}" y="${ly}">${esc(s)}</text>`);
    });
  }
  return frame(width, height, opts.title, out);
}

export interface LineSeries {
  readonly name: string;
  readonly points: readonly (readonly [number, number])[];
}

/**
 * Lines over x, or (with `stacked`) stacked areas — e.g. each server's share of the traffic over
 * time. Optional shaded x-ranges mark scheduled events (a slowdown, a failure).
 */
export function lineChart(opts: {
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly LineSeries[];
  stacked?: boolean;
  yMax?: number;
  logY?: boolean;
  width?: number;
  height?: number;
  shade?: readonly { from: number; to: number; label: string }[];
}): string {
  const width = opts.width ?? 720;
  // Legend cells fit the longest series name (~7 px a character at this font size).
  const cell = Math.max(170, 30 + 7 * Math.max(0, ...opts.series.map((s) => s.name.length)));
  const legendRows = Math.ceil(opts.series.length / Math.max(1, Math.floor((width - 70) / cell)));
  const height = (opts.height ?? 360) + legendRows * 18;
  const left = 70;
  const right = 20;
  const top = 40;
  const bottom = 60 + legendRows * 18;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  let xMin = Infinity;
  let xMax = -Infinity;
  let yMax = 0;
  let yMin = Infinity;
  const stackedSeries: LineSeries[] = [];
  if (opts.stacked) {
    const acc = new Map<number, number>();
    for (const s of opts.series) {
      const pts = s.points.map(([x, v]) => {
        const base = acc.get(x) ?? 0;
        acc.set(x, base + v);
        return [x, base + v] as const;
      });
      stackedSeries.push({ name: s.name, points: pts });
    }
  }
  const drawn = opts.stacked ? stackedSeries : opts.series;
  for (const s of drawn)
    for (const [x, v] of s.points) {
      xMin = Math.min(xMin, x);
      xMax = Math.max(xMax, x);
      yMax = Math.max(yMax, v);
      if (v > 0) yMin = Math.min(yMin, v);
    }
  if (!Number.isFinite(xMin)) {
    xMin = 0;
    xMax = 1;
  }
  if (xMax === xMin) xMax = xMin + 1;
  yMax = opts.yMax ?? niceMax(yMax);
  const log = opts.logY === true && yMin < Infinity;
  const lMin = log ? 10 ** Math.floor(Math.log10(yMin)) : 0;
  const x = (v: number) => left + ((v - xMin) / (xMax - xMin)) * plotW;
  const y = (v: number) =>
    log
      ? top +
        plotH -
        ((Math.log10(Math.max(v, lMin)) - Math.log10(lMin)) / (Math.log10(yMax) - Math.log10(lMin))) * plotH
      : top + plotH - (Math.min(v, yMax) / yMax) * plotH;
  const out: string[] = [];
  for (const s of opts.shade ?? []) {
    out.push(
      `<rect x="${x(s.from)}" y="${top}" width="${Math.max(0, x(s.to) - x(s.from))}" height="${plotH}" fill="#f3e0e0"/>`,
    );
    out.push(`<text x="${x(s.from) + 4}" y="${top + 14}" fill="#a33">${esc(s.label)}</text>`);
  }
  const yTicks = log
    ? Array.from({ length: Math.round(Math.log10(yMax / lMin)) + 1 }, (_, i) => lMin * 10 ** i)
    : Array.from({ length: 6 }, (_, i) => (yMax * i) / 5);
  for (const v of yTicks) {
    out.push(`<line x1="${left}" x2="${width - right}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`);
    out.push(`<text x="${left - 6}" y="${y(v) + 4}" text-anchor="end">${tickLabel(v)}</text>`);
  }
  for (let i = 0; i <= 5; i++) {
    const v = xMin + ((xMax - xMin) * i) / 5;
    out.push(`<text x="${x(v)}" y="${top + plotH + 16}" text-anchor="middle">${tickLabel(v)}</text>`);
  }
  out.push(
    `<text x="${left + plotW / 2}" y="${top + plotH + 34}" text-anchor="middle">${esc(opts.xLabel)}</text>`,
  );
  out.push(
    `<text transform="translate(16 ${top + plotH / 2}) rotate(-90)" text-anchor="middle">${esc(opts.yLabel)}</text>`,
  );
  const order = opts.stacked ? [...drawn.keys()].reverse() : [...drawn.keys()];
  for (const i of order) {
    const s = drawn[i]!;
    if (s.points.length === 0) continue;
    const path = s.points
      .map(([px, py], k) => `${k === 0 ? "M" : "L"}${x(px).toFixed(1)},${y(py).toFixed(1)}`)
      .join(" ");
    if (opts.stacked) {
      const first = s.points[0]!;
      const last = s.points[s.points.length - 1]!;
      out.push(
        `<path d="${path} L${x(last[0]).toFixed(1)},${y(0)} L${x(first[0]).toFixed(1)},${y(0)} Z" fill="${color(i)}" stroke="none"/>`,
      );
    } else {
      out.push(`<path d="${path}" fill="none" stroke="${color(i)}" stroke-width="2"/>`);
    }
  }
  out.push(`<line x1="${left}" x2="${left}" y1="${top}" y2="${top + plotH}" stroke="black"/>`);
  out.push(
    `<line x1="${left}" x2="${width - right}" y1="${top + plotH}" y2="${top + plotH}" stroke="black"/>`,
  );
  const perRow = Math.max(1, Math.floor((width - left) / cell));
  drawn.forEach((s, i) => {
    const lx = left + (i % perRow) * cell;
    const ly = top + plotH + 54 + Math.floor(i / perRow) * 18;
    out.push(`<rect x="${lx}" y="${ly - 10}" width="12" height="12" fill="${color(i)}"/>`);
    out.push(`<text x="${lx + 16}" y="${ly}">${esc(s.name)}</text>`);
  });
  return frame(width, height, opts.title, out);
}
