"""The report's single self-contained HTML page: inline CSS and JS, images as data: URIs, no external fetches.

Every string from the archive (ids, sources, errors, settings) goes through :func:`html.escape`. The per-image
table is rendered server-side (usable without JavaScript); a little inline script adds filtering, sorting and
pagination, with its state in the URL fragment (``#q=...&status=failed&sort=psnr&desc=1&page=2&size=50``).
"""
from __future__ import annotations

import html
import json
import math
import statistics
import time
from typing import Any, Iterable

from .build import ReportData, Sample
from .charts import histogram_svg

#: Table columns: (key, header, kind) — kind "num" sorts numerically, "text" alphabetically.
COLUMNS = (
    ("id", "id", "text"), ("state", "state", "text"), ("source", "source", "text"), ("size", "size", "num"),
    ("n_gaussians", "Gaussians", "num"), ("length", "bytes", "num"), ("real_cr", "real CR", "num"),
    ("psnr", "PSNR dB", "num"), ("ssim", "SSIM", "num"), ("seconds", "seconds", "num"),
    ("status", "status", "text"), ("error", "error", "text"),
)
PAGE_SIZES = (25, 50, 100, 250, 1000)
DEFAULT_PAGE_SIZE = 50

CSS = """
:root{--fg:#1d232a;--mut:#5b6672;--bd:#d9dee4;--bg:#f6f8fa;--acc:#c0392b;--ok:#1e7f4f;--bad:#b3261e}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,
sans-serif;color:var(--fg);background:#fff}main{max-width:1240px;margin:0 auto;padding:20px 24px 60px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:32px 0 10px;padding-bottom:4px;border-bottom:1px solid
var(--bd)}.mut{color:var(--mut)}.note{background:#fff8e1;border:1px solid #f1d98a;padding:6px 10px;border-radius:6px;
margin:6px 0}.cards{display:flex;flex-wrap:wrap;gap:10px;margin:14px 0}.card{background:var(--bg);border:1px solid
var(--bd);border-radius:8px;padding:8px 14px;min-width:130px}.card b{display:block;font-size:20px}
.card span{color:var(--mut);font-size:12px}table{border-collapse:collapse;width:100%}th,td{padding:4px 8px;
border-bottom:1px solid var(--bd);text-align:left;vertical-align:top}td.n{text-align:right;font-variant-numeric:
tabular-nums}#rows th{position:sticky;top:0;background:var(--bg);cursor:pointer;user-select:none;white-space:nowrap}
#rows th.sorted::after{content:" \\25B2"}#rows th.sorted.desc::after{content:" \\25BC"}#rows tbody tr:nth-child(even)
{background:#fbfcfd}#rows td.err{color:var(--bad);max-width:320px;overflow-wrap:anywhere}tr.failed td.st{color:
var(--bad);font-weight:600}tr.ok td.st{color:var(--ok)}.controls{display:flex;flex-wrap:wrap;gap:10px;align-items:
center;margin:8px 0}.controls input[type=search]{padding:5px 8px;min-width:260px;border:1px solid var(--bd);
border-radius:6px}button,select{padding:4px 10px;border:1px solid var(--bd);border-radius:6px;background:#fff}
button:disabled{opacity:.4}.hists{display:flex;flex-wrap:wrap;gap:16px}svg.hist{background:var(--bg);border:1px
solid var(--bd);border-radius:8px}svg .bar{fill:#3a78b5}svg .bar:hover{fill:var(--acc)}svg .ax{stroke:#889}
svg .t{font-size:13px;font-weight:600;fill:var(--fg)}svg .tick{font-size:11px;fill:var(--mut)}
.sample{border:1px solid var(--bd);border-radius:8px;padding:10px 14px;margin:12px 0}.pair{display:flex;
flex-wrap:wrap;gap:14px}.pair figure{margin:0}.pair img{image-rendering:pixelated;border:1px solid var(--bd);
display:block}.pair figcaption{font-size:12px;color:var(--mut);margin-top:3px}.missing{display:flex;align-items:
center;justify-content:center;background:var(--bg);border:1px dashed var(--bd);color:var(--mut);padding:10px;
text-align:center;font-size:12px}dl.kv{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:0}
dl.kv dt{color:var(--mut)}dl.kv dd{margin:0;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12.5px;
overflow-wrap:anywhere}details pre{background:var(--bg);padding:8px;overflow:auto;max-height:360px}
.rd img{max-width:100%;border:1px solid var(--bd);border-radius:8px}
"""

