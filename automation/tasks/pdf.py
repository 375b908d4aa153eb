"""PDF files through pdfplumber: the ruled table of a 红头文件's attachment, over several pages.

Each page's tables come back as rows in page order, the text around them (title, 附件 line,
preamble, signature) as text rows, page numbers dropped.  A cell merged down over several rows
(pdfplumber gives ``None`` where a merged cell covers a row) is carried down, across page breaks
too.  Inside a cell a line that runs to the cell's edge wrapped and is joined to the next; a line
that ends short is a paragraph break and kept as ``\\n`` (so 「市发改委」 and 「市财政局」 written on
two lines stay two units).  A PDF with no text at all is a scan: refused, with what to do.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from automation.errors import InputError
from automation.tasks.records import RawRow
from automation.text import squash

__all__ = ["join_split", "read_pdf_rows"]

_PAGE_NUMBER_RE = re.compile(r"[-—–－\s]*\d{1,4}[-—–－\s]*|第\s*\d+\s*页(?:\s*[,，/]?\s*共\s*\d+\s*页)?|\d+\s*/\s*\d+")
# A line ending like a unit's name whose next line starts like one is two names, not a wrap:
# 「市发改委」 filling a narrow cell, then 「市财政局」 on the next line.
_NAME_END = set("局委办府门心室会司行关班构道队院所站厅部组")
_NAME_START = set("市各县区省镇乡街中国人团共")
_WORD_PAD = 5.7  # Word's and WPS's default cell margin (0.19 cm) in points
_SCAN_MESSAGE = (
    "{name}：这是扫描件（每页只有图片，没有可读取的文字），无法识别任务。请向发文单位索取 Word 原件或可复制文字的 PDF"
    "（在 PDF 阅读器中能选中文字的那种）；本程序不做文字识别（OCR）。"
)


def _lines(chars: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Characters grouped into lines (top to bottom), each sorted left to right."""
    lines: list[list[dict[str, Any]]] = []
    for ch in sorted(chars, key=lambda c: (round(c["top"]), c["x0"])):
        if lines and abs(ch["top"] - lines[-1][0]["top"]) <= max(2.0, ch["size"] * 0.4):
            lines[-1].append(ch)
        else:
            lines.append([ch])
    for line in lines:
        line.sort(key=lambda c: c["x0"])
    return lines


def _line_text(line: list[dict[str, Any]]) -> str:
    out: list[str] = []
    prev = None
    for ch in line:
        if prev is not None and ch["x0"] - prev["x1"] > prev["size"] * 0.3 and ch["text"] != " " \
                and prev["text"] != " " and ch["text"].isascii() and prev["text"].isascii():
            out.append(" ")
        out.append(ch["text"])
        prev = ch
    return "".join(out)


