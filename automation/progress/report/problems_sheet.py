"""Sheet 5, 问题清单: every problem found in the batch's returned files, and every quarantined file."""

from __future__ import annotations

from typing import Any

from xlsxwriter.worksheet import Worksheet

from automation.ledger import Ledger
from automation.progress.report.styles import (
    FIELD_NAMES,
    QUARANTINED,
    SEVERITY_NAMES,
    SHEET_PROBLEMS,
    Styles,
    header_columns,
    print_setup,
)
from automation.progress.summary import Snapshot, fmt_time
from automation.workbook.textsize import rows_points

PROBLEM_COLUMNS: tuple[tuple[str, float, str], ...] = (
    ("接收时间", 16, "center"), ("单位", 14, "text"), ("文件", 24, "text"), ("工作表", 12, "text"),
    ("单元格", 8, "center"), ("序号", 6, "center"), ("字段", 14, "text"), ("级别", 8, "center"),
    ("问题说明", 50, "text"),
)


def problem_rows(ledger: Ledger, batch_id: int) -> list[list[Any]]:
    """Rows of 问题清单: every problem of the batch's files, and every quarantined file's reason."""
    items: list[tuple[str, int, int, list[Any]]] = []
    for row in ledger.problems(batch_id):
        p = row.problem
        items.append((row.received_at, row.submission_id, row.id, [
            fmt_time(row.received_at), row.unit or "（未识别）", row.file_name, p.sheet or "", p.cell or "",
            p.task_number if p.task_number is not None else "", FIELD_NAMES.get(p.field or "", p.field or ""),
            SEVERITY_NAMES.get(p.severity, p.severity), p.message,
        ]))
    for sid, received_at, file_name, reason, unit in ledger.quarantined_files(batch_id):
        items.append((received_at, sid, -1, [
            fmt_time(received_at), unit or "（未识别）", file_name, "", "", "", "", QUARANTINED, reason or "文件已隔离",
        ]))
    items.sort(key=lambda x: (x[0], x[1], x[2]))
    return [row for *_k, row in items]


def write_problems_sheet(ws: Worksheet, st: Styles, snap: Snapshot, ledger: Ledger) -> None:
    header_columns(ws, st, PROBLEM_COLUMNS)
    ws.set_row(0, 24)
    rows = problem_rows(ledger, snap.batch.id)
    widths = [w for _l, w, _k in PROBLEM_COLUMNS]
    formats = [getattr(st, k) for _l, _w, k in PROBLEM_COLUMNS]
    for i, values in enumerate(rows, start=1):
        texts = [v if isinstance(v, str) else "" for v in values]
        ws.set_row(i, rows_points(list(zip(texts, widths, strict=True))))
        for col, v in enumerate(values):
            if isinstance(v, int):
                ws.write_number(i, col, v, formats[col])
            else:
                ws.write_string(i, col, v, formats[col])
    if not rows:
        ws.write_string(1, 0, "暂未发现问题。", st.text)
    ws.freeze_panes(1, 0)
    ws.autofilter(0, 0, max(len(rows), 1), len(PROBLEM_COLUMNS) - 1)
    print_setup(ws, snap, SHEET_PROBLEMS, 0)
