// ccem explore: the page. Every number shown comes from the server's JSON API (the ccem library);
// this file only draws. The controls live in the URL (?view=theory&n=10&t=1...), so a view can be
// shared as a link.
"use strict";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
let info = null;

// ---------- small helpers ----------

function setUrl() {
  const q = params.toString();
  history.replaceState(null, "", q ? "?" + q : location.pathname);
}

function showError(id, msg) {
  const el = $(id);
  if (msg) { el.textContent = msg; el.hidden = false; } else { el.textContent = ""; el.hidden = true; }
}

async function getJson(url, opts) {
  const r = await fetch(url, opts);
  let body = null;
  try { body = await r.json(); } catch (e) { body = { error: "the server sent no JSON (HTTP " + r.status + ")" }; }
  if (!r.ok) throw new Error(body && body.error ? body.error : "HTTP " + r.status);
  return body;
}

// `ccem ... --format table` for one record: "key  value" lines -> {key: value}.
function parseTable(text) {
  const out = {};
  for (const line of text.split("\n")) {
    const m = /^(\S+)\s+(.*)$/.exec(line);
    if (m && !line.startsWith("#")) out[m[1]] = m[2];
  }
  return out;
}

function fmt(x) {
  if (x === null || x === undefined) return "-";
  if (typeof x !== "number") return String(x);
  if (x === 0) return "0";
  const a = Math.abs(x);
  return a >= 1e-4 && a < 1e6 ? String(+x.toPrecision(6)) : x.toExponential(4);
}

// Binds an input to a URL key (restores it from the URL, writes it back on change).
function bind(el, key, onChange) {
  if (params.has(key)) {
    if (el.type === "checkbox") el.checked = params.get(key) === "1";
    else el.value = params.get(key);
  }
  const handler = () => {
    const v = el.type === "checkbox" ? (el.checked ? "1" : "") : el.value;
    if (v === "") params.delete(key); else params.set(key, v);
    setUrl();
    if (onChange) onChange();
  };
  el.addEventListener(el.tagName === "SELECT" || el.type === "checkbox" ? "change" : "input", handler);
}

// Viridis, 9 stops.
const VIRIDIS = [[68,1,84],[71,44,122],[59,81,139],[44,113,142],[33,144,141],[39,173,129],[92,200,99],[170,220,50],[253,231,37]];
function viridis(x) {
  x = Math.min(1, Math.max(0, x)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(x)), f = x - i;
  const c = VIRIDIS[i].map((a, k) => Math.round(a + f * (VIRIDIS[i + 1][k] - a)));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}
// Blue (-1) - white (0) - red (+1).
function diverging(x) {
  x = Math.min(1, Math.max(-1, x));
  const w = 1 - Math.abs(x);
  const [r, g, b] = x < 0 ? [w * 255 + (1 - w) * 33, w * 255 + (1 - w) * 102, w * 255 + (1 - w) * 172]
                          : [w * 255 + (1 - w) * 178, w * 255 + (1 - w) * 24, w * 255 + (1 - w) * 43];
  return `rgb(${Math.round(r)},${Math.round(g)},${Math.round(b)})`;
}

// A vertical dashed line at data x (a uPlot draw hook).
function vline(u, x, color, label) {
  if (x === null || x === undefined || !isFinite(x)) return;
  const ctx = u.ctx, px = u.valToPos(x, "x", true);
  ctx.save();
  ctx.strokeStyle = color; ctx.setLineDash([6, 4]); ctx.lineWidth = 2 * devicePixelRatio;
  ctx.beginPath(); ctx.moveTo(px, u.bbox.top); ctx.lineTo(px, u.bbox.top + u.bbox.height); ctx.stroke();
  if (label) {
    ctx.setLineDash([]); ctx.fillStyle = color; ctx.font = `${12 * devicePixelRatio}px sans-serif`;
    ctx.fillText(label, px + 4 * devicePixelRatio, u.bbox.top + 14 * devicePixelRatio);
  }
  ctx.restore();
}

function chartWidth() {
  return 460;
}

// ---------- views ----------

function showView(v) {
  for (const name of ["theory", "inspect", "train"]) {
    $("view-" + name).hidden = name !== v;
    $("tab-" + name).classList.toggle("active", name === v);
  }
  params.set("view", v);
  setUrl();
  if (v === "theory") updateTheory();
}

