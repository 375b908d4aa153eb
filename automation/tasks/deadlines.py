"""Per-task deadlines: the 时限 text as written, and the date it names (``due_date``).

Offices write deadlines as 「6月底前」「年底前」「2022年9月」「三季度」 or as a standing duty
(「持续推进」「长期坚持」「每季度」).  The text is always kept (``Task.deadline``); where it names a
date, that date is the last day the words allow (「6月」 → June 30, 「三季度」 → Sept 30), in the
batch year unless the text names another.  A text naming several dates (「6月底前出台方案，年底前
完成」) gives the latest: that is when the task is due as a whole.  Standing duties give no date.

Hand-written: no maintained library reads Chinese administrative time phrases (dateparser reads
dates, not 「三季度」 or 「年底前」).
"""

from __future__ import annotations

import calendar
import datetime as dt
import re

from automation.text import squash

__all__ = ["parse_due_date", "looks_like_deadline", "document_year", "ONGOING_RE"]

_CN_DIGITS = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10,
              "十一": 11, "十二": 12}
_YEAR = r"(?:(?P<y>20\d{2})\s*年|(?P<next>次年|明年|翌年))?"
_MONTH = r"(?P<m>1[0-2]|0?[1-9]|十[一二]?|[一二三四五六七八九])"
_PATTERNS = [
    # 2021-06-30, 2021/6/30, 2021.6.30
    re.compile(r"(?P<y>20\d{2})[-/.](?P<m>1[0-2]|0?[1-9])(?:[-/.](?P<d>3[01]|[12]\d|0?[1-9]))?(?!\d)"),
    # (2022年)9月(15日 | 底 | 中旬 …)
    re.compile(_YEAR + _MONTH + r"\s*月份?\s*(?:(?P<d>3[01]|[12]\d|0?[1-9])\s*[日号]|(?P<part>上旬|中旬|下旬|底|末|中|初))?"),
    # (2022年)(第)三季度
    re.compile(_YEAR + r"第?(?P<q>[一二三四1-4])\s*季度"),
    # (2022年)上半年 / 下半年
    re.compile(_YEAR + r"(?P<half>上半年|下半年)"),
    # 2022年底前, 2022年内, 次年底
    re.compile(r"(?:(?P<y>20\d{2})\s*年|(?P<next>次年|明年|翌年))\s*(?:底|末|内|年底|年末|度内|全年)?"),
    # 年底前, 年内, 全年
    re.compile(r"(?P<end>年底|年末|年内|全年|年度内|本年度|今年)"),
]
# Recurring duties name no single date: 每季度、每月10日前、每半年.
_RECURRING_RE = re.compile(r"每(?:个)?(?:年|半年|季度|季|月|周|旬)[^，,；;。]*")
#: Words of a standing duty (kept as text, no date).
ONGOING_RE = re.compile(r"持续|长期|常态|定期|每[年季月周半旬]|按时间节点|按要求|适时|随时|立行立改|逐步")
_DEADLINE_HINT_RE = re.compile(r"\d{4}\s*年|\d{1,2}\s*月|月底|年底|年末|年内|季度|上半年|下半年|底前|之前|前完成|"
                               r"\d{4}[-/.]\d{1,2}")
_YEAR_IN_TITLE_RE = re.compile(r"(20\d{2})\s*年")


def _month(text: str) -> int:
    return int(text) if text.isdigit() else _CN_DIGITS[text]


def _end_of_month(year: int, month: int) -> dt.date:
    return dt.date(year, month, calendar.monthrange(year, month)[1])


def _date_of(m: re.Match[str], year: int) -> dt.date | None:
    groups = m.groupdict()
    y = int(groups["y"]) if groups.get("y") else year + 1 if groups.get("next") else year
    try:
        if groups.get("m"):
            month = _month(groups["m"])
            if groups.get("d"):
                return dt.date(y, month, int(groups["d"]))
            part = groups.get("part")
            if part in ("上旬", "初"):
                return dt.date(y, month, 10)
            if part in ("中旬", "中"):
                return dt.date(y, month, 20)
            return _end_of_month(y, month)
        if groups.get("q"):
            return _end_of_month(y, 3 * _month(groups["q"]))
        if groups.get("half"):
            return dt.date(y, 6, 30) if groups["half"] == "上半年" else dt.date(y, 12, 31)
        return dt.date(y, 12, 31)
    except ValueError:  # 2月30日: not a date, so no due date
        return None


def parse_due_date(text: object, year: int) -> dt.date | None:
    """The date a deadline text names (the latest, if several), in ``year`` unless it names one."""
    flat = _RECURRING_RE.sub("", squash(text))
    if not flat:
        return None
    taken = [False] * len(flat)
    found: list[dt.date] = []
    for rx in _PATTERNS:
        for m in rx.finditer(flat):
            if not m.group(0) or any(taken[m.start():m.end()]):
                continue
            date = _date_of(m, year)
            if date is not None:
                found.append(date)
                taken[m.start():m.end()] = [True] * (m.end() - m.start())
    return max(found) if found else None


def looks_like_deadline(text: object) -> bool:
    """Is this short cell a deadline (a date phrase or a standing duty), not prose or a status?"""
    flat = squash(text).rstrip("。")
    if not flat or len(flat) > 24 or "。" in flat:
        return False
    return bool(_DEADLINE_HINT_RE.search(flat) or ONGOING_RE.search(flat))


def document_year(texts: list[str]) -> int | None:
    """The year a document's title names (「南平市2021年政务公开工作要点…」 → 2021), if any."""
    for text in texts:
        m = _YEAR_IN_TITLE_RE.search(squash(text))
        if m:
            return int(m.group(1))
    return None
