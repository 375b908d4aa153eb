"""Charts as SVG drawn on the server: they print, need no script and no chart library.

Geometry only: the numbers come from :mod:`automation.progress.views`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

from markupsafe import Markup

from automation.progress.summary import STATUSES

__all__ = ["completion_chart", "status_bar", "trend_chart", "LEVEL_FILL", "STATUS_FILL", "TREND_COLOURS"]

LEVEL_FILL = {"red": "#c0392b", "yellow": "#e0a100", "green": "#3c8d40"}
STATUS_FILL = {"已完成": "#3c8d40", "推进中": "#e0a100", "未启动": "#e07b39", "不适用": "#a5a5a5", "未填报": "#c0392b"}


def completion_chart(units: Sequence[object], title: str = "各单位完成率") -> Markup:
    """Horizontal bars, one per unit (worst first), coloured by level; a 0 % unit still shows a sliver."""
    row, label_w, bar_w, top = 22, 150, 420, 28
    height = top + row * len(units) + 24
    width = label_w + bar_w + 70
    out = [f'<svg class="chart" role="img" aria-label="{escape(title)}" viewBox="0 0 {width} {height}" '
           f'width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
           f'<text x="0" y="16" class="chart-title">{escape(title)}</text>']
    for pct in (0, 50, 100):
        x = label_w + bar_w * pct / 100
        out.append(f'<line x1="{x:.0f}" y1="{top - 4}" x2="{x:.0f}" y2="{height - 20}" stroke="#ddd"/>'
                   f'<text x="{x:.0f}" y="{height - 6}" text-anchor="middle" class="axis">{pct}%</text>')
    for i, u in enumerate(units):
        y = top + i * row
        completion = float(u.completion)
        w = max(2.0, bar_w * completion)
        name = str(u.name)
        out.append(f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end" class="label">{escape(name[:12])}</text>'
                   f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row - 7}" '
                   f'fill="{LEVEL_FILL.get(str(u.level), "#888")}"><title>{escape(name)} '
                   f'{completion:.1%}</title></rect>'
                   f'<text x="{label_w + w + 5:.1f}" y="{y + 15}" class="value">{completion:.1%}</text>')
    out.append("</svg>")
    return Markup("".join(out))


def status_bar(counts: Mapping[str, int], title: str = "落实情况分布（分工条数）") -> Markup:
    """One stacked bar of every assignment by status, with a legend under it."""
    total = sum(counts.get(s, 0) for s in STATUSES) or 1
    width, bar_h = 600, 26
    out = [f'<svg class="chart" role="img" aria-label="{escape(title)}" viewBox="0 0 {width} 86" width="{width}" '
           f'height="86" xmlns="http://www.w3.org/2000/svg"><text x="0" y="16" class="chart-title">{escape(title)}</text>']
    x = 0.0
    for s in STATUSES:
        n = counts.get(s, 0)
        if not n:
            continue
        w = width * n / total
        out.append(f'<rect x="{x:.1f}" y="24" width="{w:.1f}" height="{bar_h}" fill="{STATUS_FILL[s]}">'
                   f'<title>{s} {n}</title></rect>')
        x += w
    lx = 0
    for s in STATUSES:
        out.append(f'<rect x="{lx}" y="62" width="12" height="12" fill="{STATUS_FILL[s]}"/>'
                   f'<text x="{lx + 16}" y="73" class="label">{s} {counts.get(s, 0)}</text>')
        lx += 120
    out.append("</svg>")
    return Markup("".join(out))


TREND_COLOURS = ("#404040", "#2f6fb5", "#e07b39", "#3c8d40", "#e0a100", "#7030a0")


def trend_chart(labels: Sequence[str], series: Sequence[object], title: str = "各期完成率走势") -> Markup:
    """Lines of completion over the rounds, one per unit kind (the first, all units, drawn thicker)."""
    left, top, plot_w, plot_h = 44, 30, max(120, 70 * max(len(labels) - 1, 1)), 180
    width, height = left + plot_w + 30, top + plot_h + 40 + 18 * len(series)
    out = [f'<svg class="chart trend" role="img" aria-label="{escape(title)}" viewBox="0 0 {width} {height}" '
           f'width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
           f'<text x="0" y="16" class="chart-title">{escape(title)}</text>']

    def x(i: int) -> float:
        return left + (plot_w * i / (len(labels) - 1) if len(labels) > 1 else plot_w / 2)

    def y(v: float) -> float:
        return top + plot_h * (1 - v)

    for pct in (0, 50, 100):
        out.append(f'<line x1="{left}" y1="{y(pct / 100):.0f}" x2="{left + plot_w}" y2="{y(pct / 100):.0f}" '
                   f'stroke="#ddd"/><text x="{left - 6}" y="{y(pct / 100) + 4:.0f}" text-anchor="end" '
                   f'class="axis">{pct}%</text>')
    for i, label in enumerate(labels):
        out.append(f'<text x="{x(i):.0f}" y="{top + plot_h + 16}" text-anchor="middle" class="axis">'
                   f'{escape(label)}</text>')
    for j, s in enumerate(series):
        colour = TREND_COLOURS[j % len(TREND_COLOURS)]
        values = [float(v) for v in s.values]
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
        out.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="{3 if j == 0 else 2}"/>')
        for i, v in enumerate(values):
            out.append(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3" fill="{colour}"><title>{escape(str(s.name))} '
                       f'{escape(labels[i])} {v:.1%}</title></circle>')
        if j == 0 and values:
            out.append(f'<text x="{x(len(values) - 1):.1f}" y="{y(values[-1]) - 8:.1f}" text-anchor="middle" '
                       f'class="value">{values[-1]:.1%}</text>')
        ly = top + plot_h + 34 + 18 * j
        out.append(f'<rect x="{left}" y="{ly - 10}" width="12" height="12" fill="{colour}"/>'
                   f'<text x="{left + 16}" y="{ly}" class="label">{escape(str(s.name))}</text>')
    out.append("</svg>")
    return Markup("".join(out))
