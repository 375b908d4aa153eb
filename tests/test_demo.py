"""``automation demo``: the README's main job, end to end on the bundled sample."""

from __future__ import annotations

import email
from email import policy

import openpyxl

from automation.cli import main
from automation.ledger import Ledger


def test_demo_runs_the_whole_loop(tmp_path, capsys):
    workdir = tmp_path / "demo"
    assert main(["demo", "--workdir", str(workdir)]) == 0
    out = capsys.readouterr().out
    ws = workdir / "var"
    # every stage left its output where the summary says
    assert len(list((ws / "workbooks").glob("*.xlsx"))) == 37
    eml = [email.message_from_bytes(p.read_bytes(), policy=policy.default) for p in (ws / "outbox").glob("*.eml")]
    subjects = [m["Subject"] for m in eml]
    assert sum("回执" in s for s in subjects) == 35          # one per file from a known unit
    assert sum("催办" in s or "提醒" in s for s in subjects) == 9
    assert len(eml) == 37 + 35 + 9
    reports = list((ws / "reports").glob("*.xlsx"))
    assert len(reports) == 1 and str(reports[0]) in out.replace("\n", "")
    quarantined = [p.name for p in (ws / "quarantine").iterdir() if not p.name.endswith(".txt")]
    assert len(quarantined) == 1 and "伪造" in quarantined[0]
    assert not [p for p in (ws / "inbox").rglob("*") if p.is_file()]   # the inbox was emptied safely
    with Ledger.open(ws) as led:
        subs = {s.file_name: s for s in led.submissions()}
        assert subs["浦城县政府报送.xls"].outcome == "accepted"          # saved as .xls
        assert subs["市财政局（已排序）.xlsx"].rows_accepted == 28       # re-sorted rows
        history = [h for h in led.history(1) if h.unit == "建瓯市政府" and h.task == 1]
        assert [(h.old_status, h.status) for h in history] == [(None, "推进中"), ("推进中", "已完成")]
        problems = [p.problem.message for p in led.problems(1) if p.unit == "市商务局"]
        assert len(problems) >= 4
    # the unit's "=1+1" stays text in the report
    wb = openpyxl.load_workbook(reports[0], read_only=True)
    found = [c for row in wb["进展明细"].iter_rows() for c in row if c.value == "=1+1"]
    assert found and all(c.data_type == "s" for c in found)
    assert "整体完成率" in out and "松溪县政府" in out


def test_demo_refuses_a_directory_that_is_not_its_own(tmp_path, capsys):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "report.docx").write_bytes(b"x")
    assert main(["demo", "--workdir", str(tmp_path / "mine")]) == 1
    assert "目录不是空的" in capsys.readouterr().err
    assert (tmp_path / "mine" / "report.docx").exists()


def test_demo_is_rerun_in_place_but_never_over_later_work(tmp_path, capsys):
    workdir = tmp_path / "demo"
    assert main(["demo", "--workdir", str(workdir)]) == 0
    assert main(["demo", "--workdir", str(workdir)]) == 0          # an untouched demo is replaced
    # the office tries a real collect in the demo directory: that work must not be wiped
    config = str(workdir / "config.toml")
    assert main(["--config", config, "report", "--now", "2021-12-20T09:00"]) == 0
    (workdir / "var" / "inbox" / "x.xlsx").write_bytes(b"not a workbook")
    assert main(["--config", config, "collect", "--now", "2021-12-20T09:00"]) == 0
    capsys.readouterr()
    assert main(["demo", "--workdir", str(workdir)]) == 1
    assert "又做过操作" in capsys.readouterr().err
    assert (workdir / "var" / "ledger.sqlite3").exists()
