// zest dashboard: polls GET /admin/stats with the admin token (kept in sessionStorage, sent
// as a Bearer header) and draws totals and uPlot charts. No framework, no network but its own
// origin. Model names come from clients: they are only ever set as textContent.
"use strict";
(function () {
  const KEY = "zest-admin-token";
  const MAX_POINTS = 600;
  const q = new URLSearchParams(location.search);
  const interval = Math.max(1, Math.min(60, Number(q.get("refresh")) || 3)) * 1000;
  const $ = (id) => document.getElementById(id);
  const body = document.body;
  let timer = 0, prev = null, updates = 0;
  const charts = [];

  // ---- formatting ----
  const fmtInt = (n) => (Math.abs(n) < 1e4 ? String(Math.round(n)) : Math.round(n).toLocaleString("en-US"));
  const fmtUSD = (v) => "$" + (v >= 100 ? v.toFixed(2) : v.toFixed(4));
  const fmtPct = (v) => (v * 100).toFixed(1) + "%";
  function fmtDur(s, count) {
    if (!count) return "–";
    if (s < 0.001) return (s * 1e6).toFixed(0) + " µs";
    if (s < 0.01) return (s * 1e3).toFixed(1) + " ms";
    if (s < 1) return (s * 1e3).toFixed(0) + " ms";
    return s.toFixed(2) + " s";
  }
  function fmtBytes(b) {
    const u = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (b >= 1024 && i < u.length - 1) { b /= 1024; i++; }
    return (i && b < 100 ? b.toFixed(1) : String(Math.round(b))) + " " + u[i];
  }
  const sum = (o) => Object.values(o || {}).reduce((a, b) => a + b, 0);
  const get = (o, path) => path.split(".").reduce((x, k) => (x == null ? undefined : x[k]), o);

  // render sets every [data-stat] element: its text, and data-raw (the number it shows) for
  // tests and tooltips.
  function renderTiles(st) {
    for (const el of document.querySelectorAll("[data-stat]")) {
      const v = get(st, el.dataset.stat);
      let text = "–", raw = "";
      if (v !== undefined && v !== null) {
        switch (el.dataset.fmt) {
          case "sum": raw = sum(v); text = fmtInt(raw); break;
          case "pct": raw = v; text = fmtPct(v); break;
          case "tokens": raw = v.input_tokens + v.output_tokens; text = fmtInt(raw); break;
          case "usd": raw = v; text = fmtUSD(v); break;
          case "p50p99": raw = v.p50_seconds; text = fmtDur(v.p50_seconds, v.count) + " / " + fmtDur(v.p99_seconds, v.count);
            el.dataset.raw2 = v.p99_seconds; break;
          case "bytes": raw = v.bytes; text = fmtBytes(v.bytes) + " / " + fmtBytes(v.max_bytes); el.dataset.raw2 = v.max_bytes; break;
          case "entries": raw = v.entries; text = fmtInt(v.entries) + " / " + fmtInt(v.max_entries); el.dataset.raw2 = v.max_entries; break;
          case "text": case "clock": raw = v; text = String(v); break;
          default: raw = v; text = fmtInt(v);
        }
      }
      el.textContent = text;
      el.dataset.raw = String(raw);
    }
    const tb = $("models").tBodies[0];
    tb.replaceChildren();
    for (const m of (get(st, "metrics.saved.by_model") || [])) {
      const tr = tb.insertRow();
      for (const [v, f] of [[m.model, String], [m.input_tokens, fmtInt], [m.output_tokens, fmtInt], [m.usd, fmtUSD]]) {
        tr.insertCell().textContent = f(v);
      }
    }
  }

  // ---- windowed numbers between two snapshots ----
  // quantile is telemetry.Quantile: histogram_quantile over cumulative buckets (no +Inf).
  function quantile(qq, buckets, count) {
    if (!count || !buckets.length) return null;
    const rank = qq * count;
    let lo = 0, prevC = 0;
    for (const b of buckets) {
      if (b.count >= rank) return b.count === prevC ? b.le : lo + (b.le - lo) * (rank - prevC) / (b.count - prevC);
      lo = b.le; prevC = b.count;
    }
    return buckets[buckets.length - 1].le;
  }
  function windowQ(qq, a, b) { // ms, or null without observations in the window
    if (!a || !b || !b.buckets) return null;
    const n = b.count - (a.count || 0);
    if (n <= 0) return null;
    const ab = a.buckets || [];
    const d = b.buckets.map((x, i) => ({ le: x.le, count: x.count - (ab[i] ? ab[i].count : 0) }));
    return quantile(qq, d, n) * 1000;
  }
  const rate = (a, b, dt) => (a == null || b == null ? null : Math.max(0, b - a) / dt);
  const ratio = (num, den) => (den > 0 ? (100 * num) / den : null);

  // ---- charts ----
  const palette = ["#2e7d32", "#1565c0", "#6a1b9a", "#ef6c00", "#757575", "#c62828", "#ad1457", "#00838f"];
  function chart(id, series, opts) {
    const el = $(id);
    const o = Object.assign({
      width: Math.max(200, el.clientWidth), height: 190,
      legend: { live: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true } },
      series: [{}].concat(series.map((s, i) => Object.assign({ stroke: palette[i % palette.length], width: 1.5, spanGaps: false }, s))),
      axes: [{}, { size: 56 }],
    }, opts || {});
    const data = [[]].concat(series.map(() => []));
    const u = new uPlot(o, data, el);
    const c = { el, u, data };
    charts.push(c);
    // Follow the card's width (window resizes, phone rotation, the grid reflowing).
    new ResizeObserver(() => {
      const w = Math.max(200, el.clientWidth);
      if (w !== u.width) u.setSize({ width: w, height: 190 });
    }).observe(el);
    return c;
  }
  function push(c, t, ys) {
    c.data[0].push(t);
    ys.forEach((y, i) => c.data[i + 1].push(y));
    if (c.data[0].length > MAX_POINTS) c.data.forEach((a) => a.shift());
    c.u.setData(c.data);
  }

  let C = null;
  function makeCharts() {
    const outcomes = [["exact hit", "exact_hit"], ["semantic hit", "semantic_hit"], ["coalesced", "coalesced"], ["miss", "miss"],
      ["bypass", "bypass"], ["429", "rate_limited"], ["error", "error"]];
    C = {
      outcomes: chart("c-outcomes", outcomes.map(([label]) => ({ label }))),
      hitrate: chart("c-hitrate", [{ label: "hit rate %" }], { scales: { x: { time: true }, y: { range: [0, 100] } } }),
      saved: chart("c-saved", [{ label: "tokens", scale: "tok" }, { label: "dollars", scale: "usd" }],
        { axes: [{}, { scale: "tok", size: 56 }, { scale: "usd", side: 1, size: 56, grid: { show: false } }],
          scales: { x: { time: true }, tok: {}, usd: {} } }),
      latency: chart("c-latency", [{ label: "hit p50" }, { label: "hit p99" }, { label: "upstream p50" }, { label: "upstream p99" }],
        { scales: { x: { time: true }, y: { distr: 3 } } }),
      ttft: chart("c-ttft", [{ label: "p50" }, { label: "p90" }, { label: "p99" }]),
      cache: chart("c-cache", [{ label: "exact bytes" }, { label: "semantic entries" }], { scales: { x: { time: true }, y: { range: [0, 100] } } }),
      semantic: chart("c-semantic", [{ label: "hits/s" }, { label: "shadow would-be/s" }]),
      ratelimit: chart("c-ratelimit", [{ label: "requests" }, { label: "tokens" }, { label: "concurrent" }]),
      uperr: chart("c-uperr", [{ label: "error %" }], { scales: { x: { time: true }, y: { range: [0, 100] } } }),
      outcomeKeys: outcomes.map(([, k]) => k),
    };
  }

  function plot(a, b) {
    const m = b.metrics;
    if (!m || !C) return;
    const t = Date.now() / 1000;
    const pm = a && a.metrics;
    const dt = a ? Math.max(0.001, b.uptime_seconds - a.uptime_seconds) : 0;
    const r = (f) => (pm && dt ? rate(f(pm), f(m), dt) : null);
    push(C.outcomes, t, C.outcomeKeys.map((k) => r((x) => x.requests[k])));
    const hits = (x) => x.requests.exact_hit + x.requests.semantic_hit + x.requests.coalesced;
    push(C.hitrate, t, [pm ? ratio(hits(m) - hits(pm), hits(m) - hits(pm) + m.requests.miss - pm.requests.miss) : null]);
    push(C.saved, t, [m.saved.input_tokens + m.saved.output_tokens, m.saved.usd]);
    const L = m.latency, PL = pm && pm.latency;
    push(C.latency, t, PL ? [windowQ(0.5, PL.hit, L.hit), windowQ(0.99, PL.hit, L.hit), windowQ(0.5, PL.upstream, L.upstream), windowQ(0.99, PL.upstream, L.upstream)] : [null, null, null, null]);
    push(C.ttft, t, PL ? [0.5, 0.9, 0.99].map((qq) => windowQ(qq, PL.ttft, L.ttft)) : [null, null, null]);
    push(C.cache, t, [ratio(m.exact_cache.bytes, m.exact_cache.max_bytes), ratio(m.semantic_cache.entries, m.semantic_cache.max_entries)]);
    push(C.semantic, t, [r((x) => x.semantic_cache.hits), r((x) => x.semantic_cache.shadow_hits)]);
    push(C.ratelimit, t, ["requests", "tokens", "concurrent"].map((k) => r((x) => x.ratelimit_rejections[k] || 0)));
    push(C.uperr, t, [pm ? ratio(m.upstream.errors - pm.upstream.errors, m.upstream.calls - pm.upstream.calls) : null]);
  }

  // ---- login and polling ----
  function show(state, msg) {
    body.dataset.state = state;
    $("login").classList.toggle("hidden", state !== "login");
    $("board").classList.toggle("hidden", state === "login" || state === "loading");
    $("logout").classList.toggle("hidden", state === "login");
    if (state === "login") {
      $("login-error").textContent = msg || "";
      $("status").textContent = "signed out";
      $("token").focus();
    } else if (msg) {
      $("status").textContent = msg;
    }
  }
  function signOut(msg) {
    clearTimeout(timer);
    sessionStorage.removeItem(KEY);
    prev = null;
    show("login", msg);
  }
  async function poll() {
    clearTimeout(timer);
    const tok = sessionStorage.getItem(KEY);
    if (!tok) return signOut("");
    let resp;
    try {
      resp = await fetch("stats", { headers: { Authorization: "Bearer " + tok }, cache: "no-store", credentials: "omit" });
    } catch (e) {
      show(prev ? "error" : "loading", "zest unreachable, retrying…");
      timer = setTimeout(poll, interval);
      return;
    }
    if (resp.status === 401 || resp.status === 403) return signOut("That token was refused (" + resp.status + ").");
    if (!resp.ok) {
      show("error", "GET /admin/stats: " + resp.status + ", retrying…");
      timer = setTimeout(poll, interval);
      return;
    }
    const st = await resp.json();
    show("ok");
    if (!C) makeCharts();
    renderTiles(st);
    plot(prev, st);
    prev = st;
    updates++;
    body.dataset.updates = String(updates);
    $("status").textContent = "updated " + new Date().toLocaleTimeString("en-GB");
    timer = setTimeout(poll, interval);
  }

  $("interval").textContent = String(interval / 1000);
  $("login-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const tok = $("token").value.trim();
    $("token").value = "";
    if (!tok) return;
    sessionStorage.setItem(KEY, tok);
    $("login-error").textContent = "";
    show("loading", "checking token…");
    poll();
  });
  $("logout").addEventListener("click", () => signOut(""));
  if (sessionStorage.getItem(KEY)) poll(); else show("login");
})();
