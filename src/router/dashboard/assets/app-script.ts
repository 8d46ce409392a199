/**
 * The dashboard's browser script (plain ES2017, no build step), embedded so it ships inside the
 * compiled package. It listens to `v1/events` (history once, then one `snapshot` per second),
 * renders the server table with textContent only (server names come from registrations and are
 * never parsed as HTML), and draws the charts with uPlot. The unit tests parse this text, so a
 * syntax error fails the build's tests rather than a viewer's page.
 *
 * Written without template literals: it lives inside one.
 */
export const APP_JS = String.raw`(function () {
  "use strict";

  var MAX_POINTS = 300;
  var PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#edc948", "#76b7b2", "#ff9da7", "#9c755f",
    "#e15759", "#bab0ac", "#1b9e77", "#7570b3"];
  var STATE_LABEL = { ready: "ready", easing: "easing in", draining: "draining", out: "out of rotation" };
  var ALGORITHMS = {
    adaptive: "picks the better of two random servers by a score that joins the busy time the servers report, the router's own in-flight requests and the latency it sees — a server that slows down scores worse and gets less new work.",
    "task-seconds": "sends new work to the server with the lowest smoothed task-seconds/s until another one looks better (the COM+ method-timing rule).",
    "least-request": "picks the better of two random servers by the number of requests the router has in flight to each.",
    cpu: "prefers the server whose host reports the lowest CPU use.",
    "round-robin": "sends to each server in turn, whatever their load.",
    random: "picks a server at random, whatever its load."
  };

  var points = [];
  var colors = {};
  var colorCount = 0;
  var labels = {};
  var charts = {};
  var chartKeys = "";
  var lastFrame = null;

  function $(id) { return document.getElementById(id); }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function hostPort(url) {
    try { return new URL(url).host || url; } catch (e) { return url; }
  }
  function labelOf(s) { return s.name || hostPort(s.id); }
  function colorFor(key) {
    if (!colors[key]) { colors[key] = PALETTE[colorCount % PALETTE.length]; colorCount++; }
    return colors[key];
  }
  function isNum(v) { return typeof v === "number" && isFinite(v); }
  function fmt(v, digits) {
    if (!isNum(v)) return "–";
    return v.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
  }
  function fmtRate(v) { return !isNum(v) ? "–" : v >= 100 ? fmt(v, 0) : fmt(v, 1); }
  function fmtPct(v) { return !isNum(v) ? "–" : fmt(v * 100, v > 0 && v < 0.1 ? 1 : 0) + " %"; }
  function fmtMs(v) {
    if (!isNum(v)) return "–";
    if (v >= 1000) return fmt(v / 1000, v >= 10000 ? 1 : 2) + " s";
    return fmt(v, v >= 100 ? 0 : v >= 10 ? 1 : 2) + " ms";
  }
  function fmtAge(ms) {
    if (!isNum(ms)) return "never";
    if (ms < 1000) return fmt(ms, 0) + " ms";
    return fmt(ms / 1000, 1) + " s";
  }
  function fmtUptime(s) {
    if (!isNum(s)) return "–";
    s = Math.floor(s);
    var d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
    if (d > 0) return d + "d " + h + "h";
    if (h > 0) return h + "h " + m + "m";
    if (m > 0) return m + "m " + (s % 60) + "s";
    return s + "s";
  }
  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || "#888";
  }

  function allServers(frame) {
    var out = [];
    frame.pools.forEach(function (p) { p.servers.forEach(function (s) { out.push({ pool: p, s: s }); }); });
    return out;
  }
  function findServer(frame, key) {
    var all = allServers(frame);
    for (var i = 0; i < all.length; i++) if (all[i].s.key === key) return all[i];
    return null;
  }

  // ---- header: the router's own health ----
  function stat(label, value, cls) {
    var d = el("span", "stat" + (cls ? " " + cls : ""));
    d.appendChild(document.createTextNode(label + " "));
    d.appendChild(el("b", null, value));
    return d;
  }
  function renderHealth(frame) {
    var r = frame.router, h = $("health");
    h.replaceChildren(
      stat("router", r.draining ? "draining" : "serving", r.draining ? "draining" : "serving"),
      stat("up", fmtUptime(r.uptimeSeconds)),
      stat("mode", r.mode),
      stat("requests/s", fmtRate(r.requestRate)),
      stat("in flight", fmt(r.inFlight, 0)),
      stat("p50", fmtMs(r.latencyP50Ms)),
      stat("p99", fmtMs(r.latencyP99Ms)),
      stat("failovers", fmt(r.failoversTotal, 0) + (r.failoverRate > 0 ? " (" + fmtRate(r.failoverRate) + "/s)" : ""))
    );
    h.setAttribute("data-requests-per-second", String(r.requestRate));
  }

  // ---- the callout: who is busiest and why traffic moves ----
  function renderCallout(frame) {
    var box = $("callout");
    var hit = frame.busiest ? findServer(frame, frame.busiest) : null;
    if (!hit) { box.hidden = true; return; }
    var s = hit.s, pool = hit.pool;
    // The quickest other server in rotation, to show what "slow" is measured against.
    var quick = null;
    pool.servers.forEach(function (o) {
      if (o.state === "out" || o.key === s.key || !isNum(o.latencyP50Ms)) return;
      if (!quick || o.latencyP50Ms < quick.latencyP50Ms) quick = o;
    });
    var head = el("div", "headline");
    head.appendChild(document.createTextNode("Busiest server: "));
    var name = el("b", null, labelOf(s));
    name.style.color = colorFor(s.key);
    head.appendChild(name);
    var text = " — busy with " + fmt(s.busy, 1) + " calls on average";
    var slow = quick && isNum(s.latencyP50Ms) && s.latencyP50Ms > 1.5 * quick.latencyP50Ms;
    if (slow) {
      text += " because its calls are slow (p50 " + fmtMs(s.latencyP50Ms) + " against " +
        fmtMs(quick.latencyP50Ms) + " on " + labelOf(quick) + ").";
    } else if (isNum(s.latencyP50Ms)) {
      text += "; its calls take " + fmtMs(s.latencyP50Ms) + " (p50).";
    } else {
      text += ".";
    }
    text += " It gets " + fmtPct(s.share) + " of new requests" +
      (quick ? "; " + labelOf(quick) + " gets " + fmtPct(quick.share) : "") + ".";
    head.appendChild(document.createTextNode(text));
    var shy = leastServed(pool);
    var least = null;
    if (shy) {
      least = el("div", "headline least");
      least.appendChild(document.createTextNode("Least traffic: "));
      var lname = el("b", null, labelOf(shy));
      lname.style.color = colorFor(shy.key);
      least.appendChild(lname);
      var ltext = " gets " + fmtPct(shy.share) + " of new requests";
      if (isNum(shy.rank)) ltext += "; " + pool.algorithm + " ranks it " + shy.rank + " of " + inRotation(pool).length;
      // The router's running estimate reacts to a slowdown at once, where a 10 s p50 lags.
      var lat = isNum(shy.latencyEstimateMs) ? shy.latencyEstimateMs : shy.latencyP50Ms;
      var ref = quick && quick.key !== shy.key ? quick : null;
      if (isNum(lat)) {
        ltext += " — its recent calls took " + fmtMs(lat) +
          (ref && isNum(ref.latencyP50Ms) ? " against " + fmtMs(ref.latencyP50Ms) + " on " + labelOf(ref) : "");
      }
      least.appendChild(document.createTextNode(ltext + "."));
      box.setAttribute("data-least", shy.id);
    } else {
      box.removeAttribute("data-least");
    }
    var why = el("div", "why");
    why.appendChild(document.createTextNode("Why traffic moves: "));
    why.appendChild(el("b", null, pool.algorithm));
    why.appendChild(document.createTextNode(" " +
      (ALGORITHMS[pool.algorithm] || "ranks the servers by its score (lower is better).")));
    if (least) box.replaceChildren(head, least, why);
    else box.replaceChildren(head, why);
    box.setAttribute("data-busiest", s.id);
    box.hidden = false;
  }

  function inRotation(pool) {
    return pool.servers.filter(function (o) { return o.state === "ready" || o.state === "easing"; });
  }
  /** A server in rotation getting clearly less than an even share (under half of it), if any. */
  function leastServed(pool) {
    var live = inRotation(pool);
    if (live.length < 2 || !(pool.requestRate > 0)) return null;
    var min = null;
    live.forEach(function (o) { if (!min || o.share < min.share) min = o; });
    return min && min.share < 0.5 / live.length ? min : null;
  }

  // ---- one table per pool ----
  var COLUMNS = [
    ["server", "Server", ""], ["state", "State", ""], ["rank", "Rank", "num"], ["score", "Score", "num"],
    ["busy", "Busy (task-s/s)", "num"], ["inflight", "In flight router / reported", "num"],
    ["rps", "Req/s", "num"], ["share", "Share", "num"], ["errors", "Errors", "num"],
    ["p50", "p50", "num"], ["p99", "p99", "num"], ["age", "Report age", "num"]
  ];
  function cell(row, col, cls, text) {
    var td = el("td", cls, text);
    td.setAttribute("data-col", col);
    row.appendChild(td);
    return td;
  }
  function renderPools(frame) {
    var main = $("pools");
    if (frame.pools.length === 0) { main.replaceChildren(el("p", "empty", "No pools configured.")); return; }
    main.replaceChildren.apply(main, frame.pools.map(function (pool) {
      var sec = el("section", "pool");
      sec.setAttribute("data-pool", pool.name);
      sec.appendChild(el("h2", null, "Pool " + pool.name + " · " + pool.servers.length + " server" +
        (pool.servers.length === 1 ? "" : "s") + " · " + fmtRate(pool.requestRate) + " req/s"));
      var algo = el("div", "algo");
      algo.appendChild(document.createTextNode("Algorithm "));
      algo.appendChild(el("code", null, pool.algorithm));
      var keys = Object.keys(pool.params || {});
      if (keys.length) {
        algo.appendChild(document.createTextNode(" with "));
        keys.forEach(function (k, i) {
          algo.appendChild(el("code", null, k + "=" + String(pool.params[k])));
          if (i < keys.length - 1) algo.appendChild(document.createTextNode(" "));
        });
      }
      algo.setAttribute("data-algorithm", pool.algorithm);
      sec.appendChild(algo);
      if (pool.servers.length === 0) { sec.appendChild(el("p", "empty", "No servers in this pool.")); return sec; }
      var table = el("table"), thead = el("thead"), hr = el("tr");
      COLUMNS.forEach(function (c) { hr.appendChild(el("th", c[2], c[1])); });
      thead.appendChild(hr);
      table.appendChild(thead);
      var tbody = el("tbody");
      pool.servers.slice().sort(function (a, b) {
        return labelOf(a) < labelOf(b) ? -1 : labelOf(a) > labelOf(b) ? 1 : 0;
      }).forEach(function (s) {
        var tr = el("tr", "state-" + s.state + (frame.busiest === s.key ? " busiest" : ""));
        tr.setAttribute("data-server", s.id);
        tr.setAttribute("data-state", s.state);
        tr.setAttribute("data-busy", isNum(s.busy) ? String(s.busy) : "");
        tr.setAttribute("data-share", String(s.share));
        tr.setAttribute("data-requests-per-second", String(s.requestRate));
        tr.setAttribute("data-p50", isNum(s.latencyP50Ms) ? String(s.latencyP50Ms) : "");
        tr.setAttribute("data-p99", isNum(s.latencyP99Ms) ? String(s.latencyP99Ms) : "");
        tr.setAttribute("data-latency", isNum(s.latencyEstimateMs) ? String(s.latencyEstimateMs) : "");
        var name = cell(tr, "server", "server-name");
        var sw = el("span", "swatch");
        sw.style.background = colorFor(s.key);
        name.appendChild(sw);
        name.appendChild(document.createTextNode(labelOf(s)));
        if (s.name) name.appendChild(el("span", "server-id", hostPort(s.id)));
        if (frame.busiest === s.key) name.appendChild(el("span", "tag hot", "busiest"));
        var st = cell(tr, "state");
        st.appendChild(el("span", "tag " + s.state, STATE_LABEL[s.state] || s.state));
        cell(tr, "rank", "num", isNum(s.rank) ? s.rank : "–");
        cell(tr, "score", "num", isNum(s.score) ? (Math.abs(s.score) >= 100 ? fmt(s.score, 0) : fmt(s.score, 3)) : "–");
        cell(tr, "busy", "num", fmt(s.busy, 2));
        cell(tr, "inflight", "num", fmt(s.inFlight, 0) + " / " + (isNum(s.reportedInFlight) ? fmt(s.reportedInFlight, 0) : "–"));
        cell(tr, "rps", "num", fmtRate(s.requestRate));
        var share = cell(tr, "share", "num", fmtPct(s.share));
        var bar = el("span", "bar"), fill = el("i");
        fill.style.width = Math.round(Math.max(0, Math.min(1, s.share)) * 100) + "%";
        fill.style.background = colorFor(s.key);
        bar.appendChild(fill);
        share.appendChild(bar);
        cell(tr, "errors", "num" + (s.errorRatio > 0.01 ? " bad" : ""), isNum(s.errorRatio) ? fmtPct(s.errorRatio) : "–");
        cell(tr, "p50", "num", fmtMs(s.latencyP50Ms));
        cell(tr, "p99", "num", fmtMs(s.latencyP99Ms));
        cell(tr, "age", "num" + (!isNum(s.reportAgeMs) || s.reportAgeMs > 2000 ? " stale" : ""), fmtAge(s.reportAgeMs));
        tbody.appendChild(tr);
      });
      table.appendChild(tbody);
      sec.appendChild(table);
      return sec;
    }));
  }

  // ---- charts ----
  function seriesKeys() {
    var seen = {}, keys = [];
    points.forEach(function (p) {
      Object.keys(p.busy).forEach(function (k) { if (!seen[k]) { seen[k] = true; keys.push(k); } });
    });
    keys.sort(function (a, b) { var la = labels[a] || a, lb = labels[b] || b; return la < lb ? -1 : la > lb ? 1 : 0; });
    return keys;
  }
  function axes(yFormat, right) {
    var axis = cssVar("--axis"), grid = cssVar("--grid");
    var list = [
      { stroke: axis, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } },
      { stroke: axis, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 }, size: 56,
        values: function (u, vals) { return vals.map(yFormat); } }
    ];
    if (right) {
      list.push({ scale: right.scale, side: 1, stroke: axis, grid: { show: false }, ticks: { stroke: grid, width: 1 },
        size: 56, values: function (u, vals) { return vals.map(right.format); } });
    }
    return list;
  }
  function makeChart(id, series, yFormat, yRange, right) {
    var box = $(id);
    box.replaceChildren();
    var scales = { x: { time: true }, y: { range: yRange } };
    if (right) scales[right.scale] = { range: rangeFrom0 };
    var opts = {
      width: Math.max(300, box.clientWidth),
      height: 210,
      cursor: { drag: { x: false, y: false } },
      scales: scales,
      axes: axes(yFormat, right),
      series: [{}].concat(series.map(function (s) {
        var f = s.scale && right ? right.format : yFormat;
        return { label: s.label, stroke: s.color, width: s.width || 2, fill: s.fill, scale: s.scale || "y",
          points: { show: false }, value: function (u, v) { return v == null ? "–" : f(v); } };
      })),
      legend: { live: true }
    };
    return new uPlot(opts, [[]].concat(series.map(function () { return []; })), box);
  }
  function rangeFrom0(u, min, max) { return [0, Math.max(max || 0, 0.5) * 1.1]; }
  function rangeShare() { return [0, 1]; }
  function ensureCharts() {
    if (typeof uPlot === "undefined") {
      ["chart-busy", "chart-share", "chart-latency", "chart-failovers"].forEach(function (id) {
        $(id).replaceChildren(el("p", "empty", "Charts unavailable (uPlot did not load)."));
      });
      return false;
    }
    var keys = seriesKeys();
    var sig = keys.join("\n");
    if (!charts.latency) {
      charts.latency = makeChart("chart-latency", [
        { label: "p50", color: "#4e79a7" }, { label: "p99", color: "#e15759" }
      ], fmtAxisMs, rangeFrom0);
      charts.failovers = makeChart("chart-failovers", [
        { label: "failovers/s", color: "#e15759", fill: "rgba(225,87,89,0.15)" },
        { label: "requests/s", color: "#8a94a3", width: 1, scale: "rps" }
      ], fmtAxisNum, rangeFrom0, { scale: "rps", format: fmtAxisNum });
    }
    if (sig !== chartKeys || !charts.busy) {
      if (charts.busy) { charts.busy.destroy(); charts.share.destroy(); }
      var series = keys.map(function (k) { return { label: labels[k] || k, color: colorFor(k) }; });
      charts.busy = makeChart("chart-busy", series, fmtAxisNum, rangeFrom0);
      charts.share = makeChart("chart-share", series, fmtAxisPct, rangeShare);
      charts.keys = keys;
      chartKeys = sig;
    }
    return true;
  }
  function fmtAxisNum(v) { return v == null ? "" : Math.abs(v) >= 10 ? v.toFixed(0) : v >= 1 ? v.toFixed(1) : v.toFixed(2); }
  function fmtAxisPct(v) { return v == null ? "" : Math.round(v * 100) + "%"; }
  function fmtAxisMs(v) { return v == null ? "" : v >= 1000 ? (v / 1000).toFixed(1) + "s" : v.toFixed(v >= 10 ? 0 : 1); }
  function drawCharts() {
    if (!ensureCharts()) return;
    var xs = points.map(function (p) { return p.t / 1000; });
    var col = function (f) { return points.map(f); };
    charts.latency.setData([xs, col(function (p) { return p.p50; }), col(function (p) { return p.p99; })]);
    charts.failovers.setData([xs, col(function (p) { return p.failovers; }), col(function (p) { return p.rps; })]);
    var keys = charts.keys;
    charts.busy.setData([xs].concat(keys.map(function (k) {
      return col(function (p) { var v = p.busy[k]; return v === undefined ? null : v; });
    })));
    charts.share.setData([xs].concat(keys.map(function (k) {
      return col(function (p) { var v = p.share[k]; return v === undefined ? null : v; });
    })));
    [charts.busy, charts.share, charts.latency, charts.failovers].forEach(showLatest);
  }
  function showLatest(u) {
    var n = u.data[0].length;
    if (n > 0 && u.cursor.left < 0) u.setLegend({ idx: n - 1 });
  }
  function resize() {
    [["busy", "chart-busy"], ["share", "chart-share"], ["latency", "chart-latency"], ["failovers", "chart-failovers"]]
      .forEach(function (c) {
        var u = charts[c[0]];
        if (u) u.setSize({ width: Math.max(300, $(c[1]).clientWidth), height: 210 });
      });
  }
  var resizeTimer = 0;
  window.addEventListener("resize", function () { clearTimeout(resizeTimer); resizeTimer = setTimeout(resize, 150); });

  // ---- the stream ----
  function setConn(live, text) {
    var c = $("conn");
    c.className = "conn" + (live ? " live" : "");
    c.textContent = text;
  }
  function remember(frame) {
    allServers(frame).forEach(function (x) {
      labels[x.s.key] = (frame.pools.length > 1 ? x.pool.name + "/" : "") + labelOf(x.s);
      colorFor(x.s.key);
    });
  }
  function onFrame(frame) {
    lastFrame = frame;
    remember(frame);
    var last = points[points.length - 1];
    if (!last || last.t < frame.point.t) points.push(frame.point);
    if (points.length > MAX_POINTS) points.splice(0, points.length - MAX_POINTS);
    renderHealth(frame);
    renderCallout(frame);
    renderPools(frame);
    drawCharts();
    setConn(true, "live · " + new Date(frame.t).toLocaleTimeString());
  }
  var source = null;
  function connect() {
    source = new EventSource("v1/events");
    source.addEventListener("history", function (e) {
      var h = JSON.parse(e.data);
      points = (h.points || []).slice(-MAX_POINTS);
      if (lastFrame) drawCharts();
    });
    source.addEventListener("snapshot", function (e) { onFrame(JSON.parse(e.data)); });
    source.onerror = function () {
      setConn(false, "reconnecting…");
      if (source.readyState !== EventSource.CLOSED) return;
      // Closed for good: refused (too many viewers) or the token is no longer accepted.
      fetch("v1/history", { credentials: "same-origin" }).then(function (r) {
        if (r.status === 401) { location.reload(); return; }
        setTimeout(connect, 3000);
      }, function () { setTimeout(connect, 3000); });
    };
  }
  connect();
})();
`;
