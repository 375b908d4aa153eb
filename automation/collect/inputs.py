"""The files a collect run is given: found in folders, known by name and time, then read and hashed.

A file that cannot be read now (open in WPS/Excel on Windows, still being written by the mail
client, moved away meanwhile) is not an error: it becomes an input marked ``unreadable``, the
run skips it, records nothing and leaves it where it is for the next run.  A file is taken as
still being written when it was modified less than :data:`QUIET_SECONDS` before the run (or
after it began), or when its size or modification time changes between the run's first look
and its reading.  Names that come from a mailbox are shown, never used as paths; a name on disk
that is not UTF-8 (GBK from a Windows share or an old unzip) is shown decoded as GB18030.

What a folder holds that is not a file to read (a link to a missing file, a link looping back
into its own folder, a hidden ``.name``, a folder that cannot be opened) is reported as an
:class:`Ignored` entry, never silently dropped and never a reason to stop the run.
"""

from __future__ import annotations

import datetime as dt
import errno
import functools
import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from automation import clock
from automation.errors import AutomationError
from automation.fsutil import sha256_bytes
from automation.ledger.records import Submission

__all__ = ["Input", "Unreadable", "InboxCheck", "Ignored", "expand", "scan", "stat_input", "load_input",
           "display_name", "unreadable_reason", "QUIET_SECONDS"]

_SKIP_NAMES = {"thumbs.db", "desktop.ini", ".ds_store"}
#: A file modified less than this before the run (or after it began) may still be being written:
#: it is skipped and retried next run.
QUIET_SECONDS = 5.0
#: A modification time further than this after the run's ``now`` is a wrong clock (a file dated
#: 2030), not a file being written: it is read, and never trusted for ordering.
FUTURE_SLACK = dt.timedelta(hours=1)
_BEING_WRITTEN = ("文件刚刚被修改过或正在写入（可能仍在下载、复制或保存中）；本次跳过，未做任何记录，文件留在原处，"
                  "下次运行时自动处理。")


@dataclass
class Input:
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
    ticket: int | None = None             # the parser pool's ticket while it is being parsed
    retry_of: Submission | None = None    # an earlier quarantined submission of the same bytes
    unreadable: str | None = None         # why the file cannot be read now (left for the next run)
    seen: tuple[int, int] | None = None   # (size, mtime in ns) at the run's first look

    @functools.cached_property
    def suffix(self) -> str:
        return Path(self.name).suffix.lower()


