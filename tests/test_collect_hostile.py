"""The hostile corpus: every file is quarantined with its reason, the run goes on, the ledger stays sound."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from collect_kit import corpus, fill_workbook, issued, listing, private_config, snapshot, tasks_of

from automation import clock
from automation.collect.pipeline import collect_bytes, collect_paths
from automation.collect.safety import WORKER_NICENESS, Limits, ParseFailed, ParserPool, Refused, precheck
from automation.ledger import open_workspace
from automation.tasks.importing import init_batch
from automation.workspace import Workspace

NOW = clock.parse("2021-11-01T09:30")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A workspace, its ledger, the corpus generated from its own genuine workbooks, two good files."""
    root = tmp_path_factory.mktemp("hostile")
    config = private_config(root)
    _ws, ledger = open_workspace(config)
    init_batch(config, ledger, NOW)
    entries = corpus.make_corpus(config, ledger, root / "corpus", NOW)
    good = root / "good"
    good.mkdir()
    for unit in ("市财政局", "市司法局"):
        blank = issued(config, ledger, unit, NOW, root / f"{unit}-blank.xlsx")
        t1 = tasks_of(ledger, config, unit)[0]
        fill_workbook(blank, good / f"{unit}.xlsx", {t1: {"落实情况": "推进中", "工作进展及成效": unit}})
    yield config, ledger, root, entries
    ledger.close()


def test_corpus_manifest_covers_every_attack(world):
    _config, _ledger, root, entries = world
    codes = {e["code"] for e in entries}
    assert {"zip_bomb", "xml_entity", "far_cell", "encrypted", "corrupt", "not_workbook", "formula", "forged",
            "old_batch", "unknown_batch", "unsupported", "empty", "pasted_metadata"} <= codes
    assert json.loads((root / "corpus" / "corpus.json").read_text(encoding="utf-8")) == entries
    assert any(e["file"].endswith(".xls") and e["code"] == "encrypted" for e in entries), "encrypted .xls fixture"


PRECHECKED = {"zip_bomb", "xml_entity", "far_cell", "encrypted", "corrupt", "not_workbook", "empty"}


def test_prechecks_refuse_before_any_parser(world):
    """The pre-check alone (no parser) refuses every container-level attack, with the right code."""
    _config, _ledger, root, entries = world
    for e in entries:
        if e["code"] not in PRECHECKED:
            continue
        with pytest.raises(Refused) as err:
            precheck((root / "corpus" / e["file"]).read_bytes(), e["file"], Limits())
        assert err.value.code == e["code"], e["file"]
        for word in e["words"]:
            assert word in err.value.reason, (e["file"], err.value.reason)


def test_whole_corpus_in_one_run(world):
    config, ledger, root, entries = world
    ws = Workspace(config.workspace)
    for e in entries:
        shutil.copy(root / "corpus" / e["file"], ws.inbox / e["file"])
    for f in (root / "good").iterdir():
        shutil.copy(f, ws.inbox / f.name)
    results = {r.file_name: r for r in collect_paths(config, ledger, None, NOW)}
    assert len(results) == len(entries) + 2
    for e in entries:
        r = results[e["file"]]
        assert r.outcome == "quarantined", (e["file"], r.reason)
        for word in e["words"]:
            assert word in r.reason, (e["file"], r.reason)
        q = Path(r.quarantine_path)
        assert q.parent == ws.quarantine and q.read_bytes() == (root / "corpus" / e["file"]).read_bytes()
        assert r.reason in Path(str(q) + ".原因.txt").read_text(encoding="utf-8")
    formula = results["formula_hyperlink.xlsx"]
    assert formula.unit == "市财政局" and formula.problems and formula.problems[0].cell
    assert [results[f"{u}.xlsx"].outcome for u in ("市财政局", "市司法局")] == ["accepted", "accepted"]
    assert listing(ws.inbox) == []

    conn = sqlite3.connect(str(ws.ledger_path))
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    conn.close()
    batch = ledger.require_batch(config.batch.title)
    reported = {r.unit for r in ledger.current_answers(batch.id) if r.submission_id is not None}
    assert reported == {"市财政局", "市司法局"}
    subs = ledger.submissions()
    assert sum(s.outcome == "quarantined" for s in subs) == len(entries)
    assert ledger.execute("SELECT COUNT(*) FROM responses").fetchone()[0] == 2

    # Running again over the same files (now outside the inbox) changes nothing.
    before = snapshot(ws.ledger_path), listing(ws.archive), listing(ws.quarantine)
    again = collect_paths(config, ledger, [root / "corpus" / e["file"] for e in entries] + [root / "good"], NOW)
    assert {r.outcome for r in again} == {"duplicate"}
    assert (snapshot(ws.ledger_path), listing(ws.archive), listing(ws.quarantine)) == before
    assert sorted(listing(root / "corpus")) == sorted([e["file"] for e in entries] + ["corpus.json"])


