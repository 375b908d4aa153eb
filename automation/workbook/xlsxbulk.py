"""Bulk rows for XlsxWriter workbooks: one row per assignment or response, fast.

XlsxWriter costs about 10 µs per cell in pure Python; the report's detail sheets hold millions
of cells at 2,000 units × 100 tasks (measured: 3 M cells took 40 s), so they cannot go through
``worksheet.write_string`` one by one and still build in seconds.  Everything else about those
sheets (header row, column widths and styles, frozen panes, autofilter, conditional formats,
print setup, page header/footer) is still written by XlsxWriter; only the body rows are
rendered here and spliced into the package XlsxWriter produced, between the header row and
``</sheetData>``.

Cells are the kinds XlsxWriter itself writes, and text can never become a formula or a link:

- a value that repeats on many rows (unit, task title, time, file name, status: :meth:`RowWriter.memo`)
  is a shared string (``t="s"``), appended to the package's ``xl/sharedStrings.xml``;
- any other text is an inline string (``t="inlineStr"``, as in XlsxWriter's ``constant_memory`` mode);
- both escaped the way XlsxWriter escapes (``& < >``, control characters as ``_xHHHH_``, a literal
  ``_xHHHH_`` protected as ``_x005F_xHHHH_``, ``xml:space="preserve"`` for edge spaces).

Cell styles come from each column's ``style`` attribute in the sheet's own ``<cols>`` element
(set with ``worksheet.set_column(..., format)``), so no XlsxWriter internals are used: only the
OOXML package.  Rows are built as UTF-8 bytes (encoding finished CJK XML was a third of the
time) and deflated in a second thread while the next rows are rendered.
"""

from __future__ import annotations

import queue
import re
import threading
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from xml.etree import ElementTree

from xlsxwriter.utility import xl_col_to_name

__all__ = ["BulkSheet", "RowWriter", "SharedStrings", "Shared", "Inline", "splice", "xml_text"]

_NS_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_NS_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_NS_PKG_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"
SST_PATH = "xl/sharedStrings.xml"

_NEEDS_FIX = re.compile(r"[\x00-\x08\x0b-\x1f\ufffe\uffff]|_x[0-9A-Fa-f]{4}_")


def _fix(m: re.Match[str]) -> str:
    text = m.group()
    if len(text) == 7:              # a literal _xHHHH_ in the data: escape its underscore
        return "_x005F" + text
    return f"_x{ord(text):04X}_"


def xml_text(value: str) -> str:
    """Text for a string cell: XML-escaped, control characters as OOXML ``_xHHHH_`` escapes."""
    if "&" in value:
        value = value.replace("&", "&amp;")
    if "<" in value:
        value = value.replace("<", "&lt;")
    if ">" in value:
        value = value.replace(">", "&gt;")
    # isprintable() is a fast C scan; only text with a newline, a control character or an
    # unusual space (U+3000 …) pays for the regular expression.
    if ("_x" in value or not value.isprintable()) and _NEEDS_FIX.search(value):
        value = _NEEDS_FIX.sub(_fix, value)
    return value


def _t_element(text: str) -> bytes:
    """``<t>text</t>`` (with ``xml:space="preserve"`` when the text starts or ends with a space)."""
    body = xml_text(text).encode("utf-8")
    if text[:1].isspace() or text[-1:].isspace():
        return b'<t xml:space="preserve">' + body + b"</t>"
    return b"<t>" + body + b"</t>"


class Shared(bytes):
    """A shared-string index (its digits), as returned by :meth:`RowWriter.memo`."""

    __slots__ = ()


class Inline(bytes):
    """A ready ``<t>`` element for an inline string, as returned by :meth:`RowWriter.inline`."""

    __slots__ = ()


class SharedStrings:
    """Strings appended to the package's shared string table, numbered after XlsxWriter's own."""

    def __init__(self, base: int = 0) -> None:
        self.base = base
        self.index: dict[str, Shared] = {}
        self.items: list[bytes] = []       # <si> bodies, in index order
        self.references = 0

    def add(self, text: str) -> Shared:
        hit = self.index.get(text)
        if hit is None:
            hit = self.index[text] = Shared(b"%d" % (self.base + len(self.items)))
            self.items.append(_t_element(text))
        return hit


