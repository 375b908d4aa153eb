"""Helpers for the collect tests: real issued workbooks, filled as a unit would, and ledger snapshots."""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib.util
import shutil
import sqlite3
from pathlib import Path
from typing import Any

from automation.config import Config, load_config
from automation.ledger import Ledger
from automation.workbook.build import build_unit_workbook

ROOT = Path(__file__).resolve().parent.parent


def load_script(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"scripts_{name}", ROOT / "scripts" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


corpus = load_script("make_hostile_corpus")
fill_workbook = corpus.fill_workbook
edit_metadata = corpus.edit_metadata
rewrite_zip = corpus.rewrite_zip
find_header = corpus.find_header


def private_config(root: Path) -> Config:
    """config.toml + sample + template copied under ``root`` (for module-scoped fixtures)."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "config.toml", root / "config.toml")
    shutil.copytree(ROOT / "samples", root / "samples", dirs_exist_ok=True)
    if (ROOT / "templates").exists():
        shutil.copytree(ROOT / "templates", root / "templates", dirs_exist_ok=True)
    return load_config(root / "config.toml")


def issued(config: Config, ledger: Ledger, unit: str, now: dt.datetime, out: Path) -> Path:
    """A freshly issued (blank) workbook of ``unit`` at ``out``."""
    batch = ledger.require_batch(config.batch.title)
    u = ledger.unit_by_name(unit)
    assert u is not None
    return build_unit_workbook(config, ledger, batch, u.id, now, prefill=False, out_path=out).path


def tasks_of(ledger: Ledger, config: Config, unit: str) -> list[int]:
    batch = ledger.require_batch(config.batch.title)
    u = ledger.unit_by_name(unit)
    assert u is not None
    return [a.task for a in ledger.assignments(batch.id, u.id)]


def answers(ledger: Ledger, config: Config, unit: str) -> dict[int, dict[str, Any]]:
    """Current answers of a unit that reported (task -> fields, as a dict for short comparisons)."""
    batch = ledger.require_batch(config.batch.title)
    return {r.task: dataclasses.asdict(r) for r in ledger.current_answers(batch.id)
            if r.unit == unit and r.submission_id is not None}


def snapshot(path: Path) -> dict[str, Any]:
    """Everything collect writes, without ids and processing times (what "the same ledger" means)."""
    conn = sqlite3.connect(str(path))
    try:
        q = conn.execute
        return {
            "submissions": sorted(q(
                "SELECT sha256, batch_id, unit_id, file_name, archive_path, received_at, outcome, reason, signed, "
                "source, sender, contact, phone, rows_accepted, problem_count, quarantine_path FROM submissions")),
            "responses": sorted(q(
                "SELECT s.sha256, r.unit_id, r.task_number, r.status, r.progress, r.completed_on, r.evidence, "
                "r.issues, r.received_at FROM responses r JOIN submissions s ON s.id = r.submission_id")),
            "answers": sorted(q(
                "SELECT a.unit_id, a.task_number, s.sha256 FROM answers a JOIN responses r ON r.id = a.response_id "
                "JOIN submissions s ON s.id = r.submission_id")),
            "problems": sorted(q(
                "SELECT s.sha256, p.severity, p.sheet, p.cell, p.task_number, p.field, p.message FROM problems p "
                "JOIN submissions s ON s.id = p.submission_id"), key=repr),
        }
    finally:
        conn.close()


def listing(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
