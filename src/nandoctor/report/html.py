"""One self-contained HTML file: the diagnosis, its evidence and fixes, and the plots inline.

No scripts, no external assets: the plots are PNGs embedded as data URIs, so the
file can be attached to a ticket and opened anywhere. The answer comes first (verdict,
the top cause, its culprit and fix, in the ``#answer`` box), then the plots, then the
detail. The page fits a phone: wide tables and code scroll inside their own box, never
the page.
"""

from __future__ import annotations

import base64
from html import escape

from nandoctor import __version__
from nandoctor.core.types import Diagnosis, Evidence, Finding

_CSS = """
body{font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:72rem;color:#1d1d1f;padding:0 1rem}
h1{font-size:1.6rem;margin:.2rem 0}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
.verdict{display:inline-block;padding:.2rem .7rem;border-radius:1rem;font-weight:600;color:#fff}
.v-nan,.v-will_fail{background:#c62828}.v-diverging{background:#ef6c00}.v-healthy{background:#2e7d32}
.v-inconclusive{background:#616161}
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #eee;vertical-align:top}
.bar{background:#e3e8ef;border-radius:3px;height:.7rem;width:10rem}.bar>div{background:#3f6ad8;height:100%;border-radius:3px}
code,pre{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.9em}pre{background:#f6f8fa;padding:.6rem;overflow:auto}
.ev{color:#444}.loc{color:#6a737d}.sev-error{color:#c62828}.sev-warning{color:#ef6c00}.sev-info{color:#1565c0}
figure{margin:1rem 0}figure img{max-width:100%;height:auto;border:1px solid #eee}figcaption{color:#444}
.scroll{overflow-x:auto;max-width:100%}td,h1,dd,figcaption{overflow-wrap:break-word}
pre{white-space:pre-wrap;overflow-wrap:anywhere}
#answer{border:2px solid #c62828;border-radius:.5rem;padding:.6rem 1rem;margin:1rem 0;background:#fff8f7}
#answer.v-healthy-box{border-color:#2e7d32;background:#f5fbf5}#answer dt{font-weight:600;margin-top:.4rem}
#answer dd{margin:0 0 0 1rem}
@media (max-width:40rem){body{margin:1rem auto;font-size:14px}h1{font-size:1.3rem}#answer{padding:.5rem .7rem}
table,tbody,tr,td{display:block;width:auto}tr:first-child{display:none}tr{border-bottom:1px solid #ddd;padding:.3rem 0}
td{border:0;padding:.1rem 0}.bar{width:6rem;display:inline-block;margin-right:.4rem}}
"""


def _evidence_html(ev: Evidence) -> str:
    loc = f'<span class="loc">{escape(str(ev.location))}</span> ' if ev.location else ""
    return f'<li class="ev">{loc}<code>{escape(ev.text)}</code></li>'


def _finding_row(f: Finding) -> str:
    loc = escape(str(f.location)) if f.location else ""
    fix = escape(f.fix.description) if f.fix else ""
    return (
        f'<tr><td><code>{f.code}</code></td><td class="sev-{f.severity.value}">{f.severity.value}</td>'
        f"<td>{escape(f.cause.value)}</td><td>{escape(f.message)}<br><span class='loc'>{loc}</span></td>"
        f"<td>{fix}</td></tr>"
    )


def _answer_html(d: Diagnosis) -> str:
    """The three things a reader came for, before any table: cause, culprit, what to change."""
    if not d.causes:
        box = "v-healthy-box" if d.verdict.value == "healthy" else ""
        said = "no cause of non-finite values found" if box else "no cause could be settled from these inputs"
        return f"<div id='answer' class='{box}'><p id='cause'>{escape(said)}</p></div>"
    top = d.causes[0]
    fix = top.fixes[0].description if top.fixes else "no automatic fix; see the evidence below"
    return (
        "<div id='answer'><dl>"
        f"<dt>Cause</dt><dd id='cause'>{escape(top.cause.value)} ({top.confidence:.0%} confidence)"
        f"{': ' + escape(top.explanation) if top.explanation else ''}</dd>"
        f"<dt>Culprit</dt><dd id='culprit'><code>{escape(top.culprit or '-')}</code></dd>"
        f"<dt>Fix</dt><dd id='fix'>{escape(fix)}</dd>"
        "</dl></div>"
    )


