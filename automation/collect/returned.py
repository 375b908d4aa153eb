"""Read a returned workbook's 任务清单 sheet: find the header, match rows by task number, judge values.

No ledger access and no I/O: :mod:`automation.collect.pipeline` identifies the file (batch, unit, layout)
and hands this module the parsed cells, the unit's assignments and the rules; it gets back the
responses to store and every problem found, each naming its sheet and cell.

Rows are matched by the 序号 column, never by position, so re-sorted, hidden, inserted or
deleted rows are fine.  Columns are matched by header text (the layout's own headers first,
then common synonyms), so an edited template or a unit that inserted a column still reads.
Locked (issued) columns are compared with what was issued: an edit is reported, never applied.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from automation.collect.safety import ParsedBook, ParsedSheet
from automation.collect.values import (
    FORMULA_TRIGGERS,
    UNREPORTED,
    ValueProblem,
    cell_ref,
    cell_text,
    looks_like_formula,
    parse_date,
    parse_status,
    parse_task_number,
)
from automation.ledger.records import Response
from automation.model import Problem, Task
from automation.text import canonical_status, squash
from automation.workbook.layout import (
    CONTACT_LABEL,
    FILL_KEYS,
    HELP_SHEET,
    LISTS_SHEET,
    META_SHEET,
    PHONE_LABEL,
    TASK_SHEET,
    Layout,
)

__all__ = ["SheetReading", "Evaluation", "Rules", "NoTaskSheet", "read_task_sheet", "read_metadata", "evaluate"]

#: Extra header spellings (after the layout's own headers) for each column key.
HEADER_SYNONYMS: dict[str, tuple[str, ...]] = {
    "number": ("序号", "编号", "任务编号", "任务序号"),
    "title": ("工作任务", "任务", "重点任务", "任务名称", "主要任务", "工作事项"),
    "requirement": ("工作要求", "具体要求", "具体措施", "任务要求", "主要内容"),
    "lead": ("牵头单位", "牵头部门"),
    "responsible": ("责任单位", "责任部门", "配合单位"),
    "role": ("本单位角色", "角色", "本单位职责"),
    "status": ("落实情况", "完成情况", "进展情况", "推进情况", "完成状态", "状态"),
    "progress": ("工作进展及成效", "工作进展", "进展及成效", "工作成效", "主要工作及成效", "落实情况说明"),
    "completed_on": ("完成时间", "完成日期", "实际完成时间"),
    "evidence": ("佐证材料", "佐证", "证明材料"),
    "issues": ("存在问题及下步打算", "存在问题", "下步打算", "存在问题和下步打算", "问题及打算"),
}
_HEADER_SCAN_ROWS = 60
_HEADER_NOISE = re.compile(r"[*＊\s]|[（(]\s*(?:必填|选填|必选|请选择|下拉选择)\s*[)）]")
_SPACES = re.compile(r"\s+")
_LOOSE_DROP = re.compile(r"[\s、，,；;。.．：:（）()\[\]【】“”\"'‘’/／\-—·]")


class NoTaskSheet(Exception):
    """No sheet with a recognisable task header (the reason is for the office)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Rules:
    """Validation rules from ``[collect]`` in config.toml."""

    require_progress_when_done: bool = True
    no_future_completion: bool = True


@dataclass
class SheetReading:
    """Where the task table is in a sheet and what is around it."""

    sheet: ParsedSheet
    header_row: int
    columns: dict[str, int]            # column key -> 0-based column index
    missing: list[str]                 # layout keys whose header was not found
    title: str = ""                    # text above the header (the workbook's title line)
    contact: str = ""
    phone: str = ""
    contact_cell: str | None = None
    phone_cell: str | None = None


@dataclass
class Evaluation:
    """What a returned sheet says: the answers to store and every problem, each naming its cell.

    ``formula_cells`` are texts written as formulas or links (``=…``, DDE): any of them refuses
    the whole file.
    """

    responses: list[Response] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    formula_cells: list[Problem] = field(default_factory=list)

    @property
    def tasks(self) -> list[int]:
        return [r.task_number for r in self.responses]