// ---------- Theory ----------

let curveChart = null, theoryBusy = false, theoryPending = false, lastPhaseQuery = null;
let cStar = null;

function theoryQuery(withD) {
  const q = new URLSearchParams();
  const loss = $("th-loss").value;
  q.set("loss", loss);
  q.set("n", $("th-n").value);
  // The loss's own parameters (the registry's, /api/info), as `ccem theory --loss` takes them.
  if (takes(loss, "t")) {
    q.set("t", $("th-t").value);
    const mode = $("th-bmode").value;
    if (mode === "b") q.set("b", $("th-bval").value);
    else if (mode === "rb") q.set("rb", $("th-bval").value);
    else q.set("b", "tied");
  }
  if (takes(loss, "tau")) q.set("tau", $("th-tau").value);
  if (takes(loss, "within_view") && $("th-wv").value) q.set("within_view", $("th-wv").value);
  if ($("th-batch").value) q.set("batch", $("th-batch").value);
  if (withD && $("th-d").value) q.set("d", $("th-d").value);
  return q.toString();
}

// Each loss's parameters, from /api/info (the library's registry): `t` (with `b`) for the
// sigmoid loss, `tau` for the softmax losses, `within_view` where it applies, none for spectral.
let lossParams = { sigmoid: ["t", "b", "relative_bias", "within_view"], infonce: ["tau", "within_view"] };
const takes = (loss, p) => (lossParams[loss] || []).includes(p);

function lossVisibility(prefix, loss) {
  const root = $(prefix);
  root.querySelectorAll(".sig").forEach((e) => (e.hidden = !takes(loss, "t")));
  root.querySelectorAll(".inf").forEach((e) => (e.hidden = !takes(loss, "tau")));
  root.querySelectorAll(".wv").forEach((e) => (e.hidden = !takes(loss, "within_view")));
}

async function updateTheory() {
  if (theoryBusy) { theoryPending = true; return; }
  theoryBusy = true;
  lossVisibility("theory-controls", $("th-loss").value);
  $("th-bval").parentElement.hidden = !takes($("th-loss").value, "t") || $("th-bmode").value === "tied";
  try {
    const query = theoryQuery(true);
    const r = await getJson("/api/theory?" + query);
    showError("th-error", null);
    const tab = parseTable(r.table);
    $("th-phase").textContent = tab.phase || "-";
    $("th-c_star").textContent = tab.c_star || "-";
    $("th-s_pos").textContent = tab.s_pos || "-";
    $("th-s_neg").textContent = tab.s_neg || "-";
    $("th-loss-value").textContent = tab.loss || "-";
    $("th-margin-box").hidden = r.margin_bound === null;
    $("th-margin_bound").textContent = r.margin_bound === null ? "" : fmt(r.margin_bound) + "  (N/(2(N-1)); d < N: the CCEM does not apply)";
    $("th-note").hidden = !r.note;
    $("th-note").textContent = r.note || "";
    $("th-table").textContent = r.table;
    cStar = r.record.c_star;
    drawCurve(r.curve);
    drawGram(r.gram);
    const pq = theoryQuery(false);
    if (pq !== lastPhaseQuery) {
      lastPhaseQuery = pq;
      drawPhase(await getJson("/api/phase?" + pq), r.record);
    }
    document.body.dataset.theoryQuery = query;
  } catch (e) {
    showError("th-error", e.message);
  } finally {
    theoryBusy = false;
    if (theoryPending) { theoryPending = false; updateTheory(); }
  }
}

function drawCurve(curve) {
  const el = $("th-curve");
  const data = [curve.c, curve.loss];
  if (!curveChart) {
    curveChart = new uPlot({
      width: chartWidth(el), height: 260,
      scales: { x: { time: false } },
      axes: [{ label: "c" }, { label: "l(c)", size: 60 }],
      legend: { show: false },
      series: [{ label: "c" }, { label: "l(c)", stroke: "#3b528b", width: 2 }],
      hooks: { draw: [(u) => vline(u, cStar, "#d62728", "c*")] },
    }, data, el);
  } else {
    curveChart.setData(data);
  }
}

