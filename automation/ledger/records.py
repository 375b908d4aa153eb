"""Typed results of ledger queries (dataclasses, not rows)."""

from __future__ import annotations

from dataclasses import dataclass

from automation.model import Batch

__all__ = ["ImportResult"]


@dataclass(frozen=True)
class ImportResult:
    batch: Batch
    changed: bool
    revision: int
    task_count: int
    assignment_count: int
    message: str


# --------------------------------------------------------------------------- console (issue 17)

__all__ += ["Account", "AnswerRecord", "HistoryRecord", "SubmissionRecord", "MessageRecord", "ROLES"]

#: Console roles: an admin acts, a viewer (a leader, the 督查室) sees everything and changes nothing.
ROLES = ("admin", "viewer")


@dataclass(frozen=True)
class Account:
    """A console account; ``password_hash`` is a salted scrypt hash and is never shown."""

    id: int
    name: str
    role: str
    password_hash: str
    created_at: str
    last_login_at: str | None


@dataclass(frozen=True)
class AnswerRecord:
    """One assignment with the unit's current answer (None fields: not reported yet)."""

    task: int
    title: str
    unit_id: int
    unit: str
    kind: str
    role: str
    note: str | None
    status: str | None
    progress: str
    completed_on: str | None
    evidence: str
    issues: str
    submitted_at: str | None
    submission_id: int | None
    source_file: str | None


@dataclass(frozen=True)
class HistoryRecord:
    """One response received: which task, the status it replaced (old → new), from which file."""

    received_at: str
    unit_id: int
    unit: str
    task: int
    status: str
    old_status: str | None
    progress: str
    submission_id: int
    source_file: str
    sender: str | None


@dataclass(frozen=True)
class SubmissionRecord:
    """One returned file as the ledger holds it (accepted or quarantined)."""

    id: int
    sha256: str
    batch_id: int | None
    unit_id: int | None
    unit: str | None
    file_name: str
    archive_path: str
    quarantine_path: str | None
    received_at: str
    processed_at: str
    outcome: str
    reason: str | None
    signed: bool
    source: str
    sender: str | None
    message_id: str | None
    rows_accepted: int
    problem_count: int


@dataclass(frozen=True)
class MessageRecord:
    """One e-mail under its idempotency key, with its state (pending / sent / failed / uncertain)."""

    id: int
    idem_key: str
    purpose: str
    batch_id: int | None
    unit_id: int | None
    unit: str | None
    subject: str
    recipients: tuple[str, ...]
    state: str
    attempts: int
    error: str | None
    path: str | None
    created_at: str
    sent_at: str | None
    detail: dict[str, object]