def test_relabelled_workbook_by_mail_is_accepted_for_its_real_unit_but_flagged(world):
    """Unit A mails unit B's genuine workbook: accepted for B (the signature says so), flagged with A."""
    config, ledger, root, _entries = world
    a, b = ledger.unit_by_name("市财政局"), ledger.unit_by_name("市司法局")
    blank = issued(config, ledger, b.name, NOW, root / "b-again.xlsx")
    t1 = tasks_of(ledger, config, b.name)[1]
    fill_workbook(blank, root / "b-by-a.xlsx", {t1: {"落实情况": "推进中", "存在问题及下步打算": "代报"}})
    r = collect_bytes(config, ledger, "司法局.xlsx", (root / "b-by-a.xlsx").read_bytes(), NOW, sender=a.emails[0])
    assert (r.outcome, r.unit) == ("accepted", b.name)
    assert any(a.name in p.message and p.severity == "warning" for p in r.problems)


@pytest.fixture(params=["select", "threads"])
def io_mode(request) -> str:
    """How the pool talks to its workers: both ways are tested (Windows uses threads)."""
    if request.param == "select" and os.name != "posix":
        pytest.skip("select() takes no pipes on Windows")
    return request.param


@contextmanager
def scripted_pool(script: str, io_mode: str, timeout: float, workers: int = 1) -> Iterator[ParserPool]:
    """A pool whose workers run ``script`` (a stand-in that misbehaves on purpose), closed at the end."""
    pool = ParserPool(Limits(parse_timeout=timeout), argv=[sys.executable, "-c", script], workers=workers,
                      io_mode=io_mode)
    try:
        yield pool
    finally:
        pool.close()


def test_worker_survives_a_native_abort(world, io_mode):
    """With the far-cell pre-check disabled, calamine aborts the worker; the pool restarts it."""
    _config, _ledger, root, _entries = world
    pool = ParserPool(Limits(max_rows=2_000_000, max_cols=20_000, parse_memory_mb=1024), workers=1, io_mode=io_mode)
    try:
        with pytest.raises(ParseFailed) as err:
            pool.parse((root / "corpus" / "far_cell.xlsx").read_bytes(), "far_cell.xlsx")
        assert err.value.code == "crash" and "异常退出" in err.value.reason
        book = pool.parse((root / "good" / "市财政局.xlsx").read_bytes(), "good.xlsx")
        assert "任务清单" in [s.name for s in book.sheets]
        assert pool.restarts == 1
        # r='XFD1048576' in single quotes aborts calamine just the same (so the pre-check must see it).
        with pytest.raises(ParseFailed) as err:
            pool.parse((root / "corpus" / "far_cell_quoted.xlsx").read_bytes(), "far_cell_quoted.xlsx")
        assert err.value.code == "crash"
    finally:
        pool.close()