def render_html(
    diagnosis: Diagnosis, plots: list[tuple[str, bytes]] | None = None, title: str = "nandoctor report"
) -> str:
    d = diagnosis
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width,initial-scale=1'>",
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f"<p><span class='verdict v-{d.verdict.value}' id='verdict'>{escape(d.verdict.value)}</span>",
    ]
    if d.first_nonfinite_iteration is not None:
        parts.append(f" first non-finite value at iteration <b>{d.first_nonfinite_iteration}</b>")
    parts.append("</p>")
    parts.append(_answer_html(d))
    for caption, png in plots or []:
        data = base64.b64encode(png).decode("ascii")
        parts.append(f"<figure><img alt='{escape(caption)}' src='data:image/png;base64,{data}'>")
        parts.append(f"<figcaption>{escape(caption)}</figcaption></figure>")
    if d.causes:
        parts.append(
            "<h2>Causes, ranked</h2><div class='scroll'><table id='causes'>"
            "<tr><th>cause</th><th>confidence</th><th>culprit</th><th>why</th></tr>"
        )
        for c in d.causes:
            pct = max(0.0, min(1.0, c.confidence)) * 100
            parts.append(
                f"<tr><td><b>{escape(c.cause.value)}</b></td>"
                f"<td><div class='bar'><div style='width:{pct:.0f}%'></div></div>{c.confidence:.2f}</td>"
                f"<td><code>{escape(c.culprit or '-')}</code></td><td>{escape(c.explanation)}</td></tr>"
            )
        parts.append("</table></div>")
        top = d.causes[0]
        if top.evidence:
            parts.append("<h2>Evidence</h2><ul>")
            parts.extend(_evidence_html(ev) for ev in top.evidence)
            parts.append("</ul>")
        fixes = [fx for c in d.causes[:1] for fx in c.fixes]
        if fixes:
            parts.append("<h2>Fix</h2><ul id='fixes'>")
            for fx in fixes:
                parts.append(f"<li>{escape(fx.description)}")
                if fx.edits:
                    parts.append("<pre>")
                    for e in fx.edits:
                        parts.append(escape(f"{e.path}:{e.line}:{e.col}: {e.old!r} -> {e.new!r}") + "\n")
                    parts.append("</pre>")
                parts.append("</li>")
            parts.append("</ul>")
    if d.warnings:
        parts.append("<h2>Warnings</h2><ul>")
        parts.extend(f"<li>{escape(w)}</li>" for w in d.warnings)
        parts.append("</ul>")
    if d.ruled_out:
        parts.append("<h2>Ruled out</h2><ul>")
        parts.extend(f"<li><b>{escape(c.value)}</b>: {escape(why)}</li>" for c, why in d.ruled_out)
        parts.append("</ul>")
    if d.next_steps:
        parts.append("<h2>What would settle it</h2><ul>")
        parts.extend(f"<li>{escape(s)}</li>" for s in d.next_steps)
        parts.append("</ul>")
    if d.findings:
        parts.append(
            "<h2>All findings</h2><div class='scroll'><table id='findings'>"
            "<tr><th>code</th><th>severity</th><th>cause</th><th>message</th><th>fix</th></tr>"
        )
        parts.extend(_finding_row(f) for f in d.findings)
        parts.append("</table></div>")
    if d.inputs:
        parts.append("<h2>Inputs</h2><pre>")
        for k, v in d.inputs.items():
            parts.append(escape(f"{k}: {v}") + "\n")
        parts.append("</pre>")
    parts.append(f"<p class='loc'>nandoctor {__version__}</p></body></html>")
    return "".join(parts)
