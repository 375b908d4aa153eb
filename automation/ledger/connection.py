"""The connection: WAL mode, durable commits, transactions, savepoints and group commit."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from automation import clock
from automation.errors import LedgerError
from automation.ledger.schema import MIGRATIONS
from automation.workspace import LEDGER_FILE

_GROUP_LOST = ("台账写入出错（如磁盘已满），数据库撤销了最近一组尚未提交的记录；这些文件仍在原处，"
               "排除故障后重新运行即可重新处理。")


class Connection:
    """One SQLite connection to the workspace ledger: durable, migrated, with nested transactions.

    The query mixins (one module per subject) build on it; :class:`automation.ledger.Ledger`
    combines them.
    """

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
    def open(cls, workspace: str | Path) -> Any:
        return cls(Path(workspace) / LEDGER_FILE)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Any:
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

    @contextmanager
    def deferred_durability(self) -> Iterator[None]:
        """Commits inside are atomic but not yet on disk when they return (``synchronous=NORMAL``).

        For a batch of work that makes its commits durable itself, at once (``collect`` runs
        ``os.sync`` before it removes any input), instead of paying an fsync per commit.  The
        usual ``FULL`` is restored when the block ends, also when it ends by an exception.
        """
        self.conn.execute("PRAGMA synchronous=NORMAL")
        try:
            yield
        finally:
            self.conn.execute("PRAGMA synchronous=FULL")

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

    @contextmanager
    def reading(self) -> Iterator[None]:
        """One consistent view of the ledger (a WAL snapshot) for every query inside the block.

        A report or status reads many queries; without this a ``collect`` committing in between
        would make its sheets disagree.  Inside a write transaction the block simply joins it.
        """
        if self.conn.in_transaction:
            yield
            return
        self.conn.execute("BEGIN")
        try:
            yield
        finally:
            self.conn.execute("COMMIT")

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Cursor:
        """Raw SQL, for tests and diagnostics only: library code calls the named query methods."""
        return self.conn.execute(sql, params)

    def event(self, kind: str, now: dt.datetime, **detail: Any) -> None:
        self.conn.execute(
            "INSERT INTO events(at, kind, detail) VALUES (?, ?, ?)",
            (clock.iso(now), kind, json.dumps(detail, ensure_ascii=False, default=str)),
        )

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


def activity_fingerprint(path: Path) -> str:
    """Row counts and last ids of the tables that change when anyone works in a ledger, read
    without writing (the demo uses it to know whether a folder is still an untouched demo)."""
    if not path.exists():
        return "no-ledger"
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        counts = [conn.execute(f"SELECT COUNT(*), IFNULL(MAX(id), 0) FROM {t}").fetchone()
                  for t in ("batches", "submissions", "messages", "issues", "events")]
    except sqlite3.Error:
        return "unreadable"
    finally:
        conn.close()
    return json.dumps(counts)


def _j(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
