"""Shared by the import tests: the fixtures folder and the texts the fixtures were made from."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

from automation.model import Problem
from automation.tasks.load import TaskTable

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "import"


def fixture_texts() -> ModuleType:
    """scripts/import_fixture_texts.py: what the documents say, to compare the import against."""
    spec = importlib.util.spec_from_file_location("import_fixture_texts", ROOT / "scripts" / "import_fixture_texts.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def problems(table: TaskTable, severity: str | None = None, word: str = "") -> list[Problem]:
    return [p for p in table.problems if (severity is None or p.severity == severity) and word in p.message]


def units(value: str | list[str]) -> list[str]:
    """The unit names a fixture cell lists (「市直有关部门，各县（市、区）政府」 → two)."""
    if isinstance(value, list):
        return value
    return [v for v in re.split(r"[，、](?![^（]*）)", value) if v]
