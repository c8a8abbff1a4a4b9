// The blockexec dashboard: every number comes from the signed API, called
// with the key the user logs in with. One event stream is open at a time,
// for the selected order (a key may hold 8); the list is polled.

import { importSecret, signedHeaders } from "./sign.js";
import { draw } from "./chart.js";

const LIST_EVERY_MS = 1500;
const HEALTH_EVERY_MS = 5000;
const MAX_EVENTS = 2000; // kept for the selected order; the log shows the last of them
const LOG_LINES = 60;
const TERMINAL = new Set(["done", "cancelled", "failed"]);
const SESSION = "blockexec.session";

const $ = (id) => document.getElementById(id);

// APIError is a refusal, with the API's code and message.
class APIError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || `HTTP ${status}`);
    this.status = status;
    this.code = e.code || "";
  }
}

// API signs requests with a key. skew corrects the browser's clock by the
// server's, which a 401 for a stale timestamp reports.
class API {
  constructor(keyID, key) {
    this.keyID = keyID;
    this.key = key;
    this.skew = 0;
  }

  // request sends a signed request to target ("/v1/orders?state=working").
  async request(method, target, body, opts = {}) {
    const url = new URL(target, location.origin);
    const raw = body === undefined ? new Uint8Array() : new TextEncoder().encode(JSON.stringify(body));
    for (let attempt = 0; ; attempt++) {
      const headers = await signedHeaders(this.keyID, this.key, method, url.pathname, url.search.slice(1), raw,
        Date.now() + this.skew);
      if (body !== undefined) {
        headers["Content-Type"] = "application/json";
      }
      Object.assign(headers, opts.headers || {});
      const resp = await fetch(url, {
        method, headers, body: body === undefined ? undefined : raw, signal: opts.signal,
        cache: "no-store", credentials: "omit",
      });
      if (resp.status !== 401 || attempt > 0) {
        return resp;
      }
      const text = await resp.clone().text();
      const m = /server's clock reads (\d+)/.exec(text);
      if (!m) {
        return resp;
      }
      this.skew = Number(m[1]) - Date.now();
    }
  }

  // json sends a request and returns its JSON answer, or throws an APIError.
  async json(method, target, body) {
    const resp = await this.request(method, target, body);
    const data = await resp.json().catch(() => null);
    if (!resp.ok) {
      throw new APIError(resp.status, data);
    }
    return data;
  }
}

// state is the page's: the session, the orders, the selected one.
const state = {
  api: null,
  who: null,
  orders: new Map(),
  selected: null, // the selected order's id
  detail: null, // what is known of the selected order, reset on selection
  timers: [],
  health: null,
};

function newDetail(id) {
  return {
    id,
    events: [],
    samples: [], // [ms, filled, target] from each new version of the order
    fills: [],
    fillsCount: -1,
    abort: new AbortController(),
    streamState: "",
  };
}

const canTrade = () => state.who && state.who.scopes.some((s) => s === "trade" || s === "admin");
const isAdmin = () => state.who && state.who.scopes.includes("admin");

function num(s) {
  const v = Number.parseFloat(s);
  return Number.isFinite(v) ? v : 0;
}

function percent(o) {
  const q = num(o.quantity);
  return q > 0 ? Math.min(100, (num(o.filled_quantity) / q) * 100) : 0;
}

function clockTime(s) {
  const d = new Date(s);
  return Number.isNaN(d.getTime()) ? "" : d.toLocaleTimeString([], { hour12: false });
}

function cell(tr, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) {
    td.className = cls;
  }
  tr.appendChild(td);
  return td;
}

function showStatus(text) {
  $("status").textContent = text || "";
}

// --- login --------------------------------------------------------------

async function login(keyID, secret, remember) {
  if (!window.isSecureContext || !crypto.subtle) {
    throw new Error("this page needs a secure context to sign: serve over HTTPS, or open it on localhost");
  }
  const api = new API(keyID, await importSecret(secret));
  let who;
  try {
    who = await api.json("GET", "/v1/whoami");
  } catch (e) {
    if (e.status === 403) {
      throw new Error(`${e.message}: the dashboard needs a key with the read scope`);
    }
    throw e;
  }
  if (remember) {
    sessionStorage.setItem(SESSION, JSON.stringify({ keyID, secret }));
  }
  state.api = api;
  state.who = who;
  start();
}

