"""Sheet 1, 落实情况汇总: the original task table with 落实情况 derived from the answers, above it the
status counts and two native charts (status distribution, completion by unit)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import xlsxwriter
from xlsxwriter.worksheet import Worksheet

from automation import clock
from automation.progress.report.styles import (
    CHART_COLOURS,
    CHART_UNITS,
    HEADLINE_LEVEL,
    LEVEL_BAR_COLOURS,
    SHEET_SUMMARY,
    SHEET_UNITS,
    Styles,
    print_setup,
    px,
)
from automation.progress.summary import STATUSES, Snapshot
from automation.workbook.textsize import rows_points

_CHART_ROWS, _CHART_ROW_PT = 13, 20


def party_text(names: Sequence[str], notes: dict[str, str]) -> str:
    """Unit names with their scope notes, as the task table wrote them."""
    return "、".join(f"{n}（{notes[n]}）" if notes.get(n) else n for n in names)


def write_summary_sheet(wb: xlsxwriter.Workbook, ws: Worksheet, st: Styles, snap: Snapshot) -> None:
    columns = _columns(snap)
    for i, (_label, width) in enumerate(columns):
        ws.set_column(i, i, width)
    _title(ws, st, snap, len(columns) - 1)
    total_row = _counts(ws, st, snap)
    chart_row = total_row + 2
    chart_rows = _charts(wb, ws, snap, columns, chart_row)
    header_row = chart_row + chart_rows + 1
    _task_table(ws, st, snap, columns, header_row)
    print_setup(ws, snap, SHEET_SUMMARY, header_row)


def _columns(snap: Snapshot) -> list[tuple[str, float]]:
    columns: list[tuple[str, float]] = [("工作任务", 30), ("工作要求", 44)]
    if any(t.deadline for t in snap.tasks):
        columns.append(("完成时限", 12))
    return columns + [("牵头单位", 14), ("责任单位", 18), ("落实情况", 44), ("未完成单位", 30)]


def _title(ws: Worksheet, st: Styles, snap: Snapshot, last_col: int) -> None:
    info, overall = snap.deadline, snap.overall
    ws.set_row(0, 30)
    ws.merge_range(0, 0, 0, last_col, f"{snap.batch.title}落实情况汇总表", st.title)
    meta = (f"统计时间：{clock.local(snap.now):%Y-%m-%d %H:%M}　　报送截止：{info.deadline:%Y-%m-%d}（{info.text()}）"
            f"　　整体完成率：{overall.completion:.1%}（已完成 {overall.done} 条 / 应完成 {overall.applicable} 条，"
            f"共 {len(snap.tasks)} 项任务、{len(snap.units)} 个单位、{overall.assigned} 条分工）"
            + (f"　　逾期任务：{len(snap.overdue_tasks)} 项" if snap.overdue_tasks else ""))
    ws.set_row(1, 22)
    ws.merge_range(1, 0, 1, last_col, meta, st.meta)


def _counts(ws: Worksheet, st: Styles, snap: Snapshot) -> int:
    """The status counts (the doughnut's data, readable on paper without colour); returns the total row."""
    overall = snap.overall
    task_counts = snap.task_counts()
    for col, label in enumerate(("落实情况", "单位分工（条）", "占比", "任务（项）")):
        ws.write_string(2, col, label, st.header)
    for i, status in enumerate(STATUSES, start=3):
        ws.write_string(i, 0, status, st.center)
        ws.write_number(i, 1, overall[status], st.int)
        ws.write_number(i, 2, overall[status] / overall.assigned if overall.assigned else 0, st.pct)
        ws.write_number(i, 3, task_counts.get(status, 0), st.int)
    total_row = 3 + len(STATUSES)
    ws.write_string(total_row, 0, "合计", st.center)
    ws.write_number(total_row, 1, overall.assigned, st.int)
    ws.write_number(total_row, 2, 1 if overall.assigned else 0, st.pct)
    ws.write_number(total_row, 3, len(snap.tasks), st.int)
    return total_row


def _charts(wb: xlsxwriter.Workbook, ws: Worksheet, snap: Snapshot, columns: list[tuple[str, float]],
            chart_row: int) -> int:
    """The two charts side by side; returns how many rows they take (the bar chart grows with the units)."""
    chart_h = int(_CHART_ROWS * _CHART_ROW_PT * 96 / 72) - 10
    shown = min(len(snap.units), CHART_UNITS)
    bar_h = max(chart_h, 20 * shown + 70)   # 20 px a bar: room for every name at 8 pt
    rows = max(_CHART_ROWS, -int(-(bar_h + 10) // (_CHART_ROW_PT * 96 / 72)))
    for r in range(chart_row, chart_row + rows):
        ws.set_row(r, _CHART_ROW_PT)
    table_px = sum(px(w) for _l, w in columns)
    left_px = px(columns[0][1]) + px(columns[1][1])
    doughnut = wb.add_chart({"type": "doughnut"})
    doughnut.add_series({
        "name": "落实情况分布",
        "categories": [SHEET_SUMMARY, 3, 0, 2 + len(STATUSES), 0],
        "values": [SHEET_SUMMARY, 3, 1, 2 + len(STATUSES), 1],
        "points": [{"fill": {"color": CHART_COLOURS[s]}} for s in STATUSES],
        "data_labels": {"percentage": True, "font": {"size": 9}},
    })
    doughnut.set_title({"name": "落实情况分布（单位分工）", "name_font": {"size": 11, "bold": True}})
    doughnut.set_legend({"position": "right", "font": {"size": 9}})
    doughnut.set_hole_size(45)
    doughnut.set_size({"width": left_px - 20, "height": chart_h})
    ws.insert_chart(chart_row, 0, doughnut, {"x_offset": 4, "y_offset": 4, "object_position": 3})

    if not shown:                       # (a chart without a series is an error in Excel)
        return rows
    units = snap.units[:shown]
    bar = wb.add_chart({"type": "bar"})   # horizontal bars: the unit names read horizontally
    bar.add_series({
        "name": "完成率",
        "categories": [SHEET_UNITS, 3, 1, 2 + shown, 1],
        "values": [SHEET_UNITS, 3, 10, 2 + shown, 10],
        "points": [{"fill": {"color": LEVEL_BAR_COLOURS[u.level]}, "border": {"color": "#7F7F7F"}} for u in units],
        # A 0 % bar has no length: its label (and the thin border) still shows the unit is there.
        "data_labels": {"value": True, "num_format": "0%", "position": "outside_end", "font": {"size": 8}},
        "gap": 40,
    })
    part = f"（完成率最低的 {shown} 个单位）" if len(snap.units) > shown else "（由低到高）"
    bar.set_title({"name": f"各单位完成率{part}", "name_font": {"size": 11, "bold": True}})
    bar.set_legend({"none": True})
    bar.set_x_axis({"min": 0, "max": 1.1, "major_unit": 0.2, "num_format": "0%", "num_font": {"size": 8},
                    "major_gridlines": {"visible": True, "line": {"color": "#D9D9D9"}}})
    bar.set_y_axis({"reverse": True, "num_font": {"size": 8}, "interval_unit": 1})   # worst at the top
    bar.set_size({"width": table_px - left_px - 10, "height": bar_h})
    ws.insert_chart(chart_row, 2, bar, {"x_offset": 4, "y_offset": 4, "object_position": 3})
    return rows


def _task_table(ws: Worksheet, st: Styles, snap: Snapshot, columns: list[tuple[str, float]],
                header_row: int) -> None:
    """The task table in the original layout: section and subsection rows, one row per task."""
    has_deadline = any(label == "完成时限" for label, _w in columns)
    last_col = len(columns) - 1
    ws.set_row(header_row, 24)
    for i, (label, _w) in enumerate(columns):
        ws.write_string(header_row, i, label, st.header)
    widths = [w for _l, w in columns]
    row = header_row + 1
    section: Any = object()
    subsection: Any = object()
    for t in snap.tasks:
        heading = None
        if t.section != section:
            section, subsection = t.section, object()
            if t.section:
                heading = (f"{t.section}、{t.section_title}" if t.section_title else t.section, st.section)
        if heading:
            row = _heading(ws, row, last_col, sum(widths), *heading)
        if t.subsection != subsection:
            subsection = t.subsection
            if t.subsection:
                row = _heading(ws, row, last_col, sum(widths), f"{t.subsection}{t.subsection_title or ''}",
                               st.subsection)
        r = snap.rollups[t.number]
        values = [f"{t.number}.{t.title}", t.requirement]
        due = snap.dues.get(t.number)
        late = bool(due and due.overdue and due.own)
        if has_deadline:
            values.append((t.deadline or "") + (f"\n已逾期{due.overdue_workdays}个工作日" if late and due else ""))
        values += [party_text(t.lead, t.unit_notes), party_text(t.responsible, t.unit_notes), r.text(),
                   r.unfinished_text(snap.groups)]
        ws.set_row(row, rows_points(list(zip(values, widths, strict=True))))
        for col, value in enumerate(values):
            fmt = st.headline[HEADLINE_LEVEL.get(r.headline, "red")] if col == last_col - 1 else st.text
            if late and has_deadline and col == 2:
                fmt = st.headline["red"]
            ws.write_string(row, col, value, fmt)
        row += 1


def _heading(ws: Worksheet, row: int, last_col: int, width: float, text: str, fmt: Any) -> int:
    ws.set_row(row, rows_points([(text, width)]) + 2)
    ws.merge_range(row, 0, row, last_col, text, fmt)
    return row + 1
