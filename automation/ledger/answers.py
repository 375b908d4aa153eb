"""Answers: the current answer per (unit, task), every response as history, and the streams the
progress snapshot and the report read.

The report's big sheets (200,000 rows at province scale) stream plain tuples from a cursor
(:meth:`AnswerQueries.iter_current_answers`, :meth:`AnswerQueries.iter_responses`): a record
object per row would cost more than writing the row.  Everything else returns records.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from automation.ledger.connection import Connection
from automation.ledger.records import CurrentAnswer, HistoryRecord, OpenTask

#: Per assignment of a batch (``?``): the current answer, None fields when not reported.
_CURRENT_ANSWERS_SQL = """
    SELECT a.task_number AS task, u.name AS unit, a.unit_id, a.role, a.note,
           r.status, r.progress, r.completed_on, r.evidence, r.issues, r.received_at AS submitted_at,
           r.submission_id, s.file_name AS source_file
    FROM assignments a
    JOIN units u ON u.id = a.unit_id
    LEFT JOIN answers ans ON ans.batch_id = a.batch_id AND ans.unit_id = a.unit_id
                          AND ans.task_number = a.task_number
    LEFT JOIN responses r ON r.id = ans.response_id
    LEFT JOIN submissions s ON s.id = r.submission_id
    WHERE a.batch_id = ?
    ORDER BY a.task_number, a.rowid
"""

_STATUS_SQL = """
    SELECT a.task_number, a.unit_id, u.name, a.role, r.status,
           CASE WHEN a.role = ? THEN r.progress END AS lead_progress, r.completed_on, r.received_at
    FROM assignments a
    JOIN units u ON u.id = a.unit_id
    LEFT JOIN answers ans ON ans.batch_id = a.batch_id AND ans.unit_id = a.unit_id
                          AND ans.task_number = a.task_number
    LEFT JOIN responses r ON r.id = ans.response_id
    WHERE a.batch_id = ?
    ORDER BY a.task_number, a.rowid
"""


#: Assignments not answered 已完成 / 不适用 (answers are stored canonical).
_OPEN_SQL = """
    FROM assignments a
    LEFT JOIN answers ans ON ans.batch_id = a.batch_id AND ans.unit_id = a.unit_id
                          AND ans.task_number = a.task_number
    LEFT JOIN responses r ON r.id = ans.response_id
    WHERE a.batch_id = ? AND (r.status IS NULL OR r.status NOT IN ('已完成', '不适用'))
