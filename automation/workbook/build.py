"""Assignment workbooks: one per unit, written with xlsxwriter from the office's layout.

Stage 3 of the loop.  The unit's contact only ever sees this file, in WPS, Excel or
LibreOffice, so it must be obvious what to fill, impossible to damage the task text by accident,
print cleanly on A4, and come back in a form the collector can trust:

- task columns locked, every fill-in cell (blank and date cells included) explicitly unlocked,
  the sheet protected without a password but allowing selection, row/column resizing and
  filtering; dropdowns read from a range on a hidden sheet (an inline list over 255 characters
  silently produces no validation in Excel); an input message on every fill-in column;
- print-ready: A4 landscape, one page wide, header row repeated, page x of y in the footer, row
  heights estimated from the wrapped length of the Chinese text because no client autofits
  rows of wrapped text written by a library;
- a very hidden metadata sheet signed with the batch secret (:mod:`automation.workbook.layout`), so a
  renamed or re-saved file is still tied to its unit and batch and a forged one is detected;
- text from task tables and units is always written with ``write_string`` and the writer has
  ``strings_to_formulas``/``strings_to_urls`` off: it never becomes a live formula or link.

Many units are built in worker processes (the work is CPU-bound XML and zlib); the ledger is
only touched in the calling process, in one transaction after the files are written.
"""

from __future__ import annotations

import builtins
import datetime as dt
import io
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from automation import clock
from automation.config import Config, Office
from automation.errors import InputError
from automation.fsutil import atomic_write_bytes, safe_filename, sha256_bytes
from automation.ledger import Ledger
from automation.model import Batch
from automation.units import Registry
from automation.workbook.layout import (
    CONTACT_LABEL,
    HEADER_ROW,
    HELP_SHEET,
    LISTS_SHEET,
    META_KEYS,
    META_MAGIC,
    META_SHEET,
    PHONE_LABEL,
    SIGNATURE_KEY,
    TASK_SHEET,
    Layout,
    sign,
)

__all__ = [
    "BuiltWorkbook",
    "build_workbooks",
    "build_unit_workbook",
    "workbook_filename",
    "render_workbook",
    "WorkbookJob",
    "BuildContext",
    "estimate_lines",
    "metadata",
]

_FILENAME_MAX = 80
_MIN_PARALLEL = 6          # below this many workbooks a process pool costs more than it saves
_MAX_ROW_HEIGHT = 409      # Excel's limit, in points
_HELP_WIDTH = 68           # 填报说明 column: fits A4 portrait unscaled, even in LibreOffice's wider fallback font
_DATE_FORMAT = "yyyy-mm-dd"
_TEXT_FORMAT = "@"         # typed phone numbers and 1/2 stay text instead of turning into numbers/dates
_VALID_DATES = (dt.date(2000, 1, 1), dt.date(2099, 12, 31))


@dataclass
class BuiltWorkbook:
    """One issued workbook: for whom, where, which tasks, and its content hash."""

    unit: str
    unit_id: int
    path: Path
    tasks: list[int]
    sha256: str

    def to_json(self) -> dict[str, Any]:
        return {"unit": self.unit, "unit_id": self.unit_id, "path": str(self.path), "tasks": list(self.tasks),
                "sha256": self.sha256}


@dataclass(frozen=True)
class BuildContext:
    """What every workbook of one build shares (sent once to each worker process)."""

    layout: Layout
    batch_title: str
    deadline: dt.date
    office: Office
    issued_at: dt.datetime


@dataclass(frozen=True)
class WorkbookJob:
    """One unit's workbook, as plain picklable data: rows, pre-filled answers, signed metadata."""

    unit: str
    unit_id: int
    rows: tuple[dict[str, Any], ...]   # task rows in sheet order (see _task_rows)
    contact: str
    phone: str
    meta: tuple[tuple[str, str], ...]  # META_KEYS + signature, in order
    path: str = ""
    tasks: tuple[int, ...] = field(default=())