function drawGram(g) {
  const cv = $("th-gram"), ctx = cv.getContext("2d");
  ctx.clearRect(0, 0, cv.width, cv.height);
  if (!g) { ctx.fillStyle = "#888"; ctx.fillText("no Gram matrix (t = 0: every CCEM is optimal)", 10, 20); return; }
  const k = 2 * g.m, cell = cv.width / k;
  for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) {
    ctx.fillStyle = diverging(g.values[i * k + j]);
    ctx.fillRect(j * cell, i * cell, Math.ceil(cell), Math.ceil(cell));
  }
  ctx.strokeStyle = "#333"; ctx.lineWidth = 1;
  ctx.beginPath(); ctx.moveTo(cv.width / 2, 0); ctx.lineTo(cv.width / 2, cv.height);
  ctx.moveTo(0, cv.height / 2); ctx.lineTo(cv.width, cv.height / 2); ctx.stroke();
  $("th-gram-caption").textContent = `Gram matrix of the optimal CCEM: u1..u${g.m}, v1..v${g.m}` + (g.m < +$("th-n").value ? ` (first ${g.m} of ${$("th-n").value} pairs)` : "");
}

function drawPhase(r, record) {
  const cv = $("th-phase-map"), ctx = cv.getContext("2d");
  ctx.clearRect(0, 0, cv.width, cv.height);
  const map = r.map;
  if (!map) {
    // InfoNCE: the ETF everywhere; another loss: no (N, t) map (the sigmoid's), its phase is in
    // the readout.
    ctx.fillStyle = r.etf ? viridis(1) : "#ddd"; ctx.fillRect(50, 10, cv.width - 60, cv.height - 50);
    ctx.fillStyle = "#222"; ctx.font = "14px sans-serif";
    ctx.fillText(r.etf ? "InfoNCE: the simplex ETF at every N and tau" : "no (N, t) phase map for this loss", 70, cv.height / 2);
    $("th-phase-legend").textContent = r.note || "";
    return;
  }
  const L = 50, T = 10, W = cv.width - 60, H = cv.height - 50;
  const lx0 = Math.log(map.ns[0]), lx1 = Math.log(map.ns[map.ns.length - 1]);
  const tMax = map.ts[map.ts.length - 1];
  const X = (n) => L + (Math.log(n) - lx0) / (lx1 - lx0) * W;
  const Y = (t) => T + H - t / tMax * H;
  // Cells: s_+* in [-1, 1] on viridis.
  for (let i = 0; i < map.ts.length; i++) {
    const t0 = i === 0 ? 0 : (map.ts[i - 1] + map.ts[i]) / 2, t1 = i + 1 < map.ts.length ? (map.ts[i] + map.ts[i + 1]) / 2 : tMax;
    for (let j = 0; j < map.ns.length; j++) {
      const v = map.s_pos[i][j];
      const n0 = j === 0 ? map.ns[0] : Math.sqrt(map.ns[j - 1] * map.ns[j]);
      const n1 = j + 1 < map.ns.length ? Math.sqrt(map.ns[j] * map.ns[j + 1]) : map.ns[j];
      ctx.fillStyle = v === null ? "#ccc" : viridis((v + 1) / 2);
      ctx.fillRect(X(n0), Y(t1), X(n1) - X(n0) + 1, Y(t0) - Y(t1) + 1);
    }
  }
  const curve = (pts, color) => {
    ctx.fillStyle = color;
    for (const [n, t] of pts) { ctx.beginPath(); ctx.arc(X(n), Y(t), 2, 0, 2 * Math.PI); ctx.fill(); }
  };
  curve(map.etf, "#fff");
  curve(map.antipodal, "#ff3b3b");
  // The current point.
  const [n, t] = r.point;
  ctx.strokeStyle = "#000"; ctx.lineWidth = 2; ctx.fillStyle = "#ff0";
  ctx.beginPath(); ctx.arc(X(Math.min(Math.max(n, map.ns[0]), map.ns[map.ns.length - 1])), Y(t), 6, 0, 2 * Math.PI); ctx.fill(); ctx.stroke();
  // Axes.
  ctx.fillStyle = "#222"; ctx.font = "12px sans-serif"; ctx.strokeStyle = "#222"; ctx.lineWidth = 1;
  ctx.strokeRect(L, T, W, H);
  for (const tick of [3, 10, 30, 100, 300, 1000, 3000, 10000, 30000, 100000]) {
    if (tick < map.ns[0] || tick > map.ns[map.ns.length - 1]) continue;
    ctx.fillText(String(tick), X(tick) - 8, T + H + 14);
  }
  ctx.fillText("N (log)", L + W / 2 - 20, T + H + 32);
  ctx.save(); ctx.translate(14, T + H / 2); ctx.rotate(-Math.PI / 2); ctx.fillText("t", 0, 0); ctx.restore();
  for (let k = 0; k <= 4; k++) { const tv = tMax * k / 4; ctx.fillText(fmt(tv), 22, Y(tv) + 4); }
  $("th-phase-legend").innerHTML = "s<sub>+</sub>*: &minus;1 <span class='ramp vir'></span> +1 &nbsp; t on the vertical axis";
  void record;
}

