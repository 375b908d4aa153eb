"""Collect returned workbooks: pre-check, identify, validate, archive, merge into the ledger.

Stage 4 of the loop.  Every file ends in exactly one outcome:

- ``accepted``: its rows are in the ledger (one submission, its responses and problems, in one
  transaction); the original is archived under ``<workspace>/archive/<sha256>.<ext>``;
- ``quarantined``: copied to ``<workspace>/quarantine/`` next to a ``.原因.txt`` reason file,
  recorded in the ledger with the reason;
- ``duplicate``: the same bytes were processed before (by SHA-256): nothing changes;
- ``skipped``: the file could not be read now (on Windows: open in WPS/Excel, or still being
  written by the mail client): nothing is recorded, it stays where it is for the next run.

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

Parsing happens in :mod:`automation.collect.safety`'s worker subprocesses (pre-checks, memory limit,
timeout); the workers parse the next files while this process validates and stores the current
one.  The sheet itself is judged by :mod:`automation.collect.returned`, values by :mod:`automation.collect.values`.

Files from a mailbox carry a ``sender``: it must be a registered unit address (``email``/``cc``)
or the file is quarantined; a unit's address sending another unit's signed workbook is accepted
for the workbook's unit with a warning naming the sender's unit (the signature vouches for the
content).  An *unsigned* file from a mailbox is only accepted for one of the sender's own units:
its unit comes from a title or file name anyone can type, so another unit's name is quarantined.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import logging
import os
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from email.utils import parseaddr
from pathlib import Path
from typing import Any

from automation import clock
from automation.collect.returned import (
    NoTaskSheet,
    Rules,
    SheetReading,
    evaluate,
    read_metadata,
    read_task_sheet,
)
from automation.collect.safety import (
    SUPPORTED_SUFFIXES,
    Limits,
    ParsedBook,
    ParserPool,
    Refused,
    get_pool,
    unsupported_reason,
)
from automation.config import Config
from automation.errors import AutomationError
from automation.fsutil import safe_filename, sha256_bytes
from automation.ledger import Ledger
from automation.ledger.records import Revision
from automation.model import Batch, Task, UnitRow
from automation.text import squash
from automation.workbook.layout import (
    DEFAULT_LAYOUT,
    META_KEYS,
    META_MAGIC,
    META_SHEET,
    TASK_SHEET,
    Layout,
    verify,
)
from automation.workspace import Workspace

__all__ = ["FileResult", "collect_paths", "collect_file", "collect_bytes", "summarize", "CRASH_ENV"]

#: Test hook: ``<point>:<n>`` SIGKILLs this process the n-th time it reaches ``point``
#: (archived / recorded / quarantined), to prove that a killed run can simply be run again.
CRASH_ENV = "DUBAN_TEST_CRASH_AT"

logger = logging.getLogger(__name__)
_SKIP_NAMES = {"thumbs.db", "desktop.ini", ".ds_store"}
_FLUSH_EVERY = 64


@dataclass
class FileResult:
    """What happened to one returned file (the collect command prints one line per result)."""

    file_name: str
    sha256: str
    outcome: str                          # accepted | quarantined | duplicate | skipped (unreadable now)
    reason: str = ""
    unit: str | None = None
    unit_id: int | None = None
    rows_accepted: int = 0
    tasks_accepted: list[int] = field(default_factory=list)
    problems: list[dict[str, Any]] = field(default_factory=list)
    submission_id: int | None = None
    signed: bool = False
    archive_path: str | None = None
    quarantine_path: str | None = None
    sender: str | None = None
    source: str = "folder"
    message_id: str | None = None
    received_at: str | None = None
    contact: str = ""
    phone: str = ""

    @property
    def errors(self) -> list[dict[str, Any]]:
        return [p for p in self.problems if p.get("severity") == "error"]

    @property
    def warnings(self) -> list[dict[str, Any]]:
        return [p for p in self.problems if p.get("severity") != "error"]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def summarize(results: Sequence[FileResult]) -> dict[str, Any]:
    """The ``collect --json`` document: every file plus totals."""
    return {
        "files": [r.to_json() for r in results],
        "totals": {
            "files": len(results),
            "accepted": sum(r.outcome == "accepted" for r in results),
            "quarantined": sum(r.outcome == "quarantined" for r in results),
            "duplicate": sum(r.outcome == "duplicate" for r in results),
            "skipped": sum(r.outcome == "skipped" for r in results),
            "rows": sum(r.rows_accepted for r in results),
            "problems": sum(len(r.problems) for r in results),
        },
    }


class _Quarantine(Exception):
    def __init__(self, reason: str, problems: Sequence[dict[str, Any]] = (), unit: UnitRow | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.problems = list(problems)
        self.unit = unit


@dataclass
class _Item:
    """One file to process (from a path or from bytes)."""

    name: str                             # what the office sees (original name)
    data: bytes | None                    # None when too big to read (quarantined from ``path``)
    sha256: str
    size: int
    received_at: dt.datetime
    path: Path | None = None
    source: str = "folder"
    sender: str | None = None
    message_id: str | None = None
    in_inbox: bool = False
    ticket: int | None = None
    retry_of: dict[str, Any] | None = None  # an earlier quarantined submission of the same bytes
    unreadable: str | None = None         # why the file cannot be read now (left for the next run)

    @functools.cached_property
    def suffix(self) -> str:
        return Path(self.name).suffix.lower()


@dataclass
class _Identity:
    batch: Batch
    unit: UnitRow
    layout: Layout
    signed: bool
    problems: list[dict[str, Any]]


class _Run:
    """Per-run context: ledger lookups cached, the worker pool, the workspace folders."""

    def __init__(self, config: Config, ledger: Ledger, now: dt.datetime, pool: ParserPool | None = None) -> None:
        self.config = config
        self.ledger = ledger
        self.now = now
        self.ws = Workspace(config.workspace)
        for folder in (self.ws.inbox, self.ws.archive, self.ws.quarantine):
            folder.mkdir(parents=True, exist_ok=True)
        self.limits = Limits.from_config(config.collect)
        self.pool = pool or get_pool(self.limits)
        self.batch = ledger.require_batch(config.batch.title)
        self.rules = Rules(config.collect.require_progress_when_done, config.collect.no_future_completion)
        self._layouts: dict[str, Layout | None] = {}
        self._batches: dict[str, Batch | None] = {}
        self._spellings: list[tuple[str, int]] | None = None
        self._revisions: list[dict[str, Any]] | None = None
        self._archived: dict[str, int] | None = None
        self._revision_titles: dict[int, dict[int, str]] = {}
        self._crash = _crash_plan()
        self.seen: set[str] = set()
        # SHA-256 → earlier submission (None: never seen), looked up for a whole run at once;
        # a file recorded during the run is dropped from it and looked up again if repeated.
        self.known: dict[str, dict[str, Any] | None] = {}
        self.inbox_real = Path(os.path.realpath(self.ws.inbox))
        self.inbox_dirs: dict[str, bool] = {}
        # Durability: ledger commits are durable on return (synchronous=FULL).  A single-file call
        # fsyncs each copy and its folder before touching the inbox; a batch run writes copies
        # without fsync and, every so often and at the end, makes them durable at once (os.sync)
        # before removing the inbox files it has stored.
        self.batched = False
        self.unsynced: list[Path] = []
        self.removals: list[Path] = []

    # The batch's tasks, roles and units are read when the first file needs them, not before:
    # a run submits its first files to the workers first, so they parse while this is read.

    @functools.cached_property
    def tasks(self) -> dict[int, Task]:
        return {t.number: t for t in self.ledger.tasks(self.batch.id)}

    @functools.cached_property
    def assigned(self) -> dict[int, dict[int, str]]:
        """unit id → task number → role."""
        return self.ledger.roles(self.batch.id)

    @functools.cached_property
    def units(self) -> dict[int, UnitRow]:
        return {u.id: u for u in self.ledger.units(active_only=False)}

    @functools.cached_property
    def by_email(self) -> dict[str, set[int]]:
        out: dict[str, set[int]] = {}
        for u in self.units.values():
            for addr in (*u.emails, *u.cc):
                out.setdefault(addr.strip().lower(), set()).add(u.id)
        return out

    def write(self, target: Path, data: bytes | None = None, src: Path | None = None) -> None:
        """Write a copy atomically (temp file + rename); fsync it and its folder now unless batched.

        Copying from ``src`` raises :class:`_Unreadable` when the source cannot be opened.
        """
        fin = None
        if data is None:
            assert src is not None
            try:
                fin = open(src, "rb")  # closed in the finally below
            except OSError as exc:
                raise _Unreadable(_unreadable_reason(exc)) from exc
        fd, tmp = _temp_file(target)
        try:
            with os.fdopen(fd, "wb") as out:
                if fin is not None:
                    shutil.copyfileobj(fin, out, 1 << 20)
                else:
                    out.write(data or b"")
                if not self.batched:
                    out.flush()
                    os.fsync(out.fileno())
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        finally:
            if fin is not None:
                fin.close()
        if self.batched:
            self.unsynced.append(target)
        else:
            _fsync_dir(target.parent)

    def archive(self, target: Path, data: bytes) -> None:
        """Write an archive copy (batched: without fsync, the flush syncs).

        If a batched copy fails (disk full), the rows not committed yet are dropped too and no
        input waiting for removal leaves the inbox: the next run does those files again.  (The
        copies used to be written on a helper thread; with SQLite letting go of the interpreter
        lock for every statement, the thread's wake-ups cost more than the overlap gained.)
        """
        if not self.batched:
            self.write(target, data)
            return
        try:
            _write_new(target, data)
        except BaseException:
            self.ledger.rollback()
            self.removals.clear()
            raise
        self.unsynced.append(target)

    def previous(self, sha256: str) -> dict[str, Any] | None:
        """The earlier submission of these bytes (accepted or quarantined), if any."""
        if sha256 in self.known:
            return self.known[sha256]
        return self.ledger.submission_by_sha(sha256)

    def lookup_all(self, items: Sequence[_Item]) -> None:
        """Look up the earlier submissions of ``items`` in one query (the ledger sees this run's
        own uncommitted rows, so a file stored earlier in the run is found too)."""
        found = self.ledger.submissions_by_sha(it.sha256 for it in items if it.sha256)
        self.known.update((it.sha256, found.get(it.sha256)) for it in items if it.sha256)

    def recorded(self, sha256: str) -> None:
        self.known.pop(sha256, None)

    def remove_later(self, item: _Item) -> None:
        """Remove an inbox file once its copy and its ledger rows are durable."""
        if not (item.in_inbox and item.path is not None):
            return
        if self.batched:
            self.removals.append(item.path)
            if len(self.removals) >= _FLUSH_EVERY:
                self.flush()
        else:
            _remove(item.path)

    def commit(self) -> None:
        """Commit the rows stored so far (not yet durable: :meth:`flush` syncs).  If the commit
        fails, the inputs waiting for removal stay where they are: their rows may be gone."""
        try:
            self.ledger.commit()
        except BaseException:
            self.removals.clear()
            raise

    def flush(self) -> None:
        """Commit the ledger rows so far and make them and every copy durable, then empty the
        inbox of what they cover.  A removal that fails is logged, never raised; a commit that
        fails removes nothing (those files are done again by the next run) and is raised."""
        self.commit()
        if not (self.unsynced or self.removals):
            return
        if hasattr(os, "sync"):
            os.sync()  # the copies and the ledger's WAL (committed with synchronous=NORMAL)
        else:  # pragma: no cover - Windows: no global sync; fsync each copy and the WAL instead
            for path in [*self.unsynced, self.ledger.path.with_name(self.ledger.path.name + "-wal")]:
                try:
                    with open(path, "rb+") as fh:
                        os.fsync(fh.fileno())
                except FileNotFoundError:
                    continue
        self.unsynced.clear()
        removals, self.removals = self.removals, []
        for path in removals:
            _remove(path)

    # -- lookups

    def layout(self, version: str) -> Layout | None:
        if version not in self._layouts:
            spec = self.ledger.layout(version) if version else None
            try:
                self._layouts[version] = Layout.from_dict(spec) if spec else None
            except (KeyError, TypeError, ValueError):
                self._layouts[version] = None
        return self._layouts[version]

    def batch_by_uid(self, uid: str) -> Batch | None:
        if uid not in self._batches:
            self._batches[uid] = self.ledger.batch_by_uid(uid) if uid else None
        return self._batches[uid]

    def archived_size(self, path: Path) -> int | None:
        """Size of an archive copy if it exists: one directory listing per run instead of a stat
        per file (the archive holds every file ever received, and a miss is the common case)."""
        if path.parent != self.ws.archive:
            return _size(path)
        if self._archived is None:
            self._archived = {}
            with os.scandir(self.ws.archive) as entries:
                for entry in entries:
                    if _stale_temp(entry.name):  # a copy a killed run was writing: never used
                        Path(entry.path).unlink(missing_ok=True)
                        continue
                    try:
                        self._archived[entry.name] = entry.stat().st_size
                    except OSError:
                        continue
        return self._archived.get(path.name)

    def sweep(self) -> None:
        """Remove temporary copies that runs killed mid-write left in the archive and the
        quarantine (the archive's are removed by its listing)."""
        self.archived_size(self.ws.archive / "-")
        with os.scandir(self.ws.quarantine) as entries:
            for entry in entries:
                if _stale_temp(entry.name):
                    Path(entry.path).unlink(missing_ok=True)

    def note_archived(self, path: Path, size: int) -> None:
        if self._archived is not None and path.parent == self.ws.archive:
            self._archived[path.name] = size

    def revisions(self) -> list[Revision]:
        if self._revisions is None:
            self._revisions = self.ledger.revisions(self.batch.id)
        return self._revisions

    def revision_titles(self, revision: int) -> dict[int, str]:
        """Task number → title in an earlier revision of the table (from ``table_revisions``)."""
        if revision not in self._revision_titles:
            row = self.ledger.execute("SELECT tasks_json FROM table_revisions WHERE batch_id = ? AND revision = ?",
                                      (self.batch.id, revision)).fetchone()
            tasks = json.loads(row[0]) if row else []
            self._revision_titles[revision] = {int(t["number"]): str(t["title"]) for t in tasks}
        return self._revision_titles[revision]

    def latest_layout(self) -> Layout:
        row = self.ledger.execute(
            "SELECT template_version FROM issues WHERE batch_id = ? ORDER BY issued_at DESC, id DESC LIMIT 1",
            (self.batch.id,)).fetchone()
        return (self.layout(row[0]) if row else None) or DEFAULT_LAYOUT

    def spellings(self) -> list[tuple[str, int]]:
        """(squashed spelling, unit id) for every unit with tasks in the batch, longest first."""
        if self._spellings is None:
            city = self.config.office.city
            out: list[tuple[str, int]] = []
            for uid in self.assigned:
                u = self.units.get(uid)
                if u is None:
                    continue
                names = [u.name, *u.aliases]
                if city:
                    names += [f"{city}{n}" for n in names if n.startswith("市")]
                    names += [f"{city}市{n}" for n in names if not n.startswith(("市", city))]
                out += [(squash(n), uid) for n in names if squash(n)]
            self._spellings = sorted(set(out), key=lambda s: (-len(s[0]), s[0]))
        return self._spellings

    def checkpoint(self, point: str) -> None:
        if self._crash and self._crash[0] == point:
            self._crash[1] -= 1
            if self._crash[1] <= 0:
                os.kill(os.getpid(), signal.SIGKILL)


class _Unreadable(Exception):
    """An input that cannot be read now (locked, being written, gone): skipped, retried next run."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _unreadable_reason(exc: OSError) -> str:
    what = exc.strerror or type(exc).__name__
    return (f"文件暂时无法读取（{what}），可能正在 WPS/Excel 中打开或仍在保存、下载中；本次跳过，"
            "未做任何记录，文件留在原处，下次运行时自动重试。如一直跳过，请关闭打开它的程序。")


def _remove(path: Path) -> None:
    """Remove a stored inbox file; a failure (locked on Windows) only costs a duplicate next run."""
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        logger.warning("collect: cannot remove %s from the inbox (%s); the next run will", path, exc)


_TEMP_PREFIX = ".tmp-"


def _temp_file(target: Path) -> tuple[int, Path]:
    """A new ``.tmp-<pid>-<random><suffix>`` next to ``target`` (open for writing): the pid tells a
    later run whose it was; the random part keeps a reused pid from meeting an old leftover."""
    fd, name = tempfile.mkstemp(prefix=f"{_TEMP_PREFIX}{os.getpid()}-", suffix=target.suffix, dir=target.parent)
    return fd, Path(name)


def _stale_temp(name: str) -> bool:
    """A temporary copy left by a run that was killed mid-write (its process is gone)."""
    if not name.startswith(_TEMP_PREFIX):
        return False
    pid = name[len(_TEMP_PREFIX):].split("-", 1)[0]
    if not pid.isdigit() or int(pid) == os.getpid():
        return False
    return not _alive(int(pid))


def _alive(pid: int) -> bool:
    if os.name == "nt":  # pragma: no cover - no cheap check; leave the file (it is hidden, and harmless)
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _write_new(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` through a temporary file and a rename, without fsync (the
    batch's flush syncs).  Plain system calls: this runs once per accepted file."""
    fd, tmp = _temp_file(target)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX; Windows cannot open a folder for that)."""
    if os.name == "nt":  # pragma: no cover
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _crash_plan() -> list[Any] | None:
    spec = os.environ.get(CRASH_ENV, "")
    if ":" not in spec:
        return None
    point, _, count = spec.partition(":")
    return [point, int(count or 1)]


# --------------------------------------------------------------------------- public API


def collect_paths(
    config: Config,
    ledger: Ledger,
    paths: Sequence[Path] | None,
    now: dt.datetime,
    *,
    progress: Callable[[int, int, FileResult], None] | None = None,
) -> list[FileResult]:
    """Collect files and folders (default ``<workspace>/inbox/``), oldest first.

    Folders are walked recursively; hidden files and Office/LibreOffice lock files (``~$…``,
    ``.~lock…#``) are skipped.  Files inside the inbox are removed once safely stored.
    ``progress(done, total, result)`` is called after each file.
    """
    run = _Run(config, ledger, now)
    run.batched = True
    files = _expand(list(paths) if paths else [run.ws.inbox])
    # Ordered by the files' times (a stat each); the contents are read as the run reaches them,
    # so the workers start at once and a big inbox is never held in memory all at once.
    items = [_stat_item(run, p) for p in files]
    items.sort(key=lambda it: (it.received_at, it.name))
    run.sweep()
    results: list[FileResult] = []
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
            _load(run, it)
        run.lookup_all(chunk)
        loaded = end
    # Batched: each file is still one atomic unit (a savepoint), but the files share commits, and
    # commits need not reach the disk one by one (an fsync each is a quarter of the time per
    # file).  flush() commits, then makes the copies *and* the ledger's WAL durable before any
    # inbox file is removed, so nothing an input's removal depends on can be lost; a run that
    # dies before a flush leaves those inputs in the inbox, and the next run simply does them.
    ledger.execute("PRAGMA synchronous=NORMAL")
    try:
        with ledger.grouped():
            try:
                load(ahead)
                for item in items[:ahead]:
                    _submit(run, item)
                for i, item in enumerate(items):
                    if i + ahead < len(items):
                        load(i + ahead + 1)
                        _submit(run, items[i + ahead])
                    load(i + 1)
                    result = _process(run, item)
                    item.data = None  # done with it: a big inbox is never all in memory
                    results.append(result)
                    if progress:
                        progress(i + 1, len(items), result)
            finally:
                run.flush()
    finally:
        ledger.execute("PRAGMA synchronous=FULL")
    return results


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
    item = _load(run, _stat_item(run, Path(path), received_at=received_at, name=original_name))
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
    item = _Item(name=_display_name(name), data=data, sha256=sha256_bytes(data), size=len(data),
                 received_at=clock.local(received_at or now), source=source, sender=sender, message_id=message_id)
    _submit(run, item)
    return _process(run, item)


# --------------------------------------------------------------------------- gathering


def _display_name(name: str) -> str:
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch >= " " and ch != "\x7f").strip()
    return name[:200] or "附件"


def _skip(name: str) -> bool:
    """Hidden files, Office/LibreOffice lock files (~$…, .~lock…#), Thumbs.db and our reason files."""
    return name.startswith((".", "~$")) or name.lower() in _SKIP_NAMES or name.endswith(".原因.txt")


def _walk(folder: Path, out: list[Path]) -> None:
    # os.scandir: file types come with the listing, no stat per file.
    with os.scandir(folder) as it:
        entries = sorted(it, key=lambda e: e.name)
    for e in entries:
        if e.name.startswith("."):
            continue
        if e.is_dir():
            _walk(Path(e.path), out)
        elif e.is_file() and not _skip(e.name):
            out.append(Path(e.path))


def _expand(paths: Iterable[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            _walk(p, out)
        elif p.is_file():
            out.append(p)
        else:
            raise AutomationError(f"{p}：文件或文件夹不存在。")
    return list(dict.fromkeys(out))


def _in_inbox(run: _Run, path: Path) -> bool:
    parent = str(path.parent)
    known = run.inbox_dirs.get(parent)
    if known is None:
        try:
            known = Path(os.path.realpath(parent)).is_relative_to(run.inbox_real)
        except OSError:
            known = False
        run.inbox_dirs[parent] = known
    return known


def _stat_item(run: _Run, path: Path, received_at: dt.datetime | None = None, name: str | None = None) -> _Item:
    """A file to collect, known by its name and times only (:func:`_load` reads it).

    Without ``received_at`` the file's modification time stands for the receipt time (never
    later than now).  A file that cannot be read now (locked by WPS/Excel on Windows, still being
    written, removed meanwhile) becomes a skipped item instead of stopping the run.
    """
    display = _display_name(name or path.name)
    item = _Item(name=display, data=None, sha256="", size=0, received_at=clock.local(received_at or run.now),
                 path=path, in_inbox=_in_inbox(run, path))
    try:
        st = path.stat()
    except OSError as exc:
        item.unreadable = _unreadable_reason(exc)
        return item
    if received_at is None:
        item.received_at = min(dt.datetime.fromtimestamp(st.st_mtime, clock.TZ), clock.local(run.now))
    item.size = st.st_size
    return item


def _load(run: _Run, item: _Item) -> _Item:
    """Read and hash a file found by :func:`_stat_item`; one too big to parse is only hashed.

    The size that decides is what is read now, not what the stat saw (a file still being copied
    into the inbox grows): at most ``max_file_bytes`` are ever held.
    """
    if item.unreadable or item.path is None:
        return item
    limit = run.limits.max_file_bytes
    try:
        with item.path.open("rb") as fh:
            data = fh.read(limit + 1)
            if len(data) <= limit:
                item.data, item.sha256, item.size = data, sha256_bytes(data), len(data)
                return item
            digest, size = hashlib.sha256(data), len(data)
            del data
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
            item.sha256, item.size = digest.hexdigest(), size
    except OSError as exc:
        item.unreadable = _unreadable_reason(exc)
    return item


def _submit(run: _Run, item: _Item) -> None:
    """Hand a parseable file to the worker (skipping what will not be parsed anyway)."""
    if item.ticket is not None or item.data is None or item.unreadable or item.suffix not in SUPPORTED_SUFFIXES:
        return
    if item.sha256 in run.seen:
        return
    run.seen.add(item.sha256)
    if run.previous(item.sha256) is not None:
        return
    item.ticket = run.pool.submit(item.data, item.name, (TASK_SHEET, META_SHEET))


# --------------------------------------------------------------------------- one file


def _process(run: _Run, item: _Item) -> FileResult:
    base = FileResult(file_name=item.name, sha256=item.sha256, outcome="quarantined", sender=item.sender,
                      source=item.source, message_id=item.message_id, received_at=clock.iso(item.received_at))
    if item.unreadable:
        return _skipped(base, item.unreadable)
    previous = run.previous(item.sha256)
    if previous is not None and previous["outcome"] == "accepted":
        _drain(run, item)
        _restore_archive(run, item, previous)
        return _duplicate(run, item, base, previous)
    # A file quarantined before is checked again: the reason may have gone (a sender or unit
    # registered since, unsigned files now accepted).  If it is still refused it stays as it was.
    item.retry_of = previous
    try:
        if item.suffix not in SUPPORTED_SUFFIXES:
            raise _Quarantine(unsupported_reason(item.suffix))
        if item.data is None:
            raise _Quarantine(
                f"文件过大（{item.size / (1 << 20):.1f} MB，上限 {run.config.collect.max_file_mb:.0f} MB）。"
                "请删除无关的图片或工作表后重新保存发送。")
        sender_units = _sender_units(run, item.sender)
        if item.ticket is None:  # not submitted ahead (a repeat of a file earlier in this run)
            item.ticket = run.pool.submit(item.data, item.name, (TASK_SHEET, META_SHEET))
        if run.ledger.uncommitted and not run.pool.ready(item.ticket):
            # Never hold the ledger's write lock while waiting for a parse (up to the timeout):
            # other writers (the service's IMAP intake, a send) would wait for it.
            run.commit()
        try:
            book = run.pool.result(item.ticket)
        except Refused as exc:
            raise _Quarantine(exc.reason) from exc
        finally:
            item.ticket = None
        return _accept(run, item, base, book, sender_units)
    except _Quarantine as q:
        if item.ticket is not None:  # refused before its parse was needed (an unregistered sender)
            run.pool.discard(item.ticket)
            item.ticket = None
        try:
            return _quarantine(run, item, base, q)
        except _Unreadable as exc:  # a file too big to hold, locked before it could be copied
            return _skipped(base, exc.reason)


def _restore_archive(run: _Run, item: _Item, previous: dict[str, Any]) -> None:
    """Put the archive copy of an accepted file back if it is missing or short.

    A power cut can keep a ledger commit while losing the copy written just before it (both wait
    for the same sync); the input is still in the inbox then, because it is removed only after
    that sync, so the copy is made again from it before it leaves.
    """
    if item.data is None or not previous.get("archive_path"):
        return
    archive = run.ws.root / previous["archive_path"]
    if archive.parent == run.ws.archive and run.archived_size(archive) != item.size:
        logger.warning("collect: archive copy %s was missing; restored from %s", archive.name, item.name)
        run.write(archive, item.data)
        run.note_archived(archive, item.size)


def _skipped(base: FileResult, reason: str) -> FileResult:
    base.outcome, base.reason = "skipped", reason
    return base


def _drain(run: _Run, item: _Item) -> None:
    if item.ticket is not None:
        try:
            run.pool.result(item.ticket)
        except Refused:
            pass
        item.ticket = None


def _address(sender: str | None) -> str:
    return (parseaddr(sender or "")[1] or sender or "").strip().lower()


def _sender_units(run: _Run, sender: str | None) -> set[int] | None:
    if not sender:
        return None
    address = _address(sender)
    units = run.by_email.get(address)
    if not units:
        raise _Quarantine(
            f"发件人 {address} 不在单位通讯录中（config.toml 各单位的 email/cc），未接收。"
            "如确为某单位的新邮箱，请在 config.toml 中登记后重新收取。")
    return units


def _sender_names(run: _Run, sender_units: set[int]) -> str:
    return "、".join(run.units[u].name for u in sorted(sender_units) if u in run.units)


def _problem(severity: str, message: str, **kw: Any) -> dict[str, Any]:
    return {"severity": severity, "sheet": kw.get("sheet"), "cell": kw.get("cell"),
            "task_number": kw.get("task_number"), "field": kw.get("field"), "message": message}


def _identify(run: _Run, item: _Item, book: ParsedBook,
              sender_units: set[int] | None) -> tuple[_Identity, SheetReading]:
    meta = read_metadata(book)
    problems: list[dict[str, Any]] = []
    if meta is not None:
        batch, unit, layout = _verify_metadata(run, meta)
        signed = True
    else:
        layout = run.latest_layout()
        batch, unit, signed = run.batch, None, False
    try:
        reading = read_task_sheet(book, layout, meta or {})
    except NoTaskSheet as exc:
        raise _Quarantine(exc.reason, unit=unit) from exc
    if unit is None:
        if not run.config.collect.accept_unsigned:
            raise _Quarantine("文件没有签名页（可能是把内容复制到了新表格中），按设置不予接收。"
                              "请在下发的原工作簿中填写后发送。")
        unit = _unit_from_names(run, reading.title, item.name)
        how = "标题或文件名"
        if unit is not None and sender_units is not None and unit.id not in sender_units:
            # Without a signature nothing vouches for the content: the unit comes from text anyone can
            # type, so a mailbox may only answer for its own units (a signed workbook is another matter).
            raise _Quarantine(
                f"文件没有签名页（不是下发的原工作簿），标题或文件名表明是“{unit.name}”的，却由"
                f"“{_sender_names(run, sender_units)}”的邮箱 {_address(item.sender)} 发来，未接收。"
                f"没有签名页的文件只接收本单位登记邮箱发来的：请“{unit.name}”用本单位邮箱发送，"
                "或使用下发的原工作簿填报。")
        if unit is None and sender_units is not None and len(sender_units) == 1:
            only = next(iter(sender_units))
            unit, how = (run.units.get(only), "发件邮箱") if only in run.assigned else (None, how)
        if unit is None:
            raise _Quarantine(
                "文件没有签名页（可能是把内容复制到了新表格中），且无法从标题或文件名确定是哪个单位。"
                "请在下发的原工作簿中填写，或在文件名中写明单位名称后重新发送。")
        problems.append(_problem(
            "warning", f"文件没有签名页（不是下发的原工作簿），已根据{how}认定为“{unit.name}”并接收，请核实。"))
    return _Identity(batch, unit, layout, signed, problems), reading


def _verify_metadata(run: _Run, meta: dict[str, str]) -> tuple[Batch, UnitRow, Layout]:
    forged = ("签名校验失败：工作簿的隐藏签名页被改动过或为伪造，未接收。"
              "请使用办公室下发的原工作簿填报（可以另存为其他格式，但不要复制到新表格）。")
    if meta.get("magic") != META_MAGIC or not meta.get("signature"):
        raise _Quarantine(forged)
    batch = run.batch_by_uid(meta.get("batch_uid", ""))
    if batch is None:
        raise _Quarantine("这个工作簿不是本台账中任何批次下发的（批次标识不认识），未接收。")
    fields = {k: meta.get(k, "") for k in META_KEYS}
    if not verify(batch.secret, fields, meta.get("signature", "")):
        raise _Quarantine(forged)
    try:
        unit_id = int(float(meta.get("unit_id", "")))
    except ValueError:
        raise _Quarantine(forged) from None
    unit = run.units.get(unit_id)
    if batch.id != run.batch.id:
        raise _Quarantine(
            f"这是往期批次“{batch.title}”的工作簿，不是本批“{run.batch.title}”的。"
            "请使用本批下发的工作簿填报。", unit=unit)
    if unit is None or unit_id not in run.assigned:
        raise _Quarantine(f"工作簿对应的单位“{meta.get('unit_name', '')}”在本批次中没有任务，未接收。", unit=unit)
    _check_revision(run, meta, unit)
    return batch, unit, run.layout(meta.get("template_version", "")) or run.latest_layout()


def _check_revision(run: _Run, meta: dict[str, str], unit: UnitRow) -> None:
    """A workbook issued before the current task-table revision (``init --replace``) is accepted
    only if its tasks still have the same numbers and titles; otherwise its answers could land on
    other tasks (a renumbered table), so it is quarantined with a reason the office can act on."""
    revisions = run.revisions()
    if len(revisions) < 2:
        return
    try:
        issued = clock.parse(meta.get("issued_at", ""))
    except ValueError:
        return
    current = revisions[-1]
    if issued >= clock.parse(current.imported_at):
        return
    older = [r for r in revisions if clock.parse(r.imported_at) <= issued] or revisions[:1]
    old_titles = run.revision_titles(older[-1].revision)
    numbers = [int(n) for n in meta.get("tasks", "").split(",") if n.strip().isdigit()]
    changed = [n for n in numbers
               if n in run.tasks and n in old_titles and squash(old_titles[n]) != squash(run.tasks[n].title)]
    if changed:
        shown = "、".join(str(n) for n in changed[:10]) + ("等" if len(changed) > 10 else "")
        raise _Quarantine(
            f"这份工作簿是按旧版任务表（第 {older[-1].revision} 版）生成的，任务表已更新为第 {current.revision} 版，"
            f"第 {shown} 项的任务已经变化；为避免把填报记到错误的任务上，未接收。请使用新下发的工作簿重新填报。",
            unit=unit)


def _unit_from_names(run: _Run, title: str, file_name: str) -> UnitRow | None:
    """The one unit named in the sheet title, else in the file name (None if none or several)."""
    batch_key = squash(run.batch.title)
    for text in (title, Path(file_name).stem):
        hay = squash(text).replace(batch_key, "")
        found: set[int] = set()
        taken: list[tuple[int, int]] = []
        for spelling, uid in run.spellings():
            start = hay.find(spelling)
            while start >= 0:
                end = start + len(spelling)
                if not any(s < end and start < e for s, e in taken):
                    taken.append((start, end))
                    found.add(uid)
                start = hay.find(spelling, start + 1)
        if len(found) == 1:
            return run.units[found.pop()]
        if len(found) > 1:
            return None
    return None


def _accept(run: _Run, item: _Item, base: FileResult, book: ParsedBook, sender_units: set[int] | None) -> FileResult:
    try:
        ident, reading = _identify(run, item, book, sender_units)
        unit = ident.unit
        assigned = run.assigned.get(unit.id, {})
        ev = evaluate(reading, ident.layout, assigned, run.tasks, ident.batch.year, item.received_at.date(),
                      run.rules)
    except _Quarantine:
        raise
    except Exception as exc:  # noqa: BLE001 - a file we fail to understand is quarantined, the run goes on
        logger.exception("collect: cannot interpret %s", item.name)
        raise _Quarantine(f"文件内容无法解读（{type(exc).__name__}），已隔离待人工查看。请办公室检查该文件，"
                          "必要时请单位使用下发的工作簿重新填报。") from exc
    if ev.formula_cells:
        first = ev.formula_cells[0]
        where = f"{first['sheet']}!{first['cell']}" if first.get("cell") else first["sheet"]
        raise _Quarantine(
            f"{where} {first['message']}，出于安全考虑整个文件未接收。请删去开头的“=”等符号或改写内容后重新报送。",
            problems=ev.formula_cells, unit=unit)
    problems = ident.problems + ev.problems
    if sender_units is not None and unit.id not in sender_units:  # signed: the signature vouches for the unit
        senders = _sender_names(run, sender_units)
        problems.insert(0, _problem(
            "warning", f"这是“{unit.name}”的工作簿，却由“{senders}”的邮箱 {_address(item.sender)} 发来；"
                       f"已按“{unit.name}”接收，请核实。"))
    if not ev.responses and not any(p["severity"] == "error" for p in problems):
        problems.append(_problem("warning", "工作簿中没有填写任何任务的落实情况，本次没有记录内容。",
                                 sheet=reading.sheet.name))

    ext = item.suffix if item.suffix in SUPPORTED_SUFFIXES else ".bin"
    archive = run.ws.archive / f"{item.sha256}{ext}"
    if run.archived_size(archive) != item.size:
        assert item.data is not None
        run.archive(archive, item.data)
        run.note_archived(archive, item.size)
    run.checkpoint("archived")
    sid = run.ledger.record_submission(
        sha256=item.sha256, file_name=item.name, archive_path=_rel(run, archive), received_at=item.received_at,
        now=run.now, outcome="accepted", batch_id=ident.batch.id, unit_id=unit.id, signed=ident.signed,
        source=item.source, message_id=item.message_id, sender=item.sender, contact=reading.contact or None,
        phone=reading.phone or None, responses=ev.responses, problems=problems,
        replaces=item.retry_of["id"] if item.retry_of else None,
    )
    run.recorded(item.sha256)
    run.checkpoint("recorded")
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
    errors = sum(p["severity"] == "error" for p in problems)
    base.reason = f"接收 {len(ev.responses)} 项" + (f"，{len(problems)} 个问题（其中 {errors} 个需更正）" if problems else "")
    return base


def _size(path: Path) -> int | None:
    try:
        return os.stat(path).st_size
    except OSError:
        return None


def _rel(run: _Run, path: Path) -> str:
    try:
        return path.relative_to(run.ws.root).as_posix()
    except ValueError:
        return str(path)


def _quarantine(run: _Run, item: _Item, base: FileResult, q: _Quarantine) -> FileResult:
    if item.retry_of is not None:  # refused again: nothing new to keep
        result = _duplicate(run, item, base, item.retry_of)
        result.reason = (result.reason or "") + f"重新检查后仍不能接收：{q.reason}"
        return result
    stem = safe_filename(item.name, max_len=60, default="附件")
    target = run.ws.quarantine / f"{item.sha256[:12]}-{stem}"
    if _size(target) != item.size:
        run.write(target, item.data, item.path)
    lines = [
        f"文件：{item.name}",
        f"收到时间：{clock.iso(item.received_at)}",
        f"来源：{item.source}" + (f"（发件人 {item.sender}）" if item.sender else ""),
        f"SHA-256：{item.sha256}",
        f"隔离原因：{q.reason}",
    ]
    lines += [f"  - {p.get('sheet') or ''}{'!' + p['cell'] if p.get('cell') else ''} {p['message']}" for p in q.problems]
    run.write(target.with_name(target.name + ".原因.txt"), ("\r\n".join(lines) + "\r\n").encode("utf-8"))
    run.checkpoint("quarantined")
    sid = run.ledger.record_submission(
        sha256=item.sha256, file_name=item.name, archive_path=_rel(run, target), received_at=item.received_at,
        now=run.now, outcome="quarantined", batch_id=run.batch.id, unit_id=q.unit.id if q.unit else None,
        reason=q.reason, source=item.source, message_id=item.message_id, sender=item.sender,
        problems=q.problems, quarantine_path=_rel(run, target),
    )
    run.recorded(item.sha256)
    run.checkpoint("recorded")
    run.remove_later(item)
    base.outcome = "quarantined"
    base.reason = q.reason
    base.problems = q.problems
    base.submission_id = sid
    base.quarantine_path = str(target)
    if q.unit is not None:
        base.unit, base.unit_id = q.unit.name, q.unit.id
    return base


def _duplicate(run: _Run, item: _Item, base: FileResult, previous: dict[str, Any]) -> FileResult:
    run.remove_later(item)
    unit = run.units.get(previous["unit_id"]) if previous.get("unit_id") else None
    what = "已接收" if previous["outcome"] == "accepted" else "已隔离"
    base.outcome = "duplicate"
    base.reason = (f"同一文件已于 {previous['processed_at'][:16].replace('T', ' ')} 处理过（{what}，"
                   f"当时文件名“{previous['file_name']}”），本次不重复处理。")
    base.submission_id = previous["id"]
    base.signed = bool(previous["signed"])
    if unit is not None:
        base.unit, base.unit_id = unit.name, unit.id
    path = run.ws.root / previous["archive_path"]
    if previous["outcome"] == "accepted":
        base.archive_path = str(path)
    else:
        base.quarantine_path = str(path)
    return base


def result_line(result: FileResult) -> str:
    """One line for the office: accepted N rows, problems M / quarantined: reason."""
    if result.outcome == "accepted":
        text = f"已接收 {result.rows_accepted} 项"
        if result.problems:
            text += f"，问题 {len(result.problems)} 个"
        return text
    if result.outcome == "duplicate":
        return "重复文件，已跳过"
    if result.outcome == "skipped":
        return f"已跳过：{result.reason}"
    return f"已隔离：{result.reason}"