# --------------------------------------------------------------------------- names


def workbook_filename(batch_title: str, unit_name: str) -> str:
    """``<batch title>_<unit>.xlsx``, safe on Windows, Chinese kept, at most 80 characters.

    When too long the batch title is shortened first, so the unit stays recognisable.
    """
    def clean(text: str) -> str:  # a slash in a title is text, not a directory
        return text.replace("/", "_").replace("\\", "_")

    unit = safe_filename(clean(unit_name), max_len=40, default="单位")
    room = _FILENAME_MAX - len(".xlsx") - len(unit) - 1
    title = safe_filename(clean(batch_title), max_len=max(room, 8), default="督办")
    return safe_filename(f"{title}_{unit}.xlsx", max_len=_FILENAME_MAX)


# --------------------------------------------------------------------------- text measurement


def estimate_lines(text: str, width: float, font_size: float = 10) -> int:
    """How many lines ``text`` wraps to in a column of xlsxwriter width ``width``.

    A column of width w is about 7·w pixels of text (the default font's digit is 7 px wide);
    a Chinese character (or Chinese punctuation, “” included) at s pt is s·4/3 px, Latin about
    half.  The UTF-8 length counts the wide characters without a Python loop per character
    (builds are many cells × many units).  Slightly pessimistic, because a row that is too tall
    costs a little paper and one that is too short hides text.
    """
    if not text:
        return 1
    font_px = font_size * 4 / 3
    usable = max(max(width * 7 - 2, 7) * 0.95 - font_px / 2, font_px)  # a wide char may not fit at a line end
    if len(text) * font_px <= usable and "\n" not in text:
        return 1
    lines = 0
    for paragraph in str(text).split("\n"):
        n = len(paragraph)
        wide = (len(paragraph.encode("utf-8")) - n) // 2
        px = wide * font_px + (n - wide) * font_px * 0.55
        lines += max(1, -int(-px // usable))
    return lines


def _row_height(lines: int, font_size: float) -> float:
    return min(_MAX_ROW_HEIGHT, round(lines * font_size * 1.4 + 6, 1))


# --------------------------------------------------------------------------- rendering


def _expand(text: str, values: dict[str, str]) -> str:
    """Replace known ``{placeholders}``; any other brace the office typed stays as it is."""
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


def _placeholders(ctx: BuildContext, unit: str) -> dict[str, str]:
    layout = ctx.layout
    return {
        "batch": ctx.batch_title,
        "unit": unit,
        "deadline": f"{ctx.deadline.year}年{ctx.deadline.month}月{ctx.deadline.day}日",
        "office": ctx.office.name,
        "contact": ctx.office.contact,
        "phone": ctx.office.phone,
        "email": ctx.office.email,
        "statuses": " / ".join(layout.statuses),
    }


def _escape_hf(text: str) -> str:
    return text.replace("&", "&&")


class _Formats:
    """xlsxwriter formats built once per workbook from layout styles plus overrides."""

    def __init__(self, wb: Any) -> None:
        self.wb = wb
        self.cache: dict[tuple[Any, ...], Any] = {}

    def get(self, style: dict[str, Any] | Any, **extra: Any) -> Any:
        props = {**dict(style), **extra}
        key = tuple(sorted(props.items()))
        fmt = self.cache.get(key)
        if fmt is None:
            fmt = self.cache[key] = self.wb.add_format(props)
        return fmt


def _slots(widths: list[float], minimums: Sequence[float]) -> list[tuple[int, int]]:
    """Consecutive column spans, each at least as wide as its minimum (the contact row)."""
    spans = []
    i = 0
    n = len(widths)
    for need in minimums:
        start = i
        total = 0.0
        while i < n and (total < need or i == start):
            total += widths[i]
            i += 1
        if i == start:  # ran out of table: use one column beyond it
            i += 1
        spans.append((start, i - 1))
    return spans


def _cell(row: int, col: int) -> str:
    from xlsxwriter.utility import xl_rowcol_to_cell

    return xl_rowcol_to_cell(row, col)


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_workbook(ctx: BuildContext, job: WorkbookJob) -> bytes:
    """The .xlsx bytes of one unit's workbook (pure: no ledger, no file system)."""
    import xlsxwriter

    layout = ctx.layout
    values = _placeholders(ctx, job.unit)
    buffer = io.BytesIO()
    wb = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False,
                                      "strings_to_numbers": False})
    created = clock.local(ctx.issued_at).astimezone(dt.UTC).replace(tzinfo=None)  # reproducible docProps
    wb.set_properties({"title": _expand(layout.title_format, values), "author": ctx.office.name,
                       "company": ctx.office.name, "created": created})
    fm = _Formats(wb)
    help_ws = wb.add_worksheet(HELP_SHEET)
    task_ws = wb.add_worksheet(TASK_SHEET)
    lists_ws = wb.add_worksheet(LISTS_SHEET)
    meta_ws = wb.add_worksheet(META_SHEET)
    _help_sheet(help_ws, fm, layout, values)
    source = _lists_sheet(lists_ws, layout)
    hints = _task_sheet(task_ws, fm, layout, job, values, source)
    _meta_sheet(meta_ws, [*job.meta, *hints])
    wb.close()
    return buffer.getvalue()


