"""Word documents (.docx): the tables' rows and the running text around them, in document order.

A task table in Word arrives as a table (merged cells: a horizontally merged heading keeps its
text in the first column, a vertically merged group cell repeats down, as python-docx reads it);
a 分工方案 arrives as paragraphs.  Both are read, so the interpreter can take either.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from automation.errors import InputError
from automation.tasks.records import RawRow

__all__ = ["read_docx_rows", "PARAGRAPHS"]

#: The sheet name of running text (a problem there reads 「正文第 N 段」).
PARAGRAPHS = "正文"


def _table_rows(table: Any, t_index: int, start: int) -> list[RawRow]:
    rows: list[RawRow] = []
    above: list[Any] = []
    for n, row in enumerate(table.rows, start=start):
        cells: list[str] = []
        carried: set[int] = set()
        tcs = []
        last_tc = None
        for col, cell in enumerate(row.cells):
            tc = cell._tc
            if tc is last_tc:  # horizontally merged: the text belongs to the first column
                cells.append("")
            else:
                cells.append("\n".join(p.text for p in cell.paragraphs))
                if col < len(above) and above[col] is tc:  # vertically merged: repeated from above
                    carried.add(col)
            tcs.append(tc)
            last_tc = tc
        rows.append(RawRow(n, cells, f"表格{t_index}", carried=carried))
        above = tcs
    return rows


def read_docx_rows(path: Path) -> list[RawRow]:
    """Paragraphs (``text=True``, numbered by paragraph) and table rows (numbered across tables)."""
    import docx
    from docx.opc.exceptions import PackageNotFoundError
    from docx.table import Table

    if not zipfile.is_zipfile(path):
        raise InputError(f"{path.name}：不是有效的 .docx 文件（可能已损坏或是旧版 .doc）。请另存为 .docx。")
    try:
        document = docx.Document(str(path))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise InputError(f"{path.name}：无法读取 Word 文档（{exc}）。请在 Word/WPS 中打开后另存为 .docx 再试。") from exc
    rows: list[RawRow] = []
    paragraph = 0
    table_row = 1
    tables = 0
    for item in document.iter_inner_content():
        if isinstance(item, Table):
            tables += 1
            found = _table_rows(item, tables, table_row)
            rows += found
            table_row += len(found)
        else:
            paragraph += 1
            if item.text.strip():
                rows.append(RawRow(paragraph, [item.text], PARAGRAPHS, text=True))
    return rows
