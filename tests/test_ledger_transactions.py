"""Transactions: nested ones are savepoints; grouped ones share commits but each stays atomic."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from automation.ledger import MIGRATIONS, Ledger


@pytest.fixture
def led(tmp_path: Path):
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    ledger.execute("CREATE TABLE t (v TEXT)")
    yield ledger
    ledger.close()


def _values(path: Path) -> list[str]:
    """What another connection sees (committed rows only)."""
    conn = sqlite3.connect(str(path))
    try:
        return [r[0] for r in conn.execute("SELECT v FROM t ORDER BY rowid")]
    finally:
        conn.close()


def test_a_failed_nested_transaction_undoes_only_its_own_writes(led):
    with led.transaction():
        led.execute("INSERT INTO t VALUES ('outer')")
        with pytest.raises(RuntimeError), led.transaction():
            led.execute("INSERT INTO t VALUES ('inner')")
            raise RuntimeError("inner failed")
        led.execute("INSERT INTO t VALUES ('after')")
    assert _values(led.path) == ["outer", "after"]


def test_grouped_units_commit_together_and_a_failed_unit_is_undone_alone(led):
    with led.grouped():
        with led.transaction():
            led.execute("INSERT INTO t VALUES ('a')")
        assert _values(led.path) == [], "not committed until the group commits"
        with pytest.raises(RuntimeError), led.transaction():
            led.execute("INSERT INTO t VALUES ('b')")
            raise RuntimeError("this file failed")
        with led.transaction():
            led.execute("INSERT INTO t VALUES ('c')")
        led.commit()
        assert _values(led.path) == ["a", "c"]
        with led.transaction():
            led.execute("INSERT INTO t VALUES ('d')")
        led.rollback()
        with led.transaction():
            led.execute("INSERT INTO t VALUES ('e')")
    assert _values(led.path) == ["a", "c", "e"], "the end of the group commits what is left"
    assert not led.conn.in_transaction


def test_a_group_ended_by_an_exception_keeps_the_units_that_completed(led):
    with pytest.raises(KeyboardInterrupt), led.grouped():
        with led.transaction():
            led.execute("INSERT INTO t VALUES ('done')")
        with led.transaction():
            led.execute("INSERT INTO t VALUES ('half')")
            raise KeyboardInterrupt
    assert _values(led.path) == ["done"]


def test_the_group_takes_the_write_lock_only_when_it_writes(led, tmp_path):
    other = sqlite3.connect(str(led.path), timeout=0)
    try:
        with led.grouped():
            other.execute("INSERT INTO t VALUES ('other')")  # no lock held yet: another writer gets in
            other.commit()
            with led.transaction():
                led.execute("INSERT INTO t VALUES ('mine')")
            with pytest.raises(sqlite3.OperationalError):
                other.execute("INSERT INTO t VALUES ('blocked')")
            led.commit()
            other.execute("INSERT INTO t VALUES ('free again')")
            other.commit()
    finally:
        other.close()
    assert _values(led.path) == ["other", "mine", "free again"]


def test_migration_3_drops_the_unused_responses_index(tmp_path):
    ledger = Ledger(tmp_path / "l.sqlite3")
    try:
        assert ledger.schema_version == len(MIGRATIONS) >= 3
        names = {r[0] for r in ledger.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert "responses_unit_task" not in names and "responses_received" in names
    finally:
        ledger.close()


def test_a_table_imported_before_due_dates_existed_is_still_the_same_table(sample_path):
    """The digest of a table without dates is what it was before the record had ``due_date``."""
    import hashlib
    import json

    from automation.ledger import tasks_digest
    from automation.tasks.load import load_tasks

    tasks = load_tasks(sample_path).tasks
    old = [{k: v for k, v in t.to_json().items() if k != "due_date"} for t in tasks]
    before = hashlib.sha256(json.dumps(old, ensure_ascii=False, sort_keys=True).encode("utf-8")).hexdigest()
    assert tasks_digest(tasks) == before
