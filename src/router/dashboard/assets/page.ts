/**
 * The dashboard's HTML, embedded so it ships inside the compiled package. Links are relative
 * (`dashboard/assets/…`, `v1/events`), so the page also works behind a proxy that mounts the admin
 * port under a path prefix. Everything dynamic is filled in by app.js with textContent.
 */
export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tasklb · router dashboard</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="dashboard/assets/uPlot.min.css">
<link rel="stylesheet" href="dashboard/assets/style.css">
<script src="dashboard/assets/uPlot.iife.min.js" defer></script>
<script src="dashboard/assets/app.js" defer></script>
</head>
<body>
<header class="top">
  <div class="brand"><span class="logo">tasklb</span> router dashboard</div>
  <div id="health" class="health"></div>
  <div id="conn" class="conn">connecting…</div>
</header>
<p class="legend"><b>Busy</b> = task-seconds per second, as each server's sidecar measures it: how many calls the
server is busy with on average (2.0 = two calls at every moment). <b>Rank</b> 1 is the server the algorithm
prefers now. <b>p50 / p99</b> are response times the router sees over the last 10 s.</p>
<section id="callout" class="callout" hidden></section>
<main id="pools"><p class="empty">Waiting for the first sample…</p></main>
<section class="charts">
  <figure><figcaption>Busy per server <span>task-seconds/s</span></figcaption><div id="chart-busy" class="chart"></div></figure>
  <figure><figcaption>Share of traffic per server <span>% of new requests</span></figcaption><div id="chart-share" class="chart"></div></figure>
  <figure><figcaption>Router latency <span>p50 and p99 over the last 10 s, ms</span></figcaption><div id="chart-latency" class="chart"></div></figure>
  <figure><figcaption>Failovers <span>per second (left), with requests per second (right)</span></figcaption><div id="chart-failovers" class="chart"></div></figure>
</section>
<footer id="footer">Live: one sample per second, the last 5 minutes. JSON: <a href="v1/history">v1/history</a>, stream: v1/events.</footer>
</body>
</html>
`;

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Shown instead of the dashboard when the admin token is required and missing or wrong. */
export function loginPage(message: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tasklb · admin token</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="dashboard/assets/style.css">
</head>
<body>
<form class="login" method="post" action="dashboard/login">
  <div class="brand"><span class="logo">tasklb</span> router dashboard</div>
  <p>${escapeHtml(message)}</p>
  <label for="token">Admin token (the router's <code>--token</code>)</label>
  <input id="token" name="token" type="password" autocomplete="current-password" autofocus required>
  <button type="submit">Open dashboard</button>
</form>
</body>
</html>
`;
}
