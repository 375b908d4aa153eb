"""Formulas a returned .xlsx carries without a value: their text, read from the sheet XML.

Excel, WPS and LibreOffice store each formula's last result next to it (``<v>``), and the parser
reads that.  A file written by openpyxl, a script or a web export often has the formula alone
(``<c r="H5"><f>1+1</f><v></v></c>``): python-calamine then reads an empty cell, and what the unit
typed would vanish.  This module finds those cells so the collector can keep their text (as
plain text, never as a formula) and say so.

It runs in the worker, only on the sheet parts the pre-check saw a formula element in
(:attr:`~automation.collect.safety.checks.Checked.formula_parts`), so an ordinary file pays nothing.
The XML was already checked (no DOCTYPE, so no entities beyond the five predefined ones and
character references).  Regular expressions rather than an XML parser: the parts are the ones
the pre-check streamed and bounded, and only ``<c>``/``<f>``/``<v>`` are needed.
"""

from __future__ import annotations

import html
import io
import posixpath
import re
import zipfile
from collections.abc import Iterable

__all__ = ["sheet_parts", "formulas_without_value"]

_NS = rb"(?:[A-Za-z_][\w.-]{0,15}:)?"
_CELL_RE = re.compile(rb"<" + _NS + rb"c\b([^>]*?)(?:/>|>(.*?)</" + _NS + rb"c\s*>)", re.S)
_F_RE = re.compile(rb"<" + _NS + rb"f\b([^>]*?)(?:/>|>(.*?)</" + _NS + rb"f\s*>)", re.S)
_V_RE = re.compile(rb"<" + _NS + rb"v\b[^>]*?(?:/>|>(.*?)</" + _NS + rb"v\s*>)", re.S)
_REF_RE = re.compile(rb"""(?:^|\s)r\s*=\s*["']\$?([A-Za-z]{1,3})\$?0*([0-9]{1,7})["']""")
_T_STR_RE = re.compile(rb"""\bt\s*=\s*["']str["']""")
_SI_RE = re.compile(rb"""\bsi\s*=\s*["']([0-9]{1,9})["']""")
_SHEET_RE = re.compile(rb"<" + _NS + rb"sheet\b[^>]*>", re.S)
_NAME_RE = re.compile(rb"""\bname\s*=\s*"([^"]*)"|\bname\s*=\s*'([^']*)'""")
_RID_RE = re.compile(rb"""\b[A-Za-z_][\w.-]*:id\s*=\s*["']([^"']*)["']""")
_REL_RE = re.compile(rb"<Relationship\b[^>]*>", re.S)
_ATTR_RE = re.compile(rb"""\b(Id|Target)\s*=\s*["']([^"']*)["']""")
_MAX_TEXT = 32767


def _text(raw: bytes) -> str:
    return html.unescape(raw.decode("utf-8", "replace"))


def sheet_parts(data: bytes, wanted: Iterable[str] | None = None) -> dict[str, str]:
    """Sheet name → its part in the package (``xl/worksheets/sheet2.xml``), from workbook.xml and its rels."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            book = zf.read("xl/workbook.xml")
            rels = zf.read("xl/_rels/workbook.xml.rels")
    except (KeyError, zipfile.BadZipFile, OSError, ValueError):
        return {}
    targets: dict[str, str] = {}
    for tag in _REL_RE.findall(rels):
        attrs = {k.decode(): _text(v) for k, v in _ATTR_RE.findall(tag)}
        if "Id" in attrs and "Target" in attrs:
            target = attrs["Target"]
            targets[attrs["Id"]] = target.lstrip("/") if target.startswith("/") else posixpath.normpath("xl/" + target)
    want = set(wanted) if wanted is not None else None
    out: dict[str, str] = {}
    for tag in _SHEET_RE.findall(book):
        name_m, rid_m = _NAME_RE.search(tag), _RID_RE.search(tag)
        if not name_m or not rid_m:
            continue
        name = _text(name_m.group(1) if name_m.group(1) is not None else name_m.group(2))
        part = targets.get(_text(rid_m.group(1)))
        if part and (want is None or name in want):
            out[name] = part
    return out


def _col(letters: bytes) -> int:
    n = 0
    for ch in letters.upper():
        n = n * 26 + ch - 64
    return n - 1


def formulas_without_value(xml: bytes, max_rows: int, max_cols: int) -> dict[tuple[int, int], str]:
    """(0-based row, column) → ``=`` + formula text, for each cell with a formula and no value.

    A shared formula's other cells (``<f t="shared" si="0"/>``) show the text of the cell that
    defines it, untranslated: the point is that the unit sees what they wrote, not a result.
    """
    out: dict[tuple[int, int], str] = {}
    shared: dict[bytes, str] = {}
    for cell in _CELL_RE.finditer(xml):
        body = cell.group(2)
        if not body:
            continue
        f = _F_RE.search(body)
        if f is None:
            continue
        si = _SI_RE.search(f.group(1))
        text = _text(f.group(2)).strip() if f.group(2) else ""
        if si and text:
            shared.setdefault(si.group(1), text)
        elif si and not text:
            text = shared.get(si.group(1), "")
        v = _V_RE.search(body)
        if v is not None and (v.group(1) or _T_STR_RE.search(cell.group(1))):
            continue  # a cached value (an empty text result is typed t="str"): the parser reads it
        ref = _REF_RE.search(cell.group(1))
        if ref is None or not text:
            continue
        row, col = int(ref.group(2)) - 1, _col(ref.group(1))
        if 0 <= row < max_rows and 0 <= col < max_cols:
            out[(row, col)] = ("=" + text)[:_MAX_TEXT]
    return out