function initTheory() {
  const sel = $("th-loss");
  for (const l of info.theory_losses) sel.add(new Option(l, l));
  for (const [id, key] of [["th-loss", "loss"], ["th-n", "n"], ["th-t", "t"], ["th-bmode", "bmode"], ["th-bval", "bval"], ["th-tau", "tau"], ["th-wv", "wv"], ["th-batch", "batch"], ["th-d", "d"]]) {
    bind($(id), key, updateTheory);
  }
  const nS = $("th-n-slider"), tS = $("th-t-slider");
  nS.value = Math.log10(Math.max(2, +$("th-n").value));
  tS.value = $("th-t").value;
  nS.addEventListener("input", () => { $("th-n").value = Math.max(2, Math.round(Math.pow(10, +nS.value))); $("th-n").dispatchEvent(new Event("input")); });
  tS.addEventListener("input", () => { $("th-t").value = tS.value; $("th-t").dispatchEvent(new Event("input")); });
  $("th-n").addEventListener("input", () => { nS.value = Math.log10(Math.max(2, +$("th-n").value)); });
  $("th-t").addEventListener("input", () => { tS.value = $("th-t").value; });
}

// ---------- Inspect ----------

let histChart = null, histMarks = [null, null];

async function runInspect() {
  showError("in-error", null);
  const q = new URLSearchParams();
  for (const [id, key] of [["in-t", "t"], ["in-b", "b"], ["in-tau", "tau"]]) if ($(id).value) q.set(key, $(id).value);
  q.set("normalize", $("in-normalize").checked ? "1" : "0");
  const fu = $("in-u").files[0], fv = $("in-v").files[0];
  let r;
  try {
    if (fu && fv) {
      for (const f of [fu, fv]) if (f.size > info.max_file_bytes) throw new Error(`'${f.name}' is ${(f.size / 1048576).toFixed(1)} MiB, above the limit of ${info.max_file_bytes / 1048576} MiB per file`);
      q.set("u_name", fu.name); q.set("v_name", fv.name); q.set("u_len", fu.size);
      const body = new Blob([fu, fv]);
      $("in-go").disabled = true;
      r = await getJson("/api/inspect?" + q, { method: "POST", body, headers: { "Content-Type": "application/octet-stream" } });
    } else if ($("in-u-path").value && $("in-v-path").value) {
      q.set("u", $("in-u-path").value); q.set("v", $("in-v-path").value);
      $("in-go").disabled = true;
      r = await getJson("/api/inspect?" + q);
    } else {
      throw new Error("choose two files, U and V");
    }
  } catch (e) {
    showError("in-error", e.message);
    $("in-report").textContent = "";
    return;
  } finally {
    $("in-go").disabled = false;
  }
  $("in-report").textContent = r.table;
  const rec = r.record;
  histMarks = [rec.theory_s_pos ?? null, rec.theory_s_neg ?? null];
  const h = r.hist, centers = [], pos = [], neg = [];
  const tp = h.pos.reduce((a, b) => a + b, 0) || 1, tn = h.neg.reduce((a, b) => a + b, 0) || 1;
  for (let k = 0; k < h.pos.length; k++) {
    centers.push((h.edges[k] + h.edges[k + 1]) / 2);
    pos.push(h.pos[k] / tp); neg.push(h.neg[k] / tn);
  }
  const data = [centers, pos, neg];
  const el = $("in-hist");
  if (histChart) histChart.destroy();
  histChart = new uPlot({
    width: chartWidth(el), height: 260,
    scales: { x: { time: false } },
    axes: [{ label: "similarity" }, { label: "share", size: 60 }],
    series: [{ label: "S" },
      { label: "positives", stroke: "#1f77b4", fill: "rgba(31,119,180,0.25)", paths: uPlot.paths.stepped({ align: 0 }) },
      { label: "negatives", stroke: "#ff7f0e", fill: "rgba(255,127,14,0.25)", paths: uPlot.paths.stepped({ align: 0 }) }],
    hooks: { draw: [(u) => { vline(u, histMarks[0], "#1f77b4", "s+*"); vline(u, histMarks[1], "#ff7f0e", "s-*"); }] },
  }, data, el);
  $("in-hist-note").textContent = `${rec.n} positives; negatives of ${h.neg_rows} of ${rec.n} rows` + (histMarks[0] === null ? "; no theory marks (d < N)" : "");
  const tab = parseTable(r.table);
  $("in-margins").innerHTML = "";
  for (const k of ["margin", "margin_bias", "margin_quantile", "margin_bound", "s_pos_min", "s_neg_max"]) {
    if (!(k in tab)) continue;
    const div = document.createElement("div");
    div.innerHTML = `<span class="k"></span> <span class="v"></span>`;
    div.firstChild.textContent = k; div.lastChild.textContent = tab[k];
    $("in-margins").appendChild(div);
  }
}

