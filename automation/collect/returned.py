"""Judge a returned 任务清单 sheet: which task each row answers, and what its values say.

No ledger access and no I/O: :mod:`automation.collect.pipeline` identifies the file (batch, unit, layout),
:mod:`~automation.collect.header` finds the table, and this module gets the parsed cells, the unit's
assignments and the rules; it gives back the responses to store and every problem found, each
naming its sheet and cell.

A row is identified by its issued (locked) task text first and its 序号 second: re-sorted, hidden,
inserted or deleted rows are fine, and when a unit swapped two 序号 the text wins and a warning says
which task the row was stored under.  Locked columns are compared with what was issued: an edit
is reported, never applied.  Nothing a unit typed is dropped without a word: a fill-in column
that cannot be found, a column the workbook never had, a formula without a value, a text too
long for a cell are all problems.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from automation.collect.header import (
    HEADER_SYNONYMS,
    NoTaskSheet,
    SheetReading,
    read_metadata,
    read_task_sheet,
)
from automation.collect.values import (
    CELL_TEXT_LIMIT,
    FORMULA_TRIGGERS,
    UNREPORTED,
    ValueProblem,
    cell_ref,
    cell_text,
    col_letters,
    looks_like_formula,
    parse_date,
    parse_status,
    parse_task_number,
)
from automation.ledger.records import Response
from automation.model import Problem, Task
from automation.text import canonical_status, squash
from automation.workbook.layout import FILL_KEYS, Layout

__all__ = ["SheetReading", "Evaluation", "Rules", "NoTaskSheet", "read_task_sheet", "read_metadata", "evaluate",
           "HEADER_SYNONYMS", "TextIndex", "text_index", "role_shown"]

_LOOSE_DROP = re.compile(r"[\s、，,；;。.．：:（）()\[\]【】“”\"'‘’/／\-—·]")


@dataclass(frozen=True)
class Rules:
    """Validation rules from ``[collect]`` in config.toml."""

    require_progress_when_done: bool = True
    no_future_completion: bool = True


@dataclass
class Evaluation:
    """What a returned sheet says: the answers to store and every problem, each naming its cell.

    ``formula_cells`` are texts written as formulas or links (``=…``, DDE): any of them refuses
    the whole file.  (A real formula the file has no value for is kept as text with a warning.)
    """

    responses: list[Response] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    formula_cells: list[Problem] = field(default_factory=list)

    @property
    def tasks(self) -> list[int]:
        return [r.task_number for r in self.responses]


def _loose(value: Any) -> str:
    return _LOOSE_DROP.sub("", squash(cell_text(value)))


def role_shown(value: Any, role: str) -> bool:
    """Whether a 本单位角色 cell shows ``role`` (as issued; a scope note may follow)."""
    if isinstance(value, str) and value == role:
        return True
    return bool(role) and _loose(value).startswith(_loose(role))


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


class TextIndex:
    """The batch's tasks by their issued text (title and requirement, compared loosely), so a row
    is known by what it says even when its 序号 was changed."""

    def __init__(self, tasks: Mapping[int, Task]) -> None:
        self.tasks = tasks
        self._pair: dict[tuple[str, str], int | None] = {}
        self._title: dict[str, int | None] = {}
        self._requirement: dict[str, int | None] = {}
        for n, t in tasks.items():
            title, req = _loose(t.title), _loose(t.requirement)
            for table, key in ((self._pair, (title, req)), (self._title, title), (self._requirement, req)):
                if key and key != ("", ""):
                    table[key] = n if key not in table else None  # type: ignore[index]  # None: not unique

    def find(self, title: Any, requirement: Any) -> int | None:
        """The one task whose issued title and requirement the cells show (None: no single one)."""
        t = _loose(title) if title not in ("", None) else ""
        q = _loose(requirement) if requirement not in ("", None) else ""
        if t and q and (n := self._pair.get((t, q))):
            return n
        if t and (n := self._title.get(t)):
            return n
        if q and not t and (n := self._requirement.get(q)):
            return n
        return None


_INDEXES: dict[int, tuple[Mapping[int, Task], TextIndex]] = {}


def text_index(tasks: Mapping[int, Task]) -> TextIndex:
    """The index of ``tasks`` (kept: every file of a run is judged against the same tasks)."""
    cached = _INDEXES.get(id(tasks))
    if cached is not None and cached[0] is tasks:
        return cached[1]
    index = TextIndex(tasks)
    if len(_INDEXES) > 16:
        _INDEXES.clear()
    _INDEXES[id(tasks)] = (tasks, index)
    return index


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
    tasks: Mapping[int, Task]
    index: TextIndex
    formulas: Mapping[tuple[int, int], str]   # (row, col) → formula text, for formulas without a value

    @classmethod
    def of(cls, reading: SheetReading, layout: Layout, year: int, received_on: dt.date, rules: Rules,
           status_extra: dict[str, str] | None, tasks: Mapping[int, Task]) -> _Sheet:
        cols = reading.columns
        return cls(
            name=reading.sheet.name, cols=cols, headers={c.key: c.header for c in layout.columns},
            fill_cols=[(c.key, cols[c.key]) for c in layout.columns
                       if c.fill_in and c.key in FILL_KEYS and c.key in cols],
            locked_cols=[(c.key, cols[c.key]) for c in layout.columns
                         if not c.fill_in and c.key in cols and c.key in _LOCKED_KEYS],
            statuses=layout.statuses, known={o: canonical_status(o) or o for o in layout.statuses if o},
            year=year, received_on=received_on, rules=rules, status_extra=status_extra, tasks=tasks,
            index=text_index(tasks), formulas=reading.sheet.formulas)

    def ref(self, r: int, key: str) -> str | None:
        return cell_ref(r, self.cols[key]) if key in self.cols else None

    def agrees(self, row: Sequence[Any], number: int) -> bool:
        """Whether the row's issued text is that of task ``number`` (or shows no text to judge by)."""
        task = self.tasks.get(number)
        if task is None:
            return False
        for key in ("title", "requirement"):
            col = self.cols.get(key)
            if col is None:
                continue
            value = row[col]
            if value == "" or value is None:
                continue
            issued = task.title if key == "title" else task.requirement
            return (value == issued and type(value) is str) or not _locked_changed(key, value, task, issued)
        return True

    def by_text(self, row: Sequence[Any]) -> int | None:
        title, req = self.cols.get("title"), self.cols.get("requirement")
        if title is None and req is None:
            return None
        return self.index.find(_cell(row, title), _cell(row, req))


