"""Province scale: the whole loop at 200, 1,000 and 2,000 units × 100 tasks.

    python bench/bench_scale.py                       # 200, 1000, 2000 units; writes bench/RESULTS.md "## scale"
    python bench/bench_scale.py --sizes 200 --no-write

A synthetic province batch (realistic text lengths: titles and requirements cycled from the
bundled Nanping sample): 80 省直部门, 20 设区市政府 and the rest 县（市、区）政府, grouped as
省直有关部门 / 各设区市政府 / 各县（市、区）政府; 100 tasks in 5 sections × 4 subsections, each with one
or two lead departments and two or three groups responsible (about 90 assignments per unit).
The task table is a pipe-text file and the registry a generated config.toml, so ``init`` parses
and resolves them like a real office's.

Stages, each in its own process (wall time, and peak RSS of the largest process of the stage —
the stage itself or one of its workers — from ``wait4``):

- ``init``: load the table, resolve units and groups, expand assignments, write the ledger;
- ``build``: :func:`automation.workbook.build.build_workbooks` (both cores);
- ``returns``: what the units do — 90 % return a filled workbook (70 % all 已完成, 20 % partly),
  10 % stay silent; rendered from the issued content with answers filled in (not timed as office work);
- ``collect``: :func:`automation.collect.pipeline.collect_paths` on the inbox;
- ``report``: :func:`automation.progress.report.build_report`;
- ``remind``: :func:`automation.remind.send_reminders` one working day before the deadline, outbox
  transport, each reminder with its re-issued pre-filled workbook;
- naive baselines beside build and collect, on the first ``--baseline-units`` units (per-workbook cost):
  ``pandas.read_sql`` + ``groupby`` + ``DataFrame.to_excel`` per unit, and ``pandas.read_excel`` per
  returned file.

"The loop" is the office's work: init + build + collect + report + remind (the simulated returns are
the units' work, reported separately).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

from results import write_section  # bench/results.py (the script folder is on sys.path)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NOW_SEND = "2026-11-02T09:00"
NOW_RETURNS = "2026-11-20T10:00"
NOW_REMIND = "2026-12-30T09:30"  # one working day before the 2026-12-31 deadline
STAGES = ("init", "build", "returns", "collect", "report", "remind")
LOOP = ("init", "build", "collect", "report", "remind")
DEPTS = ("发改委", "教育厅", "科技厅", "工信厅", "公安厅", "民政厅", "司法厅", "财政厅", "人社厅", "自然资源厅",
         "生态环境厅", "住建厅", "交通运输厅", "水利厅", "农业农村厅", "商务厅", "文旅厅", "卫健委", "应急厅",
         "审计厅", "国资委", "市场监管局", "广电局", "体育局", "统计局", "医保局", "林业局", "粮食和储备局",
         "数据管理局", "信访局")


# --------------------------------------------------------------------------- the synthetic province


def make_province(root: Path, n_units: int) -> Path:
    """Write config.toml and the task table for ``n_units`` units; returns the config path."""
    from automation.tasks.load import load_tasks

    sample = load_tasks(ROOT / "samples" / "task-table.txt").tasks
    depts = [f"省{DEPTS[i % len(DEPTS)]}" + ("" if i < len(DEPTS) else str(i // len(DEPTS) + 1)) for i in range(80)]
    cities = [f"第{i + 1}设区市政府" for i in range(20)]
    counties = [f"第{i // 90 + 1}市第{i % 90 + 1}县政府" for i in range(max(0, n_units - 100))]
    lines = ["工作任务 | 工作要求 | 牵头单位 | 责任单位 | 落实情况 |"]
    cn = "一二三四五"
    groups = ("省直有关部门", "各设区市政府", "各县（市、区）政府")
    number = 0
    for s in range(5):
        lines.append(f"{cn[s]}、第{s + 1}部分重点工作 | ||||")
        for sub in range(4):
            lines.append(f"({cn[sub]}) 第{sub + 1}方面工作 | ||||")
            for _ in range(5):
                number += 1
                t = sample[number % len(sample)]
                lead = " ".join(depts[(number * k) % len(depts)] for k in (1, 7)[: 1 + number % 2])
                resp = ",".join(groups[(number + k) % 3] for k in range(2 + number % 2))
                requirement = t.requirement or sample[(number + 3) % len(sample)].requirement
                lines.append(f"{number}.{t.title}（第{number}项） | {requirement} | {lead} | {resp} | |")
    (root / "tasks.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    units = [(d, "省直部门") for d in depts] + [(c, "设区市政府") for c in cities] + [(c, "县（市、区）政府") for c in counties]
    out = [
        'workspace = "var"\ntemplate = "templates/report_template.xlsx"\n',
        '[office]\nname = "示例省人民政府办公厅"\ncontact = "张三"\nphone = "0571-0000000"\nemail = "duban@prov.example.com"\n'
        'supervisor_email = "ducha@prov.example.com"\n',
        '[batch]\ntitle = "2026年示例省重点工作"\nyear = 2026\ndeadline = 2026-12-31\ntasks = "tasks.txt"\n',
        '[collect]\nreceipts = false\n',
        "[groups]\n"
        + f'"省直有关部门" = {json.dumps(depts, ensure_ascii=False)}\n'
        + f'"各设区市政府" = {json.dumps(cities, ensure_ascii=False)}\n'
        + f'"各县（市、区）政府" = {json.dumps(counties, ensure_ascii=False)}\n',
    ]
    for i, (name, kind) in enumerate(units):
        out.append(f'[[units]]\nname = "{name}"\nemail = ["u{i}@prov.example.com"]\nkind = "{kind}"\n'
                   f'contact = "联系人{i}"\nphone = "0571-{i:07d}"\n')
    (root / "templates").mkdir(exist_ok=True)
    (root / "templates" / "report_template.xlsx").write_bytes(
        (ROOT / "templates" / "report_template.xlsx").read_bytes())
    (root / "config.toml").write_text("\n".join(out), encoding="utf-8")
    return root / "config.toml"


# --------------------------------------------------------------------------- stages (run in a child process)


def _open(config_path: Path):  # type: ignore[no-untyped-def]
    from automation.config import load_config
    from automation.ledger import open_workspace

    config = load_config(config_path)
    _ws, ledger = open_workspace(config)
    return config, ledger


def stage(name: str, config_path: Path, baseline_units: int) -> dict[str, object]:
    from automation import clock

    config, ledger = _open(config_path)
    info: dict[str, object] = {}
    try:
        if name == "init":
            from automation.tasks.importing import init_batch

            result, _ = init_batch(config, ledger, clock.parse(NOW_SEND))
            info = {"tasks": result.task_count, "assignments": result.assignment_count}
        elif name == "build":
            from automation.workbook.build import build_workbooks

            info = {"workbooks": len(build_workbooks(config, ledger, clock.parse(NOW_SEND)))}
        elif name == "returns":
            info = {"files": _returns(config, ledger)}
        elif name == "collect":
            from automation.collect.pipeline import collect_paths

            results = collect_paths(config, ledger, None, clock.parse(NOW_RETURNS))
            info = {"files": len(results), "accepted": sum(r.outcome == "accepted" for r in results),
                    "rows": sum(r.rows_accepted for r in results)}
        elif name == "report":
            from automation.progress.report import build_report

            path = build_report(config, ledger, clock.parse(NOW_RETURNS))
            info = {"mib": round(path.stat().st_size / 2**20, 1)}
        elif name == "remind":
            from automation.mail.transports import OutboxTransport
            from automation.remind import send_reminders

            sent = send_reminders(config, ledger, clock.parse(NOW_REMIND), OutboxTransport(config.workspace / "outbox"))
            info = {"reminders": sum(s.action == "sent" for s in sent)}
        elif name == "naive-build":
            from bench_build import naive

            info = {"workbooks": naive(ledger, config.workspace / "naive", baseline_units)}
        elif name == "naive-collect":
            files = sorted((config.workspace / "archive").glob("*.xlsx"))[:baseline_units]
            import pandas as pd

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for p in files:
                    pd.read_excel(p, sheet_name=None)
            info = {"files": len(files)}
    finally:
        ledger.close()
    return info


def _render_returned(job_ctx):  # type: ignore[no-untyped-def]
    from automation.workbook.build import render_workbook

    ctx, job, path = job_ctx
    Path(path).write_bytes(render_workbook(ctx, job))
    return path


def _returns(config, ledger) -> int:  # type: ignore[no-untyped-def]
    """The units' side: 90 % send back their workbook with answers filled in (bench scaffolding:
    it reuses the builder's renderer with answers in place of a unit typing them)."""
    import concurrent.futures
    import dataclasses
    import multiprocessing

    from automation import clock
    from automation.workbook.build import _context, _Source  # private on purpose: scaffolding, not product
    from automation.workbook.template import layout_for

    batch = ledger.require_batch(config.batch.title)
    layout = layout_for(config)
    issued = clock.parse(NOW_SEND)
    source = _Source(ledger, batch, layout, prefill=False)
    ctx = _context(config, batch, layout, issued)
    inbox = config.workspace / "inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    work = []
    for i, u in enumerate(ledger.assigned_units(batch.id)):
        if i % 10 == 9:
            continue  # silent
        job = source.job(batch, u.id, u.name, issued, inbox / f"{u.name}.xlsx")
        partial = i % 10 in (7, 8)
        rows = []
        for k, row in enumerate(job.rows):
            done = not partial or k % 2 == 0
            answers = ({"status": "已完成", "progress": f"已按要求完成第{row['number']}项工作，相关信息已在门户网站公开。",
                        "completed_on": dt.date(2026, 10, 1 + k % 28), "evidence": "门户网站专栏截图"}
                       if done else {"status": "推进中", "progress": "正在推进。", "issues": "进度偏慢，下一步加强督促。"})
            rows.append({**row, "answers": answers})
        work.append((ctx, dataclasses.replace(job, rows=tuple(rows), contact=f"联系人{i}", phone="0571-1234567"),
                     str(job.path)))
    with concurrent.futures.ProcessPoolExecutor(os.cpu_count() or 1,
                                                mp_context=multiprocessing.get_context("fork")) as pool:
        for _ in pool.map(_render_returned, work, chunksize=8):
            pass
    return len(work)


