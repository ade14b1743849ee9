"""The dashboard's inline script: hash routes, JSON fetches to its own server, DOM built with textContent only.

Routes: ``#/`` leaderboard, ``#/trend/<suite>``, ``#/runs``, ``#/run/<id>``, ``#/case/<run>/<case>/<repeat>``,
``#/judges``. The leaderboard and runs views refresh themselves every 30 s while the tab is visible.
"""

from __future__ import annotations

from evalkit.report.script import HELPERS, WATERFALL

UI_SCRIPT = r"""
(function () {
"use strict";
var S = [];
var COLORS = ["#0969da", "#cf222e", "#1a7f37", "#8250df", "#9a6700", "#bf3989", "#0550ae", "#6e7781"];
var timer = null;
""" + HELPERS + WATERFALL + r"""
function api(route, params) {
  var q = new URLSearchParams();
  Object.keys(params || {}).forEach(function (k) { if (params[k] !== null && params[k] !== undefined && params[k] !== "") q.set(k, params[k]); });
  return fetch("api/" + route + (q.toString() ? "?" + q.toString() : ""), {credentials: "same-origin"}).then(function (r) {
    return r.json().then(function (body) {
      if (!r.ok) throw new Error(body && body.error ? body.error : "HTTP " + r.status);
      return body;
    });
  });
}
function link(text, href, cls) { var a = el("a", cls, text); a.setAttribute("href", href); return a; }
function out(text, href) {
  var a = link(text, href); a.setAttribute("target", "_blank"); a.setAttribute("rel", "noopener noreferrer"); return a;
}
function route(parts) { return "#/" + parts.map(encodeURIComponent).join("/"); }
function short(s, n) { s = s || ""; return s.length > n ? s.slice(0, n) : s; }
function val(v) { return typeof v === "number" && Math.abs(v) < 1000 ? v.toFixed(3) : num(v); }
function when(iso) { return iso ? iso.replace("T", " ").slice(0, 16) : "–"; }
function banner(main, err) { add(main, el("div", "err-banner", String(err && err.message ? err.message : err))); }

function shell(active) {
  var h = el("header");
  add(h, el("h1", null, "evalkit"));
  var nav = el("nav");
  [["Leaderboard", "#/"], ["Runs", "#/runs"], ["Judges", "#/judges"]].forEach(function (n) {
    add(nav, link(n[0], n[1], n[0].toLowerCase() === active ? "on" : null));
  });
  add(h, nav, el("span", "live", "read-only · live"));
  var main = el("main"); main.id = "app";
  document.body.replaceChildren(h, main);
  return main;
}
function ready() { document.body.setAttribute("data-ready", "1"); }
function failed(main, err) { banner(main, err); document.body.setAttribute("data-ready", "error"); }

/* ---------- leaderboard ---------- */
var F = {suite: "", team: "", branch: "", since: "", pick: "latest"};
function ciBar(v, lo, hi) {
  var box = el("span", "cibar");
  if (lo === null || hi === null || lo === undefined) return box;
  var a = Math.min(lo, v), b = Math.max(hi, v), span = b - a || 1, pad = span * 0.15;
  var x = function (t) { return (100 * (t - a + pad) / (span + 2 * pad)) + "%"; };
  var iv = el("span", "iv"); iv.style.left = x(lo); iv.style.width = (100 * (hi - lo) / (span + 2 * pad)) + "%";
  var pt = el("span", "pt"); pt.style.left = x(v);
  add(box, iv, pt);
  return box;
}
function filterBar(data, onChange) {
  var bar = el("div", "toolbar"); bar.id = "filters";
  function select(key, label, options) {
    var s = el("select"); s.id = "f-" + key; s.setAttribute("aria-label", label);
    options.forEach(function (o) { var op = el("option", null, o[1]); op.value = o[0]; add(s, op); });
    s.value = F[key];
    s.addEventListener("change", function () { F[key] = s.value; onChange(); });
    add(bar, el("label", null, label + " "), s);
  }
  select("suite", "suite", [["", "all suites"]].concat((data.all_suites || []).map(function (n) { return [n, n]; })));
  select("branch", "branch", [["", "all branches"]].concat((data.branches || []).map(function (b) { return [b, b]; })));
  select("since", "since", [["", "all time"], ["24h", "24 h"], ["7d", "7 days"], ["30d", "30 days"], ["90d", "90 days"]]);
  select("pick", "run", [["latest", "latest run"], ["best", "best run"]]);
  var team = el("input"); team.type = "search"; team.id = "f-team"; team.placeholder = "team prefix"; team.value = F.team;
  team.addEventListener("change", function () { F.team = team.value.trim(); onChange(); });
  add(bar, team);
  return bar;
}
function leaderboardView() {
  var main = shell("leaderboard");
  api("leaderboard", F).then(function (data) {
    var all = data.suites.map(function (s) { return s.suite; });
    if (!F.suite) leaderboardView.suites = all;
    data.all_suites = F.suite ? (leaderboardView.suites || all) : all;
    add(main, filterBar(data, function () { stopTimer(); leaderboardView(); }));
    if (!data.suites.length) add(main, el("p", "note", "No suites in MLflow yet: log runs with `evalkit run`."));
    data.suites.forEach(function (b) { add(main, suiteBoard(b)); });
    ready();
    startTimer(leaderboardView);
  }).catch(function (e) { failed(main, e); });
}
function suiteBoard(b) {
  var s = el("section", "board"); s.setAttribute("data-suite", b.suite);
  var head = el("div", "suite-head");
  add(head, el("h2", null, b.suite), link("trend ›", route(["trend", b.suite]), "trend-link"));
  if (b.metric) add(head, el("span", "note", "ranked on " + b.metric + (b.ascending ? " (lower is better)" : "") + " · " + b.metric_source));
  if (b.partial_skipped) add(head, el("span", "note", b.partial_skipped + " partial run(s) left out"));
  add(s, head);
  if (!b.rows.length) { add(s, el("p", "note", b.note || "No complete runs in this window.")); return s; }
  var t = table(["#", "agent", "version", "models", b.metric, "95 % interval", "", "judge agreement", "errors", "cases",
    "commit", "branch", "age", ""], [4, 7, 8]), tb = t.tBodies[0]; t.className = "leaderboard";
  b.rows.forEach(function (r) {
    var tr = el("tr", "entry"); tr.setAttribute("data-run", r.run_id);
    var complete = r.complete === false ? pill("partial", "warn") : r.complete === true ? pill("complete", "ok") : pill("–", "neutral");
    var links = el("td");
    add(links, link("run", route(["run", r.run_id]), "run-link"));
    if (r.mlflow_url) add(links, " · ", out("MLflow", r.mlflow_url));
    add(tr, td((r.tied ? "=" : "") + r.rank, "rank" + (r.tied ? " tied" : "")), td(r.agent_name || r.agent, "agent"),
      td(r.agent_version || "–", "mono"), td(r.models || "–", "mono"), td(val(r.value), "num value"),
      td(r.ci_low === null ? "–" : ci([r.ci_low, r.ci_high]), "mono"), add(el("td"), ciBar(r.value, r.ci_low, r.ci_high)),
      td(r.judge_agreement === null ? (r.judges ? "not calibrated" : "–") : num(r.judge_agreement, 2), "num"),
      td(r.error_rate === null ? "–" : pct(r.error_rate), "num"), add(el("td"), complete), td(short(r.commit, 8) || "–", "mono"),
      td(r.branch || "–", "mono"), td(r.age), links);
    add(tb, tr);
  });
  add(s, t);
  if (b.rows.some(function (r) { return r.tied; })) add(s, el("p", "note", "= : intervals overlap with the row above; the ranks are a tie."));
  return s;
}

/* ---------- trend ---------- */
function trendView(suite) {
  var main = shell("leaderboard");
  api("trend", {suite: suite, branch: F.branch, since: F.since}).then(function (d) {
    var s = section(suite + " · " + d.metric + " over time"); s.id = "trend";
    if (!d.series.length) { add(s, el("p", "note", "No complete runs with this metric.")); add(main, s); ready(); return; }
    add(s, trendChart(d));
    var legend = el("div", "legend");
    d.series.forEach(function (sr, i) {
      var sw = el("span", "sw"); sw.style.background = COLORS[i % COLORS.length];
      add(legend, add(el("span"), sw, sr.group));
    });
    add(s, legend, el("p", "note", "Bands: 95 % intervals. ▼ marks a regression: the gate's paired test (Holm-adjusted) against the series' previous run."));
    add(main, s, trendTable(d));
    ready();
  }).catch(function (e) { failed(main, e); });
}
function trendChart(d) {
  var W = 960, H = 320, L = 50, R = 16, T = 12, B = 30;
  var pts = [];
  d.series.forEach(function (sr, i) { sr.points.forEach(function (p) { pts.push([p, i]); }); });
  var times = pts.map(function (x) { return Date.parse(x[0].started) || 0; });
  var t0 = Math.min.apply(null, times), t1 = Math.max.apply(null, times);
  var ys = [];
  pts.forEach(function (x) { var p = x[0]; ys.push(p.value); if (p.ci_low !== null) ys.push(p.ci_low, p.ci_high); });
  var y0 = Math.min.apply(null, ys), y1 = Math.max.apply(null, ys);
  if (y1 - y0 < 1e-9) { y0 -= 0.5; y1 += 0.5; }
  var px = function (t) { return L + (t1 > t0 ? (t - t0) / (t1 - t0) : 0.5) * (W - L - R); };
  var py = function (v) { return T + (1 - (v - y0) / (y1 - y0)) * (H - T - B); };
  var g = svg("svg", {viewBox: "0 0 " + W + " " + H, "class": "trend", role: "img"});
  [0, 0.5, 1].forEach(function (f) {
    var v = y0 + f * (y1 - y0);
    add(g, svg("line", {x1: L, x2: W - R, y1: py(v), y2: py(v), stroke: "#eef1f4"}));
    var t = svg("text", {x: 4, y: py(v) + 4}); t.textContent = num(v); add(g, t);
  });
  [t0, t1].forEach(function (t, i) {
    var lab = svg("text", {x: i ? W - R - 110 : L, y: H - 8}); lab.textContent = when(new Date(t).toISOString()); add(g, lab);
  });
  d.series.forEach(function (sr, i) {
    var c = COLORS[i % COLORS.length], P = sr.points;
    var band = P.filter(function (p) { return p.ci_low !== null; });
    if (band.length > 1) {
      var up = band.map(function (p) { return px(Date.parse(p.started)) + "," + py(p.ci_high); });
      var lo = band.slice().reverse().map(function (p) { return px(Date.parse(p.started)) + "," + py(p.ci_low); });
      add(g, svg("polygon", {points: up.concat(lo).join(" "), fill: c, "fill-opacity": 0.12, stroke: "none"}));
    }
    add(g, svg("polyline", {points: P.map(function (p) { return px(Date.parse(p.started)) + "," + py(p.value); }).join(" "),
      fill: "none", stroke: c, "stroke-width": 2}));
    P.forEach(function (p) {
      var x = px(Date.parse(p.started)), y = py(p.value);
      var dot = p.flag === "regression"
        ? svg("polygon", {points: (x - 6) + "," + (y - 5) + " " + (x + 6) + "," + (y - 5) + " " + x + "," + (y + 6), fill: "#cf222e", "class": "regression"})
        : svg("circle", {cx: x, cy: y, r: 3.5, fill: c});
      var tip = svg("title", {}); tip.textContent = sr.group + " · " + num(p.value) + " " + ci([p.ci_low, p.ci_high]) + " · " + short(p.commit, 8) + " · " + when(p.started);
      add(dot, tip); add(g, dot);
    });
  });
  return g;
}
function trendTable(d) {
  var s = section("Points (newest first)"); s.id = "points";
  var rows = [];
  d.series.forEach(function (sr) { sr.points.forEach(function (p) { rows.push([sr.group, p]); }); });
  rows.sort(function (a, b) { return (b[1].started || "").localeCompare(a[1].started || ""); });
  var t = table(["started", "agent · models", "version", d.metric, "95 % interval", "vs previous", "p (adj.)", "commit", ""]);
  var tb = t.tBodies[0];
  rows.slice(0, 200).forEach(function (x) {
    var p = x[1], tr = el("tr", p.flag ? "flag-" + p.flag : null); tr.setAttribute("data-run", p.run_id);
    var flag = p.flag === "regression" ? pill("regression", "bad") : p.flag === "improvement" ? pill("improvement", "ok") : el("span", "note", "–");
    add(tr, td(when(p.started), "mono"), td(x[0]), td(p.agent_version || "–", "mono"), td(val(p.value), "num"),
      td(p.ci_low === null ? "–" : ci([p.ci_low, p.ci_high]), "mono"), add(el("td", "flag"), flag), td(pval(p.p), "num"),
      td(short(p.commit, 8) || "–", "mono"), add(el("td"), link("run", route(["run", p.run_id]))));
    add(tb, tr);
  });
  add(s, t);
  return s;
}

/* ---------- runs, run, case ---------- */
function runsView() {
  var main = shell("runs");
  api("runs", {}).then(function (d) {
    var s = section("Runs in the observability store"); s.id = "runs";
    var t = table(["run", "suite", "status", "started", "cases", "pass rate", "error rate", "commit"]), tb = t.tBodies[0];
    d.runs.forEach(function (r) {
      var tr = el("tr", "link"); tr.setAttribute("data-run", r.run_id);
      tr.addEventListener("click", function () { location.hash = route(["run", r.run_id]); });
      add(tr, add(el("td"), link(r.run_id, route(["run", r.run_id]), "mono")), td(r.suite), add(el("td"), pill(r.status, r.status === "completed" ? "ok" : "warn")),
        td(when(r.started_at), "mono"), td(num(r.cases), "num"), td(pct(r.pass_rate), "num"), td(pct(r.error_rate), "num"),
        td(short(r.git_commit, 8) || "–", "mono"));
      add(tb, tr);
    });
    add(s, t);
    add(main, s);
    ready();
    startTimer(runsView);
  }).catch(function (e) { failed(main, e); });
}
function runView(runId) {
  var main = shell("runs");
  Promise.all([api("cases", {run: runId}), api("runs", {})]).then(function (res) {
    var d = res[0], runs = res[1].runs;
    var s = section("Run " + d.run_id + " · " + (d.suite || "")); s.id = "run";
    var acts = el("p");
    add(acts, link("Full report ›", "report/" + encodeURIComponent(d.run_id), "report-link"));
    var prev = runs.filter(function (r) { return r.suite === d.suite && r.run_id !== d.run_id; });
    var mine = runs.filter(function (r) { return r.run_id === d.run_id; })[0];
    var before = prev.filter(function (r) { return !mine || (r.started_at || "") < (mine.started_at || ""); })[0];
    if (before) add(acts, " · ", link("Diff against " + before.run_id + " ›", "diff/" + encodeURIComponent(before.run_id) + "/" + encodeURIComponent(d.run_id), "diff-link"));
    add(s, acts);
    var t = table(["case", "repeat", "outcome", "failed scores", "duration (ms)", "spans", "LLM calls", "tool calls"]);
    var tb = t.tBodies[0];
    d.cases.forEach(function (c) {
      var tr = el("tr", "case link"); tr.setAttribute("data-case", c.case_id);
      var to = route(["case", d.run_id, c.case_id, String(c.repeat)]);
      tr.addEventListener("click", function () { location.hash = to; });
      var o = c.outcome === "errored" ? pill("error " + (c.error_kind || ""), "warn") : c.outcome === "cancelled" ? pill("cancelled", "neutral")
        : c.failed ? pill("fail", "bad") : pill("ok", "ok");
      add(tr, add(el("td"), link(c.case_id, to, "mono")), td(c.repeat, "num"), add(el("td"), o), td(c.failed_scores || "", "mono"),
        td(c.duration_ms === null ? "–" : num(c.duration_ms, 1), "num"), td(c.spans, "num"), td(c.llm_calls, "num"), td(c.tool_calls, "num"));
      add(tb, tr);
    });
    add(s, t);
    add(main, s);
    ready();
  }).catch(function (e) { failed(main, e); });
}
function caseView(runId, caseId, repeat) {
  var main = shell("runs");
  api("case", {run: runId, "case": caseId, repeat: repeat}).then(function (c) {
    S = c.strings || [];
    var s = section("Case " + c.case_id + (c.repeat ? " #" + c.repeat : "")); s.id = "case";
    var facts = el("p");
    add(facts, link("‹ run " + c.run_id, route(["run", c.run_id])), " · ", pill(c.outcome, c.outcome === "completed" ? "ok" : "warn"),
      " latency " + (c.latency_ms === null ? "–" : num(c.latency_ms, 1) + " ms") + " · tokens " + num(c.tokens) + " · cost $" + num(c.cost_usd || 0, 4));
    if (c.trace_id) add(facts, " · trace ", el("span", "mono trace-id", c.trace_id));
    (c.tags || []).forEach(function (t) { add(facts, el("span", "tag", t)); });
    add(s, facts);
    var texts = el("div", "texts");
    add(texts, block("Input", c.input), block("Expected", c.expected), block("Output", c.output));
    add(s, texts);
    if (c.error) add(s, block("Error", c.error));
    if (c.tool_calls) add(s, block("Tool calls", c.tool_calls));
    add(s, el("h3", null, "Scores"));
    var t = table(["scorer", "value", "verdict", "rationale", "judge"]), tb = t.tBodies[0]; t.id = "score-table";
    c.scores.forEach(function (x) {
      var verdict = x.outcome === "error" ? pill("error " + (x.error_kind || ""), "warn") : x.outcome === "not_applicable" ? pill("n/a", "neutral")
        : x.passed === true ? pill("pass", "ok") : x.passed === false ? pill("fail", "bad") : pill("–", "neutral");
      add(tb, add(el("tr"), td(x.name), td(x.outcome === "ok" ? val(x.value) : "–", "num"), add(el("td"), verdict),
        td(x.error || x.rationale || ""), td((x.judge || "") + (x.model ? " · " + x.model : ""), "mono")));
    });
    add(s, t);
    add(s, el("h3", null, "Trace"), waterfall(c.trace));
    add(main, s);
    ready();
  }).catch(function (e) { failed(main, e); });
}

/* ---------- judges ---------- */
function judgesView() {
  var main = shell("judges");
  api("judges", {}).then(function (d) {
    var s = section("Judge health · newest " + d.runs + " runs"); s.id = "judges";
    if (!d.judges.length) add(s, el("p", "note", "No judge scores in the newest runs."));
    else {
      var t = table(["judge", "model", "scores", "runs", "error rate", "invalid output", "position disagreement",
        "mean spread", "verbosity corr.", "human agreement"], [2, 3, 4, 5, 6, 7, 8, 9]), tb = t.tBodies[0];
      d.judges.forEach(function (j) {
        add(tb, add(el("tr", "judge"), td(j.judge, "mono"), td(j.model || "–", "mono"), td(num(j.scores), "num"), td(num(j.runs), "num"),
          td(pct(j.error_rate), "num"), td(pct(j.invalid_rate), "num"), td(pct(j.position_disagreement), "num"),
          td(num(j.mean_spread), "num"), td(num(j.verbosity_corr, 2), "num"), td(j.agreement === null ? "not calibrated" : num(j.agreement, 2), "num")));
      });
      add(s, t);
    }
    add(main, s);
    ready();
  }).catch(function (e) { failed(main, e); });
}

function stopTimer() { if (timer) { clearTimeout(timer); timer = null; } }
function startTimer(fn) {
  stopTimer();
  timer = setTimeout(function () { if (document.visibilityState === "visible") fn(); else startTimer(fn); }, 30000);
}
function dispatch() {
  stopTimer();
  document.body.removeAttribute("data-ready");
  var parts = location.hash.replace(/^#\/?/, "").split("/").filter(function (p) { return p !== ""; }).map(decodeURIComponent);
  if (parts[0] === "trend" && parts[1]) trendView(parts[1]);
  else if (parts[0] === "runs") runsView();
  else if (parts[0] === "run" && parts[1]) runView(parts[1]);
  else if (parts[0] === "case" && parts.length >= 3) caseView(parts[1], parts[2], parts[3] || "0");
  else if (parts[0] === "judges") judgesView();
  else leaderboardView();
}
window.addEventListener("hashchange", dispatch);
dispatch();
})();
"""