class RowWriter:
    """Renders rows of one sheet into the package stream, as UTF-8 bytes.

    ``row(values, height)``: values by column index; :class:`Shared` (from :meth:`memo`) is a
    shared string, :class:`Inline` (from :meth:`inline`) or ``str`` an inline string, ``int`` /
    ``float`` a number, ``None`` / ``""`` no cell (the column style still applies).
    """

    _FLUSH = 1 << 20

    def __init__(self, stream: IO[bytes], first_row: int, styles: Sequence[int],
                 shared: SharedStrings | None = None) -> None:
        self._stream = stream
        self._next = first_row + 1                    # 1-based row number of the next row
        self._buf: list[bytes] = []
        self._size = 0
        self.shared = shared if shared is not None else SharedStrings()
        self.rows = 0
        self._text_open: list[tuple[bytes, bytes]] = []
        self._shared_open: list[tuple[bytes, bytes]] = []
        self._num_open: list[tuple[bytes, bytes]] = []
        for col, style in enumerate(styles):
            s = f' s="{style}"' if style else ""
            ref = f'<c r="{xl_col_to_name(col)}'.encode()
            self._text_open.append((ref, f'"{s} t="inlineStr"><is>'.encode()))
            self._shared_open.append((ref, f'"{s} t="s"><v>'.encode()))
            self._num_open.append((ref, f'"{s}><v>'.encode()))

    def memo(self, text: str) -> Shared | None:
        """A text that repeats on many rows, as a shared string (stored once in the package).

        ``None`` (no cell) for an empty text.
        """
        return self.shared.add(text) if text else None

    def inline(self, text: str) -> Inline:
        """A text used once, escaped and encoded now (so its encoded length can size the row)."""
        return Inline(_t_element(text))

    def row(self, values: Sequence[Any], height: float | None = None) -> None:
        r = b"%d" % self._next
        parts = [b'<row r="%s" ht="%g" customHeight="1">' % (r, height) if height else b'<row r="%s">' % r]
        extend = parts.extend
        shared = 0
        for col, v in enumerate(values):
            t = type(v)
            if t is Shared:
                a, b = self._shared_open[col]
                extend((a, r, b, v, b"</v></c>"))
                shared += 1
            elif t is Inline:
                a, b = self._text_open[col]
                extend((a, r, b, v, b"</is></c>"))
            elif t is str:
                if v:
                    a, b = self._text_open[col]
                    extend((a, r, b, _t_element(v), b"</is></c>"))
            elif v is not None:
                a, b = self._num_open[col]
                extend((a, r, b, b"%d" % v if t is int else repr(float(v)).encode(), b"</v></c>"))
        parts.append(b"</row>")
        chunk = b"".join(parts)
        self.shared.references += shared
        self._buf.append(chunk)
        self._size += len(chunk)
        self._next += 1
        self.rows += 1
        if self._size > self._FLUSH:
            self.flush()

    def flush(self) -> None:
        if self._buf:
            self._stream.write(b"".join(self._buf))
            self._buf.clear()
            self._size = 0


class _BackgroundWriter:
    """Writes to a zip member from a second thread.

    Deflate and CRC release the GIL, so compressing one chunk overlaps with rendering the next:
    at scale that is several seconds of the report's time.
    """

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=8)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="xlsxbulk-deflate", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            chunk = self._queue.get()
            if chunk is None:
                return
            if self._error is None:
                try:
                    self._stream.write(chunk)
                except BaseException as exc:  # re-raised in the producing thread
                    self._error = exc

    def write(self, data: bytes) -> int:
        if self._error is not None:
            raise self._error
        self._queue.put(data)
        return len(data)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error


@dataclass
class BulkSheet:
    """The body of one worksheet: rows from ``first_row`` (0-based), ``rows`` of them, ``cols`` wide.

    ``produce`` is called with a :class:`RowWriter` and must write exactly ``rows`` rows: the
    sheet's ``<dimension>`` is written before the rows, so the count is known up front (the
    report reads the ledger in one read transaction, so counts and rows agree).
    """

    name: str
    first_row: int
    rows: int
    cols: int
    produce: Callable[[RowWriter], None]


def _sheet_paths(zin: zipfile.ZipFile) -> dict[str, str]:
    """Worksheet name -> member path, from xl/workbook.xml and its relationships."""
    rels = ElementTree.fromstring(zin.read("xl/_rels/workbook.xml.rels"))
    targets = {r.get("Id"): r.get("Target", "") for r in rels.iter(f"{_NS_PKG_REL}Relationship")}
    book = ElementTree.fromstring(zin.read("xl/workbook.xml"))
    out = {}
    for sheet in book.iter(f"{_NS_MAIN}sheet"):
        target = targets.get(sheet.get(f"{_NS_REL}id"), "")
        out[sheet.get("name", "")] = target.lstrip("/") if target.startswith("/") else f"xl/{target}"
    return out


