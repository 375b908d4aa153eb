"""Task-table import: read a table as offices receive it and understand it.

Stage 1 of the loop.  Readers turn every supported format into a list of :class:`RawRow`
(cells as text, with the row number the user sees in the source), then one interpreter
recognises the header by synonyms, rebuilds the section/subsection hierarchy, repairs cells
that slid left when a PDF/Word cell was empty, and normalises the text.  Nothing is dropped
silently: every row that is not understood becomes a :class:`LoadProblem`.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from automation.errors import InputError
from automation.model import Task
from automation.text import (
    looks_like_units,
    normalize_status,
    normalize_text,
    parse_unit_cell,
    squash,
)

__all__ = [
    "Task",
    "TaskTable",
    "LoadProblem",
    "RawRow",
    "load_tasks",
    "read_rows",
    "interpret_rows",
    "HEADER_SYNONYMS",
    "SUPPORTED_SUFFIXES",
]

HEADER_SYNONYMS: dict[str, tuple[str, ...]] = {
    "number": ("序号", "编号", "任务编号"),
    "title": ("工作任务", "任务", "重点任务", "任务名称", "主要任务", "工作事项"),
    "requirement": ("工作要求", "具体要求", "具体措施", "工作措施", "主要内容", "任务要求"),
    "lead": ("牵头单位", "牵头部门", "牵头领导单位"),
    "responsible": ("责任单位", "责任部门", "责任科室", "配合单位", "配合部门"),
    "status": ("落实情况", "完成情况", "进展情况", "推进情况"),
    "deadline": ("完成时限", "时限要求", "时限", "完成时间"),
    "remark": ("备注",),
}
_CORE_KEYS = ("requirement", "lead", "responsible", "status", "deadline")
SUPPORTED_SUFFIXES = (".txt", ".md", ".tsv", ".csv", ".xlsx", ".xlsm", ".xls", ".ods", ".docx")

_CN_NUM = "一二三四五六七八九十百零〇"
SECTION_RE = re.compile(rf"^([{_CN_NUM}]+)\s*[、.．]\s*(.*)$", re.S)
SUBSECTION_RE = re.compile(rf"^[（(]\s*([{_CN_NUM}]+)\s*[)）]\s*[、.．]?\s*(.*)$", re.S)
TASK_RE = re.compile(r"^(?:[（(]\s*(\d{1,4})\s*[)）]|(\d{1,4})\s*[.、．](?!\d))\s*(.*)$", re.S)
# A task number that follows a heading merged into the same cell.
_EMBEDDED_TASK_RE = re.compile(r"\s*(?=(?:[（(]\s*\d{1,4}\s*[)）]|\d{1,4}\s*[.、．](?!\d)))")
_EMBEDDED_SUB_RE = re.compile(rf"\s*(?=[（(]\s*[{_CN_NUM}]+\s*[)）])")
_DEADLINE_RE = re.compile(r"(\d{4}\s*年|\d{1,2}\s*月|月底|年底|年内|季度|底前|之前|长期|持续|常态|\d{4}[-/.]\d{1,2})")


@dataclass
class RawRow:
    """One row as read from the source: cell texts and the row number the user sees."""

    number: int
    cells: list[str]
    sheet: str | None = None


@dataclass
class LoadProblem:
    """A row or cell the importer could not fully understand (never dropped silently)."""

    row: int | None
    message: str
    raw: str = ""
    severity: str = "error"  # "error" (row skipped) or "info" (row repaired)

    def __str__(self) -> str:
        where = f"第 {self.row} 行" if self.row else "表格"
        tail = f"：{self.raw}" if self.raw else ""
        return f"{where}：{self.message}{tail}"


@dataclass
class TaskTable:
    """The result of an import: tasks, the problems found, and how the columns were read."""

    source: str
    tasks: list[Task]
    problems: list[LoadProblem]
    columns: dict[str, str]  # header label -> key ("extra:<label>" for unknown columns)
    sheet: str | None = None

    @property
    def sections(self) -> list[str]:
        return list(dict.fromkeys(t.section for t in self.tasks if t.section))

    @property
    def subsections(self) -> list[tuple[str | None, str]]:
        return list(dict.fromkeys((t.section, t.subsection) for t in self.tasks if t.subsection))


# --------------------------------------------------------------------------- readers


def _cell_text(value: Any) -> str:
    """Text of one cell as pandas/calamine give it (1.0 -> "1", dates -> ISO)."""
    if value is None:
        return ""
    try:
        import pandas as pd

        if value is pd.NaT or (isinstance(value, float) and value != value):
            return ""
    except ImportError:  # pragma: no cover - pandas is a hard dependency
        pass
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _decode_text(data: bytes, path: Path) -> str:
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):  # Excel's "Unicode 文本" and Notepad's "Unicode"
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            pass
    if b"\x00" in data[:4096]:
        raise InputError(f"{path.name}：不是文本表格（文件含二进制内容）。请另存为 .xlsx、.csv 或 .docx 后再导入。")
    for enc in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(enc)
        except UnicodeDecodeError:
            continue
        controls = sum(1 for ch in text[:4096] if ord(ch) < 32 and ch not in "\r\n\t")
        if controls > 8:
            break
        return text
    raise InputError(
        f"{path.name}：无法识别文件编码或不是文本表格。请用 UTF-8 或 GB18030 编码保存，或另存为 .xlsx。"
    )


def _read_delimited_text(path: Path, data: bytes) -> list[RawRow]:
    text = _decode_text(data, path)
    lines = text.splitlines()
    sample = "\n".join(lines[:20])
    delim = "|" if sample.count("|") >= max(2, sample.count("\t")) else "\t"
    rows: list[RawRow] = []
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if re.fullmatch(r"\s*\|?[\s:|-]+\|?\s*", line) and "-" in line:  # markdown separator
            continue
        cells = line.split(delim)
        if delim == "|" and line.lstrip().startswith("|"):
            cells = cells[1:]
        rows.append(RawRow(i, [c.strip() for c in cells]))
    return rows


def _read_csv(path: Path, data: bytes) -> list[RawRow]:
    import pandas as pd

    text = _decode_text(data, path)
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",\t;")
        sep = dialect.delimiter
    except csv.Error:
        sep = ","
    try:
        frame = pd.read_csv(
            io.StringIO(text), sep=sep, header=None, dtype=str, keep_default_na=False,
            skip_blank_lines=False, engine="python",
        )
    except (pd.errors.ParserError, csv.Error) as exc:
        raise InputError(f"{path.name}：CSV 格式错误（{exc}）。请检查分隔符和引号。") from exc
    except pd.errors.EmptyDataError:
        return []
    return [RawRow(i + 1, [_cell_text(v) for v in row]) for i, row in enumerate(frame.itertuples(index=False))]


def _excel_sheets(path: Path) -> dict[str, list[RawRow]]:
    """All sheets of a workbook, merged cells filled from their top-left cell."""
    import pandas as pd
    import python_calamine

    try:
        frames = pd.read_excel(path, sheet_name=None, header=None, engine="calamine")
    except Exception as exc:  # calamine raises its own error types for broken files
        raise InputError(
            f"{path.name}：无法读取工作簿（{type(exc).__name__}: {str(exc)[:120]}）。"
            "文件可能已损坏、被加密或并非表格文件；请在 Excel/WPS 中打开后另存为 .xlsx 再试。"
        ) from exc
    merged: dict[str, list[tuple[tuple[int, int], tuple[int, int]]]] = {}
    try:
        wb = python_calamine.CalamineWorkbook.from_path(str(path))
        for name in wb.sheet_names:
            ranges = wb.get_sheet_by_name(name).merged_cell_ranges
            if ranges:
                merged[name] = list(ranges)
    except Exception:  # merged ranges are a bonus; the frames above already loaded
        merged = {}
    out: dict[str, list[RawRow]] = {}
    for name, frame in frames.items():
        grid = [[_cell_text(v) for v in row] for row in frame.itertuples(index=False)]
        for (r0, c0), (r1, c1) in merged.get(name, []):
            if r0 >= len(grid) or c0 >= len(grid[r0]):
                continue
            top = grid[r0][c0]
            for r in range(r0, min(r1, len(grid) - 1) + 1):
                for c in range(c0, min(c1, len(grid[r]) - 1) + 1):
                    if (r, c) != (r0, c0) and not grid[r][c]:
                        # A heading merged across the row stays in its first cell only.
                        grid[r][c] = top if r != r0 else ""
        out[name] = [RawRow(i + 1, cells, name) for i, cells in enumerate(grid)]
    return out


def _read_docx(path: Path) -> list[RawRow]:
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(str(path))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise InputError(f"{path.name}：无法读取 Word 文档（{exc}）。请在 Word/WPS 中打开后另存为 .docx 再试。") from exc
    rows: list[RawRow] = []
    n = 0
    for t_index, table in enumerate(document.tables, start=1):
        prev_tcs: list[Any] = []
        for row in table.rows:
            n += 1
            cells: list[str] = []
            tcs: list[Any] = []
            last_tc = None
            for cell in row.cells:
                tc = cell._tc
                if tc is last_tc:  # horizontally merged: the text belongs to the first column
                    cells.append("")
                else:
                    cells.append("\n".join(p.text for p in cell.paragraphs))
                tcs.append(tc)
                last_tc = tc
            rows.append(RawRow(n, cells, f"表格{t_index}"))
            prev_tcs = tcs
        del prev_tcs
    return rows


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
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm", ".xls", ".ods", ".xlsb"):
        sheets = _excel_sheets(path)
        if sheet is not None:
            if sheet not in sheets:
                raise InputError(f"{path.name}：没有名为“{sheet}”的工作表（现有：{'、'.join(sheets)}）。")
            return sheets[sheet], sheet
        for name, rows in sheets.items():
            if _find_header(rows) is not None:
                return rows, name
        first = next(iter(sheets), None)
        return (sheets[first] if first else []), first
    if suffix == ".docx":
        if not zipfile.is_zipfile(path):
            raise InputError(f"{path.name}：不是有效的 .docx 文件（可能已损坏或是旧版 .doc）。请另存为 .docx。")
        return _read_docx(path), None
    if suffix == ".csv":
        return _read_csv(path, data), None
    if suffix in (".txt", ".md", ".tsv", ""):
        return _read_delimited_text(path, data), None
    raise InputError(
        f"{path.name}：不支持的文件类型 {suffix}。支持：{'、'.join(SUPPORTED_SUFFIXES)}。"
        "旧版 .doc/.et 请先另存为 .docx/.xlsx。"
    )


# --------------------------------------------------------------------------- header


def header_key(label: str) -> str | None:
    """Map a header label to its key by synonyms (letter-spaced labels work)."""
    text = re.sub(r"[\s:：*＊]", "", squash(label))
    if not text:
        return None
    for key, syns in HEADER_SYNONYMS.items():
        if text in syns:
            return key
    bare = re.sub(r"（[^）]*）$", "", text)
    for key, syns in HEADER_SYNONYMS.items():
        if bare in syns:
            return key
    best: tuple[int, str] | None = None
    for key, syns in HEADER_SYNONYMS.items():
        for syn in syns:
            if len(syn) >= 3 and text.startswith(syn) and (best is None or len(syn) > best[0]):
                best = (len(syn), key)
    return best[1] if best else None


def _find_header(rows: list[RawRow]) -> tuple[int, dict[int, str], dict[int, str]] | None:
    """Index of the header row, its column → key map and column → label map."""
    for idx, row in enumerate(rows[:30]):
        keys: dict[int, str] = {}
        labels: dict[int, str] = {}
        for col, cell in enumerate(row.cells):
            label = squash(cell)
            if not label:
                continue
            key = header_key(cell)
            labels[col] = label
            if key and key not in keys.values():
                keys[col] = key
        if len(keys) >= 2 and ("title" in keys.values() or "number" in keys.values()):
            return idx, keys, labels
    return None


# --------------------------------------------------------------------------- interpretation


def _classify(text: str) -> str:
    """What a cell's content is: status, units, deadline or prose."""
    if normalize_status(text) is not None:
        return "status"
    if looks_like_units(text):
        return "units"
    flat = squash(text)
    if len(flat) <= 20 and _DEADLINE_RE.search(flat) and "。" not in flat:
        return "deadline"
    return "prose"