# --------------------------------------------------------------------------- orchestration


def run_stage(name: str, config_path: Path, baseline_units: int) -> dict[str, object]:
    """Run one stage in a child process: wall time, peak RSS (largest process of the stage), info."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, "--stage", name, "--config", str(config_path),
                             "--baseline-units", str(baseline_units)], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"stage {name} failed ({proc.returncode})")
    return {"seconds": elapsed, "peak_mib": usage.ru_maxrss / 1024, **json.loads(out.decode().strip().splitlines()[-1])}


def run_size(n_units: int, baseline_units: int) -> dict[str, dict[str, object]]:
    with tempfile.TemporaryDirectory(prefix=f"bench-scale-{n_units}-") as tmp:
        config_path = make_province(Path(tmp), n_units)
        results: dict[str, dict[str, object]] = {}
        for name in STAGES:
            results[name] = run_stage(name, config_path, baseline_units)
            if name == "build":
                results["naive-build"] = run_stage("naive-build", config_path, baseline_units)
            print(f"  {n_units:>5} units  {name:<8} {results[name]['seconds']:7.1f} s  "
                  f"{results[name]['peak_mib']:6.0f} MiB  {results[name]}", file=sys.stderr, flush=True)
        results["naive-collect"] = run_stage("naive-collect", config_path, baseline_units)
        return results


def render(all_results: dict[int, dict[str, dict[str, object]]], baseline_units: int) -> str:
    from importlib.metadata import version

    import pandas
    import xlsxwriter

    sizes = sorted(all_results)
    head = "| stage | " + " | ".join(f"{n:,} units" for n in sizes) + " |"
    lines = [
        "## scale",
        "",
        f"`python bench/bench_scale.py` — the whole loop on a synthetic province batch (100 tasks; 80 省直部门, 20 设区市政府, "
        "the rest 县（市、区）政府; about 90 assignments per unit; texts of realistic length from the sample). Each stage runs "
        "in its own process; time is wall clock, memory the peak RSS of the largest process of the stage (the stage or one "
        f"of its workers). Python {platform.python_version()}, pandas {pandas.__version__}, XlsxWriter "
        f"{xlsxwriter.__version__}, python-calamine {version('python-calamine')}, "
        f"{platform.machine()}, {os.cpu_count()} cores, {dt.date.today().isoformat()}.",
        "",
        head,
        "|---|" + "---:|" * len(sizes),
    ]
    for name in STAGES:
        cells = []
        for n in sizes:
            r = all_results[n][name]
            cells.append(f"{r['seconds']:.1f} s / {r['peak_mib']:.0f} MiB")
        label = {"returns": "returns (units' side, simulated)"}.get(name, name)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    loop = {n: sum(float(all_results[n][s]["seconds"]) for s in LOOP) for n in sizes}
    peak = {n: max(float(all_results[n][s]["peak_mib"]) for s in LOOP) for n in sizes}
    lines.append("| **the loop** (init+build+collect+report+remind) | "
                 + " | ".join(f"**{loop[n]:.1f} s / {peak[n]:.0f} MiB**" for n in sizes) + " |")
    lines.append("")
    lines.append("Per unit (seconds of the loop ÷ units): "
                 + ", ".join(f"{n:,}: {loop[n] / n * 1000:.0f} ms" for n in sizes)
                 + " — growth from the smallest to the largest size: "
                 + f"{loop[sizes[-1]] / loop[sizes[0]]:.1f}× time for {sizes[-1] / sizes[0]:.0f}× units.")
    lines.append("")
    lines.append(f"Naive baselines on the first {baseline_units} units of each size (per workbook):")
    lines.append("")
    lines.append("| size | build: ours | build: naive (pandas groupby + to_excel) | ratio | collect: ours | "
                 "collect: naive (pandas.read_excel) | ratio |")
    lines.append("|---:|---:|---:|---:|---:|---:|---:|")
    for n in sizes:
        r = all_results[n]
        ours_b = float(r["build"]["seconds"]) / int(r["build"]["workbooks"]) * 1000
        naive_b = float(r["naive-build"]["seconds"]) / int(r["naive-build"]["workbooks"]) * 1000
        ours_c = float(r["collect"]["seconds"]) / int(r["collect"]["files"]) * 1000
        naive_c = float(r["naive-collect"]["seconds"]) / int(r["naive-collect"]["files"]) * 1000
        lines.append(f"| {n:,} | {ours_b:.1f} ms | {naive_b:.1f} ms | {naive_b / ours_b:.1f}× | {ours_c:.1f} ms | "
                     f"{naive_c:.1f} ms | {naive_c / ours_c:.1f}× |")
    lines.append("")
    lines.append("(The naive stage times include starting Python and pandas once per stage; they do far less than ours: no "
                 "formatting, protection, validation, signatures, ledger writes.)")
    big = sizes[-1]
    verdict = "met" if loop[big] < 180 and peak[big] < 1024 else "NOT met"
    lines.append("")
    lines.append(f"Targets at {big:,} units: the loop under 3 minutes and peak memory under 1 GiB — {verdict} "
                 f"({loop[big]:.0f} s, {peak[big]:.0f} MiB).")
    return "\n".join(lines) + "\n"



def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="200,1000,2000", help="unit counts, comma-separated")
    parser.add_argument("--baseline-units", type=int, default=200, help="units for the naive baselines")
    parser.add_argument("--no-write", action="store_true", help="print, do not update bench/RESULTS.md")
    parser.add_argument("--stage", help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.stage:
        print(json.dumps(stage(args.stage, Path(args.config), args.baseline_units)))
        return 0
    results = {}
    for n in (int(s) for s in args.sizes.split(",")):
        results[n] = run_size(n, args.baseline_units)
    text = render(results, args.baseline_units)
    print(text)
    if not args.no_write:
        write_section("scale", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