@pytest.mark.skipif(not hasattr(os, "getpriority"), reason="POSIX priorities")
def test_workers_run_below_the_collecting_process(world, io_mode):
    """The collecting process is the pipeline's narrow part: the scheduler must prefer it."""
    _config, _ledger, root, _entries = world
    pool = ParserPool(Limits(), workers=1, io_mode=io_mode)
    try:
        pool.parse((root / "good" / "市财政局.xlsx").read_bytes(), "good.xlsx")
        proc = pool.workers[0].proc
        assert proc is not None
        mine = os.getpriority(os.PRIO_PROCESS, 0)
        assert os.getpriority(os.PRIO_PROCESS, proc.pid) == min(mine + WORKER_NICENESS, 19)
    finally:
        pool.close()


def test_a_hanging_worker_times_out_and_files_behind_it_are_resent(world, io_mode):
    _config, _ledger, root, _entries = world
    hang = [sys.executable, "-c", "import time; time.sleep(30)"]
    pool = ParserPool(Limits(parse_timeout=0.5), argv=hang, workers=1, io_mode=io_mode)
    try:
        first = pool.submit(b"PK", "a.xlsx")
        with pytest.raises(ParseFailed) as err:
            pool.result(first)
        assert err.value.code == "timeout" and "超时" in err.value.reason
    finally:
        pool.close()
    assert pool.workers[0].proc is None or pool.workers[0].proc.poll() is not None


# A worker that reads one request and then hangs without reading the next: the pipe to it fills up.
_STUCK_WORKER = ("import struct, sys, time\n"
                 "n = struct.unpack('<Q', sys.stdin.buffer.read(8))[0]\n"
                 "sys.stdin.buffer.read(n)\n"
                 "time.sleep(60)\n")


def test_submitting_to_a_stuck_worker_never_blocks_and_every_file_times_out(io_mode):
    """Files bigger than the pipe buffer queued behind a stuck file: submit returns at once, each times out."""
    pool = ParserPool(Limits(parse_timeout=0.3), argv=[sys.executable, "-c", _STUCK_WORKER], workers=1,
                      io_mode=io_mode)
    tickets: list[int] = []
    files = [bytes([i]) * (700 << 10) for i in range(3)]  # more than even a widened (1 MB) pipe holds
    submitter = threading.Thread(target=lambda: tickets.extend(pool.submit(d, f"{i}.xlsx") for i, d in
                                                               enumerate(files)), daemon=True)
    try:
        submitter.start()
        submitter.join(timeout=5)
        assert not submitter.is_alive(), "submit() blocked on a full pipe: the timeout can never fire"
        codes = []
        for ticket in tickets:
            with pytest.raises(ParseFailed) as err:
                pool.result(ticket)
            codes.append(err.value.code)
        assert codes == ["timeout"] * 3
        assert pool.restarts == 3
    finally:
        for w in pool.workers:  # unblock a writer stuck in the pipe (before the fix) so close() returns
            if w.proc is not None:
                w.proc.kill()
        pool.close()


# Answers each request with a refusal naming the file; dies (like a native abort) on a file named crash*.
_ECHO_WORKER = ("import json, os, struct, sys\n"
                "inp, out = sys.stdin.buffer, sys.stdout.buffer\n"
                "while len(head := inp.read(8)) == 8:\n"
                "    frame = inp.read(struct.unpack('<Q', head)[0])\n"
                "    n = struct.unpack_from('<I', frame)[0]\n"
                "    name = json.loads(frame[4:4 + n])['name']\n"
                "    if name.startswith('crash'):\n"
                "        os._exit(1)\n"
                "    reply = json.dumps({'ok': False, 'reason': name, 'code': 'echo'}).encode()\n"
                "    out.write(struct.pack('<Q', len(reply)) + reply)\n"
                "    out.flush()\n")


def test_a_worker_death_is_blamed_on_its_file_even_when_more_files_were_submitted_after_it(io_mode):
    """Replies already written are kept; the file the worker died on is the one after them; the rest are resent."""
    with scripted_pool(_ECHO_WORKER, io_mode, timeout=10) as pool:
        first = pool.submit(b"1", "a.xlsx")
        crash = pool.submit(b"2", "crash.xlsx")
        assert pool.workers[0].proc is not None
        pool.workers[0].proc.wait(timeout=10)  # died before the next file is even submitted
        after = pool.submit(b"3", "b.xlsx")
        reasons = []
        for ticket in (first, crash, after):
            with pytest.raises(Refused) as err:
                pool.result(ticket)
            reasons.append((err.value.code, err.value.reason if err.value.code == "echo" else ""))
        assert reasons == [("echo", "a.xlsx"), ("crash", ""), ("echo", "b.xlsx")]
        assert pool.restarts == 1