async function initInspect() {
  $("in-max").textContent = (info.max_file_bytes / 1048576) + " MiB";
  for (const [id, key] of [["in-t", "it"], ["in-b", "ib"], ["in-tau", "itau"]]) bind($(id), key);
  $("in-go").addEventListener("click", runInspect);
  if (info.data_dir) {
    const files = (await getJson("/api/files")).files;
    $("in-paths").hidden = false;
    for (const id of ["in-u-path", "in-v-path"]) {
      $(id).add(new Option("", ""));
      for (const f of files) $(id).add(new Option(f, f));
    }
  }
}

// ---------- Train ----------

let run = null;
const series = { step: [], s_pos: [], s_neg: [], loss: [], margin: [], th_pos: [], th_neg: [], th_margin: [] };
let charts = {}, theory = null, redraw = false;

function trainFlags() {
  const f = {};
  const loss = $("tr-loss").value;
  f.loss = loss;
  f.n = $("tr-n").value;
  if ($("tr-d").value) f.d = $("tr-d").value;
  if (takes(loss, "tau")) f.tau = $("tr-tau").value;
  if (takes(loss, "within_view") && $("tr-wv").value) f["within-view"] = $("tr-wv").value;
  if (takes(loss, "t")) {
    if ($("tr-learn-t").checked) { f["learn-t"] = true; if ($("tr-t").value) f["init-t"] = $("tr-t").value; }
    else f.t = $("tr-t").value;
    if ($("tr-learn-b").checked) { f["learn-b"] = true; if ($("tr-b").value && $("tr-b").value !== "tied") f["init-b"] = $("tr-b").value; }
    else if ($("tr-b").value) f.b = $("tr-b").value;
  }
  f.optimizer = $("tr-optimizer").value;
  if ($("tr-lr").value) f.lr = $("tr-lr").value;
  f.steps = $("tr-steps").value;
  if ($("tr-gradtol").value) f["grad-tol"] = $("tr-gradtol").value;
  f.seed = $("tr-seed").value;
  if ($("tr-batch").value) { f.batch = $("tr-batch").value; if ($("tr-batching").value) f.batching = $("tr-batching").value; }
  if ($("tr-nvw").value) f["neg-variance-weight"] = $("tr-nvw").value;
  return f;
}

function makeTrainCharts() {
  for (const c of Object.values(charts)) c.destroy();
  const mk = (el, label, ss) => new uPlot({
    width: chartWidth($(el)), height: 240,
    scales: { x: { time: false } },
    axes: [{ label: "step" }, { label, size: 60 }],
    series: [{ label: "step" }, ...ss],
  }, [[], ...ss.map(() => [])], $(el));
  const dash = [6, 4];
  charts.sim = mk("tr-sim", "similarity", [
    { label: "s_pos", stroke: "#1f77b4", width: 2 }, { label: "s_neg", stroke: "#ff7f0e", width: 2 },
    { label: "s+* (theory)", stroke: "#0b3c61", width: 1.5, dash }, { label: "s-* (theory)", stroke: "#8a4300", width: 1.5, dash }]);
  charts.loss = mk("tr-loss-chart", "loss", [{ label: "loss", stroke: "#2ca02c", width: 2 }]);
  charts.margin = mk("tr-margin", "margin", [{ label: "margin", stroke: "#9467bd", width: 2 }, { label: "theory", stroke: "#3d2452", width: 1.5, dash }]);
}

