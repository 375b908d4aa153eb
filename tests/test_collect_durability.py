"""Nothing is lost: an input leaves the inbox only after its copy and its ledger rows are durable; a file that
cannot be read now (locked by WPS/Excel on Windows, still being written) is skipped and retried, never lost."""

from __future__ import annotations

import dataclasses
import logging
import os
import sqlite3
from pathlib import Path

import pytest
from collect_kit import fill_workbook, issued, listing, tasks_of

from automation.collect.pipeline import collect_bytes, collect_file, collect_paths, result_line, summarize
from automation.errors import AutomationError
from automation.ledger import Ledger
from automation.workspace import Workspace

UNIT = "市财政局"
posix_only = pytest.mark.skipif(os.name == "nt", reason="folders are fsynced on POSIX only")


@pytest.fixture
def filled(config, ledger, now, tmp_path) -> list[Path]:
    """Two filled workbooks of the unit (different answers, so different bytes)."""
    blank = issued(config, ledger, UNIT, now, tmp_path / "issued.xlsx")
    t1 = tasks_of(ledger, config, UNIT)[0]
    out = []
    for i in range(2):
        path = tmp_path / f"回传{i}.xlsx"
        fill_workbook(blank, path, {t1: {"落实情况": "推进中", "工作进展及成效": f"第{i}次"}})
        out.append(path)
    return out


def test_ledger_commits_are_durable_on_return(tmp_path):
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    try:
        assert ledger.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert ledger.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    finally:
        ledger.close()


class _Journal:
    """Records fsyncs (by path) and inbox removals, checking the ledger from outside at each removal."""

    def __init__(self, monkeypatch, ledger_path: Path) -> None:
        self.events: list[tuple[str, str]] = []
        self.ledger_path = ledger_path
        real_fsync, real_unlink = os.fsync, os.unlink

        def fsync(fd: int) -> None:  # by inode: a copy is fsynced under its temporary name, then renamed
            self.events.append(("fsync", os.fstat(fd).st_ino))
            real_fsync(fd)

        def unlink(path, *args, **kw) -> None:
            conn = sqlite3.connect(str(self.ledger_path))
            try:
                shas = {r[0] for r in conn.execute("SELECT sha256 FROM submissions")}
            finally:
                conn.close()
            self.events.append(("unlink", str(path), shas))
            real_unlink(path, *args, **kw)

        monkeypatch.setattr(os, "fsync", fsync)
        monkeypatch.setattr(os, "unlink", unlink)

    def synced(self, path: Path) -> int:
        """Index of the fsync of ``path`` (fails if there was none)."""
        ino = path.stat().st_ino
        hits = [i for i, e in enumerate(self.events) if e[0] == "fsync" and e[1] == ino]
        assert hits, f"{path} was never fsynced: {self.events}"
        return hits[-1]


@posix_only
def test_single_file_leaves_the_inbox_only_after_copy_folder_and_commit_are_durable(
        config, ledger, now, ws, filled, monkeypatch):
    good = ws.inbox / "good.xlsx"
    good.write_bytes(filled[0].read_bytes())
    junk = ws.inbox / "junk.xlsx"
    junk.write_bytes(b"not a workbook")
    journal = _Journal(monkeypatch, ws.ledger_path)

    accepted = collect_file(config, ledger, good, now)
    quarantined = collect_file(config, ledger, junk, now)
    assert (accepted.outcome, quarantined.outcome) == ("accepted", "quarantined")
    assert listing(ws.inbox) == []
    for result, copy in ((accepted, Path(accepted.archive_path)),
                         (quarantined, Path(quarantined.quarantine_path))):
        removal = next(i for i, e in enumerate(journal.events)
                       if e[0] == "unlink" and Path(e[1]).name in (good.name, junk.name)
                       and result.sha256 in e[2])
        assert journal.synced(copy) < removal
        assert journal.synced(copy.parent) < removal, "the rename into the folder must be durable too"
    # the reason file next to the quarantined copy is made durable as well
    journal.synced(Path(quarantined.quarantine_path + ".原因.txt"))


