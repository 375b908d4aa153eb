"""Recognising the header row: columns by meaning (synonyms), not by position.

Offices name the same column many ways (工作任务 / 重点任务 / 任务名称; 责任单位 / 配合部门 …),
space the letters out (``具 体 要 求``) and sometimes leave the number column unlabelled.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from automation.tasks.records import RawRow
from automation.text import squash

__all__ = ["HEADER_SYNONYMS", "CORE_KEYS", "Header", "header_key", "find_header", "is_header_repeat",
           "BARE_NUMBER_RE"]

HEADER_SYNONYMS: dict[str, tuple[str, ...]] = {
    "number": ("序号", "编号", "任务编号"),
    "section": ("类别", "领域", "重点领域", "板块", "分类", "工作类别", "任务类别", "工作板块"),
    "title": ("工作任务", "任务", "重点任务", "任务名称", "主要任务", "工作事项"),
    "requirement": ("工作要求", "具体要求", "具体措施", "工作措施", "主要内容", "任务要求", "工作内容"),
    "lead": ("牵头单位", "牵头部门", "牵头领导单位", "牵头责任单位"),
    "responsible": ("责任单位", "责任部门", "责任科室", "配合单位", "配合部门", "协同责任单位", "协办单位",
                    "参与单位"),
    "status": ("落实情况", "完成情况", "进展情况", "推进情况"),
    "deadline": ("完成时限", "时限要求", "时限", "完成时间", "完成期限", "时间节点"),
    "remark": ("备注",),
}
#: The columns whose cells may slide left when a PDF/Word cell was empty (see :mod:`.cells`).
CORE_KEYS = ("requirement", "lead", "responsible", "status", "deadline")
#: A number cell: ``1``, ``1.``, ``（1）``.
BARE_NUMBER_RE = re.compile(r"[（(]?\s*(\d{1,4})\s*[)）.、．]?")
_HEADER_SCAN = 40


@dataclass
class Header:
    """Where the header is and what each column means."""

    index: int                 # position of the header row in the rows
    keys: dict[int, str]       # column -> key, for recognised columns
    labels: dict[int, str]     # column -> label as written (squashed), for every labelled column
    signature: list[str]       # the header row's cells, squashed (to skip repeats on later pages)

    @property
    def key_col(self) -> dict[str, int]:
        return {k: c for c, k in self.keys.items()}

    @property
    def extra_cols(self) -> dict[int, str]:
        return {c: label for c, label in self.labels.items() if c not in self.keys}

    @property
    def columns(self) -> dict[str, str]:
        return {self.labels.get(c, "序号"): self.keys.get(c, f"extra:{self.labels.get(c)}")
                for c in sorted({*self.labels, *self.keys})}

    @property
    def width(self) -> int:
        return max([*self.labels, *self.keys]) + 1


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


def _read_header(row: RawRow) -> tuple[dict[int, str], dict[int, str]]:
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
    return keys, labels


def _number_column(rows: list[RawRow], labels: dict[int, str], keys: dict[int, str]) -> int | None:
    """An unlabelled column holding bare task numbers (1, 2, 3 …) is the number column."""
    if "number" in keys.values():
        return None
    width = max((len(r.cells) for r in rows), default=0)
    for col in range(width):
        if col in labels:
            continue
        values = [squash(r.cells[col]) for r in rows if col < len(r.cells) and not r.text]
        values = [v for v in values if v]
        numbers = [v for v in values if BARE_NUMBER_RE.fullmatch(v)]
        if len(numbers) >= 2 and len(numbers) >= 0.6 * len(values):
            return col
    return None


def find_header(rows: list[RawRow]) -> Header | None:
    """The header row (within the first rows of the table) and its columns, or None."""
    seen = 0
    for idx, row in enumerate(rows):
        if row.text:
            continue
        seen += 1
        if seen > _HEADER_SCAN:
            return None
        keys, labels = _read_header(row)
        if len(keys) >= 2 and ("title" in keys.values() or "number" in keys.values()):
            number = _number_column(rows[idx + 1 : idx + 60], labels, keys)
            if number is not None:
                keys[number] = "number"
            return Header(idx, keys, labels, [squash(c) for c in row.cells])
    return None


def is_header_repeat(row: RawRow, header: Header) -> bool:
    """Is this the header again (repeated at the top of each page)?"""
    flat = [squash(c) for c in row.cells]
    sig = header.signature
    return bool(any(flat)) and flat[: len(sig)] == sig and not any(flat[len(sig):])
