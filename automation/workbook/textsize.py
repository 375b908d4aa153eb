"""How tall a row of wrapped Chinese text must be: the one estimator the workbooks and the report use.

No spreadsheet client autofits a row of wrapped text written by a library, so every writer sets
row heights itself.  A column of width ``w`` (Excel's unit: the width of a digit) is about
``7·w`` pixels; a Chinese character (or Chinese punctuation) at ``s`` pt is ``s·4/3`` px, a Latin
letter about half.  The text is measured as ``UTF-8 bytes + characters`` (a 3-byte CJK character
counts 4, ASCII 2), which needs no Python loop per character (this runs for millions of cells in
the report).  Slightly pessimistic (5 % of the width and half a character kept free): a row too
tall costs a little paper, one too short hides text.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["wrapped_lines", "line_capacity", "row_points", "rows_points", "MAX_ROW_PT"]

MAX_ROW_PT = 409.0   # Excel's limit, in points
_LEADING = 1.5       # line height / font size for CJK fonts (SimSun, Noto CJK)


def line_capacity(width: float, font_size: float = 10.0) -> float:
    """The measure (see the module docstring) one line of a column holds."""
    font_px = font_size * 4 / 3
    usable = max(max(width * 7 - 2, 7) * 0.95 - font_px / 2, font_px)
    return usable * 4 / font_px


def wrapped_lines(text: str, width: float, font_size: float = 10.0) -> int:
    """How many lines ``text`` wraps to in a column ``width`` wide at ``font_size`` points."""
    if not text:
        return 1
    cap = line_capacity(width, font_size)
    if "\n" not in text:
        return max(1, -int(-(len(text.encode("utf-8")) + len(text)) // cap))
    return sum(max(1, -int(-(len(p.encode("utf-8")) + len(p)) // cap)) for p in text.split("\n"))


def row_points(lines: int, font_size: float = 10.0) -> float:
    """Row height in points for ``lines`` lines of text at ``font_size``."""
    return min(MAX_ROW_PT, round(lines * font_size * _LEADING + 3, 1))


def rows_points(cells: Iterable[tuple[str | None, float]], min_lines: int = 1, font_size: float = 10.0) -> float:
    """Row height for several wrapped cells (text, column width): the tallest one decides."""
    lines = min_lines
    for text, width in cells:
        if text:
            n = wrapped_lines(text, width, font_size)
            if n > lines:
                lines = n
    return row_points(lines, font_size)
