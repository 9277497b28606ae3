// The raftmq dashboard: plain DOM over the node's HTTP API (same origin), with the API
// token kept in this tab's sessionStorage and sent as a bearer token on every call. Text
// from the API is only ever set as textContent, never parsed as HTML.
"use strict";

const TOKEN_KEY = "raftmq.api_token";
const METRICS_EVERY_MS = 2000;
const NODES_EVERY_MS = 5000;
// Two minutes of points at one every two seconds.
const CHART_POINTS = 60;

const $ = (id) => document.getElementById(id);
let timers = [];

class Unauthorized extends Error {}

// A call to the API with the token; a 401 ends the session and shows the login form.
async function api(path, options = {}) {
  const headers = { Authorization: "Bearer " + (sessionStorage.getItem(TOKEN_KEY) || "") };
  const response = await fetch(path, { ...options, headers });
  if (response.status === 401) {
    logout("The API refused the token: log in again.");
    throw new Unauthorized();
  }
  if (!response.ok) {
    let message = response.statusText;
    try {
      message = (await response.json()).message || message;
    } catch (_) {
      // Not the API's JSON error: the status text says enough.
    }
    throw new Error(`HTTP ${response.status}: ${message}`);
  }
  return response;
}

function say(text) {
  $("status").textContent = text;
}

// Runs `work`, reporting failures in the status line (a 401 has already been handled).
async function attempt(work) {
  try {
    await work();
  } catch (e) {
    if (!(e instanceof Unauthorized)) say(e.message);
  }
}

function query(form) {
  const params = new URLSearchParams();
  for (const [name, value] of new FormData(form)) {
    if (value !== "") params.set(name, value);
  }
  return params.toString();
}

// Replaces `table`'s rows: one per item, one cell per column (a string, or a node).
function fill(table, items, columns) {
  const body = table.tBodies[0];
  body.replaceChildren();
  for (const item of items) {
    const row = body.insertRow();
    for (const column of columns) {
      const cell = row.insertCell();
      const value = column(item);
      if (value instanceof Node) {
        cell.append(value);
      } else {
        cell.textContent = value === undefined || value === null ? "" : String(value);
        if (typeof value === "number") cell.className = "num";
      }
    }
  }
}

// `alarm`: a "no" is trouble (a member not healthy) and shows as such.
function yesNo(value, alarm = false) {
  const span = document.createElement("span");
  span.className = (value ? "yes" : "no") + (alarm ? (value ? " ok" : " alarm") : "");
  span.textContent = value ? "yes" : "no";
  return span;
}

function duration(ms) {
  let s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400); s %= 86400;
  const h = Math.floor(s / 3600); s %= 3600;
  const m = Math.floor(s / 60); s %= 60;
  return (d ? d + "d " : "") + (d || h ? h + "h " : "") + m + "m " + s + "s";
}

// A section's search: its form's fields as the query of `path`, the page in its table.
async function search(section, path, columns) {
  const page = await (await api(path + "?" + query($(section + "-form")))).json();
  fill($(section + "-table"), page.items, columns);
  $(section + "-count").textContent = `${page.items.length} shown of ${page.total}`;
}

async function refreshNodes() {
  const list = await (await api("/api/v1/nodes")).json();
  fill($("nodes"), list.nodes, [
    (n) => n.id + (n.id === list.this_node ? " (this node)" : ""),
    (n) => n.address,
    (n) => (n.reachable ? n.role : "unreachable"),
    (n) => n.leader,
    (n) => n.term,
    (n) => n.committed,
    (n) => n.applied,
    (n) => yesNo(n.healthy, true),
    (n) => n.version,
    (n) => (n.uptime_ms === undefined ? "" : duration(n.uptime_ms)),
  ]);
  say(`Connected to node ${list.this_node}; ${list.nodes.length} members.`);
}

function searchClients() {
  return search("clients", "/api/v1/clients", [
    (c) => c.client_id,
    (c) => c.node,
    (c) => c.address,
    (c) => c.username,
    (c) => c.protocol,
    (c) => c.subscriptions,
    (c) => c.queued,
    (c) => kickButton(c.client_id),
  ]);
}

function kickButton(clientId) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "kick";
  button.textContent = "Kick";
  button.setAttribute("aria-label", "Kick " + clientId);
  button.addEventListener("click", () =>
    attempt(async () => {
      if (!window.confirm(`Disconnect ${clientId}? Its session stays.`)) return;
      await api("/api/v1/clients/" + encodeURIComponent(clientId), { method: "DELETE" });
      say(`${clientId} kicked.`);
      await searchClients();
    }),
  );
  return button;
}

function searchSessions() {
  return search("sessions", "/api/v1/sessions", [
    (s) => s.client_id,
    (s) => yesNo(s.connected),
    (s) => s.node,
    (s) => s.session_expiry,
    (s) => s.subscriptions,
    (s) => s.in_flight,
    (s) => s.queued,
    (s) => s.dropped,
  ]);
}