#: A task's row: (row index, the row, its fill-in texts, whether any is filled in, the fill-in
#: keys whose text is a formula the file had no value for).
_Row = tuple[int, Sequence[Any], dict[str, str], bool, frozenset[str]]
_NONE: frozenset[str] = frozenset()


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
    sheet = _Sheet.of(reading, layout, year, received_on, rules, status_extra, tasks)
    ev.problems.extend(reading.notes)
    _report_missing_columns(ev, reading, layout, sheet)
    _check_contact(ev, reading, sheet.name)
    chosen = _rows_by_number(ev, reading, sheet)
    for number, (r, row, texts, has_content, formulas) in sorted(chosen.items()):
        if number not in assigned:
            if has_content:
                ev.problems.append(_problem(
                    "error", sheet.name, cell_ref(r, sheet.cols["number"]), number, None,
                    f"第 {number} 项任务不是分配给本单位的任务，该行内容未采用。", _typed(texts)))
            continue
        task = tasks.get(number)
        if task is not None:
            _check_locked(ev, sheet, r, row, number, task, assigned[number])
        if has_content and (response := _evaluate_row(ev, sheet, r, row, texts, number, formulas)) is not None:
            ev.responses.append(response)
    _report_missing(ev, sheet, assigned, chosen)
    _report_extra_columns(ev, reading, sheet)
    return ev


def _report_missing_columns(ev: Evaluation, reading: SheetReading, layout: Layout, sheet: _Sheet) -> None:
    """A fill-in column the table no longer has (deleted, or retitled past recognition)."""
    for c in layout.columns:
        if c.fill_in and c.key in FILL_KEYS and c.key not in reading.columns:
            ev.problems.append(_problem(
                "warning", sheet.name, None, None, c.key,
                f"表中找不到“{c.header}”列（可能被删除，或表头改得无法识别），该列的内容本次没有读取。"
                "请使用下发的工作簿，不要删除列或修改表头。"))


