"""Task-table import: read a task list as offices receive it and understand it.

Stage 1 of the loop.  A reader per format turns the file into :class:`RawRow` (cells as text,
with the row, line or page the user finds them at); then the table interpreter
(:mod:`.interpret`) or, for a 分工方案 written as numbered paragraphs, the paragraph interpreter
(:mod:`.paragraphs`) turns the rows into tasks.  Nothing is dropped silently: every row that is
not understood becomes a :class:`~automation.model.Problem`.

This module is the entry point the rest of the program uses (``load_tasks``, ``read_rows``, …).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from automation import clock
from automation.errors import InputError
from automation.model import Problem, Task
from automation.tasks.convert import LEGACY_SUFFIXES, converted
from automation.tasks.csvfile import read_csv_rows
from automation.tasks.header import HEADER_SYNONYMS, find_header, header_key
from automation.tasks.interpret import NO_HEADER, interpret_rows
from automation.tasks.paragraphs import interpret_paragraphs, looks_like_plan
from automation.tasks.pdf import read_pdf_rows
from automation.tasks.records import RawRow, TaskTable
from automation.tasks.sheets import WORKBOOK_SUFFIXES, read_sheets
from automation.tasks.textfile import read_text_rows
from automation.tasks.word import read_docx_rows

__all__ = [
    "Task",
    "TaskTable",
    "Problem",
    "RawRow",
    "load_tasks",
    "read_rows",
    "interpret_rows",
    "interpret",
    "header_key",
    "tasks_to_json",
    "HEADER_SYNONYMS",
    "SUPPORTED_SUFFIXES",
]

SUPPORTED_SUFFIXES = (".txt", ".md", ".tsv", ".csv", ".xlsx", ".xlsm", ".xls", ".ods", ".docx", ".pdf",
                      ".doc", ".wps", ".et")
_TEXT_SUFFIXES = (".txt", ".md", ".tsv", "")


def _read(path: Path, data: bytes, sheet: str | None) -> tuple[list[RawRow], str | None]:
    suffix = path.suffix.lower()
    if suffix in WORKBOOK_SUFFIXES:
        sheets = read_sheets(path)
        if sheet is not None:
            if sheet not in sheets:
                raise InputError(f"{path.name}：没有名为“{sheet}”的工作表（现有：{'、'.join(sheets)}）。")
            return sheets[sheet], sheet
        for name, rows in sheets.items():
            if find_header(rows) is not None:
                return rows, name
        first = next(iter(sheets), None)
        return (sheets[first] if first else []), first
    if suffix == ".docx":
        return read_docx_rows(path), None
    if suffix == ".pdf":
        return read_pdf_rows(path), None
    if suffix == ".csv":
        return read_csv_rows(path, data), None
    if suffix in _TEXT_SUFFIXES:
        return read_text_rows(path, data), None
    raise InputError(
        f"{path.name}：不支持的文件类型 {suffix}。支持：{'、'.join(SUPPORTED_SUFFIXES)}。"
        "其他格式请先另存为 .docx、.xlsx 或 PDF。"
    )


def read_rows(path: Path, sheet: str | None = None) -> tuple[list[RawRow], str | None]:
    """Read any supported file into raw rows; returns (rows, sheet name used)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}：文件不存在。请检查路径。")
    if path.is_dir():
        raise InputError(f"{path}：这是文件夹，不是任务表文件。")
    data = path.read_bytes()
    if not data.strip():
        raise InputError(f"{path.name}：文件是空的。请确认导出的任务表有内容。")
    if path.suffix.lower() in LEGACY_SUFFIXES:
        with converted(path) as copy:
            return _read(copy, b"", sheet)
    return _read(path, data, sheet)


def interpret(rows: list[RawRow], source: str = "", sheet: str | None = None, year: int | None = None,
              fallback_year: int | None = None) -> TaskTable:
    """A table (a header and rows) or a 分工方案 in numbered paragraphs, whichever the rows are."""
    if find_header(rows) is not None:
        return interpret_rows(rows, source, sheet, year=year, fallback_year=fallback_year)
    if looks_like_plan(rows):
        return interpret_paragraphs(rows, source, sheet, year=year, fallback_year=fallback_year)
    raise InputError(NO_HEADER.format(source=source))


def load_tasks(path: str | Path, sheet: str | None = None, year: int | None = None,
               today: dt.date | None = None) -> TaskTable:
    """Read and interpret a task list file (any supported format).

    ``year`` is the batch year that deadlines such as 「6月底前」 are dated in (``init`` passes
    ``[batch] year``); without it the year in the document's title (「2021年…」), else ``today``'s.
    """
    path = Path(path)
    rows, used = read_rows(path, sheet)
    if not any(r.joined for r in rows):
        raise InputError(f"{path.name}：文件中没有表格内容。")
    fallback = (today or clock.now().date()).year
    return interpret(rows, source=path.name, sheet=used, year=year, fallback_year=fallback)


def tasks_to_json(tasks: Iterable[Task]) -> list[dict[str, Any]]:
    return [t.to_json() for t in tasks]
