"""Inline SVG charts drawn from a :class:`Chart` (no script, no external reference, no xmlns URL needed in HTML).

Every data point is one element of class ``datum`` with a ``<title>`` (label, series, value): a bar, a
stacked segment or a line's point; ``data-points`` on the ``<svg>`` says how many there are.
"""
from __future__ import annotations

from html import escape

from ..money import usd
from .model import Chart

W, H = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 16, 64
COLORS = ("#2b6cb0", "#dd6b20", "#38a169", "#805ad5", "#d53f8c", "#718096", "#c53030", "#319795")


def value_text(value: float, unit: str) -> str:
    if unit == "USD":
        return usd(value)
    if unit == "percent":
        return f"{value:g}%"
    return f"{value:g}"


def draw(chart: Chart) -> str:
    body = {"bar": _bars, "stacked": _stacked, "line": _lines}[chart.kind](chart)
    return (f'<svg class="chart chart-{chart.kind}" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" '
            f'data-points="{chart.points}" aria-label="{escape(chart.title)}"><title>{escape(chart.title)}</title>'
            f'{_axes(chart)}{body}</svg>')


def _top(chart: Chart) -> float:
    if chart.kind == "stacked":
        tops = [sum(s.values[i] or 0.0 for s in chart.series) for i in range(len(chart.labels))]
    else:
        tops = [v for s in chart.series for v in s.values if v is not None]
    top = max([0.0, *tops])
    return top if top > 0 else 1.0


def _y(value: float, top: float) -> float:
    return TOP + (H - TOP - BOTTOM) * (1 - max(0.0, value) / top)


def _slot(chart: Chart) -> float:
    return (W - LEFT - RIGHT) / max(1, len(chart.labels))


def _axes(chart: Chart) -> str:
    top, slot = _top(chart), _slot(chart)
    out = [f'<line class="axis" x1="{LEFT}" y1="{H - BOTTOM}" x2="{W - RIGHT}" y2="{H - BOTTOM}"/>',
           f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{H - BOTTOM}"/>']
    for fraction in (0.0, 0.5, 1.0):
        y = _y(top * fraction, top)
        out.append(f'<text class="tick" x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">'
                   f'{escape(value_text(round(top * fraction, 2), chart.unit))}</text>')
    for i, label in enumerate(chart.labels):
        x = LEFT + slot * (i + 0.5)
        short = label if len(label) <= 14 else label[:13] + "…"
        out.append(f'<text class="label" x="{x:.1f}" y="{H - BOTTOM + 14}" text-anchor="end" '
                   f'transform="rotate(-30 {x:.1f} {H - BOTTOM + 14})">{escape(short)}</text>')
    return "".join(out)


def _tip(chart: Chart, label: str, series: str, value: float) -> str:
    return f"<title>{escape(label)} · {escape(series)}: {escape(value_text(value, chart.unit))}</title>"


def _bars(chart: Chart) -> str:
    top, slot = _top(chart), _slot(chart)
    n = max(1, len(chart.series))
    width = slot * 0.8 / n
    out = []
    for k, s in enumerate(chart.series):
        for i, (label, v) in enumerate(zip(chart.labels, s.values)):
            if v is None:
                continue
            x, y = LEFT + slot * i + slot * 0.1 + width * k, _y(v, top)
            out.append(f'<rect class="datum bar" x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" '
                       f'height="{H - BOTTOM - y:.1f}" fill="{COLORS[k % len(COLORS)]}">'
                       f'{_tip(chart, label, s.name, v)}</rect>')
    return "".join(out)


def _stacked(chart: Chart) -> str:
    top, slot = _top(chart), _slot(chart)
    base = [0.0] * len(chart.labels)
    out = []
    for k, s in enumerate(chart.series):
        for i, (label, v) in enumerate(zip(chart.labels, s.values)):
            if v is None:
                continue
            y0, y1 = _y(base[i], top), _y(base[i] + v, top)
            base[i] += v
            out.append(f'<rect class="datum segment" x="{LEFT + slot * i + slot * 0.15:.1f}" y="{y1:.1f}" '
                       f'width="{slot * 0.7:.1f}" height="{y0 - y1:.1f}" fill="{COLORS[k % len(COLORS)]}">'
                       f'{_tip(chart, label, s.name, v)}</rect>')
    return "".join(out)


def _lines(chart: Chart) -> str:
    top, slot = _top(chart), _slot(chart)
    out = []
    for k, s in enumerate(chart.series):
        color = COLORS[k % len(COLORS)]
        pts = [(LEFT + slot * (i + 0.5), _y(v, top), label, v)
               for i, (label, v) in enumerate(zip(chart.labels, s.values)) if v is not None]
        if len(pts) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in pts)
            out.append(f'<polyline class="series" fill="none" stroke="{color}" stroke-width="2" points="{path}"/>')
        out += [f'<circle class="datum point" cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}">'
                f'{_tip(chart, label, s.name, v)}</circle>' for x, y, label, v in pts]
    return "".join(out)


def legend(chart: Chart) -> str:
    """The series' names and colours as HTML (under the chart; wraps however many there are)."""
    if len(chart.series) < 2:
        return ""
    return "".join(f'<span class="key"><i style="background:{COLORS[k % len(COLORS)]}"></i>{escape(s.name)}</span>'
                   for k, s in enumerate(chart.series))
