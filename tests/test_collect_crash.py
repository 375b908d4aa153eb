"""A collect run killed at any point can simply be run again: the ledger ends the same as an unbroken run."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from collect_kit import fill_workbook, issued, listing, private_config, snapshot, tasks_of

from automation import clock
from automation.ledger import open_workspace
from automation.tasks.importing import init_batch
from automation.workspace import Workspace

NOW = "2021-11-01T10:00"
UNITS = ("市财政局", "市司法局", "市发改委")


@pytest.fixture(scope="module")
def returned(tmp_path_factory) -> Path:
    """Five returned files: three good workbooks, random bytes, a formula text (made once)."""
    root = tmp_path_factory.mktemp("returned")
    config = private_config(root / "maker")
    _ws, ledger = open_workspace(config)
    now = clock.parse(NOW)
    init_batch(config, ledger, now)
    out = root / "files"
    out.mkdir()
    for i, unit in enumerate(UNITS):
        blank = issued(config, ledger, unit, now, root / f"{unit}-blank.xlsx")
        plan = {t: {"落实情况": "推进中", "工作进展及成效": f"{unit}第{t}项"} for t in tasks_of(ledger, config, unit)[:3]}
        fill_workbook(blank, out / f"{i}-{unit}.xlsx", plan)
        if i == 0:
            t = tasks_of(ledger, config, unit)[0]
            fill_workbook(blank, out / "3-formula.xlsx", {t: {"落实情况": "推进中", "佐证材料": "=cmd|' /C calc'!A0"}})
    (out / "4-random.xlsx").write_bytes(random.Random(7).randbytes(5000))
    ledger.close()
    return out


def _workspace(root: Path, returned: Path) -> Path:
    """A fresh workspace whose ledger knows the same batch (same uid and secret) and whose inbox holds the files."""
    config = private_config(root)
    maker = returned.parent / "maker" / "var" / "ledger.sqlite3"
    ws = Workspace(config.workspace)
    ws.create()
    shutil.copy(maker, ws.ledger_path)
    for f in returned.iterdir():
        shutil.copy(f, ws.inbox / f.name)
    return root / "config.toml"


#: ``automation collect`` in a process that SIGKILLs itself right after the n-th time it has
#: written an archive copy (archived), a quarantine copy and its reason (quarantined) or a
#: submission (recorded): the fault is injected here, production code has no hook for it.
_KILLED_AT = """
import os, signal, sys

from automation.cli import main
from automation.collect.storage import Storage
from automation.ledger import Ledger

point, count = sys.argv[1], int(sys.argv[2])
owner, name = {"archived": (Storage, "archive"), "quarantined": (Storage, "quarantine"),
               "recorded": (Ledger, "record_submission")}[point]
real, calls = getattr(owner, name), []

def then_die(*args, **kwargs):
    out = real(*args, **kwargs)
    calls.append(1)
    if len(calls) >= count:
        os.kill(os.getpid(), signal.SIGKILL)
    return out

setattr(owner, name, then_die)
sys.exit(main(sys.argv[3:]))
"""


def _collect(config_path: Path, crash: str | None = None) -> subprocess.CompletedProcess[str]:
    args = ["--config", str(config_path), "collect", "--json", "--now", NOW]
    if crash:
        point, _, count = crash.partition(":")
        command = [sys.executable, "-c", _KILLED_AT, point, count, *args]
    else:
        command = [sys.executable, "-m", "automation", *args]
    return subprocess.run(command, env=dict(os.environ), capture_output=True, text=True, timeout=120)


def _state(config_path: Path) -> tuple:
    var = config_path.parent / "var"
    return snapshot(var / "ledger.sqlite3"), listing(var / "archive"), listing(var / "quarantine"), listing(var / "inbox")


def test_killed_runs_end_like_an_unbroken_run(tmp_path, returned):
    reference = _workspace(tmp_path / "reference", returned)
    assert _collect(reference).returncode == 0
    expected = _state(reference)
    assert len(expected[0]["submissions"]) == 5 and expected[3] == []
    # Second run over the (now empty) inbox: nothing changes.
    assert _collect(reference).returncode == 0
    assert _state(reference) == expected

    for crash in ("archived:2", "recorded:3", "quarantined:2"):
        ws = _workspace(tmp_path / crash.replace(":", "-"), returned)
        killed = _collect(ws, crash)
        assert killed.returncode == -9, (crash, killed.stderr)
        assert _state(ws) != expected, f"{crash}: the kill came too late to test anything"
        rerun = _collect(ws)
        assert rerun.returncode == 0, rerun.stderr
        assert _state(ws) == expected, crash