def _help_sheet(ws: Any, fm: _Formats, layout: Layout, values: dict[str, str]) -> None:
    """填报说明: the office's instruction lines, placeholders expanded, status meanings listed."""
    styles = layout.styles
    help_style = styles.get("help", {})
    ws.set_column(0, 0, _HELP_WIDTH)
    meanings = [f"　　{v}：{m}" if m else f"　　{v}" for v, m in layout.status_options]
    lines: list[tuple[str, bool]] = []
    for i, line in enumerate(layout.instructions):
        if line.strip() == "{status_meanings}":
            lines.extend((m, False) for m in meanings)
        else:
            lines.append((_expand(line.replace("{status_meanings}", "；".join(meanings).strip()), values), i == 0))
    for r, (text, heading) in enumerate(lines):
        style = styles.get("help_title", {}) if heading else help_style
        ws.write_string(r, 0, text, fm.get(style))
        size = float(style.get("font_size", 12))
        ws.set_row(r, _row_height(estimate_lines(text, _HELP_WIDTH, size), size) + (6 if heading else 0))
    ws.set_paper(9)
    ws.fit_to_pages(1, 0)
    ws.set_margins(left=0.7, right=0.7, top=0.75, bottom=0.75)
    ws.set_footer("&C第 &P 页 共 &N 页")
    ws.protect("", {"select_locked_cells": True, "select_unlocked_cells": True, "format_columns": True,
                    "format_rows": True})


def _lists_sheet(ws: Any, layout: Layout) -> str:
    """The hidden dropdown source; returns the validation's source reference."""
    status_col = layout.column("status")
    ws.write_string(0, 0, status_col.header if status_col else "落实情况")
    ws.write_string(0, 1, "含义")
    for i, (value, meaning) in enumerate(layout.status_options, start=1):
        ws.write_string(i, 0, value)
        ws.write_string(i, 1, meaning)
    ws.set_column(0, 0, 12)
    ws.set_column(1, 1, 60)
    ws.hide()
    ws.protect()
    return f"='{LISTS_SHEET}'!$A$2:$A${len(layout.status_options) + 1}"


def _meta_sheet(ws: Any, rows: Sequence[tuple[str, str]]) -> None:
    """Key/value strings, very hidden (LibreOffice keeps it merely hidden when it re-saves)."""
    for r, (key, value) in enumerate(rows):
        ws.write_string(r, 0, key)
        ws.write_string(r, 1, value)
    ws.set_column(0, 0, 18)
    ws.set_column(1, 1, 70)
    ws.very_hidden()
    ws.protect()