@posix_only
def test_collect_bytes_returns_only_when_its_copy_is_durable(config, ledger, now, filled, monkeypatch):
    """IMAP intake moves the message as soon as collect_bytes returns."""
    journal = _Journal(monkeypatch, Workspace(config.workspace).ledger_path)
    result = collect_bytes(config, ledger, "a.xlsx", filled[0].read_bytes(), now,
                           sender=ledger.unit_by_name(UNIT).emails[0])
    assert result.outcome == "accepted"
    archive = Path(result.archive_path)
    journal.synced(archive)
    journal.synced(archive.parent)


def _refuse(monkeypatch, attr: str, victim: str) -> None:
    """Make ``Path.<attr>`` raise PermissionError for the file named ``victim`` (a file locked on Windows)."""
    real = getattr(Path, attr)

    def locked(self, *args, **kw):
        if self.name == victim:
            raise PermissionError(13, "另一个程序正在使用此文件，进程无法访问。", str(self))
        return real(self, *args, **kw)

    monkeypatch.setattr(Path, attr, locked)


def test_a_locked_inbox_file_is_skipped_left_in_place_and_collected_next_run(
        config, ledger, now, ws, filled, monkeypatch):
    for path in filled:
        (ws.inbox / path.name).write_bytes(path.read_bytes())
    locked = filled[1].name
    with monkeypatch.context() as m:
        _refuse(m, "open", locked)
        results = {r.file_name: r for r in collect_paths(config, ledger, None, now)}
    skipped = results[locked]
    assert skipped.outcome == "skipped" and skipped.submission_id is None
    assert "无法读取" in skipped.reason and "下次" in skipped.reason
    assert "下次" in result_line(skipped)
    assert results[filled[0].name].outcome == "accepted"
    totals = summarize(list(results.values()))["totals"]
    assert (totals["accepted"], totals["skipped"], totals["quarantined"]) == (1, 1, 0)
    assert listing(ws.inbox) == [locked], "the locked file stays for the next run"
    assert len(ledger.submissions()) == 1 and listing(ws.quarantine) == []

    (again,) = collect_paths(config, ledger, None, now)
    assert (again.file_name, again.outcome) == (locked, "accepted")
    assert listing(ws.inbox) == []


def test_files_are_read_as_the_run_reaches_them(config, ledger, now, ws, filled):
    """A big inbox is not read into memory at the start: a file taken away while the run works
    on earlier ones is skipped (nothing stored, nothing lost), the rest go on."""
    (ws.inbox / "00-回传.xlsx").write_bytes(filled[0].read_bytes())
    for i in range(1, 40):
        (ws.inbox / f"{i:02d}-其他.xlsx").write_bytes(b"not a workbook %d" % i)
    taken = ws.inbox / "39-其他.xlsx"
    seen: list[str] = []

    def progress(done: int, total: int, result) -> None:
        seen.append(result.file_name)
        if done == 1:
            taken.rename(ws.root / taken.name)  # moved away by someone, mid-run

    results = {r.file_name: r for r in collect_paths(config, ledger, None, now, progress=progress)}
    assert seen[0] == "00-回传.xlsx" and results["00-回传.xlsx"].outcome == "accepted"
    assert results[taken.name].outcome == "skipped" and "无法读取" in results[taken.name].reason
    assert sum(r.outcome == "quarantined" for r in results.values()) == 38
    assert len(ledger.submissions()) == 39 and not (ws.quarantine / taken.name).exists()


def test_a_file_that_grew_after_the_run_started_is_judged_by_what_is_read(config, ledger, now, ws):
    """The stat that ordered the files may be minutes old (a file still being copied in): what decides
    "too big to hold" is what is read, and no more than the limit is ever held."""
    import hashlib

    from automation.collect import pipeline
    from automation.collect.inputs import load_input, stat_input

    config = dataclasses.replace(config, collect=dataclasses.replace(config.collect, max_file_mb=0.01))
    run = pipeline._Run(config, ledger, now)
    path = ws.inbox / "还在写入.xlsx"
    path.write_bytes(b"PK\x03\x04")
    item = stat_input(path, now, run.in_inbox)
    assert item.size == 4
    content = b"PK\x03\x04" + bytes(50_000)
    path.write_bytes(content)
    load_input(item, run.limits.max_file_bytes)
    assert item.data is None and item.size == len(content)
    assert item.sha256 == hashlib.sha256(content).hexdigest()


