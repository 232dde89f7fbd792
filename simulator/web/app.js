// The simulator's live page: polls /snapshot, posts the control forms to the same API
// a test in any language uses. Every text from the network is set with textContent,
// never as HTML: an MO or a submit can carry anything.
"use strict";

const POLL_MS = 1000;
const STALE_AFTER_MS = 5000;
let lastOk = 0;

function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text == null ? "" : String(text);
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}

function fill(tbody, rows) {
  tbody.replaceChildren(...rows);
}

function renderCounters(stats) {
  const dl = document.getElementById("counters");
  const items = [];
  for (const [key, value] of Object.entries(stats)) {
    const div = document.createElement("div");
    const dt = document.createElement("dt");
    const dd = document.createElement("dd");
    dt.textContent = key;
    dd.textContent = typeof value === "object" ? JSON.stringify(value) : String(value);
    dd.dataset.counter = key;
    div.append(dt, dd);
    items.push(div);
  }
  dl.replaceChildren(...items);
}

function renderBinds(binds) {
  fill(document.querySelector("#binds tbody"), binds.map((b) => {
    const tr = document.createElement("tr");
    tr.dataset.bindId = b.id;
    for (const v of [b.id, b.system_id, b.bind_type, b.hung ? b.state + " (hung)" : b.state, b.peer]) cell(tr, v);
    const actions = cell(tr, "");
    for (const op of ["drop", "hang"]) {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = op;
      button.addEventListener("click", () => call("POST", `/binds/${b.id}/${op}`).then(poll));
      actions.appendChild(button);
    }
    return tr;
  }));
}

function renderMessages(messages) {
  fill(document.querySelector("#messages tbody"), messages.map((m) => {
    const tr = document.createElement("tr");
    cell(tr, new Date(m.received_at * 1000).toLocaleTimeString());
    cell(tr, m.system_id);
    cell(tr, m.source_addr);
    cell(tr, m.destination_addr);
    cell(tr, m.text, "text");
    cell(tr, m.parts);
    cell(tr, m.state);
    cell(tr, m.receipts_sent);
    return tr;
  }));
}

async function call(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  const response = await fetch(path, init);
  const data = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  if (!response.ok) {
    const field = data.field ? ` (${data.field})` : "";
    throw new Error(`${response.status}: ${data.error || "failed"}${field}`);
  }
  return data;
}

async function poll() {
  const status = document.getElementById("status");
  try {
    const snap = await call("GET", "/snapshot?limit=50");
    renderCounters(snap.stats);
    renderBinds(snap.binds);
    renderMessages(snap.messages);
    lastOk = Date.now();
    status.textContent = `live · ${new Date().toLocaleTimeString()}`;
    status.className = "";
  } catch (err) {
    if (Date.now() - lastOk > STALE_AFTER_MS) {
      status.textContent = `not reachable (${err.message})`;
      status.className = "stale";
    }
  }
}

// one request at a time: the next poll is scheduled when this one has finished
async function loop() {
  await poll();
  setTimeout(loop, POLL_MS);
}

function wire(formId, build) {
  const form = document.getElementById(formId);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const out = form.querySelector("output");
    out.className = "";
    out.textContent = "…";
    try {
      const result = await build(new FormData(form));
      out.textContent = JSON.stringify(result);
    } catch (err) {
      out.className = "error";
      out.textContent = err.message;
    }
    poll();
  });
}

function optional(data, name) {
  const value = (data.get(name) || "").trim();
  return value === "" ? undefined : value;
}

wire("mo-form", (data) => {
  const body = {
    source_addr: data.get("source_addr"),
    destination_addr: data.get("destination_addr"),
    text: data.get("text"),
  };
  const systemId = optional(data, "system_id");
  const coding = optional(data, "data_coding");
  if (systemId !== undefined) body.system_id = systemId;
  if (coding !== undefined) body.data_coding = Number(coding);
  return call("POST", "/mo", body);
});

wire("fail-form", (data) => {
  const systemId = optional(data, "system_id");
  const path = systemId === undefined ? "/fail-next" : `/accounts/${encodeURIComponent(systemId)}/fail-next`;
  return call("POST", path, { count: Number(data.get("count")), status: data.get("status") });
});

async function loadSettings() {
  const form = document.getElementById("settings-form");
  form.elements.settings.value = JSON.stringify(await call("GET", "/settings"), null, 2);
}

wire("settings-form", async (data) => {
  let body;
  try {
    body = JSON.parse(data.get("settings"));
  } catch (err) {
    throw new Error(`not JSON: ${err.message}`);
  }
  return call("PUT", "/settings", body);
});

wire("reset-form", () => call("POST", "/reset"));

document.getElementById("settings-reload").addEventListener("click", loadSettings);
loadSettings().catch(() => {});
loop();
