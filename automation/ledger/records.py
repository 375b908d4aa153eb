"""Typed results of ledger queries (dataclasses, not rows)."""

from __future__ import annotations

from dataclasses import dataclass

from automation.model import Batch

__all__ = ["ImportResult", "Revision", "AssignmentRow", "CurrentAnswer", "CURRENT_COLUMNS", "HistoryRow",
           "OpenTask"]


@dataclass(frozen=True)
class ImportResult:
    batch: Batch
    changed: bool
    revision: int
    task_count: int
    assignment_count: int
    message: str
    warnings: tuple[str, ...] = ()   # for the office: e.g. units with tasks but no e-mail address


@dataclass(frozen=True)
class Revision:
    """One imported task table of a batch (every revision is kept)."""

    revision: int
    digest: str
    source_name: str | None
    source_sha256: str | None
    imported_at: str


@dataclass(frozen=True)
class AssignmentRow:
    """One (task, unit) assignment: the unit's role and scope note."""

    task: int
    unit: str
    unit_id: int
    role: str
    note: str | None


@dataclass(frozen=True)
class CurrentAnswer:
    """An assignment with the unit's current answer; the answer fields are None when not reported."""

    task: int
    unit: str
    unit_id: int
    role: str
    note: str | None
    status: str | None
    progress: str | None
    completed_on: str | None
    evidence: str | None
    issues: str | None
    submitted_at: str | None
    submission_id: int | None
    source_file: str | None


#: The fields of :class:`CurrentAnswer` in order: the tuples :meth:`Ledger.iter_current_answers` yields.
CURRENT_COLUMNS = tuple(CurrentAnswer.__dataclass_fields__)


@dataclass(frozen=True)
class HistoryRow:
    """One response as received, with the status it replaced."""

    received_at: str
    unit: str
    task: int
    status: str
    progress: str
    source_file: str
    unit_id: int
    old_status: str | None


@dataclass(frozen=True)
class OpenTask:
    """An assignment a unit has not finished: no answer, or an answer other than 已完成 / 不适用."""

    task: int
    title: str
    role: str
    status: str            # "" when the unit never answered
    submitted_at: str | None
