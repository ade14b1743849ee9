"""The report's inline script. Builds the page from the embedded data with DOM calls and textContent only."""

from __future__ import annotations

HELPERS = r"""
function el(tag, cls, text) {
  var e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}
function add(parent) {
  for (var i = 1; i < arguments.length; i++) {
    var c = arguments[i];
    if (c === null || c === undefined) continue;
    parent.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
  }
  return parent;
}
function svg(tag, attrs) {
  var e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (var k in attrs) e.setAttribute(k, String(attrs[k]));
  return e;
}
function num(v, d) {
  if (v === null || v === undefined) return "–";
  if (typeof v === "boolean") return v ? "pass" : "fail";
  if (typeof v !== "number") return String(v);
  if (Number.isInteger(v)) return v.toLocaleString("en-US");
  return v.toFixed(d === undefined ? 3 : d);
}
function ci(iv) { return iv ? "[" + num(iv[0]) + ", " + num(iv[1]) + "]" : ""; }
function pval(p) { return p === null || p === undefined ? "–" : p < 0.0001 ? "< 0.0001" : p.toFixed(4); }
function pct(v) { return v === null || v === undefined ? "–" : (100 * v).toFixed(1) + " %"; }
function pill(text, kind) { return el("span", "pill " + kind, text); }
function section(title, id) {
  var s = el("section"); if (id) s.id = id;
  add(s, el("h2", null, title));
  return s;
}
function th(text, cls) { return el("th", cls, text); }
function td(text, cls) { return el("td", cls, text); }
function pre(text) { return el("pre", null, text === null || text === undefined ? "" : text); }
function block(title, text) {
  var d = el("div");
  add(d, el("h3", null, title), pre(text === null || text === undefined ? "(none)" : text));
  return d;
}
function str(i) { return i === null || i === undefined ? null : S[i]; }
function table(headers, numCols) {
  /* a table with its header row (columns listed in numCols right-aligned) and an empty body: t.tBodies[0] */
  var t = el("table"), hr = el("tr");
  headers.forEach(function (h, i) { add(hr, th(h, numCols && numCols.indexOf(i) >= 0 ? "num" : null)); });
  return add(t, add(el("thead"), hr), el("tbody"));
}

"""
"""DOM helpers shared with the dashboard: el, add, svg, num, ci, pct, pill, section, th, td, pre, block, str, table."""

WATERFALL = r"""
function waterfall(tr) {
  var box = el("div", "wf"); box.id = "waterfall";
  if (!tr || !tr.spans.length) { add(box, el("p", "note", "No trace was recorded for this case.")); return box; }
  var total = tr.total || 1;
  var axis = el("div", "wf-axis"), ticks = el("div", "wf-ticks");
  add(axis, el("span", null, "span"), ticks, el("span", "wf-dur", "ms"));
  [0, 0.25, 0.5, 0.75, 1].forEach(function (f) {
    var s = el("span", null, f === 0 ? "0" : (total * f).toFixed(total * f < 10 ? 2 : 0));
    s.style.left = (f * 100) + "%"; add(ticks, s);
  });
  add(box, axis);
  tr.spans.forEach(function (sp) {
    var depth = sp[0], name = str(sp[1]), start = sp[2], dur = sp[3], model = str(sp[4]);
    var tin = sp[5], tout = sp[6], tool = str(sp[7]), err = str(sp[8]), isErr = sp[9] === 1 || !!err;
    var row = el("div", "wf-row" + (isErr ? " error" : ""));
    var label = el("div", "wf-label");
    label.style.paddingLeft = (depth * 14) + "px";
    add(label, el("span", null, name));
    if (tool) add(label, el("span", "badge tool", "tool " + tool));
    if (model) add(label, el("span", "badge model", model));
    if (tin !== null || tout !== null) add(label, el("span", "badge", (tin || 0) + "→" + (tout || 0) + " tok"));
    if (isErr) add(label, el("span", "badge error", err || "error"));
    var track = el("div", "wf-track");
    var bar = el("div", "wf-bar" + (isErr ? " error" : model ? " llm" : tool ? " tool" : ""));
    bar.style.left = (100 * start / total) + "%";
    bar.style.width = Math.max(0.3, 100 * dur / total) + "%";
    bar.title = name + ": " + dur.toFixed(2) + " ms from +" + start.toFixed(2) + " ms";
    add(track, bar);
    add(row, label, track, el("div", "wf-dur", dur.toFixed(dur < 10 ? 2 : 0)));
    add(box, row);
  });
  if (tr.omitted) add(box, el("p", "note", tr.omitted + " more spans not included in the report."));
  return box;
}

"""
"""``waterfall(trace)``: a case's span tree as bars (the payload of :func:`evalkit.report.data.waterfall`)."""

