/**
 * The dashboard in a real browser (Debian's headless Chromium driven by playwright-core) against a
 * real router with three demo apps behind real sidecars on loopback, under bounded load: a row per
 * server with live figures, charts drawn, one server made slow and seen losing traffic, the admin
 * token enforced and remembered as a session cookie that does not hold it. Leaves a screenshot in
 * test-artifacts/dashboard.png.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { test, type TestContext } from "node:test";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type Page } from "playwright-core";
import { createRouterDashboard } from "../../src/router/dashboard/router-dashboard.js";
import { runLoad, startCluster, startRouter, waitInRotation, type RouterHandle } from "../helpers/router.js";

const CHROMIUM = "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const TOKEN = "dashboard-test-token";
/** Generous: the browser, router, sidecars, apps and load share two busy cores. */
const WAIT_MS = 30_000;

// The page's globals, typed just enough for the functions run inside it (tsconfig has no DOM lib).
interface PageElement {
  getAttribute(name: string): string | null;
  querySelector(selector: string): PageElement | null;
  readonly textContent: string | null;
}
declare const document: {
  querySelector(selector: string): PageElement | null;
  querySelectorAll(selector: string): Iterable<PageElement> & { readonly length: number };
};
declare function getComputedStyle(e: unknown): { readonly backgroundColor: string };
interface PageCanvas {
  readonly width: number;
  readonly height: number;
  getContext(kind: "2d"): {
    getImageData(x: number, y: number, w: number, h: number): { data: ArrayLike<number> };
  };
}

/** The repository root: the nearest folder above this (compiled) file holding package.json. */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const up = dirname(dir);
    if (up === dir) return process.cwd();
    dir = up;
  }
  return dir;
}

async function launch(t: TestContext): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `${CHROMIUM} not found: the dashboard test needs Debian's chromium (run scripts/install-test-deps.sh)`,
    );
  }
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 30_000 });
  t.after(() => browser.close());
  return browser;
}

/** Keeps bounded load on the router until stopped (at most `max` requests, 4 in flight). */
function backgroundLoad(url: string, max = 20_000): { stop(): Promise<number> } {
  let stopped = false;
  let sent = 0;
  const done = (async () => {
    while (!stopped && sent < max) {
      await runLoad(url, { count: 40, concurrency: 4, timeoutMs: 10_000 });
      sent += 40;
    }
  })();
  return {
    async stop() {
      stopped = true;
      await done;
      return sent;
    },
  };
}

interface Row {
  id: string;
  state: string;
  busy: number;
  share: number;
  rps: number;
  p50: number;
  p99: number;
  latency: number;
}

/** page.waitForFunction that says which step timed out. */
async function waitInPage<A>(page: Page, what: string, fn: (arg: A) => boolean, arg: A): Promise<void> {
  try {
    await page.waitForFunction(fn as (arg: unknown) => boolean, arg as unknown, { timeout: WAIT_MS });
  } catch (err) {
    throw new Error(`timed out after ${WAIT_MS} ms waiting for ${what}`, { cause: err });
  }
}

function rows(page: Page): Promise<Row[]> {
  return page.$$eval("tr[data-server]", (trs) =>
    trs.map((tr) => ({
      id: tr.getAttribute("data-server") ?? "",
      state: tr.getAttribute("data-state") ?? "",
      busy: Number(tr.getAttribute("data-busy") || "NaN"),
      share: Number(tr.getAttribute("data-share")),
      rps: Number(tr.getAttribute("data-requests-per-second")),
      p50: Number(tr.getAttribute("data-p50") || "NaN"),
      p99: Number(tr.getAttribute("data-p99") || "NaN"),
      latency: Number(tr.getAttribute("data-latency") || "NaN"),
    })),
  );
}

/** Pixels of `canvas` close to the colour `css` (an `rgb(…)` string): proof a series was drawn. */
function colouredPixels(page: Page, selector: string, css: string): Promise<number> {
  return page.$eval(
    selector,
    (canvas, colour) => {
      const [r = 0, g = 0, b = 0] = (colour.match(/\d+/g) ?? []).map(Number);
      const c = canvas as unknown as PageCanvas;
      const data = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 0; i < data.length; i += 4) {
        if (
          data[i + 3]! > 200 &&
          Math.abs(data[i]! - r) + Math.abs(data[i + 1]! - g) + Math.abs(data[i + 2]! - b) < 60
        )
          n++;
      }
      return n;
    },
    css,
  );
}