def _task_sheet(ws: Any, fm: _Formats, layout: Layout, job: WorkbookJob, values: dict[str, str],
                source: str) -> list[tuple[str, str]]:
    """任务清单; returns the unsigned layout hints for the metadata sheet."""
    columns = layout.columns
    ncol = len(columns)
    widths = [float(c.width) for c in columns]
    for i, c in enumerate(columns):
        ws.set_column(i, i, c.width)
    title_style = {**layout.styles.get("title", {}), "align": "center"}  # across the table, whatever the template
    title = _expand(layout.title_format, values)
    ws.merge_range(0, 0, 0, ncol - 1, "", fm.get(title_style))
    ws.write_string(0, 0, title, fm.get(title_style))
    title_size = float(title_style.get("font_size", 16))
    ws.set_row(0, _row_height(estimate_lines(title, sum(widths), title_size), title_size) + 6)
    contact_cell, phone_cell = _contact_row(ws, fm, layout, job, values, widths, row=1)

    header_row = HEADER_ROW - 1
    header_lines = 1
    for i, c in enumerate(columns):
        ws.write_string(header_row, i, c.header, fm.get(c.header_style))
        size = float(c.header_style.get("font_size", 11))
        header_lines = max(header_lines, estimate_lines(c.header, c.width, size))
    ws.set_row(header_row, max(30, _row_height(header_lines, 11)))

    first_row = header_row + 1
    last_row = max(_task_rows(ws, fm, layout, job, first_row) - 1, first_row)
    _validations(ws, layout, values, source, first_row, last_row)

    title_index = layout.index("title")
    freeze_cols = 0
    if title_index is not None and title_index <= 2 and sum(widths[: title_index + 1]) <= 45:
        freeze_cols = title_index + 1  # keep 序号 and 工作任务 in view while filling the right-hand columns
    ws.freeze_panes(first_row, freeze_cols)
    ws.autofilter(header_row, 0, last_row, ncol - 1)
    ws.protect("", {"select_locked_cells": True, "select_unlocked_cells": True, "format_columns": True,
                    "format_rows": True, "autofilter": True, "sort": False, "insert_rows": False,
                    "delete_rows": False, "insert_columns": False, "delete_columns": False,
                    "insert_hyperlinks": False, "objects": False, "scenarios": False})
    ws.set_landscape()
    ws.set_paper(9)
    ws.fit_to_pages(1, 0)
    ws.repeat_rows(header_row)
    ws.print_area(0, 0, last_row, ncol - 1)
    ws.set_margins(left=0.4, right=0.4, top=0.5, bottom=0.6)
    ws.center_horizontally()
    ws.set_footer(f"&L{_escape_hf(job.unit)}&C第 &P 页 共 &N 页", {"margin": 0.25})
    ws.activate()
    return [("header_row", str(HEADER_ROW)), ("contact_cell", contact_cell), ("phone_cell", phone_cell)]


def _contact_row(ws: Any, fm: _Formats, layout: Layout, job: WorkbookJob, values: dict[str, str],
                 widths: list[float], row: int) -> tuple[str, str]:
    """填报联系人：[value] 联系电话：[value] and the deadline, spread over columns wide enough for them."""
    ncol = len(widths)
    label_fmt = fm.get({"font_name": "宋体", "font_size": 11, "bold": True, "align": "right", "valign": "vcenter"})
    value_fmt = fm.get({"font_name": "宋体", "font_size": 11, "bottom": 1, "valign": "vcenter",
                        "bg_color": layout.styles.get("fill", {}).get("bg_color", "#FFFDF0")},
                       locked=False, num_format=_TEXT_FORMAT)
    info_fmt = fm.get({"font_name": "宋体", "font_size": 10, "valign": "vcenter", "font_color": "#595959"})
    spans = _slots(widths, (12.5, 14, 10.5, 14))
    for (c0, c1), text, fmt in (
        (spans[0], f"{CONTACT_LABEL}：", label_fmt),
        (spans[1], job.contact, value_fmt),
        (spans[2], f"{PHONE_LABEL}：", label_fmt),
        (spans[3], job.phone, value_fmt),
    ):
        if c1 > c0:
            ws.merge_range(row, c0, row, c1, "", fmt)
        if text:
            ws.write_string(row, c0, text, fmt)
        else:
            ws.write_blank(row, c0, None, fmt)
    info_start = spans[3][1] + 1
    if info_start < ncol:
        info = f"报送截止：{values['deadline']}　填写方法见“{HELP_SHEET}”工作表"
        if ncol - 1 > info_start:
            ws.merge_range(row, info_start, row, ncol - 1, "", info_fmt)
        ws.write_string(row, info_start, info, info_fmt)
    ws.set_row(row, 24)
    return _cell(row, spans[1][0]), _cell(row, spans[3][0])


