"""Headings and task numbers as offices write them: 一、 大项, （一） 小项, 1. / 1、 / （1） tasks.

Shared by the table and the paragraph interpreters, so both read 「一、深化公开 （一）做好规划
1.公开规划纲要」 (a heading merged into the first task's cell) the same way.
"""

from __future__ import annotations

import re

__all__ = ["SECTION_RE", "SUBSECTION_RE", "TASK_RE", "split_heading", "task_number", "CN_NUM"]

CN_NUM = "一二三四五六七八九十百零〇"
SECTION_RE = re.compile(rf"^([{CN_NUM}]+)\s*[、.．]\s*(.*)$", re.S)
SUBSECTION_RE = re.compile(rf"^[（(]\s*([{CN_NUM}]+)\s*[)）]\s*[、.．]?\s*(.*)$", re.S)
TASK_RE = re.compile(r"^(?:[（(]\s*(\d{1,4})\s*[)）]|(\d{1,4})\s*[.、．](?!\d))\s*(.*)$", re.S)
# A task number that follows a heading merged into the same cell.
_EMBEDDED_TASK_RE = re.compile(r"\s*(?=(?:[（(]\s*\d{1,4}\s*[)）]|\d{1,4}\s*[.、．](?!\d)))")
_EMBEDDED_SUB_RE = re.compile(rf"\s*(?=[（(]\s*[{CN_NUM}]+\s*[)）])")


def task_number(text: str) -> tuple[int, str] | None:
    """``(number, rest)`` when the text starts with a task number (``1.`` ``1、`` ``（1）``)."""
    m = TASK_RE.match(text.strip())
    if not m:
        return None
    return int(m.group(1) or m.group(2)), m.group(3)


def split_heading(text: str) -> tuple[list[tuple[str, str, str]], str]:
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
