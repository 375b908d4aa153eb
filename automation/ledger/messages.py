"""E-mail state: every message under an idempotency key, and IMAP intake by Message-ID.

The ``messages`` rows make every mailing at-most-once (:mod:`automation.mail.sending` writes a
row as ``pending`` before the transport is called and settles it after); reminders and the
progress summary read them back.  ``imap_messages`` makes IMAP intake exactly-once per Message-ID.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from automation import clock
from automation.ledger.connection import Connection, _j
from automation.ledger.records import BuiltWorkbook, ImapRow, MessageRow, OwedReceipt
from automation.model import Problem


def _json(text: str | None, empty: Any) -> Any:
    try:
        return json.loads(text) if text else empty
    except ValueError:
        return empty


def message_from_row(r: sqlite3.Row) -> MessageRow:
    """A ``messages`` row (with ``unit_name`` when the query joined the unit) as a :class:`MessageRow`."""
    return MessageRow(
        id=int(r["id"]), idem_key=r["idem_key"], purpose=r["purpose"], batch_id=r["batch_id"],
        unit_id=r["unit_id"], message_id=r["message_id"], subject=r["subject"],
        recipients=list(_json(r["recipients_json"], [])), state=r["state"], attempts=int(r["attempts"]),
        error=r["error"], path=r["path"], created_at=r["created_at"], sent_at=r["sent_at"],
        detail=dict(_json(r["detail_json"], {})), unit=r["unit_name"] if "unit_name" in r.keys() else None,
    )


class MessageQueries(Connection):
    # ------------------------------------------------------------------ messages: at-most-once sending

    def message_row(self, idem_key: str) -> MessageRow | None:
        """The message under an idempotency key, or None when it was never tried."""
        r = self.conn.execute("SELECT * FROM messages WHERE idem_key = ?", (idem_key,)).fetchone()
        return message_from_row(r) if r else None

    def record_pending_message(self, *, idem_key: str, purpose: str, batch_id: int | None, unit_id: int | None,
                               message_id: str, subject: str, recipients: Sequence[str], now: dt.datetime,
                               detail: dict[str, Any]) -> int:
        """A new message about to be handed to the transport (state ``pending``); returns its row id."""
        cur = self.conn.execute(
            "INSERT INTO messages(idem_key, purpose, batch_id, unit_id, message_id, subject, recipients_json, "
            "state, attempts, created_at, detail_json) VALUES (?,?,?,?,?,?,?, 'pending', 1, ?, ?)",
            (idem_key, purpose, batch_id, unit_id, message_id, subject, _j(list(recipients)), clock.iso(now),
             _j(detail)),
        )
        return int(cur.lastrowid or 0)

    def record_message_retry(self, row_id: int, *, subject: str, recipients: Sequence[str]) -> None:
        """A failed or uncertain message about to be sent again (``pending`` again, one more attempt)."""
        self.conn.execute(
            "UPDATE messages SET state = 'pending', attempts = attempts + 1, subject = ?, recipients_json = ?, "
            "error = NULL WHERE id = ?",
            (subject, _j(list(recipients)), row_id),
        )

    def record_message_sent(self, row_id: int, now: dt.datetime, *, path: str | None, error: str | None,
                            detail: dict[str, Any]) -> None:
        """The transport accepted the message (``error``: recipients that refused it, if any)."""
        self.conn.execute(
            "UPDATE messages SET state = 'sent', sent_at = ?, path = ?, error = ?, detail_json = ? WHERE id = ?",
            (clock.iso(now), path, error, _j(detail), row_id),
        )

    def record_message_failed(self, row_id: int, *, error: str, detail: dict[str, Any]) -> None:
        """Nobody got the message; a later run sends it again."""
        self.conn.execute("UPDATE messages SET state = 'failed', error = ?, detail_json = ? WHERE id = ?",
                          (error, _j(detail), row_id))

    def record_message_uncertain(self, row_id: int, *, error: str, only_if_pending: bool = False) -> bool:
        """The message may or may not have gone out; never sent again unless asked.

        ``only_if_pending``: leave a row that another state already settled.  Returns whether the
        row changed.
        """
        sql = "UPDATE messages SET state = 'uncertain', error = ? WHERE id = ?"
        if only_if_pending:
            sql += " AND state = 'pending'"
        return self.conn.execute(sql, (error, row_id)).rowcount > 0

    # ------------------------------------------------------------------ messages: read back by mailings

    def messages_for(self, batch_id: int, purpose: str) -> list[MessageRow]:
        """Every message of one purpose (``distribute``, ``receipt``, ``remind``) in a batch, oldest first."""
        return [message_from_row(r) for r in self.conn.execute(
            "SELECT * FROM messages WHERE batch_id = ? AND purpose = ? ORDER BY id", (batch_id, purpose))]

    def first_sent_at(self, batch_id: int, purpose: str) -> dict[int, dt.datetime]:
        """Unit id → when its first message of ``purpose`` went out (units never mailed are absent)."""
        return {int(r[0]): clock.parse(r[1]) for r in self.conn.execute(
            "SELECT unit_id, MIN(sent_at) FROM messages WHERE purpose = ? AND batch_id = ? AND sent_at IS NOT NULL "
            "AND unit_id IS NOT NULL GROUP BY unit_id", (purpose, batch_id))}

    def sent_counts(self, batch_id: int, purpose: str) -> dict[int, int]:
        """Unit id → how many messages of ``purpose`` were sent to it (state ``sent``)."""
        return {int(r[0]): int(r[1]) for r in self.conn.execute(
            "SELECT unit_id, COUNT(*) FROM messages WHERE batch_id = ? AND purpose = ? AND state = 'sent' "
            "AND unit_id IS NOT NULL GROUP BY unit_id", (batch_id, purpose))}

    def latest_built_workbook(self, batch_id: int, unit_id: int) -> BuiltWorkbook | None:
        """The unit's most recently built workbook that has a path (the one a distribution attaches)."""
        r = self.conn.execute(
            "SELECT path, sha256, tasks_json FROM issues WHERE batch_id = ? AND unit_id = ? AND purpose = 'build' "
            "AND path IS NOT NULL ORDER BY id DESC LIMIT 1", (batch_id, unit_id),
        ).fetchone()
        if r is None:
            return None
        return BuiltWorkbook(r["path"], r["sha256"], tuple(int(t) for t in _json(r["tasks_json"], [])))

    # ------------------------------------------------------------------ receipts owed

    def owed_receipts(self, batch_id: int, *, include_uncertain: bool = False) -> list[OwedReceipt]:
        """Submissions of a batch from a known unit whose 回执 has not gone out, oldest first.

        Not gone out: no ``messages`` row under its receipt key (``receipt:<sha256>:<outcome>``,
        see :func:`automation.mail.receipts.receipt_key`), or one in state ``failed``;
        ``include_uncertain`` adds ``pending`` and ``uncertain`` ones.  Each comes with the tasks it
        answered and the problems found, which the receipt reports.
        """
        states = ("failed", "uncertain", "pending") if include_uncertain else ("failed",)
        rows = self.conn.execute(
            "SELECT s.id, s.sha256, s.outcome, s.file_name, s.reason, s.rows_accepted, s.sender, s.message_id, "
            "s.received_at, s.unit_id, u.name AS unit, m.state AS m_state, m.detail_json AS m_detail "
            "FROM submissions s JOIN units u ON u.id = s.unit_id "
            "LEFT JOIN messages m ON m.idem_key = 'receipt:' || s.sha256 || ':' || s.outcome "
            f"WHERE s.batch_id = ? AND (m.id IS NULL OR m.state IN ({','.join('?' * len(states))})) "
            "ORDER BY s.processed_at, s.id",
            (batch_id, *states),
        ).fetchall()
        out: list[OwedReceipt] = []
        for r in rows:
            problems = tuple(Problem(message=p["message"], severity=p["severity"], sheet=p["sheet"], cell=p["cell"],
                                     task_number=p["task_number"], field=p["field"])
                             for p in self.conn.execute(
                                 "SELECT severity, sheet, cell, task_number, field, message FROM problems "
                                 "WHERE submission_id = ? ORDER BY id", (r["id"],)))
            tasks = tuple(int(t[0]) for t in self.conn.execute(
                "SELECT task_number FROM responses WHERE submission_id = ? ORDER BY task_number", (r["id"],)))
            out.append(OwedReceipt(
                submission_id=int(r["id"]), sha256=r["sha256"], outcome=r["outcome"], file_name=r["file_name"],
                unit_id=int(r["unit_id"]), unit=r["unit"], reason=r["reason"] or "",
                rows_accepted=int(r["rows_accepted"] or 0), tasks_accepted=tasks, problems=problems,
                sender=r["sender"], message_id=r["message_id"], received_at=r["received_at"],
                last_state=r["m_state"], last_detail=dict(_json(r["m_detail"], {})) if r["m_state"] else {},
            ))
        return out

    # ------------------------------------------------------------------ IMAP intake

    def imap_message(self, message_id: str) -> ImapRow | None:
        """What intake did with a message of the office mailbox (by its Message-ID), or None."""
        r = self.conn.execute("SELECT * FROM imap_messages WHERE message_id = ?", (message_id,)).fetchone()
        if r is None:
            return None
        return ImapRow(r["message_id"], r["folder"], r["uid"], r["sender"], r["subject"], r["state"], r["note"],
                       r["seen_at"], r["processed_at"])

    def record_imap_message(self, message_id: str, now: dt.datetime, state: str, *, folder: str = "", uid: str = "",
                            sender: str | None = None, subject: str | None = None, note: str | None = None,
                            processed: bool = False) -> None:
        """Insert or move on a mailbox message's state; sender, subject and note are kept when not given."""
        with self.transaction():
            self.conn.execute(
                "INSERT INTO imap_messages(message_id, folder, uid, sender, subject, state, note, seen_at, "
                "processed_at) VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT(message_id) DO UPDATE SET "
                "state = excluded.state, folder = excluded.folder, uid = excluded.uid, "
                "sender = COALESCE(excluded.sender, imap_messages.sender), "
                "subject = COALESCE(excluded.subject, imap_messages.subject), "
                "note = COALESCE(excluded.note, imap_messages.note), "
                "processed_at = COALESCE(excluded.processed_at, imap_messages.processed_at)",
                (message_id, folder, uid, sender, subject, state, note, clock.iso(now),
                 clock.iso(now) if processed else None),
            )
