/**
 * The dashboard's stylesheet, embedded so it ships inside the compiled package (tsc copies no
 * .css). Neutral light and dark themes follow the viewer's system setting; state colours are the
 * same in both so a row means the same thing everywhere.
 */
export const STYLE_CSS = String.raw`
:root {
  --bg: #f6f7f9;
  --panel: #ffffff;
  --text: #1d2330;
  --muted: #5f6b7a;
  --line: #e2e6eb;
  --axis: #5f6b7a;
  --grid: #e8ebef;
  --accent: #3b6fd8;
  --ready: #1f9d55;
  --easing: #2f80ed;
  --draining: #d68a00;
  --out: #d64545;
  --ready-tint: rgba(31, 157, 85, 0.06);
  --easing-tint: rgba(47, 128, 237, 0.08);
  --draining-tint: rgba(214, 138, 0, 0.1);
  --out-tint: rgba(214, 69, 69, 0.09);
  --callout: #fff7e6;
  --callout-line: #f0c36d;
  color-scheme: light dark;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #14171c;
    --panel: #1c2027;
    --text: #e4e8ee;
    --muted: #98a2b0;
    --line: #2c323b;
    --axis: #98a2b0;
    --grid: #2a3038;
    --accent: #7aa2f7;
    --ready-tint: rgba(31, 157, 85, 0.1);
    --easing-tint: rgba(47, 128, 237, 0.13);
    --draining-tint: rgba(214, 138, 0, 0.14);
    --out-tint: rgba(214, 69, 69, 0.15);
    --callout: #2a2415;
    --callout-line: #8a6a26;
  }
}
* { box-sizing: border-box; }
html, body { margin: 0; background: var(--bg); color: var(--text); }
body {
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "DejaVu Sans", sans-serif;
  padding: 16px 20px 28px;
  max-width: 1500px;
  margin: 0 auto;
}
.num, td.num, th.num { font-variant-numeric: tabular-nums; text-align: right; white-space: nowrap; }
.muted { color: var(--muted); }
header.top { display: flex; flex-wrap: wrap; align-items: center; gap: 10px 18px; margin-bottom: 6px; }
.brand { font-size: 18px; font-weight: 600; margin-right: auto; }
.brand .logo { color: var(--accent); }
.health { display: flex; flex-wrap: wrap; gap: 6px; }
.stat {
  background: var(--panel); border: 1px solid var(--line); border-radius: 8px;
  padding: 4px 10px; font-variant-numeric: tabular-nums; white-space: nowrap;
}
.stat b { font-weight: 600; }
.stat.serving b { color: var(--ready); }
.stat.draining b { color: var(--draining); }
.conn { font-size: 12px; color: var(--muted); white-space: nowrap; }
.conn::before { content: ""; display: inline-block; width: 8px; height: 8px; border-radius: 50%; margin-right: 6px; background: var(--out); }
.conn.live::before { background: var(--ready); }
.legend { margin: 4px 0 12px; color: var(--muted); }
.legend b { color: var(--text); }
.callout {
  background: var(--callout); border: 1px solid var(--callout-line); border-left-width: 5px;
  border-radius: 8px; padding: 10px 14px; margin: 0 0 14px;
}
.callout .headline { font-size: 16px; }
.callout .why { color: var(--muted); margin-top: 2px; }
.callout .least { font-size: 15px; margin-top: 2px; }
section.pool {
  background: var(--panel); border: 1px solid var(--line); border-radius: 10px;
  padding: 10px 14px 6px; margin-bottom: 14px; overflow-x: auto;
}
.pool h2 { font-size: 15px; margin: 0 0 2px; font-weight: 600; }
.pool .algo { color: var(--muted); margin-bottom: 6px; }
.pool .algo code { color: var(--text); background: var(--bg); border: 1px solid var(--line); border-radius: 4px; padding: 0 4px; }
table { border-collapse: collapse; width: 100%; }
th {
  font-size: 12px; font-weight: 600; color: var(--muted); text-align: left;
  border-bottom: 1px solid var(--line); padding: 6px 8px; white-space: nowrap;
}
td { padding: 6px 8px; border-bottom: 1px solid var(--line); }
tbody tr:last-child td { border-bottom: none; }
tr.state-ready { background: var(--ready-tint); }
tr.state-easing { background: var(--easing-tint); }
tr.state-draining { background: var(--draining-tint); }
tr.state-out { background: var(--out-tint); }
tr.state-ready td:first-child { box-shadow: inset 4px 0 var(--ready); }
tr.state-easing td:first-child { box-shadow: inset 4px 0 var(--easing); }
tr.state-draining td:first-child { box-shadow: inset 4px 0 var(--draining); }
tr.state-out td:first-child { box-shadow: inset 4px 0 var(--out); }
tr.state-out td { color: var(--muted); }
tr.busiest td { font-weight: 600; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 8px; vertical-align: -1px; }
.server-name { white-space: nowrap; }
.server-id { color: var(--muted); font-size: 12px; margin-left: 6px; }
.tag { font-size: 11px; font-weight: 600; border-radius: 10px; padding: 1px 7px; color: #fff; white-space: nowrap; }
.tag.ready { background: var(--ready); }
.tag.easing { background: var(--easing); }
.tag.draining { background: var(--draining); }
.tag.out { background: var(--out); }
.tag.hot { background: var(--draining); margin-left: 6px; }
.bar { display: inline-block; width: 54px; height: 7px; background: var(--line); border-radius: 4px; margin-left: 6px; vertical-align: 1px; overflow: hidden; }
.bar > i { display: block; height: 100%; background: var(--accent); }
.stale { color: var(--draining); font-weight: 600; }
.bad { color: var(--out); font-weight: 600; }
.charts { display: grid; grid-template-columns: 1fr 1fr; gap: 14px; }
@media (max-width: 900px) { .charts { grid-template-columns: 1fr; } }
.charts figure { margin: 0; background: var(--panel); border: 1px solid var(--line); border-radius: 10px; padding: 10px 12px 4px; min-width: 0; }
.charts figcaption { font-weight: 600; margin-bottom: 2px; }
.charts figcaption span { font-weight: 400; color: var(--muted); }
.chart { min-height: 200px; }
.chart .u-legend { font-size: 12px; }
.chart .u-legend th { font-weight: 500; color: var(--text); border: none; padding: 0 4px; }
.chart .u-legend td { border: none; padding: 0 4px; }
.empty { color: var(--muted); padding: 12px 0; }
footer { margin-top: 16px; color: var(--muted); font-size: 12px; }
.login { max-width: 420px; margin: 12vh auto; background: var(--panel); border: 1px solid var(--line); border-radius: 10px; padding: 20px 22px; }
.login input { width: 100%; font: inherit; padding: 6px 8px; margin: 8px 0; border: 1px solid var(--line); border-radius: 6px; background: var(--bg); color: var(--text); }
.login button { font: inherit; padding: 6px 14px; border-radius: 6px; border: 1px solid var(--accent); background: var(--accent); color: #fff; cursor: pointer; }
`;
