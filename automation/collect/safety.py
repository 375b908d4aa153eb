"""Returned workbooks are hostile until proven otherwise: pre-checks and a sandboxed parser.

Two layers keep one bad file from taking a collect run down:

1. :func:`precheck` looks at the raw bytes *before any parser runs*: the size limit; the container
   (zip for .xlsx/.xlsm/.xlsb/.ods, OLE compound file for .xls); total uncompressed size and the
   compression ratio (zip bombs), measured while streaming, never trusting the zip's own header;
   ``<!DOCTYPE``/``<!ENTITY`` in any XML part (billion laughs, external entities); the furthest cell
   reference in each sheet's XML, streamed (python-calamine allocates a dense grid up to the last
   cell and *aborts the whole process* on a single value at XFD1048576; openpyxl spins for
   minutes); password protection (OOXML in an OLE container with ``EncryptionInfo``/
   ``EncryptedPackage``, or a BIFF ``FILEPASS`` record in .xls); and files that carry a workbook
   name but are something else (Word, PDF, HTML exported "as .xls").

2. :class:`ParserPool` runs the pre-check *and* python-calamine in a worker subprocess under an
   address-space limit (``RLIMIT_AS``; Windows has none) and a timeout.  The worker is started
   once and reused (starting an interpreter per file would cost more than parsing it), and
   restarted when it dies, so an abort in native code costs one file, not the run.  The pipes
   are served without ever blocking (non-blocking pipes and ``poll`` on POSIX, a reader and
   a writer thread per worker on Windows), so a stuck worker can never block the caller before
   its timeout.  Parsed cells come back as JSON (never pickle: a compromised worker must not be able
   to run code in the parent).

The messages in :class:`Refused` are for office staff: Chinese, naming the file's problem and
what to do about it.
"""

from __future__ import annotations

import atexit
import datetime as dt
import functools
import io
import json
import math
import os
import posixpath
import queue
import re
import select
import struct
import subprocess
import sys
import threading
import time
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "Limits",
    "Refused",
    "ParsedSheet",
    "ParsedBook",
    "ParseFailed",
    "ParserPool",
    "precheck",
    "get_pool",
    "shutdown_pool",
    "SUPPORTED_SUFFIXES",
    "unsupported_reason",
]

#: What collect reads; everything else is quarantined as unsupported.
SUPPORTED_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".xlsb", ".ods")

_OTHER_KINDS = {
    ".et": "WPS 表格专用格式（.et）", ".ett": "WPS 表格模板（.ett）", ".wps": "WPS 文字文档（.wps）",
    ".doc": "Word 文档（.doc）", ".docx": "Word 文档（.docx）", ".pdf": "PDF 文件", ".csv": "CSV 文本",
    ".txt": "文本文件", ".zip": "压缩包（.zip）", ".rar": "压缩包（.rar）", ".7z": "压缩包（.7z）",
    ".jpg": "图片", ".jpeg": "图片", ".png": "图片", ".ofd": "OFD 版式文件", ".numbers": "Numbers 表格",
    ".xltx": "Excel 模板（.xltx）", ".xlt": "Excel 模板（.xlt）", ".ots": "LibreOffice 模板（.ots）",
}

_SAVE_AS = "请在 WPS/Excel 中打开后“另存为”.xlsx 或 .xls 格式再发送。"

_ZIP_MAGIC = b"PK\x03\x04"
_ZIP_EMPTY = b"PK\x05\x06"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_CHUNK = 1 << 16
_RATIO_FLOOR = 1 << 20          # ratios are only meaningful for parts bigger than this
_MAX_ENTRIES = 5000
_REBUILD_MAX = 32 << 20         # inflated XML held to rebuild the zip for the parser (above: the original)


def unsupported_reason(suffix: str) -> str:
    """The message for a file whose suffix collect does not read."""
    suffix = suffix.lower()
    kind = _OTHER_KINDS.get(suffix, f"“{suffix or '无扩展名'}”文件")
    return f"不支持的文件类型：{kind}，不是可回收的工作簿。{_SAVE_AS}"


@dataclass(frozen=True)
class Limits:
    """Hard limits for one returned file (from ``[collect]`` in config.toml)."""

    max_file_bytes: int = 20 << 20
    max_uncompressed_bytes: int = 200 << 20
    max_ratio: float = 200.0
    max_rows: int = 20000
    max_cols: int = 200
    parse_memory_mb: int = 1024
    parse_timeout: float = 60.0

    @classmethod
    def from_config(cls, collect: Any) -> Limits:
        return cls(
            max_file_bytes=int(collect.max_file_mb * (1 << 20)),
            max_uncompressed_bytes=int(collect.max_uncompressed_mb * (1 << 20)),
            max_ratio=float(collect.max_ratio),
            max_rows=int(collect.max_rows),
            max_cols=int(collect.max_cols),
            parse_memory_mb=int(collect.parse_memory_mb),
            parse_timeout=float(collect.parse_timeout),
        )


