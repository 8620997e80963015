// actorflow dashboard: one WebSocket (hello, then stats as text, frames as binary).
// Binary message: 4-byte big-endian header length, JSON header {stream, n, w, h}, JPEG.
"use strict";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
const state = { graph: null, tiles: new Map(), edges: new Map(), boxes: new Map(), ws: null, delay: 500 };

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  for (const c of children) node.append(c);
  return node;
}
function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}
const fmt = (n, d = 0) => Number(n).toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d });
const ms = (v) => (v >= 100 ? fmt(v, 0) : v >= 10 ? fmt(v, 1) : fmt(v, 2)) + " ms";
function duration(s) {
  const m = Math.floor(s / 60), r = s - 60 * m;
  return m ? `${m} min ${fmt(r, 0)} s` : `${fmt(r, 1)} s`;
}

function connect() {
  const url = new URL("ws", document.baseURI);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  state.ws = ws;
  ws.onopen = () => { $("conn").classList.add("up"); state.delay = 500; subscribe(); };
  ws.onclose = () => {
    $("conn").classList.remove("up");
    setTimeout(connect, state.delay);
    state.delay = Math.min(state.delay * 2, 5000);
  };
  ws.onmessage = (event) => {
    if (typeof event.data === "string") {
      const msg = JSON.parse(event.data);
      if (msg.type === "hello") onHello(msg);
      else if (msg.type === "stats") onStats(msg);
    } else {
      onFrame(event.data);
    }
  };
}

function subscribe() {
  const on = $("video-on").checked;
  if (state.ws && state.ws.readyState === WebSocket.OPEN)
    state.ws.send(JSON.stringify({ type: "subscribe", streams: on ? null : [] }));
}
$("video-on").addEventListener("change", subscribe);

// -- frames -------------------------------------------------------------------------
function onFrame(buffer) {
  const view = new DataView(buffer);
  const size = view.getUint32(0);
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 4, size)));
  const tile = tileFor(header.stream);
  const url = URL.createObjectURL(new Blob([new Uint8Array(buffer, 4 + size)], { type: "image/jpeg" }));
  const old = tile.img.src;
  tile.img.onload = () => { if (old.startsWith("blob:")) URL.revokeObjectURL(old); };
  tile.img.src = url;
  tile.size.textContent = `${header.w}×${header.h}`;
  tile.img.style.aspectRatio = `${header.w} / ${header.h}`;
}

function tileFor(id) {
  let tile = state.tiles.get(id);
  if (tile) return tile;
  const empty = $("tiles").querySelector(".empty");
  if (empty) empty.remove();
  const img = el("img", { alt: id });
  const title = el("b", {}, id), size = el("span"), fps = el("span"), frames = el("span");
  const link = el("a", { href: "#", target: "_blank", title: "MJPEG stream (VLC, Home Assistant)" }, "MJPEG");
  const node = el("div", { class: "tile", "data-stream": id }, img, el("div", { class: "cap" }, title, size, fps, frames, link));
  $("tiles").append(node);
  tile = { node, img, title, size, fps, frames, link };
  state.tiles.set(id, tile);
  return tile;
}

// -- the graph ----------------------------------------------------------------------
function onHello(msg) {
  state.graph = msg.graph;
  $("flow-name").textContent = msg.flow;
  document.title = `${msg.flow} · actorflow`;
  drawGraph(msg.graph);
}

