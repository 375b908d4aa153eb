"""What happened to each returned file: :class:`FileResult`, the ``collect --json`` document, one line.

The JSON shape is a public contract (``automation collect --json``, the IMAP intake's report):
a problem is ``{severity, sheet, cell, task_number, field, message}``, whatever else
:class:`~automation.model.Problem` carries for other inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from automation.model import Problem, UnitRow

__all__ = ["FileResult", "Quarantine", "summarize", "result_line", "problem_json"]

#: The keys of a problem in ``collect --json``, in this order.
PROBLEM_KEYS = ("severity", "sheet", "cell", "task_number", "field", "message")


@dataclass
class FileResult:
    """What happened to one returned file (the collect command prints one line per result)."""

    file_name: str
    sha256: str
    outcome: str                          # accepted | quarantined | duplicate | skipped (unreadable now)
    reason: str = ""
    unit: str | None = None
    unit_id: int | None = None
    rows_accepted: int = 0
    tasks_accepted: list[int] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    submission_id: int | None = None
    signed: bool = False
    archive_path: str | None = None
    quarantine_path: str | None = None
    sender: str | None = None
    source: str = "folder"
    message_id: str | None = None
    received_at: str | None = None
    contact: str = ""
    phone: str = ""

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity != "error"]

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["problems"] = [problem_json(p) for p in self.problems]
        return out


def problem_json(problem: Problem) -> dict[str, Any]:
    """A problem as ``collect --json`` shows it (the keys of :data:`PROBLEM_KEYS`)."""
    return {key: getattr(problem, key) for key in PROBLEM_KEYS}


class Quarantine(Exception):
    """The file is refused: it goes to quarantine with ``reason`` (and the problems that decided it)."""

    def __init__(self, reason: str, problems: Sequence[Problem] = (), unit: UnitRow | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.problems = list(problems)
        self.unit = unit


def summarize(results: Sequence[FileResult]) -> dict[str, Any]:
    """The ``collect --json`` document: every file plus totals."""
    return {
        "files": [r.to_json() for r in results],
        "totals": {
            "files": len(results),
            "accepted": sum(r.outcome == "accepted" for r in results),
            "quarantined": sum(r.outcome == "quarantined" for r in results),
            "duplicate": sum(r.outcome == "duplicate" for r in results),
            "skipped": sum(r.outcome == "skipped" for r in results),
            "rows": sum(r.rows_accepted for r in results),
            "problems": sum(len(r.problems) for r in results),
        },
    }


def result_line(result: FileResult) -> str:
    """One line for the office: accepted N rows, problems M / quarantined: reason."""
    if result.outcome == "accepted":
        text = f"已接收 {result.rows_accepted} 项"
        if result.problems:
            text += f"，问题 {len(result.problems)} 个"
        return text
    if result.outcome == "duplicate":
        return "重复文件，已跳过"
    if result.outcome == "skipped":
        return f"已跳过：{result.reason}"
    return f"已隔离：{result.reason}"
