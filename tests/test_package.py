"""The wheel is a real package: built with pip, installed without -e, it runs the demo from any folder."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_the_wheel_runs_the_demo_in_an_empty_folder(tmp_path):
    wheels = tmp_path / "wheelhouse"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(wheels), str(ROOT)], check=True, capture_output=True, timeout=300)
    (wheel,) = wheels.glob("duban_automation-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for bundled in ("config.toml", "task-table.txt", "report_template.xlsx"):
        assert f"automation/data/{bundled}" in names
    # The same bytes as the one copy at the top of the source tree.
    with zipfile.ZipFile(wheel) as z:
        assert z.read("automation/data/report_template.xlsx") == (ROOT / "templates/report_template.xlsx").read_bytes()
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    # Only the installed copy may be importable: not the source tree (cwd, editable install).
    env = {**os.environ, "PYTHONPATH": str(target)}
    probe = subprocess.run([sys.executable, "-c", "import automation; print(automation.__file__)"], cwd=empty,
                           env=env, capture_output=True, text=True, check=True)
    assert Path(probe.stdout.strip()).is_relative_to(target)
    run = subprocess.run([sys.executable, "-m", "automation", "demo"], cwd=empty, env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert (empty / "duban-demo" / "var" / "ledger.sqlite3").is_file()
    assert any((empty / "duban-demo" / "var" / "reports").glob("*.xlsx"))