def test_replies_bigger_than_the_pipe_come_back_whole_and_in_order(io_mode):
    """A worker blocked writing a big reply while the parent is busy elsewhere: nothing is lost or
    mixed up, with two workers and several files in flight each."""
    big = _ECHO_WORKER.replace("'reason': name,", "'reason': name * 60000,")
    with scripted_pool(big, io_mode, timeout=20, workers=2) as pool:
        names = [f"{i}.xlsx" for i in range(8)]
        tickets = [pool.submit(bytes([i]) * (100 << 10), n) for i, n in enumerate(names)]
        for ticket, name in zip(reversed(tickets), reversed(names), strict=True):  # latest first
            with pytest.raises(Refused) as err:
                pool.result(ticket)
            assert err.value.reason == name * 60000
        assert pool.restarts == 0


def test_a_discarded_ticket_leaves_nothing_behind_in_a_long_lived_pool(io_mode):
    """collect refuses some files before it needs their parse (an unregistered sender): the service's pool
    lives for months, so such results must not pile up in it."""
    with scripted_pool(_ECHO_WORKER, io_mode, timeout=10) as pool:
        early = pool.submit(b"1", "a.xlsx")
        late = pool.submit(b"2", "b.xlsx")
        pool.discard(early)          # not arrived yet: dropped when it comes
        with pytest.raises(Refused):
            pool.result(late)
        pool.discard(late)           # already taken: nothing to do
        third = pool.submit(b"3", "c.xlsx")
        with pytest.raises(Refused):
            pool.result(third)
        assert pool._done == {} and pool._unwanted == set() and pool._where == {}


def test_closing_the_pool_does_not_wait_for_replies_nobody_will_read(io_mode):
    """A run that stops with files in flight (an error, Ctrl+C) closes the pool at once, even when a worker
    is blocked handing over a reply bigger than the pipe."""
    big = _ECHO_WORKER.replace("'reason': name,", "'reason': name * 400000,")
    pool = ParserPool(Limits(parse_timeout=20), argv=[sys.executable, "-c", big], workers=1, io_mode=io_mode)
    pool.submit(b"1", "a.xlsx")
    pool.submit(b"2", "b.xlsx")
    start = time.monotonic()
    pool.close()
    assert time.monotonic() - start < 1.5
    assert all(w.proc is None for w in pool.workers)


# Claims a reply of a terabyte and streams bytes as fast as it can, forever.
_FLOOD_WORKER = ("import struct, sys\n"
                 "sys.stdin.buffer.read(8)\n"
                 "out = sys.stdout.buffer\n"
                 "out.write(struct.pack('<Q', 1 << 40))\n"
                 "block = b'x' * (1 << 20)\n"
                 "while True:\n"
                 "    out.write(block)\n")

# Starts a plausible reply and then trickles it, a byte at a time, never finishing.
_TRICKLE_WORKER = ("import struct, sys, time\n"
                   "sys.stdin.buffer.read(8)\n"
                   "out = sys.stdout.buffer\n"
                   "out.write(struct.pack('<Q', 1 << 20)); out.flush()\n"
                   "while True:\n"
                   "    out.write(b'x'); out.flush(); time.sleep(0.01)\n")


def test_a_worker_that_claims_a_huge_reply_costs_its_file_not_the_parents_memory(io_mode):
    """A worker gone wrong (say, code run through a hostile file) cannot make the parent buffer what it claims."""
    with scripted_pool(_FLOOD_WORKER, io_mode, timeout=30) as pool:
        start = time.monotonic()
        with pytest.raises(ParseFailed) as err:
            pool.parse(b"PK", "flood.xlsx")
        assert err.value.code == "crash"
        assert time.monotonic() - start < 10, "the frame's length alone condemns it; no waiting for the timeout"


