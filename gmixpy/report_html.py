"""The surprise map: one self-contained HTML page (inline CSS, no script, nothing fetched) showing a text with every
byte shaded by what it cost the model in bits, the totals, and the per-model table of an Analysis.

Shading: twelve classes of cost per byte (the legend on the page gives their bounds); a byte the model found
nearly certain (under half a bit) is left unshaded.  Runs of neighbouring bytes of one class share one element, an
autonomous custom element <x-K> (valid HTML, inline, styled by the page's CSS) because the short name keeps the
page small: about 7 bytes of page per byte of English text shown.  Printable ASCII is shown as itself; a valid
multi-byte UTF-8 character as the character, shaded by the total cost of its bytes; newline, tab and carriage return as
the marks \u21b5, \u2192 and \u2190 (the newline and tab also as themselves, so the layout stays); every other byte
escaped as \\xHH.

Bounds: only the first bytes the analysis kept (Analysis.costs, MAP_BYTES = 256 KiB unless asked otherwise) are
drawn; past them the page says how many bytes are not shown, while its totals and table cover the whole file.
"""
from __future__ import annotations

import bisect
import html

import numpy as np

from .analysis import Analysis

BOUNDS = (0.5, 1, 2, 3, 4, 5, 6, 8, 10, 12, 16)  # upper bounds (bits) of classes c0 .. c10; c11 is 16 and more
COLORS = ("#ffffff", "#fff5cc", "#ffeda0", "#fed976", "#feb24c", "#fd8d3c", "#fc4e2a", "#e31a1c", "#bd0026",
          "#800026", "#54001a", "#2b000d")
