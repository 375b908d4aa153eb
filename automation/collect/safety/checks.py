"""Pre-checks: what a returned file's raw bytes must pass *before any parser runs*.

The size limit; the container (zip for .xlsx/.xlsm/.xlsb/.ods, OLE compound file for .xls); total
uncompressed size and the compression ratio (zip bombs), measured while streaming, never
trusting the zip's own header; ``<!DOCTYPE``/``<!ENTITY`` in any XML part (billion laughs,
external entities); the furthest cell reference in each sheet's XML, streamed (python-calamine
allocates a dense grid up to the last cell and *aborts the whole process* on a single value at
XFD1048576; openpyxl spins for minutes); password protection (OOXML in an OLE container with
``EncryptionInfo``/``EncryptedPackage``, or a BIFF ``FILEPASS`` record in .xls); and files that
carry a workbook name but are something else (Word, PDF, HTML exported "as .xls").

They run in the worker subprocess (:mod:`~automation.collect.safety.worker`), under its memory
limit, right before the parser.
"""

from __future__ import annotations

import functools
import io
import posixpath
import re
import struct
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from typing import NamedTuple

from automation.collect.safety.limits import SAVE_AS, Limits, Refused

__all__ = ["precheck", "checked", "inspect", "Checked"]

_ZIP_MAGIC = b"PK\x03\x04"
_ZIP_EMPTY = b"PK\x05\x06"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_CHUNK = 1 << 16
_RATIO_FLOOR = 1 << 20          # ratios are only meaningful for parts bigger than this
_MAX_ENTRIES = 5000
_REBUILD_MAX = 32 << 20         # inflated XML held to rebuild the zip for the parser (above: the original)

_DOCTYPE_RE = re.compile(rb"<!\s*(?:DOCTYPE|ENTITY)", re.I)
# A formula element in sheet XML (<f>, <f t="shared" …/>, <x:f>); not <formula1> of a validation.
_FORMULA_TAG_RE = re.compile(rb"<(?:[A-Za-z_][\w.-]{0,15}:)?f[\s>/]")
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


class Checked(NamedTuple):
    """What the pre-check found: the real kind, the bytes the parser should read, and the sheet
    parts that hold formula elements (only those are looked at again for formulas without a value)."""

    kind: str
    data: bytes
    formula_parts: frozenset[str] = frozenset()


def checked(data: bytes, name: str, limits: Limits) -> tuple[str, bytes]:
    """:func:`precheck`, and the bytes the parser should read (see :func:`inspect`)."""
    found = inspect(data, name, limits)
    return found.kind, found.data


def inspect(data: bytes, name: str, limits: Limits) -> Checked:
    """:func:`precheck`, the bytes the parser should read, and the sheet parts with formulas.

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
        kind, parts, formulas = _check_zip(data, limits)
        return Checked(kind, _stored_zip(parts) if parts is not None else data, formulas)
    if head == _OLE_MAGIC:
        return Checked(_check_ole(data), data)
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
    return f"{what}。{SAVE_AS}"


def _check_zip(data: bytes, limits: Limits) -> tuple[str, list[tuple[str, bytes]] | None, frozenset[str]]:
    """Check a zip container; for .xlsx also return every XML part and sheet part, inflated, and
    the sheet parts with formula elements."""
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
        raise Refused(f"这是 Word 文档，不是工作簿。{SAVE_AS}", "not_workbook")
    elif any(n.startswith("ppt/") for n in names):
        raise Refused(f"这是 PowerPoint 演示文稿，不是工作簿。{SAVE_AS}", "not_workbook")
    elif "content.xml" in names:
        raise Refused(f"这是 ODF 文字或演示文档，不是表格。{SAVE_AS}", "not_workbook")
    else:
        raise Refused(f"这是一个压缩包，不是工作簿。{SAVE_AS}", "not_workbook")
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
    formulas: set[str] = set()
    held = 0
    for info in infos:
        sheet = info.filename in sheets
        budget, body, formula = _scan_part(data, info, budget, limits, far_re if sheet else None, parts is not None,
                                           sheet)
        if formula:
            formulas.add(info.filename)
        if parts is not None and body is not None:
            parts.append((info.filename, body))
            held += len(body)
            if held > _REBUILD_MAX:  # a huge workbook: keep the worker's memory for the parser
                parts = None
    return kind, parts, frozenset(formulas)


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
               far_re: re.Pattern[bytes] | None, keep: bool = False,
               sheet: bool = False) -> tuple[int, bytes | None, bool]:
    """Inflate one XML part, charging the budget with the bytes really produced; return the
    budget left, when ``keep`` the whole part, and (worksheets) whether it has a formula element.

    A DOCTYPE (the only place entities can be declared) may only stand in the prolog, before
    the root element, so most parts are inflated just that far unless they are kept; worksheet
    parts are inflated whole for the furthest cell reference.  Binary parts are judged by the
    central directory alone (the worker's memory limit covers a directory that lies) and are
    never kept; a worksheet is XML whatever its name says.
    """
    lower = info.filename.lower()
    if info.filename.endswith("/") or not (sheet or lower.endswith(_XML_SUFFIXES)):
        return budget, None, False
    formula = False
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
            if not formula and _FORMULA_TAG_RE.search(window):
                formula = True
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
    return budget, (b"".join(kept) if kept is not None else None), formula


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
                raise Refused(f"这是 Word/WPS 文字文档，不是工作簿。{SAVE_AS}", "not_workbook")
            if "PowerPoint Document" in streams:
                raise Refused(f"这是 PowerPoint 演示文稿，不是工作簿。{SAVE_AS}", "not_workbook")
            raise Refused(f"文件不是工作簿（Office 容器中没有表格数据）。{SAVE_AS}", "not_workbook")
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

