"""The ledger: every piece of state, in one SQLite file in the workspace.

The process holds no state between commands; the ledger does.  The schema is created and
upgraded by numbered migrations (``PRAGMA user_version``), every unit of work is one
transaction, and rows have natural keys so every command can be re-run safely.

Tables (see docs/architecture.md):

- ``batches`` / ``table_revisions`` / ``tasks``: the batch and its task table, with every
  imported revision kept;
- ``units`` / ``assignments``: the registry as synced from config.toml and task × unit roles;
- ``layouts`` / ``issues``: the workbook layout (template) versions and every workbook issued;
- ``submissions`` / ``responses`` / ``answers`` / ``problems``: returned files, every answer
  ever received, the current answer per (unit, task), and the problems found;
- ``messages``: every e-mail under an idempotency key; ``imap_messages``: intake by Message-ID;
- ``events``: a small audit log.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import sqlite3
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import clock
from .config import UnitSpec
from .errors import LedgerError
from .load import Task
from .units import Assignment

__all__ = ["Ledger", "Batch", "UnitRow", "ImportResult", "MIGRATIONS", "LEDGER_FILE", "tasks_digest"]

LEDGER_FILE = "ledger.sqlite3"

MIGRATIONS: list[str] = [
    # 1: the whole loop
    """
    CREATE TABLE batches (
        id          INTEGER PRIMARY KEY,
        uid         TEXT NOT NULL UNIQUE,
        title       TEXT NOT NULL UNIQUE,
        year        INTEGER NOT NULL,
        deadline    TEXT NOT NULL,
        secret      TEXT NOT NULL,
        revision    INTEGER NOT NULL DEFAULT 0,
        created_at  TEXT NOT NULL,
        updated_at  TEXT NOT NULL
    );
    CREATE TABLE table_revisions (
        batch_id      INTEGER NOT NULL REFERENCES batches(id),
        revision      INTEGER NOT NULL,
        digest        TEXT NOT NULL,
        source_name   TEXT,
        source_sha256 TEXT,
        tasks_json    TEXT NOT NULL,
        imported_at   TEXT NOT NULL,
        PRIMARY KEY (batch_id, revision)
    );
    CREATE TABLE tasks (
        batch_id         INTEGER NOT NULL REFERENCES batches(id),
        number           INTEGER NOT NULL,
        section          TEXT,
        section_title    TEXT,
        subsection       TEXT,
        subsection_title TEXT,
        title            TEXT NOT NULL,
        requirement      TEXT NOT NULL DEFAULT '',
        lead_json        TEXT NOT NULL DEFAULT '[]',
        responsible_json TEXT NOT NULL DEFAULT '[]',
        status           TEXT NOT NULL DEFAULT '',
        deadline         TEXT,
        unit_notes_json  TEXT NOT NULL DEFAULT '{}',
        extra_json       TEXT NOT NULL DEFAULT '{}',
        raw_json         TEXT NOT NULL DEFAULT '{}',
        source_row       INTEGER,
        PRIMARY KEY (batch_id, number)
    );
    CREATE TABLE units (
        id          INTEGER PRIMARY KEY,
        name        TEXT NOT NULL UNIQUE,
        kind        TEXT NOT NULL DEFAULT '',
        emails_json TEXT NOT NULL DEFAULT '[]',
        cc_json     TEXT NOT NULL DEFAULT '[]',
        aliases_json TEXT NOT NULL DEFAULT '[]',
        contact     TEXT NOT NULL DEFAULT '',
        phone       TEXT NOT NULL DEFAULT '',
        active      INTEGER NOT NULL DEFAULT 1,
        updated_at  TEXT NOT NULL
    );
    CREATE TABLE assignments (
        batch_id    INTEGER NOT NULL REFERENCES batches(id),
        task_number INTEGER NOT NULL,
        unit_id     INTEGER NOT NULL REFERENCES units(id),
        role        TEXT NOT NULL,
        note        TEXT,
        PRIMARY KEY (batch_id, task_number, unit_id)
    );
    CREATE INDEX assignments_unit ON assignments(batch_id, unit_id);
    CREATE TABLE layouts (
        version    TEXT PRIMARY KEY,
        spec_json  TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE issues (
        id               INTEGER PRIMARY KEY,
        batch_id         INTEGER NOT NULL REFERENCES batches(id),
        unit_id          INTEGER NOT NULL REFERENCES units(id),
        issued_at        TEXT NOT NULL,
        template_version TEXT NOT NULL,
        tasks_json       TEXT NOT NULL,
        path             TEXT,
        sha256           TEXT,
        purpose          TEXT NOT NULL DEFAULT 'build'
    );
    CREATE INDEX issues_unit ON issues(batch_id, unit_id);
    CREATE TABLE submissions (
        id            INTEGER PRIMARY KEY,
        sha256        TEXT NOT NULL UNIQUE,
        batch_id      INTEGER REFERENCES batches(id),
        unit_id       INTEGER REFERENCES units(id),
        file_name     TEXT NOT NULL,
        archive_path  TEXT NOT NULL,
        received_at   TEXT NOT NULL,
        processed_at  TEXT NOT NULL,
        outcome       TEXT NOT NULL CHECK (outcome IN ('accepted', 'quarantined')),
        reason        TEXT,
        signed        INTEGER NOT NULL DEFAULT 0,
        source        TEXT NOT NULL DEFAULT 'folder',
        message_id    TEXT,
        sender        TEXT,
        contact       TEXT,
        phone         TEXT,
        rows_accepted INTEGER NOT NULL DEFAULT 0,
        problem_count INTEGER NOT NULL DEFAULT 0,
        quarantine_path TEXT
    );
    CREATE INDEX submissions_unit ON submissions(batch_id, unit_id);
    CREATE TABLE responses (
        id            INTEGER PRIMARY KEY,
        submission_id INTEGER NOT NULL REFERENCES submissions(id),
        batch_id      INTEGER NOT NULL REFERENCES batches(id),
        unit_id       INTEGER NOT NULL REFERENCES units(id),
        task_number   INTEGER NOT NULL,
        status        TEXT NOT NULL,
        progress      TEXT NOT NULL DEFAULT '',
        completed_on  TEXT,
        evidence      TEXT NOT NULL DEFAULT '',
        issues        TEXT NOT NULL DEFAULT '',
        received_at   TEXT NOT NULL,
        UNIQUE (submission_id, task_number)
    );
    CREATE INDEX responses_unit_task ON responses(batch_id, unit_id, task_number, received_at);
    CREATE TABLE answers (
        batch_id    INTEGER NOT NULL,
        unit_id     INTEGER NOT NULL,
        task_number INTEGER NOT NULL,
        response_id INTEGER NOT NULL REFERENCES responses(id),
        received_at TEXT NOT NULL,
        PRIMARY KEY (batch_id, unit_id, task_number)
    );
    CREATE TABLE problems (
        id            INTEGER PRIMARY KEY,
        submission_id INTEGER NOT NULL REFERENCES submissions(id),
        severity      TEXT NOT NULL DEFAULT 'error',
        sheet         TEXT,
        cell          TEXT,
        task_number   INTEGER,
        field         TEXT,
        message       TEXT NOT NULL
    );
    CREATE INDEX problems_submission ON problems(submission_id);
    CREATE TABLE messages (
        id             INTEGER PRIMARY KEY,
        idem_key       TEXT NOT NULL UNIQUE,
        purpose        TEXT NOT NULL,
        batch_id       INTEGER,
        unit_id        INTEGER,
        message_id     TEXT NOT NULL,
        subject        TEXT NOT NULL,
        recipients_json TEXT NOT NULL DEFAULT '[]',
        state          TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'failed', 'uncertain')),
        attempts       INTEGER NOT NULL DEFAULT 0,
        error          TEXT,
        path           TEXT,
        created_at     TEXT NOT NULL,
        sent_at        TEXT,
        detail_json    TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX messages_unit ON messages(batch_id, unit_id, purpose);
    CREATE TABLE imap_messages (
        message_id   TEXT PRIMARY KEY,
        folder       TEXT,
        uid          TEXT,
        sender       TEXT,
        subject      TEXT,
        state        TEXT NOT NULL,
        note         TEXT,
        seen_at      TEXT NOT NULL,
        processed_at TEXT
    );
    CREATE TABLE events (
        id      INTEGER PRIMARY KEY,
        at      TEXT NOT NULL,
        kind    TEXT NOT NULL,
        detail  TEXT NOT NULL DEFAULT '{}'
    );
    """,
    # 2: responses in receipt order: the report's 提交记录 streams every response without a sort
    """
    CREATE INDEX responses_received ON responses(batch_id, received_at);
    """,
    # 3: the current answer per (unit, task) lives in `answers`; nothing looks responses up by
    # (unit, task) any more, and every stored row paid for the index (a sixth of collect's writes)
    """
    DROP INDEX IF EXISTS responses_unit_task;
    """,
]


def tasks_digest(tasks: Sequence[Task]) -> str:
    """A digest of the normalised task records (what "the same table" means on re-import)."""
    payload = json.dumps([t.to_json() for t in tasks], ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Batch:
    id: int
    uid: str
    title: str
    year: int
    deadline: dt.date
    secret: bytes
    revision: int
    created_at: str


@dataclass(frozen=True)
class UnitRow:
    id: int
    name: str
    kind: str
    emails: tuple[str, ...]
    cc: tuple[str, ...]
    aliases: tuple[str, ...]
    contact: str
    phone: str


@dataclass(frozen=True)
class ImportResult:
    batch: Batch
    changed: bool
    revision: int
    task_count: int
    assignment_count: int
    message: str


_GROUP_LOST = ("台账写入出错（如磁盘已满），数据库撤销了最近一组尚未提交的记录；这些文件仍在原处，"
               "排除故障后重新运行即可重新处理。")


class Ledger:
    """A connection to the workspace ledger with the queries every stage needs."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(str(self.path), timeout=30, isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is on disk when it returns (NORMAL may lose the last commits on a power cut
        # in WAL mode), so a caller may delete or move an input right after the commit.
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self._depth = 0
        self._grouping = False   # inside grouped(): commits are shared
        self._open = False       # a grouped transaction is open (not committed yet)
        self._broken = False     # a failure undid more than its own savepoint
        self.migrate()

    @classmethod
    def open(cls, workspace: str | Path) -> Ledger:
        return cls(Path(workspace) / LEDGER_FILE)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ plumbing

    @property
    def schema_version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def migrate(self) -> None:
        """Apply every migration newer than the file's ``user_version``, each in one transaction."""
        current = self.schema_version
        if current > len(MIGRATIONS):
            raise LedgerError(
                f"{self.path}：台账由更新版本的程序创建（结构版本 {current}），请升级 automation 后再用。"
            )
        for version in range(current + 1, len(MIGRATIONS) + 1):
            with self.transaction():
                for statement in MIGRATIONS[version - 1].split(";\n"):
                    if statement.strip():
                        self.conn.execute(statement)
                self.conn.execute(f"PRAGMA user_version = {version}")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One transaction: all of it is stored or none of it.

        A nested call becomes a savepoint inside the outer transaction, so a failure in it undoes
        only its own writes (the outer caller decides what else to do).  Inside :meth:`grouped`
        the outermost call is a savepoint too: it is atomic on its own, but its commit is shared
        with the units of work around it.  Some errors (disk full, I/O) make SQLite undo the whole
        transaction, not just the savepoint: the group is then lost, and :meth:`commit` says so
        instead of committing nothing in silence.
        """
        if self._open and not self._depth and not self.conn.in_transaction:
            self._broken = True  # SQLite dropped the group: never start a new one in its place
            raise LedgerError(_GROUP_LOST)
        if self._depth or self._open:
            name = f"sp{self._depth}"
            self.conn.execute(f"SAVEPOINT {name}")
            self._depth += 1
            try:
                yield self.conn
            except BaseException:
                try:
                    if self.conn.in_transaction:
                        self.conn.execute(f"ROLLBACK TO {name}")
                        self.conn.execute(f"RELEASE {name}")
                    else:
                        self._broken = True
                except sqlite3.Error:
                    self._broken = True
                raise
            else:
                self.conn.execute(f"RELEASE {name}")
            finally:
                self._depth -= 1
            return
        if self._grouping:
            self.conn.execute("BEGIN IMMEDIATE")
            self._open, self._broken = True, False
            with self.transaction() as conn:
                yield conn
            return
        self.conn.execute("BEGIN IMMEDIATE")
        self._depth, self._broken = 1, False
        try:
            yield self.conn
            if self._broken:  # a nested failure could not be undone on its own
                raise LedgerError(_GROUP_LOST)
        except BaseException:
            self._depth = 0
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise
        else:
            self._depth = 0
            self.conn.execute("COMMIT")

    @contextmanager
    def grouped(self) -> Iterator[None]:
        """Group commit: the transactions inside share commits until :meth:`commit` or the end.

        Each :meth:`transaction` stays atomic (a savepoint), but a commit costs as much as the
        work of a small file, so a batch of files commits together (``collect`` commits before it
        removes any input, so what is not committed yet is simply done again by the next run).
        The write lock is taken at the first write after a commit, not while waiting.  Whatever
        completed is committed when the block ends, also when it ends by an exception.
        """
        if self._grouping:
            yield
            return
        self._grouping = True
        try:
            yield
        finally:
            self._grouping = False
            self.commit()

    @property
    def uncommitted(self) -> bool:
        """Whether :meth:`grouped` holds writes (and the write lock) not committed yet."""
        return self._open

    def commit(self) -> None:
        """Commit what :meth:`grouped` holds open (nothing to do outside it).

        Raises :class:`LedgerError` when SQLite undid the group on its own (disk full, I/O error)
        or the commit fails: the caller must then not act as if those writes were stored.
        """
        if not self._open or self._depth:
            return
        if self._broken or not self.conn.in_transaction:
            self.rollback()
            raise LedgerError(_GROUP_LOST)
        try:
            self.conn.execute("COMMIT")
        except BaseException:
            self.rollback()
            raise
        self._open = False

    def rollback(self) -> None:
        """Undo what :meth:`grouped` holds open and not committed yet."""
        if not self._open or self._depth:
            return
        self._open, self._broken = False, False
        try:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
        except sqlite3.Error:  # the connection undid it itself
            pass

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def event(self, kind: str, now: dt.datetime, **detail: Any) -> None:
        self.conn.execute(
            "INSERT INTO events(at, kind, detail) VALUES (?, ?, ?)",
            (clock.iso(now), kind, json.dumps(detail, ensure_ascii=False, default=str)),
        )

    # ------------------------------------------------------------------ batches and tasks

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
                existing = {
                    (r[0], r[1], r[2], r[3]) for r in self.conn.execute(
                        "SELECT task_number, unit_id, role, IFNULL(note, '') FROM assignments WHERE batch_id = ?",
                        (batch.id,),
                    )
                }
                wanted = {(r[1], r[2], r[3], r[4] or "") for r in assignment_rows}
                if existing == wanted:
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
                "requirement, lead_json, responsible_json, status, deadline, unit_notes_json, extra_json, raw_json, "
                "source_row) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [
                    (batch.id, t.number, t.section, t.section_title, t.subsection, t.subsection_title, t.title,
                     t.requirement, _j(t.lead), _j(t.responsible), t.status, t.deadline, _j(t.unit_notes),
                     _j(t.extra), _j(t.raw), t.source_row)
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
                unit_notes=json.loads(r["unit_notes_json"]), extra=json.loads(r["extra_json"]),
                source_row=r["source_row"], raw=json.loads(r["raw_json"]),
            )
            for r in rows
        ]

    def revisions(self, batch_id: int) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn.execute(
            "SELECT revision, digest, source_name, source_sha256, imported_at FROM table_revisions "
            "WHERE batch_id = ? ORDER BY revision", (batch_id,))]

    # ------------------------------------------------------------------ units and assignments

    def sync_units(self, units: Iterable[UnitSpec], now: dt.datetime) -> None:
        """Upsert the registry from config.toml (by name); units no longer listed become inactive."""
        with self.transaction():
            names = []
            for u in units:
                names.append(u.name)
                self.conn.execute(
                    "INSERT INTO units(name, kind, emails_json, cc_json, aliases_json, contact, phone, active, "
                    "updated_at) VALUES (?,?,?,?,?,?,?,1,?) ON CONFLICT(name) DO UPDATE SET kind=excluded.kind, "
                    "emails_json=excluded.emails_json, cc_json=excluded.cc_json, aliases_json=excluded.aliases_json, "
                    "contact=excluded.contact, phone=excluded.phone, active=1, updated_at=excluded.updated_at "
                    "WHERE units.kind IS NOT excluded.kind OR units.emails_json IS NOT excluded.emails_json "
                    "OR units.cc_json IS NOT excluded.cc_json OR units.aliases_json IS NOT excluded.aliases_json "
                    "OR units.contact IS NOT excluded.contact OR units.phone IS NOT excluded.phone "
                    "OR units.active = 0",
                    (u.name, u.kind, _j(list(u.emails)), _j(list(u.cc)), _j(list(u.aliases)), u.contact, u.phone,
                     clock.iso(now)),
                )
            if names:
                marks = ",".join("?" * len(names))
                self.conn.execute(f"UPDATE units SET active = 0 WHERE active = 1 AND name NOT IN ({marks})", names)

    def unit_ids(self) -> dict[str, int]:
        return {r[0]: r[1] for r in self.conn.execute("SELECT name, id FROM units")}

    def _unit(self, r: sqlite3.Row) -> UnitRow:
        return UnitRow(r["id"], r["name"], r["kind"], tuple(json.loads(r["emails_json"])),
                       tuple(json.loads(r["cc_json"])), tuple(json.loads(r["aliases_json"])), r["contact"], r["phone"])

    def units(self, active_only: bool = True) -> list[UnitRow]:
        sql = "SELECT * FROM units" + (" WHERE active = 1" if active_only else "") + " ORDER BY id"
        return [self._unit(r) for r in self.conn.execute(sql)]

    def unit(self, unit_id: int) -> UnitRow | None:
        r = self.conn.execute("SELECT * FROM units WHERE id = ?", (unit_id,)).fetchone()
        return self._unit(r) if r else None

    def unit_by_name(self, name: str) -> UnitRow | None:
        r = self.conn.execute("SELECT * FROM units WHERE name = ?", (name,)).fetchone()
        return self._unit(r) if r else None

    def assignments(self, batch_id: int, unit_id: int | None = None) -> list[dict[str, Any]]:
        """Rows of (task, unit, unit_id, role, note) ordered by task then assignment order."""
        sql = ("SELECT a.task_number AS task, u.name AS unit, a.unit_id, a.role, a.note FROM assignments a "
               "JOIN units u ON u.id = a.unit_id WHERE a.batch_id = ?")
        params: list[Any] = [batch_id]
        if unit_id is not None:
            sql += " AND a.unit_id = ?"
            params.append(unit_id)
        sql += " ORDER BY a.task_number, a.rowid"
        return [dict(r) for r in self.conn.execute(sql, params)]

    def roles(self, batch_id: int) -> dict[int, dict[int, str]]:
        """unit id → task number → role, for the whole batch (one plain query: collect needs only
        this, and a province batch has a hundred thousand assignments)."""
        out: dict[int, dict[int, str]] = {}
        for unit_id, task, role in self.conn.execute(
                "SELECT unit_id, task_number, role FROM assignments WHERE batch_id = ?", (batch_id,)):
            got = out.get(unit_id)
            if got is None:
                got = out[unit_id] = {}
            got[task] = role
        return out

    def assigned_units(self, batch_id: int) -> list[UnitRow]:
        """Units with at least one assignment in the batch, in registry order."""
        return [self._unit(r) for r in self.conn.execute(
            "SELECT * FROM units WHERE id IN (SELECT DISTINCT unit_id FROM assignments WHERE batch_id = ?) "
            "ORDER BY id", (batch_id,))]

    # ------------------------------------------------------------------ layouts and issued workbooks

    def save_layout(self, version: str, spec: dict[str, Any], now: dt.datetime) -> None:
        self.conn.execute(
            "INSERT OR IGNORE INTO layouts(version, spec_json, created_at) VALUES (?, ?, ?)",
            (version, json.dumps(spec, ensure_ascii=False), clock.iso(now)),
        )

    def layout(self, version: str) -> dict[str, Any] | None:
        r = self.conn.execute("SELECT spec_json FROM layouts WHERE version = ?", (version,)).fetchone()
        return json.loads(r[0]) if r else None

    def record_issue(self, batch_id: int, unit_id: int, issued_at: dt.datetime, template_version: str,
                     task_numbers: Sequence[int], path: str | None, sha256: str | None,
                     purpose: str = "build") -> None:
        self.conn.execute(
            "INSERT INTO issues(batch_id, unit_id, issued_at, template_version, tasks_json, path, sha256, purpose) "
            "VALUES (?,?,?,?,?,?,?,?)",
            (batch_id, unit_id, clock.iso(issued_at), template_version, _j(list(task_numbers)), path, sha256,
             purpose),
        )

    # ------------------------------------------------------------------ submissions and answers

    def submission_by_sha(self, sha256: str) -> dict[str, Any] | None:
        r = self.conn.execute("SELECT * FROM submissions WHERE sha256 = ?", (sha256,)).fetchone()
        return dict(r) if r else None

    def submissions_by_sha(self, shas: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The submissions of many files at once (SHA-256 → row; absent when never seen).

        ``collect`` asks once per run rather than once per file: a run over a full inbox is
        mostly new files, and a query each is a noticeable share of a small file's time.
        """
        wanted = list(dict.fromkeys(shas))
        out: dict[str, dict[str, Any]] = {}
        for i in range(0, len(wanted), 500):
            chunk = wanted[i:i + 500]
            sql = f"SELECT * FROM submissions WHERE sha256 IN ({','.join('?' * len(chunk))})"
            out.update((r["sha256"], dict(r)) for r in self.conn.execute(sql, chunk))
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
        responses: Sequence[dict[str, Any]] = (),
        problems: Sequence[dict[str, Any]] = (),
        quarantine_path: str | None = None,
        replaces: int | None = None,
    ) -> int:
        """Store one returned file, its answers and its problems in one transaction.

        ``responses``: dicts with task_number, status, progress, completed_on, evidence, issues.
        ``problems``: dicts with message and optionally severity, sheet, cell, task_number, field.
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
            cur = self.conn.execute(
                "INSERT INTO submissions(sha256, batch_id, unit_id, file_name, archive_path, received_at, "
                "processed_at, outcome, reason, signed, source, message_id, sender, contact, phone, rows_accepted, "
                "problem_count, quarantine_path) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (sha256, batch_id, unit_id, file_name, archive_path, received, clock.iso(now), outcome, reason,
                 int(signed), source, message_id, sender, contact, phone,
                 len(responses) if outcome == "accepted" else 0, len(problems), quarantine_path),
            )
            sid = int(cur.lastrowid or 0)
            if outcome == "accepted" and batch_id is not None and unit_id is not None:
                # Set-based (three statements, not two per row): collect stores thousands of rows a run.
                self._insert_rows(
                    "INSERT INTO responses(submission_id, batch_id, unit_id, task_number, status, progress, "
                    "completed_on, evidence, issues, received_at) VALUES ",
                    [(sid, batch_id, unit_id, r["task_number"], r["status"], r.get("progress") or "",
                      r.get("completed_on"), r.get("evidence") or "", r.get("issues") or "", received)
                     for r in responses],
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
                "INSERT INTO problems(submission_id, severity, sheet, cell, task_number, field, message) VALUES ",
                [(sid, p.get("severity", "error"), p.get("sheet"), p.get("cell"), p.get("task_number"),
                  p.get("field"), p["message"]) for p in problems],
            )
        return sid

    def _insert_rows(self, head: str, rows: Sequence[tuple[Any, ...]]) -> None:
        """``INSERT … VALUES (…),(…),…``: many rows per statement.

        ``executemany`` runs one statement per row and lets go of the interpreter lock for each;
        while the collecting process's helper threads (worker pipes, archive copies) wait for it,
        every row then costs a thread switch, which took as long as storing the row.  One
        statement per chunk keeps it at one.  Chunks stay under the 999 parameters of the oldest
        SQLite builds.
        """
        if not rows:
            return
        width = len(rows[0])
        group = "(" + ",".join("?" * width) + ")"
        step = max(1, 999 // width)
        for i in range(0, len(rows), step):
            chunk = rows[i:i + step]
            self.conn.execute(head + ",".join([group] * len(chunk)), [v for row in chunk for v in row])

    def submissions(self, batch_id: int | None = None) -> list[dict[str, Any]]:
        sql = ("SELECT s.*, u.name AS unit FROM submissions s LEFT JOIN units u ON u.id = s.unit_id"
               + (" WHERE s.batch_id = ?" if batch_id is not None else "") + " ORDER BY s.received_at, s.id")
        return [dict(r) for r in self.conn.execute(sql, (batch_id,) if batch_id is not None else ())]

    def problems(self, batch_id: int | None = None, submission_id: int | None = None) -> list[dict[str, Any]]:
        sql = ("SELECT p.*, s.file_name, s.received_at, u.name AS unit FROM problems p "
               "JOIN submissions s ON s.id = p.submission_id LEFT JOIN units u ON u.id = s.unit_id WHERE 1=1")
        params: list[Any] = []
        if batch_id is not None:
            sql += " AND (s.batch_id = ? OR s.batch_id IS NULL)"
            params.append(batch_id)
        if submission_id is not None:
            sql += " AND p.submission_id = ?"
            params.append(submission_id)
        return [dict(r) for r in self.conn.execute(sql + " ORDER BY p.id", params)]

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


def _j(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
