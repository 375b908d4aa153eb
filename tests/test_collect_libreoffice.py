"""Workbooks filled and re-saved by a real LibreOffice (.xlsx, .xls, .ods, re-sorted) are collected exactly."""

from __future__ import annotations

import dataclasses
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