def _task_rows(ws: Any, fm: _Formats, layout: Layout, job: WorkbookJob, row: int) -> int:
    """Section/subsection heading rows and one row per task from ``row``; returns the next free row."""
    columns = layout.columns
    ncol = len(columns)
    styles = layout.styles
    task_style, fill_style = styles.get("task", {}), styles.get("fill", {})
    task_size = float(task_style.get("font_size", 10))
    fill_size = float(fill_style.get("font_size", 10))
    cell_fmt: list[Any] = []
    for c in columns:
        if not c.fill_in:
            cell_fmt.append(fm.get(task_style, **({"align": "center"} if c.kind == "number" else {})))
        elif c.kind == "date":  # explicitly unlocked: a date format alone leaves the cell locked
            cell_fmt.append(fm.get(fill_style, locked=False, num_format=_DATE_FORMAT, align="center"))
        elif c.kind == "status":
            cell_fmt.append(fm.get(fill_style, locked=False, num_format=_TEXT_FORMAT, align="center"))
        else:
            cell_fmt.append(fm.get(fill_style, locked=False, num_format=_TEXT_FORMAT))
    total_width = sum(float(c.width) for c in columns)
    # Per column, once: (is fill-in, kind, key, width, size) — the loop below runs cells × units times.
    plan = [(c.fill_in, c.kind, c.key, float(c.width), fill_size if c.fill_in else task_size) for c in columns]
    section: tuple[Any, Any] | None = None
    subsection: tuple[Any, Any, Any] | None = None
    for task in job.rows:
        heads = []
        key = (task.get("section"), task.get("section_title"))
        if key[0] and key != section:
            heads.append((f"{key[0]}、{key[1]}" if key[1] else str(key[0]), styles.get("section", {})))
        section = key
        sub = (task.get("section"), task.get("subsection"), task.get("subsection_title"))
        if sub[1] and sub != subsection:
            heads.append((f"{sub[1]}{sub[2] or ''}", styles.get("subsection", {})))
        subsection = sub
        for text, style in heads:
            fmt = fm.get(style)
            ws.merge_range(row, 0, row, ncol - 1, "", fmt)
            ws.write_string(row, 0, text, fmt)
            size = float(style.get("font_size", 11))
            ws.set_row(row, max(20, _row_height(estimate_lines(text, total_width, size), size)))
            row += 1
        lines_needed = 2  # room to type even in an empty row
        answers = task.get("answers") or {}
        for i, (fill_in, kind, key, width, size) in enumerate(plan):
            fmt = cell_fmt[i]
            if fill_in:
                value = answers.get(key)
                day = _as_date(value) if kind == "date" else None
                if day is not None:
                    ws.write_datetime(row, i, dt.datetime(day.year, day.month, day.day), fmt)
                    continue
                if not value:
                    ws.write_blank(row, i, None, fmt)  # a blank cell needs its format to be unlocked
                    continue
                text = str(value)
            elif kind == "number":
                ws.write_number(row, i, task["number"], fmt)
                continue
            else:
                text = str(task.get(key) or "")
            ws.write_string(row, i, text, fmt)
            lines_needed = max(lines_needed, estimate_lines(text, width, size))
        ws.set_row(row, _row_height(lines_needed, max(task_size, fill_size)))
        row += 1
    return row


