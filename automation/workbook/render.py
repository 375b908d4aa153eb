"""Rendering one unit's workbook: the .xlsx bytes from a layout and a job (pure: no ledger, no files).

The unit's contact only ever sees this file, in WPS, Excel or LibreOffice, so it must be obvious
what to fill, impossible to damage the task text by accident, print cleanly on A4, and come back
in a form the collector can trust:

- task columns locked, every fill-in cell (blank and date cells included) explicitly unlocked,
  the sheet protected without a password but allowing selection, row/column resizing and
  filtering; dropdowns read from a range on a hidden sheet (an inline list over 255 characters
  silently produces no validation in Excel); an input message on every fill-in column;
- print-ready: A4 landscape, one page wide, header row repeated, page x of y in the footer, row
  heights from :mod:`automation.workbook.textsize`, because no client autofits rows of wrapped
  text written by a library;
- a very hidden metadata sheet signed with the batch secret (:mod:`automation.workbook.layout`),
  so a renamed or re-saved file is still tied to its unit and batch and a forged one is detected;
- each task's 完成时限 in a locked column, red once it has passed with the task unfinished; a
  unit's input that was refused is handed back in its cells, marked red, with the reason in the
  cell's note, so the unit corrects it instead of typing it again;
- text from task tables and units is always written with ``write_string`` and the writer has
  ``strings_to_formulas``/``strings_to_urls`` off: it never becomes a live formula or link.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from automation import clock
from automation.config import Office
from automation.workbook.layout import (
    COLUMN_HINT_PREFIX,
    CONTACT_LABEL,
    HEADER_ROW,
    HELP_SHEET,
    LISTS_SHEET,
    META_SHEET,
    PHONE_LABEL,
    TASK_SHEET,
    Layout,
)
from automation.workbook.textsize import row_points, wrapped_lines

__all__ = ["BuildContext", "WorkbookJob", "render_workbook"]

_HELP_WIDTH = 68           # 填报说明 column: fits A4 portrait unscaled, even in LibreOffice's wider fallback font
_DATE_FORMAT = "yyyy-mm-dd"
_TEXT_FORMAT = "@"         # typed phone numbers and 1/2 stay text instead of turning into numbers/dates
_VALID_DATES = (dt.date(2000, 1, 1), dt.date(2099, 12, 31))
_REFUSED_BG = "#FCE4D6"     # a unit's refused input handed back, and a 完成时限 passed


@dataclass(frozen=True)
class BuildContext:
    """What every workbook of one build shares (sent once to each worker process)."""

    layout: Layout
    batch_title: str
    deadline: dt.date
    office: Office
    issued_at: dt.datetime
    rules: tuple[str, ...] = ()        # the 填报规则 lines ({rules} in the instructions)


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


def _expand(text: str, values: dict[str, str]) -> str:
    """Replace known ``{placeholders}``; any other brace the office typed stays as it is."""
    for key, value in values.items():
        if key == "_rules":
            value = "；".join(v for v in value.split("\n") if v)
            key = "rules"
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
        "_rules": "\n".join(ctx.rules),
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


def _col_name(col: int) -> str:
    from xlsxwriter.utility import xl_col_to_name as name

    return name(col)


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
        elif line.strip() == "{rules}":
            lines.extend((f"　　{r}", False) for r in values.get("_rules", "").split("\n") if r)
        else:
            lines.append((_expand(line.replace("{status_meanings}", "；".join(meanings).strip()), values), i == 0))
    for r, (text, heading) in enumerate(lines):
        style = styles.get("help_title", {}) if heading else help_style
        ws.write_string(r, 0, text, fm.get(style))
        size = float(style.get("font_size", 12))
        ws.set_row(r, row_points(wrapped_lines(text, _HELP_WIDTH, size), size) + (6 if heading else 0))
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
    ws.set_row(0, row_points(wrapped_lines(title, sum(widths), title_size), title_size) + 6)
    contact_cell, phone_cell = _contact_row(ws, fm, layout, job, values, widths, row=1)

    header_row = HEADER_ROW - 1
    header_lines = 1
    for i, c in enumerate(columns):
        ws.write_string(header_row, i, c.header, fm.get(c.header_style))
        size = float(c.header_style.get("font_size", 11))
        header_lines = max(header_lines, wrapped_lines(c.header, c.width, size))
    ws.set_row(header_row, max(30, row_points(header_lines, 11)))

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
    columns_at = [(COLUMN_HINT_PREFIX + c.key, _col_name(i)) for i, c in enumerate(columns) if c.fill_in]
    return [("header_row", str(HEADER_ROW)), ("contact_cell", contact_cell), ("phone_cell", phone_cell), *columns_at]


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
    refused_bg = {"bg_color": _REFUSED_BG, "font_color": "#9C0006"}
    refused_fmt = [fm.get(fill_style, locked=False, num_format=_TEXT_FORMAT, **refused_bg) if c.fill_in else None
                   for c in columns]
    overdue_fmt = fm.get(task_style, bg_color=_REFUSED_BG, font_color="#9C0006", bold=True)
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
            ws.set_row(row, max(20, row_points(wrapped_lines(text, total_width, size), size)))
            row += 1
        lines_needed = 2  # room to type even in an empty row
        answers = task.get("answers") or {}
        refused = task.get("refused") or ()
        notes = task.get("notes") or {}
        for i, (fill_in, kind, key, width, size) in enumerate(plan):
            fmt = cell_fmt[i]
            if key in notes:  # the reason the unit's input here was not taken, where it typed it
                ws.write_comment(row, i, f"未通过：{notes[key]}", {"author": "督办", "x_scale": 2, "y_scale": 2})
            if fill_in and key in refused:
                text = str(answers.get(key) or "")
                if text:
                    ws.write_string(row, i, text, refused_fmt[i])
                else:
                    ws.write_blank(row, i, None, refused_fmt[i])
                lines_needed = max(lines_needed, wrapped_lines(text, width, size))
                continue
            if key == "due" and task.get("overdue"):
                fmt = overdue_fmt
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
            lines_needed = max(lines_needed, wrapped_lines(text, width, size))
        ws.set_row(row, row_points(lines_needed, max(task_size, fill_size)))
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
