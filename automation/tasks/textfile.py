"""Text files: a table pasted as text (``|`` or tab between cells), a web/PDF extract with one
cell per line, or running text (a 分工方案 pasted from Word) — one reader decides which.
"""

from __future__ import annotations

import re
from pathlib import Path

from automation.errors import InputError
from automation.tasks.extract import is_cell_per_line, rebuild_rows
from automation.tasks.records import RawRow

__all__ = ["decode_text", "read_text_rows"]

_MD_SEPARATOR_RE = re.compile(r"\s*\|?[\s:|-]+\|?\s*")


def decode_text(data: bytes, path: Path) -> str:
    """UTF-8, GB18030 or UTF-16 (Excel's "Unicode 文本"); binary content is refused."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):  # Excel's "Unicode 文本" and Notepad's "Unicode"
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            pass
    if b"\x00" in data[:4096]:
        raise InputError(f"{path.name}：不是文本表格（文件含二进制内容）。请另存为 .xlsx、.csv 或 .docx 后再导入。")
    for enc in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(enc)
        except UnicodeDecodeError:
            continue
        controls = sum(1 for ch in text[:4096] if ord(ch) < 32 and ch not in "\r\n\t")
        if controls > 8:
            break
        return text
    raise InputError(
        f"{path.name}：无法识别文件编码或不是文本表格。请用 UTF-8 或 GB18030 编码保存，或另存为 .xlsx。"
    )


def _delimited_rows(lines: list[str]) -> list[RawRow]:
    sample = "\n".join(lines[:20])
    delim = "|" if sample.count("|") >= max(2, sample.count("\t")) else "\t"
    rows: list[RawRow] = []
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if _MD_SEPARATOR_RE.fullmatch(line) and "-" in line:  # markdown separator
            continue
        cells = line.split(delim)
        if delim == "|" and line.lstrip().startswith("|"):
            cells = cells[1:]
        rows.append(RawRow(i, [c.strip() for c in cells]))
    return rows


def read_text_rows(path: Path, data: bytes) -> list[RawRow]:
    """Rows of a text file: delimited cells, rebuilt one-cell-per-line rows, or one row per line."""
    lines = decode_text(data, path).splitlines()
    if is_cell_per_line(lines):
        return rebuild_rows(lines)
    return _delimited_rows(lines)