def _validations(ws: Any, layout: Layout, values: dict[str, str], source: str, first_row: int,
                 last_row: int) -> None:
    """An input message on every fill-in column; the status dropdown from a range; a date check."""
    for i, c in enumerate(layout.columns):
        if not c.fill_in:
            continue
        prompt = _truncate(_expand(c.prompt, values), 255)  # longer: XlsxWriter drops the validation
        rule: dict[str, Any] = {"input_title": _truncate(c.header, 32), "input_message": prompt,
                                "show_input": bool(prompt)}
        if c.kind == "status":
            rule.update({"validate": "list", "source": source, "error_type": "stop",
                         "error_title": "请从下拉列表中选择",
                         "error_message": _truncate(f"“{c.header}”只能选择：{values['statuses']}。", 255)})
        elif c.kind == "date":
            rule.update({"validate": "date", "criteria": "between", "minimum": _VALID_DATES[0],
                         "maximum": _VALID_DATES[1], "error_type": "stop", "error_title": "请填写日期",
                         "error_message": "请填写日期，例如 2021-06-30；未完成可留空。"})
        elif prompt:
            rule["validate"] = "any"
        else:
            continue
        ws.data_validation(first_row, i, last_row, i, rule)


def _as_date(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and value:
        try:
            return dt.date.fromisoformat(value.strip()[:10])
        except ValueError:
            return None
    return None


# --------------------------------------------------------------------------- jobs from the ledger


def metadata(batch: Batch, unit_id: int, unit_name: str, template_version: str, issued_at: dt.datetime,
             tasks: Sequence[int]) -> list[tuple[str, str]]:
    """The metadata rows (all strings) including the signature, in sheet order."""
    fields = {
        "magic": META_MAGIC,
        "batch_uid": batch.uid,
        "batch_title": batch.title,
        "unit_id": str(unit_id),
        "unit_name": unit_name,
        "template_version": template_version,
        "issued_at": clock.iso(issued_at),
        "tasks": ",".join(str(t) for t in tasks),
    }
    rows = [(k, fields[k]) for k in META_KEYS]
    rows.append((SIGNATURE_KEY, sign(batch.secret, fields)))
    return rows


class _Source:
    """The ledger rows one build needs, read once (not once per unit)."""

    def __init__(self, ledger: Ledger, batch: Batch, layout: Layout, prefill: bool) -> None:
        self.version = layout.version  # a hash of the whole layout: compute once per build
        self.tasks = {t.number: t for t in ledger.tasks(batch.id)}
        self.assignments: dict[int, list[dict[str, Any]]] = {}
        for a in ledger.assignments(batch.id):
            self.assignments.setdefault(a["unit_id"], []).append(a)
        self.answers: dict[tuple[int, int], dict[str, Any]] = {}
        self.contacts: dict[int, tuple[str, str]] = {}
        if prefill:
            for r in ledger.current_answers(batch.id):
                if r.get("submission_id") is not None:
                    self.answers[(r["unit_id"], r["task"])] = r
            rows = ledger.execute(
                "SELECT unit_id, contact, phone FROM submissions WHERE batch_id = ? AND outcome = 'accepted' "
                "AND unit_id IS NOT NULL ORDER BY received_at, id", (batch.id,))
            for unit_id, contact, phone in rows:
                old = self.contacts.get(unit_id, ("", ""))
                self.contacts[unit_id] = ((contact or "").strip() or old[0], (phone or "").strip() or old[1])

    def job(self, batch: Batch, unit_id: int, unit_name: str, issued_at: dt.datetime, path: Path) -> WorkbookJob:
        rows = []
        numbers = []
        for a in self.assignments.get(unit_id, []):
            t = self.tasks.get(a["task"])
            if t is None:
                continue
            answer = self.answers.get((unit_id, t.number))
            rows.append({
                "number": t.number, "section": t.section, "section_title": t.section_title,
                "subsection": t.subsection, "subsection_title": t.subsection_title, "title": t.title,
                "requirement": t.requirement, "lead": "、".join(t.lead), "responsible": "、".join(t.responsible),
                "role": f"{a['role']}（{a['note']}）" if a.get("note") else a["role"],
                "answers": {k: answer.get(k) for k in ("status", "progress", "completed_on", "evidence", "issues")}
                if answer else {},
            })
            numbers.append(t.number)
        contact, phone = self.contacts.get(unit_id, ("", ""))
        meta = metadata(batch, unit_id, unit_name, self.version, issued_at, numbers)
        return WorkbookJob(unit_name, unit_id, tuple(rows), contact, phone, tuple(meta), str(path), tuple(numbers))


# --------------------------------------------------------------------------- running jobs

_WORKER_CONTEXT: BuildContext | None = None


def _init_worker(ctx: BuildContext) -> None:
    global _WORKER_CONTEXT
    _WORKER_CONTEXT = ctx


def _write_job(ctx: BuildContext, job: WorkbookJob) -> str:
    data = render_workbook(ctx, job)
    try:
        atomic_write_bytes(job.path, data)
    except PermissionError as exc:  # Windows: the old file is open in Excel/WPS
        raise InputError(f"无法写入 {job.path}：文件可能正在 Excel 或 WPS 中打开，请关闭后重新运行。") from exc
    return sha256_bytes(data)


def _worker(job: WorkbookJob) -> tuple[str, list[tuple[str, str]]]:
    """Run in a worker process; warnings travel back so the caller's filters (tests: error) apply."""
    assert _WORKER_CONTEXT is not None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sha = _write_job(_WORKER_CONTEXT, job)
    return sha, [(w.category.__name__, str(w.message)) for w in caught]


def _pool_context() -> Any:
    import multiprocessing as mp

    # forkserver: no fork of a process holding an SQLite connection and threads; spawn on Windows.
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["automation.workbook.build", "xlsxwriter"])
        return ctx
    return mp.get_context("spawn")


