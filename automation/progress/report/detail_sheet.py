"""Sheet 4, 进展明细: every assignment's current answer, streamed from the ledger (bulk rows)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from xlsxwriter.worksheet import Worksheet

from automation.ledger import Ledger
from automation.progress.report.styles import SHEET_DETAIL, Styles, header_columns, print_setup
from automation.progress.summary import STATUSES, Snapshot, effective_status, fmt_time, role_text
from automation.workbook.textsize import line_capacity, row_points, wrapped_lines
from automation.workbook.xlsxbulk import BulkSheet, Inline, RowWriter, Shared

DETAIL_COLUMNS: tuple[tuple[str, float, str], ...] = (
    ("序号", 5, "int"), ("工作任务", 22, "text"), ("单位", 14, "text"), ("角色", 10, "text"),
    ("落实情况", 8, "center"), ("工作进展及成效", 40, "text"), ("完成时间", 11, "center"),
    ("佐证材料", 18, "text"), ("存在问题及下步打算", 26, "text"), ("来源文件", 18, "text"),
    ("接收时间", 16, "center"),
)


def write_detail_sheet(ws: Worksheet, st: Styles, snap: Snapshot, ledger: Ledger) -> BulkSheet:
    header_columns(ws, st, DETAIL_COLUMNS)
    ws.set_row(0, 30)
    n = snap.overall.assigned
    st.status_rules(ws, 1, 4, n, 4)
    ws.freeze_panes(1, 3)
    ws.autofilter(0, 0, max(n, 1), len(DETAIL_COLUMNS) - 1)
    print_setup(ws, snap, SHEET_DETAIL, 0)
    titles = {t.number: t.title for t in snap.tasks}

    def produce(w: RowWriter) -> None:
        render_detail_rows(ledger.iter_current_answers(snap.batch.id), titles, w)

    return BulkSheet(SHEET_DETAIL, 1, n, len(DETAIL_COLUMNS), produce)


def _inline(w: RowWriter, text: str, width: float) -> tuple[Inline, int]:
    """A unique text as an inline string, and its wrapped line count.

    The count reuses the encoded length (the measure of :mod:`automation.workbook.textsize`), so
    each long text is encoded once; the ``<t>`` tag and any escape (``&amp;``) only make the
    estimate a little generous.
    """
    data = w.inline(text)
    if "\n" in text:
        return data, wrapped_lines(text, width)
    return data, max(1, -int(-(len(data) - 7 + len(text)) // line_capacity(width)))


def render_detail_rows(rows: Iterable[Sequence[Any]], titles: dict[int, str], w: RowWriter) -> None:
    """Write the 进展明细 body: one row per :data:`~automation.ledger.records.CURRENT_COLUMNS` tuple.

    Values that repeat on many rows are shared strings, escaped and measured once (this loop
    runs once per assignment: 200,000 times at scale).
    """
    widths = {label: width for label, width, _kind in DETAIL_COLUMNS}
    w_title, w_unit, w_role, w_progress, w_evidence, w_issues, w_source = (widths[k] for k in (
        "工作任务", "单位", "角色", "工作进展及成效", "佐证材料", "存在问题及下步打算", "来源文件"))
    memo, row, lines = w.memo, w.row, wrapped_lines
    title_cells = {number: (memo(title), lines(title, w_title)) for number, title in titles.items()}
    statuses = {s: memo(s) for s in STATUSES}
    units: dict[str, tuple[Shared | None, int]] = {}
    roles: dict[tuple[str, str | None], tuple[Shared | None, int]] = {}
    sources: dict[str, tuple[Shared | None, int]] = {}
    times: dict[str, Shared | None] = {}
    for (task, unit, _unit_id, role, note, status, progress, completed_on, evidence, issues, submitted_at,
         _submission_id, source) in rows:
        title, n = title_cells.get(task) or (None, 1)
        u = units.get(unit)
        if u is None:
            u = units[unit] = (memo(unit), lines(unit, w_unit))
        r = roles.get((role, note))
        if r is None:
            label = role_text(role, note)
            r = roles[(role, note)] = (memo(label), lines(label, w_role))
        n = max(n, u[1], r[1])
        if source:
            f = sources.get(source)
            if f is None:
                f = sources[source] = (memo(source), lines(source, w_source))
            n = max(n, f[1])
            source = f[0]
        if progress:
            progress, k = _inline(w, progress, w_progress)
            n = max(n, k)
        if evidence:
            evidence, k = _inline(w, evidence, w_evidence)
            n = max(n, k)
        if issues:
            issues, k = _inline(w, issues, w_issues)
            n = max(n, k)
        when = None
        if submitted_at:
            when = times.get(submitted_at)
            if when is None:
                when = times[submitted_at] = memo(fmt_time(submitted_at))
        row([task, title, u[0], r[0], statuses[effective_status(status)], progress,
             memo(completed_on) if completed_on else None, evidence, issues, source, when],
            row_points(n))
