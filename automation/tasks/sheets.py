"""Workbooks (.xlsx .xlsm .xls .ods .xlsb) through calamine; merged cells filled from their top-left."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from automation.errors import InputError
from automation.tasks.records import RawRow

__all__ = ["cell_text", "read_sheets", "WORKBOOK_SUFFIXES"]

WORKBOOK_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".ods", ".xlsb")


def cell_text(value: Any) -> str:
    """Text of one cell as pandas/calamine give it (1.0 -> "1", dates -> ISO)."""
    if value is None:
        return ""
    try:
        import pandas as pd

        if value is pd.NaT or (isinstance(value, float) and value != value):
            return ""
    except ImportError:  # pragma: no cover - pandas is a hard dependency
        pass
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def read_sheets(path: Path) -> dict[str, list[RawRow]]:
    """All sheets of a workbook, merged cells filled from their top-left cell."""
    import pandas as pd
    import python_calamine

    try:
        frames = pd.read_excel(path, sheet_name=None, header=None, engine="calamine")
    except Exception as exc:  # calamine raises its own error types for broken files
        raise InputError(
            f"{path.name}：无法读取工作簿（{type(exc).__name__}: {str(exc)[:120]}）。"
            "文件可能已损坏、被加密或并非表格文件；请在 Excel/WPS 中打开后另存为 .xlsx 再试。"
        ) from exc
    merged: dict[str, list[tuple[tuple[int, int], tuple[int, int]]]] = {}
    try:
        wb = python_calamine.CalamineWorkbook.from_path(str(path))
        for name in wb.sheet_names:
            ranges = wb.get_sheet_by_name(name).merged_cell_ranges
            if ranges:
                merged[name] = list(ranges)
    except Exception:  # merged ranges are a bonus; the frames above already loaded
        merged = {}
    out: dict[str, list[RawRow]] = {}
    for name, frame in frames.items():
        grid = [[cell_text(v) for v in row] for row in frame.itertuples(index=False)]
        carried: dict[int, set[int]] = {}
        for (r0, c0), (r1, c1) in merged.get(name, []):
            if r0 >= len(grid) or c0 >= len(grid[r0]):
                continue
            top = grid[r0][c0]
            for r in range(r0, min(r1, len(grid) - 1) + 1):
                for c in range(c0, min(c1, len(grid[r]) - 1) + 1):
                    if (r, c) != (r0, c0) and not grid[r][c]:
                        # A heading merged across the row stays in its first cell only.
                        grid[r][c] = top if r != r0 else ""
                        if r != r0:
                            carried.setdefault(r, set()).add(c)
        out[name] = [RawRow(i + 1, cells, name, carried=carried.get(i, set())) for i, cells in enumerate(grid)]
    return out