function searchSubscriptions() {
  return search("subscriptions", "/api/v1/subscriptions", [
    (s) => s.client_id,
    (s) => s.filter,
    (s) => s.qos,
    (s) => yesNo(s.no_local),
    (s) => yesNo(s.retain_as_published),
  ]);
}

function searchRetained() {
  return search("retained", "/api/v1/retained", [
    (r) => r.topic,
    (r) => r.qos,
    (r) => r.size,
    (r) => (r.payload === undefined ? "(binary)" : r.payload),
  ]);
}

// Sums every sample of each metric over its labels, from the Prometheus/OpenMetrics text.
function parseMetrics(text) {
  const sums = {};
  const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?:[^"}]|"(?:[^"\\]|\\.)*")*\})?\s+(\S+)/;
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = sample.exec(line);
    const value = m && Number(m[2]);
    if (m && Number.isFinite(value)) sums[m[1]] = (sums[m[1]] || 0) + value;
  }
  return sums;
}

// One series per chart; its points are also in the canvas's data-points attribute.
const charts = {
  connections: { canvas: "chart-connections", output: "last-connections", points: [] },
  received: { canvas: "chart-received", output: "last-received", points: [] },
  sent: { canvas: "chart-sent", output: "last-sent", points: [] },
};
let previous = null;

function push(chart, value) {
  chart.points.push(value);
  if (chart.points.length > CHART_POINTS) chart.points.shift();
  const canvas = $(chart.canvas);
  canvas.dataset.points = JSON.stringify(chart.points);
  $(chart.output).textContent = Number.isInteger(value) ? value : value.toFixed(1);
  draw(canvas, chart.points);
}

function draw(canvas, points) {
  const g = canvas.getContext("2d");
  const { width, height } = canvas;
  const pad = 20;
  g.clearRect(0, 0, width, height);
  const max = Math.max(1, ...points);
  g.fillStyle = "#57606a";
  g.font = "11px system-ui, sans-serif";
  g.fillText(String(Math.round(max * 10) / 10), 2, 12);
  g.fillText("0", 2, height - 4);
  g.strokeStyle = "#d0d7de";
  g.strokeRect(pad, 4, width - pad - 4, height - 8);
  // A short history spreads over a tenth of the full width at least, so it reads as a line.
  const step = (width - pad - 4) / (Math.min(CHART_POINTS, Math.max(points.length, 6)) - 1);
  const x0 = width - 4 - (points.length - 1) * step;
  g.strokeStyle = "#0a5bd3";
  g.lineWidth = 2;
  g.beginPath();
  points.forEach((v, i) => {
    const x = x0 + i * step;
    const y = height - 4 - (v / max) * (height - 8);
    if (i === 0) g.moveTo(x, y);
    else g.lineTo(x, y);
  });
  g.stroke();
  const last = points[points.length - 1];
  g.fillStyle = "#0a5bd3";
  g.fillRect(width - 7, height - 4 - (last / max) * (height - 8) - 3, 6, 6);
}

async function sampleMetrics() {
  const sums = parseMetrics(await (await api("/metrics")).text());
  const now = performance.now();
  const received = sums.raftmq_messages_received_total || 0;
  const sent = sums.raftmq_messages_sent_total || 0;
  push(charts.connections, sums.raftmq_connections || 0);
  if (previous) {
    const seconds = (now - previous.at) / 1000;
    // A restarted node's counters start again at 0: no rate across the restart.
    const rate = (current, before) => (current >= before ? (current - before) / seconds : 0);
    push(charts.received, rate(received, previous.received));
    push(charts.sent, rate(sent, previous.sent));
  }
  previous = { at: now, received, sent };
}

function every(ms, work) {
  attempt(work);
  timers.push(setInterval(() => attempt(work), ms));
}

function start() {
  $("login").hidden = true;
  $("app").hidden = false;
  $("logout").hidden = false;
  every(NODES_EVERY_MS, refreshNodes);
  every(METRICS_EVERY_MS, sampleMetrics);
  attempt(searchClients);
}

function logout(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  timers.forEach(clearInterval);
  timers = [];
  previous = null;
  for (const chart of Object.values(charts)) chart.points = [];
  $("app").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message || "";
  say("");
  $("token").focus();
}

function onSubmit(id, search) {
  $(id).addEventListener("submit", (event) => {
    event.preventDefault();
    attempt(search);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
    $("token").value = "";
    $("login-error").textContent = "";
    try {
      await api("/api/v1/nodes");
      start();
    } catch (e) {
      if (!(e instanceof Unauthorized)) {
        sessionStorage.removeItem(TOKEN_KEY);
        $("login-error").textContent = e.message;
      }
    }
  });
  $("logout").addEventListener("click", () => logout("Logged out."));
  onSubmit("clients-form", searchClients);
  onSubmit("sessions-form", searchSessions);
  onSubmit("subscriptions-form", searchSubscriptions);
  onSubmit("retained-form", searchRetained);
  if (sessionStorage.getItem(TOKEN_KEY)) start();
  else $("token").focus();
});