"""


def _as_of(sql: str) -> str:
    """The same query over the answers as they stood before a cutoff (a past round): the latest
    response received before it per (unit, task), in place of the ``answers`` table."""
    latest = ("(SELECT id AS response_id, unit_id, task_number, batch_id FROM (SELECT r.id, r.unit_id, "
              "r.task_number, r.batch_id, ROW_NUMBER() OVER (PARTITION BY r.unit_id, r.task_number "
              "ORDER BY r.received_at DESC, r.id DESC) AS n FROM responses r WHERE r.batch_id = :batch "
              "AND r.received_at < :cutoff) WHERE n = 1)")
    return sql.replace("LEFT JOIN answers ans", f"LEFT JOIN {latest} ans", 1).replace("?", ":batch")


class AnswerQueries(Connection):
    def current_answers(self, batch_id: int, unit_id: int | None = None,
                        before: str | None = None) -> list[CurrentAnswer]:
        """Per assignment (of one unit, or all): the current answer, or None fields when not reported
        (``before``: as they stood before that ISO time, a past round)."""
        rows = self.iter_current_answers(batch_id, before)
        return [CurrentAnswer(*r) for r in rows if unit_id is None or r[2] == unit_id]

    def iter_current_answers(self, batch_id: int, before: str | None = None) -> Iterator[tuple[Any, ...]]:
        """:meth:`current_answers` as plain tuples in :data:`~automation.ledger.records.CURRENT_COLUMNS`
        order, streamed from the cursor (the report's 进展明细)."""
        if before is None:
            cur = self.conn.execute(_CURRENT_ANSWERS_SQL, (batch_id,))
        else:
            cur = self.conn.execute(_as_of(_CURRENT_ANSWERS_SQL), {"batch": batch_id, "cutoff": before})
        cur.row_factory = None  # tuples, not sqlite3.Row: half the cost per row
        yield from cur

    def iter_statuses(self, batch_id: int, lead_role: str, before: str | None = None) -> Iterator[tuple[Any, ...]]:
        """(task, unit_id, unit, role, status, lead_progress, completed_on, received_at) per assignment,
        streamed, in task then assignment order: what the progress snapshot needs and no more
        (lead_progress is the progress text of lead units only: the task line quotes a lead unit's
        own answer).  ``before``: the answers as they stood before that ISO time (a past round)."""
        if before is None:
            cur = self.conn.execute(_STATUS_SQL, (lead_role, batch_id))
        else:
            sql = _as_of(_STATUS_SQL.replace("a.role = ?", "a.role = :role"))
            cur = self.conn.execute(sql, {"batch": batch_id, "cutoff": before, "role": lead_role})
        cur.row_factory = None
        yield from cur

    def history(self, batch_id: int, unit_id: int | None = None, *, newest_first: bool = False) -> list[HistoryRecord]:
        """Every response (of the batch, or of one unit) in receipt order (or newest first), with the
        status each one replaced (old → new)."""
        # One unit's: found through its files (index submissions_unit), not a scan of every response.
        where = "r.batch_id = ?" if unit_id is None else "s.batch_id = ? AND s.unit_id = ?"
        order = "DESC" if newest_first else ""
        sql = f"""
            SELECT r.received_at, r.unit_id, u.name, r.task_number, r.status,
                   LAG(r.status) OVER (PARTITION BY r.unit_id, r.task_number ORDER BY r.received_at, r.id),
                   r.progress, r.submission_id, s.file_name, s.sender
            FROM responses r
            JOIN units u ON u.id = r.unit_id
            JOIN submissions s ON s.id = r.submission_id
            WHERE {where}
            ORDER BY r.received_at {order}, r.id {order}
        """
        params = (batch_id,) if unit_id is None else (batch_id, unit_id)
        return [HistoryRecord(r[0], r[1], r[2], r[3], r[4], r[5], r[6] or "", r[7], r[8], r[9])
                for r in self.conn.execute(sql, params)]

    def iter_responses(self, batch_id: int) -> Iterator[tuple[str, int, int, str, int]]:
        """(received_at, unit_id, task, status, submission_id) per response in receipt order, streamed
        (the report's 提交记录; the previous status is tracked by the caller, see
        :func:`automation.progress.summary.iter_history`)."""
        cur = self.conn.execute(
            "SELECT received_at, unit_id, task_number, status, submission_id FROM responses "
            "WHERE batch_id = ? ORDER BY received_at, id", (batch_id,))
        cur.row_factory = None
        yield from cur

    def count_responses(self, batch_id: int) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM responses WHERE batch_id = ?",
                                     (batch_id,)).fetchone()[0])

    def submission_files(self, batch_id: int) -> dict[int, str]:
        """Submission id → file name as received, for the batch."""
        return dict(self.conn.execute("SELECT id, file_name FROM submissions WHERE batch_id = ?",
                                      (batch_id,)).fetchall())

    def last_accepted(self, batch_id: int) -> dict[int, str]:
        """Unit id → receipt time (ISO) of its latest accepted file."""
        return dict(self.conn.execute(
            "SELECT unit_id, MAX(received_at) FROM submissions WHERE batch_id = ? AND outcome = 'accepted' "
            "GROUP BY unit_id", (batch_id,)).fetchall())

    def latest_contacts(self, batch_id: int) -> dict[int, tuple[str, str]]:
        """Unit id → (填报联系人, 联系电话) as last written in an accepted file (each kept from the latest
        file that had it), to pre-fill the next workbook."""
        out: dict[int, tuple[str, str]] = {}
        for unit_id, contact, phone in self.conn.execute(
                "SELECT unit_id, contact, phone FROM submissions WHERE batch_id = ? AND outcome = 'accepted' "
                "AND unit_id IS NOT NULL ORDER BY received_at, id", (batch_id,)):
            old = out.get(unit_id, ("", ""))
            out[unit_id] = ((contact or "").strip() or old[0], (phone or "").strip() or old[1])
        return out

    def quarantined_files(self, batch_id: int) -> list[tuple[int, str, str, str | None, str | None]]:
        """(submission id, received_at, file name, reason, unit name) of every quarantined file that
        belongs to the batch or to no batch (unidentified)."""
        cur = self.conn.execute(
            "SELECT s.id, s.received_at, s.file_name, s.reason, u.name FROM submissions s "
            "LEFT JOIN units u ON u.id = s.unit_id WHERE s.outcome = 'quarantined' "
            "AND (s.batch_id = ? OR s.batch_id IS NULL)", (batch_id,))
        cur.row_factory = None
        return list(cur)

    def open_units(self, batch_id: int) -> list[int]:
        """Units with at least one assignment not answered 已完成 / 不适用 (cheap: the service asks
        every few minutes)."""
        return [r[0] for r in self.conn.execute(f"SELECT DISTINCT a.unit_id {_OPEN_SQL} ORDER BY a.unit_id",
                                                (batch_id,))]

    def open_due_dates(self, batch_id: int, default_due: str,
                       unit_id: int | None = None) -> dict[int, dict[str, int]]:
        """Unit id → {due date (ISO) → open assignments}: when each unit's (or one unit's) unfinished
        tasks fall due (a task's own 完成时限, else ``default_due``, the batch deadline).  One
        aggregated row per unit and date, so the reminder decision reads a few rows per unit, not
        every assignment."""
        one = " AND a.unit_id = ?" if unit_id is not None else ""
        sql = (f"SELECT a.unit_id, IFNULL(t.due_date, ?) AS due, COUNT(*) {_OPEN_SQL}{one} GROUP BY a.unit_id, due")
        sql = sql.replace("FROM assignments a", "FROM assignments a JOIN tasks t ON t.batch_id = a.batch_id "
                                                "AND t.number = a.task_number", 1)
        out: dict[int, dict[str, int]] = {}
        params = (default_due, batch_id) if unit_id is None else (default_due, batch_id, unit_id)
        for unit_id, due, n in self.conn.execute(sql, params):
            out.setdefault(int(unit_id), {})[str(due)] = int(n)
        return out

    def last_response_at(self, batch_id: int) -> dict[int, str]:
        """Unit id → receipt time (ISO) of its latest answer to any task (a file that answered nothing
        does not count as reporting)."""
        return dict(self.conn.execute(
            "SELECT unit_id, MAX(received_at) FROM responses WHERE batch_id = ? GROUP BY unit_id",
            (batch_id,)).fetchall())

    def answered_between(self, batch_id: int, after: str | None, before: str | None) -> dict[int, int]:
        """Unit id → how many tasks it answered with answers received in [after, before) (ISO times;
        None: unbounded) — a reporting round's window."""
        sql = "SELECT unit_id, COUNT(DISTINCT task_number) FROM responses WHERE batch_id = ?"
        params: list[Any] = [batch_id]
        if after is not None:
            sql += " AND received_at >= ?"
            params.append(after)
        if before is not None:
            sql += " AND received_at < ?"
            params.append(before)
        return {int(u): int(n) for u, n in self.conn.execute(sql + " GROUP BY unit_id", params)}

    def answered_before(self, batch_id: int, unit_id: int, submission_id: int | None,
                        received_at: str | None) -> frozenset[int]:
        """The tasks a unit answered in files received before this one (``received_at``, ties by
        file id; None: every other file): what a receipt may say stands from earlier reports."""
        sql = ("SELECT DISTINCT task_number FROM responses WHERE batch_id = ? AND unit_id = ? "
               "AND submission_id IS NOT ?")
        params: list[Any] = [batch_id, unit_id, submission_id]
        if received_at is not None:
            sql += " AND (received_at < ? OR (received_at = ? AND submission_id < ?))"
            params += [received_at, received_at, submission_id if submission_id is not None else -1]
        return frozenset(int(r[0]) for r in self.conn.execute(sql, params))

    def open_tasks(self, batch_id: int, unit_id: int) -> list[OpenTask]:
        """The unit's assignments without an answer or with one other than 已完成 / 不适用, by task."""
        sql = (f"SELECT a.task_number, t.title, a.role, IFNULL(r.status, ''), r.received_at, t.deadline, t.due_date "
               f"{_OPEN_SQL} AND a.unit_id = ? ORDER BY a.task_number")
        sql = sql.replace("FROM assignments a", "FROM assignments a JOIN tasks t ON t.batch_id = a.batch_id "
                                                "AND t.number = a.task_number", 1)
        return [OpenTask(*r) for r in self.conn.execute(sql, (batch_id, unit_id))]
