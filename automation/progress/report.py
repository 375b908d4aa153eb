"""The consolidated report (汇总表) and ``automation status``.

Stage 6 of the loop: what the office hands its leaders.  One workbook, six sheets:

1. 落实情况汇总 — the original task table (section and subsection heading rows, 工作任务, 工作要求,
   牵头单位, 责任单位) with 落实情况 derived from the units' answers (each lead unit's own answer
   first, then ``推进中（已完成 14/21，未报 3）``) and 未完成单位; above it the status counts and two
   native charts (completion by unit, status distribution);
2. 单位进度 — one row per unit, worst first, red/yellow/green;
3. 任务×单位 — the status matrix with conditional colours and frozen headers;
4. 进展明细 — every assignment's current answer;
5. 问题清单 — every problem found in collection, and every quarantined file;
6. 提交记录 — every response received: when, unit, task, old → new status, source file.

Every value is derived by :mod:`automation.progress.summary`, which ``status`` uses too.  Text from
units and task tables is never a formula or a link: the workbook is written with
``strings_to_formulas`` / ``strings_to_urls`` off and ``write_string``, and the rows of the three
sheets that grow with the batch (millions of cells at scale) as string cells through
:mod:`automation.workbook.xlsxbulk`.
The whole report reads the ledger inside one read transaction, so a ``collect`` running at the
same time never makes the sheets disagree with each other.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xlsxwriter
from xlsxwriter.worksheet import Worksheet

from automation import clock
from automation.config import Config
from automation.fsutil import atomic_path, safe_filename
from automation.ledger import Ledger
from automation.progress.summary import (
    DONE,
    IN_PROGRESS,
    LEVEL_NAMES,
    NOT_APPLICABLE,
    NOT_STARTED,
    STATUSES,
    UNREPORTED,
    Snapshot,
    count_responses,
    effective_status,
    fmt_time,
    iter_current_answers,
    iter_history,
    load_snapshot,
    role_text,
    submission_files,
)
from automation.workbook.layout import DEFAULT_LAYOUT
from automation.workbook.xlsxbulk import BulkSheet, Inline, RowWriter, Shared, splice

__all__ = [
    "SHEETS", "ReportInfo", "build_report", "create_report", "status_summary", "default_report_path",
    "assignment_json", "ASSIGNMENT_KEYS", "render_detail_rows", "text_lines", "row_height", "read_transaction",
]

SHEET_SUMMARY, SHEET_UNITS, SHEET_MATRIX, SHEET_DETAIL, SHEET_PROBLEMS, SHEET_HISTORY = SHEETS = (
    "落实情况汇总", "单位进度", "任务×单位", "进展明细", "问题清单", "提交记录",
)

#: The per-assignment keys of ``automation status --json`` (issue 4 §7), in this order.
ASSIGNMENT_KEYS = ("unit", "task", "role", "status", "progress", "completed_on", "evidence", "problems",
                   "submitted_at")

#: How many units the completion chart shows at most (the worst ones, in 单位进度 order).
CHART_UNITS = 40

# Fill and font colours: Excel's own good / neutral / bad, plus orange and grey.
STATUS_COLOURS = {
    DONE: ("#C6EFCE", "#006100"),
    IN_PROGRESS: ("#FFEB9C", "#9C5700"),
    NOT_STARTED: ("#F8CBAD", "#843C0C"),
    NOT_APPLICABLE: ("#E7E6E6", "#595959"),
    UNREPORTED: ("#FFC7CE", "#9C0006"),
}
CHART_COLOURS = {DONE: "#70AD47", IN_PROGRESS: "#FFC000", NOT_STARTED: "#ED7D31", NOT_APPLICABLE: "#A5A5A5",
                 UNREPORTED: "#C00000"}
LEVEL_COLOURS = {"red": STATUS_COLOURS[UNREPORTED], "yellow": STATUS_COLOURS[IN_PROGRESS],
                 "green": STATUS_COLOURS[DONE]}
HEADLINE_LEVEL = {DONE: "green", NOT_APPLICABLE: "green", IN_PROGRESS: "yellow", NOT_STARTED: "red",
                  UNREPORTED: "red"}

SEVERITY_NAMES = {"error": "错误", "warning": "警告", "info": "提示"}
QUARANTINED = "已隔离"
FIELD_NAMES = {c.key: c.header for c in DEFAULT_LAYOUT.columns}

FONT = "宋体"
LINE_PT = 15.0          # one wrapped line of 10 pt CJK text (Noto CJK, SimSun) with leading
MAX_ROW_PT = 409.0      # Excel's limit


# --------------------------------------------------------------------------- public API


@dataclass(frozen=True)
class ReportInfo:
    path: Path
    snapshot: Snapshot

    def to_json(self) -> dict[str, Any]:
        s = self.snapshot
        return {"path": str(self.path), "batch": s.batch.title, "tasks": len(s.tasks), "units": len(s.units),
                "assignments": s.overall.assigned, "completion": round(s.overall.completion, 4)}


def default_report_path(config: Config, batch_title: str, now: dt.datetime) -> Path:
    """``<workspace>/reports/<batch title>_汇总表_<yyyymmdd-HHMM>.xlsx`` (Shanghai time)."""
    stamp = clock.local(now).strftime("%Y%m%d-%H%M")
    return config.workspace / "reports" / safe_filename(f"{batch_title}_汇总表_{stamp}.xlsx", max_len=120)


def latest_report_path(config: Config, batch_title: str) -> Path:
    """``<workspace>/reports/<batch title>_汇总表_最新.xlsx``: the copy ``automation run`` keeps
    current (overwritten atomically), so the reports folder does not grow with every poll."""
    return config.workspace / "reports" / safe_filename(f"{batch_title}_汇总表_最新.xlsx", max_len=120)


def build_report(config: Config, ledger: Ledger, now: dt.datetime, out: Path | None = None) -> Path:
    """Write the consolidated report (atomically) and return its path."""
    return create_report(config, ledger, now, out).path


def create_report(config: Config, ledger: Ledger, now: dt.datetime, out: Path | None = None) -> ReportInfo:
    """:func:`build_report` that also returns the snapshot it was built from (for the CLI summary)."""
    with read_transaction(ledger):
        snap = load_snapshot(config, ledger, now)
        target = Path(out) if out else default_report_path(config, snap.batch.title, now)
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".tmp-report-", dir=target.parent) as tmpdir:
            staging = Path(tmpdir) / "xlsxwriter.xlsx"
            bulk = _write_workbook(staging, snap, ledger)
            with atomic_path(target) as tmp:
                splice(staging, tmp, bulk)
    return ReportInfo(target, snap)


def assignment_json(row: dict[str, Any]) -> dict[str, Any]:
    """One ledger current-answer row as the ``status --json`` object (exactly :data:`ASSIGNMENT_KEYS`).

    ``problems`` is the unit's own 存在问题及下步打算 text; the problems found in collection are in the
    report's 问题清单.
    """
    return {
        "unit": row["unit"], "task": row["task"], "role": row["role"], "status": effective_status(row["status"]),
        "progress": row["progress"] or "", "completed_on": row["completed_on"], "evidence": row["evidence"] or "",
        "problems": row["issues"] or "", "submitted_at": row["submitted_at"],
    }


def status_summary(config: Config, ledger: Ledger, now: dt.datetime) -> dict[str, Any]:
    """The ``automation status --json`` object: batch, deadline, working days left, completion, per-task
    lines, per-unit counts (worst first) and every assignment's current answer."""
    with read_transaction(ledger):
        snap = load_snapshot(config, ledger, now)
        assignments = [assignment_json(r) for r in ledger.current_answers(snap.batch.id)]
    info = snap.deadline
    return {
        "batch": snap.batch.title,
        "deadline": info.deadline.isoformat(),
        "now": clock.iso(now),
        "days_left": info.days_left,
        "deadline_passed": info.passed,
        "completion": round(snap.overall.completion, 4),
        "counts": snap.overall.to_json(),
        "tasks": [
            {"task": t.number, "title": t.title, "status": r.headline, "summary": r.summary, "text": r.text(),
             "done": r.counts.done, "applicable": r.counts.applicable, "unreported": r.counts.unreported,
             "unfinished_units": r.unfinished_units()}
            for t in snap.tasks for r in [snap.rollups[t.number]]
        ],
        "units": [u.to_json() for u in snap.units],
        "assignments": assignments,
    }


