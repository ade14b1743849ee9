"""The report's inline stylesheet and script (no external resources; the CSP pins both by hash).

The script never uses ``innerHTML``: every string from the data is written with ``textContent`` or as
an attribute value, so untrusted case text is shown as text.
"""

from __future__ import annotations

from evalkit.report.script import SCRIPT

__all__ = ["SCRIPT", "STYLE"]

STYLE = r"""
:root{--fg:#1d2430;--muted:#5f6b7a;--line:#dde3ea;--bg:#f6f8fa;--card:#fff;--ok:#1a7f37;--bad:#cf222e;
--warn:#9a6700;--acc:#0969da;--okbg:#dafbe1;--badbg:#ffebe9;--warnbg:#fff8c5;font-size:14px}
*{box-sizing:border-box}
body{margin:0;font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header{background:#24292f;color:#fff;padding:14px 24px;display:flex;gap:14px;align-items:center;flex-wrap:wrap}
header h1{font-size:18px;margin:0;font-weight:600}
header .sub{color:#c9d1d9;font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12px}
main{padding:16px 24px;max-width:1500px;margin:0 auto}
section{background:var(--card);border:1px solid var(--line);border-radius:8px;margin:0 0 16px;padding:14px 16px}
section h2{font-size:15px;margin:0 0 10px}
.loading,.note{color:var(--muted)}
.pill{display:inline-block;border-radius:12px;padding:1px 9px;font-size:12px;font-weight:600;border:1px solid transparent}
.pill.ok{background:var(--okbg);color:var(--ok)}.pill.bad{background:var(--badbg);color:var(--bad)}
.pill.warn{background:var(--warnbg);color:var(--warn)}.pill.neutral{background:#eaeef2;color:var(--muted)}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;margin:0}
dl.meta dt{color:var(--muted)}dl.meta dd{margin:0;word-break:break-all}
.mono{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12px}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-weight:600;color:var(--muted);font-size:12px;white-space:nowrap}
th.sortable{cursor:pointer;user-select:none}th.sortable:hover{color:var(--acc)}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin-bottom:12px}
.card{border:1px solid var(--line);border-radius:6px;padding:8px 12px;min-width:120px}
.card .k{color:var(--muted);font-size:12px}.card .v{font-size:18px;font-weight:600}
.charts{display:flex;flex-wrap:wrap;gap:18px}
.chart{border:1px solid var(--line);border-radius:6px;padding:8px}
.chart .t{font-weight:600;font-size:13px;margin-bottom:4px}
.toolbar{display:flex;gap:10px;flex-wrap:wrap;align-items:center;margin-bottom:8px}
.toolbar input[type=search]{min-width:260px;padding:5px 8px;border:1px solid var(--line);border-radius:6px}
.toolbar select{padding:4px 6px;border:1px solid var(--line);border-radius:6px;background:#fff}
.count{color:var(--muted);margin-left:auto}
tr.case{cursor:pointer}tr.case:hover{background:#f3f7fc}tr.case:focus{outline:2px solid var(--acc)}
td.pass{color:var(--ok)}td.fail{color:var(--bad);font-weight:600}td.err{color:var(--warn);font-weight:600}
td.na{color:var(--muted)}
.tag{display:inline-block;background:#eaeef2;color:var(--muted);border-radius:4px;padding:0 5px;margin:0 3px 2px 0;font-size:11px}
.pager{display:flex;gap:8px;align-items:center;margin-top:8px}
button{border:1px solid var(--line);background:#f6f8fa;border-radius:6px;padding:4px 10px;cursor:pointer;font:inherit}
button:disabled{opacity:.5;cursor:default}
#detail{position:fixed;inset:0;background:rgba(27,31,36,.45);display:none;z-index:10}
#detail.open{display:block}
#detail .panel{position:absolute;top:0;right:0;bottom:0;width:min(1100px,96vw);background:#fff;overflow:auto;padding:16px 20px;
box-shadow:-4px 0 18px rgba(0,0,0,.2)}
#detail .close{float:right}
.texts{display:grid;grid-template-columns:repeat(auto-fit,minmax(280px,1fr));gap:10px}
pre{white-space:pre-wrap;word-break:break-word;background:var(--bg);border:1px solid var(--line);border-radius:6px;padding:8px;
margin:4px 0 0;max-height:320px;overflow:auto;font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12px}
h3{font-size:13px;margin:14px 0 4px}
.wf{border:1px solid var(--line);border-radius:6px;padding:6px 8px}
.wf-axis,.wf-row{display:grid;grid-template-columns:minmax(220px,34%) 1fr 70px;gap:8px;align-items:center}
.wf-axis{color:var(--muted);font-size:11px;border-bottom:1px solid var(--line);padding-bottom:3px;margin-bottom:3px}
.wf-ticks{position:relative;height:14px}.wf-ticks span{position:absolute;transform:translateX(-50%)}
.wf-row{min-height:22px;border-bottom:1px dotted #eef1f4}
.wf-label{overflow:hidden;text-overflow:ellipsis;white-space:nowrap;font-size:12px}
.wf-track{position:relative;height:14px;background:#f6f8fa;border-radius:3px}
.wf-bar{position:absolute;top:2px;height:10px;border-radius:2px;background:#54aeff;min-width:2px}
.wf-bar.llm{background:#8250df}.wf-bar.tool{background:#1a7f37}.wf-bar.error{background:var(--bad)}
.wf-dur{font-size:11px;color:var(--muted);text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;font-size:10px;border-radius:3px;padding:0 4px;margin-left:4px;background:#eaeef2;color:var(--muted)}
.badge.tool{background:var(--okbg);color:var(--ok)}.badge.model{background:#fbefff;color:#8250df}
.badge.error{background:var(--badbg);color:var(--bad)}
.flip{border:1px solid var(--line);border-radius:6px;padding:8px 10px;margin-bottom:10px}
.sides{display:grid;grid-template-columns:1fr 1fr;gap:10px}
.sides h4{margin:6px 0 2px;font-size:12px;color:var(--muted)}
.up{color:var(--ok)}.down{color:var(--bad)}
[hidden]{display:none!important}
button[aria-pressed=true]{background:#ddf4ff;border-color:#54aeff;color:var(--acc)}
.label-bar{background:#f6f0ff;border:1px solid #d8b9ff;border-radius:6px;padding:6px 10px}
.label-bar input[type=text]{min-width:200px;padding:4px 8px;border:1px solid var(--line);border-radius:6px}
.label-help{flex-basis:100%}
.label-cell{white-space:nowrap;cursor:default}
.label-ctl{display:inline-grid;grid-template-columns:auto auto;gap:2px 4px;align-items:center}
.label-judge{grid-column:1/3;color:var(--muted);font-size:11px}
.label-value{padding:1px 4px;border:1px solid var(--line);border-radius:4px;background:#fff}
.label-note{width:96px;padding:1px 4px;border:1px solid var(--line);border-radius:4px;font:inherit;font-size:12px}
.label-link{color:var(--acc)}
"""
