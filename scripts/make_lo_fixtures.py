"""Regenerate tests/fixtures/libreoffice/: workbooks filled and re-saved by a real LibreOffice.

    python scripts/make_lo_fixtures.py

1. Builds the issued workbooks of two units from the bundled config.toml + sample with a FIXED
   batch uid and secret (``Ledger.ensure_batch(uid=, secret=)``) and a fixed issue time, so a
   test ledger set up the same way verifies their signatures: 市司法局 (has a scope note) and
   延平区政府.
2. Runs ``scripts/lo_fill.py`` under the system python3 (python3-uno): LibreOffice opens each
   workbook headless, fills it through UNO as a unit contact would, and saves it.
   - 市司法局 → ``sifaju_lo.xlsx``, ``.xls``, ``.ods``: canonical statuses, real date cells,
     a URL and a text starting with ``=`` typed as text, a two-line cell, the last three tasks
     left blank, contact and phone filled.
   - 延平区政府 → ``yanping_lo_resorted.xlsx``: hand-typed statuses (完成, 进行中, 已完成。, 未开展 and
     the invalid 待定), dates typed as text (2021年6月30日, 2021.9.30) next to a real date cell; the
     sheet unprotected, heading rows unmerged and all rows sorted by 序号 descending.
3. Writes ``manifest.json``: batch title/uid/secret (hex; test-only), issue time, template version
   and layout, and per file the unit, its tasks and exactly what was filled per task.

To rebuild the same ledger in a test: ``ledger.ensure_batch(title, year, deadline, now,
uid=manifest["batch"]["uid"], secret=bytes.fromhex(manifest["batch"]["secret"]))`` *before*
``workspace.init_batch(config, ledger, now)`` with the bundled config; unit ids then match.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from automation import clock
from automation.config import load_config
from automation.ledger import Ledger
from automation.tasks.importing import init_batch
from automation.text import normalize_status
from automation.workbook.build import build_unit_workbook
from automation.workbook.template import layout_for

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "libreoffice"
SYSTEM_PYTHON = "/usr/bin/python3"

BATCH_UID = "f1x7ure0ba7c4000a000000000000001"
BATCH_SECRET = bytes.fromhex("5e" * 8 + "c7" * 8 + "0ff1ce00" * 4)  # test-only, published in the manifest
ISSUED_AT = dt.datetime(2021, 11, 1, 9, 30, tzinfo=clock.TZ)

FIELDS = ("status", "progress", "completed_on", "evidence", "issues")


def plan_sifaju(tasks: list[int]) -> dict[int, dict[str, Any]]:
    """Canonical answers for every task but the last three."""
    cycle = ("已完成", "推进中", "已完成", "未启动", "不适用")
    plan: dict[int, dict[str, Any]] = {}
    for i, n in enumerate(tasks[:-3]):
        status = cycle[i % len(cycle)]
        a: dict[str, Any] = {"status": status}
        if status == "已完成":
            a["progress"] = f"已按要求完成第{n}项工作，相关信息已在市政府门户网站政府信息公开专栏发布。"
            a["completed_on"] = ("date", dt.date(2021, 6, 1 + i % 28).isoformat())
            a["evidence"] = f"https://www.np.gov.cn/cms/html/npszf/2021-06-{1 + i % 28:02d}/{n}.html"
        elif status == "推进中":
            a["progress"] = "正在推进，已完成年度目标的60%。"
            a["issues"] = "部分基层单位人员不足；下一步加强培训，11月底前完成。"
        elif status == "未启动":
            a["issues"] = "待上级部署后启动。"
        else:
            a["issues"] = "本单位不涉及该项工作。"
        plan[n] = a
    first, second = tasks[0], tasks[2]
    plan[first]["progress"] = "=已完成（以等号开头的文字，不是公式）"
    plan[second]["evidence"] = "《南平市规章目录》\n《规章清理结果的公告》"
    return plan


def plan_yanping(tasks: list[int]) -> dict[int, dict[str, Any]]:
    """Hand-typed statuses and dates on the first ten tasks; the rest left blank."""
    t = tasks
    return {
        t[0]: {"status": "完成", "progress": "已在区政府网站设立专题。", "completed_on": ("text", "2021年6月30日")},
        t[1]: {"status": "进行中", "progress": "历史规划正在归集整理。", "issues": "档案分散，年底前完成。"},
        t[2]: {"status": "已完成。", "progress": "县级规划已归集。", "completed_on": ("text", "2021.9.30")},
        t[3]: {"status": "未开展", "issues": "等待市级清单。"},
        t[4]: {"status": "已完成", "progress": "已公开行动方案落实举措。", "completed_on": ("date", "2021-08-16"),
               "evidence": "http://www.yp.gov.cn/zwgk/2021/0816.html"},
        t[5]: {"status": "待定", "progress": "尚在研究。"},
        t[6]: {"status": "推进中", "progress": "部门预算已公开，决算公开推进中。"},
        t[7]: {"status": "已完成", "progress": "债务信息已公开。", "completed_on": ("date", "2021-07-01")},
        t[8]: {"status": "不适用", "issues": "本区不涉及。"},
        t[9]: {"status": "已完成", "progress": "每日发布疫情信息。", "completed_on": ("date", "2021-10-31")},
    }


def to_job(plan: dict[int, dict[str, Any]], headers: dict[str, str]) -> dict[str, dict[str, dict[str, str]]]:
    fills: dict[str, dict[str, dict[str, str]]] = {}
    for n, answers in plan.items():
        cells = {}
        for key, value in answers.items():
            if key == "completed_on":
                kind, text = value
                cells[headers[key]] = {"kind": "date" if kind == "date" else "string", "value": text}
            else:
                cells[headers[key]] = {"kind": "string", "value": value}
        fills[str(n)] = cells
    return fills


def to_manifest(plan: dict[int, dict[str, Any]]) -> dict[str, dict[str, str]]:
    out = {}
    for n, answers in plan.items():
        row = {k: "" for k in FIELDS}
        row["completed_on_cell"] = ""
        for key, value in answers.items():
            if key == "completed_on":
                row["completed_on_cell"], row["completed_on"] = value
            else:
                row[key] = value
        row["status_normalized"] = normalize_status(row["status"]) or ""
        out[str(n)] = row
    return out


def main() -> int:
    if not Path(SYSTEM_PYTHON).exists() or shutil.which("soffice") is None:
        print("需要 LibreOffice（libreoffice-calc）和 python3-uno。", file=sys.stderr)
        return 1
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lo-fixtures-") as tmp_name:
        tmp = Path(tmp_name)
        config = load_config(ROOT / "config.toml", workspace=tmp / "var")
        layout = layout_for(config)
        ledger = Ledger.open(config.workspace)
        ledger.ensure_batch(config.batch.title, config.batch.year, config.batch.deadline, ISSUED_AT,
                            uid=BATCH_UID, secret=BATCH_SECRET)
        init_batch(config, ledger, ISSUED_AT)
        batch = ledger.require_batch(config.batch.title)
        headers = {c.key: c.header for c in layout.columns}
        units = {"sifaju": "市司法局", "yanping": "延平区政府"}
        built = {}
        for stem, name in units.items():
            unit = ledger.unit_by_name(name)
            assert unit is not None
            issued = OUT / f"{stem}_issued.xlsx"
            built[stem] = build_unit_workbook(config, ledger, batch, unit.id, ISSUED_AT, out_path=issued)
        plans = {"sifaju": plan_sifaju(built["sifaju"].tasks), "yanping": plan_yanping(built["yanping"].tasks)}
        contacts = {"sifaju": ("王小明", "13800138000"), "yanping": ("李红", "0599-6375511")}
        outputs = {
            "sifaju": [("sifaju_lo.xlsx", "Calc MS Excel 2007 XML"), ("sifaju_lo.xls", "MS Excel 97"),
                       ("sifaju_lo.ods", "calc8")],
            "yanping": [("yanping_lo_resorted.xlsx", "Calc MS Excel 2007 XML")],
        }
        job = {"documents": [
            {"source": str(OUT / f"{stem}_issued.xlsx"),
             "outputs": [{"path": str(OUT / name), "filter": flt} for name, flt in outputs[stem]],
             "contact": contacts[stem][0], "phone": contacts[stem][1],
             "fills": to_job(plans[stem], headers), "resort": stem == "yanping"}
            for stem in units
        ]}
        job_path = tmp / "job.json"
        job_path.write_text(json.dumps(job, ensure_ascii=False, indent=1), encoding="utf-8")
        result = subprocess.run([SYSTEM_PYTHON, str(ROOT / "scripts" / "lo_fill.py"), str(job_path)],
                                capture_output=True, text=True, timeout=600, check=False)
        if result.returncode != 0:
            print(result.stdout, result.stderr, file=sys.stderr)
            return result.returncode
        office = json.loads(result.stdout.strip().splitlines()[-1])["libreoffice"]
        files = []
        for stem, name in units.items():
            b = built[stem]
            for file_name, flt in outputs[stem]:
                files.append({
                    "file": file_name, "format": Path(file_name).suffix[1:], "libreoffice_filter": flt,
                    "issued": f"{stem}_issued.xlsx", "unit": name, "unit_id": b.unit_id, "tasks": b.tasks,
                    "contact": contacts[stem][0], "phone": contacts[stem][1],
                    "resorted": stem == "yanping", "protection_removed": stem == "yanping",
                    "blank_tasks": [n for n in b.tasks if n not in plans[stem]],
                    "filled": to_manifest(plans[stem]),
                })
        manifest = {
            "generated_by": "scripts/make_lo_fixtures.py",
            "libreoffice": office,
            "config": "config.toml + samples/task-table.txt (bundled)",
            "batch": {"title": batch.title, "uid": batch.uid, "secret": batch.secret.hex(),
                      "year": batch.year, "deadline": batch.deadline.isoformat()},
            "issued_at": clock.iso(ISSUED_AT),
            "template_version": layout.version,
            "layout": layout.to_dict(),
            "issued": {f"{stem}_issued.xlsx": {"unit": units[stem], "unit_id": built[stem].unit_id,
                                               "tasks": built[stem].tasks, "sha256": built[stem].sha256}
                       for stem in units},
            "files": files,
            "notes": {
                "completed_on": "completed_on_cell 'date' = a real date cell (value is the ISO date), "
                                "'text' = typed as text (value is the text as typed), '' = left blank",
                "status_normalized": "automation.text.normalize_status of what was typed ('' = not a status)",
                "metadata": "LibreOffice re-saves the very hidden metadata sheet as merely hidden (all three formats); "
                            "its rows and signature are intact",
                "resorted": "sheet unprotected, heading rows unmerged and sorted with the tasks (headings end up at "
                            "the top, 序号 descending); row heights stay where they were, as in LibreOffice",
                "ledger": "ensure_batch(title, year, deadline, now, uid=batch.uid, "
                          "secret=bytes.fromhex(batch.secret)) before init_batch with the bundled config",
            },
        }
        (OUT / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1) + "\n",
                                           encoding="utf-8")
        ledger.close()
    for f in sorted(OUT.iterdir()):
        print(f.relative_to(ROOT), f.stat().st_size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
