"""The files a collect run is given: found in folders, known by name and time, then read and hashed.

A file that cannot be read now (open in WPS/Excel on Windows, still being written by the mail
client, moved away meanwhile) is not an error: it becomes an input marked ``unreadable``, the
run skips it, records nothing and leaves it where it is for the next run.  Names that come from
a mailbox are shown, never used as paths.
"""

from __future__ import annotations

import datetime as dt
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

__all__ = ["Input", "Unreadable", "InboxCheck", "expand", "stat_input", "load_input", "display_name",
           "unreadable_reason"]

_SKIP_NAMES = {"thumbs.db", "desktop.ini", ".ds_store"}


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


def display_name(name: str) -> str:
    """The name to show and record: the last path part, without control characters, bounded."""
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


def expand(paths: Iterable[Path]) -> list[Path]:
    """Files and folders (walked recursively, skipping hidden and lock files) → files, each once."""
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

    Without ``received_at`` the file's modification time stands for the receipt time (never
    later than now).  A file that cannot be read now (locked by WPS/Excel on Windows, still being
    written, removed meanwhile) becomes a skipped item instead of stopping the run.
    """
    item = Input(name=display_name(name or path.name), data=None, sha256="", size=0,
                 received_at=clock.local(received_at or now), path=path, in_inbox=in_inbox(path))
    try:
        st = path.stat()
    except OSError as exc:
        item.unreadable = unreadable_reason(exc)
        return item
    if received_at is None:
        item.received_at = min(dt.datetime.fromtimestamp(st.st_mtime, clock.TZ), clock.local(now))
    item.size = st.st_size
    return item


def load_input(item: Input, limit: int) -> Input:
    """Read and hash a file found by :func:`stat_input`; one bigger than ``limit`` is only hashed.

    The size that decides is what is read now, not what the stat saw (a file still being copied
    into the inbox grows): at most ``limit`` bytes are ever held.
    """
    if item.unreadable or item.path is None:
        return item
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
        item.unreadable = unreadable_reason(exc)
    return item
