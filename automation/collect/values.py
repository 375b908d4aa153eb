"""Cell values a unit typed, understood: status, dates, text.

Pure functions, no I/O, so the rules are easy to test and the collector stays small.  Every
parser either returns the value or raises :class:`ValueProblem` with a Chinese message that the
collector puts next to the cell address.
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
import re
from collections.abc import Sequence
from typing import Any

from automation.text import canonical_status, normalize_status, squash

__all__ = [
    "ValueProblem",
    "cell_text",
    "parse_status",
    "parse_date",
    "looks_like_formula",
    "parse_task_number",
    "cell_ref",
    "col_letters",
    "UNREPORTED",
    "FORMULA_TRIGGERS",
    "CELL_TEXT_LIMIT",
]

#: Status of a row whose 落实情况 is blank while other fill-in cells are not.
UNREPORTED = "未填报"
#: The most characters a spreadsheet cell holds (Excel, WPS; XlsxWriter cuts longer text silently).
CELL_TEXT_LIMIT = 32767

_EXCEL_EPOCH = dt.date(1899, 12, 30)
_MIN_YEAR, _MAX_YEAR = 1990, 2100


class ValueProblem(ValueError):
    """A value that cannot be used; the message says why, in Chinese."""


def col_letters(index: int) -> str:
    """0-based column index → Excel letters (0 → A)."""
    n = index + 1
    out = ""
    while n > 0:
        n, rem = divmod(n - 1, 26)
        out = chr(65 + rem) + out
    return out


def cell_ref(row: int, col: int) -> str:
    """0-based (row, col) → ``B7``."""
    return f"{col_letters(col)}{row + 1}"


def _number_text(value: float | int) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


def cell_text(value: Any) -> str:
    """Text of a cell as the unit sees it, trimmed (numbers without a spurious ``.0``)."""
    if type(value) is str:
        return (value.replace("\r\n", "\n").replace("\r", "\n") if "\r" in value else value).strip()
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, (int, float)):
        return _number_text(value)
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return str(value)
    return str(value).replace("\r\n", "\n").replace("\r", "\n").strip()


def parse_task_number(value: Any) -> int | None:
    """The task number in a 序号 cell (3, 3.0, "3", "（3）", "3.") or None for other rows."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    if isinstance(value, float):
        return int(value) if value.is_integer() and 0 < value < 1e6 else None
    if not isinstance(value, str):
        return None
    if value.isdigit():
        return int(value) or None
    m = _NUMBER_RE.fullmatch(value.translate(_FULLWIDTH))
    return int(m.group(1)) if m and int(m.group(1)) > 0 else None


_NUMBER_RE = re.compile(r"\s*[（(]?\s*(\d{1,5})\s*[)）]?\s*[.、．]?\s*")


def parse_status(value: Any, options: Sequence[str], extra: dict[str, str] | None = None) -> str | None:
    """Normalise a 落实情况 cell to one of the four statuses; ``None`` for blank;
    :class:`ValueProblem` for anything else.

    The layout's own options are recognised first (an office that renamed 已完成 to 已办结 or
    added 部分完成 in its template), then the synonyms of :func:`automation.text.normalize_status`;
    either way the stored value is canonical (:func:`automation.text.canonical_status`), so the
    report and the reminders count every option in its class.
    """
    text = cell_text(value)
    if not text:
        return None
    found = text if text in options else (
        _status_lookup(text, tuple(options)) if extra is None else _status_uncached(text, tuple(options), extra))
    if found is not None:
        return (canonical_status(found) or found) if found else None
    listed = " / ".join(options)
    raise ValueProblem(f"落实情况“{_clip(text)}”无法识别，请从下拉列表中选择：{listed}")


def _status_uncached(text: str, options: tuple[str, ...], extra: dict[str, str] | None) -> str | None:
    """The status for ``text``; ``""`` for 未填报 (blank); None when it is not a status."""
    key = squash(text).strip("。.，,；;！!、 ")
    if key == UNREPORTED:  # what a pre-filled workbook shows for a row never answered
        return ""
    for option in options:
        if key == squash(option):
            return option
    return normalize_status(text, extra)


@functools.lru_cache(maxsize=2048)
def _status_lookup(text: str, options: tuple[str, ...]) -> str | None:
    # Units type the same few spellings thousands of times; normalising each once is enough.
    return _status_uncached(text, options, None)


def _clip(text: str, n: int = 30) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= n else text[:n] + "…"


def _month_end(year: int, month: int) -> dt.date:
    return dt.date(year, month, calendar.monthrange(year, month)[1])


def _checked(year: int, month: int, day: int | None, raw: str) -> dt.date:
    if not _MIN_YEAR <= year <= _MAX_YEAR or not 1 <= month <= 12:
        raise ValueProblem(f"完成时间“{_clip(raw)}”不是有效日期，请写成 2021-06-30")
    if day is None:
        return _month_end(year, month)
    try:
        return dt.date(year, month, day)
    except ValueError:
        raise ValueProblem(f"完成时间“{_clip(raw)}”不是有效日期（该月没有这一天），请写成 2021-06-30") from None


