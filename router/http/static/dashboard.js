// The smpphub dashboard: reads /dashboard/events (one JSON snapshot a second) with the
// admin token and shows it. No framework, no build step; data goes in through
// textContent only.
"use strict";

const HISTORY = 120; // seconds of throughput the chart keeps
const samples = [];
let token = null;

const $ = (id) => document.getElementById(id);

function takeToken() {
  const match = location.hash.match(/token=([^&]+)/);
  if (match) {
    sessionStorage.setItem("smpphub-admin-token", decodeURIComponent(match[1]));
    window.history.replaceState(null, "", location.pathname); // the token leaves the address bar
  }
  return sessionStorage.getItem("smpphub-admin-token");
}

function setStatus(text, kind) {
  const el = $("status");
  el.textContent = text;
  el.className = "status " + (kind || "");
}

function askToken(message) {
  sessionStorage.removeItem("smpphub-admin-token");
  $("board").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message || "";
  setStatus("token needed", "down");
}

function number(n) { return n === null || n === undefined ? "-" : n.toLocaleString("en"); }
function ratio(r) { return r === null || r === undefined ? "-" : (100 * r).toFixed(1) + " %"; }
function seconds(s) {
  if (s === null || s === undefined) return "-";
  return s < 1 ? "\u2264" + Math.round(s * 1000) + " ms" : "\u2264" + s + " s";
}

function fill(tableId, rows, cells, empty) {
  const body = $(tableId).querySelector("tbody");
  body.replaceChildren();
  if (!rows.length) {
    const tr = body.insertRow();
    const td = tr.insertCell();
    td.colSpan = $(tableId).querySelectorAll("th").length;
    td.className = "empty";
    td.textContent = empty;
    return;
  }
  for (const row of rows) {
    const tr = body.insertRow();
    for (const [key, text, bad] of cells(row)) {
      const td = tr.insertCell();
      td.textContent = text;
      td.dataset.key = key;
      if (bad) td.className = "bad";
    }
    tr.dataset.name = row.name || row.account;
  }
}

function render(s) {
  $("accepted-rate").textContent = number(s.accepted_per_s);
  $("sent-rate").textContent = number(s.sent_per_s);
  $("receipts-rate").textContent = number(s.receipts_per_s);
  $("total-accepted").textContent = number(s.accepted);
  $("total-delivered").textContent = number(s.delivered);
  $("backlog").textContent = number(s.backlog);
  $("submit-latency").textContent = seconds(s.latency.submit_p50) + " / " + seconds(s.latency.submit_p99);
  $("receipt-latency").textContent = seconds(s.latency.receipt_p50) + " / " + seconds(s.latency.receipt_p99);
  $("updated").textContent = "updated " + new Date(s.at * 1000).toLocaleTimeString();
  fill("accounts", s.accounts, (a) => [
    ["name", a.name], ["binds", number(a.binds)], ["accepted", number(a.accepted)],
    ["accepted_per_s", number(a.accepted_per_s)], ["sent_per_s", number(a.sent_per_s)],
    ["rejected", number(a.rejected), a.rejected > 0], ["error_ratio", ratio(a.error_ratio), a.error_ratio > 0.05],
    ["receipt_ratio", ratio(a.receipt_ratio)], ["held", number(a.held)], ["pending", number(a.pending)],
  ], "no traffic yet");
  fill("upstreams", s.upstreams, (u) => [
    ["name", u.name], ["mode", u.mode, u.mode !== "running"], ["available", u.available ? "yes" : "no", !u.available],
    ["binds", u.binds_up + " / " + u.binds, u.binds_up < u.binds], ["queued", number(u.queued)],
    ["in_flight", number(u.in_flight)], ["accepted_per_s", number(u.accepted_per_s)],
    ["error_ratio", ratio(u.error_ratio), u.error_ratio > 0.05],
  ], "no upstreams");
  fill("binds", s.binds, (b) => [["account", b.account], ["state", b.state], ["peer", b.peer]], "no ESME bound");
  samples.push([s.accepted_per_s, s.sent_per_s]);
  while (samples.length > HISTORY) samples.shift();
  draw();
}

function draw() {
  const canvas = $("chart");
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, pad = 18;
  ctx.clearRect(0, 0, w, h);
  const top = Math.max(1, ...samples.map(([a, s]) => Math.max(a, s)));
  ctx.fillStyle = "#6b7385";
  ctx.font = "11px system-ui, sans-serif";
  ctx.fillText(top.toLocaleString("en") + " /s", 4, 12);
  const style = getComputedStyle(document.documentElement);
  [0, 1].forEach((series) => {
    ctx.strokeStyle = style.getPropertyValue(series ? "--sent" : "--accepted").trim();
    ctx.lineWidth = 2;
    ctx.beginPath();
    const step = w / Math.max(30, samples.length - 1); // the first seconds spread over a quarter at least
    samples.forEach((point, i) => {
      const x = w - (samples.length - 1 - i) * step;
      const y = h - pad / 2 - (point[series] / top) * (h - pad * 1.5);
      if (i) ctx.lineTo(x, y); else ctx.moveTo(x, y);
    });
    ctx.stroke();
  });
}

async function stream() {
  let response;
  try {
    response = await fetch("/dashboard/events", { headers: { Authorization: "Bearer " + token }, cache: "no-store" });
  } catch (e) {
    setStatus("hub unreachable", "down");
    setTimeout(stream, 2000);
    return;
  }
  if (response.status === 401 || response.status === 403) {
    askToken("the hub refused this token (HTTP " + response.status + ")");
    return;
  }
  if (!response.ok) {
    setStatus("HTTP " + response.status, "down");
    setTimeout(stream, 5000);
    return;
  }
  $("login").hidden = true;
  $("board").hidden = false;
  setStatus("live", "live");
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (event.startsWith("data: ")) render(JSON.parse(event.slice(6)));
      }
    }
  } catch (e) {
    setStatus("reconnecting", "down");
  }
  setTimeout(stream, 500); // the hub ends each stream before its request timeout: open the next
}

document.addEventListener("DOMContentLoaded", () => {
  $("login").addEventListener("submit", (event) => {
    event.preventDefault();
    token = $("token").value.trim();
    if (!token) return;
    sessionStorage.setItem("smpphub-admin-token", token);
    stream();
  });
  token = takeToken();
  if (token) stream(); else askToken("");
});
