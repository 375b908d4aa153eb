"""Batches and their task tables: every imported revision kept, the current one in ``tasks``."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import sqlite3
import uuid
from collections.abc import Sequence
from typing import Any

from automation import clock
from automation.errors import LedgerError
from automation.ledger.connection import Connection, _j
from automation.ledger.records import ImportResult, Revision
from automation.model import Batch, Task
from automation.units import Assignment


def tasks_digest(tasks: Sequence[Task]) -> str:
    """A digest of the normalised task records (what "the same table" means on re-import).

    ``due_date`` is left out: it is derived from ``deadline`` (which is in) and the batch year,
    and a ledger written before it existed must see an unchanged table as unchanged.
    """
    records = []
    for t in tasks:
        record = t.to_json()
        record.pop("due_date", None)
        records.append(record)
    payload = json.dumps(records, ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()



class BatchQueries(Connection):
    def _batch(self, row: sqlite3.Row | None) -> Batch | None:
        if row is None:
            return None
        return Batch(row["id"], row["uid"], row["title"], row["year"], dt.date.fromisoformat(row["deadline"]),
                     bytes.fromhex(row["secret"]), row["revision"], row["created_at"])

    def batch_by_title(self, title: str) -> Batch | None:
        return self._batch(self.conn.execute("SELECT * FROM batches WHERE title = ?", (title,)).fetchone())

    def batch_by_uid(self, uid: str) -> Batch | None:
        return self._batch(self.conn.execute("SELECT * FROM batches WHERE uid = ?", (uid,)).fetchone())

    def batch_by_id(self, batch_id: int) -> Batch | None:
        return self._batch(self.conn.execute("SELECT * FROM batches WHERE id = ?", (batch_id,)).fetchone())

    def require_batch(self, title: str) -> Batch:
        batch = self.batch_by_title(title)
        if batch is None:
            raise LedgerError(f"台账中还没有批次“{title}”。请先运行 automation init 导入任务表。")
        return batch

    def ensure_batch(self, title: str, year: int, deadline: dt.date, now: dt.datetime,
                     uid: str | None = None, secret: bytes | None = None) -> Batch:
        """Create the batch (with a fresh signing secret) or update its year and deadline.

        ``uid`` and ``secret`` are for reproducible test fixtures only; normally both are random.
        """
        with self.transaction():
            existing = self.batch_by_title(title)
            if existing is None:
                self.conn.execute(
                    "INSERT INTO batches(uid, title, year, deadline, secret, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (uid or uuid.uuid4().hex, title, year, deadline.isoformat(),
                     (secret.hex() if secret else secrets.token_hex(32)), clock.iso(now), clock.iso(now)),
                )
            elif (existing.year, existing.deadline) != (year, deadline):
                self.conn.execute(
                    "UPDATE batches SET year = ?, deadline = ?, updated_at = ? WHERE id = ?",
                    (year, deadline.isoformat(), clock.iso(now), existing.id),
                )
        batch = self.batch_by_title(title)
        assert batch is not None
        return batch

    def was_sent(self, batch_id: int) -> bool:
        """Has any workbook of this batch gone out (built for distribution or mailed)?"""
        row = self.conn.execute(
            "SELECT 1 FROM messages WHERE batch_id = ? AND purpose = 'distribute' AND state != 'failed' "
            "UNION SELECT 1 FROM submissions WHERE batch_id = ? LIMIT 1",
            (batch_id, batch_id),
        ).fetchone()
        return row is not None

    def import_tasks(
        self,
        batch: Batch,
        tasks: Sequence[Task],
        assignments: Sequence[Assignment],
        now: dt.datetime,
        source_name: str = "",
        source_sha256: str = "",
        replace: bool = False,
    ) -> ImportResult:
        """Store a task table as the batch's current revision (idempotent for the same table).

        A different table for a batch that was already sent out is refused unless ``replace``;
        every revision stays in ``table_revisions``.
        """
        digest = tasks_digest(tasks)
        with self.transaction():
            current = self.conn.execute(
                "SELECT revision, digest FROM table_revisions WHERE batch_id = ? ORDER BY revision DESC LIMIT 1",
                (batch.id,),
            ).fetchone()
            unit_ids = self.unit_ids()
            assignment_rows = [
                (batch.id, a.task, unit_ids[a.unit], a.role, a.note) for a in assignments
            ]
            if current is not None and current["digest"] == digest:
                dated = self._update_due_dates(batch.id, tasks)
                existing = {
                    (r[0], r[1], r[2], r[3]) for r in self.conn.execute(
                        "SELECT task_number, unit_id, role, IFNULL(note, '') FROM assignments WHERE batch_id = ?",
                        (batch.id,),
                    )
                }
                wanted = {(r[1], r[2], r[3], r[4] or "") for r in assignment_rows}
                if existing == wanted:
                    if dated:
                        self.event("due_dates", now, batch=batch.title, count=dated)
                        return ImportResult(batch, True, current["revision"], len(tasks), len(assignments),
                                            f"任务表未变，{dated} 项任务的完成时限日期已更新")
                    return ImportResult(batch, False, current["revision"], len(tasks), len(assignments),
                                        "任务表与台账一致，未做改动")
                self._write_assignments(batch.id, assignment_rows)
                self.event("assignments", now, batch=batch.title, count=len(assignment_rows))
                return ImportResult(batch, True, current["revision"], len(tasks), len(assignments),
                                    "任务表未变，单位分工已按配置更新")
            if current is not None and not replace and self.was_sent(batch.id):
                raise LedgerError(
                    f"批次“{batch.title}”的工作簿已经发出，而任务表有变化。确认要替换时请加 --replace"
                    "（旧版本保留在历史中）。"
                )
            revision = (current["revision"] if current else 0) + 1
            self.conn.execute(
                "INSERT INTO table_revisions(batch_id, revision, digest, source_name, source_sha256, tasks_json, "
                "imported_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (batch.id, revision, digest, source_name, source_sha256,
                 json.dumps([{**t.to_json(), "raw": t.raw} for t in tasks], ensure_ascii=False), clock.iso(now)),
            )
            self.conn.execute("DELETE FROM tasks WHERE batch_id = ?", (batch.id,))
            self.conn.executemany(
                "INSERT INTO tasks(batch_id, number, section, section_title, subsection, subsection_title, title, "
                "requirement, lead_json, responsible_json, status, deadline, due_date, unit_notes_json, extra_json, "
                "raw_json, source_row) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [
                    (batch.id, t.number, t.section, t.section_title, t.subsection, t.subsection_title, t.title,
                     t.requirement, _j(t.lead), _j(t.responsible), t.status, t.deadline, t.due_date,
                     _j(t.unit_notes), _j(t.extra), _j(t.raw), t.source_row)
                    for t in tasks
                ],
            )
            self._write_assignments(batch.id, assignment_rows)
            self.conn.execute("UPDATE batches SET revision = ?, updated_at = ? WHERE id = ?",
                              (revision, clock.iso(now), batch.id))
            self.event("import", now, batch=batch.title, revision=revision, source=source_name, tasks=len(tasks))
        batch = self.batch_by_id(batch.id) or batch
        verb = "导入" if revision == 1 else f"替换为第 {revision} 版"
        return ImportResult(batch, True, revision, len(tasks), len(assignments),
                            f"任务表已{verb}：{len(tasks)} 项任务，{len(assignments)} 条单位分工")

    def _update_due_dates(self, batch_id: int, tasks: Sequence[Task]) -> int:
        """Bring stored due dates in line with an unchanged table (new batch year, or a ledger from
        before due dates); returns how many changed."""
        stored = dict(self.conn.execute("SELECT number, due_date FROM tasks WHERE batch_id = ?", (batch_id,)))
        changed = [(t.due_date, batch_id, t.number) for t in tasks if stored.get(t.number) != t.due_date]
        self.conn.executemany("UPDATE tasks SET due_date = ? WHERE batch_id = ? AND number = ?", changed)
        return len(changed)

    def _write_assignments(self, batch_id: int, rows: list[tuple[Any, ...]]) -> None:
        self.conn.execute("DELETE FROM assignments WHERE batch_id = ?", (batch_id,))
        self.conn.executemany(
            "INSERT INTO assignments(batch_id, task_number, unit_id, role, note) VALUES (?,?,?,?,?)", rows
        )

    def tasks(self, batch_id: int) -> list[Task]:
        rows = self.conn.execute("SELECT * FROM tasks WHERE batch_id = ? ORDER BY number", (batch_id,))
        return [
            Task(
                number=r["number"], section=r["section"], section_title=r["section_title"],
                subsection=r["subsection"], subsection_title=r["subsection_title"], title=r["title"],
                requirement=r["requirement"], lead=json.loads(r["lead_json"]),
                responsible=json.loads(r["responsible_json"]), status=r["status"], deadline=r["deadline"],
                due_date=r["due_date"],
                unit_notes=json.loads(r["unit_notes_json"]), extra=json.loads(r["extra_json"]),
                source_row=r["source_row"], raw=json.loads(r["raw_json"]),
            )
            for r in rows
        ]

    def revisions(self, batch_id: int) -> list[Revision]:
        return [Revision(*r) for r in self.conn.execute(
            "SELECT revision, digest, source_name, source_sha256, imported_at FROM table_revisions "
            "WHERE batch_id = ? ORDER BY revision", (batch_id,))]

    def revision_tasks(self, batch_id: int, revision: int) -> list[Task]:
        """The task table as it was in one revision (every revision is kept in ``table_revisions``)."""
        r = self.conn.execute("SELECT tasks_json FROM table_revisions WHERE batch_id = ? AND revision = ?",
                              (batch_id, revision)).fetchone()
        return [Task.from_json(t) for t in json.loads(r[0])] if r else []