function logout() {
  sessionStorage.removeItem(SESSION);
  for (const t of state.timers) {
    clearInterval(t);
  }
  if (state.detail) {
    state.detail.abort.abort();
  }
  Object.assign(state, { api: null, who: null, orders: new Map(), selected: null, detail: null, timers: [] });
  $("app").hidden = true;
  $("login").hidden = false;
  $("logout").hidden = true;
  $("kill").hidden = true;
  $("release").hidden = true;
  $("who").textContent = "";
  $("kill-state").textContent = "";
  $("detail").hidden = true;
  for (const id of ["pause", "resume", "cancel"]) {
    $(id).hidden = true;
  }
  $("state").textContent = "";
  $("orders").tBodies[0].replaceChildren();
  showStatus("");
}

function start() {
  $("login").hidden = true;
  $("app").hidden = false;
  $("logout").hidden = false;
  $("who").textContent = `${state.who.key_id} · ${state.who.client} · ${state.who.scopes.join(", ")}`;
  $("kill").hidden = !isAdmin();
  state.timers.push(setInterval(pollOrders, LIST_EVERY_MS), setInterval(pollHealth, HEALTH_EVERY_MS));
  pollOrders();
  pollHealth();
}

// --- polling ------------------------------------------------------------

async function pollOrders() {
  const api = state.api;
  if (!api) {
    return;
  }
  try {
    const list = await api.json("GET", "/v1/orders");
    if (api !== state.api) {
      return;
    }
    state.orders = new Map(list.orders.map((o) => [o.id, o]));
    showStatus("");
  } catch (e) {
    showStatus(`orders: ${e.message}`);
    return;
  }
  if (!state.selected && state.orders.size) {
    select(newest());
  }
  renderOrders();
  if (state.selected) {
    await updateDetail();
  }
}

function newest() {
  let best = null;
  for (const o of state.orders.values()) {
    if (!best || (!TERMINAL.has(o.state) && TERMINAL.has(best.state)) ||
        (TERMINAL.has(o.state) === TERMINAL.has(best.state) && o.start > best.start)) {
      best = o;
    }
  }
  return best && best.id;
}

async function pollHealth() {
  try {
    const resp = await fetch("/healthz", { cache: "no-store", credentials: "omit" });
    const h = await resp.json();
    const kill = (h.checks && h.checks.kill_switch) || "";
    $("kill-state").textContent = `engine ${h.checks && h.checks.engine || "?"} · kill switch ${kill || "?"}`;
    const engaged = kill.startsWith("engaged");
    $("kill").hidden = !isAdmin() || engaged;
    $("release").hidden = !isAdmin() || !engaged;
  } catch (e) {
    $("kill-state").textContent = "health: unreachable";
  }
}

// --- the order list -----------------------------------------------------

function renderOrders() {
  const body = $("orders").tBodies[0];
  const rows = [...state.orders.values()].sort((a, b) => (a.start < b.start ? 1 : a.start > b.start ? -1 : 0));
  $("no-orders").hidden = rows.length > 0;
  body.replaceChildren(...rows.map((o) => {
    const tr = document.createElement("tr");
    tr.dataset.id = o.id;
    tr.className = o.id === state.selected ? "selected" : "";
    cell(tr, o.id);
    cell(tr, o.side);
    cell(tr, o.symbol);
    cell(tr, o.strategy);
    cell(tr, o.state, `state ${o.state}`);
    const td = cell(tr, "");
    const bar = document.createElement("progress");
    bar.max = 100;
    bar.value = percent(o);
    td.append(bar, ` ${percent(o).toFixed(1)} %`);
    cell(tr, `${o.filled_quantity} / ${o.quantity}`, "num");
    cell(tr, o.average_price, "num");
    cell(tr, o.shortfall_bps, "num");
    cell(tr, String(o.rejections), "num");
    tr.addEventListener("click", () => {
      select(o.id);
      renderOrders();
      updateDetail();
    });
    return tr;
  }));
}

// --- the selected order -------------------------------------------------

function select(id) {
  if (state.selected === id) {
    return;
  }
  if (state.detail) {
    state.detail.abort.abort();
  }
  state.selected = id;
  state.detail = newDetail(id);
  $("events").replaceChildren();
  $("detail").hidden = false;
  follow(state.detail);
}

