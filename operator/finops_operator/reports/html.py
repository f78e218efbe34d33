"""One self-contained HTML file: inline CSS (with print rules) and inline SVG charts; no script, no URL.

Every text (cluster, team, namespace and target names are input from clusters) goes through
``html.escape``; a pull request's URL is shown as text without its scheme, so the file references
nothing outside itself and opens offline.
"""
from __future__ import annotations

from html import escape
from typing import Any

from ..money import usd
from .model import Report, Section, Table
from .svg import draw, legend

CSS = """
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; color: #1a202c;
       margin: 0 auto; max-width: 1100px; padding: 24px; background: #fff; }
h1 { font-size: 24px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 28px 0 8px; border-bottom: 1px solid #e2e8f0; }
.meta, .note { color: #4a5568; } .note { background: #fffbea; border-left: 4px solid #d69e2e; padding: 6px 10px; }
.figures { display: flex; flex-wrap: wrap; gap: 12px; margin: 12px 0; }
.figure { border: 1px solid #e2e8f0; border-radius: 6px; padding: 8px 12px; min-width: 150px; }
.figure b { display: block; font-size: 20px; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; } figure { margin: 0; max-width: 640px; }
figcaption { font-size: 12px; color: #2d3748; } .key { margin-left: 10px; white-space: nowrap; }
.key i { display: inline-block; width: 10px; height: 10px; margin-right: 4px; }
svg.chart { max-width: 100%; height: auto; border: 1px solid #edf2f7; border-radius: 4px; }
svg .axis { stroke: #a0aec0; } svg text { font-size: 11px; fill: #4a5568; }
table { border-collapse: collapse; margin: 8px 0 16px; width: 100%; }
th, td { border-bottom: 1px solid #edf2f7; padding: 4px 8px; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; } caption { text-align: left; font-weight: 600; }
@media print {
  body { font-size: 10pt; padding: 0; max-width: none; }
  section { break-inside: avoid; page-break-inside: avoid; }
  h2 { break-after: avoid; } svg.chart { border: none; } figure { break-inside: avoid; }
  .figure { border-color: #999; }
}
"""


def render_html(report: Report) -> str:
    h = report.headline
    figures = "".join(f'<div class="figure">{escape(name)}<b>{escape(value)}</b></div>' for name, value in (
        ("Estimated savings", f"{usd(h['estimatedMonthly'])}/mo"), ("Realized savings", f"{usd(h['realizedMonthly'])}/mo"),
        ("Found this period", f"{usd(h['estimatedDetectedInPeriod'])}/mo"),
        ("Realized this period", f"{usd(h['realizedInPeriod'])}/mo"),
        ("Opportunities", str(h["opportunities"])))) if h.get("opportunities") else ""
    notes = "".join(f'<p class="note">{escape(n)}</p>' for n in report.notes)
    body = "".join(_section(s) for s in report.sections) or "<p>No data for this period.</p>"
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(report.title)}</title><style>{CSS}</style></head><body>"
            f"<header><h1>{escape(report.title)}</h1>"
            f'<p class="meta">For the {escape(report.persona)} · source: {escape(report.source)} · period '
            f"{report.start:%Y-%m-%d %H:%M} to {report.end:%Y-%m-%d %H:%M} UTC</p>{notes}"
            f'<div class="figures">{figures}</div></header><main>{body}</main></body></html>\n')


def _section(s: Section) -> str:
    lines = "".join(f"<p>{escape(line)}</p>" for line in s.lines)
    charts = "".join(f'<figure>{draw(c)}<figcaption>{escape(c.title)} {legend(c)}</figcaption></figure>'
                     for c in s.charts)
    charts = f'<div class="charts">{charts}</div>' if charts else ""
    tables = "".join(_table(caption, t) for caption, t in s.tables)
    return f'<section id="{escape(s.id)}"><h2>{escape(s.title)}</h2>{lines}{charts}{tables}</section>'


def cell_text(value: Any, money: bool) -> str:
    """A cell as text (shared with Markdown): USD for money columns, no URL scheme, '—' for nothing."""
    if value is None:
        return "—"
    if money and isinstance(value, (int, float)):
        return usd(value)
    if isinstance(value, float):
        return f"{value:g}"
    text = str(value)
    for scheme in ("https://", "http://"):
        if text.startswith(scheme):
            text = text[len(scheme):]
    return text


def _table(caption: str, table: Table) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in table.columns)
    rows = []
    for row in table.rows:
        cells = []
        for column, value in zip(table.columns, row):
            num = isinstance(value, (int, float)) and not isinstance(value, bool)
            cells.append(f'<td{" class=num" if num else ""}>{escape(cell_text(value, column in table.money))}</td>')
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return (f"<table><caption>{escape(caption)}</caption><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")