JS = r"""
(function(){
  var table=document.getElementById('rows'); if(!table) return;
  var tbody=table.tBodies[0], all=Array.prototype.slice.call(tbody.rows);
  var q=document.getElementById('q'), st=document.getElementById('st'), ps=document.getElementById('ps');
  var info=document.getElementById('info'), prev=document.getElementById('prev'), next=document.getElementById('next');
  var heads=Array.prototype.slice.call(table.tHead.rows[0].cells);
  var state={q:'',status:'',sort:'',desc:false,page:1,size:parseInt(ps.value,10)};
  function readHash(){
    var h=location.hash.replace(/^#/,''); if(!h) return;
    h.split('&').forEach(function(kv){var i=kv.indexOf('='); if(i<0) return;
      var k=kv.slice(0,i), v=decodeURIComponent(kv.slice(i+1).replace(/\+/g,' '));
      if(k==='q') state.q=v; else if(k==='status') state.status=v; else if(k==='sort') state.sort=v;
      else if(k==='desc') state.desc=(v==='1'); else if(k==='page') state.page=Math.max(1,parseInt(v,10)||1);
      else if(k==='size') state.size=Math.max(1,parseInt(v,10)||state.size);});
  }
  function writeHash(){
    var p=[]; if(state.q) p.push('q='+encodeURIComponent(state.q)); if(state.status) p.push('status='+state.status);
    if(state.sort) p.push('sort='+state.sort); if(state.desc) p.push('desc=1'); if(state.page>1) p.push('page='+state.page);
    if(state.size!==%DEFAULT%) p.push('size='+state.size);
    try{history.replaceState(null,'',p.length?'#'+p.join('&'):location.pathname+location.search);}catch(e){}
  }
  function col(key){for(var i=0;i<heads.length;i++) if(heads[i].getAttribute('data-key')===key) return i; return -1;}
  function value(tr,c,num){var td=tr.cells[c]; if(num){var v=td.getAttribute('data-v'); return (v===null||v==='')?NaN:parseFloat(v);}
    return td.textContent.toLowerCase();}
  function apply(){
    var needle=state.q.trim().toLowerCase();
    var rows=all.filter(function(tr){return (!state.status||tr.getAttribute('data-status')===state.status)&&
      (!needle||tr.textContent.toLowerCase().indexOf(needle)>=0);});
    var c=col(state.sort);
    heads.forEach(function(th,i){th.className=(i===c)?('sorted'+(state.desc?' desc':'')):'';});
    if(c>=0){var num=heads[c].getAttribute('data-kind')==='num', sgn=state.desc?-1:1;
      rows.sort(function(a,b){var x=value(a,c,num), y=value(b,c,num);
        if(num){var xn=isNaN(x), yn=isNaN(y); if(xn||yn) return xn===yn?0:(xn?1:-1); return sgn*(x-y);}
        return sgn*(x<y?-1:x>y?1:0);});}
    var pages=Math.max(1,Math.ceil(rows.length/state.size)); state.page=Math.min(Math.max(1,state.page),pages);
    var start=(state.page-1)*state.size, end=Math.min(rows.length,start+state.size), shown={};
    var frag=document.createDocumentFragment();
    rows.forEach(function(tr,i){tr.hidden=!(i>=start&&i<end); frag.appendChild(tr);});
    var match=new Set(rows); all.forEach(function(tr){if(!match.has(tr)){tr.hidden=true; frag.appendChild(tr);}});
    tbody.appendChild(frag);
    info.textContent=(rows.length?('Showing '+(start+1)+'\u2013'+end+' of '+rows.length):'No matching images')+
      (rows.length!==all.length?(' (filtered from '+all.length+')'):'')+' \u00b7 page '+state.page+' of '+pages;
    info.setAttribute('data-visible',String(end-start)); info.setAttribute('data-matching',String(rows.length));
    prev.disabled=state.page<=1; next.disabled=state.page>=pages; writeHash();
  }
  readHash(); q.value=state.q; st.value=state.status;
  if(!Array.prototype.some.call(ps.options,function(o){return parseInt(o.value,10)===state.size;})){
    var o=document.createElement('option'); o.value=String(state.size); o.textContent=String(state.size); ps.appendChild(o);}
  ps.value=String(state.size);
  q.addEventListener('input',function(){state.q=q.value; state.page=1; apply();});
  st.addEventListener('change',function(){state.status=st.value; state.page=1; apply();});
  ps.addEventListener('change',function(){state.size=parseInt(ps.value,10); state.page=1; apply();});
  prev.addEventListener('click',function(){state.page--; apply();});
  next.addEventListener('click',function(){state.page++; apply();});
  heads.forEach(function(th){th.addEventListener('click',function(){var k=th.getAttribute('data-key');
    if(state.sort===k) state.desc=!state.desc; else {state.sort=k; state.desc=false;} apply();});});
  window.addEventListener('hashchange',function(){readHash(); q.value=state.q; st.value=state.status; apply();});
  apply(); document.body.setAttribute('data-js','ready');
})();
""".replace("%DEFAULT%", str(DEFAULT_PAGE_SIZE))


