"""The consolidated report (汇总表): what the office hands its leaders, one module per sheet.

1. 落实情况汇总 (:mod:`.summary_sheet`) — the original task table with 落实情况 derived from the units'
   answers (each lead unit's own answer first, then ``推进中（已完成 14/21，未报 3）``) and 未完成单位;
   above it the status counts and two native charts;
2. 单位进度 (:mod:`.units_sheet`) — one row per unit, worst first, red/yellow/green;
3. 任务×单位 (:mod:`.matrix_sheet`) — the status matrix with conditional colours and frozen headers;
4. 进展明细 (:mod:`.detail_sheet`) — every assignment's current answer;
5. 问题清单 (:mod:`.problems_sheet`) — every problem found in collection, and every quarantined file;
6. 提交记录 (:mod:`.history_sheet`) — every response received: when, unit, task, old → new status, file;

and, for a batch with reporting rounds (``[rounds]``), 各期进度 (:mod:`.rounds_sheet`) after 单位进度 —
completion over the rounds by unit kind (a trend chart) and who reported in each round.

Every value is derived by :mod:`automation.progress.summary`, which ``status`` uses too.  Text from
units and task tables is never a formula or a link: the workbook is written with
``strings_to_formulas`` / ``strings_to_urls`` off and ``write_string``, and the rows of the three
sheets that grow with the batch (millions of cells at scale) as string cells through
:mod:`automation.workbook.xlsxbulk`.  The whole report reads the ledger inside one read
transaction, so a ``collect`` running at the same time never makes the sheets disagree.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xlsxwriter

from automation import clock
from automation.config import Config
from automation.errors import InputError
from automation.fsutil import atomic_path
from automation.ledger import Ledger
from automation.progress.report.detail_sheet import render_detail_rows, write_detail_sheet
from automation.progress.report.history_sheet import write_history_sheet
from automation.progress.report.matrix_sheet import write_matrix_sheet
from automation.progress.report.problems_sheet import problem_rows, write_problems_sheet
from automation.progress.report.styles import (
    SHEET_DETAIL,
    SHEET_HISTORY,
    SHEET_MATRIX,
    SHEET_PROBLEMS,
    SHEET_ROUNDS,
    SHEET_SUMMARY,
    SHEET_UNITS,
    SHEETS,
    Styles,
)
from automation.progress.report.summary_sheet import write_summary_sheet
from automation.progress.report.units_sheet import write_units_sheet
from automation.progress.summary import Snapshot, load_snapshot
from automation.workbook.xlsxbulk import BulkSheet, splice
from automation.workspace import Workspace

__all__ = ["SHEETS", "ReportInfo", "build_report", "create_report", "default_report_path", "latest_report_path",
           "render_detail_rows", "problem_rows"]


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
    return Workspace(config.workspace).report_path(batch_title, now)


def latest_report_path(config: Config, batch_title: str) -> Path:
    """``<workspace>/reports/<batch title>_汇总表_最新.xlsx``: the copy ``automation run`` keeps
    current (overwritten atomically), so the reports folder does not grow with every poll."""
    return Workspace(config.workspace).latest_report_path(batch_title)


def build_report(config: Config, ledger: Ledger, now: dt.datetime, out: Path | None = None) -> Path:
    """Write the consolidated report (atomically) and return its path."""
    return create_report(config, ledger, now, out).path


def create_report(config: Config, ledger: Ledger, now: dt.datetime, out: Path | None = None) -> ReportInfo:
    """:func:`build_report` that also returns the snapshot it was built from (for the CLI summary).

    ``out`` in a folder that does not exist is refused (a mistyped path should not grow folders);
    the default path is in the workspace's reports folder, which is created.
    """
    if out is not None and not Path(out).parent.is_dir():
        raise InputError(f"{Path(out).parent}：文件夹不存在。请先建立该文件夹，或把 --out 指向已有的文件夹。")
    with ledger.reading():
        snap = load_snapshot(config, ledger, now)
        target = Path(out) if out else default_report_path(config, snap.batch.title, now)
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".tmp-report-", dir=target.parent) as tmpdir:
            staging = Path(tmpdir) / "xlsxwriter.xlsx"
            bulk = _write_workbook(staging, snap, ledger)
            with atomic_path(target) as tmp:
                splice(staging, tmp, bulk)
    return ReportInfo(target, snap)


def _write_workbook(path: Path, snap: Snapshot, ledger: Ledger) -> list[BulkSheet]:
    """The XlsxWriter package with every sheet's frame; the bulk sheets' rows are spliced in after."""
    wb = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False, "strings_to_urls": False,
                                         "strings_to_numbers": False})
    # "created" is the report's own time, not the wall clock: the same ledger and time give the same file.
    wb.set_properties({"title": f"{snap.batch.title}落实情况汇总表", "comments": "由 duban automation report 生成",
                       "created": clock.local(snap.now).astimezone(dt.UTC).replace(tzinfo=None)})
    st = Styles(wb)
    summary_ws = wb.add_worksheet(SHEET_SUMMARY)
    write_units_sheet(wb.add_worksheet(SHEET_UNITS), st, snap)
    if snap.periodic:
        from automation.progress.periods import round_progress
        from automation.progress.report.rounds_sheet import write_rounds_sheet

        write_rounds_sheet(wb, wb.add_worksheet(SHEET_ROUNDS), st, snap, round_progress(ledger, snap))
    bulk = [
        write_matrix_sheet(wb.add_worksheet(SHEET_MATRIX), st, snap),
        write_detail_sheet(wb.add_worksheet(SHEET_DETAIL), st, snap, ledger),
    ]
    write_problems_sheet(wb.add_worksheet(SHEET_PROBLEMS), st, snap, ledger)
    bulk.append(write_history_sheet(wb.add_worksheet(SHEET_HISTORY), st, snap, ledger))
    write_summary_sheet(wb, summary_ws, st, snap)   # last: its charts refer to the units sheet
    summary_ws.activate()
    wb.close()
    return bulk