_TIME_SUFFIX = r"(?:\s*[T ]?\s*\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?"
_BEFORE = r"(?:前|之前|以前)?"
_YMD_RE = re.compile(rf"(\d{{4}})\s*[-/.年]\s*(\d{{1,2}})\s*[-/.月]\s*(\d{{1,2}})\s*[日号]?{_TIME_SUFFIX}{_BEFORE}")
_COMPACT_RE = re.compile(r"(\d{4})(\d{2})(\d{2})")
_YM_RE = re.compile(rf"(\d{{4}})\s*[-/.年]\s*(\d{{1,2}})\s*月?\s*(?:底|末|份)?{_BEFORE}")
_MD_RE = re.compile(rf"(\d{{1,2}})\s*月\s*(\d{{1,2}})\s*[日号]{_BEFORE}")
_M_RE = re.compile(rf"(\d{{1,2}})\s*月\s*(?:底|末|份)?{_BEFORE}")
_YEAR_END_RE = re.compile(rf"(?:(\d{{4}})\s*年)?\s*(?:底|年底|年末){_BEFORE}")


def parse_date(value: Any, year: int) -> dt.date | None:
    """A 完成时间 cell as a date; ``None`` for blank; :class:`ValueProblem` otherwise.

    Accepts date cells, Excel serial numbers and the ways people type dates: 2021-06-30,
    2021/6/30, 2021.6.30, 2021年6月30日, 20210630, 2021年6月 / 2021-06 (month end), 6月30日 and
    6月底 (with the batch ``year``), 2021年底 / 年底 (31 December).
    """
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return _checked(value.year, value.month, value.day, value.isoformat())
    if isinstance(value, dt.date):
        return _checked(value.year, value.month, value.day, value.isoformat())
    if isinstance(value, bool) or isinstance(value, (dt.time, dt.timedelta)):
        raise ValueProblem(f"完成时间“{cell_text(value)}”不是日期，请写成 2021-06-30")
    if isinstance(value, (int, float)):
        return _serial(value, cell_text(value))
    raw = cell_text(value)
    text = raw.translate(_FULLWIDTH).replace(" ", "").replace("\u3000", "")
    if not text:
        return None
    if m := _YMD_RE.fullmatch(text):
        return _checked(int(m.group(1)), int(m.group(2)), int(m.group(3)), raw)
    if m := _COMPACT_RE.fullmatch(text):
        return _checked(int(m.group(1)), int(m.group(2)), int(m.group(3)), raw)
    if m := _YM_RE.fullmatch(text):
        return _checked(int(m.group(1)), int(m.group(2)), None, raw)
    if m := _MD_RE.fullmatch(text):
        return _checked(year, int(m.group(1)), int(m.group(2)), raw)
    if m := _M_RE.fullmatch(text):
        return _checked(year, int(m.group(1)), None, raw)
    if m := _YEAR_END_RE.fullmatch(text):
        return _checked(int(m.group(1) or year), 12, 31, raw)
    if re.fullmatch(r"\d{5}(?:\.\d+)?", text):
        return _serial(float(text), raw)
    raise ValueProblem(f"完成时间“{_clip(raw)}”无法识别为日期，请写成 2021-06-30 这样的格式")


_FULLWIDTH = str.maketrans("０１２３４５６７８９／－．：", "0123456789/-.:")


def _serial(number: float, raw: str) -> dt.date:
    if not 1 <= number < 2958466:
        raise ValueProblem(f"完成时间“{raw}”不是日期，请写成 2021-06-30")
    day = _EXCEL_EPOCH + dt.timedelta(days=int(number))
    return _checked(day.year, day.month, day.day, raw)


# A text that a spreadsheet would run if it were ever written back as a formula: =HYPERLINK(…),
# =cmd|' /C calc'!A0 (DDE), @SUM(…), +IMPORTXML(…).  Plain "-已完成" or "+86 0599…" do not match.
_FORMULA_RE = re.compile(r"^\s*[=+\-@＝]\s*['\"]?[A-Za-z_][A-Za-z0-9_.]*['\"]?\s*[(|!]")
#: First characters that make a spreadsheet read a cell as a formula.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "＝")
_DDE_RE = re.compile(r"\b(?:cmd|msexcel|powershell|mshta|rundll32)\s*\|", re.I)


def looks_like_formula(text: str) -> bool:
    """Does this text look like a formula or DDE payload (formula injection)?"""
    if not text:
        return False
    if text.lstrip()[:1] in FORMULA_TRIGGERS and _FORMULA_RE.match(text):
        return True
    return "|" in text and bool(_DDE_RE.search(text))