_COMPATIBLE = {
    "requirement": {"prose", "deadline"},
    "lead": {"units"},
    "responsible": {"units"},
    "status": {"status", "prose"},
    "deadline": {"deadline", "prose"},
}


def _repair(values: dict[str, str], order: list[str]) -> tuple[dict[str, str], bool, list[str]]:
    """Re-slot core cells by content when they slid left; returns (values, repaired, leftovers)."""
    present = {k: v for k, v in values.items() if v.strip()}
    classes = {k: _classify(v) for k, v in present.items()}
    if all(classes[k] in _COMPATIBLE[k] for k in present):
        return values, False, []
    # Cells in source order, regardless of their column.
    ordered = [(values[k], classes[k]) for k in order if k in present]
    fixed = {k: "" for k in order}
    leftovers: list[str] = []
    unit_cells = [v for v, c in ordered if c == "units"]
    if unit_cells:
        if len(unit_cells) == 1 or "lead" not in order:
            target = "responsible" if "responsible" in order else "lead"
            fixed[target] = "，".join(unit_cells)
        else:
            fixed["lead"] = unit_cells[0]
            fixed["responsible"] = "，".join(unit_cells[1:])
    for value, cls in ordered:
        if cls == "units":
            continue
        if cls == "status" and "status" in order and not fixed["status"]:
            fixed["status"] = value
        elif cls == "deadline" and "deadline" in order and not fixed["deadline"]:
            fixed["deadline"] = value
        elif "requirement" in order and not fixed["requirement"]:
            fixed["requirement"] = value
        elif "status" in order and not fixed["status"]:
            fixed["status"] = value
        else:
            leftovers.append(value)
    return fixed, True, leftovers