async function updateDetail() {
  const d = state.detail;
  const o = state.orders.get(d.id);
  if (!o) {
    return;
  }
  const t = Date.parse(o.updated);
  const last = d.samples[d.samples.length - 1];
  if (!last || last[0] !== t) {
    d.samples.push([t, num(o.filled_quantity), num(o.target)]);
  }
  if (o.fills !== d.fillsCount) {
    try {
      const list = await state.api.json("GET", `/v1/orders/${encodeURIComponent(o.id)}/fills`);
      if (d === state.detail) {
        d.fills = list.fills;
        d.fillsCount = o.fills;
      }
    } catch (e) {
      showStatus(`fills: ${e.message}`);
    }
  }
  if (d === state.detail) {
    renderDetail(d, state.orders.get(d.id) || o);
  }
}

function renderDetail(d, o) {
  $("detail-id").textContent = `${o.side} ${o.quantity} ${o.symbol} · ${o.id}`;
  $("state").textContent = o.state;
  $("state").className = `state ${o.state}`;
  $("progress").value = percent(o);
  $("progress-text").textContent = `${percent(o).toFixed(1)} % (${o.filled_quantity} of ${o.quantity})`;
  $("reason").textContent = o.reason || "";
  const trade = canTrade();
  $("pause").hidden = !trade || !(o.state === "working" || o.state === "accepted");
  $("resume").hidden = !trade || o.state !== "paused";
  $("cancel").hidden = !trade || TERMINAL.has(o.state);

  const facts = [
    ["strategy", o.strategy], ["start", clockTime(o.start)], ["end", clockTime(o.end)],
    ["target", o.target], ["pending", o.pending_quantity], ["average price", o.average_price],
    ["arrival price", o.arrival_price], ["market VWAP", num(o.market_vwap) > 0 ? o.market_vwap : "at the end"], ["shortfall bps", o.shortfall_bps],
    ["limit price", o.limit_price === "0" ? "none" : o.limit_price], ["band bps", o.slippage_band_bps],
    ["max participation", o.max_participation], ["child orders", String(o.child_orders)],
    ["fills", String(o.fills)], ["fees", o.fees], ["updated", clockTime(o.updated)],
  ];
  $("facts").replaceChildren(...facts.map(([k, v]) => {
    const pair = document.createElement("div");
    const dt = document.createElement("dt");
    dt.textContent = k;
    const dd = document.createElement("dd");
    dd.textContent = v;
    pair.append(dt, dd);
    return pair;
  }));

  drawQuantity(d, o);
  drawPrices(d, o);
  renderVenues(d, o);
  renderRejections(d, o);
  $("stream-state").textContent = d.streamState;
}

function drawQuantity(d, o) {
  const start = Date.parse(o.start);
  const end = Date.parse(o.end);
  // The schedule: each slice's cumulative target; before the first slice
  // event arrives, the order's own target as polled.
  let scheduled = d.events.filter((e) => e.kind === "slice" && e.slice)
    .map((e) => [Date.parse(e.time), num(e.slice.target)]);
  if (!scheduled.length) {
    scheduled = d.samples.map((s) => [s[0], s[2]]);
  }
  scheduled = [[start, 0], ...scheduled];
  const fills = [...d.fills].sort((a, b) => Date.parse(a.time) - Date.parse(b.time));
  const executed = [[start, 0]];
  let sum = 0;
  for (const f of fills) {
    sum += num(f.qty);
    executed.push([Date.parse(f.time), sum]);
  }
  const now = Date.parse(o.updated);
  if (Number.isFinite(now) && now > executed[executed.length - 1][0]) {
    executed.push([now, num(o.filled_quantity)]);
  }
  const series = [
    { name: "scheduled", cls: "scheduled", kind: "step", points: scheduled },
    { name: "executed", cls: "executed", kind: "step", points: executed },
  ];
  if (o.strategy === "twap") {
    series.unshift({ name: "TWAP line", cls: "plan", kind: "line", points: [[start, 0], [end, num(o.quantity)]] });
  }
  draw($("chart-qty"), { x: [start, end], y: [0, num(o.quantity) * 1.02], series, format: (v) => String(v) });
}

