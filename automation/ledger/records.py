"""Typed results of ledger queries (dataclasses, not rows)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from automation.model import Batch, Problem

__all__ = ["ImportResult", "Revision", "AssignmentRow", "CurrentAnswer", "CURRENT_COLUMNS", "AnswerRecord",
           "HistoryRecord", "Account", "ROLES", "OpenTask", "Response", "Submission", "ProblemRow", "Refusal", "refusal_for", "MessageRow", "ImapRow", "OwedReceipt",
           "BuiltWorkbook"]


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
class OpenTask:
    """An assignment a unit has not finished: no answer, or an answer other than 已完成 / 不适用."""

    task: int
    title: str
    role: str
    status: str            # "" when the unit never answered
    submitted_at: str | None
    deadline: str | None = None    # the task's 完成时限 as written
    due_date: str | None = None    # … as an ISO date, when it names one
    refused: str = ""              # why the unit's latest return of this task was refused ("" when it was not)


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


@dataclass(frozen=True)
class Refusal:
    """Something of a unit's return that was not taken, and what the unit typed there.

    ``task`` None: a quarantined file (``reason`` is why).  Otherwise an error in one row of an
    accepted file: ``row_refused`` when the whole row was not taken (its ``values``: the fill-in
    cells as typed, by layout key), else only the cell ``field`` was dropped.
    """

    unit_id: int
    submission_id: int
    received_at: str
    file_name: str
    task: int | None
    field: str | None
    cell: str | None
    reason: str
    values: dict[str, str]
    row_refused: bool


def refusal_for(refusals: list[Refusal], task: int, since: str | None) -> str:
    """Why the unit's latest return of ``task`` was refused ("" when it was not): its row refused, or
    its whole file quarantined, after the current answer (``since``: its receipt time, None when none)."""
    reason = ""
    for r in refusals:
        if r.row_refused and r.task in (None, task) and r.received_at > (since or ""):
            reason = r.reason if r.task is not None else f"文件“{r.file_name}”未能接收：{r.reason}"
    return reason


@dataclass(frozen=True)
class MessageRow:
    """One e-mail under its idempotency key (table ``messages``): what was sent, to whom, and its state.

    ``state``: ``pending`` (written before the transport is called), ``sent``, ``failed`` (nobody
    got it: sent again by a later run) or ``uncertain`` (a run died between sending and recording).
    ``detail``: what the mailing recorded (task count, workbook, per-recipient refusals …).
    """

    id: int
    idem_key: str
    purpose: str
    batch_id: int | None
    unit_id: int | None
    message_id: str
    subject: str
    recipients: list[str]
    state: str
    attempts: int
    error: str | None
    path: str | None
    created_at: str
    sent_at: str | None
    detail: dict[str, Any] = field(default_factory=dict)
    unit: str | None = None         # the unit's name, where the query joined it (the console's lists)


@dataclass(frozen=True)
class ImapRow:
    """One message seen in the office mailbox (table ``imap_messages``, keyed by Message-ID).

    ``state``: ``ignored`` (no workbook attached), ``collecting``, ``collected``, ``moved``.
    """

    message_id: str
    folder: str | None
    uid: str | None
    sender: str | None
    subject: str | None
    state: str
    note: str | None
    seen_at: str
    processed_at: str | None


@dataclass(frozen=True)
class OwedReceipt:
    """A returned file whose 回执 has not gone out, with what the receipt reports.

    It carries the fields of :class:`automation.collect.pipeline.FileResult` that the receipt
    letter reads, so a file of this run and one an earlier run could not answer are sent alike.
    ``last_state`` / ``last_detail``: the receipt's previous attempt (None when never tried).
    """

    submission_id: int
    sha256: str
    outcome: str                       # accepted | quarantined
    file_name: str
    unit_id: int
    unit: str
    reason: str = ""
    rows_accepted: int = 0
    tasks_accepted: tuple[int, ...] = ()
    problems: tuple[Problem, ...] = ()
    sender: str | None = None
    message_id: str | None = None
    received_at: str | None = None
    last_state: str | None = None
    last_detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BuiltWorkbook:
    """The latest workbook built for a unit (table ``issues``, purpose ``build``)."""

    path: str
    sha256: str | None
    tasks: tuple[int, ...]


# --------------------------------------------------------------------------- what the console's pages read

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