def test_a_reply_that_never_ends_times_out(io_mode):
    with scripted_pool(_TRICKLE_WORKER, io_mode, timeout=0.5) as pool:
        start = time.monotonic()
        with pytest.raises(ParseFailed) as err:
            pool.parse(b"PK", "trickle.xlsx")
        assert err.value.code == "timeout"
        assert time.monotonic() - start < 5


def _rezip(src: Path, out: Path, parts: list[tuple[str, bytes]]) -> Path:
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, body in parts:
            z.writestr(name, body)
    return out


def test_the_parser_reads_exactly_the_parts_that_were_checked(world, tmp_path):
    """checked() hands the parser a new uncompressed zip of the XML parts it inflated and scanned: a binary
    part is not passed on, and the cells read are the same as from the original."""
    import io

    import python_calamine as pc

    from automation.collect.safety import checked

    _config, _ledger, root, _entries = world
    good = next((root / "good").iterdir())
    with zipfile.ZipFile(good) as z:
        parts = [(i.filename, z.read(i)) for i in z.infolist()]
    with_image = _rezip(good, tmp_path / "with_image.xlsx", [*parts, ("xl/media/image1.png", b"\x89PNG" + b"\0" * 99)])
    kind, readable = checked(with_image.read_bytes(), with_image.name, Limits())
    assert kind == "xlsx" and readable != with_image.read_bytes()
    with zipfile.ZipFile(io.BytesIO(readable)) as z:
        assert z.testzip() is None  # every CRC right
        assert [i.compress_type for i in z.infolist()] == [zipfile.ZIP_STORED] * len(z.infolist())
        assert sorted(z.namelist()) == sorted(n for n, _ in parts if n.endswith((".xml", ".rels")))
        assert all(z.read(n) == body for n, body in parts if n in z.namelist())

    def cells(data: bytes) -> dict[str, list[list[object]]]:
        wb = pc.CalamineWorkbook.from_filelike(io.BytesIO(data))
        try:
            return {n: wb.get_sheet_by_name(n).to_python() for n in wb.sheet_names}
        finally:
            wb.close()

    assert cells(readable) == cells(good.read_bytes())


def test_a_part_listed_twice_is_refused(world, tmp_path):
    _config, _ledger, root, _entries = world
    good = next((root / "good").iterdir())
    with zipfile.ZipFile(good) as z:
        parts = [(i.filename, z.read(i)) for i in z.infolist()]
    twice = tmp_path / "twice.xlsx"
    with pytest.warns(UserWarning, match="Duplicate name"):
        _rezip(good, twice, [*parts, ("xl/workbook.xml", parts[0][1])])
    with pytest.raises(Refused) as err:
        precheck(twice.read_bytes(), twice.name, Limits())
    assert err.value.code == "corrupt" and "两次" in err.value.reason


def test_a_far_cell_in_a_sheet_part_with_a_binary_name_is_found(world, tmp_path):
    """calamine reads a sheet from wherever the workbook's relationships point, whatever its name says."""
    _config, _ledger, root, _entries = world
    far = root / "corpus" / "far_cell_moved.xlsx"
    with zipfile.ZipFile(far) as z:
        parts = [(i.filename, z.read(i)) for i in z.infolist()]
    renamed = [("xl/elsewhere/data.bin" if n == "xl/elsewhere/data.xml" else n,
                body.replace(b"elsewhere/data.xml", b"elsewhere/data.bin")) for n, body in parts]
    assert any(n == "xl/elsewhere/data.bin" for n, _ in renamed)
    moved = _rezip(far, tmp_path / "far_bin.xlsx", renamed)
    with pytest.raises(Refused) as err:
        precheck(moved.read_bytes(), moved.name, Limits())
    assert err.value.code == "far_cell" and "XFD1048576" in err.value.reason
