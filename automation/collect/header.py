"""Where the task table is in a returned sheet: the header row, each column, the contact above it.

No ledger access and no I/O.  Columns are matched by header text: the layout's own header
first, then common synonyms (exact, after normalising); a column whose header a unit retitled
(工作进展及成效 → 工作进展情况, 佐证材料 → 佐证材料（附件）) is then found by a similar header, or
where the issued workbook put it (the metadata's unsigned ``col_<key>`` hints: a first guess,
accepted only for a column no other key claims).  Every column found that way is noted
(:attr:`SheetReading.notes`), so the office and the unit see that the header was changed.
"""

from __future__ import annotations

import difflib
import functools
import os.path
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from automation.collect.safety import ParsedBook, ParsedSheet
from automation.collect.values import cell_ref, cell_text, col_letters
from automation.model import Problem
from automation.workbook.layout import (
    COLUMN_HINT_PREFIX,
    CONTACT_LABEL,
    FILL_KEYS,
    HELP_SHEET,
    LISTS_SHEET,
    META_SHEET,
    PHONE_LABEL,
    TASK_SHEET,
    Layout,
)

__all__ = ["HEADER_SYNONYMS", "SheetReading", "NoTaskSheet", "read_task_sheet", "read_metadata", "similarity"]

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
#: How alike a retitled header must be to one of its column's names (0..1, see :func:`similarity`).
SIMILAR_ENOUGH = 0.6
_HEADER_SCAN_ROWS = 60
_HEADER_NOISE = re.compile(r"[*＊\s]|[（(]\s*(?:必填|选填|必选|请选择|下拉选择)\s*[)）]")
_SPACES = re.compile(r"\s+")


class NoTaskSheet(Exception):
    """No sheet with a recognisable task header (the reason is for the office)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


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
    notes: list[Problem] = field(default_factory=list)   # columns found by a similar header or a hint


def _header_key(value: Any) -> str:
    """Cheap comparison key for header labels (headers are short; long cells are never headers)."""
    if not isinstance(value, str) or not value or len(value) > 40:
        return ""
    return _short_key(value)


@functools.lru_cache(maxsize=4096)
def _short_key(value: str) -> str:
    # Every returned file repeats the same few header labels: normalise each spelling once.
    return _HEADER_NOISE.sub("", unicodedata.normalize("NFKC", value))


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


@functools.lru_cache(maxsize=4096)
def similarity(a: str, b: str) -> float:
    """How alike two header keys are, 0..1: the longer of a shared start (工作进展情况 /
    工作进展) over the shorter, and difflib's ratio (存在问题及下一步打算 / 存在问题及下步打算).
    difflib rather than a hand-made distance: it is in the standard library and headers are short."""
    if not a or not b:
        return 0.0
    if a == b:
        return 1.0
    prefix = len(os.path.commonprefix([a, b]))
    by_prefix = prefix / min(len(a), len(b)) if prefix >= 2 else 0.0
    return max(by_prefix, difflib.SequenceMatcher(None, a, b).ratio())


def _refind(row: Sequence[Any], found: dict[str, int], layout: Layout, candidates: Mapping[str, list[str]],
            hints: Mapping[str, str], sheet: str, header_row: int) -> list[Problem]:
    """Find the columns the exact match missed: a similar header, else the issued position."""
    missing = [c for c in layout.columns if c.key not in found]
    if not missing:
        return []
    free = {i: _header_key(v) for i, v in enumerate(row) if i not in found.values() and _header_key(v)}
    notes: list[Problem] = []
    # Best pairs first, so two retitled columns cannot take each other's header.
    pairs = sorted(((max(similarity(text, n) for n in candidates.get(c.key, [])) if candidates.get(c.key) else 0.0,
                     -i, c.key, i) for c in missing for i, text in free.items()), reverse=True)
    headers = {c.key: c.header for c in layout.columns}
    for score, _neg, key, i in pairs:
        if score < SIMILAR_ENOUGH or key in found or i in found.values():
            continue
        found[key] = i
        notes.append(Problem(
            f"“{headers[key]}”列的表头被改成了“{cell_text(row[i])[:30]}”（{col_letters(i)} 列），已按该列读取。"
            "请不要修改下发工作簿的表头。", "info", sheet, cell_ref(header_row, i), None, key))
    for c in missing:
        if c.key in found:
            continue
        i = _column_index(hints.get(COLUMN_HINT_PREFIX + c.key, ""))
        if i is None or i in found.values() or i not in free:
            continue
        found[c.key] = i
        notes.append(Problem(
            f"“{c.header}”列的表头被改成了“{cell_text(row[i])[:30]}”，按下发时的位置（{col_letters(i)} 列）读取。"
            "请不要修改下发工作簿的表头。", "info", sheet, cell_ref(header_row, i), None, c.key))
    return notes


def _column_index(letters: str) -> int | None:
    letters = (letters or "").strip().upper()
    if not re.fullmatch(r"[A-Z]{1,3}", letters):
        return None
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 64
    return n - 1


def read_task_sheet(book: ParsedBook, layout: Layout, hints: Mapping[str, str] | None = None) -> SheetReading:
    """Find the task table: the 任务清单 sheet if present, else the first sheet with its header.

    ``hints`` are the metadata's unsigned ``header_row``, ``contact_cell``/``phone_cell`` and
    ``col_<key>`` values: first guesses only.
    """
    hints = hints or {}
    candidates = _header_candidates(layout)
    order = sorted(
        (s for s in book.sheets if s.name not in (META_SHEET, LISTS_SHEET, HELP_SHEET)),
        key=lambda s: (s.name != TASK_SHEET, s.visible != "visible"),
    )
    best: tuple[int, ParsedSheet, int, dict[str, int]] | None = None
    enough = max(2, len(layout.columns) - 1)
    hint = _int(hints.get("header_row"))
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
    notes = _refind(sheet.rows[header_row], columns, layout, candidates, hints, sheet.name, header_row)
    fill_keys = [c.key for c in layout.columns if c.fill_in and c.key in FILL_KEYS]
    if fill_keys and not any(k in columns for k in fill_keys):
        raise NoTaskSheet(f"工作表“{sheet.name}”中找不到任何填报列（{'、'.join(c.header for c in layout.columns if c.fill_in)}）。"
                          "请使用下发的工作簿填报，不要删除或改动表头。")
    reading = SheetReading(sheet, header_row, columns, [c.key for c in layout.columns if c.key not in columns],
                           notes=notes)
    _read_above_header(reading, hints)
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
    col = _column_index(m.group(1))
    return (int(m.group(2)) - 1, col) if col is not None else None


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
