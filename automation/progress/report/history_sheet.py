"""Sheet 6, 提交记录: every response received — when, unit, task, old → new status, source file (bulk rows)."""

from __future__ import annotations

from xlsxwriter.worksheet import Worksheet

from automation.ledger import Ledger
from automation.progress.report.styles import SHEET_HISTORY, Styles, header_columns, print_setup
from automation.progress.summary import STATUSES, Snapshot, effective_status, fmt_time, iter_history
from automation.workbook.textsize import row_points, wrapped_lines
from automation.workbook.xlsxbulk import BulkSheet, RowWriter, Shared

HISTORY_COLUMNS: tuple[tuple[str, float, str], ...] = (
    ("接收时间", 16, "center"), ("单位", 14, "text"), ("序号", 5, "int"), ("工作任务", 30, "text"),
    ("原状态", 8, "center"), ("新状态", 8, "center"), ("来源文件", 26, "text"),
)


def write_history_sheet(ws: Worksheet, st: Styles, snap: Snapshot, ledger: Ledger) -> BulkSheet:
    header_columns(ws, st, HISTORY_COLUMNS)
    ws.set_row(0, 24)
    n = ledger.count_responses(snap.batch.id)
    st.status_rules(ws, 1, 4, n, 5)
    ws.freeze_panes(1, 0)
    ws.autofilter(0, 0, max(n, 1), len(HISTORY_COLUMNS) - 1)
    print_setup(ws, snap, SHEET_HISTORY, 0)
    widths = {label: width for label, width, _kind in HISTORY_COLUMNS}
    w_unit, w_title, w_source = widths["单位"], widths["工作任务"], widths["来源文件"]
    unit_names = {u.id: u.name for u in ledger.units(active_only=False)}
    files = ledger.submission_files(snap.batch.id)

    def produce(w: RowWriter) -> None:
        memo, row, lines = w.memo, w.row, wrapped_lines
        titles = {t.number: (memo(t.title), lines(t.title, w_title)) for t in snap.tasks}
        statuses = {s: memo(s) for s in STATUSES}
        units: dict[int, tuple[Shared | None, int]] = {}
        sources: dict[int, tuple[Shared | None, int]] = {}
        times: dict[str, Shared | None] = {}
        for received_at, unit_id, task, status, submission_id, old in iter_history(ledger, snap.batch.id):
            u = units.get(unit_id)
            if u is None:
                name = unit_names.get(unit_id, "")
                u = units[unit_id] = (memo(name), lines(name, w_unit))
            f = sources.get(submission_id)
            if f is None:
                name = files.get(submission_id, "")
                f = sources[submission_id] = (memo(name), lines(name, w_source))
            when = times.get(received_at)
            if when is None:
                when = times[received_at] = memo(fmt_time(received_at))
            title, n = titles.get(task) or (None, 1)
            row([when, u[0], task, title, statuses[effective_status(old)], statuses[effective_status(status)], f[0]],
                row_points(max(n, u[1], f[1])))

    return BulkSheet(SHEET_HISTORY, 1, n, len(HISTORY_COLUMNS), produce)