class Refused(Exception):
    """A file that must not be parsed; ``reason`` is the office-readable message, ``code`` a tag."""

    def __init__(self, reason: str, code: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class ParseFailed(Refused):
    """The parser itself failed, timed out or died on the file."""


# --------------------------------------------------------------------------- pre-checks

_DOCTYPE_RE = re.compile(rb"<!\s*(?:DOCTYPE|ENTITY)", re.I)
_SHEET_PART_RE = re.compile(r"^xl/(?:worksheets|dialogsheets|macrosheets)/[^/]+\.xml$", re.I)
_XML_SUFFIXES = (".xml", ".rels", ".vml")


def _col_number(letters: bytes) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + (ch - 64)
    return n


def _col_letters(n: int) -> str:
    out = ""
    while n > 0:
        n, rem = divmod(n - 1, 26)
        out = chr(65 + rem) + out
    return out


def precheck(data: bytes, name: str, limits: Limits) -> str:
    """Refuse a file that is not safe to parse; return its real kind: xlsx, xlsb, ods or xls.

    ``name`` is only used for its suffix (the kind is decided by content, so an .xls that is
    really .xlsx is read as what it is).
    """
    return checked(data, name, limits)[0]


def checked(data: bytes, name: str, limits: Limits) -> tuple[str, bytes]:
    """:func:`precheck`, and the bytes the parser should read.

    For .xlsx/.xlsm that is a new, uncompressed zip of exactly the parts the checks inflated and
    scanned: the parser then reads what was checked and nothing else (no second zip reader that
    might see the container differently, no part the checks skipped), and it reads it faster,
    without inflating everything a second time.  Other kinds are read as they came.
    """
    if len(data) > limits.max_file_bytes:
        raise Refused(
            f"文件过大（{len(data) / (1 << 20):.1f} MB，上限 {limits.max_file_bytes / (1 << 20):.0f} MB）。"
            "请删除无关的图片或工作表后重新保存发送。", "too_large")
    if not data:
        raise Refused("文件是空的（0 字节），可能保存或发送时出错。请重新保存后发送。", "empty")
    head = data[:8]
    if head.startswith(_ZIP_MAGIC) or head.startswith(_ZIP_EMPTY):
        kind, parts = _check_zip(data, limits)
        return kind, (_stored_zip(parts) if parts is not None else data)
    if head == _OLE_MAGIC:
        return _check_ole(data), data
    raise Refused(_not_a_workbook(data, name), "not_workbook")


def _not_a_workbook(data: bytes, name: str) -> str:
    start = data[:2048].lstrip().lower()
    if start.startswith(b"%pdf"):
        what = "这是 PDF 文件"
    elif start.startswith((b"<html", b"<!doctype html", b"<table", b"<meta")) or b"<html" in start:
        what = "这是网页（HTML）格式，只是用了工作簿的扩展名（常见于某些系统导出的“Excel”）"
    elif start.startswith(b"<?xml"):
        what = "这是 XML 文本（可能是“XML 电子表格 2003”格式），不是标准工作簿"
    elif start.startswith((b"\xff\xd8", b"\x89png", b"gif8")):
        what = "这是图片"
    elif start.startswith((b"rar!", b"7z\xbc\xaf")):
        what = "这是压缩包"
    else:
        what = "文件内容不是 Excel/WPS/LibreOffice 工作簿（无法识别，可能已损坏或只是改了扩展名）"
    return f"{what}。{_SAVE_AS}"


def _check_zip(data: bytes, limits: Limits) -> tuple[str, list[tuple[str, bytes]] | None]:
    """Check a zip container; for .xlsx also return every XML part and sheet part, inflated."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError) as exc:
        raise Refused("文件已损坏（压缩结构不完整，可能下载或保存时中断）。请重新保存后发送。", "corrupt") from exc
    if len(infos) > _MAX_ENTRIES:
        raise Refused(f"文件结构异常（包含 {len(infos)} 个内部部件），疑似恶意文件，未处理。", "zip_bomb")
    names = {i.filename for i in infos}
    if "xl/workbook.xml" in names:
        kind = "xlsx"
    elif "xl/workbook.bin" in names:
        kind = "xlsb"
    elif "content.xml" in names and _ods_mimetype(zf, names):
        kind = "ods"
    elif "word/document.xml" in names:
        raise Refused(f"这是 Word 文档，不是工作簿。{_SAVE_AS}", "not_workbook")
    elif any(n.startswith("ppt/") for n in names):
        raise Refused(f"这是 PowerPoint 演示文稿，不是工作簿。{_SAVE_AS}", "not_workbook")
    elif "content.xml" in names:
        raise Refused(f"这是 ODF 文字或演示文档，不是表格。{_SAVE_AS}", "not_workbook")
    else:
        raise Refused(f"这是一个压缩包，不是工作簿。{_SAVE_AS}", "not_workbook")
    declared = 0
    for info in infos:
        if info.flag_bits & 0x1:
            raise Refused("文件设置了密码（已加密），无法读取。请在 WPS/Excel 中取消密码后重新保存发送。", "encrypted")
        declared += info.file_size
        if info.file_size > _RATIO_FLOOR and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            raise Refused(_bomb_message(limits), "zip_bomb")
    if declared > limits.max_uncompressed_bytes:
        raise Refused(_bomb_message(limits), "zip_bomb")
    keep = kind == "xlsx"
    if keep and len(names) != len(infos):
        raise Refused("文件结构异常（同名的内部部件出现了两次），疑似恶意文件，未处理。", "corrupt")
    budget = limits.max_uncompressed_bytes
    far_re = _far_cell_re(limits)
    sheets = _sheet_parts(data, zf, names) if kind == "xlsx" else set()
    parts: list[tuple[str, bytes]] | None = [] if keep else None
    held = 0
    for info in infos:
        sheet = info.filename in sheets
        budget, body = _scan_part(data, info, budget, limits, far_re if sheet else None, parts is not None, sheet)
        if parts is not None and body is not None:
            parts.append((info.filename, body))
            held += len(body)
            if held > _REBUILD_MAX:  # a huge workbook: keep the worker's memory for the parser
                parts = None
    return kind, parts


def _stored_zip(parts: Sequence[tuple[str, bytes]]) -> bytes:
    """An uncompressed zip of ``parts`` (names UTF-8, CRC-32 set: readers verify it)."""
    out: list[bytes] = []
    central: list[bytes] = []
    offset = 0
    for name, body in parts:
        raw = name.encode("utf-8")
        crc = zlib.crc32(body)
        fields = (20, 0x0800, 0, 0, 0x21, crc, len(body), len(body), len(raw))
        local = struct.pack("<4s5HL2L2H", b"PK\x03\x04", *fields, 0) + raw
        central.append(struct.pack("<4s6HL2L5H2L", b"PK\x01\x02", 20, *fields, 0, 0, 0, 0, 0, offset) + raw)
        out += (local, body)
        offset += len(local) + len(body)
    directory = b"".join(central)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(central), len(central), len(directory), offset, 0)
    return b"".join(out) + directory + end


_REL_RE = re.compile(rb"<Relationship\b[^>]*>", re.S)
_ATTR_RE = re.compile(rb'\b(Type|Target)\s*=\s*"([^"]*)"')


def _sheet_parts(data: bytes, zf: zipfile.ZipFile, names: set[str]) -> set[str]:
    """Every part that holds cells: the usual xl/worksheets/*.xml plus whatever the workbook's
    relationships point at (a hostile file may put a sheet anywhere)."""
    parts = {n for n in names if _SHEET_PART_RE.match(n)}
    rels = "xl/_rels/workbook.xml.rels"
    if rels in names:
        try:
            text = b"".join(_inflate(data, zf.getinfo(rels)))[: 1 << 20]
        except (zipfile.BadZipFile, zlib.error, struct.error, NotImplementedError, KeyError) as exc:
            raise Refused("文件已损坏（内部部件无法解压，可能下载或保存时中断）。请重新保存后发送。", "corrupt") from exc
        for tag in _REL_RE.findall(text):
            attrs = {k.decode(): v.decode("utf-8", "replace") for k, v in _ATTR_RE.findall(tag)}
            if attrs.get("Type", "").rsplit("/", 1)[-1] in ("worksheet", "macrosheet", "dialogsheet", "chartsheet"):
                target = attrs.get("Target", "")
                path = target.lstrip("/") if target.startswith("/") else posixpath.normpath("xl/" + target)
                parts.add(path)
    return parts


def _bomb_message(limits: Limits) -> str:
    return (f"文件解压后过大（上限 {limits.max_uncompressed_bytes / (1 << 20):.0f} MB，压缩比上限 "
            f"{limits.max_ratio:.0f}），疑似“压缩炸弹”，未处理。")


def _ods_mimetype(zf: zipfile.ZipFile, names: set[str]) -> bool:
    if "mimetype" not in names:
        return True  # some writers omit it; content.xml decides
    try:
        with zf.open("mimetype") as fh:
            return b"spreadsheet" in fh.read(200)
    except Exception:  # noqa: BLE001 - a broken part is reported by the streaming scan
        return True


@functools.lru_cache(maxsize=8)
def _far_cell_re(limits: Limits) -> re.Pattern[bytes]:
    """Cell/row references that *might* exceed the limits: enough digits or column letters.

    Matching only candidates keeps the scan at regex-engine speed (a normal sheet has none);
    each candidate is then checked exactly.  Written as loosely as python-calamine reads them
    (it aborts on each of these): XML allows ``r='…'`` and blanks around ``=``; calamine also
    takes lower-case column letters and leading zeros in the row number, so neither the letters
    nor the digits are bounded here.  The ``<dimension ref=…>`` is not read by calamine.
    """
    digits = len(str(max(limits.max_rows, 1)))
    letters = len(_col_letters(max(limits.max_cols, 1)))
    return re.compile(rb'r[ \t\r\n]*=[ \t\r\n]*(["\'])'
                      rb'(?:([A-Za-z]{0,3})([0-9]{%d,})|([A-Za-z]{%d,})([0-9]+))\1' % (digits, letters))


_MAX_TAG = 1 << 20   # longest start tag carried from one inflated piece to the next


def _number(digits: bytes) -> int:
    """A row number without trusting its length (a hostile one may have thousands of digits)."""
    digits = digits.lstrip(b"0")
    return int(digits) if len(digits) <= 12 else 10 ** 12


_PROLOG_RE = re.compile(rb"\s*(?:<\?.*?\?>|<!--.*?-->)", re.S)


def _prolog_end(head: bytes) -> int | None:
    """Where the root element starts, or None if the head is all prolog (read more)."""
    pos = 0
    while True:
        m = _PROLOG_RE.match(head, pos)
        if not m or m.end() == pos:
            break
        pos = m.end()
    rest = head[pos:].lstrip()
    # A piece may end inside "<!DOCTYPE" (or just after its "<"): read on until the tag shows.
    if not rest or rest == b"<" or rest.startswith((b"<?", b"<!")):
        return None
    return len(head) - len(rest)


def _inflate(data: bytes, info: zipfile.ZipInfo) -> Iterator[bytes]:
    """Yield a part's bytes in pieces of at most :data:`_CHUNK`, straight from the zip's bytes.

    Reads the local header itself (no ``ZipExtFile``: a workbook has a dozen small parts and the
    per-part overhead would cost more than inflating them); stops at ``file_size`` bytes, so
    a lying directory cannot make it produce more than it declared.
    """
    off = info.header_offset
    if data[off:off + 4] != b"PK\x03\x04":
        raise zipfile.BadZipFile("bad local header")
    name_len, extra_len = struct.unpack_from("<HH", data, off + 26)
    start = off + 30 + name_len + extra_len
    comp = memoryview(data)[start:start + info.compress_size]
    if info.compress_type == zipfile.ZIP_STORED:
        for i in range(0, len(comp), _CHUNK):
            yield bytes(comp[i:i + _CHUNK])
        return
    if info.compress_type != zipfile.ZIP_DEFLATED:
        raise NotImplementedError("compression method")
    inflater = zlib.decompressobj(-15)
    limit = 1024  # the first piece is small: most parts are only read up to their prolog
    for i in range(0, len(comp), _CHUNK):
        pending: bytes | memoryview = comp[i:i + _CHUNK]
        while pending:
            piece = inflater.decompress(pending, limit)
            limit = _CHUNK
            pending = inflater.unconsumed_tail
            if piece:
                yield piece
            if inflater.eof:
                return
    while not inflater.eof:
        piece = inflater.decompress(b"", _CHUNK)
        if not piece:
            raise zipfile.BadZipFile("truncated part")
        yield piece


def _scan_part(data: bytes, info: zipfile.ZipInfo, budget: int, limits: Limits,
               far_re: re.Pattern[bytes] | None, keep: bool = False, sheet: bool = False) -> tuple[int, bytes | None]:
    """Inflate one XML part, charging the budget with the bytes really produced; return the
    budget left and, when ``keep``, the whole part.

    A DOCTYPE (the only place entities can be declared) may only stand in the prolog, before
    the root element, so most parts are inflated just that far unless they are kept; worksheet
    parts are inflated whole for the furthest cell reference.  Binary parts are judged by the
    central directory alone (the worker's memory limit covers a directory that lies) and are
    never kept; a worksheet is XML whatever its name says.
    """
    lower = info.filename.lower()
    if info.filename.endswith("/") or not (sheet or lower.endswith(_XML_SUFFIXES)):
        return budget, None
    in_prolog = True
    head = b""
    tail = b""
    seen = 0
    kept: list[bytes] | None = [] if keep else None
    try:
        for chunk in _inflate(data, info):
            if kept is not None:
                kept.append(chunk)
            seen += len(chunk)
            budget -= len(chunk)
            if budget < 0 or (seen > _RATIO_FLOOR and seen > limits.max_ratio * max(info.compress_size, 1)):
                raise Refused(_bomb_message(limits), "zip_bomb")
            if in_prolog:
                head += chunk
                end = _prolog_end(head)
                if _DOCTYPE_RE.search(head if end is None else head[:end + 16]):
                    raise Refused(
                        "文件中含有 XML 实体/文档类型声明（DOCTYPE/ENTITY），这是“XML 炸弹”或外部实体攻击的写法，"
                        "正常的工作簿不会有。未处理。", "xml_entity")
                if end is None:
                    if len(head) > 4 * _CHUNK:
                        raise Refused("文件结构异常（XML 开头过长），疑似恶意文件，未处理。", "xml_entity")
                    continue
                in_prolog = False
                head = b""
            if far_re is None:
                if kept is None:
                    break
                continue
            window = tail + chunk
            worst: str | None = None
            for m in far_re.finditer(window):
                if m.start() == 0 or window[m.start() - 1] not in b" \t\r\n":
                    continue  # part of a longer attribute name, not r="…"
                letters = m.group(2) if m.group(3) else m.group(4)
                row = _number(m.group(3) or m.group(5))
                col = _col_number(letters[:4].upper()) if letters else 0
                if row > limits.max_rows or col > limits.max_cols:
                    worst = f"{_col_letters(col)}{row}" if col else worst or f"第 {row} 行"
                    if col:  # a full cell reference names the place best; a <row r=…> is the fallback
                        break
            if worst is not None:
                raise Refused(
                    f"工作表中有内容远在 {worst} 单元格（上限 {limits.max_rows} 行、{limits.max_cols} 列），"
                    "这种文件会让读取程序耗尽内存，未处理。请删除多余的行列后重新保存发送。", "far_cell")
            # Carry the last tag over: it may be cut anywhere, even inside a run of blanks.
            start = window.rfind(b"<")
            tail = window[start:] if start >= 0 else b""
            if len(tail) > _MAX_TAG:
                raise Refused("文件结构异常（工作表中有超长的 XML 标签），疑似恶意文件，未处理。", "far_cell")
    except Refused:
        raise
    except (zipfile.BadZipFile, zlib.error, struct.error, EOFError, ValueError, NotImplementedError) as exc:
        raise Refused("文件已损坏（内部部件无法解压，可能下载或保存时中断）。请重新保存后发送。", "corrupt") from exc
    return budget, (b"".join(kept) if kept is not None else None)


def _check_ole(data: bytes) -> str:
    try:
        import olefile
    except ImportError:  # pragma: no cover - olefile is a dependency
        return "xls"
    try:
        ole = olefile.OleFileIO(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - olefile raises many types on garbage
        raise Refused("文件已损坏（Office 文件结构无法读取）。请重新保存后发送。", "corrupt") from exc
    try:
        streams = {"/".join(p) for p in ole.listdir(streams=True, storages=False)}
        if "EncryptionInfo" in streams or "EncryptedPackage" in streams:
            raise Refused("文件设置了打开密码（已加密），无法读取。请在 WPS/Excel 中取消密码（文件→信息→保护工作簿/"
                          "文档加密）后重新保存发送。", "encrypted")
        book = "Workbook" if "Workbook" in streams else ("Book" if "Book" in streams else None)
        if book is None:
            if "WordDocument" in streams:
                raise Refused(f"这是 Word/WPS 文字文档，不是工作簿。{_SAVE_AS}", "not_workbook")
            if "PowerPoint Document" in streams:
                raise Refused(f"这是 PowerPoint 演示文稿，不是工作簿。{_SAVE_AS}", "not_workbook")
            raise Refused(f"文件不是工作簿（Office 容器中没有表格数据）。{_SAVE_AS}", "not_workbook")
        try:
            with ole.openstream(book) as fh:
                head = fh.read(4096)
        except Exception as exc:  # noqa: BLE001
            raise Refused("文件已损坏（表格数据无法读取）。请重新保存后发送。", "corrupt") from exc
        if _biff_has_filepass(head):
            raise Refused("文件设置了打开密码（已加密），无法读取。请在 WPS/Excel 中取消密码后重新保存发送。", "encrypted")
        return "xls"
    finally:
        ole.close()


def _biff_has_filepass(head: bytes) -> bool:
    """FILEPASS (0x002F) follows the first BOF of the globals substream in an encrypted .xls."""
    pos = 0
    for _ in range(32):
        if pos + 4 > len(head):
            return False
        rtype, length = struct.unpack_from("<HH", head, pos)
        if rtype == 0x002F:
            return True
        if rtype == 0x0085:  # BOUNDSHEET: past the point where FILEPASS may appear
            return False
        pos += 4 + length
    return False


# --------------------------------------------------------------------------- parsed data


@dataclass
class ParsedSheet:
    name: str
    visible: str                     # visible / hidden / veryhidden
    rows: list[list[Any]] = field(default_factory=list)


@dataclass
class ParsedBook:
    kind: str
    sheets: list[ParsedSheet]

    def sheet(self, name: str) -> ParsedSheet | None:
        return next((s for s in self.sheets if s.name == name), None)


def _encode_cell(value: Any) -> Any:
    """JSON ``default`` hook: dates and times as tagged objects (str/int/float/bool pass as is)."""
    if isinstance(value, dt.datetime):
        return {"dt": value.isoformat()}
    if isinstance(value, dt.date):
        return {"d": value.isoformat()}
    if isinstance(value, dt.time):
        return {"t": value.isoformat()}
    if isinstance(value, dt.timedelta):
        return {"td": value.total_seconds()}
    return str(value)


def _decode_tag(obj: dict[str, Any]) -> Any:
    if "d" in obj:
        return dt.date.fromisoformat(obj["d"])
    if "dt" in obj:
        return dt.datetime.fromisoformat(obj["dt"])
    if "t" in obj:
        return dt.time.fromisoformat(obj["t"])
    if "td" in obj:
        return dt.timedelta(seconds=obj["td"])
    return obj


# --------------------------------------------------------------------------- the worker (child side)

_WANTED_ENV = "DUBAN_PARSE_SHEETS"
_MAX_SHEETS = 40


def parse_in_process(data: bytes, name: str, limits: Limits, wanted: Sequence[str] = ()) -> ParsedBook:
    """Pre-check then read with python-calamine, in *this* process (the worker calls it).

    When every sheet in ``wanted`` exists only those are read; otherwise every worksheet is
    (a unit that copied its rows into a new book has other sheet names).
    """
    kind, readable = checked(data, name, limits)
    import python_calamine as pc

    try:
        wb = pc.CalamineWorkbook.from_filelike(io.BytesIO(readable))
    except Exception as exc:  # noqa: BLE001 - calamine raises many error types
        if type(exc).__name__ == "PasswordError" or "password" in str(exc).lower():
            raise Refused("文件设置了打开密码（已加密），无法读取。请取消密码后重新保存发送。", "encrypted") from exc
        raise ParseFailed(f"文件无法读取（{_short(exc)}），可能已损坏。请重新保存后发送。", "unreadable") from exc
    try:
        metas = list(wb.sheets_metadata)
        present = {m.name for m in metas}
        read_all = not wanted or not all(w in present for w in wanted)
        sheets = []
        for m in metas[:_MAX_SHEETS]:
            if not read_all and m.name not in wanted:
                continue
            if str(m.typ).rsplit(".", 1)[-1] not in ("WorkSheet",):
                continue
            visible = str(m.visible).rsplit(".", 1)[-1].lower()
            try:
                sheet = wb.get_sheet_by_name(m.name)
                try:
                    rows = sheet.to_python(skip_empty_area=False, nrows=limits.max_rows + 1)
                except TypeError:  # python-calamine without nrows: the pre-check bounded the size already
                    rows = sheet.to_python(skip_empty_area=False)
            except Exception as exc:  # noqa: BLE001
                raise ParseFailed(f"工作表“{m.name}”无法读取（{_short(exc)}），可能已损坏。请重新保存后发送。",
                                  "unreadable") from exc
            if len(rows) > limits.max_rows or any(len(r) > limits.max_cols for r in rows[:1]):
                raise Refused(f"工作表“{m.name}”超过 {limits.max_rows} 行或 {limits.max_cols} 列，疑似异常文件，未处理。",
                              "far_cell")
            sheets.append(ParsedSheet(m.name, visible, rows))
        return ParsedBook(kind, sheets)
    finally:
        wb.close()


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:120]


def _read_frame(stream: Any, max_len: int | None = None) -> bytes | None:
    """One length-prefixed frame; None at the end of the stream, a cut frame or one longer than
    ``max_len`` (a worker gone wrong must not make the parent allocate what it claims)."""
    head = stream.read(8)
    if len(head) < 8:
        return None
    (n,) = struct.unpack("<Q", head)
    if max_len is not None and n > max_len:
        return None
    body = stream.read(n)
    return body if len(body) == n else None


def _write_frame(stream: Any, payload: bytes) -> None:
    stream.write(struct.pack("<Q", len(payload)) + payload)
    stream.flush()


WORKER_NICENESS = 5


def _lower_priority() -> None:
    """Run the worker below the collecting process's priority (POSIX nice; Windows: creation flag).

    Parsing is background work: during a run of thousands of files the office PC stays
    responsive, and when the cores are short the collecting process (which validates and
    stores what the workers parsed ahead) runs first.  On the two-core bench machine the
    effect on collect's own speed was within the noise (a few per cent).
    """
    if hasattr(os, "nice"):
        try:
            os.nice(WORKER_NICENESS)
        except OSError:  # pragma: no cover - not permitted: run at the same priority
            pass


def worker_main(argv: Sequence[str]) -> int:
    """Serve parse requests on stdin/stdout until EOF (``python -m automation.collect.safety --worker``)."""
    limits = Limits(**json.loads(argv[0]))
    # The memory cap exists where RLIMIT_AS does (Linux, the 信创 systems).  Windows has no
    # rlimit; a Job Object memory limit would do, but it is not set here: it cannot be tested on
    # the machines this is built on, and a wrong limit would make every file fail.  There the
    # pre-checks and the timeout are the defence (README section 9 says so).
    try:
        import resource

        cap = limits.parse_memory_mb << 20
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    except (ImportError, ValueError, OSError):  # pragma: no cover - not on Windows / not permitted
        pass
    inp = sys.stdin.buffer
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    sys.stdout = sys.stderr  # nothing but frames may reach the parent's pipe
    _lower_priority()
    import python_calamine  # noqa: F401 - pay the import once, before the first request

    while True:
        frame = _read_frame(inp)
        if frame is None:
            return 0
        header_len = struct.unpack_from("<I", frame)[0]
        request = json.loads(frame[4:4 + header_len])
        data = frame[4 + header_len:]
        try:
            book = parse_in_process(data, request.get("name", ""), limits, request.get("wanted", ()))
            reply: dict[str, Any] = {"ok": True, "kind": book.kind, "sheets": [
                {"name": s.name, "visible": s.visible, "rows": s.rows} for s in book.sheets]}
        except ParseFailed as exc:
            reply = {"ok": False, "failed": True, "reason": exc.reason, "code": exc.code}
        except Refused as exc:
            reply = {"ok": False, "reason": exc.reason, "code": exc.code}
        except MemoryError:
            reply = {"ok": False, "failed": True, "code": "memory",
                     "reason": "文件内容过大，读取时超出内存上限，疑似异常文件，未处理。"}
        except Exception as exc:  # noqa: BLE001 - any other failure is this file's, not the run's
            reply = {"ok": False, "failed": True, "code": "unreadable",
                     "reason": f"文件无法读取（{_short(exc)}），可能已损坏。请重新保存后发送。"}
        _write_frame(out, json.dumps(reply, ensure_ascii=False, default=_encode_cell).encode("utf-8"))


# --------------------------------------------------------------------------- the pool (parent side)


#: How the parent talks to its workers: "select" (POSIX: non-blocking pipes served by the calling
#: thread with ``poll``) or "threads" (a reader and a writer thread per worker; Windows, where select() does
#: not take pipes).
IO_MODE = "select" if os.name == "posix" else "threads"


_PIPE_BYTES = 1 << 20
_PUMP_READ = 8 << 20   # most bytes one pump() reads from a worker before the caller looks at the clock


def _widen_pipe(fd: int) -> None:
    """Ask Linux for a 1 MB pipe (64 KB by default): requests and replies of a few files fit, so a
    worker neither waits for the rest of a request nor to hand over its reply while the
    collecting thread is busy storing a file (it serves the pipes between files)."""
    try:
        import fcntl

        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
    except (ImportError, AttributeError, OSError):  # not Linux, or above /proc/sys/fs/pipe-max-size
        pass


class _Worker:
    """One worker subprocess and the requests it has been sent (answered in order).

    The caller must never block on a worker: one stuck on a file stops reading, its stdin pipe
    fills (64 KB on Linux, less on Windows) and a blocking write would hang the caller before
    :meth:`ParserPool.result` could apply the timeout.  Two ways to keep that promise:

    - ``select`` (POSIX): the pipes are non-blocking; requests wait in a buffer and are written
      whenever the pipe takes them, replies are read as they come, all by the calling thread
      while it waits for a result (``poll``).  No helper threads: every thread in
      the collecting process competes for the interpreter lock, and SQLite lets go of it for
      each statement, so each helper thread's wake-up cost the collecting thread a switch.
    - ``threads`` (Windows): a writer thread per worker writes queued requests, a reader thread
      reads replies into a queue.
    """

    def __init__(self, argv: Sequence[str], mode: str = IO_MODE, max_reply: int = 1 << 30) -> None:
        self.argv = list(argv)
        self.mode = mode
        self.max_reply = max_reply        # a longer reply is a worker gone wrong: treated as its death
        self.proc: subprocess.Popen[bytes] | None = None
        self.pending: list[tuple[int, bytes, str, tuple[str, ...]]] = []
        # threads
        self.replies: queue.Queue[bytes | None] = queue.Queue()
        self.requests: queue.Queue[tuple[bytes, bytes] | None] = queue.Queue()
        # select
        self._out = bytearray()           # request bytes the pipe has not taken yet
        self._in = bytearray()            # reply bytes not yet split into frames
        self._frames: list[bytes] = []    # whole replies, oldest first
        self._eof = False                 # the worker's stdout has ended (it died or exited)
        self._rfd = self._wfd = -1

    def start(self) -> subprocess.Popen[bytes]:
        env = {**os.environ, "RUST_BACKTRACE": "0", "PYTHONDONTWRITEBYTECODE": "1"}
        flags = getattr(subprocess, "BELOW_NORMAL_PRIORITY_CLASS", 0)  # Windows; POSIX workers nice themselves
        proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, env=env, close_fds=True, creationflags=flags)
        assert proc.stdin is not None and proc.stdout is not None
        if self.mode == "select":
            self._rfd, self._wfd = proc.stdout.fileno(), proc.stdin.fileno()
            for fd in (self._rfd, self._wfd):
                os.set_blocking(fd, False)
                _widen_pipe(fd)
            self._out, self._in, self._frames, self._eof = bytearray(), bytearray(), [], False
        else:
            replies: queue.Queue[bytes | None] = queue.Queue()
            requests: queue.Queue[tuple[bytes, bytes] | None] = queue.Queue()
            threading.Thread(target=self._reader, args=(proc, replies, self.max_reply), daemon=True).start()
            threading.Thread(target=self._writer, args=(proc, requests), daemon=True).start()
            self.replies, self.requests = replies, requests
        self.proc = proc
        return proc

    @staticmethod
    def _reader(proc: subprocess.Popen[bytes], replies: queue.Queue[bytes | None], max_reply: int) -> None:
        assert proc.stdout is not None
        try:
            while True:
                frame = _read_frame(proc.stdout, max_reply)
                replies.put(frame)
                if frame is None:
                    return
        except (OSError, ValueError):
            replies.put(None)

    @staticmethod
    def _writer(proc: subprocess.Popen[bytes], requests: queue.Queue[tuple[bytes, bytes] | None]) -> None:
        """Write queued frames until told to stop (None: close stdin, the worker exits on EOF).

        A write that fails (the worker died or was killed) ends the thread; the reader sees the
        EOF and the pool settles the files.
        """
        stdin = proc.stdin
        assert stdin is not None
        try:
            while (request := requests.get()) is not None:
                head, data = request
                stdin.write(struct.pack("<Q", len(head) + len(data)) + head)
                stdin.write(data)
                stdin.flush()
        except (OSError, ValueError):
            pass
        finally:
            try:
                stdin.close()
            except (OSError, ValueError):
                pass

    def send(self, item: tuple[int, bytes, str, tuple[str, ...]]) -> bool:
        """Queue a request (starting the worker if there is none); never blocks.

        A worker that has died is *not* replaced here: the replies it wrote before dying are
        still to be read, in order, and the end of its output tells :meth:`ParserPool.result`
        which file killed it.  Replacing it now would hand the next file's reply to the file
        that killed it.  The request is queued anyway; the restart sends it again.
        """
        if self.proc is None:
            try:
                self.start()
            except OSError:
                return False
        _ticket, data, name, wanted = item
        header = json.dumps({"name": name[-200:], "wanted": list(wanted)}).encode("utf-8")
        head = struct.pack("<I", len(header)) + header
        if self.mode == "select":
            self._out += struct.pack("<Q", len(head) + len(data)) + head
            self._out += data
            self.pump()
        else:
            self.requests.put((head, data))
        return True

    # -- select mode

    def pump(self) -> None:
        """Write what the stdin pipe takes and read what the worker has written; never blocks."""
        if self.proc is None:
            return
        while self._out:
            try:
                n = os.write(self._wfd, self._out)
            except BlockingIOError:
                break
            except OSError:  # the worker died: its replies, then the end of its output, tell
                self._out.clear()
                break
            del self._out[:n]
        budget = _PUMP_READ  # bounded, so a worker that never stops writing cannot hold the caller here
        while not self._eof and budget > 0:
            try:
                chunk = os.read(self._rfd, min(budget, 1 << 20))
            except BlockingIOError:
                break
            except OSError:
                chunk = b""
            if not chunk:
                self._eof = True
                break
            budget -= len(chunk)
            self._in += chunk
            buf = self._in
            while len(buf) >= 8:
                (n,) = struct.unpack_from("<Q", buf)
                if n > self.max_reply:  # never buffer what it claims: end its output here
                    self._in, self._eof = bytearray(), True
                    return
                if len(buf) < 8 + n:
                    break
                self._frames.append(bytes(buf[8:8 + n]))
                del buf[:8 + n]

    def fds(self) -> tuple[list[int], list[int]]:
        """What to poll for this worker: (readable, writable) descriptors."""
        if self.proc is None:
            return [], []
        return ([] if self._eof else [self._rfd]), ([self._wfd] if self._out else [])

    def has_reply(self) -> bool:
        """Whether :meth:`take` would return at once."""
        if self.mode == "select":
            self.pump()
            return bool(self._frames) or self._eof
        return not self.replies.empty()

    def take(self, timeout: float, others: Sequence[_Worker] = ()) -> bytes | None:
        """The next reply (None: the worker's output ended); :class:`queue.Empty` after ``timeout``.

        In select mode the other workers are served while waiting (their requests written,
        their replies read), so they keep parsing ahead.
        """
        if self.mode != "select":
            return self.replies.get(timeout=timeout)
        deadline = time.monotonic() + timeout
        while True:
            for w in (self, *others):
                w.pump()
            if self._frames:
                return self._frames.pop(0)
            if self._eof:
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                raise queue.Empty
            poller = select.poll()  # not select(): it refuses descriptors numbered 1024 and above
            for w in (self, *others):
                readable, writable = w.fds()
                for fd in readable:
                    poller.register(fd, select.POLLIN)
                for fd in writable:
                    poller.register(fd, select.POLLOUT)
            poller.poll(max(1, math.ceil(left * 1000)))

    # -- both

    def kill(self) -> None:
        """Kill the process; in threads mode its writer thread then fails on the broken pipe."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if self.mode != "select":
            self.requests.put(None)
        try:
            proc.kill()
        except OSError:
            pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover
            pass
        for stream in (proc.stdout, proc.stdin if self.mode == "select" else None):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass
        self._out, self._in, self._frames, self._eof = bytearray(), bytearray(), [], False

    def close(self) -> None:
        """Let the worker finish on EOF (after what was queued), kill it if it does not exit soon."""
        proc = self.proc
        if proc is None:
            return
        if self.mode == "select":
            self._out.clear()  # what was not written yet is not wanted any more
            for stream in (proc.stdin, proc.stdout):  # EOF: the worker exits after the request it is on
                try:  # (and its replies are not wanted: one blocked writing a big one must not wait)
                    if stream is not None:
                        stream.close()
                except OSError:
                    pass
        else:
            try:  # what was queued but not yet written is not wanted any more
                while True:
                    self.requests.get_nowait()
            except queue.Empty:
                pass
            self.requests.put(None)
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            pass
        self.kill()


class ParserPool:
    """Long-lived worker subprocesses that pre-check and parse files under memory/time limits.

    ``parse`` is synchronous; ``submit``/``result`` let the caller keep files in flight in the
    workers while it validates and stores earlier ones.  A worker that dies (native abort,
    memory limit) or hangs past the timeout costs the file it was reading, nothing else: it is
    replaced and the files queued behind it are sent again.  ``argv`` replaces the worker
    command (tests use it to simulate a hanging worker).
    """

    def __init__(self, limits: Limits, argv: Sequence[str] | None = None, workers: int | None = None,
                 io_mode: str | None = None) -> None:
        self.limits = limits
        self.argv = list(argv) if argv else [sys.executable, "-m", "automation.collect.safety", "--worker",
                                             json.dumps(asdict(limits))]
        count = workers if workers is not None else min(2, os.cpu_count() or 1)
        mode = io_mode or IO_MODE
        if mode not in ("select", "threads") or (mode == "select" and os.name != "posix"):
            raise ValueError(f"io_mode {mode!r} is not available here")
        max_reply = max(limits.parse_memory_mb, 64) << 20  # no worker can build a reply bigger than its memory
        self.workers = [_Worker(self.argv, mode, max_reply) for _ in range(max(1, count))]
        self._where: dict[int, _Worker] = {}
        self._next = 0
        self._done: dict[int, ParsedBook | Refused] = {}
        self._unwanted: set[int] = set()
        self.restarts = 0

    def close(self) -> None:
        """Stop the workers (they exit on EOF; killed if they do not)."""
        for w in self.workers:
            w.close()

    def submit(self, data: bytes, name: str, wanted: Sequence[str] = ()) -> int:
        """Queue a file for parsing; returns a ticket for :meth:`result`."""
        ticket = self._next
        self._next += 1
        worker = min(self.workers, key=lambda w: len(w.pending))
        item = (ticket, data, name, tuple(wanted))
        worker.pending.append(item)
        self._where[ticket] = worker
        if not worker.send(item):
            self._crashed(worker)
        return ticket

    def result(self, ticket: int) -> ParsedBook:
        """The parsed book for ``ticket``, or :class:`Refused`/:class:`ParseFailed` raised."""
        while ticket not in self._done:
            worker = self._where.get(ticket)
            if worker is None or not worker.pending:
                raise KeyError(ticket)
            try:
                frame = worker.take(self.limits.parse_timeout, [w for w in self.workers if w is not worker])
            except queue.Empty:
                first = worker.pending.pop(0)
                self._settle(first[0], ParseFailed(
                    f"读取超时（超过 {self.limits.parse_timeout:.0f} 秒），疑似异常文件，未处理。", "timeout"))
                self._restart(worker)
                continue
            if frame is None:
                self._crashed(worker)
                continue
            first = worker.pending.pop(0)
            self._settle(first[0], self._decode(frame))
        outcome = self._done.pop(ticket)
        if isinstance(outcome, Refused):
            raise outcome
        return outcome

    def ready(self, ticket: int) -> bool:
        """Whether :meth:`result` would return at once (the reply has arrived)."""
        if ticket in self._done:
            return True
        worker = self._where.get(ticket)
        return worker is not None and bool(worker.pending) and worker.pending[0][0] == ticket \
            and worker.has_reply()

    def parse(self, data: bytes, name: str, wanted: Sequence[str] = ()) -> ParsedBook:
        return self.result(self.submit(data, name, wanted))

    def discard(self, ticket: int) -> None:
        """The caller will not ask for this ticket's result (the file was refused before it was
        needed): drop it now or when it arrives, so a long-lived pool does not keep it."""
        if self._done.pop(ticket, None) is None and ticket in self._where:
            self._unwanted.add(ticket)

    def _settle(self, ticket: int, outcome: ParsedBook | Refused) -> None:
        self._where.pop(ticket, None)
        if ticket in self._unwanted:
            self._unwanted.discard(ticket)
            return
        self._done[ticket] = outcome

    def _crashed(self, worker: _Worker) -> None:
        """The worker died: the oldest file it had killed it; the others are sent again."""
        if worker.pending:
            first = worker.pending.pop(0)
            self._settle(first[0], ParseFailed(
                "读取时程序异常退出（内容过大或结构异常，超出内存上限），疑似异常文件，未处理。", "crash"))
        self._restart(worker)

    def _restart(self, worker: _Worker) -> None:
        worker.kill()
        self.restarts += 1
        rest, worker.pending = worker.pending, []
        for item in rest:
            worker.pending.append(item)
            if not worker.send(item):  # pragma: no cover - a worker that cannot even start
                worker.pending.pop()
                self._settle(item[0], ParseFailed("读取程序无法启动。", "crash"))

    @staticmethod
    def _decode(frame: bytes) -> ParsedBook | Refused:
        try:
            reply = json.loads(frame.decode("utf-8"), object_hook=_decode_tag)
        except (ValueError, UnicodeDecodeError):
            return ParseFailed("读取程序返回了无法识别的结果，未处理。", "crash")
        if not reply.get("ok"):
            cls = ParseFailed if reply.get("failed") else Refused
            return cls(str(reply.get("reason", "文件无法读取。")), str(reply.get("code", "unreadable")))
        return ParsedBook(reply["kind"], [ParsedSheet(s["name"], s["visible"], s["rows"]) for s in reply["sheets"]])


_POOLS: dict[Limits, ParserPool] = {}
_POOL_LOCK = threading.Lock()


def get_pool(limits: Limits) -> ParserPool:
    """The process-wide pool for these limits (started lazily, stopped at exit)."""
    with _POOL_LOCK:
        pool = _POOLS.get(limits)
        if pool is None:
            pool = _POOLS[limits] = ParserPool(limits)
        return pool


def shutdown_pool() -> None:
    """Stop every worker this process started."""
    with _POOL_LOCK:
        pools = list(_POOLS.values())
        _POOLS.clear()
    for pool in pools:
        pool.close()


atexit.register(shutdown_pool)


if __name__ == "__main__":  # pragma: no cover - exercised through ParserPool
    if len(sys.argv) >= 3 and sys.argv[1] == "--worker":
        sys.exit(worker_main(sys.argv[2:]))
    sys.exit("usage: python -m automation.collect.safety --worker LIMITS_JSON")