@contextmanager
def read_transaction(ledger: Ledger) -> Iterator[None]:
    """One consistent view of the ledger (WAL snapshot) for every query of a report."""
    if ledger.conn.in_transaction:
        yield
        return
    ledger.execute("BEGIN")
    try:
        yield
    finally:
        ledger.execute("COMMIT")


# --------------------------------------------------------------------------- layout helpers


def text_lines(text: str, width: float) -> int:
    """Wrapped lines of ``text`` in a column ``width`` characters wide.

    A CJK character is two width units, ASCII one: ``(utf-8 bytes + chars) / 2`` gives exactly
    that (3-byte CJK → 2, 1-byte ASCII → 1) without a per-character loop (this runs for every
    cell of the detail sheets).
    """
    per_line = 2 * max(width - 1.5, 1.0)
    if "\n" not in text:
        return max(1, -int(-(len(text.encode("utf-8")) + len(text)) // per_line))
    return sum(max(1, -int(-(len(p.encode("utf-8")) + len(p)) // per_line)) for p in text.split("\n"))


def row_height(cells: Sequence[tuple[str | None, float]], min_lines: int = 1) -> float:
    """Row height in points for wrapped cells (text, column width), so nothing is cut off."""
    lines = min_lines
    for text, width in cells:
        if text:
            n = text_lines(text, width)
            if n > lines:
                lines = n
    return min(MAX_ROW_PT, lines * LINE_PT + 3)


def _header_footer(ws: Worksheet, batch_title: str, sheet: str, now: dt.datetime) -> None:
    def esc(s: str) -> str:
        return s.replace("&", "&&")[:80]

    # "&9" is a font size: the space after it keeps a title starting with digits (2021年…) out of it.
    ws.set_header(f"&L&9 {esc(batch_title)}&C&9 {esc(sheet)}&R&9 统计时间 {clock.local(now):%Y-%m-%d %H:%M}")
    ws.set_footer("&C&9第 &P 页，共 &N 页")


def _print_setup(ws: Worksheet, snap: Snapshot, sheet: str, header_row: int | None, fit_width: bool = True,
                 repeat_cols: tuple[int, int] | None = None) -> None:
    ws.set_paper(9)             # A4
    ws.set_landscape()
    ws.set_margins(left=0.4, right=0.4, top=0.7, bottom=0.6)
    _header_footer(ws, snap.batch.title, sheet, snap.now)
    if header_row is not None:
        ws.repeat_rows(header_row)
    if repeat_cols:
        ws.repeat_columns(*repeat_cols)
    if fit_width:
        ws.fit_to_pages(1, 0)


class _Styles:
    """Every cell format of the report, created once."""

    def __init__(self, wb: xlsxwriter.Workbook) -> None:
        base = {"font_name": FONT, "font_size": 10}
        cell = {**base, "border": 1, "valign": "top", "text_wrap": True}
        self.wb = wb
        self.title = wb.add_format({"font_name": "黑体", "font_size": 16, "bold": True, "align": "center",
                                    "valign": "vcenter"})
        self.meta = wb.add_format({**base, "valign": "vcenter", "text_wrap": True})
        self.header = wb.add_format({**base, "bold": True, "bg_color": "#D9E1F2", "border": 1, "align": "center",
                                     "valign": "vcenter", "text_wrap": True})
        self.header_vertical = wb.add_format({**base, "bold": True, "bg_color": "#D9E1F2", "border": 1,
                                              "align": "center", "valign": "top", "rotation": 270})
        self.section = wb.add_format({"font_name": "黑体", "font_size": 11, "bold": True, "bg_color": "#EDEDED",
                                      "border": 1, "valign": "vcenter", "text_wrap": True})
        self.subsection = wb.add_format({"font_name": "楷体", "font_size": 11, "bold": True, "bg_color": "#F5F5F5",
                                         "border": 1, "valign": "vcenter", "text_wrap": True})
        self.text = wb.add_format(cell)
        self.center = wb.add_format({**cell, "align": "center"})
        self.int = wb.add_format({**cell, "align": "center", "num_format": "0"})
        self.pct = wb.add_format({**cell, "align": "center", "num_format": "0.0%"})
        self.bold_text = wb.add_format({**cell, "bold": True})
        self.status_cell = wb.add_format({**cell, "font_size": 9, "align": "center", "valign": "vcenter",
                                          "text_wrap": False})
        self.headline = {lvl: wb.add_format({**cell, "bg_color": bg, "font_color": fg})
                         for lvl, (bg, fg) in LEVEL_COLOURS.items()}
        self.level = {
            lvl: {kind: wb.add_format({**cell, "bg_color": bg, **extra})
                  for kind, extra in (("text", {}), ("center", {"align": "center"}),
                                      ("pct", {"align": "center", "num_format": "0.0%"}))}
            for lvl, (bg, _fg) in LEVEL_COLOURS.items()
        }
        self.status_dxf = {s: wb.add_format({"bg_color": bg, "font_color": fg})
                           for s, (bg, fg) in STATUS_COLOURS.items()}

    def status_rules(self, ws: Worksheet, first_row: int, first_col: int, last_row: int, last_col: int) -> None:
        """Conditional colours for cells holding a status."""
        if last_row < first_row or last_col < first_col:
            return
        for status, fmt in self.status_dxf.items():
            ws.conditional_format(first_row, first_col, last_row, last_col,
                                  {"type": "cell", "criteria": "==", "value": f'"{status}"', "format": fmt})


def _px(width: float) -> int:
    """Excel column width (characters) → pixels, as Excel and XlsxWriter compute it."""
    return int(width * 7 + 5) if width >= 1 else int(width * 12 + 0.5)


def _write_workbook(path: Path, snap: Snapshot, ledger: Ledger) -> list[BulkSheet]:
    wb = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False, "strings_to_urls": False,
                                         "strings_to_numbers": False})
    # "created" is the report's own time, not the wall clock: the same ledger and time give the same file.
    wb.set_properties({"title": f"{snap.batch.title}落实情况汇总表", "comments": "由 duban automation report 生成",
                       "created": clock.local(snap.now).astimezone(dt.UTC).replace(tzinfo=None)})
    st = _Styles(wb)
    summary_ws = wb.add_worksheet(SHEET_SUMMARY)
    _units_sheet(wb.add_worksheet(SHEET_UNITS), st, snap)
    bulk = [
        _matrix_sheet(wb.add_worksheet(SHEET_MATRIX), st, snap),
        _detail_sheet(wb.add_worksheet(SHEET_DETAIL), st, snap, ledger),
    ]
    _problems_sheet(wb.add_worksheet(SHEET_PROBLEMS), st, snap, ledger)
    bulk.append(_history_sheet(wb.add_worksheet(SHEET_HISTORY), st, snap, ledger))
    _summary_sheet(wb, summary_ws, st, snap)
    summary_ws.activate()
    wb.close()
    return bulk


# --------------------------------------------------------------------------- 1 落实情况汇总


def _party_text(names: Sequence[str], notes: dict[str, str]) -> str:
    return "、".join(f"{n}（{notes[n]}）" if notes.get(n) else n for n in names)


def _summary_sheet(wb: xlsxwriter.Workbook, ws: Worksheet, st: _Styles, snap: Snapshot) -> None:
    has_deadline = any(t.deadline for t in snap.tasks)
    columns: list[tuple[str, float]] = [("工作任务", 30), ("工作要求", 44)]
    if has_deadline:
        columns.append(("完成时限", 12))
    columns += [("牵头单位", 14), ("责任单位", 18), ("落实情况", 44), ("未完成单位", 30)]
    last_col = len(columns) - 1
    for i, (_label, width) in enumerate(columns):
        ws.set_column(i, i, width)

    info, overall = snap.deadline, snap.overall
    ws.set_row(0, 30)
    ws.merge_range(0, 0, 0, last_col, f"{snap.batch.title}落实情况汇总表", st.title)
    meta = (f"统计时间：{clock.local(snap.now):%Y-%m-%d %H:%M}　　报送截止：{info.deadline:%Y-%m-%d}（{info.text()}）"
            f"　　整体完成率：{overall.completion:.1%}（已完成 {overall.done} 条 / 应完成 {overall.applicable} 条，"
            f"共 {len(snap.tasks)} 项任务、{len(snap.units)} 个单位、{overall.assigned} 条分工）")
    ws.set_row(1, 22)
    ws.merge_range(1, 0, 1, last_col, meta, st.meta)

    # Status counts: the doughnut's data, and readable on paper without colour.
    task_counts = snap.task_counts()
    ws.write_string(2, 0, "落实情况", st.header)
    ws.write_string(2, 1, "单位分工（条）", st.header)
    ws.write_string(2, 2, "占比", st.header)
    ws.write_string(2, 3, "任务（项）", st.header)
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

    # Charts below the counts.
    chart_row, chart_rows, row_pt = total_row + 2, 13, 20
    chart_h = int(chart_rows * row_pt * 96 / 72) - 10
    for r in range(chart_row, chart_row + chart_rows):
        ws.set_row(r, row_pt)
    table_px = sum(_px(w) for _l, w in columns)
    left_px = _px(columns[0][1]) + _px(columns[1][1])
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

    shown = min(len(snap.units), CHART_UNITS)
    if shown:                       # (a chart without a series is an error in Excel)
        bar = wb.add_chart({"type": "column"})
        bar.add_series({
            "name": "完成率",
            "categories": [SHEET_UNITS, 3, 1, 2 + shown, 1],
            "values": [SHEET_UNITS, 3, 10, 2 + shown, 10],
            "fill": {"color": CHART_COLOURS[DONE]},
            "gap": 60,
        })
        part = f"（完成率最低的 {shown} 个单位）" if len(snap.units) > shown else "（由低到高）"
        bar.set_title({"name": f"各单位完成率{part}", "name_font": {"size": 11, "bold": True}})
        bar.set_legend({"none": True})
        bar.set_y_axis({"min": 0, "max": 1, "major_unit": 0.2, "num_format": "0%", "num_font": {"size": 9},
                        "major_gridlines": {"visible": True, "line": {"color": "#D9D9D9"}}})
        bar.set_x_axis({"num_font": {"size": 8, "rotation": -90 if shown > 12 else 0}})
        bar.set_size({"width": table_px - left_px - 10, "height": chart_h})
        ws.insert_chart(chart_row, 2, bar, {"x_offset": 4, "y_offset": 4, "object_position": 3})

    # The table in the original layout.
    header_row = chart_row + chart_rows + 1
    ws.set_row(header_row, 24)
    for i, (label, _w) in enumerate(columns):
        ws.write_string(header_row, i, label, st.header)
    widths = [w for _l, w in columns]
    row = header_row + 1
    section: Any = object()
    subsection: Any = object()
    for t in snap.tasks:
        if t.section != section:
            section, subsection = t.section, object()
            if t.section:
                text = f"{t.section}、{t.section_title}" if t.section_title else t.section
                ws.set_row(row, row_height([(text, sum(widths))], 1) + 2)
                ws.merge_range(row, 0, row, last_col, text, st.section)
                row += 1
        if t.subsection != subsection:
            subsection = t.subsection
            if t.subsection:
                text = f"{t.subsection}{t.subsection_title or ''}"
                ws.set_row(row, row_height([(text, sum(widths))], 1) + 2)
                ws.merge_range(row, 0, row, last_col, text, st.subsection)
                row += 1
        r = snap.rollups[t.number]
        values = [f"{t.number}.{t.title}", t.requirement]
        if has_deadline:
            values.append(t.deadline or "")
        values += [_party_text(t.lead, t.unit_notes), _party_text(t.responsible, t.unit_notes), r.text(),
                   r.unfinished_text(snap.groups)]
        ws.set_row(row, row_height(list(zip(values, widths, strict=True))))
        for col, value in enumerate(values):
            fmt = st.headline[HEADLINE_LEVEL.get(r.headline, "red")] if col == last_col - 1 else st.text
            ws.write_string(row, col, value, fmt)
        row += 1
    _print_setup(ws, snap, SHEET_SUMMARY, header_row)


# --------------------------------------------------------------------------- 2 单位进度

UNIT_COLUMNS: tuple[tuple[str, float], ...] = (
    ("序号", 5), ("单位", 20), ("类别", 14), ("承担任务", 7), ("已报送", 7), ("已完成", 7), ("推进中", 7),
    ("未启动", 7), ("不适用", 7), ("未填报", 7), ("完成率", 8), ("最近报送", 16), ("催办次数", 7),
    ("逾期工作日", 8), ("预警", 6),
)


def _units_sheet(ws: Worksheet, st: _Styles, snap: Snapshot) -> None:
    last_col = len(UNIT_COLUMNS) - 1
    for i, (_label, width) in enumerate(UNIT_COLUMNS):
        ws.set_column(i, i, width)
    ws.set_row(0, 30)
    ws.merge_range(0, 0, 0, last_col, f"{snap.batch.title}各单位进度", st.title)
    info = snap.deadline
    ws.set_row(1, 36)
    ws.merge_range(1, 0, 1, last_col,
                   f"统计时间：{clock.local(snap.now):%Y-%m-%d %H:%M}　　报送截止：{info.deadline:%Y-%m-%d}"
                   f"（{info.text()}）　　按进度由差到好排列。\n预警：红 = 已逾期仍未完成，或尚未报送任何内容；"
                   "黄 = 已报送、尚未全部完成；绿 = 全部完成（已完成或不适用）。完成率 = 已完成 ÷（承担任务 − 不适用）。",
                   st.meta)
    ws.set_row(2, 30)
    for i, (label, _w) in enumerate(UNIT_COLUMNS):
        ws.write_string(2, i, label, st.header)
    for i, u in enumerate(snap.units):
        row = 3 + i
        f = st.level[u.level]
        c = u.counts
        ws.write_number(row, 0, i + 1, f["center"])
        ws.write_string(row, 1, u.name, f["text"])
        ws.write_string(row, 2, u.kind, f["text"])
        for col, n in enumerate((c.assigned, c.reported, c.done, c[IN_PROGRESS], c[NOT_STARTED],
                                 c[NOT_APPLICABLE], c.unreported), start=3):
            ws.write_number(row, col, n, f["center"])
        ws.write_number(row, 10, c.completion, f["pct"])
        ws.write_string(row, 11, fmt_time(u.last_submission), f["center"])
        ws.write_number(row, 12, u.reminders, f["center"])
        if u.overdue:
            ws.write_number(row, 13, u.overdue_workdays, f["center"])
        else:
            ws.write_blank(row, 13, None, f["center"])
        ws.write_string(row, 14, LEVEL_NAMES[u.level], f["center"])
    ws.freeze_panes(3, 2)
    ws.autofilter(2, 0, 2 + len(snap.units), last_col)
    _print_setup(ws, snap, SHEET_UNITS, 2)


# --------------------------------------------------------------------------- 3 任务×单位


def _matrix_sheet(ws: Worksheet, st: _Styles, snap: Snapshot) -> BulkSheet:
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
    _print_setup(ws, snap, SHEET_MATRIX, 0, fit_width=len(units) <= CHART_UNITS, repeat_cols=(0, 1))

    def produce(w: RowWriter) -> None:
        statuses = {s: w.memo(s) for s in STATUSES}
        for t in snap.tasks:
            cells = snap.matrix.get(t.number, {})
            summary = snap.rollups[t.number].summary
            values: list[Any] = [t.number, t.title, summary]
            values += [statuses[cells[uid]] if uid in cells else None for uid, _n in units]
            w.row(values, row_height([(t.title, fixed[1][1]), (summary, fixed[2][1])]))

    return BulkSheet(SHEET_MATRIX, 1, len(snap.tasks), first + len(units), produce)


# --------------------------------------------------------------------------- 4 进展明细

DETAIL_COLUMNS: tuple[tuple[str, float, str], ...] = (
    ("序号", 5, "int"), ("工作任务", 22, "text"), ("单位", 14, "text"), ("角色", 10, "text"),
    ("落实情况", 8, "center"), ("工作进展及成效", 40, "text"), ("完成时间", 11, "center"),
    ("佐证材料", 18, "text"), ("存在问题及下步打算", 26, "text"), ("来源文件", 18, "text"),
    ("接收时间", 16, "center"),
)


def _columns(ws: Worksheet, st: _Styles, columns: Sequence[tuple[str, float, str]]) -> None:
    for i, (label, width, kind) in enumerate(columns):
        ws.set_column(i, i, width, getattr(st, kind))
        ws.write_string(0, i, label, st.header)


def _detail_sheet(ws: Worksheet, st: _Styles, snap: Snapshot, ledger: Ledger) -> BulkSheet:
    _columns(ws, st, DETAIL_COLUMNS)
    ws.set_row(0, 30)
    n = snap.overall.assigned
    st.status_rules(ws, 1, 4, n, 4)
    ws.freeze_panes(1, 3)
    ws.autofilter(0, 0, max(n, 1), len(DETAIL_COLUMNS) - 1)
    _print_setup(ws, snap, SHEET_DETAIL, 0)
    titles = {t.number: t.title for t in snap.tasks}

    def produce(w: RowWriter) -> None:
        render_detail_rows(iter_current_answers(ledger, snap.batch.id), titles, w)

    return BulkSheet(SHEET_DETAIL, 1, n, len(DETAIL_COLUMNS), produce)


def _inline(w: RowWriter, text: str, width: float) -> tuple[Inline, int]:
    """A unique text as an inline string, and its wrapped line count.

    The count reuses the encoded length (see :func:`text_lines`), so each long text is encoded
    once; the ``<t>`` tag and any escape (``&amp;``) only make the estimate a little generous.
    """
    data = w.inline(text)
    if "\n" in text:
        return data, text_lines(text, width)
    return data, max(1, -int(-(len(data) - 7 + len(text)) // (2 * max(width - 1.5, 1.0))))


def render_detail_rows(rows: Iterable[Sequence[Any]], titles: dict[int, str], w: RowWriter) -> None:
    """Write the 进展明细 body: one row per :data:`~automation.progress.summary.CURRENT_COLUMNS` tuple.

    Values that repeat on many rows are shared strings, escaped and measured once (this loop
    runs once per assignment: 200,000 times at scale).
    """
    widths = {label: width for label, width, _kind in DETAIL_COLUMNS}
    w_title, w_unit, w_role, w_progress, w_evidence, w_issues, w_source = (widths[k] for k in (
        "工作任务", "单位", "角色", "工作进展及成效", "佐证材料", "存在问题及下步打算", "来源文件"))
    memo, row, lines = w.memo, w.row, text_lines
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
            min(MAX_ROW_PT, n * LINE_PT + 3))


# --------------------------------------------------------------------------- 5 问题清单

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
    quarantined = ledger.execute(
        "SELECT s.id, s.received_at, s.file_name, s.reason, u.name AS unit FROM submissions s "
        "LEFT JOIN units u ON u.id = s.unit_id WHERE s.outcome = 'quarantined' "
        "AND (s.batch_id = ? OR s.batch_id IS NULL)", (batch_id,))
    for q in quarantined:
        items.append((q["received_at"], q["id"], -1, [
            fmt_time(q["received_at"]), q["unit"] or "（未识别）", q["file_name"], "", "", "", "", QUARANTINED,
            q["reason"] or "文件已隔离",
        ]))
    items.sort(key=lambda x: (x[0], x[1], x[2]))
    return [row for *_k, row in items]


def _problems_sheet(ws: Worksheet, st: _Styles, snap: Snapshot, ledger: Ledger) -> None:
    _columns(ws, st, PROBLEM_COLUMNS)
    ws.set_row(0, 24)
    rows = problem_rows(ledger, snap.batch.id)
    widths = [w for _l, w, _k in PROBLEM_COLUMNS]
    formats = [getattr(st, k) for _l, _w, k in PROBLEM_COLUMNS]
    for i, values in enumerate(rows, start=1):
        texts = [v if isinstance(v, str) else "" for v in values]
        ws.set_row(i, row_height(list(zip(texts, widths, strict=True))))
        for col, v in enumerate(values):
            if isinstance(v, int):
                ws.write_number(i, col, v, formats[col])
            else:
                ws.write_string(i, col, v, formats[col])
    if not rows:
        ws.write_string(1, 0, "暂未发现问题。", st.text)
    ws.freeze_panes(1, 0)
    ws.autofilter(0, 0, max(len(rows), 1), len(PROBLEM_COLUMNS) - 1)
    _print_setup(ws, snap, SHEET_PROBLEMS, 0)


# --------------------------------------------------------------------------- 6 提交记录

HISTORY_COLUMNS: tuple[tuple[str, float, str], ...] = (
    ("接收时间", 16, "center"), ("单位", 14, "text"), ("序号", 5, "int"), ("工作任务", 30, "text"),
    ("原状态", 8, "center"), ("新状态", 8, "center"), ("来源文件", 26, "text"),
)


def _history_sheet(ws: Worksheet, st: _Styles, snap: Snapshot, ledger: Ledger) -> BulkSheet:
    _columns(ws, st, HISTORY_COLUMNS)
    ws.set_row(0, 24)
    n = count_responses(ledger, snap.batch.id)
    st.status_rules(ws, 1, 4, n, 5)
    ws.freeze_panes(1, 0)
    ws.autofilter(0, 0, max(n, 1), len(HISTORY_COLUMNS) - 1)
    _print_setup(ws, snap, SHEET_HISTORY, 0)
    widths = {label: width for label, width, _kind in HISTORY_COLUMNS}
    w_unit, w_title, w_source = widths["单位"], widths["工作任务"], widths["来源文件"]
    unit_names = {u.id: u.name for u in ledger.units(active_only=False)}
    files = submission_files(ledger, snap.batch.id)

    def produce(w: RowWriter) -> None:
        memo, row, lines = w.memo, w.row, text_lines
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
                min(MAX_ROW_PT, max(n, u[1], f[1]) * LINE_PT + 3))

    return BulkSheet(SHEET_HISTORY, 1, n, len(HISTORY_COLUMNS), produce)