def _run(ctx: BuildContext, jobs: list[WorkbookJob], workers: int,
         progress: Callable[[int, int], None] | None) -> list[str]:
    total = len(jobs)
    shas: list[str] = [""] * total
    if progress:
        progress(0, total)
    if workers <= 1 or total < _MIN_PARALLEL:
        for i, job in enumerate(jobs):
            shas[i] = _write_job(ctx, job)
            if progress:
                progress(i + 1, total)
        return shas
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    done = 0
    try:
        with ProcessPoolExecutor(max_workers=min(workers, total), mp_context=_pool_context(),
                                 initializer=_init_worker, initargs=(ctx,)) as pool:
            futures = {pool.submit(_worker, job): i for i, job in enumerate(jobs)}
            for future in as_completed(futures):
                sha, caught = future.result()
                shas[futures[future]] = sha
                for category, message in caught:
                    cls = getattr(builtins, category, None)
                    warnings.warn(message, cls if isinstance(cls, type) and issubclass(cls, Warning)
                                  else UserWarning, stacklevel=2)
                done += 1
                if progress:
                    progress(done, total)
    except BrokenProcessPool:
        # Workers could not start (e.g. the caller's __main__ cannot be re-imported): finish here.
        for i, job in enumerate(jobs):
            if not shas[i]:
                shas[i] = _write_job(ctx, job)
                done += 1
                if progress:
                    progress(done, total)
    return shas


def _default_dir(config: Config) -> Path:
    from automation.workspace import Workspace

    return Workspace(config.workspace).workbooks


def _layout(config: Config) -> Layout:
    from automation.workbook.template import layout_for

    return layout_for(config)


def _context(config: Config, batch: Batch, layout: Layout, now: dt.datetime) -> BuildContext:
    return BuildContext(layout=layout, batch_title=batch.title, deadline=batch.deadline, office=config.office,
                        issued_at=now)


