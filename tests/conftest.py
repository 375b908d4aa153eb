"""Shared fixtures: a private copy of the bundled config and sample in a temp directory."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import settings

from automation import clock
from automation.config import Config, load_config
from automation.ledger import Ledger
from automation.workspace import Workspace

# CI is deterministic (the same examples every run); HYPOTHESIS_PROFILE=explore searches wider.
settings.register_profile("ci", derandomize=True, deadline=None)
settings.register_profile("explore", max_examples=2000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "task-table.txt"
NOW = dt.datetime(2021, 11, 1, 9, 30, tzinfo=clock.TZ)


@pytest.fixture
def project_root() -> Path:
    return ROOT


@pytest.fixture
def sample_path() -> Path:
    return SAMPLE


@pytest.fixture
def now() -> dt.datetime:
    return NOW


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    """config.toml, the sample table and the template copied into tmp_path (workspace tmp_path/var)."""
    shutil.copy(ROOT / "config.toml", tmp_path / "config.toml")
    (tmp_path / "samples").mkdir()
    shutil.copy(SAMPLE, tmp_path / "samples" / "task-table.txt")
    if (ROOT / "templates").exists():
        shutil.copytree(ROOT / "templates", tmp_path / "templates")
    return tmp_path / "config.toml"


@pytest.fixture
def config(config_file: Path) -> Config:
    return load_config(config_file)


@pytest.fixture
def ws(config: Config) -> Workspace:
    """The workspace folders of ``config`` (created)."""
    w = Workspace(config.workspace)
    w.create()
    return w


@pytest.fixture
def ledger(config: Config, now: dt.datetime) -> Ledger:
    """A ledger with the sample batch imported."""
    from automation.ledger import open_workspace
    from automation.tasks.importing import init_batch

    _ws, led = open_workspace(config)
    init_batch(config, led, now)
    yield led
    led.close()