// drawPrices sets the fills against the market as the API knows it: the
// arrival price, the edge of the slippage band around it, the limit, and
// the market's VWAP over the order's life once it has ended.
function drawPrices(d, o) {
  const start = Date.parse(o.start);
  const end = Date.parse(o.end);
  const fills = d.fills.map((f) => [Date.parse(f.time), num(f.price)]);
  const arrival = num(o.arrival_price);
  const refs = [];
  if (arrival > 0) {
    refs.push({ name: "arrival", cls: "arrival", y: arrival });
    const band = num(o.slippage_band_bps) / 10000;
    if (band > 0) {
      refs.push({ name: "band edge", cls: "band", y: arrival * (o.side === "sell" ? 1 - band : 1 + band) });
    }
  }
  if (num(o.limit_price) > 0) {
    refs.push({ name: "limit", cls: "limit", y: num(o.limit_price) });
  }
  if (num(o.market_vwap) > 0) {
    refs.push({ name: "market VWAP", cls: "market", y: num(o.market_vwap) });
  }
  draw($("chart-price"), {
    x: [start, end],
    series: [{ name: "fills", cls: "fills", kind: "dots", points: fills }],
    refs,
    format: (v) => v.toLocaleString(undefined, { maximumFractionDigits: 2 }),
    empty: "no fills yet",
  });
}

function renderVenues(d, o) {
  const by = new Map((o.venues || []).map((v) => [v, { qty: 0, notional: 0, n: 0 }]));
  let total = 0;
  for (const f of d.fills) {
    const v = by.get(f.venue) || { qty: 0, notional: 0, n: 0 };
    v.qty += num(f.qty);
    v.notional += num(f.qty) * num(f.price);
    v.n++;
    by.set(f.venue, v);
    total += num(f.qty);
  }
  $("venues").tBodies[0].replaceChildren(...[...by.entries()].map(([name, v]) => {
    const tr = document.createElement("tr");
    cell(tr, name);
    cell(tr, v.qty.toFixed(6).replace(/\.?0+$/, ""), "num");
    const share = total > 0 ? (v.qty / total) * 100 : 0;
    const td = cell(tr, "", "share");
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.width = `${(share * 0.8).toFixed(1)}px`; // 80 px is 100 %
    td.append(bar, `${share.toFixed(1)} %`);
    cell(tr, v.qty > 0 ? (v.notional / v.qty).toFixed(2) : "", "num");
    cell(tr, String(v.n), "num");
    return tr;
  }));
}

function renderRejections(d, o) {
  $("rejection-count").textContent = `(${o.rejections})`;
  const rejected = d.events.filter((e) => e.kind === "child_rejected" && e.rejection).slice(-50).reverse();
  $("rejections").tBodies[0].replaceChildren(...rejected.map((e) => {
    const tr = document.createElement("tr");
    cell(tr, clockTime(e.time));
    cell(tr, e.rejection.venue);
    cell(tr, e.rejection.check);
    cell(tr, e.rejection.reason);
    return tr;
  }));
}

function describe(e) {
  switch (e.kind) {
    case "slice":
      return `slice ${e.slice.seq}: target ${e.slice.target}, filled ${e.slice.filled}`;
    case "child_placed":
    case "child_cancelled":
    case "child_unknown":
      return `${e.kind} ${e.child.venue} ${e.child.qty} @ ${e.child.price} (filled ${e.child.filled})`;
    case "child_rejected":
      return `rejected at ${e.rejection.venue} by ${e.rejection.check}: ${e.rejection.reason}`;
    case "slice_short":
      return `short ${e.short.shortfall}: placed ${e.short.placed}`;
    case "done":
      return `done: ${e.summary.state}, filled ${e.summary.filled_quantity}`;
  }
  return e.kind;
}

function logEvent(e) {
  const li = document.createElement("li");
  li.className = e.kind;
  li.textContent = `${clockTime(e.time)} #${e.seq} ${describe(e)}`;
  const list = $("events");
  list.prepend(li);
  while (list.children.length > LOG_LINES) {
    list.lastChild.remove();
  }
}

// --- the event stream ---------------------------------------------------