def _header_key(value: Any) -> str:
    """Cheap comparison key for header labels (headers are short; long cells are never headers)."""
    if not isinstance(value, str) or not value or len(value) > 40:
        return ""
    return _short_key(value)


@functools.lru_cache(maxsize=4096)
def _short_key(value: str) -> str:
    # Every returned file repeats the same few header labels: normalise each spelling once.
    return _HEADER_NOISE.sub("", unicodedata.normalize("NFKC", value))


def _loose(value: Any) -> str:
    return _LOOSE_DROP.sub("", squash(cell_text(value)))


def read_metadata(book: ParsedBook) -> dict[str, str] | None:
    """Key/value rows of the very hidden metadata sheet, or None when the sheet is absent."""
    sheet = book.sheet(META_SHEET)
    if sheet is None:
        return None
    out: dict[str, str] = {}
    for row in sheet.rows:
        if not row:
            continue
        key = cell_text(row[0])
        if key and key not in out:
            out[key] = cell_text(row[1]) if len(row) > 1 else ""
    return out


_CANDIDATES: dict[int, tuple[Layout, dict[str, list[str]]]] = {}


def _header_candidates(layout: Layout) -> dict[str, list[str]]:
    cached = _CANDIDATES.get(id(layout))
    if cached is not None and cached[0] is layout:
        return cached[1]
    out: dict[str, list[str]] = {}
    for col in layout.columns:
        names = [_header_key(col.header)]
        names += [_header_key(s) for s in HEADER_SYNONYMS.get(col.key, ())]
        out[col.key] = list(dict.fromkeys(n for n in names if n))
    if len(_CANDIDATES) > 32:
        _CANDIDATES.clear()
    _CANDIDATES[id(layout)] = (layout, out)
    return out


def _match_header(row: Sequence[Any], candidates: Mapping[str, list[str]]) -> dict[str, int]:
    keys = [_header_key(v) for v in row]
    found: dict[str, int] = {}
    taken: set[int] = set()
    # The layout's own header first (exact), then synonyms, so a renamed column keeps its key.
    for rank in range(max((len(v) for v in candidates.values()), default=0)):
        for key, names in candidates.items():
            if key in found or rank >= len(names):
                continue
            for i, k in enumerate(keys):
                if k and k == names[rank] and i not in taken:
                    found[key] = i
                    taken.add(i)
                    break
    return found


def read_task_sheet(book: ParsedBook, layout: Layout, hints: Mapping[str, str] | None = None) -> SheetReading:
    """Find the task table: the 任务清单 sheet if present, else the first sheet with its header.

    ``hints`` are the metadata's unsigned ``contact_cell``/``phone_cell``: a first guess only.
    """
    candidates = _header_candidates(layout)
    order = sorted(
        (s for s in book.sheets if s.name not in (META_SHEET, LISTS_SHEET, HELP_SHEET)),
        key=lambda s: (s.name != TASK_SHEET, s.visible != "visible"),
    )
    best: tuple[int, ParsedSheet, int, dict[str, int]] | None = None
    enough = max(2, len(layout.columns) - 1)
    hint = _int(hints.get("header_row")) if hints else None
    for sheet in order:
        scan = list(range(min(len(sheet.rows), _HEADER_SCAN_ROWS)))
        if hint and 0 < hint <= len(scan):
            scan.remove(hint - 1)
            scan.insert(0, hint - 1)
        for r in scan:
            row = sheet.rows[r]
            found = _match_header(row, candidates)
            if "number" not in found or len(found) < 2:
                continue
            if best is None or len(found) > best[0]:
                best = (len(found), sheet, r, found)
            if len(found) >= enough:
                break
        if best is not None and best[1] is sheet:
            break
    if best is None:
        number = next((c.header for c in layout.columns if c.key == "number"), "序号")
        raise NoTaskSheet(f"找不到任务清单的表头（含“{number}”和“落实情况”等列）。请使用下发的工作簿填报，不要删除表头行。")
    _score, sheet, header_row, columns = best
    fill_keys = [c.key for c in layout.columns if c.fill_in and c.key in FILL_KEYS]
    if fill_keys and not any(k in columns for k in fill_keys):
        raise NoTaskSheet(f"工作表“{sheet.name}”中找不到任何填报列（{'、'.join(c.header for c in layout.columns if c.fill_in)}）。"
                          "请使用下发的工作簿填报，不要删除或改动表头。")
    reading = SheetReading(sheet, header_row, columns, [c.key for c in layout.columns if c.key not in columns])
    _read_above_header(reading, hints or {})
    return reading