def _report_extra_columns(ev: Evaluation, reading: SheetReading, sheet: _Sheet) -> None:
    """Columns the workbook was not issued with (a unit added 备注): their content is not used, and
    the unit is told so rather than losing it in silence."""
    rows = reading.sheet.rows
    if reading.header_row >= len(rows):
        return
    width = max((len(row) for row in rows[reading.header_row:]), default=0)
    taken = set(reading.columns.values())
    extra = [i for i in range(width) if i not in taken]
    if not extra:
        return
    header = rows[reading.header_row]
    for i in extra:
        filled = next((r for r in range(reading.header_row + 1, len(rows))
                       if i < len(rows[r]) and cell_text(rows[r][i])), None)
        if filled is None:
            continue
        label = cell_text(header[i])[:20] if i < len(header) else ""
        ev.problems.append(_problem(
            "warning", sheet.name, cell_ref(filled, i), None, None,
            f"{col_letters(i)} 列" + (f"“{label}”" if label else "") + "不是下发工作簿中的列，其中填写的内容未采用。"
            "如需报送，请填入对应的填报列。"))


def _check_contact(ev: Evaluation, reading: SheetReading, name: str) -> None:
    """The contact and phone above the table must not be formulas either."""
    for label, value, cell in (("填报联系人", reading.contact, reading.contact_cell),
                               ("联系电话", reading.phone, reading.phone_cell)):
        if value and looks_like_formula(value):
            ev.formula_cells.append(_problem("error", name, cell, None, None,
                                             f"{label}“{value[:40]}”是公式或链接的写法"))


def _with_formulas(row: Sequence[Any], r: int, sheet: _Sheet) -> tuple[Sequence[Any], frozenset[str]]:
    """The row with each fill-in formula the file has no value for put in as its text."""
    keys = []
    for key, i in sheet.fill_cols:
        text = sheet.formulas.get((r, i))
        if text is not None and row[i] in ("", None):
            if not keys:
                row = list(row)
            row[i] = text  # type: ignore[index]
            keys.append(key)
    return row, frozenset(keys) if keys else _NONE


def _rows_by_number(ev: Evaluation, reading: SheetReading, sheet: _Sheet) -> dict[int, _Row]:
    """Each task's row: known by its issued text first, its 序号 second; the first with content wins
    (a repeat with content is reported); a row without a number but with something filled in
    beside it is reported and not used."""
    chosen: dict[int, _Row] = {}
    name, cols, fill_cols = sheet.name, sheet.cols, sheet.fill_cols
    num_col = cols["number"]
    fill_idx = [i for _k, i in fill_cols]
    width = max(cols.values()) + 1
    pad = ("",) * width
    rows = reading.sheet.rows
    formulas = bool(sheet.formulas)
    for r in range(reading.header_row + 1, len(rows)):
        row = rows[r]
        if len(row) < width:  # rows of a parsed sheet are rectangular; a hand-made one may not be
            row = (*row, *pad[len(row):])
        from_formula = _NONE
        if formulas:
            row, from_formula = _with_formulas(row, r, sheet)
        raw = row[num_col]
        number = int(raw) if type(raw) is float and raw.is_integer() and 0 < raw < 1e6 else parse_task_number(raw)
        if number is None:
            # Section headings and notes: only worth a look when something was filled in beside them.
            if any(cell_text(row[i]) for i in fill_idx if row[i] not in ("", None)):
                seen = sheet.by_text(row)
                like = f"该行的任务内容是第 {seen} 项，" if seen else ""
                ev.problems.append(_problem(
                    "warning", name, cell_ref(r, num_col), None, "number",
                    f"第 {r + 1} 行没有有效的{sheet.headers.get('number', '序号')}（“{cell_text(raw)[:20]}”），"
                    f"{like}该行填写的内容未采用。请不要修改序号列。",
                    _typed({k: cell_text(row[i]) for k, i in fill_cols})))
            continue
        if not sheet.agrees(row, number) and (seen := sheet.by_text(row)) is not None and seen != number:
            title = sheet.tasks[seen].title
            ev.problems.append(_problem(
                "warning", name, cell_ref(r, num_col), seen, "number",
                f"第 {r + 1} 行的{sheet.headers.get('number', '序号')}是 {number}，但该行的任务内容是第 {seen} 项"
                f"（“{title[:20]}”），已按任务内容记为第 {seen} 项。请不要修改序号列。"))
            number = seen
        texts = {k: "" if (v := row[i]) == "" or v is None else
                 v.strip() if type(v) is str and "\r" not in v else cell_text(v) for k, i in fill_cols}
        has_content = any(texts.values())
        if number in chosen:
            first_r, _row, _texts, first_content, _f = chosen[number]
            if has_content and first_content:
                ev.problems.append(_problem(
                    "error", name, cell_ref(r, num_col), number, "number",
                    f"第 {number} 项任务在表中出现了两次（第 {first_r + 1} 行和第 {r + 1} 行），采用第 {first_r + 1} 行，"
                    f"第 {r + 1} 行未采用。", _typed(texts)))
            elif has_content:
                chosen[number] = (r, row, texts, has_content, from_formula)
            continue
        chosen[number] = (r, row, texts, has_content, from_formula)
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


