"""Collect returned workbooks: pre-check, identify, validate, archive, merge into the ledger.

Stage 4 of the loop.  Every file ends in exactly one outcome:

- ``accepted``: its rows are in the ledger (one submission, its responses and problems, in one
  transaction); the original is archived under ``<workspace>/archive/<sha256>.<ext>``;
- ``quarantined``: copied to ``<workspace>/quarantine/`` next to a ``.原因.txt`` reason file,
  recorded in the ledger with the reason;
- ``duplicate``: the same bytes were processed before (by SHA-256): nothing changes;
- ``skipped``: the file could not be read now (on Windows: open in WPS/Excel, or still being
  written by the mail client: modified in the last seconds, or changing while it is read), or it
  is not a file to read (a hidden name, a broken or looping link): nothing is recorded, it stays
  where it is for the next run, and the result says why.  One file never stops a run: a file
  this code fails on is skipped with the error named, and the files after it are still read.

One folder run at a time per workspace (:class:`~automation.collect.runlock.CollectLock`): a
second ``automation collect`` waits for the first and then sees its files as duplicates.

A file in ``<workspace>/inbox/`` is removed from there only after its archive or quarantine copy
and its ledger rows are on disk: the ledger commits with ``synchronous=FULL`` (durable when the
commit returns); a single file's copy is fsynced, and so is its folder (the rename).  A batch of
files in :func:`collect_paths` stores each file atomically (a savepoint) but shares commits
(:meth:`Ledger.grouped`), writes archive copies without an fsync each, and every 64 files and
at the end commits and makes it all durable by one ``os.sync`` (Windows: an fsync per copy)
before the inbox files it covers are removed.  Inputs anywhere else are never touched; callers
that move an input themselves (IMAP intake moves the message) may do so as soon as
:func:`collect_bytes` returns.  A removal that fails (a file locked on Windows) is logged and
left: the next run sees a duplicate and removes it.  Re-running on the same files changes
nothing, and a run killed at any point can simply be run again (what was stored is then a
duplicate and leaves the inbox; what was not is processed).

The jobs around this one: :mod:`~automation.collect.inputs` finds and reads the files,
:mod:`automation.collect.safety`'s worker subprocesses parse them (pre-checks, memory limit,
timeout; they parse the next files while this process validates and stores the current one),
:mod:`~automation.collect.identify` says whose a file is (from :mod:`~automation.collect.lookups`,
the run's ledger answers), :mod:`~automation.collect.returned` reads its sheet,
:mod:`~automation.collect.storage` keeps the copies and :mod:`~automation.collect.results` says
what happened.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from automation import clock
from automation.collect.identify import address, identify, sender_names, sender_unit, sender_units
from automation.collect.inputs import (
    Ignored,
    InboxCheck,
    Input,
    Unreadable,
    display_name,
    load_input,
    scan,
    stat_input,
)
from automation.collect.lookups import Lookups
from automation.collect.results import FileResult, Quarantine, result_line, summarize
from automation.collect.returned import Rules, evaluate
from automation.collect.runlock import WAIT_SECONDS, CollectLock
from automation.collect.safety import (
    SUPPORTED_SUFFIXES,
    Limits,
    ParsedBook,
    ParserPool,
    Refused,
    get_pool,
    unsupported_reason,
)
from automation.collect.storage import Storage
from automation.config import Config
from automation.errors import AutomationError
from automation.fsutil import sha256_bytes
from automation.ledger import LEDGER_FAILURES, DuplicateSubmission, Ledger
from automation.ledger.records import Submission
from automation.model import Problem
from automation.workbook.layout import META_SHEET, TASK_SHEET
from automation.workspace import Workspace

__all__ = ["FileResult", "collect_paths", "collect_file", "collect_bytes", "summarize", "result_line"]

logger = logging.getLogger(__name__)
_FLUSH_EVERY = 64


class _Run:
    """One collect call: the ledger's answers, the parser pool, the copies, and when it is all durable.

    Durability: ledger commits are durable on return (synchronous=FULL).  A single-file call
    fsyncs each copy and its folder before touching the inbox; a batch run writes copies without
    fsync and, every so often and at the end, makes them durable at once (:meth:`flush`) before
    removing the inbox files it has stored.
    """

    def __init__(self, config: Config, ledger: Ledger, now: dt.datetime, *, batched: bool = False,
                 pool: ParserPool | None = None) -> None:
        self.config = config
        self.ledger = ledger
        self.now = now
        self.ws = Workspace(config.workspace)
        self.storage = Storage(self.ws, batched)
        self.limits = Limits.from_config(config.collect)
        self.pool = pool or get_pool(self.limits)
        self.look = Lookups(ledger, config.batch.title, config.office.city)
        self.rules = Rules(config.collect.require_progress_when_done, config.collect.no_future_completion)
        self.in_inbox = InboxCheck(self.ws.inbox)
        self.seen: set[str] = set()

    def archive(self, item: Input) -> Path:
        """The archive copy of an accepted file.  If a batched copy fails (disk full), the rows not
        committed yet are dropped too and no input waiting for removal leaves the inbox: the next
        run does those files again."""
        try:
            return self.storage.archive(item)
        except BaseException:
            if self.storage.batched:
                self.ledger.rollback()
                self.storage.forget_removals()
            raise

    def remove_later(self, item: Input) -> None:
        """Remove an inbox file once its copy and its ledger rows are durable."""
        if self.storage.remove_later(item) >= _FLUSH_EVERY:
            self.flush()

    def commit(self) -> None:
        """Commit the rows stored so far (not yet durable: :meth:`flush` syncs).  If the commit
        fails, the inputs waiting for removal stay where they are: their rows may be gone."""
        try:
            self.ledger.commit()
        except BaseException:
            self.storage.forget_removals()
            raise

    def flush(self) -> None:
        """Commit the ledger rows so far and make them and every copy durable, then empty the
        inbox of what they cover.  A removal that fails is logged, never raised; a commit that
        fails removes nothing (those files are done again by the next run) and is raised."""
        self.commit()
        if not self.storage.pending():
            return
        # The copies and the ledger's WAL (committed with synchronous=NORMAL).
        self.storage.sync(also=[self.ledger.path.with_name(self.ledger.path.name + "-wal")])
        self.storage.remove_stored()


# --------------------------------------------------------------------------- public API


def collect_paths(
    config: Config,
    ledger: Ledger,
    paths: Sequence[Path] | None,
    now: dt.datetime,
    *,
    progress: Callable[[int, int, FileResult], None] | None = None,
    waiting: Callable[[str], None] | None = None,
    lock_timeout: float = WAIT_SECONDS,
) -> list[FileResult]:
    """Collect files and folders (default ``<workspace>/inbox/``), oldest first.

    Folders are walked recursively; Office/LibreOffice lock files (``~$…``, ``.~lock…#``) are
    passed over, and what else is not read (hidden names, broken or looping links) is reported
    as ``skipped`` results after the files.  Files inside the inbox are removed once safely
    stored.  ``progress(done, total, result)`` is called after each file; ``waiting(message)``
    once if another collect holds the workspace (this one then waits for it, up to
    ``lock_timeout`` seconds, then raises :class:`~automation.collect.runlock.CollectBusy`).
    """
    with CollectLock(Workspace(config.workspace).root, waiting, lock_timeout):
        return _collect_paths(config, ledger, paths, now, progress)


def _collect_paths(config: Config, ledger: Ledger, paths: Sequence[Path] | None, now: dt.datetime,
                   progress: Callable[[int, int, FileResult], None] | None) -> list[FileResult]:
    run = _Run(config, ledger, now, batched=True)
    files, ignored = scan(list(paths) if paths else [run.ws.inbox])
    # Ordered by the files' times (a stat each); the contents are read as the run reaches them,
    # so the workers start at once and a big inbox is never held in memory all at once.
    items = [stat_input(p, now, run.in_inbox) for p in files]
    items.sort(key=lambda it: (it.received_at, it.name))
    run.storage.sweep()
    results: list[FileResult] = []
    total = len(items) + len(ignored)
    # Keep a few files in flight in the workers while this process stores earlier ones.
    ahead = 2 * len(run.pool.workers)
    loaded = 0

    def load(upto: int) -> None:
        """Read items[:upto] (in growing chunks, each with one ledger lookup)."""
        nonlocal loaded
        if upto <= loaded:
            return
        end = min(len(items), max(upto, loaded + min(max(loaded, ahead), 64)))
        chunk = items[loaded:end]
        for it in chunk:
            load_input(it, run.limits.max_file_bytes)
        run.look.look_up(it.sha256 for it in chunk)
        loaded = end
    # Batched: each file is still one atomic unit (a savepoint), but the files share commits, and
    # commits need not reach the disk one by one (an fsync each is a quarter of the time per
    # file).  flush() commits, then makes the copies *and* the ledger's WAL durable before any
    # inbox file is removed, so nothing an input's removal depends on can be lost; a run that
    # dies before a flush leaves those inputs in the inbox, and the next run simply does them.
    with ledger.deferred_durability(), ledger.grouped():
        try:
            load(ahead)
            for item in items[:ahead]:
                _submit(run, item)
            for i, item in enumerate(items):
                if i + ahead < len(items):
                    load(i + ahead + 1)
                    _submit(run, items[i + ahead])
                load(i + 1)
                result = _guarded(run, item)
                item.data = None  # done with it: a big inbox is never all in memory
                results.append(result)
                if progress:
                    progress(i + 1, total, result)
        finally:
            run.flush()
    for entry in ignored:
        results.append(_not_read(entry, now))
        if progress:
            progress(len(results), total, results[-1])
    return results


def _guarded(run: _Run, item: Input) -> FileResult:
    """:func:`_process`, but a file this code fails on is skipped (named, logged) and the run goes
    on.  What is the environment's and not the file's (the ledger or the disk failing) still
    ends the run: every later file would fail the same way, and the run must not report files
    as stored whose rows a failed commit took back."""
    try:
        return _process(run, item)
    except (AutomationError, OSError, *LEDGER_FAILURES):
        raise
    except Exception as exc:  # noqa: BLE001 - one file never stops a run
        logger.exception("collect: failed on %s", item.name)
        if item.ticket is not None:
            run.pool.discard(item.ticket)
            item.ticket = None
        base = FileResult(file_name=item.name, sha256=item.sha256, outcome="skipped", source=item.source,
                          received_at=clock.iso(item.received_at))
        return _skipped(base, f"处理这个文件时程序出错（{type(exc).__name__}），本次跳过，未做任何记录，文件留在原处；"
                              "其余文件照常处理。请把日志和该文件反馈给维护者。")


def _not_read(entry: Ignored, now: dt.datetime) -> FileResult:
    return FileResult(file_name=entry.name, sha256="", outcome="skipped", reason=entry.reason,
                      received_at=clock.iso(now))


def collect_file(
    config: Config,
    ledger: Ledger,
    path: Path,
    now: dt.datetime,
    *,
    source: str = "folder",
    sender: str | None = None,
    message_id: str | None = None,
    received_at: dt.datetime | None = None,
    original_name: str | None = None,
) -> FileResult:
    """Collect one file (removed afterwards only if it lies in the inbox)."""
    run = _Run(config, ledger, now)
    item = stat_input(Path(path), now, run.in_inbox, received_at=received_at, name=original_name)
    load_input(item, run.limits.max_file_bytes)
    item.source, item.sender, item.message_id = source, sender, message_id
    _submit(run, item)
    return _process(run, item)


def collect_bytes(
    config: Config,
    ledger: Ledger,
    name: str,
    data: bytes,
    now: dt.datetime,
    *,
    source: str = "imap",
    sender: str | None = None,
    message_id: str | None = None,
    received_at: dt.datetime | None = None,
) -> FileResult:
    """Collect an attachment held in memory.  ``name`` is untrusted and never used as a path."""
    run = _Run(config, ledger, now)
    item = Input(name=display_name(name), data=data, sha256=sha256_bytes(data), size=len(data),
                 received_at=clock.local(received_at or now), source=source, sender=sender, message_id=message_id)
    _submit(run, item)
    return _process(run, item)


# --------------------------------------------------------------------------- one file


def _submit(run: _Run, item: Input) -> None:
    """Hand a parseable file to the worker (skipping what will not be parsed anyway)."""
    if item.ticket is not None or item.data is None or item.unreadable or item.suffix not in SUPPORTED_SUFFIXES:
        return
    if item.sha256 in run.seen:
        return
    run.seen.add(item.sha256)
    if run.look.previous(item.sha256) is not None:
        return
    item.ticket = run.pool.submit(item.data, item.name, (TASK_SHEET, META_SHEET))


def _process(run: _Run, item: Input) -> FileResult:
    base = FileResult(file_name=item.name, sha256=item.sha256, outcome="quarantined", sender=item.sender,
                      source=item.source, message_id=item.message_id, received_at=clock.iso(item.received_at))
    if item.unreadable:
        return _skipped(base, item.unreadable)
    previous = run.look.previous(item.sha256)
    if previous is not None and previous.outcome == "accepted":
        _drain(run, item)
        run.storage.restore_archive(item, previous.archive_path)
        return _duplicate(run, item, base, previous)
    # A file quarantined before is checked again: the reason may have gone (a sender or unit
    # registered since, unsigned files now accepted).  If it is still refused it stays as it was.
    item.retry_of = previous
    read = False   # True once the workbook itself was read (its unit is then its own, or none)
    try:
        if item.suffix not in SUPPORTED_SUFFIXES:
            raise Quarantine(unsupported_reason(item.suffix))
        if item.data is None:
            raise Quarantine(
                f"文件过大（{item.size / (1 << 20):.1f} MB，上限 {run.config.collect.max_file_mb:.0f} MB）。"
                "请删除无关的图片或工作表后重新保存发送。")
        senders = sender_units(run.look, item.sender)
        if item.ticket is None:  # not submitted ahead (a repeat of a file earlier in this run)
            item.ticket = run.pool.submit(item.data, item.name, (TASK_SHEET, META_SHEET))
        if run.ledger.uncommitted and not run.pool.ready(item.ticket):
            # Never hold the ledger's write lock while waiting for a parse (up to the timeout):
            # other writers (the service's IMAP intake, a send) would wait for it.
            run.commit()
        try:
            book = run.pool.result(item.ticket)
        except Refused as exc:
            raise Quarantine(exc.reason) from exc
        finally:
            item.ticket = None
        read = True
        return _accept(run, item, base, book, senders)
    except Quarantine as q:
        if not read and q.unit is None:
            # Refused before anything in it could say whose it is (an .et, a broken or too big
            # file): filed under the one unit whose address sent it, which the receipt tells why.
            q.unit = sender_unit(run.look, item.sender)
        if item.ticket is not None:  # refused before its parse was needed (an unregistered sender)
            run.pool.discard(item.ticket)
            item.ticket = None
        try:
            return _quarantine(run, item, base, q)
        except Unreadable as exc:  # a file too big to hold, locked before it could be copied
            return _skipped(base, exc.reason)


def _skipped(base: FileResult, reason: str) -> FileResult:
    base.outcome, base.reason = "skipped", reason
    return base


def _drain(run: _Run, item: Input) -> None:
    if item.ticket is not None:
        try:
            run.pool.result(item.ticket)
        except Refused:
            pass
        item.ticket = None


def _accept(run: _Run, item: Input, base: FileResult, book: ParsedBook, senders: set[int] | None) -> FileResult:
    look = run.look
    try:
        ident, reading = identify(look, book, item.name, item.sender, senders, run.config.collect.accept_unsigned)
        unit = ident.unit
        assigned = look.assigned.get(unit.id, {})
        ev = evaluate(reading, ident.layout, assigned, look.tasks, ident.batch.year, item.received_at.date(),
                      run.rules)
    except Quarantine:
        raise
    except Exception as exc:  # noqa: BLE001 - a file we fail to understand is quarantined, the run goes on
        logger.exception("collect: cannot interpret %s", item.name)
        raise Quarantine(f"文件内容无法解读（{type(exc).__name__}），已隔离待人工查看。请办公室检查该文件，"
                         "必要时请单位使用下发的工作簿重新填报。") from exc
    if ev.formula_cells:
        first = ev.formula_cells[0]
        where = f"{first.sheet}!{first.cell}" if first.cell else first.sheet
        raise Quarantine(
            f"{where} {first.message}，出于安全考虑整个文件未接收。请删去开头的“=”等符号或改写内容后重新报送。",
            problems=ev.formula_cells, unit=unit)
    problems = ident.problems + ev.problems
    if senders is not None and unit.id not in senders:  # signed: the signature vouches for the unit
        problems.insert(0, Problem(
            f"这是“{unit.name}”的工作簿，却由“{sender_names(look, senders)}”的邮箱 {address(item.sender)} 发来；"
            f"已按“{unit.name}”接收，请核实。", "warning"))
    if not ev.responses and not any(p.severity == "error" for p in problems):
        problems.append(Problem("工作簿中没有填写任何任务的落实情况，本次没有记录内容。", "warning",
                                sheet=reading.sheet.name))

    archive = run.archive(item)
    try:
        sid = run.ledger.record_submission(
            sha256=item.sha256, file_name=item.name, archive_path=run.storage.relative(archive),
            received_at=item.received_at, now=run.now, outcome="accepted", batch_id=ident.batch.id, unit_id=unit.id,
            signed=ident.signed, source=item.source, message_id=item.message_id, sender=item.sender,
            contact=reading.contact or None, phone=reading.phone or None, responses=ev.responses, problems=problems,
            replaces=item.retry_of.id if item.retry_of else None,
        )
    except DuplicateSubmission:
        return _stored_meanwhile(run, item, base)
    look.recorded(item.sha256)
    run.remove_later(item)
    base.outcome = "accepted"
    base.unit, base.unit_id = unit.name, unit.id
    base.rows_accepted = len(ev.responses)
    base.tasks_accepted = ev.tasks
    base.problems = problems
    base.submission_id = sid
    base.signed = ident.signed
    base.archive_path = str(archive)
    base.contact, base.phone = reading.contact, reading.phone
    errors = sum(p.severity == "error" for p in problems)
    base.reason = f"接收 {len(ev.responses)} 项" + (f"，{len(problems)} 个问题（其中 {errors} 个需更正）" if problems else "")
    return base


def _quarantine(run: _Run, item: Input, base: FileResult, q: Quarantine) -> FileResult:
    if item.retry_of is not None:  # refused again: nothing new to keep
        result = _duplicate(run, item, base, item.retry_of)
        result.reason = (result.reason or "") + f"重新检查后仍不能接收：{q.reason}"
        return result
    target = run.storage.quarantine(item, q.reason, q.problems)
    where = run.storage.relative(target)
    unit = q.unit
    try:
        sid = run.ledger.record_submission(
            sha256=item.sha256, file_name=item.name, archive_path=where, received_at=item.received_at,
            now=run.now, outcome="quarantined", batch_id=run.look.batch.id, unit_id=unit.id if unit else None,
            reason=q.reason, source=item.source, message_id=item.message_id, sender=item.sender,
            problems=q.problems, quarantine_path=where,
        )
    except DuplicateSubmission:
        return _stored_meanwhile(run, item, base)
    run.look.recorded(item.sha256)
    run.remove_later(item)
    base.outcome = "quarantined"
    base.reason = q.reason
    base.problems = q.problems
    base.submission_id = sid
    base.quarantine_path = str(target)
    if unit is not None:
        base.unit, base.unit_id = unit.name, unit.id
    return base


def _stored_meanwhile(run: _Run, item: Input, base: FileResult) -> FileResult:
    """Another writer (the IMAP intake, a collect on another computer sharing the workspace) stored
    the same bytes after this run looked them up: this file is a duplicate of that."""
    run.look.recorded(item.sha256)
    previous = run.ledger.submission_by_sha(item.sha256)
    if previous is None:  # pragma: no cover - the other writer's row is what refused ours
        raise DuplicateSubmission(item.sha256)
    return _duplicate(run, item, base, previous)


def _duplicate(run: _Run, item: Input, base: FileResult, previous: Submission) -> FileResult:
    run.remove_later(item)
    unit = run.look.units.get(previous.unit_id) if previous.unit_id else None
    what = "已接收" if previous.outcome == "accepted" else "已隔离"
    base.outcome = "duplicate"
    base.reason = (f"同一文件已于 {previous.processed_at[:16].replace('T', ' ')} 处理过（{what}，"
                   f"当时文件名“{previous.file_name}”），本次不重复处理。")
    base.submission_id = previous.id
    base.signed = previous.signed
    if unit is not None:
        base.unit, base.unit_id = unit.name, unit.id
    path = run.ws.root / previous.archive_path
    if previous.outcome == "accepted":
        base.archive_path = str(path)
    else:
        base.quarantine_path = str(path)
    return base
