/* tether dashboard: polls the JSON API and draws it with Chart.js (vendored). */
(function () {
  "use strict";

  const body = document.body;
  const POLL_MS = Number(body.dataset.pollMs) || 5000;
  const params = new URLSearchParams(location.search);
  const MODEL = params.get("model");
  const TOKEN_KEY = "tether.adminToken";
  const COLORS = ["#2f5fd0", "#e8710a", "#1a7f37", "#c62828", "#7b3fb5", "#00838f", "#6d4c41"];
  const EVENT_COLORS = {
    promoted: "#1a7f37", gate_passed: "#1a7f37", probation_passed: "#1a7f37",
    rolled_back: "#c62828", gate_failed: "#c62828", rollout_aborted: "#c62828",
    retrain_failed: "#c62828", trigger: "#7b3fb5", trained: "#6b7380",
    rollout_started: "#e8710a", rollout_step: "#e8710a", analysis: "#9aa0a6",
  };
  const MARKED_KINDS = new Set(["trigger", "trained", "gate_passed", "gate_failed", "promoted",
    "rolled_back", "retrain_failed", "rollout_started", "rollout_step", "rollout_aborted",
    "probation_passed"]);

  const $ = (id) => document.getElementById(id);
  const charts = {};
  let lastState = null;
  let markers = [];
  let metricChoices = null;

  // API ------------------------------------------------------------------------------
  function url(path, query) {
    const q = new URLSearchParams(query || {});
    if (MODEL) q.set("model", MODEL);
    const s = q.toString();
    return path + (s ? "?" + s : "");
  }

  async function getJSON(path, query, headers) {
    const response = await fetch(url(path, query), { headers: headers || {} });
    let data = null;
    try { data = await response.json(); } catch (e) { data = { message: response.statusText }; }
    if (!response.ok) {
      const error = new Error(errorText(data, response));
      error.status = response.status;
      throw error;
    }
    return data;
  }

  // formatting -----------------------------------------------------------------------
  const pad = (n) => String(n).padStart(2, "0");
  function clock(ts) {
    const d = new Date(ts * 1000);
    return pad(d.getHours()) + ":" + pad(d.getMinutes());
  }
  function stamp(ts) {
    const d = new Date(ts * 1000);
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
      pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  }
  function num(v, digits) {
    if (v === null || v === undefined) return "—";
    if (typeof v !== "number") return String(v);
    return Math.abs(v) >= 1000 ? v.toFixed(0) : Number(v.toFixed(digits === undefined ? 3 : digits)).toString();
  }
  const pValue = (v) => (v === null || v === undefined ? "—" : v < 0.001 ? v.toExponential(1) : v.toFixed(3));
  const pct = (v) => (v === null || v === undefined ? "—" : (100 * v).toFixed(1) + "%");
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v; else node.setAttribute(k, v);
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }
  function dl(pairs) {
    const list = el("dl");
    for (const [k, v] of pairs) list.append(el("dt", {}, k), el("dd", {}, v));
    return list;
  }
  const colorOf = (version) => COLORS[(Number(version) - 1) % COLORS.length];

  function banner(text, isError) {
    const node = $("banner");
    node.hidden = !text;
    node.textContent = text || "";
    node.className = "banner" + (isError ? " error" : "");
  }

  // event markers on every time chart (a small Chart.js plugin) ------------------------
  const eventLines = {
    id: "tetherEvents",
    afterDatasetsDraw(chart) {
      const x = chart.scales.x;
      if (!x || chart.config.options.tetherNoEvents) return;
      const { ctx, chartArea } = chart;
      ctx.save();
      ctx.font = "10px system-ui, sans-serif";
      for (const m of markers) {
        const px = x.getPixelForValue(m.ts * 1000);
        if (px < chartArea.left || px > chartArea.right) continue;
        ctx.strokeStyle = EVENT_COLORS[m.kind] || "#9aa0a6";
        ctx.fillStyle = ctx.strokeStyle;
        ctx.setLineDash([4, 3]);
        ctx.beginPath();
        ctx.moveTo(px, chartArea.top);
        ctx.lineTo(px, chartArea.bottom);
        ctx.stroke();
        ctx.setLineDash([]);
        ctx.save();
        ctx.translate(px + 3, chartArea.top + 2);
        ctx.rotate(Math.PI / 2);
        ctx.fillText(m.kind + (m.version ? " v" + m.version : ""), 0, 0);
        ctx.restore();
      }
      ctx.restore();
    },
  };
  Chart.register(eventLines);

  function timeChart(id, yOptions) {
    const chart = new Chart($(id), {
      type: "line",
      data: { datasets: [] },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false, parsing: false,
        spanGaps: false, normalized: true,
        interaction: { mode: "nearest", intersect: false },
        elements: { point: { radius: 2 }, line: { borderWidth: 2, tension: 0.2 } },
        scales: {
          x: { type: "linear", ticks: { callback: (v) => clock(v / 1000), maxTicksLimit: 8 } },
          y: Object.assign({ beginAtZero: true }, yOptions || {}),
        },
        plugins: {
          legend: { labels: { boxWidth: 12 } },
          tooltip: { callbacks: { title: (items) => items.length ? stamp(items[0].parsed.x / 1000) : "" } },
        },
      },
    });
    charts[id] = chart;
    return chart;
  }

  function setSeries(chart, datasets, span) {
    chart.data.datasets = datasets;
    chart.options.scales.x.min = span.since * 1000;
    chart.options.scales.x.max = span.until * 1000;
    chart.update("none");
  }

  function versionLabel(version) {
    if (!lastState) return "v" + version;
    if (lastState.champion && lastState.champion.version === version) return "v" + version + " (champion)";
    if (lastState.challenger && lastState.challenger.version === version) return "v" + version + " (challenger)";
    return "v" + version;
  }

  let bucketSeconds = 60;
  function line(version, points, field, extra) {
    // A bucket without traffic breaks the line instead of bridging the gap.
    const data = [];
    let previous = null;
    for (const p of points) {
      if (previous !== null && p.t - previous > 1.5 * bucketSeconds) {
        data.push({ x: (previous + bucketSeconds) * 1000, y: null });
      }
      data.push({ x: p.t * 1000, y: p[field] });
      previous = p.t;
    }
    return Object.assign({
      label: versionLabel(version),
      borderColor: colorOf(version), backgroundColor: colorOf(version), data,
    }, extra || {});
  }

  // renderers ------------------------------------------------------------------------
  function renderState(state) {
    lastState = state;
    const champion = $("champion-card").querySelector(".body");
    champion.replaceChildren();
    if (state.champion) {
      const c = state.champion;
      champion.append(
        el("div", { class: "big", id: "champion-version" }, "v" + c.version,
          el("span", { class: "pill good" }, pct(c.traffic_share) + " of traffic")),
        dl([["state", c.state || "—"], ["reason", c.reason || "—"],
            ["since", c.created_at ? stamp(c.created_at) : "—"],
            ["previous", state.previous ? "v" + state.previous : "none"]]));
    } else {
      champion.append(el("p", { class: "muted" }, "no champion"));
    }
    const challenger = $("challenger-card").querySelector(".body");
    challenger.replaceChildren();
    if (state.challenger) {
      const c = state.challenger;
      const steps = c.steps || [];
      const pairs = [["state", c.state || "—"], ["mode", c.mode || "—"],
        ["step", c.step === null || c.step === undefined ? "—" : (c.step + 1) + " of " + steps.length +
          " (" + steps.map(pct).join(" → ") + ")"],
        ["started", c.started_at ? stamp(c.started_at) : "—"]];
      if (c.analysis) {
        pairs.push(["analysis", c.analysis.kind + " at " + stamp(c.analysis.ts) + ": " + (c.analysis.reason || "")]);
        for (const [k, v] of Object.entries(c.analysis.data || {})) {
          if (typeof v !== "object") pairs.push([k, num(v)]);
        }
      }
      challenger.append(
        el("div", { class: "big", id: "challenger-version" }, "v" + c.version,
          el("span", { class: "pill" }, c.mode === "shadow" ? "shadow (mirrored)" : pct(c.traffic_share) + " of traffic")),
        dl(pairs));
    } else {
      challenger.append(el("p", { class: "muted" }, "no rollout in progress"));
    }
    renderController(state.controller);
    if (state.message) banner(state.message, false); else banner("");
    if (!metricChoices) {
      metricChoices = state.metrics;
      const select = $("metric");
      for (const m of state.metrics) {
        const option = el("option", { value: m }, m);
        if (m === state.metric.primary) option.selected = true;
        select.append(option);
      }
    }
    renderAdminButtons();
  }

  // The conditions the controller's last pass persisted; each keeps the time it began.
  function renderController(status) {
    const card = $("controller-card").querySelector(".body");
    card.replaceChildren();
    if (!status || !status.conditions) {
      card.append(el("p", { class: "muted" }, "no controller pass recorded yet"));
      return;
    }
    const pairs = status.conditions.map((c) => [c.type,
      el("span", { title: c.message, "data-condition": c.type, "data-status": c.status },
        c.status + " · " + c.reason + " since " + clock(c.since))]);
    card.append(dl(pairs), el("p", { class: "muted small" }, "last pass " + stamp(status.ts) +
      (status.retry_in ? "; failed, next attempt in " + Math.round(status.retry_in) + " s" : "")));
  }

  function renderTimeseries(ts) {
    const span = { since: ts.since, until: ts.until };
    bucketSeconds = ts.bucket_seconds;
    markers = ts.events.filter((e) => MARKED_KINDS.has(e.kind));
    const metric = [];
    for (const s of ts.series) {
      metric.push(line(s.version, s.points, "live_metric", { label: versionLabel(s.version) + " live" }));
      if (ts.estimate_source) {
        metric.push(line(s.version, s.points, "estimated_metric", {
          label: versionLabel(s.version) + " estimated", borderDash: [6, 4], pointRadius: 0,
          borderWidth: 1.5 }));
      }
    }
    $("metric-title").textContent = "Live " + ts.metric + " (from labels) and label-free estimate";
    $("metric-source").textContent = "live: " + ts.metric_source +
      (ts.estimate_source ? "; estimate: " + ts.estimate_source : "") +
      ". Buckets of " + ts.bucket_seconds + " s.";
    setSeries(charts["chart-metric"], metric, span);
    setSeries(charts["chart-requests"], ts.series.map((s) => line(s.version, s.points, "request_rate")), span);
    setSeries(charts["chart-errors"], ts.series.map((s) => line(s.version, s.points, "error_rate")), span);
    setSeries(charts["chart-latency"], ts.series.map((s) => line(s.version, s.points, "p99_latency_ms")), span);
    setSeries(charts["chart-coverage"], ts.series.map((s) => line(s.version, s.points, "label_coverage")), span);
    if (ts.message && !(lastState && lastState.message)) banner(ts.message, false);
  }

  const driftCharts = new Map();
  function featureVerdict(f) {
    if (f.drifted === null) return f.reason || "no verdict";
    const judged = f.p_value !== null
      ? f.method + " p=" + pValue(f.p_adjusted !== null ? f.p_adjusted : f.p_value)
      : f.method + " " + num(f.score, 3) + (f.drifted ? " ≥ " : " < ") + num(f.threshold, 3);
    return judged + " · psi " + num(f.psi, 3);
  }
  function renderDrift(drift) {
    const card = $("drift-card").querySelector(".body");
    card.replaceChildren();
    const grid = $("drift-features");
    if (drift.message || drift.drift_share === null) {
      card.append(el("p", { class: "muted" }, drift.message || "no drift data"));
      $("drift-note").textContent = "";
      for (const chart of driftCharts.values()) chart.destroy();
      driftCharts.clear();
      grid.replaceChildren(el("p", { class: "muted" }, drift.message || ""));
      return;
    }
    card.append(
      el("div", { class: "big", id: "drift-share" }, pct(drift.drift_share),
        el("span", { class: "pill " + (drift.drifted ? "bad" : "good") },
          drift.drifted ? "drift" : "no drift")),
      dl([["features drifting", drift.features.filter((f) => f.drifted).length + " shown of " + drift.feature_count],
          ["threshold", pct(drift.threshold) + " of features (tests at p < " + drift.alpha + ")"],
          ["rows", drift.current_rows + " current vs " + drift.reference_rows + " reference"],
          ["version", "v" + drift.version]]));
    $("drift-note").textContent = "v" + drift.version + ": reference (training) vs current window";
    const names = new Set(drift.features.map((f) => f.name));
    for (const [name, chart] of driftCharts) {
      if (!names.has(name)) { chart.destroy(); driftCharts.delete(name); }
    }
    const figures = [];
    for (const f of drift.features) {
      let chart = driftCharts.get(f.name);
      let figure;
      if (!chart) {
        const canvas = el("canvas", { id: "drift-" + f.name });
        figure = el("figure", { "data-feature": f.name }, el("figcaption"), canvas);
        chart = new Chart(canvas, {
          type: "bar",
          data: { labels: [], datasets: [
            { label: "reference", data: [], backgroundColor: "#9bb3e8" },
            { label: "current", data: [], backgroundColor: "#e8710a" }] },
          options: { animation: false, responsive: true, maintainAspectRatio: false,
            tetherNoEvents: true,
            scales: { y: { beginAtZero: true, ticks: { callback: (v) => Math.round(v * 100) + "%" } } },
            plugins: { legend: { labels: { boxWidth: 12 } } } },
        });
        driftCharts.set(f.name, chart);
      } else {
        figure = chart.canvas.closest("figure");
      }
      figure.querySelector("figcaption").replaceChildren(
        f.name + " ", el("span", { class: "pill " + (f.drifted === null ? "" : f.drifted ? "bad" : "good") },
          featureVerdict(f)));
      chart.data.labels = f.bins;
      chart.data.datasets[0].data = f.reference;
      chart.data.datasets[1].data = f.current;
      chart.update("none");
      figures.push(figure);
    }
    grid.replaceChildren(...figures);
  }

  function summarize(data) {
    const parts = [];
    for (const [k, v] of Object.entries(data || {})) {
      if (v === null || v === undefined) continue;
      if (typeof v === "object") {
        const inner = Object.entries(v).filter(([, x]) => typeof x !== "object")
          .map(([a, x]) => a + " " + num(x)).slice(0, 8);
        if (inner.length) parts.push(k + ": " + inner.join(", "));
      } else {
        parts.push(k + " " + num(v));
      }
    }
    return parts.join(" · ");
  }

  function renderEvents(payload) {
    const list = $("events");
    list.replaceChildren();
    if (!payload.events.length) {
      list.append(el("li", { class: "muted" }, payload.message || "no events"));
      return;
    }
    for (const e of payload.events) {
      list.append(el("li", { "data-kind": e.kind, "data-version": e.version === null ? "" : e.version },
        el("span", { class: "muted" }, stamp(e.ts)),
        el("span", { class: "kind kind-" + e.kind }, e.kind),
        el("span", {}, e.version ? "v" + e.version : ""),
        el("span", { class: "reason" }, e.reason || ""),
        el("span", { class: "numbers" }, summarize(e.data))));
    }
  }

  // admin ----------------------------------------------------------------------------
  const token = () => sessionStorage.getItem(TOKEN_KEY);
  let retrainAvailable = false;

  function adminMessage(text, isError) {
    const node = $("admin-message");
    node.textContent = text || "";
    node.style.color = isError ? "var(--bad)" : "var(--muted)";
  }

  async function unlock(candidate) {
    try {
      const answer = await getJSON("/api/auth", {}, { Authorization: "Bearer " + candidate });
      sessionStorage.setItem(TOKEN_KEY, candidate);
      retrainAvailable = answer.retrain_available;
      adminMessage("");
    } catch (error) {
      sessionStorage.removeItem(TOKEN_KEY);
      adminMessage(error.message, true);
    }
    renderAdminButtons();
  }

  let adminKey = null;
  function renderAdminButtons() {
    const unlocked = Boolean(token());
    const champion = lastState && lastState.champion;
    // Rebuilt only when something it shows changed, so a click never hits a stale button.
    const key = [unlocked, champion && champion.version, lastState && lastState.previous,
      retrainAvailable].join("/");
    if (key === adminKey) return;
    adminKey = key;
    $("admin-locked").hidden = unlocked;
    $("admin-unlocked").hidden = !unlocked;
    const buttons = $("admin-buttons");
    buttons.replaceChildren();
    if (!unlocked) return;
    if (champion && lastState.previous) {
      const b = el("button", { type: "button", class: "danger", id: "rollback-button" },
        "Roll back v" + champion.version + " → v" + lastState.previous);
      b.addEventListener("click", rollback);
      buttons.append(b);
    }
    const r = el("button", { type: "button", id: "retrain-button" }, "Retrain now");
    if (!retrainAvailable) r.title = "no controller runs in this server process";
    r.addEventListener("click", retrain);
    buttons.append(r);
  }

  async function post(path, payload) {
    const response = await fetch(url(path), {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: "Bearer " + token() },
      body: JSON.stringify(payload),
    });
    const data = await response.json().catch(() => ({ message: response.statusText }));
    if (response.status === 401) { sessionStorage.removeItem(TOKEN_KEY); renderAdminButtons(); }
    if (!response.ok) throw new Error(errorText(data, response));
    return data;
  }

  // every error answer is {"error": kind, "message": what happened and how to fix it}
  function errorText(data, response) {
    return (data && (data.message || data.error)) || ("HTTP " + response.status);
  }

  async function rollback() {
    const champion = lastState.champion.version;
    const reason = $("action-reason").value.trim() || "manual rollback from the dashboard";
    if (!confirm("Roll back champion v" + champion + " to v" + lastState.previous + "?\nReason: " + reason)) return;
    try {
      const done = await post("/admin/rollback", { reason });
      adminMessage("rolled back v" + done.rolled_back + "; v" + done.champion + " is champion");
    } catch (error) { adminMessage(error.message, true); }
    refresh();
  }

  async function retrain() {
    const reason = $("action-reason").value.trim() || "manual retrain from the dashboard";
    if (!confirm("Retrain " + body.dataset.model + " now?\nReason: " + reason)) return;
    try {
      await post("/admin/retrain", { reason });
      adminMessage("retrain requested: the controller will train, gate and roll out");
    } catch (error) { adminMessage(error.message, true); }
    refresh();
  }

  // polling --------------------------------------------------------------------------
  let running = false;
  async function refresh() {
    if (running) return;
    running = true;
    const query = { window: $("window").value };
    if ($("metric").value) query.metric = $("metric").value;
    try {
      const [state, ts, drift, events] = await Promise.all([
        getJSON("/api/state"), getJSON("/api/timeseries", query), getJSON("/api/drift"),
        getJSON("/api/events", { limit: 200 })]);
      renderState(state);
      renderTimeseries(ts);
      renderDrift(drift);
      renderEvents(events);
      $("refreshed").textContent = "updated " + stamp(Date.now() / 1000).slice(11);
      body.dataset.loaded = "true";
    } catch (error) {
      banner(error.message, true);
      $("refreshed").textContent = "error";
      body.dataset.loaded = "error";
    } finally {
      running = false;
    }
  }

  function start() {
    timeChart("chart-metric");
    timeChart("chart-requests");
    timeChart("chart-errors", { ticks: { callback: (v) => (100 * v).toFixed(1) + "%" } });
    timeChart("chart-latency");
    timeChart("chart-coverage", { max: 1, ticks: { callback: (v) => Math.round(100 * v) + "%" } });
    $("token-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const value = $("token").value.trim();
      if (value) unlock(value);
    });
    $("lock").addEventListener("click", () => { sessionStorage.removeItem(TOKEN_KEY); renderAdminButtons(); });
    $("window").addEventListener("change", refresh);
    $("metric").addEventListener("change", refresh);
    if (token()) unlock(token());
    refresh();
    setInterval(refresh, POLL_MS);
  }

  window.tetherDashboard = { charts, driftCharts, refresh };
  start();
})();