def build_workbooks(
    config: Config,
    ledger: Ledger,
    now: dt.datetime,
    units: Sequence[str] | None = None,
    out_dir: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    jobs: int | None = None,
    purpose: str = "build",
) -> list[BuiltWorkbook]:
    """Build one workbook per unit with assignments (or per named unit), pre-filled with the
    unit's latest answers; overwrite atomically and record every issue in the ledger (with
    ``purpose``, e.g. "remind" for re-issues attached to reminders).

    ``units`` are names or aliases resolved through the registry (a group name means its
    members); an unknown name raises :class:`~automation.errors.UnknownUnitError`.  ``jobs``:
    worker processes (default: every core); ``progress(done, total)`` is called as files land.
    """
    batch = ledger.require_batch(config.batch.title)
    layout = _layout(config)
    assigned = ledger.assigned_units(batch.id)
    if units:
        registry = Registry.from_config(config)
        wanted: list[str] = []
        for name in units:
            resolved = registry.resolve(name, where="--unit 参数")
            if len(resolved) == 1 and resolved[0] not in {u.name for u in assigned}:
                raise InputError(f"单位“{resolved[0]}”在批次“{batch.title}”中没有任务，不生成工作簿。")
            wanted.extend(resolved)
        keep = set(wanted)
        assigned = [u for u in assigned if u.name in keep]
    out = Path(out_dir) if out_dir is not None else _default_dir(config)
    source = _Source(ledger, batch, layout, prefill=True)
    names: dict[str, int] = {}
    work: list[WorkbookJob] = []
    for u in assigned:
        name = workbook_filename(batch.title, u.name)
        if name in names:  # two units whose names differ only in characters Windows refuses
            name = name[: -len(".xlsx")] + f"_{u.id}.xlsx"
        names[name] = u.id
        work.append(source.job(batch, u.id, u.name, now, out / name))
    ctx = _context(config, batch, layout, now)
    shas = _run(ctx, work, jobs if jobs is not None else (os.cpu_count() or 1), progress)
    built = [BuiltWorkbook(j.unit, j.unit_id, Path(j.path), list(j.tasks), sha) for j, sha in zip(work, shas,
                                                                                                    strict=True)]
    with ledger.transaction():
        ledger.save_layout(source.version, layout.to_dict(), now)
        for b in built:
            ledger.record_issue(batch.id, b.unit_id, now, source.version, b.tasks, str(b.path), b.sha256, purpose)
        ledger.event("build", now, batch=batch.title, workbooks=len(built), template_version=source.version)
    return built


def build_unit_workbook(
    config: Config,
    ledger: Ledger,
    batch: Batch,
    unit_id: int,
    now: dt.datetime,
    *,
    prefill: bool = True,
    purpose: str = "build",
    out_path: Path | None = None,
) -> BuiltWorkbook:
    """Build (and record) one unit's workbook, by default pre-filled with its latest answers and
    contact, e.g. to attach to a reminder; ``purpose`` is stored with the issue."""
    unit = ledger.unit(unit_id)
    if unit is None:
        raise InputError(f"台账中没有编号为 {unit_id} 的单位。")
    layout = _layout(config)
    source = _Source(ledger, batch, layout, prefill=prefill)
    if not source.assignments.get(unit_id):
        raise InputError(f"单位“{unit.name}”在批次“{batch.title}”中没有任务，不生成工作簿。")
    path = Path(out_path) if out_path is not None else _default_dir(config) / workbook_filename(batch.title,
                                                                                                unit.name)
    job = source.job(batch, unit_id, unit.name, now, path)
    sha = _write_job(_context(config, batch, layout, now), job)
    with ledger.transaction():
        ledger.save_layout(source.version, layout.to_dict(), now)
        ledger.record_issue(batch.id, unit_id, now, source.version, list(job.tasks), str(path), sha, purpose)
    return BuiltWorkbook(unit.name, unit_id, path, list(job.tasks), sha)
