"""Workbooks filled and re-saved by a real LibreOffice (.xlsx, .xls, .ods, re-sorted) are collected exactly."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import pytest

from automation import clock
from automation.collect.pipeline import collect_file
from automation.collect.values import parse_date
from automation.ledger import Ledger
from automation.tasks.importing import init_batch
from automation.text import normalize_status

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "libreoffice"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text(encoding="utf-8")) if (
    FIXTURES / "manifest.json").exists() else {"files": []}


@pytest.fixture
def lo_ledger(config):
    """A ledger that issued the fixtures: same batch uid and secret, same layout version."""
    batch = MANIFEST["batch"]
    issued_at = clock.parse(MANIFEST["issued_at"])
    ledger = Ledger.open(config.workspace)
    ledger.ensure_batch(batch["title"], batch["year"], clock.parse(batch["deadline"] + "T00:00").date(), issued_at,
                        uid=batch["uid"], secret=bytes.fromhex(batch["secret"]))
    init_batch(config, ledger, issued_at)
    ledger.save_layout(MANIFEST["template_version"], MANIFEST["layout"], issued_at)
    yield ledger
    ledger.close()


@pytest.mark.parametrize("entry", MANIFEST["files"], ids=[f["file"] for f in MANIFEST["files"]])
def test_libreoffice_resaved_workbook(config, lo_ledger, entry):
    now = clock.parse("2021-11-20T10:00")
    result = collect_file(config, lo_ledger, FIXTURES / entry["file"], now)
    assert result.outcome == "accepted", result.reason
    assert (result.unit, result.unit_id, result.signed) == (entry["unit"], entry["unit_id"], True)
    assert (result.contact, result.phone) == (entry["contact"], entry["phone"])
    valid = {int(n): a for n, a in entry["filled"].items() if a["status_normalized"]}
    invalid = {int(n) for n, a in entry["filled"].items() if not a["status_normalized"]}
    assert result.tasks_accepted == sorted(valid)
    assert not set(result.tasks_accepted) & set(entry["blank_tasks"])
    for n in invalid:
        problem = next(p for p in result.problems if p.task_number == n)
        assert problem.severity == "error" and problem.field == "status" and problem.cell
        assert entry["filled"][str(n)]["status"] in problem.message
    # Nothing else: re-saving in LibreOffice (or re-sorting) must not look like an edit of issued text.
    assert [p for p in result.problems if p.task_number not in invalid] == []
    batch = lo_ledger.require_batch(MANIFEST["batch"]["title"])
    got = {r.task: dataclasses.asdict(r) for r in lo_ledger.current_answers(batch.id) if r.unit == entry["unit"]}
    for n, a in valid.items():
        row = got[n]
        assert row["status"] == a["status_normalized"] == normalize_status(a["status"])
        assert row["progress"] == a["progress"]
        assert row["evidence"] == a["evidence"]
        assert row["issues"] == a["issues"]
        want = parse_date(a["completed_on"], 2021).isoformat() if a["completed_on"] else None
        assert row["completed_on"] == want, (n, a)
    for n in entry["blank_tasks"]:
        assert got[n]["status"] is None


# --------------------------------------------------------------------------- issue 15, filled live in LibreOffice

SYSTEM_PYTHON = Path("/usr/bin/python3")


def _lo_available() -> bool:
    import shutil
    import subprocess

    if shutil.which("soffice") is None or not SYSTEM_PYTHON.exists():
        return False
    return subprocess.run([str(SYSTEM_PYTHON), "-c", "import uno"], capture_output=True).returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(not _lo_available(), reason="needs LibreOffice (soffice) and python3-uno")
def test_retitled_swapped_and_formulas_filled_in_libreoffice(config, ledger, now, tmp_path):
    """A unit unprotects the sheet in LibreOffice, retitles three fill-in columns, swaps two 序号 and
    types formulas (LibreOffice stores their results, as Excel and WPS do): saved as .xlsx and .ods."""
    import subprocess

    from collect_kit import ROOT, answers, issued, tasks_of

    unit = "市财政局"
    t1, t2, t3, *_ = tasks_of(ledger, config, unit)
    source = issued(config, ledger, unit, now, tmp_path / "issued.xlsx")
    text = {"kind": "string"}
    job = {"documents": [{
        "source": str(source),
        "outputs": [{"path": str(tmp_path / "lo.xlsx"), "filter": "Calc MS Excel 2007 XML"},
                    {"path": str(tmp_path / "lo.ods"), "filter": "calc8"}],
        "contact": "王五", "phone": "0599-8888888",
        "fills": {str(t1): {"落实情况": {**text, "value": "已完成"}, "工作进展及成效": {**text, "value": f"第{t1}项做完了"},
                            "完成时间": {"kind": "date", "value": "2021-06-30"},
                            "佐证材料": {**text, "value": "会议纪要"}},
                  str(t2): {"落实情况": {**text, "value": "推进中"}, "存在问题及下步打算": {**text, "value": "年底前完成"}},
                  str(t3): {"落实情况": {**text, "value": "推进中"}}},
        "formulas": {str(t3): {"工作进展及成效": '="已完成"&"第三项"', "存在问题及下步打算": "=1+1"}},
        "retitle": {"工作进展及成效": "工作进展情况", "佐证材料": "佐证材料（附件）", "存在问题及下步打算": "存在问题及下一步打算"},
        "swap": [t1, t2],
        "resort": False,
    }]}
    (tmp_path / "job.json").write_text(json.dumps(job, ensure_ascii=False), encoding="utf-8")
    done = subprocess.run([str(SYSTEM_PYTHON), str(ROOT / "scripts" / "lo_fill.py"), str(tmp_path / "job.json")],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    for i, name in enumerate(("lo.xlsx", "lo.ods")):
        result = collect_file(config, ledger, tmp_path / name, now + dt.timedelta(minutes=i))
        assert result.outcome == "accepted", (name, result.reason)
        assert result.tasks_accepted == [t1, t2, t3], name
        got = answers(ledger, config, unit)
        assert (got[t1]["status"], got[t1]["progress"], got[t1]["completed_on"], got[t1]["evidence"]) == (
            "已完成", f"第{t1}项做完了", "2021-06-30", "会议纪要"), name
        assert (got[t2]["status"], got[t2]["issues"]) == ("推进中", "年底前完成"), name
        assert (got[t3]["progress"], got[t3]["issues"]) == ("已完成第三项", "2"), name  # the stored results
        for header in ("工作进展及成效", "佐证材料", "存在问题及下步打算"):
            assert any(f"“{header}”列的表头被改成了" in p.message and p.severity == "info" for p in result.problems)
        for stored_as, shown in ((t1, t2), (t2, t1)):
            assert any(p.task_number == stored_as and f"序号是 {shown}" in p.message for p in result.problems), name
        assert not any("公式" in p.message for p in result.problems), name
        assert (result.contact, result.phone) == ("王五", "0599-8888888")