SCRIPT = (r"""
(function () {
"use strict";
var D = null, S = [];
var PAGE = 50;

""" + HELPERS + r"""function load() {
  var node = document.getElementById("evalkit-data");
  if (node.type === "application/json") return Promise.resolve(JSON.parse(node.textContent));
  var bin = atob(node.textContent.trim());
  var bytes = new Uint8Array(bin.length);
  for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  return new Response(stream).text().then(JSON.parse);
}

function header(title, sub, pills) {
  var h = el("header");
  add(h, el("h1", null, title), el("span", "sub", sub));
  pills.forEach(function (p) { add(h, p); });
  return h;
}
function statusPill(s) {
  var kind = s === "completed" || s === "passed" || s === "ok" ? "ok" : s === "running" ? "neutral" :
    s === "interrupted" || s === "infra_error" ? "warn" : "bad";
  return pill(s || "unknown", kind);
}
function scorePill(s) {
  if (s.outcome === "not_applicable") return pill("n/a", "neutral");
  if (s.outcome === "error" || (!s.outcome && s.error)) return pill("error" + (s.error_kind ? " (" + s.error_kind + ")" : ""), "warn");
  return s.passed === true ? pill("pass", "ok") : s.passed === false ? pill("fail", "bad") : pill("–", "neutral");
}

function metaList(r) {
  var dl = el("dl", "meta");
  function row(k, v, mono) {
    if (v === null || v === undefined || v === "") v = "–";
    add(dl, el("dt", null, k), el("dd", mono ? "mono" : null, v));
  }
  row("run id", r.run_id, true);
  row("suite", r.suite);
  row("status", r.status);
  row("agent", r.agent ? (r.agent.name || "?") + (r.agent.version ? " " + r.agent.version : "") : r.target);
  row("target", r.target);
  row("models", (r.models || []).join(", "));
  row("judges", (r.judges || []).map(function (j) {
    return j.scorer + ": " + j.judge + (j.model ? " on " + j.model : "") +
      (j.prompt_sha256 ? " (prompt " + j.prompt_sha256.slice(0, 12) + ")" : "");
  }).join("; "));
  row("dataset", r.dataset_path);
  row("dataset sha256", r.dataset_sha256, true);
  row("git commit", r.git_commit ? r.git_commit + (r.git_dirty ? " (dirty)" : "") : null, true);
  row("started", r.started_at);
  row("ended", r.ended_at);
  row("cases × repeats", (r.cases_total === null ? "?" : r.cases_total) + " (repeats " + (r.repeats || 1) + ")");
  row("evalkit", r.evalkit_version);
  return dl;
}

function gateSection(g) {
  var s = section("Gate verdict", "gate");
  if (!g) { add(s, el("p", "note", "No gate was evaluated for this run.")); return s; }
  add(s, add(el("p"), statusPill(g.status || (g.passed ? "passed" : "failed")), " ", el("span", null, g.reason || "")));
  var checks = g.checks || [];
  if (checks.length) {
    var t = el("table"), hr = el("tr");
    ["threshold", "point", "interval", "compared", "result"].forEach(function (h) { add(hr, th(h)); });
    add(t, add(el("thead"), hr));
    var tb = el("tbody");
    checks.forEach(function (c) {
      var tr = el("tr");
      add(tr, td(c.metric + " " + c.op + " " + c.value + (c.mode ? " (" + c.mode + ")" : ""), "mono"),
        td(num(c.point), "num"), td(ci(c.interval), "num"), td(num(c.observed), "num"),
        add(el("td"), pill(c.passed ? "passed" : "failed", c.passed ? "ok" : "bad"), " ", c.message || ""));
      add(tb, tr);
    });
    add(s, add(t, tb));
  }
  (g.regressions || []).forEach(function (r) {
    add(s, el("p", "down", "regression: " + r.scorer + "/" + r.metric + " " + num(r.delta) + " (p=" + num(r.p_adjusted === null ? r.p_value : r.p_adjusted) + ")"));
  });
  return s;
}

function ciBar(iv, point, lo, hi) {
  var w = 120, h = 14, g = svg("svg", {width: w, height: h, viewBox: "0 0 " + w + " " + h, "class": "cibar"});
  add(g, svg("rect", {x: 0, y: 6, width: w, height: 2, fill: "#eaeef2"}));
  function x(v) { return hi > lo ? Math.max(0, Math.min(w, (v - lo) / (hi - lo) * w)) : 0; }
  if (iv) add(g, svg("rect", {x: x(iv[0]), y: 3, width: Math.max(1, x(iv[1]) - x(iv[0])), height: 8, fill: "#b6d4fe"}));
  if (point !== null && point !== undefined) add(g, svg("rect", {x: x(point) - 1, y: 1, width: 2, height: 12, fill: "#0969da"}));
  return g;
}

function metricsSection(sum) {
  var s = section("Metrics", "metrics");
  var cards = el("div", "cards");
  function card(k, v) { add(cards, add(el("div", "card"), el("div", "k", k), el("div", "v", v))); }
  if (sum.planned !== null && sum.planned !== undefined) {
    card("planned", num(sum.planned));
    card("completed", num(sum.completed));
    card("errored", num(sum.errors) + " (" + pct(sum.error_rate) + ")");
    card("cancelled", num(sum.cancelled || 0));
    card("missing", num(sum.missing || 0));
  } else {
    card("cases", num(sum.cases));
    card("errors", num(sum.errors) + " (" + pct(sum.error_rate) + ")");
  }
  card("latency p50", sum.latency_p50_ms === null || sum.latency_p50_ms === undefined ? "–" : num(sum.latency_p50_ms, 1) + " ms");
  card("latency p95", sum.latency_p95_ms === null || sum.latency_p95_ms === undefined ? "–" : num(sum.latency_p95_ms, 1) + " ms");
  card("tokens", num(sum.tokens_total || 0));
  card("cost", "$" + num(sum.cost_usd_total || 0, 4));
  add(s, cards);
  var t = el("table"), hr = el("tr");
  [["scorer"], ["mean", "num"], ["95 % interval", "num"], [""], ["pass rate", "num"], ["95 % interval", "num"], [""],
   ["scored", "num"], ["passed", "num"], ["n/a", "num"], ["errors", "num"]].forEach(function (h) { add(hr, th(h[0], h[1])); });
  add(t, add(el("thead"), hr));
  var tb = el("tbody");
  (sum.scorers || []).forEach(function (c) {
    var tr = el("tr");
    var hi = Math.max(1, c.mean_ci ? c.mean_ci[1] : 0, c.mean || 0);
    add(tr, td(c.name), td(num(c.mean), "num"), td(ci(c.mean_ci), "num"), add(el("td"), ciBar(c.mean_ci, c.mean, 0, hi)),
      td(pct(c.pass_rate), "num"), td(ci(c.pass_rate_ci), "num"), add(el("td"), ciBar(c.pass_rate_ci, c.pass_rate, 0, 1)),
      td(num(c.scored), "num"), td(num(c.passed), "num"), td(num(c.not_applicable || 0), c.not_applicable ? "num na" : "num"),
      td(num(c.errors), c.errors ? "num err" : "num"));
    add(tb, tr);
  });
  add(s, add(t, tb));
  return s;
}

function histogram(name, h) {
  var box = el("div", "chart");
  add(box, el("div", "t", name));
  var n = h.counts.length, w = 280, H = 130, pad = 18, bw = n ? (w - 10) / n : 0;
  var max = Math.max.apply(null, [1].concat(h.counts));
  var g = svg("svg", {width: w, height: H + 30, viewBox: "0 0 " + w + " " + (H + 30), role: "img"});
  h.counts.forEach(function (c, i) {
    var bh = (H - pad) * c / max, x = 5 + i * bw;
    var fill = h.kind === "bool" ? (i === 0 ? "#cf222e" : "#1a7f37") : "#0969da";
    add(g, svg("rect", {x: x + 2, y: H - bh, width: Math.max(1, bw - 4), height: bh, fill: fill}));
    var ct = svg("text", {x: x + bw / 2, y: H - bh - 3, "text-anchor": "middle", "font-size": 10, fill: "#5f6b7a"});
    ct.textContent = String(c); add(g, ct);
    var lt = svg("text", {x: x + bw / 2, y: H + 13, "text-anchor": "middle", "font-size": n > 6 ? 8 : 10, fill: "#5f6b7a"});
    lt.textContent = h.labels[i]; add(g, lt);
  });
  if (!n) { var e = svg("text", {x: 10, y: 20, "font-size": 11, fill: "#5f6b7a"}); e.textContent = "no values"; add(g, e); }
  add(box, g);
  return box;
}

/* ---------- run report: cases table ---------- */
var C, BOOL = [], ST = {failed: false, scorer: -1, tag: -1, q: "", key: "default", dir: 1, page: 0}, VIEW = [], HAY = null;

function outcomeOf(j, i) {
  var o = str(C.score_outcome[j][i]);
  if (o) return o;
  return C.score_error[j][i] ? "error" : C.value[j][i] !== null && C.value[j][i] !== undefined ? "ok" : null;
}
function scoreClass(j, i) {
  var o = outcomeOf(j, i);
  if (o === "error") return "err";
  if (o === "not_applicable") return "na";
  var p = C.passed[j][i];
  return p === 1 ? "pass" : p === 0 ? "fail" : "";
}
function scoreText(j, i) {
  var o = outcomeOf(j, i);
  if (o === "error") return "error" + (str(C.score_kind[j][i]) ? " (" + str(C.score_kind[j][i]) + ")" : "");
  if (o === "not_applicable") return "n/a";
  var v = C.value[j][i];
  if (v === null || v === undefined) return "";
  if (BOOL[j]) return v ? "pass" : "fail";
  return Number.isInteger(v) ? String(v) : v.toFixed(3);
}
function hay(i) {
  if (!HAY) HAY = new Array(C.id.length);
  if (HAY[i] === undefined) {
    var parts = [C.id[i], C.input[i], C.output[i], C.expected[i], C.error[i]];
    for (var j = 0; j < D.scorers.length; j++) parts.push(C.rationale[j][i], C.score_error[j][i]);
    HAY[i] = parts.filter(function (p) { return p; }).join("\n").toLowerCase();
  }
  return HAY[i];
}
function keyOf(i) {
  var k = ST.key;
  if (k === "id") return C.id[i];
  if (k === "status") return C.outcome[i];
  if (k === "latency") return C.latency[i];
  if (k === "tokens") return C.tokens[i];
  if (k === "cost") return C.cost[i];
  if (k.indexOf("s:") === 0) { var j = +k.slice(2), o = outcomeOf(j, i); return o === "error" ? -Infinity : o === "ok" ? C.value[j][i] : null; }
  return null;
}
function compute() {
  var n = C.id.length, out = [], q = ST.q.toLowerCase(), j = ST.scorer;
  for (var i = 0; i < n; i++) {
    if (j >= 0) {
      var o = outcomeOf(j, i);
      if (!o) continue;
      if (ST.failed && !(C.passed[j][i] === 0 || o === "error")) continue;
    } else if (ST.failed && !C.failed[i]) continue;
    if (ST.tag >= 0 && C.tags[i].indexOf(ST.tag) < 0) continue;
    if (q && hay(i).indexOf(q) < 0) continue;
    out.push(i);
  }
  if (ST.key === "default") {
    out.sort(function (a, b) { return (C.failed[b] - C.failed[a]) || (C.id[a] < C.id[b] ? -1 : C.id[a] > C.id[b] ? 1 : C.rep[a] - C.rep[b]); });
  } else {
    var keys = {};
    out.forEach(function (i) { keys[i] = keyOf(i); });
    out.sort(function (a, b) {
      var x = keys[a], y = keys[b];
      if (x === y) return a - b;
      if (x === null || x === undefined) return 1;
      if (y === null || y === undefined) return -1;
      return (x < y ? -1 : 1) * ST.dir;
    });
  }
  VIEW = out;
}

function caseKind(i) {
  var k = str(C.error_kind[i]);
  for (var j = 0; !k && j < D.scorers.length; j++) if (outcomeOf(j, i) === "error") k = str(C.score_kind[j][i]);
  return k;
}
function outcomePill(i) {
  var o = C.outcome[i];
  if (o === "errored") { var k = caseKind(i); return pill("errored" + (k ? " (" + k + ")" : ""), "bad"); }
  if (o === "cancelled") return pill("cancelled", "neutral");
  return pill(o || "completed", "ok");
}
var tbody, countEl, pageEl, prevBtn, nextBtn, headRow;
function renderRows() {
  var pages = Math.max(1, Math.ceil(VIEW.length / PAGE));
  if (ST.page >= pages) ST.page = pages - 1;
  var start = ST.page * PAGE, rows = VIEW.slice(start, start + PAGE);
  var frag = document.createDocumentFragment();
  rows.forEach(function (i) {
    var tr = el("tr", "case" + (C.failed[i] ? " failed" : ""));
    tr.tabIndex = 0;
    tr.setAttribute("data-case", C.id[i]);
    tr.setAttribute("data-index", String(i));
    add(tr, td(C.id[i] + (C.rep[i] ? " #" + C.rep[i] : ""), "mono"));
    add(tr, add(el("td"), outcomePill(i)));
    for (var j = 0; j < D.scorers.length; j++) add(tr, td(scoreText(j, i), "num " + scoreClass(j, i)));
    add(tr, td(C.latency[i] === null ? "–" : C.latency[i].toFixed(1), "num"), td(num(C.tokens[i]), "num"),
      td(C.cost[i] ? C.cost[i].toFixed(4) : "–", "num"));
    var tags = el("td");
    C.tags[i].forEach(function (t) { add(tags, el("span", "tag", str(t))); });
    add(tr, tags);
    if (LM.on) LM.judges.forEach(function (J) { add(tr, labelCell(i, J)); });
    frag.appendChild(tr);
  });
  tbody.replaceChildren(frag);
  countEl.textContent = VIEW.length.toLocaleString("en-US") + " of " + C.id.length.toLocaleString("en-US") + " cases";
  pageEl.textContent = "page " + (ST.page + 1) + " of " + pages;
  prevBtn.disabled = ST.page === 0;
  nextBtn.disabled = ST.page >= pages - 1;
  Array.prototype.forEach.call(headRow.children, function (h) {
    var k = h.getAttribute("data-key");
    h.textContent = h.getAttribute("data-label") + (k === ST.key ? (ST.dir > 0 ? " ▲" : " ▼") : "");
  });
}
function refresh() { compute(); renderRows(); }

function casesSection() {
  var s = section("Cases", "cases");
  var bar = el("div", "toolbar");
  var search = el("input"); search.type = "search"; search.id = "f-search"; search.placeholder = "Search id, input, output, rationale…";
  var failedBox = el("input"); failedBox.type = "checkbox"; failedBox.id = "f-failed";
  var failedLbl = add(el("label"), failedBox, " failed only");
  var scorer = el("select"); scorer.id = "f-scorer";
  add(scorer, el("option", null, "all scorers")); scorer.firstChild.value = "-1";
  D.scorers.forEach(function (n, j) { var o = el("option", null, n); o.value = String(j); add(scorer, o); });
  var tag = el("select"); tag.id = "f-tag";
  add(tag, el("option", null, "all tags")); tag.firstChild.value = "-1";
  var used = {};
  C.tags.forEach(function (ts) { ts.forEach(function (t) { used[t] = 1; }); });
  Object.keys(used).map(Number).sort(function (a, b) { return S[a] < S[b] ? -1 : 1; }).forEach(function (t) {
    var o = el("option", null, S[t]); o.value = String(t); add(tag, o);
  });
  countEl = el("span", "count");
  var labelBtn = el("button", null, "Label mode"); labelBtn.id = "label-mode"; labelBtn.setAttribute("aria-pressed", "false");
  if (!LM.judges.length) { labelBtn.disabled = true; labelBtn.title = "This run has no LLM-judge scores to label."; }
  labelBtn.addEventListener("click", function () { setLabelMode(!LM.on, labelBtn); });
  add(bar, search, failedLbl, scorer, tag, labelBtn, countEl);
  add(s, bar, labelBar());
  var timer = null;
  search.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(function () { ST.q = search.value; ST.page = 0; refresh(); }, 120);
  });
  failedBox.addEventListener("change", function () { ST.failed = failedBox.checked; ST.page = 0; refresh(); });
  scorer.addEventListener("change", function () { ST.scorer = +scorer.value; ST.page = 0; refresh(); });
  tag.addEventListener("change", function () { ST.tag = +tag.value; ST.page = 0; refresh(); });

  var t = el("table"); t.id = "case-table";
  headRow = el("tr");
  function sortable(label, key, cls) {
    var h = th(label, "sortable" + (cls ? " " + cls : ""));
    h.setAttribute("data-key", key); h.setAttribute("data-label", label);
    h.addEventListener("click", function () {
      if (ST.key === key) ST.dir = -ST.dir; else { ST.key = key; ST.dir = key === "id" || key === "status" ? 1 : -1; }
      ST.page = 0; refresh();
    });
    add(headRow, h);
  }
  sortable("case", "id"); sortable("outcome", "status");
  D.scorers.forEach(function (n, j) { sortable(n, "s:" + j, "num"); });
  sortable("ms", "latency", "num"); sortable("tokens", "tokens", "num"); sortable("cost $", "cost", "num");
  var tagsTh = th("tags"); tagsTh.setAttribute("data-key", "-"); tagsTh.setAttribute("data-label", "tags");
  add(headRow, tagsTh);
  LM.judges.forEach(function (J) {
    var h = th("label · " + J.scorer, "label-head"); h.hidden = true;
    h.setAttribute("data-key", "-"); h.setAttribute("data-label", "label · " + J.scorer);
    add(headRow, h);
  });
  add(t, add(el("thead"), headRow));
  tbody = el("tbody"); tbody.id = "case-rows";
  add(t, tbody);
  add(s, t);
  tbody.addEventListener("click", function (ev) {
    if (ev.target.closest(".label-cell")) return;  /* labelling in the row, not opening it */
    var tr = ev.target.closest("tr.case");
    if (tr) openCase(+tr.getAttribute("data-index"));
  });
  tbody.addEventListener("keydown", function (ev) {
    if (ev.target.closest(".label-cell")) return;
    var tr = ev.target.closest("tr.case");
    if (tr && ev.key === "Enter") openCase(+tr.getAttribute("data-index"));
  });
  var pager = el("div", "pager");
  prevBtn = el("button", null, "‹ prev"); nextBtn = el("button", null, "next ›"); pageEl = el("span", "note");
  prevBtn.id = "page-prev"; nextBtn.id = "page-next";
  prevBtn.addEventListener("click", function () { ST.page--; renderRows(); });
  nextBtn.addEventListener("click", function () { ST.page++; renderRows(); });
  add(pager, prevBtn, pageEl, nextBtn);
  add(s, pager);
  return s;
}

/* ---------- label mode: a human value per case and judge scorer, exported as a labels file ---------- */
var LABEL_VALUES = {scale_1_5: ["1", "2", "3", "4", "5"], yes_no: ["yes", "no"], pairwise: ["A", "B", "tie"]};
var LM = {on: false, judges: [], kinds: {}, given: {}, bar: null, who: null, count: null, msg: null, link: null, url: null};

function labelRef(J, i) { return str(J.refs[i]); }
function labelKind(ref) { var k = LM.kinds[ref]; return LABEL_VALUES[k] ? k : "scale_1_5"; }
function judgeSays(J, i) {
  /* the judge's own verdict, on the scale the human answers in */
  var j = J.col, o = outcomeOf(j, i), v = C.value[j][i];
  if (o !== "ok" || v === null || v === undefined) return scoreText(j, i) || "–";
  var kind = labelKind(labelRef(J, i));
  if (kind === "yes_no") return v ? "yes" : "no";
  if (kind === "pairwise") return (v > 0.75 ? "A" : v > 0.25 ? "tie" : "B") + " (" + num(v, 2) + ")";
  return scoreText(j, i);
}
function labelCount() {
  var n = 0;
  for (var k in LM.given) if (LM.given[k].value) n++;
  LM.count.textContent = n + " label" + (n === 1 ? "" : "s") + " given";
}
function labelControl(i, J) {
  /* a select of the judge's valid values that starts empty (whatever the judge said) and a note */
  var key = i + ":" + J.col, ref = labelRef(J, i), had = LM.given[key];
  var box = el("span", "label-ctl");
  var sel = el("select", "label-value");
  sel.setAttribute("data-case", C.id[i]); sel.setAttribute("data-repeat", String(C.rep[i]));
  sel.setAttribute("data-scorer", J.scorer); sel.setAttribute("aria-label", "your label for " + J.scorer);
  var none = el("option", null, "–"); none.value = ""; add(sel, none);
  LABEL_VALUES[labelKind(ref)].forEach(function (v) { var o = el("option", null, v); o.value = v; add(sel, o); });
  var note = el("input", "label-note"); note.type = "text"; note.placeholder = "note"; note.maxLength = 2000;
  note.setAttribute("data-case", C.id[i]); note.setAttribute("data-scorer", J.scorer);
  note.setAttribute("aria-label", "note on " + J.scorer);
  if (had) { sel.value = had.value; note.value = had.note; }
  function save() {
    var old = LM.given[key];
    if (!sel.value && !note.value) delete LM.given[key];
    else LM.given[key] = {i: i, J: J, value: sel.value, note: note.value,
                          at: old && old.value === sel.value ? old.at : new Date().toISOString()};
    labelCount();
  }
  sel.addEventListener("change", save);
  note.addEventListener("input", save);
  add(box, el("span", "label-judge", "judge: " + judgeSays(J, i)), sel, note);
  return box;
}
function labelCell(i, J) {
  var c = el("td", "label-cell");
  if (labelRef(J, i)) add(c, labelControl(i, J));
  else add(c, el("span", "na", outcomeOf(J.col, i) === "not_applicable" ? "n/a" : "–"));
  return c;
}
function labelDetail(i) {
  var rows = LM.judges.filter(function (J) { return labelRef(J, i); });
  if (!rows.length) return;
  add(panel, el("h3", null, "Your labels"));
  var t = table(["scorer", "judge", "your value · note"]), tb = t.tBodies[0]; t.id = "label-table";
  rows.forEach(function (J) {
    add(tb, add(el("tr"), td(J.scorer), td(labelRef(J, i), "mono"), add(el("td", "label-cell"), labelControl(i, J))));
  });
  add(panel, t);
}
function labelRows(who) {
  /* the labels file: one JSON object per line, the fields `evalkit labels import` reads */
  var keys = Object.keys(LM.given).filter(function (k) { return LM.given[k].value; });
  keys.sort(function (a, b) { var x = LM.given[a], y = LM.given[b]; return (x.i - y.i) || (x.J.col - y.J.col); });
  return keys.map(function (k) {
    var g = LM.given[k], ref = labelRef(g.J, g.i), kind = labelKind(ref), v = g.value;
    var row = {case_id: C.id[g.i], judge: ref,
               value: kind === "scale_1_5" ? parseInt(v, 10) : kind === "yes_no" ? v === "yes" : v,
               annotator: who, labelled_at: g.at, repeat: C.rep[g.i]};
    if (g.note.trim()) row.note = g.note;
    row.run_id = D.run.run_id;
    return JSON.stringify(row);
  });
}
function exportLabels() {
  var who = LM.who.value.trim();
  if (!who) { LM.msg.textContent = "Enter the annotator's name first."; LM.who.focus(); return; }
  var lines = labelRows(who);
  if (!lines.length) { LM.msg.textContent = "No labels yet: choose a value for at least one case."; return; }
  if (LM.url) URL.revokeObjectURL(LM.url);
  LM.url = URL.createObjectURL(new Blob([lines.join("\n") + "\n"], {type: "application/x-ndjson"}));
  var name = "labels-" + String(D.run.run_id).replace(/[^A-Za-z0-9._-]+/g, "_") + ".jsonl";
  LM.link.href = LM.url; LM.link.download = name; LM.link.hidden = false;
  LM.link.setAttribute("data-rows", String(lines.length));
  LM.link.textContent = "save " + name + " (" + lines.length + " label" + (lines.length === 1 ? "" : "s") + ")";
  LM.msg.textContent = "Import with: evalkit labels import " + name;
  LM.link.click();
}
function labelBar() {
  var bar = el("div", "toolbar label-bar"); bar.id = "label-bar"; bar.hidden = true;
  var who = el("input"); who.type = "text"; who.id = "label-annotator"; who.placeholder = "name or e-mail";
  who.autocomplete = "off"; who.maxLength = 200;
  var exp = el("button", null, "Export labels (.jsonl)"); exp.id = "label-export";
  exp.addEventListener("click", exportLabels);
  var link = el("a", "label-link"); link.id = "label-download"; link.hidden = true;
  LM.bar = bar; LM.who = who; LM.link = link;
  LM.count = el("span", "note"); LM.count.id = "label-count";
  LM.msg = el("span", "note"); LM.msg.id = "label-msg";
  add(bar, add(el("label"), "annotator ", who), LM.count, exp, link, LM.msg,
      el("span", "note label-help", "Your value starts empty; the judge's is shown beside it. Only cases you label are exported."));
  labelCount();
  return bar;
}
function setLabelMode(on, btn) {
  LM.on = on; LM.bar.hidden = !on;
  btn.setAttribute("aria-pressed", on ? "true" : "false");
  btn.textContent = on ? "Label mode: on" : "Label mode";
  Array.prototype.forEach.call(headRow.querySelectorAll(".label-head"), function (h) { h.hidden = !on; });
  renderRows();
  if (on && !LM.who.value) LM.who.focus();
}

/* ---------- case detail ---------- */
var detail, panel;
function closeDetail() {
  detail.classList.remove("open"); panel.replaceChildren();
  if (LM.on) renderRows();  /* labels given in the panel show in the table */
}
function openCase(i) {
  panel.replaceChildren();
  var close = el("button", "close", "close ✕"); close.addEventListener("click", closeDetail);
  add(panel, close, el("h2", "mono", C.id[i] + (C.rep[i] ? " #" + C.rep[i] : "")));
  var facts = add(el("p"), outcomePill(i), " ", C.failed[i] ? pill("failed", "bad") : pill("passed", "ok"),
    " latency " + (C.latency[i] === null ? "–" : C.latency[i].toFixed(1) + " ms") + " · tokens " + num(C.tokens[i]) +
    " · cost $" + num(C.cost[i] || 0, 4) + " ");
  C.tags[i].forEach(function (t) { add(facts, el("span", "tag", str(t))); });
  add(panel, facts);
  var texts = el("div", "texts");
  add(texts, block("Input", C.input[i]), block("Expected", C.expected[i]), block("Output", C.output[i]));
  add(panel, texts);
  if (C.error[i]) add(panel, block("Error", C.error[i]));
  if (C.tool_calls[i]) add(panel, block("Tool calls", C.tool_calls[i]));
  add(panel, el("h3", null, "Scores"));
  var t = table(["scorer", "value", "verdict", "rationale", "judge"]), tb = t.tBodies[0]; t.id = "score-table";
  D.scorers.forEach(function (n, j) {
    var o = outcomeOf(j, i), e = C.score_error[j][i], p = C.passed[j][i];
    if (!o) return;
    var verdict = scorePill({outcome: o, error_kind: str(C.score_kind[j][i]), passed: p === 1 ? true : p === 0 ? false : null});
    var why = el("td", "score-rationale", o === "not_applicable" ? "not applicable: " + (e || "") : e ? e : (C.rationale[j][i] || ""));
    add(tb, add(el("tr"), td(n), td(scoreText(j, i), "num"), add(el("td"), verdict), why, td(str(C.judge[j][i]) || "", "mono")));
  });
  add(panel, t);
  if (LM.on) labelDetail(i);
  add(panel, el("h3", null, "Trace"));
  add(panel, waterfall(C.trace[i]));
  detail.classList.add("open");
  close.focus();
}

""" + WATERFALL + r"""function renderRun(app) {
  C = D.cases;
  var lab = D.labelling || {judges: [], kinds: {}};
  LM.judges = lab.judges; LM.kinds = lab.kinds;
  BOOL = D.scorers.map(function (n) { return !!(D.dist[n] && D.dist[n].kind === "bool"); });
  var r = D.run, sum = D.summary || {};
  var g = D.gate;
  var pills = [statusPill(r.status)];
  if (g) pills.push(pill("gate " + (g.status || (g.passed ? "passed" : "failed")), g.passed ? "ok" : g.status === "infra_error" ? "warn" : "bad"));
  document.body.insertBefore(header("evalkit · " + (r.suite || "run"), r.run_id, pills), app);
  var m = section("Run", "run"); add(m, metaList(r)); add(app, m);
  add(app, gateSection(g));
  add(app, metricsSection(sum));
  var dist = section("Score distributions", "distributions"), charts = el("div", "charts");
  D.scorers.forEach(function (n) { if (D.dist[n]) add(charts, histogram(n, D.dist[n])); });
  add(dist, charts); add(app, dist);
  add(app, casesSection());
  refresh();
}

/* ---------- compare report ---------- */
function renderCompare(app) {
  var A = D.a, B = D.b;
  document.body.insertBefore(header("evalkit · baseline diff", "A " + A.run_id + "  →  B " + B.run_id,
    [pill(D.flips_total + " flipped case(s)", D.flips_total ? "warn" : "ok")]), app);
  var m = section("Runs", "runs"), t = el("table"), hr = el("tr");
  add(hr, th(""), th("A (baseline)"), th("B (candidate)"));
  add(t, add(el("thead"), hr));
  var tb = el("tbody");
  function row(k, f) { var a = f(A), b = f(B); add(tb, add(el("tr", a !== b ? "changed" : null), td(k), td(a, "mono"), td(b, "mono"))); }
  row("run id", function (r) { return r.run_id; });
  row("suite", function (r) { return r.suite || "–"; });
  row("status", function (r) { return r.status || "–"; });
  row("agent", function (r) { return r.agent ? (r.agent.name || "?") + " " + (r.agent.version || "") : (r.target || "–"); });
  row("models", function (r) { return (r.models || []).join(", ") || "–"; });
  row("judges", function (r) { return (r.judges || []).map(function (j) { return j.judge + (j.model ? " on " + j.model : ""); }).join(", ") || "–"; });
  row("dataset sha256", function (r) { return r.dataset_sha256 || "–"; });
  row("git commit", function (r) { return (r.git_commit || "–") + (r.git_dirty ? " (dirty)" : ""); });
  row("started", function (r) { return r.started_at || "–"; });
  add(m, add(t, tb)); add(app, m);

  var ms = section("Metric deltas (B − A)", "deltas");
  add(ms, el("p", "note", D.method));
  var mt = el("table"), mh = el("tr");
  [["scorer"], ["metric"], ["shared", "num"], ["A", "num"], ["B", "num"], ["Δ", "num"], ["95 % interval of Δ", "num"], ["p", "num"], ["verdict"]]
    .forEach(function (h) { add(mh, th(h[0], h[1])); });
  add(mt, add(el("thead"), mh));
  var mb = el("tbody");
  D.metrics.forEach(function (c) {
    var v = c.regression ? pill("regression", "bad") : c.improvement ? pill("improvement", "ok") :
      c.significant === null ? pill("not tested", "neutral") : c.significant ? pill("significant (not gating)", "warn") : pill("no significant change", "neutral");
    var p = c.p_adj !== null && c.p_adj !== undefined ? pval(c.p_adj) + " (adj.)" : pval(c.p);
    add(mb, add(el("tr"), td(c.scorer), td(c.metric), td(num(c.n), "num"), td(num(c.a), "num"), td(num(c.b), "num"),
      td((c.delta > 0 ? "+" : "") + num(c.delta), "num " + (c.delta > 0 ? "up" : c.delta < 0 ? "down" : "")),
      td(ci(c.ci), "num"), td(p, "num"), add(el("td"), v)));
  });
  add(ms, add(mt, mb));
  var rt = el("table"), rh = el("tr");
  [["run metric"], ["A", "num"], ["B", "num"], ["Δ", "num"]].forEach(function (h) { add(rh, th(h[0], h[1])); });
  add(rt, add(el("thead"), rh));
  var rb = el("tbody");
  D.run_metrics.forEach(function (r) { add(rb, add(el("tr"), td(r.name), td(num(r.a), "num"), td(num(r.b), "num"), td(num(r.delta), "num"))); });
  add(ms, el("h3", null, "Run totals"), add(rt, rb));
  add(app, ms);

  var fs = section("Cases that flipped", "flips");
  var bar = el("div", "toolbar");
  var dir = el("select"); dir.id = "f-dir";
  [["all", "all flips"], ["to_fail", "passed in A, fail in B"], ["to_pass", "failed in A, pass in B"]].forEach(function (o) {
    var op = el("option", null, o[1]); op.value = o[0]; add(dir, op);
  });
  var q = el("input"); q.type = "search"; q.id = "f-search"; q.placeholder = "Search case id or text…";
  var count = el("span", "count");
  add(bar, dir, q, count); add(fs, bar);
  if (D.flips_total > D.flips.length) add(fs, el("p", "note", "Showing the first " + D.flips.length + " of " + D.flips_total + " flipped cases."));
  var list = el("div"); list.id = "flip-list"; add(fs, list);
  var pager = el("div", "pager"), prev = el("button", null, "‹ prev"), next = el("button", null, "next ›"), pg = el("span", "note");
  add(pager, prev, pg, next); add(fs, pager); add(app, fs);
  var page = 0, view = [], per = 20;
  function side(title, sd, flipped) {
    var d = el("div");
    add(d, el("h4", null, title));
    if (!sd) { add(d, el("p", "note", "not in this run")); return d; }
    add(d, el("div", "note", "output"), pre(sd.output));
    if (sd.error) add(d, el("div", "note", "error"), pre(sd.error));
    var st = el("table"), sb = el("tbody");
    sd.scores.forEach(function (s) {
      var mark = scorePill(s);
      add(sb, add(el("tr", flipped.indexOf(s.name) >= 0 ? "flipped" : null), td(s.name + (flipped.indexOf(s.name) >= 0 ? " ⇄" : "")),
        td(num(s.value), "num"), add(el("td"), mark), td(s.error || s.rationale || "", "score-rationale")));
    });
    add(d, add(st, sb));
    return d;
  }
  function draw() {
    var qq = q.value.toLowerCase(), dv = dir.value;
    view = D.flips.filter(function (f) {
      if (dv !== "all" && !f.flips.some(function (x) { return x[1] === dv; })) return false;
      if (!qq) return true;
      var sa = f.a || {}, sb = f.b || {};
      return [f.case_id, sa.input, sa.output, sb.output, sa.expected].join("\n").toLowerCase().indexOf(qq) >= 0;
    });
    var pages = Math.max(1, Math.ceil(view.length / per));
    if (page >= pages) page = pages - 1;
    var frag = document.createDocumentFragment();
    view.slice(page * per, page * per + per).forEach(function (f) {
      var box = el("div", "flip"); box.setAttribute("data-case", f.case_id);
      var h = add(el("div"), el("strong", "mono", f.case_id), " ");
      f.flips.forEach(function (x) { add(h, pill(x[0] + (x[1] === "to_fail" ? ": pass → fail" : ": fail → pass"), x[1] === "to_fail" ? "bad" : "ok"), " "); });
      add(box, h);
      var base = f.a || f.b || {};
      add(box, add(el("div", "texts"), block("Input", base.input), block("Expected", base.expected)));
      var names = f.flips.map(function (x) { return x[0]; });
      add(box, add(el("div", "sides"), side("A (baseline)", f.a, names), side("B (candidate)", f.b, names)));
      frag.appendChild(box);
    });
    list.replaceChildren(frag);
    count.textContent = view.length + " of " + D.flips.length + " flipped cases";
    pg.textContent = "page " + (page + 1) + " of " + pages;
    prev.disabled = page === 0; next.disabled = page >= pages - 1;
  }
  dir.addEventListener("change", function () { page = 0; draw(); });
  var timer = null;
  q.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(function () { page = 0; draw(); }, 120); });
  prev.addEventListener("click", function () { page--; draw(); });
  next.addEventListener("click", function () { page++; draw(); });
  if (!D.flips.length) add(list, el("p", "note", "No case changed its verdict."));
  else draw();
}

function start() {
  var app = document.getElementById("app");
  load().then(function (data) {
    D = data; S = data.strings || [];
    app.replaceChildren();
    var main = el("main"); main.id = "app"; app.replaceWith(main); app = main;
    if (D.kind === "compare") renderCompare(app); else {
      detail = el("div"); detail.id = "detail"; detail.setAttribute("role", "dialog");
      panel = el("div", "panel"); add(detail, panel); document.body.appendChild(detail);
      detail.addEventListener("click", function (ev) { if (ev.target === detail) closeDetail(); });
      document.addEventListener("keydown", function (ev) { if (ev.key === "Escape" && detail.classList.contains("open")) closeDetail(); });
      renderRun(app);
    }
    document.body.setAttribute("data-ready", "1");
  }).catch(function (err) {
    app.replaceChildren(el("p", null, "Could not load the report data: " + err));
    document.body.setAttribute("data-ready", "error");
  });
}
start();
})();
""")
