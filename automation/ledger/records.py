"""Typed results of ledger queries (dataclasses, not rows)."""

from __future__ import annotations

from dataclasses import dataclass

from automation.model import Batch, Problem

__all__ = ["ImportResult", "Response", "Submission", "ProblemRow"]


@dataclass(frozen=True)
class ImportResult:
    batch: Batch
    changed: bool
    revision: int
    task_count: int
    assignment_count: int
    message: str


@dataclass(frozen=True)
class Response:
    """A unit's answer to one task in one returned file (a row of ``responses``)."""

    task_number: int
    status: str
    progress: str = ""
    completed_on: str | None = None     # ISO date
    evidence: str = ""
    issues: str = ""


@dataclass(frozen=True)
class Submission:
    """One returned file as the ledger knows it (accepted or quarantined), natural key ``sha256``."""

    id: int
    sha256: str
    batch_id: int | None
    unit_id: int | None
    file_name: str
    archive_path: str                   # relative to the workspace (the quarantine copy when quarantined)
    received_at: str
    processed_at: str
    outcome: str                        # accepted | quarantined
    reason: str | None
    signed: bool
    source: str
    message_id: str | None
    sender: str | None
    contact: str | None
    phone: str | None
    rows_accepted: int
    problem_count: int
    quarantine_path: str | None
    unit: str | None = None             # the unit's name (:meth:`~SubmissionQueries.submissions` only)


@dataclass(frozen=True)
class ProblemRow:
    """A stored problem and the file it was found in."""

    id: int
    submission_id: int
    file_name: str
    received_at: str
    unit: str | None                    # the unit's name, None when the file's unit was not recognised
    problem: Problem