def test_a_locked_file_given_alone_is_skipped(config, ledger, now, filled, monkeypatch):
    _refuse(monkeypatch, "open", filled[0].name)
    result = collect_file(config, ledger, filled[0], now)
    assert result.outcome == "skipped" and "无法读取" in result.reason
    assert ledger.submissions() == [] and filled[0].exists()


def test_a_file_that_cannot_be_removed_does_not_stop_the_run(config, ledger, now, ws, filled, monkeypatch, caplog):
    for path in filled:
        (ws.inbox / path.name).write_bytes(path.read_bytes())
    stuck = filled[0].name
    with monkeypatch.context() as m, caplog.at_level(logging.WARNING, logger="automation.collect.storage"):
        _refuse(m, "unlink", stuck)
        results = collect_paths(config, ledger, None, now)
    assert [r.outcome for r in results] == ["accepted", "accepted"]
    assert listing(ws.inbox) == [stuck]
    assert any(stuck in rec.getMessage() for rec in caplog.records)
    # The next run sees the same bytes again: a duplicate, and this time it leaves the inbox.
    (again,) = collect_paths(config, ledger, None, now)
    assert (again.file_name, again.outcome) == (stuck, "duplicate")
    assert listing(ws.inbox) == []


def test_a_too_big_file_locked_before_its_quarantine_copy_is_skipped(config, ledger, now, ws, monkeypatch):
    """Too big to hold in memory, it is copied from disk to quarantine; locked by then, it is skipped, not lost."""
    config = dataclasses.replace(config, collect=dataclasses.replace(config.collect, max_file_mb=0.01))
    big = ws.inbox / "大文件.xlsx"
    big.write_bytes(b"PK\x03\x04" + bytes(20000))
    real_open = open

    def locked_open(file, *args, **kw):
        if Path(file).name == big.name:
            raise PermissionError(13, "另一个程序正在使用此文件，进程无法访问。", str(file))
        return real_open(file, *args, **kw)

    with monkeypatch.context() as m:
        m.setattr("automation.collect.storage.open", locked_open, raising=False)  # the copy's open only, not hashing
        (result,) = collect_paths(config, ledger, None, now)
    assert result.outcome == "skipped" and "无法读取" in result.reason
    assert ledger.submissions() == [] and listing(ws.quarantine) == [] and big.exists()
    (again,) = collect_paths(config, ledger, None, now)
    assert again.outcome == "quarantined" and "文件过大" in again.reason and not big.exists()


@posix_only
def test_batched_run_syncs_copies_and_ledger_before_emptying_the_inbox(config, ledger, now, ws, filled, monkeypatch):
    """A folder run commits without an fsync each (synchronous=NORMAL) and makes the copies and the
    ledger's WAL durable with one sync before it removes any inbox file; FULL is restored after."""
    for path in filled:
        (ws.inbox / path.name).write_bytes(path.read_bytes())
    events: list[str] = []
    real_sync, real_unlink = os.sync, os.unlink
    monkeypatch.setattr(os, "sync", lambda: (events.append("sync"), real_sync())[1])

    def unlink(path, *args, **kw):
        events.append("unlink")
        real_unlink(path, *args, **kw)

    monkeypatch.setattr(os, "unlink", unlink)
    seen_modes: list[int] = []
    real_record = ledger.record_submission

    def record(**kw):
        seen_modes.append(ledger.conn.execute("PRAGMA synchronous").fetchone()[0])
        return real_record(**kw)

    monkeypatch.setattr(ledger, "record_submission", record)
    results = collect_paths(config, ledger, None, now)
    assert [r.outcome for r in results] == ["accepted", "accepted"]
    assert seen_modes == [1, 1]                                   # NORMAL while batching
    assert events.index("sync") < events.index("unlink")          # durable before any removal
    assert listing(ws.inbox) == []
    assert ledger.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL again