_COL_TAG = re.compile(r"<col\b([^>]*)/>")
_ATTR = re.compile(r'(\w+)="([^"]*)"')
_DIMENSION = re.compile(r'<dimension ref="[^"]*"/>')
_SST_TAG = re.compile(rb"<sst\b[^>]*>")
_SST_COUNTS = re.compile(rb'\s(count|uniqueCount)="(\d+)"')


def _column_styles(head: str, cols: int) -> list[int]:
    styles = [0] * cols
    for m in _COL_TAG.finditer(head):
        attrs = dict(_ATTR.findall(m.group(1)))
        style = int(attrs.get("style", "0"))
        for c in range(int(attrs["min"]) - 1, min(int(attrs["max"]), cols)):
            styles[c] = style
    return styles


def _split(xml: str) -> tuple[str, str]:
    if "</sheetData>" in xml:
        cut = xml.index("</sheetData>")
        return xml[:cut], xml[cut:]
    cut = xml.index("<sheetData/>")
    return xml[:cut] + "<sheetData>", "</sheetData>" + xml[cut + len("<sheetData/>"):]


def _sst_counts(sst: bytes) -> tuple[int, int]:
    tag = _SST_TAG.search(sst)
    counts = dict(_SST_COUNTS.findall(tag.group())) if tag else {}
    return int(counts.get(b"count", 0)), int(counts.get(b"uniqueCount", 0))


def _merged_sst(sst: bytes, shared: SharedStrings) -> bytes:
    """XlsxWriter's shared string table with ours appended and the counts updated."""
    count, unique = _sst_counts(sst)
    tag = _SST_TAG.search(sst)
    assert tag is not None
    new_tag = _SST_COUNTS.sub(lambda m: b' %s="%d"' % (m.group(1), (count + shared.references) if m.group(1) == b"count"
                                                       else unique + len(shared.items)), tag.group())
    end = sst.rindex(b"</sst>")
    body = b"".join(b"<si>" + item + b"</si>" for item in shared.items)
    return sst[:tag.start()] + new_tag + sst[tag.end():end] + body + sst[end:]


def splice(source: Path, target: Path, sheets: Iterable[BulkSheet], compresslevel: int = 1) -> None:
    """Copy the XlsxWriter package ``source`` to ``target`` with the bulk rows inserted.

    ``compresslevel`` 1: the detail sheets are hundreds of MB of XML at scale; level 1 is about
    three times faster than the default and the file only slightly larger.  The package must
    already have a shared string table (any XlsxWriter workbook with a text cell does).
    """
    by_name = {s.name: s for s in sheets}
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED,
                                                         compresslevel=compresslevel) as zout:
        paths = _sheet_paths(zin)
        missing = set(by_name) - set(paths)
        if missing:
            raise ValueError(f"no worksheet named {sorted(missing)} in {source}")
        if SST_PATH not in zin.namelist():
            raise ValueError(f"{source} has no shared string table ({SST_PATH})")
        sst = zin.read(SST_PATH)
        shared = SharedStrings(base=_sst_counts(sst)[1])
        bulk_paths = {paths[name]: sheet for name, sheet in by_name.items()}
        for info in zin.infolist():
            if info.filename == SST_PATH:
                continue                                  # written last, with our strings added
            sheet = bulk_paths.get(info.filename)
            if sheet is None:
                zout.writestr(info, zin.read(info))
                continue
            head, tail = _split(zin.read(info).decode("utf-8"))
            if sheet.rows and sheet.cols:
                ref = f"A1:{xl_col_to_name(sheet.cols - 1)}{sheet.first_row + sheet.rows}"
                head = _DIMENSION.sub(f'<dimension ref="{ref}"/>', head, count=1)
            # By name, so the member gets the archive's compression level.
            with zout.open(info.filename, "w", force_zip64=True) as stream:
                stream.write(head.encode("utf-8"))
                background = _BackgroundWriter(stream)
                writer = RowWriter(background, sheet.first_row,  # type: ignore[arg-type]
                                   _column_styles(head, sheet.cols), shared)
                try:
                    sheet.produce(writer)
                    writer.flush()
                finally:
                    background.close()
                if writer.rows != sheet.rows:
                    raise RuntimeError(f"{sheet.name}: wrote {writer.rows} rows, expected {sheet.rows}")
                stream.write(tail.encode("utf-8"))
        with zout.open(SST_PATH, "w", force_zip64=True) as stream:
            stream.write(_merged_sst(sst, shared))
