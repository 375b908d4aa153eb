"""Queries the console's pages need: one unit's or one task's answers, history, files and mails.

Each reads only the rows of its page (one unit, one task), so a page of a province batch costs
a few hundred rows, not the batch's two hundred thousand.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from automation.ledger.connection import Connection
from automation.ledger.messages import message_from_row
from automation.ledger.records import AnswerRecord, MessageRow, Submission
from automation.ledger.submissions import submission_from_row

__all__ = ["ConsoleQueries"]

_ANSWERS_SQL = """
    SELECT a.task_number, t.title, a.unit_id, u.name, u.kind, a.role, a.note,
           r.status, r.progress, r.completed_on, r.evidence, r.issues, r.received_at, r.submission_id, s.file_name
    FROM assignments a
    JOIN units u ON u.id = a.unit_id
    JOIN tasks t ON t.batch_id = a.batch_id AND t.number = a.task_number
    LEFT JOIN answers ans ON ans.batch_id = a.batch_id AND ans.unit_id = a.unit_id
                          AND ans.task_number = a.task_number
    LEFT JOIN responses r ON r.id = ans.response_id
    LEFT JOIN submissions s ON s.id = r.submission_id
    WHERE a.batch_id = ? AND {where}
    ORDER BY a.task_number, a.rowid