function drawGraph(graph) {
  const host = $("graph");
  host.textContent = "";
  const W = 104, H = 40, GX = 24, GY = 12, PAD = 6;
  const layers = new Map();
  for (const n of graph.nodes) {
    if (!layers.has(n.layer)) layers.set(n.layer, []);
    layers.get(n.layer).push(n);
  }
  const tallest = Math.max(1, ...[...layers.values()].map((l) => l.length));
  const width = PAD * 2 + layers.size * W + (layers.size - 1) * GX;
  const height = PAD * 2 + tallest * H + (tallest - 1) * GY;
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "flow graph" });
  const pos = new Map();
  const order = [...layers.keys()].sort((a, b) => a - b);
  order.forEach((layer, col) => {
    const column = layers.get(layer);
    const top = PAD + ((tallest - column.length) * (H + GY)) / 2;
    column.forEach((n, row) => pos.set(n.id, { x: PAD + col * (W + GX), y: top + row * (H + GY) }));
  });
  const edges = svg("g");
  state.edges.clear();
  for (const e of graph.edges) {
    const a = pos.get(e.src), b = pos.get(e.dst);
    if (!a || !b) continue;
    const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2, mx = (x1 + x2) / 2;
    const path = svg("path", { d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`, class: `edge ${e.policy || "block"}` });
    const title = svg("title");
    title.textContent = `${e.name} (${e.policy || "block"})`;
    path.append(title);
    const label = svg("text", { x: mx, y: (y1 + y2) / 2 - 3, class: "elabel", "text-anchor": "middle" });
    edges.append(path, label);
    state.edges.set(e.name, { path, label, title });
  }
  root.append(edges);
  state.boxes.clear();
  for (const n of graph.nodes) {
    const p = pos.get(n.id);
    const g = svg("g", { class: `gnode ${n.kind === "unit" ? "" : "io"}`, transform: `translate(${p.x},${p.y})` });
    const rect = svg("rect", { width: W, height: H, rx: 6, fill: "#1d2a36" });
    const name = svg("text", { x: 8, y: 16 });
    name.textContent = n.id.length > 14 ? n.id.slice(0, 13) + "…" : n.id;
    const unit = svg("text", { x: 8, y: 30, class: "unit" });
    unit.textContent = n.kind === "unit" ? n.unit : n.kind;
    const fill = svg("rect", { x: 0, y: H - 3, width: 0, height: 3, fill: "#4fb3ff" });
    g.append(rect, name, unit, fill);
    root.append(g);
    state.boxes.set(n.id, { rect, fill });
  }
  host.append(root);
}

function heat(pct) {
  const t = Math.max(0, Math.min(1, pct / 100));
  const a = [29, 42, 54], b = [31, 95, 143], c = [224, 135, 58];
  const [from, to, u] = t < 0.5 ? [a, b, t * 2] : [b, c, (t - 0.5) * 2];
  return `rgb(${from.map((v, i) => Math.round(v + (to[i] - v) * u)).join(",")})`;
}

// -- statistics ---------------------------------------------------------------------
function onStats(msg) {
  const flow = msg.flow;
  const badge = $("flow-state");
  badge.textContent = flow.state;
  badge.className = `badge ${flow.state}`;
  $("elapsed").textContent = duration(flow.elapsed_s);
  const ledger = $("ledger");
  ledger.textContent = flow.balanced ? "closed ✓" : `${fmt(flow.in_flight)} in flight`;
  ledger.className = flow.balanced ? "ok" : flow.state === "running" ? "" : "bad";
  $("watchdog").textContent = flow.watchdog === null || flow.watchdog === undefined ? "n/a" : fmt(flow.watchdog);
  $("sessions-count").textContent = `${msg.sessions.open} open · ${msg.sessions.finished} ended`;
  const drops = msg.dashboard.viewer_dropped;
  $("viewer-drops").textContent = fmt(drops);
  $("viewer-drops").className = drops ? "warn" : "";
  updateGraph(msg);
  updateTotals(msg.nodes);
  updateCards(msg);
  updateSessions(msg.sessions, flow.state === "running");
  updateStreams(msg.streams, msg.dashboard);
}

function updateGraph(msg) {
  for (const e of msg.edges) {
    const view = state.edges.get(e.name);
    if (!view) continue;
    view.path.setAttribute("class", `edge ${e.policy}${e.dropped ? " dropping" : ""}`);
    view.label.textContent = e.dropped ? `−${fmt(e.dropped)}` : "";
    view.title.textContent = `${e.name} (${e.policy}): ${e.used}/${e.capacity} queued, ${e.dropped} dropped`;
  }
  for (const n of msg.nodes) {
    const box = state.boxes.get(n.id);
    if (!box) continue;
    box.rect.setAttribute("fill", heat(n.busy_pct));
    const fill = n.mailbox_size ? Math.min(1, n.mailbox_used / n.mailbox_size) : 0;
    box.fill.setAttribute("width", String(104 * fill));
  }
}

function updateTotals(nodes) {
  const graph = state.graph || { nodes: [], edges: [] };
  const fed = new Set(graph.edges.map((e) => e.dst)), feeding = new Set(graph.edges.map((e) => e.src));
  const sum = (pick, keep = () => true) => nodes.filter(keep).reduce((t, n) => t + pick(n), 0);
  const totals = [
    ["produced", sum((n) => n.emitted, (n) => !fed.has(n.id)), ""],
    ["at sinks", sum((n) => n.processed, (n) => !feeding.has(n.id)), ""],
    ["in flight", sum((n) => n.in_flight), ""],
    ["dropped", sum((n) => n.dropped), "warn"],
    ["failed", sum((n) => n.failed), "bad"],
    ["cancelled", sum((n) => n.cancelled), "warn"],
  ];
  $("totals").innerHTML = totals.map(([k, v, cls]) =>
    `<div><span>${k}</span><b class="${v ? cls : ""}">${fmt(v)}</b></div>`).join("");
}

function updateCards(msg) {
  const host = $("cards");
  const inEdges = new Map();
  for (const e of msg.edges) {
    const dst = e.name.split(" -> ")[1].split(":")[0];
    if (!inEdges.has(dst)) inEdges.set(dst, []);
    inEdges.get(dst).push(e);
  }
  const cards = msg.nodes.map((n) => {
    const fill = n.mailbox_size ? Math.min(100, (100 * n.mailbox_used) / n.mailbox_size) : 0;
    const counts = [["drop", n.dropped], ["fail", n.failed], ["canc", n.cancelled], ["rst", n.restarts]]
      .map(([k, v]) => `<div><span>${k}</span><b class="${v ? "bad" : ""}">${fmt(v)}</b></div>`).join("");
    const drops = (inEdges.get(n.id) || []).filter((e) => e.dropped)
      .map((e) => `<div class="row"><span>${esc(e.name.split(" -> ")[0])} (${e.policy})</span><b class="bad">−${fmt(e.dropped)}</b></div>`).join("");
    const batch = n.batches ? `<div class="row"><span>batch</span><b>${fmt(n.batch_mean, 1)} avg · ${fmt(n.batches)} calls</b></div>` : "";
    const remote = (n.remote || []).map((r) => `<div class="row"><span>ray #${r.replica} ${esc(String(r.node_id || "").slice(0, 8))}</span><b class="${r.alive ? "" : "bad"}">${fmt(r.in_flight)} in flight · ${r.p50_ms == null ? "—" : ms(r.p50_ms)} · rst ${fmt(r.restarts)}</b></div>`).join("");
    return `<div class="card" data-node="${esc(n.id)}">
      <div class="title"><i class="dot ${n.state}"></i><b>${esc(n.id)}</b><span class="unit">${esc(n.unit)}${n.replicas > 1 ? " ×" + n.replicas : ""}</span></div>
      <div class="row"><span>in / out</span><b>${fmt(n.in_rate, 1)} / ${fmt(n.out_rate, 1)} /s</b></div>
      <div class="row"><span>mailbox</span><b>${n.mailbox_used} / ${n.mailbox_size}</b></div>
      <div class="bar"><i class="${fill >= 100 ? "full" : ""}" style="width:${fill}%"></i></div>
      <div class="row"><span>busy</span><b>${fmt(n.busy_pct, 0)} %</b></div>
      <div class="row"><span>p50 / p95</span><b>${n.calls ? ms(n.p50_ms) + " / " + ms(n.p95_ms) : "—"}</b></div>
      ${batch}${remote}${drops}
      <div class="counts">${counts}</div>
    </div>`;
  });
  host.innerHTML = cards.join("");
}

