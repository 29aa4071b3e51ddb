// The dashboard page: pick a series, poll /api/view every refresh_s and redraw what changed.
"use strict";

const PANELS = ["price", "rsi", "macd"];
const state = { symbol: null, interval: null, refreshMs: 5000, series: [] };

function el(id) { return document.getElementById(id); }

// "2022-01-31T00:00:00+00:00" → "2022-01-31 00:00Z": every time on the page is UTC.
function utc(ts) { return ts ? ts.replace("T", " ").replace(/:\d\d(\.\d+)?\+00:00$/, "Z") : ts; }

function setStatus(text, isError) {
  const status = el("status");
  status.textContent = text;
  status.className = isError ? "error" : "";
}

// Rows from text only (textContent): alert messages come from the database, never as HTML.
function fillTable(id, rows) {
  const body = el(id).querySelector("tbody");
  body.replaceChildren(...rows.map(({ cells, cls }) => {
    const tr = document.createElement("tr");
    if (cls) tr.className = cls;
    for (const cell of cells) {
      const td = document.createElement("td");
      td.textContent = cell === null || cell === undefined ? "–" : String(cell);
      tr.appendChild(td);
    }
    return tr;
  }));
}

function fillSelect(id, values, chosen) {
  const select = el(id);
  select.replaceChildren(...values.map((value) => new Option(value, value, false, value === chosen)));
}

async function loadSeries() {
  const reply = await fetch("/api/series");
  const body = await reply.json();
  if (!reply.ok) throw new Error(body.error || reply.statusText);
  state.refreshMs = body.refresh_s * 1000;
  state.series = body.series;
  const params = new URLSearchParams(location.search);
  const first = body.series[0] || {};
  state.symbol = state.symbol || params.get("symbol") || first.symbol || null;
  state.interval = state.interval || params.get("interval") || first.interval || null;
  const symbols = [...new Set(body.series.map((s) => s.symbol))];
  const intervals = [...new Set(body.series.filter((s) => s.symbol === state.symbol).map((s) => s.interval))];
  fillSelect("symbol", symbols, state.symbol);
  fillSelect("interval", intervals, state.interval);
}

function draw(view) {
  for (const name of PANELS) {
    const figure = view.figures[name];
    Plotly.react(el(`panel-${name}`), figure.data, figure.layout, { responsive: true, displaylogo: false });
  }
  const newest = el("newest-bar");
  newest.textContent = view.newest || "–";
  newest.dateTime = view.newest || "";
  document.body.dataset.newest = view.newest || "";
  document.body.dataset.barCount = view.bar_count;
  fillTable("active-alerts", view.active_alerts.map((a) => ({
    cells: [`${a.symbol} ${a.interval}`, a.rule, a.severity, utc(a.firing_since)], cls: a.severity,
  })));
  fillTable("freshness", view.freshness.map((f) => ({
    cells: [f.domain, f.state, utc(f.newest), f.detail], cls: f.state === "stale" ? "stale" : "fresh",
  })));
  fillTable("health", view.health.map((h) => ({
    cells: [h.name, h.status, [...h.reasons, ...h.notes].join("; ")], cls: h.status,
  })));
  setStatus(`updated ${new Date().toISOString().slice(11, 19)}Z`, false);
}

async function refresh() {
  try {
    if (!state.symbol || !state.interval) await loadSeries();
    if (state.symbol && state.interval) {
      const query = new URLSearchParams({ symbol: state.symbol, interval: state.interval });
      const reply = await fetch(`/api/view?${query}`, { cache: "no-store" });
      const body = await reply.json();
      if (!reply.ok) throw new Error(body.error || reply.statusText);
      draw(body);
    } else {
      setStatus("no bars stored yet", false);
    }
  } catch (error) {
    setStatus(String(error.message || error), true);
  } finally {
    setTimeout(refresh, state.refreshMs);
  }
}

el("symbol").addEventListener("change", async (event) => {
  state.symbol = event.target.value;
  state.interval = null;
  const intervals = state.series.filter((s) => s.symbol === state.symbol).map((s) => s.interval);
  state.interval = intervals[0] || null;
  fillSelect("interval", intervals, state.interval);
});
el("interval").addEventListener("change", (event) => { state.interval = event.target.value; });

refresh();
