"""Sheet 3, 任务×单位: the status of every (task, unit), coloured, with frozen headers (bulk rows)."""

from __future__ import annotations

from typing import Any

from xlsxwriter.worksheet import Worksheet

from automation.progress.report.styles import SHEET_MATRIX, Styles, print_setup
from automation.progress.summary import STATUSES, Snapshot
from automation.workbook.textsize import MAX_ROW_PT, rows_points
from automation.workbook.xlsxbulk import BulkSheet, RowWriter


def write_matrix_sheet(ws: Worksheet, st: Styles, snap: Snapshot) -> BulkSheet:
    units = snap.unit_order
    fixed = (("序号", 5, st.int), ("工作任务", 28, st.text), ("落实情况", 18, st.text))
    for i, (_label, width, fmt) in enumerate(fixed):
        ws.set_column(i, i, width, fmt)
    first = len(fixed)
    if units:
        ws.set_column(first, first + len(units) - 1, 6, st.status_cell)
    longest = max((len(name) for _id, name in units), default=2)
    ws.set_row(0, min(MAX_ROW_PT, longest * 15 + 12))   # stacked vertical names: one character per line
    for i, (label, _w, _f) in enumerate(fixed):
        ws.write_string(0, i, label, st.header)
    for j, (_id, name) in enumerate(units):
        ws.write_string(0, first + j, name, st.header_vertical)
    st.status_rules(ws, 1, first, len(snap.tasks), first + len(units) - 1)
    ws.freeze_panes(1, first)
    # Printed at full size, a page of unit columns at a time (and a new page where the unit kind changes),
    # with 序号 / 工作任务 / 落实情况 repeated: shrinking 37 units to one page wide gave 4-point text.
    print_setup(ws, snap, SHEET_MATRIX, 0, fit_width=False, repeat_cols=(0, first - 1))
    ws.set_v_pagebreaks(unit_page_breaks([snap.kinds.get(uid, "") for uid, _n in units], first))

    def produce(w: RowWriter) -> None:
        statuses = {s: w.memo(s) for s in STATUSES}
        for t in snap.tasks:
            cells = snap.matrix.get(t.number, {})
            summary = snap.rollups[t.number].summary
            values: list[Any] = [t.number, t.title, summary]
            values += [statuses[cells[uid]] if uid in cells else None for uid, _n in units]
            w.row(values, rows_points([(t.title, fixed[1][1]), (summary, fixed[2][1])]))

    return BulkSheet(SHEET_MATRIX, 1, len(snap.tasks), first + len(units), produce)


#: Unit columns that fit an A4 landscape page at 100 % beside the three repeated columns.
UNITS_PER_PAGE = 13


def unit_page_breaks(kinds: list[str], first: int) -> list[int]:
    """Column indexes where a printed page starts: every :data:`UNITS_PER_PAGE` units, and where the
    unit kind changes (counties and departments on pages of their own)."""
    breaks = []
    on_page = 0
    for i, kind in enumerate(kinds):
        if i and (kind != kinds[i - 1] or on_page == UNITS_PER_PAGE):
            breaks.append(first + i)
            on_page = 0
        on_page += 1
    return breaks