def _evaluate_row(ev: Evaluation, sheet: _Sheet, r: int, row: Sequence[Any], texts: dict[str, str],
                  number: int, formulas: frozenset[str]) -> Response | None:
    """One assigned task's filled-in row → its response (None: the row is not used)."""
    if formulas:
        _note_formulas(ev, sheet, r, texts, number, formulas)
    if _has_formula(ev, sheet, r, texts, number, formulas):
        return None
    status = _row_status(ev, sheet, r, row, number, texts)
    if status is None:
        return None
    _cut_long(ev, sheet, r, texts, number)
    progress = texts.get("progress", "")
    if (sheet.rules.require_progress_when_done and status == "已完成" and not progress
            and "progress" in sheet.headers):
        gone = "" if "progress" in sheet.cols else "（表中没有这一列）"
        ev.problems.append(_problem(
            "error", sheet.name, sheet.ref(r, "progress"), number, "progress",
            f"第 {number} 项选择了“已完成”，但没有填写“{sheet.headers.get('progress', '工作进展及成效')}”{gone}；"
            "本行未采用，请补充后重新报送。", _typed(texts)))
        return None
    completed = _completed_on(ev, sheet, r, row, number)
    return Response(number, status, progress, completed.isoformat() if completed else None,
                    texts.get("evidence", ""), texts.get("issues", ""))


def _note_formulas(ev: Evaluation, sheet: _Sheet, r: int, texts: Mapping[str, str], number: int,
                   formulas: frozenset[str]) -> None:
    """A formula the file carries no value for (saved by a script, openpyxl or a web export): its
    text is kept as plain text, never as a formula, and the unit is told."""
    for key, i in sheet.fill_cols:
        if key in formulas:
            ev.problems.append(_problem(
                "warning", sheet.name, cell_ref(r, i), number, key,
                f"第 {number} 项的“{sheet.headers.get(key, key)}”是公式“{texts.get(key, '')[:40]}”，文件中没有它的计算结果"
                "（用脚本或网页导出保存的文件常见），已按文字原样保存，不会作为公式使用。如需报送结果，请直接填写文字。"))


def _cut_long(ev: Evaluation, sheet: _Sheet, r: int, texts: dict[str, str], number: int) -> None:
    """Texts longer than a spreadsheet cell holds are cut (the report and re-issued workbooks must
    hold them), with a warning; the original file stays in the archive."""
    for key, text in texts.items():
        if len(text) > CELL_TEXT_LIMIT:
            texts[key] = text[:CELL_TEXT_LIMIT]
            ev.problems.append(_problem(
                "warning", sheet.name, sheet.ref(r, key), number, key,
                f"第 {number} 项的“{sheet.headers.get(key, key)}”共 {len(text)} 个字，超过单元格上限 {CELL_TEXT_LIMIT} 字，"
                f"只保存了前 {CELL_TEXT_LIMIT} 字（原文件已存档）。请精简后重新报送，或把详细材料作为附件另行报送。"))


def _has_formula(ev: Evaluation, sheet: _Sheet, r: int, texts: Mapping[str, str], number: int,
                 formulas: frozenset[str] = _NONE) -> bool:
    # One cheap pass over the texts; the exact formula test only where one could be.
    if not any(t and (t[0] in FORMULA_TRIGGERS or "|" in t) for t in texts.values()):
        return False
    dangerous = False
    for key, text in texts.items():
        if key not in formulas and _formula(text):
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
