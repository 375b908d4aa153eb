"""Answers: the current answer per (unit, task) and the history of every response."""

from __future__ import annotations

from typing import Any

from automation.ledger.connection import Connection


class AnswerQueries(Connection):
    # ------------------------------------------------------------------ answers

    #: Per assignment of a batch (``?``): the current answer, None fields when not reported.
    #: The report streams the same query (summary.py), so both read answers the same way.
    CURRENT_ANSWERS_SQL = """
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

    def current_answers(self, batch_id: int) -> list[dict[str, Any]]:
        """Per assignment: the current answer (or None fields when the unit has not reported)."""
        return [dict(r) for r in self.conn.execute(self.CURRENT_ANSWERS_SQL, (batch_id,))]

    def history(self, batch_id: int) -> list[dict[str, Any]]:
        """Every response in receipt order, with the status it replaced (old → new)."""
        sql = """
            SELECT r.received_at, u.name AS unit, r.task_number AS task, r.status, r.progress,
                   s.file_name AS source_file, r.unit_id,
                   LAG(r.status) OVER (PARTITION BY r.unit_id, r.task_number
                                       ORDER BY r.received_at, r.id) AS old_status
            FROM responses r
            JOIN units u ON u.id = r.unit_id
            JOIN submissions s ON s.id = r.submission_id
            WHERE r.batch_id = ?
            ORDER BY r.received_at, r.id
        """
        return [dict(r) for r in self.conn.execute(sql, (batch_id,))]
