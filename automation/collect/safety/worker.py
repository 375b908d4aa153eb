"""The worker process: pre-check and parse files under a memory limit, at a lower priority.

``python -m automation.collect.safety --worker LIMITS_JSON`` serves requests on stdin/stdout
until EOF (:mod:`~automation.collect.safety.protocol`); the parent's pool starts it once and
reuses it.  It imports python-calamine and the standard library only: every worker pays its
imports, and pandas/openpyxl are not needed here.
"""

from __future__ import annotations

import io
import json
import os
import sys
from collections.abc import Sequence

from automation.collect.safety.checks import inspect
from automation.collect.safety.formulas import formulas_without_value, sheet_parts
from automation.collect.safety.limits import Limits, ParseFailed, Refused
from automation.collect.safety.protocol import (
    ParsedBook,
    ParsedSheet,
    decode_request,
    encode_book,
    encode_refusal,
    read_frame,
    write_frame,
)

__all__ = ["parse_in_process", "worker_main", "WORKER_NICENESS"]

_MAX_SHEETS = 40


def parse_in_process(data: bytes, name: str, limits: Limits, wanted: Sequence[str] = ()) -> ParsedBook:
    """Pre-check then read with python-calamine, in *this* process (the worker calls it).

    When every sheet in ``wanted`` exists only those are read; otherwise every worksheet is
    (a unit that copied its rows into a new book has other sheet names).
    """
    kind, readable, formula_parts = inspect(data, name, limits)
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
        if formula_parts:
            _add_formulas(readable, formula_parts, sheets, limits)
        return ParsedBook(kind, sheets)
    finally:
        wb.close()


def _add_formulas(data: bytes, formula_parts: frozenset[str], sheets: list[ParsedSheet], limits: Limits) -> None:
    """The formulas without a value of each sheet read (only sheets whose XML has a formula)."""
    import zipfile

    parts = sheet_parts(data, [s.name for s in sheets])
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for sheet in sheets:
            part = parts.get(sheet.name)
            if part not in formula_parts:
                continue
            try:
                xml = zf.read(part)
            except (KeyError, zipfile.BadZipFile, OSError, ValueError):
                continue
            sheet.formulas = formulas_without_value(xml, limits.max_rows, limits.max_cols)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:120]


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
        frame = read_frame(inp)
        if frame is None:
            return 0
        name, wanted, data = decode_request(frame)
        reply: ParsedBook | bytes
        try:
            reply = parse_in_process(data, name, limits, wanted)
        except ParseFailed as exc:
            reply = encode_refusal(exc.reason, exc.code, failed=True)
        except Refused as exc:
            reply = encode_refusal(exc.reason, exc.code, failed=False)
        except MemoryError:
            reply = encode_refusal("文件内容过大，读取时超出内存上限，疑似异常文件，未处理。", "memory", failed=True)
        except Exception as exc:  # noqa: BLE001 - any other failure is this file's, not the run's
            reply = encode_refusal(f"文件无法读取（{_short(exc)}），可能已损坏。请重新保存后发送。", "unreadable",
                                   failed=True)
        write_frame(out, reply if isinstance(reply, bytes) else encode_book(reply))