def test_a_failed_archive_copy_stores_nothing_it_would_point_at_and_removes_no_input(
        config, ledger, now, ws, filled, monkeypatch):
    """A batched copy that fails (disk full) must not leave rows that point at it, and every input stays
    in the inbox for the next run."""
    import automation.collect.storage as storage

    for path in filled:
        (ws.inbox / path.name).write_bytes(path.read_bytes())
    real = storage.atomic_write_bytes
    calls = []

    def failing(target, data, **kw):
        calls.append(target)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(target, data, **kw)

    with monkeypatch.context() as m:
        m.setattr(storage, "atomic_write_bytes", failing)
        with pytest.raises(OSError, match="No space"):
            collect_paths(config, ledger, None, now)
    stored = {r[0]: r[1] for r in ledger.execute("SELECT file_name, archive_path FROM submissions")}
    assert "回传1.xlsx" not in stored, "the rows of the file whose copy failed are not kept"
    for path in stored.values():  # what was committed points at a copy that exists
        assert (ws.root / path).is_file()
    assert sorted(listing(ws.inbox)) == sorted(p.name for p in filled)
    results = collect_paths(config, ledger, None, now)
    assert sorted(r.outcome for r in results) == sorted(["accepted", "duplicate" if stored else "accepted"])
    assert listing(ws.inbox) == []
    for r in results:
        assert Path(r.archive_path).is_file()


def test_temporary_copies_left_by_a_killed_run_are_removed(config, ledger, now, ws, filled):
    gone_pid = 4_000_000  # above any pid_max: no such process
    stale = [ws.archive / f".tmp-{gone_pid}-0.xlsx", ws.quarantine / f".tmp-{gone_pid}-1.xlsx"]
    mine = ws.archive / f".tmp-{os.getpid()}-999999.xlsx"  # this process's own (in use) is kept
    for path in (*stale, mine):
        path.write_bytes(b"half a copy")
    (ws.inbox / filled[0].name).write_bytes(filled[0].read_bytes())
    assert [r.outcome for r in collect_paths(config, ledger, None, now)] == ["accepted"]
    assert not any(p.exists() for p in stale)
    assert mine.exists()


def test_a_lost_archive_copy_is_restored_from_the_input_still_in_the_inbox(config, ledger, now, ws, filled, caplog):
    """A power cut may keep a commit but lose the copy written just before it; the input is still in the inbox
    then (it leaves only after the sync), so the next run, seeing a duplicate, puts the copy back."""
    (ws.inbox / filled[0].name).write_bytes(filled[0].read_bytes())
    first = collect_paths(config, ledger, None, now)[0]
    archive = Path(first.archive_path)
    archive.unlink()
    (ws.inbox / filled[0].name).write_bytes(filled[0].read_bytes())
    with caplog.at_level(logging.WARNING, logger="automation.collect.storage"):
        again = collect_paths(config, ledger, None, now)[0]
    assert again.outcome == "duplicate" and again.submission_id == first.submission_id
    assert archive.read_bytes() == filled[0].read_bytes()
    assert "restored" in caplog.text
    assert listing(ws.inbox) == []


def _all_in_inbox(ws, filled) -> None:
    for path in filled:
        (ws.inbox / path.name).write_bytes(path.read_bytes())


def test_a_group_the_database_undoes_by_itself_removes_no_input(config, ledger, now, ws, filled, monkeypatch):
    """Some errors (disk full, I/O, interrupt) make SQLite undo the whole open transaction, not just the
    failing file's savepoint: the files before it in the group lost their rows, so they must stay in the inbox."""
    real = Ledger.record_submission
    calls = []

    def interrupted(self, **kw):
        calls.append(1)
        if len(calls) != 2:
            return real(self, **kw)
        armed = []
        self.conn.set_trace_callback(lambda sql: armed.append(1) if sql.lstrip().upper().startswith("INSERT") else None)
        self.conn.set_progress_handler(lambda: 1 if armed else 0, 1)
        try:
            return real(self, **kw)
        finally:
            self.conn.set_progress_handler(None, 0)
            self.conn.set_trace_callback(None)

    _all_in_inbox(ws, filled)
    monkeypatch.setattr(Ledger, "record_submission", interrupted)
    with pytest.raises((sqlite3.OperationalError, AutomationError)):
        collect_paths(config, ledger, None, now)
    stored = {r[0] for r in ledger.execute("SELECT file_name FROM submissions")}
    assert "回传1.xlsx" not in stored
    assert set(listing(ws.inbox)) >= {p.name for p in filled if p.name not in stored}, "an input left unstored"
    monkeypatch.undo()
    outcomes = {r.file_name: r.outcome for r in collect_paths(config, ledger, None, now)}
    assert outcomes["回传1.xlsx"] == "accepted" and set(outcomes.values()) <= {"accepted", "duplicate"}
    assert listing(ws.inbox) == []