// follow reads the selected order's server-sent events with a signed
// fetch (EventSource cannot send headers), resuming with Last-Event-ID
// after a drop, until the done event or another selection.
async function follow(d) {
  const signal = d.abort.signal;
  let last = 0;
  const setState = (s) => {
    d.streamState = s;
    if (d === state.detail) {
      $("stream-state").textContent = s;
    }
  };
  while (!signal.aborted && state.api) {
    let wait = 1000;
    try {
      const headers = last ? { "Last-Event-ID": String(last) } : {};
      const resp = await state.api.request("GET", `/v1/orders/${encodeURIComponent(d.id)}/events`, undefined,
        { headers, signal });
      if (resp.status === 429) {
        wait = 1000 * (Number(resp.headers.get("Retry-After")) || 5);
        setState("(too many streams open for this key; retrying)");
      } else if (!resp.ok) {
        const err = new APIError(resp.status, await resp.json().catch(() => null));
        setState(`(stream: ${err.message})`);
        if (resp.status === 404 || resp.status === 403) {
          return;
        }
        wait = 3000;
      } else {
        setState("(live)");
        const done = await readStream(resp.body, (e) => {
          last = e.seq;
          if (d.events.push(e) > MAX_EVENTS) {
            d.events.splice(0, d.events.length - MAX_EVENTS);
          }
          if (d === state.detail) {
            logEvent(e);
            const o = state.orders.get(d.id);
            if (o && (e.kind === "slice" || e.kind === "child_rejected")) {
              renderDetail(d, o);
            }
          }
        });
        const o = state.orders.get(d.id);
        if (done || (o && TERMINAL.has(o.state))) {
          setState("(ended)");
          return;
        }
        setState("(reconnecting)");
      }
    } catch (e) {
      if (signal.aborted) {
        return;
      }
      setState("(reconnecting)");
    }
    await new Promise((r) => setTimeout(r, wait));
  }
}

// readStream parses a text/event-stream body, calling onEvent with each
// event's data, and says whether the done event came.
async function readStream(body, onEvent) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  let data = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) {
      return false;
    }
    buf += value;
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      let line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line.endsWith("\r")) {
        line = line.slice(0, -1);
      }
      if (line === "") {
        if (data !== null) {
          const e = JSON.parse(data);
          data = null;
          onEvent(e);
          if (e.kind === "done") {
            reader.cancel().catch(() => {});
            return true;
          }
        }
        continue;
      }
      if (line.startsWith(":")) {
        continue; // a heartbeat
      }
      const c = line.indexOf(":");
      const field = c < 0 ? line : line.slice(0, c);
      let val = c < 0 ? "" : line.slice(c + 1);
      if (val.startsWith(" ")) {
        val = val.slice(1);
      }
      if (field === "data") {
        data = data === null ? val : `${data}\n${val}`;
      }
    }
  }
}

// --- actions ------------------------------------------------------------

async function act(button, method, target, body, confirmText) {
  if (confirmText && !window.confirm(confirmText)) {
    return;
  }
  button.disabled = true;
  try {
    const o = await state.api.json(method, target, body);
    if (o && o.id) {
      state.orders.set(o.id, o);
      renderOrders();
      if (state.detail && state.detail.id === o.id) {
        renderDetail(state.detail, o);
      }
    }
    showStatus("");
  } catch (e) {
    showStatus(`${method} ${target}: ${e.message}`);
  } finally {
    button.disabled = false;
  }
  pollHealth();
}

function orderAction(name) {
  const button = $(name);
  button.addEventListener("click", () => {
    const id = state.selected;
    if (!id) {
      return;
    }
    act(button, "POST", `/v1/orders/${encodeURIComponent(id)}/${name}`, undefined,
      name === "cancel" ? `Cancel ${id}? The unfilled quantity is not executed.` : "");
  });
}

function wire() {
  $("login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("login-error").textContent = "";
    const secret = $("secret").value.trim();
    $("secret").value = "";
    $("login-button").disabled = true;
    try {
      await login($("key-id").value.trim(), secret, $("remember").checked);
    } catch (e) {
      $("login-error").textContent = `Could not log in: ${e.message}`;
    } finally {
      $("login-button").disabled = false;
    }
  });
  $("logout").addEventListener("click", logout);
  orderAction("pause");
  orderAction("resume");
  orderAction("cancel");
  $("kill").addEventListener("click", () => act($("kill"), "POST", "/v1/kill",
    { reason: `kill switch from the dashboard (key ${state.who.key_id})` },
    "Engage the kill switch? Every order of every client is cancelled and new ones are refused until it is released."));
  $("release").addEventListener("click", () => act($("release"), "DELETE", "/v1/kill", undefined,
    "Release the kill switch? Orders may be submitted again."));

  const saved = sessionStorage.getItem(SESSION);
  if (saved) {
    const { keyID, secret } = JSON.parse(saved);
    login(keyID, secret, true).catch((e) => {
      sessionStorage.removeItem(SESSION);
      $("login-error").textContent = `Could not log in: ${e.message}`;
    });
  }
}

wire();
