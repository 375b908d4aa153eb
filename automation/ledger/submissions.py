"""Returned files: submissions, the responses they carried and the problems found."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from automation import clock
from automation.errors import LedgerError
from automation.ledger.connection import Connection
from automation.ledger.records import ProblemRow, Refusal, Response, Submission
from automation.model import Problem


class DuplicateSubmission(LedgerError):
    """These bytes were stored meanwhile by another writer (another ``collect``, the IMAP intake):
    nothing of this submission was written; the caller treats the file as a duplicate."""

    def __init__(self, sha256: str) -> None:
        super().__init__(f"同一文件（SHA-256 {sha256[:12]}…）已由另一个同时运行的收取任务记录。")
        self.sha256 = sha256


#: The columns of :class:`Submission`, named (never ``*``: a later migration may add columns).
_COLUMNS = ("id, sha256, batch_id, unit_id, file_name, archive_path, received_at, processed_at, outcome, reason, "
            "signed, source, message_id, sender, contact, phone, rows_accepted, problem_count, quarantine_path")
_S_COLUMNS = ", ".join(f"s.{c.strip()}" for c in _COLUMNS.split(","))


def submission_from_row(r: sqlite3.Row, unit: str | None = None) -> Submission:
    """A ``submissions`` row as a :class:`Submission` (``unit``: the name, where the query joined it)."""
    return Submission(r["id"], r["sha256"], r["batch_id"], r["unit_id"], r["file_name"], r["archive_path"],
                      r["received_at"], r["processed_at"], r["outcome"], r["reason"], bool(r["signed"]), r["source"],
                      r["message_id"], r["sender"], r["contact"], r["phone"], r["rows_accepted"],
                      r["problem_count"], r["quarantine_path"], unit)


class SubmissionQueries(Connection):
    def submission_by_sha(self, sha256: str) -> Submission | None:
        r = self.conn.execute(f"SELECT {_COLUMNS} FROM submissions WHERE sha256 = ?", (sha256,)).fetchone()
        return submission_from_row(r) if r else None

    def submissions_by_sha(self, shas: Iterable[str]) -> dict[str, Submission]:
        """The submissions of many files at once (SHA-256 → submission; absent when never seen).

        ``collect`` asks once per run rather than once per file: a run over a full inbox is
        mostly new files, and a query each is a noticeable share of a small file's time.
        """
        wanted = list(dict.fromkeys(shas))
        out: dict[str, Submission] = {}
        for i in range(0, len(wanted), 500):
            chunk = wanted[i:i + 500]
            sql = f"SELECT {_COLUMNS} FROM submissions WHERE sha256 IN ({','.join('?' * len(chunk))})"
            out.update((r["sha256"], submission_from_row(r)) for r in self.conn.execute(sql, chunk))
        return out

    def record_submission(
        self,
        *,
        sha256: str,
        file_name: str,
        archive_path: str,
        received_at: dt.datetime,
        now: dt.datetime,
        outcome: str,
        batch_id: int | None = None,
        unit_id: int | None = None,
        reason: str | None = None,
        signed: bool = False,
        source: str = "folder",
        message_id: str | None = None,
        sender: str | None = None,
        contact: str | None = None,
        phone: str | None = None,
        responses: Sequence[Response] = (),
        problems: Sequence[Problem] = (),
        quarantine_path: str | None = None,
        replaces: int | None = None,
    ) -> int:
        """Store one returned file, its answers and its problems in one transaction.

        The current answer per (unit, task) is the one with the latest receipt time; every
        response stays in ``responses`` as history.  Returns the submission id.

        ``replaces``: the id of an earlier *quarantined* submission of the same file that is now
        accepted (e.g. its sender was registered since).  That row becomes this submission (the
        SHA-256 stays the natural key); its old reason and problems go to ``events``.
        """
        received = clock.iso(received_at)
        with self.transaction():
            if replaces is not None:
                old = self.conn.execute("SELECT * FROM submissions WHERE id = ? AND outcome = 'quarantined'",
                                        (replaces,)).fetchone()
                if old is None:
                    raise LedgerError(f"台账中没有可重新接收的隔离记录（编号 {replaces}）。")
                old_problems = [dict(r) for r in self.conn.execute(
                    "SELECT severity, sheet, cell, task_number, field, message FROM problems WHERE submission_id = ?",
                    (replaces,))]
                self.event("requarantine-accepted", now, submission=replaces, file=old["file_name"],
                           old_reason=old["reason"], old_processed_at=old["processed_at"],
                           old_quarantine_path=old["quarantine_path"], old_problems=old_problems)
                self.conn.execute("DELETE FROM problems WHERE submission_id = ?", (replaces,))
                self.conn.execute("DELETE FROM submissions WHERE id = ?", (replaces,))
            try:
                cur = self.conn.execute(
                    "INSERT INTO submissions(sha256, batch_id, unit_id, file_name, archive_path, received_at, "
                    "processed_at, outcome, reason, signed, source, message_id, sender, contact, phone, rows_accepted, "
                    "problem_count, quarantine_path) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (sha256, batch_id, unit_id, file_name, archive_path, received, clock.iso(now), outcome, reason,
                     int(signed), source, message_id, sender, contact, phone,
                     len(responses) if outcome == "accepted" else 0, len(problems), quarantine_path),
                )
            except sqlite3.IntegrityError as exc:
                if "sha256" in str(exc):  # another writer stored the same bytes since this run looked
                    raise DuplicateSubmission(sha256) from exc
                raise
            sid = int(cur.lastrowid or 0)
            if outcome == "accepted" and batch_id is not None and unit_id is not None:
                # Set-based (three statements, not two per row): collect stores thousands of rows a run.
                self._insert_rows(
                    "INSERT INTO responses(submission_id, batch_id, unit_id, task_number, status, progress, "
                    "completed_on, evidence, issues, received_at) VALUES ",
                    [(sid, batch_id, unit_id, r.task_number, r.status, r.progress or "", r.completed_on,
                      r.evidence or "", r.issues or "", received) for r in responses],
                )
                self.conn.execute(
                    "INSERT INTO answers(batch_id, unit_id, task_number, response_id, received_at) "
                    "SELECT batch_id, unit_id, task_number, id, received_at FROM responses WHERE submission_id = ? "
                    "ON CONFLICT(batch_id, unit_id, task_number) DO UPDATE SET "
                    "response_id = excluded.response_id, received_at = excluded.received_at "
                    "WHERE excluded.received_at >= answers.received_at",
                    (sid,),
                )
            self._insert_rows(
                "INSERT INTO problems(submission_id, severity, sheet, cell, task_number, field, message, raw) VALUES ",
                [(sid, p.severity, p.sheet, p.cell, p.task_number, p.field, p.message, p.raw or None)
                 for p in problems],
            )
        return sid

    def submissions(self, batch_id: int | None = None) -> list[Submission]:
        """Every submission (of one batch), in receipt order, with its unit's name."""
        sql = (f"SELECT {_S_COLUMNS}, u.name AS unit FROM submissions s LEFT JOIN units u ON u.id = s.unit_id"
               + (" WHERE s.batch_id = ?" if batch_id is not None else "") + " ORDER BY s.received_at, s.id")
        return [submission_from_row(r, r["unit"]) for r in self.conn.execute(sql, (batch_id,) if batch_id is not None else ())]

    def problems(self, batch_id: int | None = None, submission_id: int | None = None) -> list[ProblemRow]:
        """The stored problems (of a batch's files and of files of no batch; of one submission), in order."""
        sql = ("SELECT p.id, p.submission_id, p.severity, p.sheet, p.cell, p.task_number, p.field, p.message, p.raw, "
               "s.file_name, s.received_at, u.name AS unit FROM problems p "
               "JOIN submissions s ON s.id = p.submission_id LEFT JOIN units u ON u.id = s.unit_id WHERE 1=1")
        params: list[Any] = []
        if batch_id is not None:
            sql += " AND (s.batch_id = ? OR s.batch_id IS NULL)"
            params.append(batch_id)
        if submission_id is not None:
            sql += " AND p.submission_id = ?"
            params.append(submission_id)
        return [ProblemRow(r["id"], r["submission_id"], r["file_name"], r["received_at"], r["unit"],
                           Problem(r["message"], r["severity"], r["sheet"], r["cell"], r["task_number"], r["field"],
                                   raw=r["raw"] or ""))
                for r in self.conn.execute(sql + " ORDER BY p.id", params)]

    def refusals(self, batch_id: int, unit_id: int | None = None) -> list[Refusal]:
        """What was refused of the units' returns, oldest first: every error found in a row of an
        accepted file (``row_refused`` when the row itself was not taken, else only a cell was
        dropped), with what the unit typed there, and every quarantined file of a known unit
        (``task`` None: the whole file was refused)."""
        unit_sql = " AND s.unit_id = ?" if unit_id is not None else ""
        sql = (
            "SELECT s.unit_id, s.id, s.received_at, s.file_name, p.task_number, p.field, p.cell, p.message, p.raw, "
            "NOT EXISTS (SELECT 1 FROM responses r WHERE r.submission_id = s.id AND r.task_number = p.task_number) "
            "FROM problems p JOIN submissions s ON s.id = p.submission_id "
            "WHERE s.batch_id = ? AND s.outcome = 'accepted' AND p.severity = 'error' AND p.task_number IS NOT NULL"
            f"{unit_sql} UNION ALL "
            "SELECT s.unit_id, s.id, s.received_at, s.file_name, NULL, NULL, NULL, IFNULL(s.reason, ''), NULL, 1 "
            f"FROM submissions s WHERE s.batch_id = ? AND s.outcome = 'quarantined' AND s.unit_id IS NOT NULL{unit_sql} "
            "ORDER BY 3, 2")
        params: list[Any] = [batch_id] + ([unit_id] if unit_id is not None else [])
        out = []
        for r in self.conn.execute(sql, params * 2):
            try:
                values = json.loads(r[8]) if r[8] else {}
            except ValueError:
                values = {}
            out.append(Refusal(int(r[0]), int(r[1]), r[2], r[3], r[4], r[5], r[6], r[7],
                               {str(k): str(v) for k, v in values.items()} if isinstance(values, dict) else {},
                               bool(r[9])))
        return out