def test_a_failed_commit_removes_no_input(config, ledger, now, ws, filled, monkeypatch):
    import automation.collect.pipeline as collect

    _all_in_inbox(ws, filled)
    monkeypatch.setattr(collect, "_FLUSH_EVERY", 1)  # flush after every file, as after the 64th
    real = ledger.conn

    class FullDisk:
        armed = True

        def execute(self, sql, *args):
            if sql == "COMMIT" and FullDisk.armed:
                FullDisk.armed = False
                raise sqlite3.OperationalError("database or disk is full")
            return real.execute(sql, *args)

        def __getattr__(self, name):
            return getattr(real, name)

    ledger.conn = FullDisk()
    try:
        with pytest.raises(sqlite3.OperationalError, match="full"):
            collect_paths(config, ledger, None, now)
    finally:
        ledger.conn = real
    assert not real.in_transaction
    stored = {r[0] for r in ledger.execute("SELECT file_name FROM submissions")}
    assert set(listing(ws.inbox)) >= {p.name for p in filled if p.name not in stored}, "an input left unstored"
    assert [r.outcome for r in collect_paths(config, ledger, None, now)].count("accepted") == 2 - len(stored)
    assert listing(ws.inbox) == []


def test_a_leftover_temporary_copy_under_this_process_id_does_not_block_a_run(config, ledger, now, ws, filled):
    """Process ids are reused (containers, service restarts): a killed run's leftover with the same pid must not
    collide with the copies of this run."""
    for n in range(3):
        (ws.archive / f".tmp-{os.getpid()}-{n}.xlsx").write_bytes(b"half a copy")
    (ws.inbox / filled[0].name).write_bytes(filled[0].read_bytes())
    assert [r.outcome for r in collect_paths(config, ledger, None, now)] == ["accepted"]


def test_the_write_lock_is_not_held_while_waiting_for_a_parse(config, ledger, now, ws, filled, monkeypatch):
    """Another writer (the service's IMAP intake) must not wait for a slow parse in a collect run."""
    from automation.collect.safety import ParserPool

    _all_in_inbox(ws, filled)
    seen = []
    real = ParserPool.result

    def result(self, ticket):
        other = sqlite3.connect(str(ws.ledger_path), timeout=0)
        try:
            other.execute("BEGIN IMMEDIATE")  # raises "database is locked" if collect holds the lock
            seen.append(other.execute("SELECT COUNT(*) FROM submissions").fetchone()[0])
            other.execute("ROLLBACK")
        finally:
            other.close()
        return real(self, ticket)

    monkeypatch.setattr(ParserPool, "ready", lambda self, ticket: False)  # as if every parse were slow
    monkeypatch.setattr(ParserPool, "result", result)
    assert [r.outcome for r in collect_paths(config, ledger, None, now)] == ["accepted", "accepted"]
    assert max(seen) >= 1, "the lock was free while awaiting a parse after a file had been stored"


@posix_only
def test_archive_and_quarantine_copies_get_the_permissions_of_every_output(config, ledger, now, ws, filled):
    """One policy (automation.fsutil): what the umask gives any new file, copies of originals included, so
    the office can open the quarantine from its shared folder."""
    junk = ws.inbox / "junk.xlsx"
    junk.write_bytes(b"not a workbook")
    accepted = collect_file(config, ledger, filled[0], now)
    quarantined = collect_file(config, ledger, junk, now)
    umask = os.umask(0o022)
    os.umask(umask)
    for copy in (accepted.archive_path, quarantined.quarantine_path, quarantined.quarantine_path + ".原因.txt"):
        assert Path(copy).stat().st_mode & 0o777 == 0o666 & ~umask, copy