class Unreadable(Exception):
    """An input that cannot be read now (locked, being written, gone): skipped, retried next run."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def unreadable_reason(exc: OSError) -> str:
    what = exc.strerror or type(exc).__name__
    return (f"文件暂时无法读取（{what}），可能正在 WPS/Excel 中打开或仍在保存、下载中；本次跳过，"
            "未做任何记录，文件留在原处，下次运行时自动重试。如一直跳过，请关闭打开它的程序。")


@dataclass(frozen=True)
class Ignored:
    """Something in a folder that is not read: where it is and why (for the run's summary)."""

    path: Path
    reason: str

    @property
    def name(self) -> str:
        return display_name(self.path.name)


def decoded(name: str) -> str:
    """A name as text that can be stored.  Bytes that were not UTF-8 (kept by Python as lone
    surrogates: a GBK name from a Windows share or an old unzip) are read as GB18030, the whole
    name if it decodes so, else each undecodable run; what still fails becomes U+FFFD."""
    if not any("\ud800" <= ch <= "\udfff" for ch in name):
        return name
    try:
        return name.encode("utf-8", "surrogateescape").decode("gb18030")
    except UnicodeError:
        pass
    out: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            raw = "".join(run).encode("utf-8", "surrogateescape")
            out.append(raw.decode("gb18030", errors="replace"))
            run.clear()

    for ch in name:
        if "\udc80" <= ch <= "\udcff":
            run.append(ch)
            continue
        flush()
        out.append("\ufffd" if "\ud800" <= ch <= "\udfff" else ch)
    flush()
    return "".join(out)


def display_name(name: str) -> str:
    """The name to show and record: the last path part, decoded, without control characters, bounded."""
    name = decoded(name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch >= " " and ch != "\x7f").strip()
    return name[:200] or "附件"


def _quiet_skip(name: str) -> bool:
    """Files never reported: Office/LibreOffice lock files (~$…, .~lock…#), Thumbs.db and the
    like, our own reason files, macOS's ._ companions."""
    lower = name.lower()
    return (name.startswith(("~$", ".~lock", "._")) or lower in _SKIP_NAMES or name.endswith(".原因.txt"))


_HIDDEN = ("文件名以“.”开头（隐藏文件），未处理，文件留在原处。如果这是单位报回的工作簿，请去掉文件名开头的“.”后重新运行。")


def _link_reason(path: str) -> str:
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "这是一个指向自身的链接（循环链接），无法读取，已跳过。请删除该链接。"
    target = ""
    try:
        target = decoded(os.readlink(path))
    except OSError:
        pass
    return (f"这是一个链接（快捷方式），但它指向的文件{f'“{target}”' if target else ''}不存在，已跳过。"
            "请把工作簿本身放入收件箱。")


def _walk(folder: Path, out: list[Path], ignored: list[Ignored], seen: set[tuple[int, int]]) -> None:
    # os.scandir: file types come with the listing, no stat per file (links and folders aside).
    try:
        st = os.stat(folder)
        key = (st.st_dev, st.st_ino)
        if key in seen:
            ignored.append(Ignored(folder, "这个文件夹链接指回了已读过的文件夹（循环链接），已跳过，其中文件不会重复处理。"
                                           "请删除该链接。"))
            return
        seen.add(key)
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as exc:
        ignored.append(Ignored(folder, f"文件夹无法打开（{exc.strerror or type(exc).__name__}），其中的文件本次没有处理。"
                                       "请检查文件夹权限后重新运行。"))
        return
    for e in entries:
        if _quiet_skip(e.name):
            continue
        try:
            is_dir, is_file = e.is_dir(), e.is_file()
        except OSError:
            is_dir = is_file = False
        if e.name.startswith("."):
            if not is_dir:
                ignored.append(Ignored(Path(e.path), _HIDDEN))
            continue
        if is_dir:
            _walk(Path(e.path), out, ignored, seen)
        elif is_file:
            out.append(Path(e.path))
        elif e.is_symlink():
            ignored.append(Ignored(Path(e.path), _link_reason(e.path)))
        else:
            ignored.append(Ignored(Path(e.path), "这不是普通文件（如设备或管道文件），已跳过。"))


def scan(paths: Iterable[Path]) -> tuple[list[Path], list[Ignored]]:
    """Files and folders (walked recursively) → the files to read, each once, and what was not read.

    Lock files and system files are passed over without a word; anything else not read (hidden
    names, broken or looping links, folders that cannot be opened) is an :class:`Ignored` entry.
    """
    out: list[Path] = []
    ignored: list[Ignored] = []
    seen: set[tuple[int, int]] = set()
    for p in paths:
        p = Path(p)
        if p.is_dir():
            _walk(p, out, ignored, seen)
        elif p.is_file():
            out.append(p)
        elif p.is_symlink():
            ignored.append(Ignored(p, _link_reason(str(p))))
        else:
            raise AutomationError(f"{display_name(str(p))}：文件或文件夹不存在。")
    return list(dict.fromkeys(out)), ignored


def expand(paths: Iterable[Path]) -> list[Path]:
    """Files and folders (walked recursively, skipping hidden and lock files) → files, each once."""
    return scan(paths)[0]


class InboxCheck:
    """Whether a file lies in the inbox (so it leaves it once stored): one ``realpath`` per folder."""

    def __init__(self, inbox: Path) -> None:
        self.inbox = Path(os.path.realpath(inbox))
        self._folders: dict[str, bool] = {}

    def __call__(self, path: Path) -> bool:
        parent = str(path.parent)
        known = self._folders.get(parent)
        if known is None:
            try:
                known = Path(os.path.realpath(parent)).is_relative_to(self.inbox)
            except OSError:
                known = False
            self._folders[parent] = known
        return known


def stat_input(path: Path, now: dt.datetime, in_inbox: InboxCheck, received_at: dt.datetime | None = None,
               name: str | None = None) -> Input:
    """A file to collect, known by its name and times only (:func:`load_input` reads it).

    Without ``received_at`` the file's modification time stands for the receipt time, never
    later than ``now``: a file modified in the last :data:`QUIET_SECONDS` (or since the run
    began) is being written and is skipped; one dated further ahead than :data:`FUTURE_SLACK` (a
    wrong clock, a file dated 2030) counts from when it arrived (its status-change time, which
    no copy or unzip can set), so it cannot pass for the newest.  A file that cannot be read now
    (locked by WPS/Excel on Windows, removed meanwhile) becomes a skipped item instead of
    stopping the run.
    """
    now = clock.local(now)
    item = Input(name=display_name(name or path.name), data=None, sha256="", size=0,
                 received_at=clock.local(received_at or now), path=path,
                 in_inbox=in_inbox(path))
    try:
        st = path.stat()
    except OSError as exc:
        item.unreadable = unreadable_reason(exc)
        return item
    item.size = st.st_size
    item.seen = (st.st_size, st.st_mtime_ns)
    if received_at is None:
        modified = dt.datetime.fromtimestamp(st.st_mtime, clock.TZ)
        if now - dt.timedelta(seconds=QUIET_SECONDS) < modified <= now + FUTURE_SLACK:
            item.unreadable = _BEING_WRITTEN
        elif modified > now:
            arrived = dt.datetime.fromtimestamp(st.st_ctime, clock.TZ)
            item.received_at = min(arrived, now)
        else:
            item.received_at = modified
    return item


def load_input(item: Input, limit: int) -> Input:
    """Read and hash a file found by :func:`stat_input`; one bigger than ``limit`` is only hashed.

    The size that decides is what is read now, not what the stat saw (a file still being copied
    into the inbox grows): at most ``limit`` bytes are ever held.  A file whose size or
    modification time is not what the run first saw, or changes while it is read, is still
    being written: it is marked unreadable (skipped, left for the next run).
    """
    if item.unreadable or item.path is None:
        return item
    try:
        with item.path.open("rb") as fh:
            data = fh.read(limit + 1)
            if len(data) <= limit:
                item.data, item.sha256, item.size = data, sha256_bytes(data), len(data)
            else:
                digest, size = hashlib.sha256(data), len(data)
                del data
                while chunk := fh.read(1 << 20):
                    digest.update(chunk)
                    size += len(chunk)
                item.sha256, item.size = digest.hexdigest(), size
            st = os.fstat(fh.fileno())
    except OSError as exc:
        item.unreadable = unreadable_reason(exc)
        return item
    if st.st_size != item.size or (item.seen is not None and item.seen != (st.st_size, st.st_mtime_ns)):
        item.unreadable = _BEING_WRITTEN
    return item
