"""Benchmark: importing a 20-page PDF task table, ours against bare pdfplumber ``extract_tables()``.

The PDF is made by ``scripts/make_import_fixtures.py --bench`` (a Word table of 140 tasks: 类别
merged down, the header repeated on every page, long cells split across pages, converted by
LibreOffice Writer) and committed as tests/fixtures/import/bench_20pages.pdf.

Bare pdfplumber only finds the tables and gives their cells' text.  Ours does that and also reads
the text around the tables, joins wrapped lines inside cells and rows split by a page break,
carries merged cells down, recognises the header and the hierarchy, splits the units and dates
the deadlines.  Both run in this one process, alternating, so they see the same machine; the
goal is ours within 1.5× of bare pdfplumber.

    python bench/bench_import.py [--rounds 7] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from results import write_section  # noqa: E402  bench/results.py (the script folder is on sys.path)

from automation.tasks.load import load_tasks  # noqa: E402

PDF = ROOT / "tests" / "fixtures" / "import" / "bench_20pages.pdf"


def bare() -> int:
    """pdfplumber as its README shows it: every page's ``extract_tables()``; returns the rows."""
    import pdfplumber

    rows = 0
    with pdfplumber.open(PDF) as pdf:
        for page in pdf.pages:
            for table in page.extract_tables():
                rows += len(table)
    return rows


def ours() -> int:
    return len(load_tasks(PDF, year=2022).tasks)


def timed(fn) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--no-write", action="store_true", help="do not update bench/RESULTS.md")
    args = parser.parse_args()
    if not PDF.exists():
        raise SystemExit(f"{PDF} is missing: run python scripts/make_import_fixtures.py --bench")
    import pdfplumber

    with pdfplumber.open(PDF) as pdf:
        pages = len(pdf.pages)
    bare()
    ours()  # warm both (imports, font caches)
    times: dict[str, list[float]] = {"bare": [], "ours": []}
    found: dict[str, int] = {}
    for i in range(args.rounds):
        for name, fn in (("bare", bare), ("ours", ours)) if i % 2 == 0 else (("ours", ours), ("bare", bare)):
            seconds, result = timed(fn)
            times[name].append(seconds)
            found[name] = result
    ratios = [o / b for o, b in zip(times["ours"], times["bare"], strict=True)]
    best = {k: min(v) for k, v in times.items()}
    median = {k: statistics.median(v) for k, v in times.items()}
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    text = f"""## import

`python bench/bench_import.py` — a {pages}-page PDF task table (tests/fixtures/import/bench_20pages.pdf, made by
`scripts/make_import_fixtures.py --bench`: a Word table of {found['ours']} tasks with 类别 merged down, the header
repeated on every page and long cells split across pages, converted by LibreOffice Writer). Ours is
`load_tasks()` (tables and the text around them, wrapped lines and split rows joined, merged cells carried down,
header, hierarchy, units, deadlines); bare is pdfplumber's `extract_tables()` on every page (cells only,
{found['bare']} rows). {args.rounds} alternating rounds in one process. Python {platform.python_version()},
pdfplumber {metadata.version('pdfplumber')}, pdfminer.six {metadata.version('pdfminer.six')}, {platform.machine()},
{os.cpu_count()} cores; 1-minute load average {load:.1f} when it ran.

| | best | median | per page (median) |
|---|---:|---:|---:|
| bare pdfplumber `extract_tables()` | {best['bare'] * 1000:.0f} ms | {median['bare'] * 1000:.0f} ms | {median['bare'] / pages * 1000:.1f} ms |
| ours (`load_tasks`) | {best['ours'] * 1000:.0f} ms | {median['ours'] * 1000:.0f} ms | {median['ours'] / pages * 1000:.1f} ms |
| **ratio ours / bare** | {best['ours'] / best['bare']:.2f}× | {statistics.median(ratios):.2f}× (paired) | |

Goal: within 1.5× of bare pdfplumber — {'met' if statistics.median(ratios) <= 1.5 else 'NOT met'}.
"""
    print(text)
    if not args.no_write:
        write_section("import", text)


if __name__ == "__main__":
    main()
