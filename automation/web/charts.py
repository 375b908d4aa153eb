"""Charts as SVG drawn on the server: they print, need no script and no chart library.

Geometry only: the numbers come from :mod:`automation.progress.views`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

from markupsafe import Markup

from automation.progress.summary import STATUSES

__all__ = ["completion_chart", "status_bar", "LEVEL_FILL", "STATUS_FILL"]

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