void test("the dashboard shows every server live, draws the charts and shows a slow server losing traffic", async (t) => {
  const browser = await launch(t);
  const cluster = await startCluster(t, [
    { name: "fast-a", workers: 4, meanMs: 15, sigma: 0.3 },
    { name: "fast-b", workers: 4, meanMs: 15, sigma: 0.3 },
    { name: "steady", workers: 4, meanMs: 15, sigma: 0.3 },
  ]);
  const names = new Map(cluster.map((c) => [c.dataUrl, c.app.name]));
  const ref: { handle?: RouterHandle } = {};
  const dashboard = createRouterDashboard(
    { token: TOKEN },
    {
      servers: () => ref.handle!.router.snapshot(),
      inFlight: () => ref.handle!.router.inFlight,
      nameOf: (url) => names.get(url),
    },
  );
  const handle = (ref.handle = await startRouter(
    t,
    ["--server", cluster.map((c) => c.serverSpec).join(","), "--token", TOKEN],
    {
      observer: dashboard.recorder,
      adminRoutes: [dashboard.route],
    },
  ));
  dashboard.start();
  t.after(() => dashboard.close());
  const { url, adminUrl } = handle;
  await waitInRotation(
    adminUrl,
    cluster.map((c) => c.dataUrl),
    TOKEN,
  );

  // The token is enforced: no page, no data without it.
  assert.equal((await fetch(`${adminUrl}/v1/history`)).status, 401);
  assert.equal((await fetch(`${adminUrl}/v1/events`)).status, 401);
  const denied = await fetch(`${adminUrl}/dashboard`);
  assert.equal(denied.status, 401);
  assert.match(await denied.text(), /admin token/i);

  const load = backgroundLoad(url);
  t.after(() => load.stop());

  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const problems: string[] = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`console: ${m.text()}`);
  });
  // A person opens the printed URL once; the cookie keeps them in.
  await page.goto(`${adminUrl}/dashboard?token=${TOKEN}`);
  assert.equal(new URL(page.url()).search, "", "the token is dropped from the address bar");
  // What the browser keeps is a session, not the token: a leaked cookie cannot be replayed as the token.
  const jar = (await page.context().cookies(adminUrl)).filter((c) => c.name === "tasklb_admin");
  assert.equal(jar.length, 1, "one session cookie");
  assert.match(jar[0]!.value, /^v1\.\d+\.[A-Za-z0-9_-]{43}$/);
  assert.ok(!jar[0]!.value.includes(TOKEN), "the cookie does not carry the token");
  assert.equal(jar[0]!.httpOnly, true, "scripts cannot read it");
  assert.equal(jar[0]!.sameSite, "Strict");

  // A row per server, every one in rotation, with live figures.
  await waitInPage(
    page,
    "a row per server, each with requests/s > 0",
    (n) =>
      document.querySelectorAll("tr[data-server]").length === n &&
      [...document.querySelectorAll("tr[data-server]")].every(
        (tr) => Number(tr.getAttribute("data-requests-per-second")) > 0,
      ),
    cluster.length,
  );
  const first = await rows(page);
  assert.deepEqual(first.map((r) => r.id).sort(), cluster.map((c) => c.dataUrl).sort());
  for (const r of first) assert.ok(r.state === "ready" || r.state === "easing", `${r.id} is ${r.state}`);
  const names1 = await page.$$eval('tr[data-server] [data-col="server"]', (tds) =>
    tds.map((td) => td.textContent),
  );
  assert.ok(
    names1.some((n) => n?.includes("fast-a")),
    "rows carry the app names",
  );
  // Figures change as load runs (a new sample each second).
  const before = JSON.stringify(first.map((r) => [r.rps, r.share, r.busy, r.p50]));
  await waitInPage(
    page,
    "the figures to change with the next sample",
    (old) =>
      JSON.stringify(
        [...document.querySelectorAll("tr[data-server]")].map((tr) => [
          Number(tr.getAttribute("data-requests-per-second")),
          Number(tr.getAttribute("data-share")),
          Number(tr.getAttribute("data-busy") || "NaN"),
          tr.querySelector('[data-col="p50"]')?.textContent ?? "",
        ]),
      ) !== old,
    before,
  );
  assert.match((await page.textContent("#health")) ?? "", /requests\/s/);
  assert.match((await page.textContent(".pool .algo")) ?? "", /adaptive/);

  // The charts are drawn: four canvases, with a server's own colour on the share chart.
  await waitInPage(
    page,
    "four chart canvases",
    () => document.querySelectorAll(".chart canvas").length === 4,
    undefined,
  );
  const slow = cluster[2]!;
  const swatch = await page.$eval(
    `tr[data-server="${slow.dataUrl}"] .swatch`,
    (e) => getComputedStyle(e).backgroundColor,
  );

  // A few seconds of even traffic first, so the charts have a "before" in which it had its part.
  await waitInPage(
    page,
    "the slow server's share > 15 % before it is slowed",
    (id) =>
      document.querySelectorAll("#chart-share .u-legend .u-series").length >= 4 &&
      Number(document.querySelector(`tr[data-server="${id}"]`)?.getAttribute("data-share")) > 0.15,
    slow.dataUrl,
  );
  await page.waitForTimeout(5000);
  for (const chart of ["#chart-share", "#chart-busy"]) {
    let pixels = 0;
    for (let i = 0; i < 20 && pixels <= 30; i++) {
      pixels = await colouredPixels(page, `${chart} canvas`, swatch);
      if (pixels <= 30) await page.waitForTimeout(250);
    }
    assert.ok(pixels > 30, `${chart} draws the server's line in its colour ${swatch} (${pixels} pixels)`);
  }

  // One server becomes ten times slower: its row and its chart line show it losing traffic.
  slow.app.setSlowFactor(10);
  // Its row shows its latency climbing well above the others' and its share dropping, and the
  // callout names it as the server getting the least traffic, with the share chart's legend down
  // too. Read the way a person would, every quarter second: on a loaded machine the figures move
  // from second to second, so each need not show in the same sample, only within the window.
  let sawSlowLatency = false;
  let sawLowShare = false;
  let callout: { text: string; slowShare: number; fastest: number; legend: string[] } | undefined;
  const deadline = Date.now() + 60_000;
  while (!(sawSlowLatency && sawLowShare && callout) && Date.now() < deadline) {
    const now = await rows(page);
    const mine = now.find((r) => r.id === slow.dataUrl)!;
    const others = now.filter((r) => r !== mine);
    const othersP50 = Math.max(...others.map((r) => r.p50));
    // p99 over the last 10 s, or the router's running estimate once it sends the server nothing.
    if (Math.max(mine.p99 || 0, mine.latency || 0) > 1.5 * othersP50) sawSlowLatency = true;
    if (mine.share < 0.15) sawLowShare = true;
    if (!callout && (await page.getAttribute("#callout", "data-least")) === slow.dataUrl) {
      callout = {
        text: (await page.textContent("#callout")) ?? "",
        slowShare: mine.share,
        fastest: Math.max(...others.map((r) => r.share)),
        legend: await page.$$eval("#chart-share .u-legend .u-series", (rowsEl) =>
          rowsEl.map((r) => (r.textContent ?? "").replace(/\s+/g, " ").trim()),
        ),
      };
    }
    await page.waitForTimeout(250);
  }
  assert.ok(sawSlowLatency, "the slow server's latency rose well above the others' p50");
  assert.ok(sawLowShare, "the slow server's share fell below 15 %");
  assert.ok(callout, "the callout named the slow server as the one getting the least traffic");
  assert.match(callout.text, new RegExp(`Least traffic: ${slow.app.name}`));
  assert.ok(
    callout.slowShare < callout.fastest,
    `slow share ${callout.slowShare} below the others' ${callout.fastest}`,
  );
  // The share chart's legend shows the latest point: the slow server's line is down there too.
  const slowLegend = callout.legend.find((l) => l.startsWith(slow.app.name));
  assert.ok(slowLegend, `a share series for ${slow.app.name}: ${JSON.stringify(callout.legend)}`);
  const slowPct = Number(/(\d+)%/.exec(slowLegend)?.[1]);
  assert.ok(slowPct < 20, `share chart shows ${slowLegend}`);

  // Let the picture settle for the screenshot: a person sees the slow line stay down.
  await page.waitForTimeout(4000);
  mkdirSync(join(repoRoot(), "test-artifacts"), { recursive: true });
  await page.screenshot({ path: join(repoRoot(), "test-artifacts", "dashboard.png"), fullPage: true });
  const sent = await load.stop();
  t.diagnostic(`requests sent ${sent}; at the callout: ${JSON.stringify(callout)}`);
  assert.deepEqual(problems, [], "no errors in the page");
});