function flush() {
  if (!redraw) return;
  redraw = false;
  const s = series;
  charts.sim.setData([s.step, s.s_pos, s.s_neg, s.th_pos, s.th_neg]);
  charts.loss.setData([s.step, s.loss]);
  charts.margin.setData([s.step, s.margin, s.th_margin]);
}

async function startTrain() {
  showError("tr-error", null);
  let r;
  try {
    r = await getJson("/api/train", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(trainFlags()) });
  } catch (e) {
    showError("tr-error", e.message);
    return;
  }
  for (const k of Object.keys(series)) series[k] = [];
  theory = r.theory;
  makeTrainCharts();
  $("tr-command").textContent = r.command;
  $("tr-table").textContent = "";
  $("tr-status").textContent = "starting";
  document.body.dataset.trainState = "running";
  $("tr-start").disabled = true; $("tr-stop").disabled = false;
  const es = new EventSource(`/api/train/${r.id}/events`);
  run = { id: r.id, es };
  es.addEventListener("progress", (ev) => {
    for (const p of JSON.parse(ev.data)) {
      series.step.push(p.step + (p.restart || 0) * 0);
      series.s_pos.push(p.s_pos); series.s_neg.push(p.s_neg);
      series.loss.push(p.loss); series.margin.push(p.margin);
      series.th_pos.push(theory ? theory.s_pos : null); series.th_neg.push(theory ? theory.s_neg : null);
      series.th_margin.push(theory ? theory.margin : null);
      $("tr-status").textContent = `step ${p.step}` + (p.restart ? ` (start ${p.restart + 1})` : "") + `, loss ${fmt(p.loss)}`;
      document.body.dataset.trainSteps = String(series.step.length);
    }
    redraw = true;
    requestAnimationFrame(flush);
  });
  es.addEventListener("done", (ev) => {
    const d = JSON.parse(ev.data);
    es.close();
    run = null;
    $("tr-start").disabled = false; $("tr-stop").disabled = true;
    if (d.error) { showError("tr-error", d.error); $("tr-status").textContent = "failed"; document.body.dataset.trainState = "failed"; return; }
    $("tr-table").textContent = d.table;
    $("tr-status").textContent = "termination: " + d.record.termination;
    document.body.dataset.trainState = d.record.termination;
  });
  es.onerror = () => {
    if (run && run.es === es) {
      es.close(); run = null;
      $("tr-start").disabled = false; $("tr-stop").disabled = true;
      showError("tr-error", "the connection to the server was lost");
    }
  };
}

async function stopTrain() {
  if (!run) return;
  try { await getJson(`/api/train/${run.id}/stop`, { method: "POST" }); } catch (e) { showError("tr-error", e.message); }
}

function initTrain() {
  const sel = $("tr-loss");
  for (const l of info.losses) sel.add(new Option(l, l));
  for (const b of info.batchings) if (b !== "shuffled") $("tr-batching").add(new Option(b, b));
  for (const el of document.querySelectorAll("#train-controls [data-key]")) bind(el, el.dataset.key, () => lossVisibility("train-controls", $("tr-loss").value));
  lossVisibility("train-controls", $("tr-loss").value);
  $("tr-start").addEventListener("click", startTrain);
  $("tr-stop").addEventListener("click", stopTrain);
  // Closing the page stops its run (the server also notices the closed stream).
  addEventListener("pagehide", () => { if (run) navigator.sendBeacon(`/api/train/${run.id}/stop`); });
  makeTrainCharts();
}

// ---------- start ----------

async function main() {
  try {
    info = await getJson("/api/info");
    if (info.loss_params) lossParams = info.loss_params;
  } catch (e) {
    document.body.textContent = "cannot reach the ccem explore server: " + e.message;
    return;
  }
  $("version").textContent = "ccem " + info.version;
  for (const b of document.querySelectorAll(".tab")) b.addEventListener("click", () => showView(b.dataset.view));
  initTheory();
  await initInspect();
  initTrain();
  showView(params.get("view") || "theory");
  document.body.dataset.ready = "1";
}

main();
