/**
 * The files the page loads, all held in memory from start-up: our own script and stylesheet
 * (embedded as TS modules, so they are inside the compiled package however it is installed) and
 * uPlot's browser build, read once from the installed `uplot` package. Nothing comes from a CDN,
 * so the dashboard works offline. Without uPlot the page still shows the tables.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { APP_JS } from "./assets/app-script.js";
import { STYLE_CSS } from "./assets/style.js";

export interface Asset {
  readonly body: Buffer;
  readonly contentType: string;
  readonly etag: string;
}

const JS = "text/javascript; charset=utf-8";
const CSS = "text/css; charset=utf-8";

export function asset(body: string | Buffer, contentType: string): Asset {
  const buf = typeof body === "string" ? Buffer.from(body, "utf8") : body;
  return {
    body: buf,
    contentType,
    etag: `"${createHash("sha256").update(buf).digest("base64url").slice(0, 22)}"`,
  };
}

/** Asset name (the path after `/dashboard/assets/`) → file. */
export function loadDashboardAssets(
  onMissing?: (name: string, err: unknown) => void,
): ReadonlyMap<string, Asset> {
  const assets = new Map<string, Asset>([
    ["app.js", asset(APP_JS, JS)],
    ["style.css", asset(STYLE_CSS, CSS)],
  ]);
  const require = createRequire(import.meta.url);
  for (const [name, type] of [
    ["uPlot.iife.min.js", JS],
    ["uPlot.min.css", CSS],
  ] as const) {
    try {
      assets.set(name, asset(readFileSync(require.resolve(`uplot/dist/${name}`)), type));
    } catch (err) {
      onMissing?.(name, err);
    }
  }
  return assets;
}