def _split_heading(text: str) -> tuple[list[tuple[str, str, str]], str]:
    """Peel section/subsection headings off the front of a cell.

    Returns ([(kind, numeral, title)], rest) where rest starts with a task number (or is empty).
    """
    found: list[tuple[str, str, str]] = []
    rest = text.strip()
    while True:
        m = SECTION_RE.match(rest)
        kind = "section"
        if not m:
            m = SUBSECTION_RE.match(rest)
            kind = "subsection"
        if not m:
            return found, rest
        numeral, body = m.group(1), m.group(2)
        # The heading title ends where a subsection or a task number begins.
        cut = None
        for rx in (_EMBEDDED_SUB_RE, _EMBEDDED_TASK_RE):
            for mm in rx.finditer(body):
                if mm.start() > 0:
                    cut = mm.start() if cut is None else min(cut, mm.start())
                    break
        if cut is None:
            found.append((kind, numeral, body.strip()))
            return found, ""
        found.append((kind, numeral, body[:cut].strip()))
        rest = body[cut:].strip()


def interpret_rows(rows: list[RawRow], source: str = "", sheet: str | None = None) -> TaskTable:
    """Turn raw rows into tasks: header by synonyms, hierarchy, shift repair, normalisation."""
    problems: list[LoadProblem] = []
    found = _find_header(rows)
    if found is None:
        raise InputError(
            f"{source}：找不到表头。表格需要一行列名，至少包含“工作任务”（或 任务/重点任务/任务名称）和另一列"
            "（如 工作要求、牵头单位、责任单位、落实情况）。"
        )
    header_idx, keys, labels = found
    header_sig = [squash(c) for c in rows[header_idx].cells]
    columns = {labels[c]: keys.get(c, f"extra:{labels[c]}") for c in sorted(labels)}
    order = [keys[c] for c in sorted(keys) if keys[c] in _CORE_KEYS]
    has_number_col = "number" in keys.values()
    key_col = {k: c for c, k in keys.items()}
    extra_cols = {c: labels[c] for c in labels if c not in keys}

    section: tuple[str, str] | None = None
    subsection: tuple[str, str] | None = None
    tasks: list[Task] = []
    seen: dict[int, int] = {}
    auto_number = 0
    title_col = key_col.get("title", 0)
    # Tables with no numbering at all get numbered in row order.
    numbered = has_number_col or any(
        TASK_RE.match(_split_heading(r.cells[title_col])[1] or r.cells[title_col])
        for r in rows[header_idx + 1 :] if title_col < len(r.cells) and r.cells[title_col].strip()
    )

    def cell(row: RawRow, key: str) -> str:
        c = key_col.get(key)
        return row.cells[c] if c is not None and c < len(row.cells) else ""

    for row in rows[header_idx + 1 :]:
        flat = [squash(c) for c in row.cells]
        if not any(flat):
            continue
        if flat[: len(header_sig)] == header_sig:  # header repeated on each page
            continue
        raw_line = " | ".join(c.strip() for c in row.cells if c.strip())
        number_text = cell(row, "number").strip()
        title_text = cell(row, "title").strip()
        head = title_text
        if has_number_col and number_text and not re.fullmatch(r"[（(]?\s*\d{1,4}\s*[)）.、．]?", number_text):
            head = (number_text + " " + title_text).strip() if number_text != title_text else number_text
        if not head:
            head = next((c.strip() for c in row.cells if c.strip()), "")
        others = [
            c for i, c in enumerate(row.cells)
            if i not in (key_col.get("title"), key_col.get("number")) and squash(c) and squash(c) != squash(head)
        ]
        headings, rest = _split_heading(head)
        for kind, numeral, htitle in headings:
            if kind == "section":
                section = (numeral, normalize_text(htitle))
                subsection = None
            else:
                subsection = (f"（{numeral}）", normalize_text(htitle))
        if headings and not rest and not others:
            continue
        number: int | None = None
        title = rest if headings else head
        if has_number_col and re.fullmatch(r"[（(]?\s*\d{1,4}\s*[)）.、．]?", number_text):
            number = int(re.sub(r"\D", "", number_text))
            title = title_text
            m = TASK_RE.match(title)
            if m and int(m.group(1) or m.group(2)) == number:
                title = m.group(3)
        else:
            m = TASK_RE.match(title)
            if m:
                number = int(m.group(1) or m.group(2))
                title = m.group(3)
        if number is None:
            if tasks and not squash(title_text) and not number_text:
                # A continuation row (a cell split over two rows): append to the previous task.
                prev = tasks[-1]
                for key in ("requirement", "status"):
                    extra_text = normalize_text(cell(row, key))
                    if extra_text:
                        setattr(prev, key, (getattr(prev, key) + extra_text) if getattr(prev, key) else extra_text)
                for key in ("lead", "responsible"):
                    marked, partners, plain = parse_unit_cell(cell(row, key))
                    units = marked + partners + plain
                    getattr(prev, key).extend(n for n, _ in units if n not in getattr(prev, key))
                problems.append(LoadProblem(row.number, f"没有任务编号，已并入第 {prev.number} 项", raw_line, "info"))
                continue
            if not numbered:
                auto_number += 1
                number = auto_number
            else:
                problems.append(LoadProblem(row.number, "无法识别：不是标题行，也没有任务编号，已跳过", raw_line))
                continue
        values = {k: cell(row, k) for k in order}
        values, repaired, leftovers = _repair(values, order)
        if repaired:
            problems.append(LoadProblem(row.number, f"第 {number} 项单元格错位，已按内容重新对齐", raw_line, "info"))
        # A unit's column gives its role unless the cell says 牵头 / 配合 next to its name.
        lead_marked, lead_partners, lead_plain = parse_unit_cell(values.get("lead", ""))
        resp_marked, resp_partners, resp_plain = parse_unit_cell(values.get("responsible", ""))
        lead_all = lead_marked + lead_plain + resp_marked
        resp_units = lead_partners + resp_partners + resp_plain
        notes: dict[str, str] = {}
        lead_names: list[str] = []
        resp_names: list[str] = []
        for name, note in lead_all:
            if name not in lead_names:
                lead_names.append(name)
            if note:
                notes[name] = note
        for name, note in resp_units:
            if name not in resp_names and name not in lead_names:
                resp_names.append(name)
            if note:
                notes[name] = note
        extra = {label: normalize_text(row.cells[c]) for c, label in extra_cols.items()
                 if c < len(row.cells) and row.cells[c].strip()}
        if "remark" in key_col and cell(row, "remark").strip():
            extra[labels[key_col["remark"]]] = normalize_text(cell(row, "remark"))
        if leftovers:
            extra["未归类"] = "；".join(normalize_text(v) for v in leftovers)
            problems.append(LoadProblem(row.number, "有无法归类的单元格，已保存在“未归类”", "；".join(leftovers), "info"))
        task = Task(
            number=number,
            section=section[0] if section else None,
            section_title=section[1] if section else None,
            subsection=subsection[0] if subsection else None,
            subsection_title=subsection[1] if subsection else None,
            title=normalize_text(title),
            requirement=normalize_text(values.get("requirement", "")),
            lead=lead_names,
            responsible=resp_names,
            status=normalize_text(values.get("status", "")),
            deadline=normalize_text(values.get("deadline", "")) or None,
            unit_notes=notes,
            extra=extra,
            source_row=row.number,
            raw={labels.get(c, str(c)): v for c, v in enumerate(row.cells) if v.strip()},
        )
        if number in seen:
            problems.append(LoadProblem(row.number, f"任务编号 {number} 与第 {seen[number]} 行重复，已跳过", raw_line))
            continue
        seen[number] = row.number
        tasks.append(task)
    if not tasks:
        problems.append(LoadProblem(None, "表格中没有找到任何任务行"))
    return TaskTable(source=source, tasks=tasks, problems=problems, columns=columns, sheet=sheet)


def load_tasks(path: str | Path, sheet: str | None = None) -> TaskTable:
    """Read and interpret a task table file (any supported format)."""
    path = Path(path)
    rows, used = read_rows(path, sheet)
    if not rows:
        raise InputError(f"{path.name}：文件中没有表格内容。")
    return interpret_rows(rows, source=path.name, sheet=used)


def tasks_to_json(tasks: Iterable[Task]) -> list[dict[str, Any]]:
    return [t.to_json() for t in tasks]
