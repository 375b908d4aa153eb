"""Benchmark: collecting returned workbooks, against pandas and against bare python-calamine, in one run.

    python bench/bench_collect.py [--repeat 3] [--rounds 5] [--no-write] [--no-libreoffice]

Setup (not timed): the bundled config and sample in a temporary workspace; one workbook per unit
(37 units, 1 103 assignments) built by ``build_workbooks`` and filled with openpyxl as a unit would
(every task answered: mixed statuses, progress text, real date cells, evidence); ``--repeat``
copies per unit with different answers, so N = 37 × repeat distinct files.  Two corpora of the
same N files:

- office-saved: every filled file opened and saved again by LibreOffice Calc (``soffice
  --convert-to xlsx``), as a unit's office software writes it (shared strings in UTF-8, the
  suite's own styles, rich-text runs).  This is what ``collect`` meets in practice, and the
  corpus the targets are judged on.  Skipped (with a note) when ``soffice`` is not installed.
- openpyxl-written: the same files as openpyxl saved them: inline strings with every CJK
  character written as an eight-byte character reference (``&#24180;``).  No office suite writes
  that; it is the slowest case for every parser, and it is reported as measured.

Timed, per file, for each corpus, best and median of ``--rounds`` (each round on a fresh copy of
the ledger; the three readers back to back in each round):

- ours: ``collect_paths`` end to end: SHA-256, duplicate check, pre-checks (zip structure, sizes,
  entities, far cells), parsing in the sandboxed worker pool (already started), identification and
  HMAC check, row matching and validation, each file stored atomically in the ledger (a savepoint;
  commits shared), archive copy (copies and commits made durable by one ``os.sync`` per batch, as
  in every ``collect`` run);
- pandas: ``pandas.read_excel(path, sheet_name=None)`` with its default engine (openpyxl for .xlsx)
  — parsing only, no validation, no ledger;
- calamine: ``CalamineWorkbook.from_path`` and ``to_python()`` of every sheet — parsing only.

Targets: ours ≥ 10× faster than pandas per workbook; ours within 3× of bare calamine.
The figures go to ``bench/RESULTS.md`` under ``## collect`` (other sections are kept).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

from results import write_section  # bench/results.py (the script folder is on sys.path)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

STATUSES = ("已完成", "推进中", "未启动", "不适用", "完成", "进行中")


def _fill(src: Path, out: Path, variant: int) -> None:
    import openpyxl

    from automation.workbook.layout import CONTACT_LABEL, TASK_SHEET

    wb = openpyxl.load_workbook(src)
    ws = wb[TASK_SHEET]
    header = next(r for r in range(1, 20) if ws.cell(r, 1).value == "序号")
    cols = {ws.cell(header, c).value: c for c in range(1, ws.max_column + 1)}
    for r in range(header + 1, ws.max_row + 1):
        n = ws.cell(r, 1).value
        if not isinstance(n, (int, float)):
            continue
        status = STATUSES[(int(n) + variant) % len(STATUSES)]
        ws.cell(r, cols["落实情况"]).value = status
        ws.cell(r, cols["工作进展及成效"]).value = f"第{int(n)}项：已召开专题会议部署，相关信息已在门户网站公开（第{variant}版）。"
        if status in ("已完成", "完成"):
            ws.cell(r, cols["完成时间"]).value = dt.datetime(2021, 6, 1 + int(n) % 28)
            ws.cell(r, cols["佐证材料"]).value = f"https://www.np.gov.cn/cms/{int(n)}.html"
        else:
            ws.cell(r, cols["存在问题及下步打算"]).value = "人员不足，下一步加强培训。"
    for row in ws.iter_rows(min_row=1, max_row=header - 1):
        for c in row:
            if isinstance(c.value, str) and c.value.startswith(CONTACT_LABEL):
                ws.cell(c.row, c.column + 2).value = "王小明"
    wb.save(out)


def prepare(root: Path, repeat: int) -> tuple[object, Path, Path]:
    from collect_kit import private_config

    from automation import clock
    from automation.ledger import open_workspace
    from automation.tasks.importing import init_batch
    from automation.workbook.build import build_workbooks

    now = clock.parse("2021-11-01T09:30")
    config = private_config(root / "ws")
    _ws, ledger = open_workspace(config)
    init_batch(config, ledger, now)
    built = build_workbooks(config, ledger, now)
    ledger.close()
    files = root / "returned"
    files.mkdir()
    for b in built:
        for v in range(repeat):
            _fill(b.path, files / f"{v}-{b.path.name}", v)
    pristine = root / "pristine.sqlite3"
    shutil.copy(config.workspace / "ledger.sqlite3", pristine)
    return config, files, pristine


def resave_with_libreoffice(files: Path, out: Path) -> str | None:
    """Open and save every file with LibreOffice Calc (one soffice run); its version, or None."""
    soffice = shutil.which("soffice")
    if soffice is None:
        return None
    out.mkdir()
    profile = (out.parent / "lo-profile").as_uri()
    paths = sorted(files.iterdir())
    subprocess.run([soffice, f"-env:UserInstallation={profile}", "--headless", "--convert-to", "xlsx",
                    "--outdir", str(out), *map(str, paths)], check=True, capture_output=True, timeout=1800)
    missing = [p.name for p in paths if not (out / p.name).is_file()]
    if missing:
        raise RuntimeError(f"LibreOffice did not write {missing[:3]}")
    version = subprocess.run([soffice, f"-env:UserInstallation={profile}", "--headless", "--version"],
                             capture_output=True, text=True, timeout=120).stdout.split()
    return " ".join(version[1:2]) or "?"


def _proc_cpu(pid: int) -> float:
    """CPU seconds of another process (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def time_ours(config, files: Path, pristine: Path, now) -> tuple[float, float, int, int]:
    from automation.collect.pipeline import collect_paths
    from automation.collect.safety import Limits, get_pool
    from automation.ledger import Ledger

    ws = config.workspace
    for name in ("ledger.sqlite3", "ledger.sqlite3-wal", "ledger.sqlite3-shm"):
        (ws / name).unlink(missing_ok=True)
    shutil.rmtree(ws / "archive", ignore_errors=True)
    shutil.copy(pristine, ws / "ledger.sqlite3")
    pool = get_pool(Limits.from_config(config.collect))
    for w in pool.workers:  # the workers are started once per process, not per file
        if w.proc is None:
            w.start()
    ledger = Ledger.open(ws)
    pids = [w.proc.pid for w in pool.workers if w.proc is not None]
    try:
        cpu0 = time.process_time() + sum(_proc_cpu(p) for p in pids)
        start = time.perf_counter()
        results = collect_paths(config, ledger, [files], now)
        elapsed = time.perf_counter() - start
        cpu = time.process_time() + sum(_proc_cpu(p) for p in pids) - cpu0
    finally:
        ledger.close()
    assert all(r.outcome == "accepted" and not r.errors for r in results), [r.reason for r in results][:3]
    n = len(results)
    return elapsed / n, cpu / n, n, sum(r.rows_accepted for r in results)


def time_pandas(paths: list[Path]) -> tuple[float, float]:
    import pandas as pd

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas 3 announces its default engine will change
        cpu0, start = time.process_time(), time.perf_counter()
        for p in paths:
            pd.read_excel(p, sheet_name=None)
        return (time.perf_counter() - start) / len(paths), (time.process_time() - cpu0) / len(paths)


def time_calamine(paths: list[Path]) -> tuple[float, float]:
    import python_calamine as pc

    cpu0, start = time.process_time(), time.perf_counter()
    for p in paths:
        wb = pc.CalamineWorkbook.from_path(str(p))
        for name in wb.sheet_names:
            wb.get_sheet_by_name(name).to_python()
        wb.close()
    return (time.perf_counter() - start) / len(paths), (time.process_time() - cpu0) / len(paths)



def _calamine_alone(paths: list[str]) -> float:
    return time_calamine([Path(p) for p in paths])[0]


def time_two_at_once(paths: list[Path]) -> float:
    """Bare calamine per workbook while a second process does the same: what one core gives when
    both are busy (on a shared virtual machine far less than when the other is idle)."""
    import multiprocessing as mp

    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    with ctx.Pool(2) as pool:
        return statistics.mean(pool.map(_calamine_alone, [[str(p) for p in paths]] * 2))


def _measure(config, files: Path, pristine: Path, now, rounds: int) -> dict[str, object]:
    """The three readers back to back, ``rounds`` times, on one corpus."""
    paths = sorted(files.iterdir())
    ours, cal, pan, ours_cpu = [], [], [], []
    n = rows = 0
    for _ in range(rounds):
        t, c, n, rows = time_ours(config, files, pristine, now)
        ours.append(t)
        ours_cpu.append(c)
        cal.append(time_calamine(paths)[0])
        pan.append(time_pandas(paths)[0])
    return {"ours": ours, "cal": cal, "pan": pan, "ours_cpu": ours_cpu, "n": n, "rows": rows,
            "paired": sorted(p / o for p, o in zip(pan, ours, strict=True))}


def _ms(values: list[float]) -> str:
    return f"{min(values) * 1000:.2f} ({statistics.median(values) * 1000:.2f})"


def _rows(label: str, m: dict) -> str:
    return (f"| {label} | ours: `collect_paths` end to end | {_ms(m['ours'])} | {min(m['ours_cpu']) * 1000:.2f} |\n"
            f"| {label} | pandas.read_excel (openpyxl) | {_ms(m['pan'])} | |\n"
            f"| {label} | bare python-calamine | {_ms(m['cal'])} | |\n")


def _verdict(label: str, m: dict, judged: bool) -> str:
    fast = statistics.median(m["pan"]) / statistics.median(m["ours"])
    near = statistics.median(m["ours"]) / statistics.median(m["cal"])
    paired = m["paired"]
    tail = ""
    if judged:
        tail = (f" Target ≥ 10×: **{'met' if fast >= 10 else 'not met'}**; target ≤ 3×: "
                f"**{'met' if near <= 3 else 'not met'}**.")
    return (f"- **{label}**: pandas / ours = **{fast:.1f}×**, ours / calamine = **{near:.2f}×** (medians). "
            f"Round by round (pandas and ours timed back to back): pandas / ours = {paired[0]:.1f}× to "
            f"{paired[-1]:.1f}×, median {statistics.median(paired):.1f}×.{tail}\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="filled copies per unit (N = 37 × repeat)")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per corpus")
    parser.add_argument("--no-write", action="store_true", help="do not update bench/RESULTS.md")
    parser.add_argument("--no-libreoffice", action="store_true", help="skip the office-saved corpus")
    args = parser.parse_args(argv)

    from importlib import metadata

    import pandas as pd

    from automation import clock
    from automation.collect.safety import shutdown_pool

    now = clock.parse("2021-11-01T10:00")
    with tempfile.TemporaryDirectory(prefix="bench-collect-") as tmp:
        config, files, pristine = prepare(Path(tmp), args.repeat)
        office = Path(tmp) / "office-saved"
        lo_version = None if args.no_libreoffice else resave_with_libreoffice(files, office)
        corpora = ([("office-saved", office)] if lo_version else []) + [("openpyxl-written", files)]
        measured = {label: _measure(config, path, pristine, now, args.rounds) for label, path in corpora}
        shutdown_pool()
        first = corpora[0][1]
        two = min(time_two_at_once(sorted(first.iterdir())) for _ in range(3))
        alone = min(measured[corpora[0][0]]["cal"])
    any_m = next(iter(measured.values()))
    judged = corpora[0][0]
    office_note = (
        f"**office-saved**: each filled file opened and saved again by LibreOffice Calc {lo_version} "
        "(`soffice --convert-to xlsx`), as a unit's office software writes it (shared strings in UTF-8, the "
        "suite's styles, rich-text runs); what `collect` meets in practice, so the targets are judged on it. "
        if lo_version else
        "The office-saved corpus was skipped (LibreOffice not installed or `--no-libreoffice`): the targets are "
        "judged on the openpyxl-written corpus below. ")
    report = (
        "## collect\n\n"
        "`python bench/bench_collect.py` — the same N returned workbooks (37 units × "
        f"{args.repeat} filled versions = {any_m['n']} files, {any_m['rows']} answered rows; built by "
        "`build_workbooks`, filled with openpyxl) through three readers in one run, in two corpora. "
        + office_note +
        "**openpyxl-written**: the same files as openpyxl saved them (inline strings, every CJK character an "
        "eight-byte character reference such as `&#24180;`); no office suite writes that, and it is the slowest "
        "case for every parser.\n\n"
        "Readers: **ours**: `collect_paths` end to end (SHA-256, duplicate check, pre-checks, parsing in the "
        "sandboxed worker pool, HMAC identification, row matching and validation, each file stored atomically "
        "with commits shared and made durable by `os.sync`, archive copies of the originals); **pandas**: "
        "`pandas.read_excel(path, sheet_name=None)`, default engine (openpyxl), parsing only; **calamine**: bare "
        "`CalamineWorkbook.from_path` + `to_python()` of every sheet, parsing only. "
        f"{args.rounds} rounds per corpus, the three readers back to back in each; milliseconds per workbook, "
        "best (median). Python "
        f"{platform.python_version()}, pandas {pd.__version__}, python-calamine {metadata.version('python-calamine')}; "
        "2-core machine shared with other jobs. The CPU column adds this process and the parse workers.\n\n"
        "| corpus | reader | ms per workbook, best (median) | CPU ms per workbook (all processes) |\n"
        "|---|---|---:|---:|\n"
        + "".join(_rows(label, measured[label]) for label, _p in corpora) + "\n"
        + "".join(_verdict(label, measured[label], label == judged) for label, _p in corpora) + "\n"
        f"Both cores busy: bare calamine takes {two * 1000:.2f} ms per workbook in each of two processes at once "
        f"against {alone * 1000:.2f} ms alone ({alone * 2 / two:.2f}× the throughput of one core, where two idle "
        "cores would give 2×); pandas runs on one core with the other idle, our pipeline needs both.\n"
    )
    print(report)
    if not args.no_write:
        write_section("collect", report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
