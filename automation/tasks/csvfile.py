"""CSV files (any delimiter pandas' sniffer finds; UTF-8 or GB18030 as Excel saves them)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from automation.errors import InputError
from automation.tasks.records import RawRow
from automation.tasks.sheets import cell_text
from automation.tasks.textfile import decode_text

__all__ = ["read_csv_rows"]


def read_csv_rows(path: Path, data: bytes) -> list[RawRow]:
    import pandas as pd

    text = decode_text(data, path)
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",\t;")
        sep = dialect.delimiter
    except csv.Error:
        sep = ","
    try:
        frame = pd.read_csv(
            io.StringIO(text), sep=sep, header=None, dtype=str, keep_default_na=False,
            skip_blank_lines=False, engine="python",
        )
    except (pd.errors.ParserError, csv.Error) as exc:
        raise InputError(f"{path.name}：CSV 格式错误（{exc}）。请检查分隔符和引号。") from exc
    except pd.errors.EmptyDataError:
        return []
    return [RawRow(i + 1, [cell_text(v) for v in row]) for i, row in enumerate(frame.itertuples(index=False))]