"""

_SUBMISSION_SQL = "SELECT s.*, u.name AS unit_name FROM submissions s LEFT JOIN units u ON u.id = s.unit_id "
_MESSAGE_SQL = "SELECT m.*, u.name AS unit_name FROM messages m LEFT JOIN units u ON u.id = m.unit_id "


def _answer(r: tuple[Any, ...]) -> AnswerRecord:
    return AnswerRecord(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8] or "", r[9], r[10] or "", r[11] or "",
                        r[12], r[13], r[14])


class ConsoleQueries(Connection):
    def unit_answers(self, batch_id: int, unit_id: int) -> list[AnswerRecord]:
        """The unit's assignments with its current answers, by task."""
        sql = _ANSWERS_SQL.format(where="a.unit_id = ?")
        return [_answer(r) for r in self.conn.execute(sql, (batch_id, unit_id))]

    def task_answers(self, batch_id: int, task_number: int) -> list[AnswerRecord]:
        """Every unit's current answer to one task, in assignment order (the report's order)."""
        sql = _ANSWERS_SQL.format(where="a.task_number = ?")
        return [_answer(r) for r in self.conn.execute(sql, (batch_id, task_number))]

    def unit_submissions(self, batch_id: int, unit_id: int) -> list[Submission]:
        """Files received from (or identified as) the unit, newest first."""
        return [submission_from_row(r, r["unit_name"]) for r in self.conn.execute(
            _SUBMISSION_SQL + "WHERE s.batch_id = ? AND s.unit_id = ? ORDER BY s.received_at DESC, s.id DESC",
            (batch_id, unit_id))]

    def submission_record(self, submission_id: int) -> Submission | None:
        r = self.conn.execute(_SUBMISSION_SQL + "WHERE s.id = ?", (submission_id,)).fetchone()
        return submission_from_row(r, r["unit_name"]) if r else None

    def quarantined(self, batch_id: int) -> list[Submission]:
        """Quarantined files of the batch and those no batch could be found for, newest first."""
        return [submission_from_row(r, r["unit_name"]) for r in self.conn.execute(
            _SUBMISSION_SQL + "WHERE s.outcome = 'quarantined' AND (s.batch_id = ? OR s.batch_id IS NULL) "
            "ORDER BY s.processed_at DESC, s.id DESC", (batch_id,))]

    def recent_submissions(self, batch_id: int, limit: int = 50) -> list[Submission]:
        """The latest files processed (accepted or quarantined), newest first."""
        return [submission_from_row(r, r["unit_name"]) for r in self.conn.execute(
            _SUBMISSION_SQL + "WHERE s.batch_id = ? OR s.batch_id IS NULL ORDER BY s.processed_at DESC, s.id DESC "
            "LIMIT ?", (batch_id, limit))]

    def problem_records(self, submission_id: int) -> list[dict[str, Any]]:
        """The problems found in one file (severity, sheet, cell, task_number, field, message)."""
        return [dict(r) for r in self.conn.execute(
            "SELECT severity, sheet, cell, task_number, field, message FROM problems WHERE submission_id = ? "
            "ORDER BY id", (submission_id,))]

    def message_records(self, batch_id: int, *, unit_id: int | None = None, purpose: str | None = None,
                        states: Iterable[str] | None = None, limit: int | None = None) -> list[MessageRow]:
        """The batch's e-mails (optionally one unit's, one purpose, some states), newest first."""
        sql = _MESSAGE_SQL + "WHERE m.batch_id = ?"
        params: list[Any] = [batch_id]
        if unit_id is not None:
            sql += " AND m.unit_id = ?"
            params.append(unit_id)
        if purpose is not None:
            sql += " AND m.purpose = ?"
            params.append(purpose)
        if states is not None:
            wanted = list(states)
            sql += f" AND m.state IN ({','.join('?' * len(wanted))})"
            params += wanted
        sql += " ORDER BY m.created_at DESC, m.id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [message_from_row(r) for r in self.conn.execute(sql, params)]

    def messages_by_keys(self, keys: Iterable[str]) -> dict[str, MessageRow]:
        """Idempotency key → message, for the keys that have one."""
        wanted = list(dict.fromkeys(keys))
        out: dict[str, MessageRow] = {}
        for i in range(0, len(wanted), 500):
            chunk = wanted[i:i + 500]
            out.update((m.idem_key, m) for m in map(message_from_row, self.conn.execute(
                _MESSAGE_SQL + f"WHERE m.idem_key IN ({','.join('?' * len(chunk))})", chunk)))
        return out

    def message_states(self, batch_id: int, purpose: str) -> dict[str, int]:
        """How many of the batch's messages of ``purpose`` are in each state."""
        return dict(self.conn.execute(
            "SELECT state, COUNT(*) FROM messages WHERE batch_id = ? AND purpose = ? GROUP BY state",
            (batch_id, purpose)).fetchall())

    def assignment_counts(self, batch_id: int) -> dict[int, int]:
        """Unit id → how many assignments it has in the batch."""
        return dict(self.conn.execute(
            "SELECT unit_id, COUNT(*) FROM assignments WHERE batch_id = ? GROUP BY unit_id", (batch_id,)).fetchall())

    def unit_activity(self, batch_id: int, unit_id: int) -> tuple[str | None, int]:
        """The unit's latest accepted file time and the reminders sent to it (as the snapshot counts them)."""
        last, reminders = self.conn.execute(
            "SELECT (SELECT MAX(received_at) FROM submissions WHERE batch_id = ? AND unit_id = ? "
            "AND outcome = 'accepted'), (SELECT COUNT(*) FROM messages WHERE batch_id = ? AND unit_id = ? "
            "AND purpose = 'remind' AND state = 'sent')", (batch_id, unit_id, batch_id, unit_id)).fetchone()
        return last, int(reminders)

    def latest_issue_paths(self, batch_id: int) -> dict[int, str]:
        """Unit id → path of the latest workbook built for distribution."""
        return {r[0]: r[1] for r in self.conn.execute(
            "SELECT unit_id, path FROM issues WHERE id IN (SELECT MAX(id) FROM issues WHERE batch_id = ? "
            "AND purpose = 'build' AND path IS NOT NULL GROUP BY unit_id)", (batch_id,))}

    def events_since(self, kinds: Iterable[str], limit: int = 20) -> list[tuple[str, str, dict[str, Any]]]:
        """The latest audit events of some kinds: (time, kind, detail), newest first."""
        wanted = list(kinds)
        rows = self.conn.execute(
            f"SELECT at, kind, detail FROM events WHERE kind IN ({','.join('?' * len(wanted))}) "
            "ORDER BY id DESC LIMIT ?", (*wanted, limit))
        out = []
        for at, kind, detail in rows:
            try:
                parsed = json.loads(detail or "{}")
            except ValueError:
                parsed = {}
            out.append((at, kind, parsed if isinstance(parsed, dict) else {}))
        return out