DARK = 7  # classes from here on get white text

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:24px;color:#222;
background:#fafafa}
h1{font-size:20px;margin:0 0 8px}
h2{font-size:16px;margin:24px 0 8px}
.box{background:#fff;border:1px solid #ddd;border-radius:6px;padding:12px 16px;margin-bottom:16px}
.legend span{display:inline-block;padding:1px 6px;margin:2px 2px 2px 0;border:1px solid #ddd;font-size:12px}
pre.map{background:#fff;border:1px solid #ddd;border-radius:6px;padding:12px 16px;white-space:pre-wrap;
overflow-wrap:anywhere;font:13px/1.5 ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace;margin:0}
pre.map b{font-weight:normal;opacity:.55}
.note{color:#8a4b00}
table{border-collapse:collapse;background:#fff;font-size:13px}
th,td{border-bottom:1px solid #eee;padding:2px 8px;text-align:right;white-space:nowrap}
th{background:#f0f0f0;position:sticky;top:0}
td.name,th.name{text-align:left;font-family:ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace}
td.bar{width:220px;text-align:left}
td.bar div{height:10px;background:#fd8d3c}
tr.ens td{font-weight:bold;background:#fff5cc}
"""


def _class_css() -> str:
    shaded = "".join(f"x-{k}{{background:{color}{';color:#fff' if k >= DARK else ''}}}"
                     for k, color in enumerate(COLORS) if k)
    legend = "".join(f".c{k}{{background:{color}{';color:#fff' if k >= DARK else ''}}}"
                     for k, color in enumerate(COLORS) if k)
    return shaded + legend


def cost_class(bits: float) -> int:
    """The shading class (0 = unshaded .. 11) of a cost in bits."""
    return bisect.bisect_right(BOUNDS, bits)


def _glyphs(data: bytes, costs: np.ndarray):
    """(HTML text, cost) for every character shown: bytes grouped into UTF-8 characters where valid."""
    i, n = 0, len(data)
    while i < n:
        b = data[i]
        width = 1
        if 0x20 <= b < 0x7F:
            text = html.escape(chr(b), quote=False)
        elif b == 0x0A:
            text = "<b>\u21b5</b>\n"
        elif b == 0x09:
            text = "<b>\u2192</b>\t"
        elif b == 0x0D:
            text = "<b>\u2190</b>"
        else:
            text = None
            if b >= 0xC2:
                width = 2 if b < 0xE0 else 3 if b < 0xF0 else 4
                try:
                    ch = data[i:i + width].decode("utf-8")
                    if len(ch) == 1 and ch.isprintable():
                        text = html.escape(ch, quote=False)
                except UnicodeDecodeError:
                    pass
            if text is None:
                width = 1
                text = f"<b>\\x{b:02x}</b>"
        yield text, float(costs[i:i + width].sum())
        i += width


def render_map(data: bytes, costs: np.ndarray) -> str:
    """The shaded text: runs of one class K in one <x-K> element (class 0 left bare)."""
    parts: list[str] = []
    run: list[str] = []
    current = 0
    for text, cost in _glyphs(data, costs):
        k = cost_class(cost)
        if k != current and run:
            parts.append(f"<x-{current}>{''.join(run)}</x-{current}>" if current else "".join(run))
            run = []
        current = k
        run.append(text)
    if run:
        parts.append(f"<x-{current}>{''.join(run)}</x-{current}>" if current else "".join(run))
    return "".join(parts)


def _legend() -> str:
    spans = []
    low = 0.0
    for k in range(len(COLORS)):
        label = f"{low:g}\u2013{BOUNDS[k]:g}" if k < len(BOUNDS) else f"\u2265{low:g}"
        spans.append(f"<span class=c{k}>{label}</span>" if k else f"<span>{label}</span>")
        low = BOUNDS[k] if k < len(BOUNDS) else low
    return ("bits per byte: " + "".join(spans) + " &nbsp; marks: \u21b5 newline, \u2192 tab, \u2190 carriage "
            "return, \\xHH any other byte that is not printable text")


def _table(a: Analysis) -> str:
    bpb = a.bpb()
    ens = a.ensemble_bpb

    def num(v, digits=4):
        return "\u2013" if np.isnan(v) else f"{v:.{digits}f}"

    head = ("<tr><th class=name>{}</th><th>bpb alone</th><th>\u2212 ensemble</th><th class=name>bpb alone (0 to 8)"
            "</th><th>active</th><th>layer-0 |w|</th><th>layer-0 |w\u00b7x|</th><th>final |w|</th>"
            "<th>final |w\u00b7x|</th></tr>")
    out = []
    for kind, title in (("input", "model input"), ("mixer", "mixer")):
        out.append("<table>" + head.format(title))
        out.append(f"<tr class=ens><td class=name>ensemble</td><td>{ens:.4f}</td><td></td><td class=bar>"
                   f"<div style=\"width:{min(ens / 8, 1) * 100:.1f}%\"></div></td><td></td><td></td><td></td>"
                   "<td></td><td></td></tr>")
        for i in a.order(kind, "bpb"):
            out.append(
                f"<tr><td class=name>{html.escape(a.names[i])}</td><td>{bpb[i]:.4f}</td>"
                f"<td>{bpb[i] - ens:+.4f}</td><td class=bar><div style=\"width:{min(bpb[i] / 8, 1) * 100:.1f}%\">"
                f"</div></td><td>{100 * a.active[i]:.1f}%</td><td>{num(a.l0_weight[i])}</td>"
                f"<td>{num(a.l0_contribution[i])}</td><td>{num(a.final_weight[i])}</td>"
                f"<td>{num(a.final_contribution[i])}</td></tr>")
        out.append("</table>")
    return "\n".join(out)


def render(a: Analysis, title: str = "") -> str:
    """The whole page for an Analysis of a file named `title`."""
    shown = len(a.costs)
    name = html.escape(title or "input")
    note = ""
    if shown < a.n_bytes:
        note = (f"<p class=note>Showing the first {shown:,} of {a.n_bytes:,} bytes "
                f"({a.n_bytes - shown:,} bytes not shown); the totals and the tables cover the whole file.</p>")
    shown_bits = float(a.costs.astype(np.float64).sum())
    summary = "".join(f"<div>{html.escape(line)}</div>" for line in a.summary())
    return f"""<!DOCTYPE html>
<html lang=en><head><meta charset=utf-8><title>gmixpy surprise map: {name}</title>
<meta name=viewport content="width=device-width,initial-scale=1">
<style>{_CSS}{_class_css()}</style></head>
<body>
<h1>Surprise map of {name}</h1>
<div class=box>{summary}
<div>shown below: {shown:,} bytes, {shown_bits / 8:,.1f} bytes of cross-entropy
({(shown_bits / shown if shown else 0):.4f} bits per byte)</div>
<div class=legend>{_legend()}</div></div>
{note}<pre class=map>{render_map(a.head[:shown], a.costs)}</pre>
<h2>What each model input and each mixer alone would cost (bits per byte), and the weight the network gives it</h2>
<p>bpb alone: the input's logit through logistic, as if it were the coded probability (an inactive input costs 1 bit
per bit).  active: share of bits at which it said something.  layer-0 |w|, |w\u00b7x|: mean over every bit and every
layer-0 mixer of the absolute weight on it and of weight times input, with the weight set each mixer's context chose
then.  final |w|, |w\u00b7x|: the same in the final mixer, which reads the mixers and the skip-connected inputs.</p>
{_table(a)}
</body></html>
"""