function ledgerCell(s, running) {
  if (s.balanced) return `<td class="ok">closed ✓</td>`;
  return `<td class="${running ? "" : "bad"}">${fmt(s.open)} open</td>`;
}

function updateSessions(sessions, running) {
  $("sessions-sub").textContent = sessions.rows.length < sessions.open + sessions.finished ? `latest ${sessions.rows.length}` : "";
  $("sessions").innerHTML = sessions.rows.map((s) => `<tr>
    <td>#${s.id}</td><td>${fmt(s.sent)}</td><td>${fmt(s.delivered)}</td>
    <td class="${s.dropped ? "warn" : ""}">${fmt(s.dropped)}</td><td class="${s.failed ? "bad" : ""}">${fmt(s.failed)}</td>
    <td>${fmt(s.cancelled)}</td>${ledgerCell(s, running)}
    <td>${s.source ? esc(`${s.stream}: ${s.source}`) : "—"}</td></tr>`).join("") || `<tr><td colspan="8" class="empty">no sessions yet</td></tr>`;
}

function updateStreams(streams, hub) {
  for (const s of streams) {
    const tile = tileFor(s.id);
    tile.title.textContent = s.title;
    tile.fps.textContent = s.status === "live" ? `${fmt(s.fps, 1)} fps` : s.status;
    tile.frames.textContent = `${fmt(s.published)} frames`;
    tile.link.setAttribute("href", s.mjpeg);
  }
  $("streams").innerHTML = streams.map((s) => `<tr>
    <td>${esc(s.title)}</td><td class="${s.status === "live" ? "ok" : ""}">${esc(s.status)}</td>
    <td>${fmt(s.fps, 1)}</td><td>${fmt(s.published)}</td><td>${fmt(s.encoded)}</td><td>${fmt(s.skipped)}</td>
    <td>${s.width ? s.width + "×" + s.height : "—"}</td><td><a href="${esc(s.mjpeg)}" target="_blank">open</a></td></tr>`).join("")
    || `<tr><td colspan="8" class="empty">no dashboard sink in this graph</td></tr>`;
  $("viewer-note").textContent = `${hub.viewers} viewer(s) · ${fmt(hub.viewer_sent)} messages sent · ` +
    `${fmt(hub.viewer_dropped)} frames dropped by slow viewers (counted apart from the flow's ledger)`;
}

function esc(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

connect();