def esc(v: Any) -> str:
    """Escape any value for HTML text or attribute context."""
    return html.escape("" if v is None else str(v), quote=True)


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return float(v)


def _fmt(v: Any, digits: int = 2) -> str:
    n = _num(v)
    if n is None:
        return "" if v is None else str(v)
    if float(n).is_integer() and abs(n) < 1e15 and isinstance(v, int):
        return f"{int(n):,}"
    return f"{n:,.{digits}f}"


def _cell(row: dict[str, Any], key: str) -> tuple[str, str | None, str]:
    """(text, sort value, css class) of one table cell."""
    if key == "state":
        return row.get("_state", "committed"), None, ""
    if key == "source":
        s = row.get("source")
        return (str(s).rstrip("/").rsplit("/", 1)[-1] if s else ""), None, "src"
    if key == "size":
        h, w = _num(row.get("height")), _num(row.get("width"))
        if h is None or w is None:
            return "", "", "n"
        return f"{int(w)}×{int(h)}", repr(h * w), "n"
    if key in ("status", "error", "id"):
        text = str(row.get(key)) if row.get(key) is not None else ""
        return text, None, {"status": "st", "error": "err"}.get(key, "")
    v = row.get(key)
    n = _num(v)
    digits = {"ssim": 4, "real_cr": 1, "psnr": 2, "seconds": 1}.get(key, 0)
    text = "" if v is None else (f"{n:,.{digits}f}" if n is not None else str(v))
    return text, ("" if n is None else repr(n)), "n"


def _table(rows: list[dict[str, Any]]) -> str:
    heads = "".join(f'<th data-key="{k}" data-kind="{kind}" title="sort by {esc(h)}">{esc(h)}</th>'
                    for k, h, kind in COLUMNS)
    body = []
    for r in rows:
        status = esc(r.get("status"))
        cells = []
        for key, _h, _k in COLUMNS:
            text, sort, cls = _cell(r, key)
            title = f' title="{esc(r.get("source"))}"' if key == "source" else ""
            attrs = (f' class="{cls}"' if cls else "") + (f' data-v="{esc(sort)}"' if sort is not None else "") + title
            cells.append(f"<td{attrs}>{esc(text)}</td>")
        body.append(f'<tr class="{status}" data-status="{status}" data-id="{esc(r.get("id"))}">{"".join(cells)}</tr>')
    statuses = sorted({str(r.get("status")) for r in rows if r.get("status") is not None})
    options = "".join(f'<option value="{esc(s)}">{esc(s)}</option>' for s in statuses)
    sizes = "".join(f'<option value="{n}"{" selected" if n == DEFAULT_PAGE_SIZE else ""}>{n}</option>'
                    for n in PAGE_SIZES)
    return f"""<div class="controls">
<input id="q" type="search" placeholder="filter: id, source, status, error…" aria-label="filter rows">
<label>status <select id="st"><option value="">all</option>{options}</select></label>
<label>rows per page <select id="ps">{sizes}</select></label>
<button id="prev" type="button">&#8249; prev</button><button id="next" type="button">next &#8250;</button>
<span id="info" class="mut">{len(rows)} images</span></div>
<noscript><p class="mut">JavaScript is off: all rows are shown, unsorted.</p></noscript>
<table id="rows"><thead><tr>{heads}</tr></thead><tbody>
{chr(10).join(body)}
</tbody></table>"""