def _cell(chars: list[dict[str, Any]], x0: float, x1: float) -> tuple[str, bool]:
    """A cell's text, and whether its last line runs to the cell's edge (a page break that cuts the
    cell there cut a wrapped line, not a paragraph)."""
    lines = _lines(chars)
    if not lines:
        return "", False
    size = sorted(c["size"] for c in chars)[len(chars) // 2]
    pad = min(_WORD_PAD, min(line[0]["x0"] for line in lines) - x0)
    parts = [_line_text(lines[0])]
    for prev, line in zip(lines, lines[1:], strict=False):
        gap = x1 - pad - prev[-1]["x1"]
        last, first = prev[-1]["text"], line[0]["text"]
        if gap > 2.2 * size or (last in _NAME_END and first in _NAME_START):
            parts.append("\n")
        elif last.isascii() and last.isalnum() and first.isascii() and first.isalnum():
            parts.append(" ")
        parts.append(_line_text(line))
    return "".join(parts).strip(), x1 - pad - lines[-1][-1]["x1"] <= 2.2 * size


def join_split(head: str, tail: str, wrapped: bool = True) -> str:
    """A cell that a page break cut in two, joined again as :func:`_cell` joins lines: when the
    head's last line ran to the cell's edge (``wrapped``) the cut fell inside a wrapped line, so no
    break goes inside 「市市场监|管局」 — unless it falls between two names (「市发改委」 | 「市财政局」);
    a last line that ended short was a paragraph end (「市妇联」 | 「市残联」, 「……完成。」 | 「2.……」)."""
    head, tail = head.rstrip(), tail.lstrip()
    if not head or not tail:
        return head or tail
    last, first = head[-1], tail[0]
    if not wrapped or (last in _NAME_END and first in _NAME_START):
        return f"{head}\n{tail}"
    if last.isascii() and last.isalnum() and first.isascii() and first.isalnum():
        return f"{head} {tail}"
    return head + tail


def _inside(ch: dict[str, Any], bbox: tuple[float, float, float, float]) -> bool:
    h = (ch["x0"] + ch["x1"]) / 2
    v = (ch["top"] + ch["bottom"]) / 2
    return bbox[0] <= h < bbox[2] and bbox[1] <= v < bbox[3]


class _Reader:
    """State across pages: the running header and the cells merged down from the rows above."""

    def __init__(self) -> None:
        self.rows: list[RawRow] = []
        self.header: list[str] | None = None
        self.above: list[str] = []
        self.had_text = False

    def table(self, page_no: int, table: Any, chars: list[dict[str, Any]], first_row: int) -> int:
        """Append one table's rows; returns the next row number on the page."""
        grid: list[list[str | None]] = []
        ends: list[set[int]] = []       # per row: the columns whose last line runs to the cell's edge
        for row in table.rows:
            row_chars = [c for c in chars if _inside(c, row.bbox)]
            read = [None if cell is None else _cell([c for c in row_chars if _inside(c, cell)], cell[0], cell[2])
                    for cell in row.cells]
            grid.append([None if r is None else r[0] for r in read])
            ends.append({i for i, r in enumerate(read) if r is not None and r[1]})
        n = first_row
        for i, cells in enumerate(grid):
            flat = [squash(c or "") for c in cells]
            if self.header is None:
                self.header = flat
            is_header = flat == self.header
            below = grid[i + 1] if i + 1 < len(grid) else None
            texts: list[str] = []
            carried: set[int] = set()
            for col, text in enumerate(cells):
                # The part of a merged cell at the top of a page is empty; the rows under it say None.
                merged_on = text == "" and below is not None and col < len(below) and below[col] is None
                if (text is None or merged_on) and not is_header and col < len(self.above):
                    texts.append(self.above[col])
                    carried.add(col)
                else:
                    texts.append(text or "")
            self.rows.append(RawRow(n, texts, page=page_no, carried=carried, wrapped=ends[i] - carried))
            if not is_header:
                self.above = texts
            n += 1
        return n

    def text_lines(self, page_no: int, lines: list[list[dict[str, Any]]], left: float, right: float) -> None:
        """Running text outside the tables; a line that runs to the right edge continues on the next
        line when that one starts at the left edge in the same type size (a wrapped paragraph)."""
        para: list[str] = []
        first = 0
        kept = [(i, ln) for i, ln in enumerate(lines, start=1)
                if _line_text(ln).strip() and not _PAGE_NUMBER_RE.fullmatch(_line_text(ln).strip())]
        for k, (i, line) in enumerate(kept):
            if not para:
                first = i
            para.append(_line_text(line).strip())
            nxt = kept[k + 1][1] if k + 1 < len(kept) else None
            size = line[-1]["size"]
            wraps = (nxt is not None and line[-1]["x1"] >= right - 1.5 * size
                     and abs(nxt[0]["x0"] - left) < 0.5 * size and abs(nxt[0]["size"] - size) < 0.5)
            if not wraps:
                self.rows.append(RawRow(first, ["".join(para)], page=page_no, text=True))
                para = []

    def page(self, page: Any) -> None:
        chars = page.chars
        if not chars:
            return
        self.had_text = True
        tables = sorted(page.find_tables(), key=lambda t: t.bbox[1])
        boxes = [t.bbox for t in tables]
        outside = [c for c in chars if not any(_inside(c, b) for b in boxes)] if boxes else chars
        lines = _lines([c for c in outside if c["text"].strip()])
        right = max((line[-1]["x1"] for line in lines), default=0.0)
        left = min((line[0]["x0"] for line in lines), default=0.0)
        top = boxes[0][1] if boxes else float("inf")
        self.text_lines(page.page_number, [ln for ln in lines if ln[0]["top"] < top], left, right)
        n = 1
        for table in tables:
            n = self.table(page.page_number, table, chars, n)
        self.text_lines(page.page_number, [ln for ln in lines if ln[0]["top"] >= top], left, right)


def read_pdf_rows(path: Path) -> list[RawRow]:
    """Table rows (``page`` set, numbered per page) and the text around them, in page order."""
    import pdfplumber
    from pdfminer.pdfdocument import PDFPasswordIncorrect
    from pdfminer.pdfparser import PDFSyntaxError

    try:
        pdf = pdfplumber.open(path)
    except PDFPasswordIncorrect as exc:
        raise InputError(f"{path.name}：PDF 已加密，无法读取。请索取未加密的文件。") from exc
    except (PDFSyntaxError, Exception) as exc:  # pdfminer raises many types for broken files
        raise InputError(f"{path.name}：无法读取 PDF（{type(exc).__name__}）。文件可能已损坏；请索取原件或 Word 版本。") from exc
    reader = _Reader()
    with pdf:
        try:
            for page in pdf.pages:
                reader.page(page)
        except Exception as exc:  # a damaged page: say which file, not a traceback
            raise InputError(f"{path.name}：PDF 内容损坏，无法读取（{type(exc).__name__}）。请索取原件或 Word 版本。") from exc
    if not reader.had_text:
        raise InputError(_SCAN_MESSAGE.format(name=path.name))
    return reader.rows