def _int(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _ref_to_rc(ref: str) -> tuple[int, int] | None:
    m = re.fullmatch(r"([A-Z]{1,3})([0-9]{1,5})", (ref or "").strip().upper())
    if not m:
        return None
    col = 0
    for ch in m.group(1):
        col = col * 26 + ord(ch) - 64
    return int(m.group(2)) - 1, col - 1


def _is_label(text: str) -> bool:
    key = _SPACES.sub("", text)
    return key.startswith((CONTACT_LABEL, PHONE_LABEL)) or bool(re.search(r"[：:]", key))


def _label_value(rows: Sequence[Sequence[Any]], r: int, i: int, label: str, hint: str | None) -> tuple[str, str] | None:
    """The answer next to a ``填报联系人：`` label: typed into the label cell, else in the hinted
    cell (from the metadata), else the first following cell that is not another label."""
    row = rows[r]
    m = re.match(r"\s*" + r"\s*".join(label) + r"\s*[：:]?\s*(.*)$", cell_text(row[i]), re.S)
    rest = m.group(1).strip() if m else ""
    if rest:
        return rest, cell_ref(r, i)
    rc = _ref_to_rc(hint or "")
    if rc is not None and rc[0] == r and rc[1] > i and rc[1] < len(row):
        value = cell_text(row[rc[1]])
        if not value or not _is_label(value):
            return value, cell_ref(*rc)
    for j in range(i + 1, len(row)):
        value = cell_text(row[j])
        if value:
            return (value, cell_ref(r, j)) if not _is_label(value) else None
    return None


def _read_above_header(reading: SheetReading, hints: Mapping[str, str]) -> None:
    titles: list[str] = []
    rows = reading.sheet.rows
    for r, row in enumerate(rows[:reading.header_row]):
        for i, value in enumerate(row):
            if value == "" or value is None:
                continue
            key = _SPACES.sub("", cell_text(value))
            if not key:
                continue
            if key.startswith(CONTACT_LABEL):
                hit = _label_value(rows, r, i, CONTACT_LABEL, hints.get("contact_cell"))
                if hit and not reading.contact:
                    reading.contact, reading.contact_cell = hit
            elif key.startswith(PHONE_LABEL):
                hit = _label_value(rows, r, i, PHONE_LABEL, hints.get("phone_cell"))
                if hit and not reading.phone:
                    reading.phone, reading.phone_cell = hit
            elif len(titles) < 4 and i < 3 and not _is_label(cell_text(value)):
                titles.append(cell_text(value))
    reading.title = " ".join(titles)


def _cell(row: Sequence[Any], i: int | None) -> Any:
    if i is None or i >= len(row):
        return ""
    return row[i]


def _problem(severity: str, sheet: str, cell: str | None, task: int | None, key: str | None, message: str,
             raw: str = "") -> Problem:
    return Problem(message, severity, sheet, cell, task, key, raw=raw)


def _typed(texts: Mapping[str, str]) -> str:
    """What the unit typed in a row that is not taken (kept with its problem: nothing typed is lost)."""
    kept = {k: v for k, v in texts.items() if v}
    return json.dumps(kept, ensure_ascii=False) if kept else ""


def _issued_text(key: str, task: Task, role: str) -> str:
    if key == "title":
        return task.title
    if key == "requirement":
        return task.requirement
    if key == "lead":
        return "、".join(task.lead)
    if key == "responsible":
        return "、".join(task.responsible)
    if key == "role":
        return role
    if key == "due":
        return task.deadline or ""
    return ""


def _locked_changed(key: str, value: Any, task: Task, issued: str) -> bool:
    if isinstance(value, str) and value == issued:  # the common case, without normalising long text
        return False
    got = _loose(value)
    want = _loose(issued)
    if key in ("role", "due"):  # the builder adds the scope note / 「（已逾期）」
        return not got.startswith(want)
    if key in ("lead", "responsible") and got != want:
        # Whatever separators the builder used, the same names in the same order are unchanged.
        return got != _loose("".join(getattr(task, key)))
    return got != want


_LOCKED_KEYS = ("title", "requirement", "lead", "responsible", "role", "due")
_ISSUED: dict[tuple[int, str], tuple[Task, dict[str, str]]] = {}


def _issued_texts(task: Task, role: str) -> dict[str, str]:
    """What was issued in each locked column for this task and role (kept across files: every
    unit's workbook repeats the same tasks)."""
    cached = _ISSUED.get((id(task), role))
    if cached is not None and cached[0] is task:
        return cached[1]
    texts = {key: _issued_text(key, task, role) for key in _LOCKED_KEYS}
    if len(_ISSUED) > 8192:
        _ISSUED.clear()
    _ISSUED[(id(task), role)] = (task, texts)
    return texts


def _formula(text: str) -> bool:
    # The cheap test first: a formula starts with a trigger (texts are stripped), DDE has a "|".
    return bool(text) and (text[0] in FORMULA_TRIGGERS or "|" in text) and looks_like_formula(text)


@dataclass(frozen=True, slots=True)
class _Sheet:
    """What judging the rows of one file needs, worked out once per file."""

    name: str
    cols: Mapping[str, int]               # column key -> 0-based index
    headers: Mapping[str, str]            # column key -> the layout's header (for messages)
    fill_cols: list[tuple[str, int]]      # fill-in columns present
    locked_cols: list[tuple[str, int]]    # issued (locked) columns present
    statuses: tuple[str, ...]
    known: Mapping[str, str]              # the layout's options, typed exactly → the stored status
    year: int
    received_on: dt.date
    rules: Rules
    status_extra: dict[str, str] | None

    @classmethod
    def of(cls, reading: SheetReading, layout: Layout, year: int, received_on: dt.date, rules: Rules,
           status_extra: dict[str, str] | None) -> _Sheet:
        cols = reading.columns
        return cls(
            name=reading.sheet.name, cols=cols, headers={c.key: c.header for c in layout.columns},
            fill_cols=[(c.key, cols[c.key]) for c in layout.columns
                       if c.fill_in and c.key in FILL_KEYS and c.key in cols],
            locked_cols=[(c.key, cols[c.key]) for c in layout.columns
                         if not c.fill_in and c.key in cols and c.key in _LOCKED_KEYS],
            statuses=layout.statuses, known={o: canonical_status(o) or o for o in layout.statuses if o},
            year=year, received_on=received_on, rules=rules, status_extra=status_extra)

    def ref(self, r: int, key: str) -> str | None:
        return cell_ref(r, self.cols[key]) if key in self.cols else None


#: A task's row: (row index, the row, its fill-in texts, whether any is filled in).
_Row = tuple[int, Sequence[Any], dict[str, str], bool]


def evaluate(
    reading: SheetReading,
    layout: Layout,
    assigned: Mapping[int, str],
    tasks: Mapping[int, Task],
    year: int,
    received_on: dt.date,
    rules: Rules,
    status_extra: dict[str, str] | None = None,
) -> Evaluation:
    """Judge every row of the task table against the unit's assignments (task number → role).

    This runs for every row of every returned file, so the loops below avoid a function call per
    cell where a plain test answers (blank cells, unchanged issued text, task numbers as numbers).
    """
    ev = Evaluation()
    sheet = _Sheet.of(reading, layout, year, received_on, rules, status_extra)
    _check_contact(ev, reading, sheet.name)
    chosen = _rows_by_number(ev, reading, sheet)
    for number, (r, row, texts, has_content) in sorted(chosen.items()):
        if number not in assigned:
            if has_content:
                ev.problems.append(_problem(
                    "error", sheet.name, cell_ref(r, sheet.cols["number"]), number, None,
                    f"第 {number} 项任务不是分配给本单位的任务，该行内容未采用。", _typed(texts)))
            continue
        task = tasks.get(number)
        if task is not None:
            _check_locked(ev, sheet, r, row, number, task, assigned[number])
        if has_content and (response := _evaluate_row(ev, sheet, r, row, texts, number)) is not None:
            ev.responses.append(response)
    _report_missing(ev, sheet, assigned, chosen)
    return ev


def _check_contact(ev: Evaluation, reading: SheetReading, name: str) -> None:
    """The contact and phone above the table must not be formulas either."""
    for label, value, cell in (("填报联系人", reading.contact, reading.contact_cell),
                               ("联系电话", reading.phone, reading.phone_cell)):
        if value and looks_like_formula(value):
            ev.formula_cells.append(_problem("error", name, cell, None, None,
                                             f"{label}“{value[:40]}”是公式或链接的写法"))


def _rows_by_number(ev: Evaluation, reading: SheetReading, sheet: _Sheet) -> dict[int, _Row]:
    """Each task number's row: the first with content wins (a repeat with content is reported);
    a row without a number but with something filled in beside it is reported and not used."""
    chosen: dict[int, _Row] = {}
    name, cols, fill_cols = sheet.name, sheet.cols, sheet.fill_cols
    num_col = cols["number"]
    fill_idx = [i for _k, i in fill_cols]
    width = max(cols.values()) + 1
    pad = ("",) * width
    rows = reading.sheet.rows
    for r in range(reading.header_row + 1, len(rows)):
        row = rows[r]
        if len(row) < width:  # rows of a parsed sheet are rectangular; a hand-made one may not be
            row = (*row, *pad[len(row):])
        raw = row[num_col]
        number = int(raw) if type(raw) is float and raw.is_integer() and 0 < raw < 1e6 else parse_task_number(raw)
        if number is None:
            # Section headings and notes: only worth a look when something was filled in beside them.
            if any(cell_text(row[i]) for i in fill_idx if row[i] not in ("", None)):
                ev.problems.append(_problem(
                    "warning", name, cell_ref(r, num_col), None, "number",
                    f"第 {r + 1} 行没有有效的{sheet.headers.get('number', '序号')}（“{cell_text(raw)[:20]}”），"
                    "该行填写的内容未采用。请不要修改序号列。",
                    _typed({k: cell_text(row[i]) for k, i in fill_cols})))
            continue
        texts = {k: "" if (v := row[i]) == "" or v is None else
                 v.strip() if type(v) is str and "\r" not in v else cell_text(v) for k, i in fill_cols}
        has_content = any(texts.values())
        if number in chosen:
            first_r, _row, _texts, first_content = chosen[number]
            if has_content and first_content:
                ev.problems.append(_problem(
                    "error", name, cell_ref(r, num_col), number, "number",
                    f"第 {number} 项任务在表中出现了两次（第 {first_r + 1} 行和第 {r + 1} 行），采用第 {first_r + 1} 行，"
                    f"第 {r + 1} 行未采用。", _typed(texts)))
            elif has_content:
                chosen[number] = (r, row, texts, has_content)
            continue
        chosen[number] = (r, row, texts, has_content)
    return chosen


def _check_locked(ev: Evaluation, sheet: _Sheet, r: int, row: Sequence[Any], number: int, task: Task,
                  role: str) -> None:
    """Issued (locked) cells that were edited: reported, never applied."""
    issued_texts = _issued_texts(task, role)
    for key, col in sheet.locked_cols:
        value = row[col]
        issued = issued_texts[key]
        if value == issued and type(value) is str:
            continue
        if _locked_changed(key, value, task, issued):
            ev.problems.append(_problem(
                "warning", sheet.name, cell_ref(r, col), number, key,
                f"第 {number} 项的“{sheet.headers.get(key, key)}”是下发内容，不能修改；修改未采用，仍按下发内容处理。"))


def _report_missing(ev: Evaluation, sheet: _Sheet, assigned: Mapping[int, str], chosen: Mapping[int, _Row]) -> None:
    missing = [n for n in sorted(assigned) if n not in chosen]
    if missing:
        shown = "、".join(str(n) for n in missing[:20]) + ("等" if len(missing) > 20 else "")
        ev.problems.append(_problem(
            "warning", sheet.name, None, None, "number",
            f"表中找不到第 {shown} 项任务的行（可能被删除），这些任务本次没有报送。"))


def _evaluate_row(ev: Evaluation, sheet: _Sheet, r: int, row: Sequence[Any], texts: Mapping[str, str],
                  number: int) -> Response | None:
    """One assigned task's filled-in row → its response (None: the row is not used)."""
    if _has_formula(ev, sheet, r, texts, number):
        return None
    status = _row_status(ev, sheet, r, row, number, texts)
    if status is None:
        return None
    progress = texts.get("progress", "")
    if sheet.rules.require_progress_when_done and status == "已完成" and not progress and "progress" in sheet.cols:
        ev.problems.append(_problem(
            "error", sheet.name, cell_ref(r, sheet.cols["progress"]), number, "progress",
            f"第 {number} 项选择了“已完成”，但没有填写“{sheet.headers.get('progress', '工作进展及成效')}”；本行未采用，"
            "请补充后重新报送。", _typed(texts)))
        return None
    completed = _completed_on(ev, sheet, r, row, number)
    return Response(number, status, progress, completed.isoformat() if completed else None,
                    texts.get("evidence", ""), texts.get("issues", ""))


def _has_formula(ev: Evaluation, sheet: _Sheet, r: int, texts: Mapping[str, str], number: int) -> bool:
    # One cheap pass over the texts; the exact formula test only where one could be.
    if not any(t and (t[0] in FORMULA_TRIGGERS or "|" in t) for t in texts.values()):
        return False
    dangerous = False
    for key, text in texts.items():
        if _formula(text):
            dangerous = True
            ev.formula_cells.append(_problem(
                "error", sheet.name, cell_ref(r, sheet.cols[key]), number, key,
                f"第 {number} 项的“{sheet.headers.get(key, key)}”内容“{text[:40]}”是公式或链接的写法（以 = + - @ 开头）"))
    return dangerous


def _row_status(ev: Evaluation, sheet: _Sheet, r: int, row: Sequence[Any], number: int,
                texts: Mapping[str, str] | None = None) -> str | None:
    """The row's status (未填报 with a warning when blank); None when it cannot be read (reported)."""
    status_value = _cell(row, sheet.cols["status"]) if "status" in sheet.cols else ""
    status: str | None
    if type(status_value) is str and status_value in sheet.known:
        status = sheet.known[status_value]  # a dropdown choice, as the dropdown wrote it
    else:
        try:
            status = parse_status(status_value, sheet.statuses, sheet.status_extra)
        except ValueProblem as exc:
            ev.problems.append(_problem("error", sheet.name, sheet.ref(r, "status"), number, "status",
                                        f"第 {number} 项：{exc}；本行未采用。", _typed(texts or {})))
            return None
    if status is None:
        status = UNREPORTED
        ev.problems.append(_problem("warning", sheet.name, sheet.ref(r, "status"), number, "status",
                                    f"第 {number} 项没有选择{sheet.headers.get('status', '落实情况')}，已记为“{UNREPORTED}”。"))
    return status


def _completed_on(ev: Evaluation, sheet: _Sheet, r: int, row: Sequence[Any], number: int) -> dt.date | None:
    """The 完成时间 as a date; a bad or future date is reported and not recorded."""
    if "completed_on" not in sheet.cols:
        return None
    completed: dt.date | None = None
    try:
        completed = parse_date(_cell(row, sheet.cols["completed_on"]), sheet.year)
    except ValueProblem as exc:
        ev.problems.append(_problem("error", sheet.name, sheet.ref(r, "completed_on"), number, "completed_on",
                                    f"第 {number} 项：{exc}；本项未记录完成时间。",
                                    _typed({"completed_on": cell_text(_cell(row, sheet.cols["completed_on"]))})))
    if completed is not None and sheet.rules.no_future_completion and completed > sheet.received_on:
        ev.problems.append(_problem(
            "error", sheet.name, sheet.ref(r, "completed_on"), number, "completed_on",
            f"第 {number} 项的完成时间 {completed.isoformat()} 晚于报送日期 {sheet.received_on.isoformat()}，"
            "本项未记录完成时间。尚未完成的请选“推进中”并留空完成时间。",
            _typed({"completed_on": cell_text(_cell(row, sheet.cols["completed_on"]))})))
        completed = None
    return completed