def _flatten(d: Any, prefix: str = "") -> Iterable[tuple[str, Any]]:
    if isinstance(d, dict):
        for k, v in d.items():
            yield from _flatten(v, f"{prefix}{k}." if not isinstance(v, dict) or v else f"{prefix}{k}")
        if not d and prefix:
            yield prefix.rstrip("."), "{}"
    else:
        yield prefix.rstrip("."), d


def _settings(run: dict[str, Any]) -> str:
    top = [(k, v) for k, v in run.items() if k != "config"]
    items = top + [(f"config.{k}", v) for k, v in _flatten(run.get("config", {}))]
    kv = "".join(f"<dt>{esc(k)}</dt><dd>{esc(json.dumps(v) if not isinstance(v, str) else v)}</dd>" for k, v in items)
    raw = esc(json.dumps(run, indent=2, sort_keys=False, default=str))
    return f'<dl class="kv">{kv}</dl><details><summary>run.json</summary><pre>{raw}</pre></details>'


def _cards(data: ReportData) -> str:
    rows = data.rows
    ok = [r for r in rows if r.get("status") == "ok"]
    failed = [r for r in rows if r.get("status") == "failed"]
    staged = [r for r in rows if r.get("_state") == "staged"]
    vals = lambda k: [v for v in (_num(r.get(k)) for r in ok) if v is not None]  # noqa: E731
    psnrs, ssims, crs = vals("psnr"), vals("ssim"), vals("real_cr")
    secs = [v for v in (_num(r.get("seconds")) for r in rows) if v is not None]
    total = sum(v for v in (_num(r.get("length")) for r in ok) if v is not None)
    cards = [
        ("images encoded", f"{len(ok):,}"), ("failed", f"{len(failed):,}"),
        ("staged (uncommitted)", f"{len(staged):,}"),
        ("input images", f"{data.listing_size:,}" if isinstance(data.listing_size, int) else "?"),
        ("mean PSNR", f"{statistics.fmean(psnrs):.2f} dB" if psnrs else "–"),
        ("mean SSIM", f"{statistics.fmean(ssims):.4f}" if ssims else "–"),
        ("median real CR", f"{statistics.median(crs):.1f}" if crs else "–"),
        ("records total", _bytes(total)),
        ("compute time", f"{sum(secs) / 3600:.2f} h" if sum(secs) >= 3600 else f"{sum(secs):.0f} s"),
    ]
    return '<div class="cards">' + "".join(f'<div class="card"><b>{esc(v)}</b><span>{esc(k)}</span></div>'
                                           for k, v in cards) + "</div>"


def _bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000.0
    return f"{n:.1f} TB"


def _sample(s: Sample) -> str:
    r = s.row
    head = (f"<b>{esc(r.get('id'))}</b> <span class='mut'>{esc(_cell(r, 'size')[0])} · real CR "
            f"{esc(_fmt(r.get('real_cr'), 1))} · PSNR {esc(_fmt(r.get('psnr')))} dB · SSIM "
            f"{esc(_fmt(r.get('ssim'), 4))}" + (f" · {esc(r.get('_state'))}" if r.get("_state") == "staged" else "")
            + "</span>")
    if s.window:
        x0, y0, w, h = s.window
        where = f"crop {w}×{h} at x={x0}, y={y0} (100% zoom)"
    else:
        w = h = 256
        where = ""

    def fig(uri: str | None, label: str) -> str:
        if uri:
            return (f'<figure><img src="{uri}" width="{w}" height="{h}" alt="{esc(label)} crop of '
                    f'{esc(r.get("id"))}"><figcaption>{esc(label)}</figcaption></figure>')
        return (f'<figure><div class="missing" style="width:{w}px;height:{h}px">{esc(label)} not available</div>'
                f'<figcaption>{esc(label)}</figcaption></figure>')

    extra = f" · crop PSNR {s.crop_psnr:.2f} dB" if s.crop_psnr is not None and math.isfinite(s.crop_psnr) else ""
    notes = "".join(f'<p class="note">{esc(n)}</p>' for n in s.notes)
    return (f'<div class="sample" data-id="{esc(r.get("id"))}"><div>{head}</div>'
            f'<p class="mut" style="margin:2px 0 8px">{esc(where)}{esc(extra)}</p>'
            f'<div class="pair">{fig(s.original, "original")}{fig(s.decoded, "decoded")}</div>{notes}</div>')


def _rd(data: ReportData) -> str:
    if not data.rd:
        return ""
    parts = ['<h2 id="rd">Rate–distortion</h2>']
    desc = data.rd.get("images") or data.rd.get("description")
    if desc:
        parts.append(f'<p class="mut">{esc(desc)}'
                     + (f" · {esc(data.rd.get('steps'))} fit steps" if data.rd.get("steps") else "") + "</p>")
    if data.rd_png:
        parts.append(f'<div class="rd"><img src="{data.rd_png}" alt="rate-distortion plot"></div>')
    bd = data.rd.get("bd_rate") or []
    if bd:
        f = lambda v, u: "n/a" if v is None else f"{v:+.1f}{u}"  # noqa: E731
        rows = "".join(
            f"<tr><td>{esc(b.get('dataset'))}</td><td>{esc(b.get('codec'))}</td>"
            f"<td class='n'>{esc(f(b.get('bd_rate_psnr_pct'), '%'))}</td>"
            f"<td class='n'>{esc(f(b.get('bd_rate_msssim_pct'), '%'))}</td>"
            f"<td class='n'>{esc(f(b.get('bd_psnr_db'), ' dB'))}</td><td>{esc(b.get('note'))}</td></tr>" for b in bd)
        parts.append("<p class='mut'>BD-rate of SmartSplat against each codec: negative = SmartSplat needs fewer "
                     "bits for the same quality.</p><table><thead><tr><th>dataset</th><th>codec</th>"
                     "<th>BD-rate (PSNR)</th><th>BD-rate (MS-SSIM)</th><th>BD-PSNR</th><th>note</th></tr></thead>"
                     f"<tbody>{rows}</tbody></table>")
    return "".join(parts)


def render_page(data: ReportData, generated: str | None = None) -> str:
    """The whole HTML document as a string."""
    generated = generated or time.strftime("%Y-%m-%d %H:%M:%S %Z")
    ok = [r for r in data.rows if r.get("status") == "ok"]
    hists = "".join([
        histogram_svg([r.get("psnr") for r in ok], "PSNR", "dB"),
        histogram_svg([r.get("real_cr") for r in ok], "real compression ratio", "3·H·W / bytes", log=True),
        histogram_svg([r.get("seconds") for r in data.rows], "encode time per image", "seconds"),
    ])
    notes = "".join(f'<p class="note">{esc(n)}</p>' for n in data.notes)
    samples = "".join(_sample(s) for s in data.samples) or (
        '<p class="mut">No samples: none were asked for (--samples 0) or no image is encoded yet.</p>')
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy"
 content="default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>SmartSplat archive report — {esc(data.url)}</title>
<style>{CSS}</style></head>
<body><main>
<h1>SmartSplat archive report</h1>
<p class="mut">{esc(data.url)} · generated {esc(generated)}</p>
{notes}
{_cards(data)}
<h2 id="distributions">Distributions</h2>
<div class="hists">{hists}</div>
<h2 id="samples">Samples: original and decoded at 100%</h2>
<p class="mut">Images spread over the PSNR range (lowest to highest); each crop is the most detailed
{256}×{256} window of the image.</p>
{samples}
{_rd(data)}
<h2 id="images">Images</h2>
{_table(data.rows)}
<h2 id="settings">Run settings</h2>
{_settings(data.run)}
</main>
<script>{JS}</script>
</body></html>
"""


__all__ = ["render_page", "COLUMNS", "esc"]
