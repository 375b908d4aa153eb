"""Durable copies of returned files: the archive (accepted originals by hash) and the quarantine.

Nothing is lost: an accepted file's original is kept as ``archive/<sha256>.<ext>``; a refused
one is copied to ``quarantine/<hash>-<name>`` next to a ``.原因.txt`` saying why.  An inbox file
is removed only after its copy (and, the caller sees to it, its ledger rows) are on disk.

Two modes.  A single file (``batched=False``) has its copy fsynced, with its folder, before the
call returns.  A batch run writes copies without an fsync each and makes them all durable at
once (:meth:`Storage.sync`: one ``os.sync``; Windows, which has none: an fsync per copy) before
it removes the inbox files they cover (:meth:`Storage.remove_stored`).  Every write goes
through :mod:`automation.fsutil` (temporary file, rename; its permissions policy).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from automation import clock
from automation.collect.inputs import Input, Unreadable, unreadable_reason
from automation.collect.safety import SUPPORTED_SUFFIXES
from automation.fsutil import atomic_copy, atomic_write_bytes, safe_filename, stale_temp, sync_files
from automation.model import Problem
from automation.workspace import Workspace

__all__ = ["Storage"]

logger = logging.getLogger(__name__)


def _size(path: Path) -> int | None:
    try:
        return os.stat(path).st_size
    except OSError:
        return None


class Storage:
    """The archive and quarantine folders of a workspace, and the inbox files waiting to leave."""

    def __init__(self, ws: Workspace, batched: bool = False) -> None:
        self.ws = ws
        self.batched = batched
        for folder in (ws.inbox, ws.archive, ws.quarantine):
            folder.mkdir(parents=True, exist_ok=True)
        self.unsynced: list[Path] = []     # copies written without fsync (batched)
        self.removals: list[Path] = []     # inbox files to remove once everything is durable
        self._archived: dict[str, int] | None = None

    # -- writing

    def _write(self, target: Path, data: bytes | None = None, src: Path | None = None) -> None:
        """Write a copy atomically; durable now unless batched.  Copying from ``src`` raises
        :class:`Unreadable` when the source cannot be opened (a file too big to hold, locked)."""
        sync = not self.batched
        if data is None:
            assert src is not None
            try:
                fin = open(src, "rb")  # closed by the with below
            except OSError as exc:
                raise Unreadable(unreadable_reason(exc)) from exc
            with fin:
                atomic_copy(target, fin, sync=sync)
        else:
            atomic_write_bytes(target, data, sync=sync)
        if self.batched:
            self.unsynced.append(target)

    def archive(self, item: Input) -> Path:
        """The archive copy of an accepted file, written unless it is there already (same size).

        If a batched copy fails (disk full) the caller must drop the rows not committed yet and
        remove no input (:meth:`forget_removals`): the next run does those files again.
        """
        ext = item.suffix if item.suffix in SUPPORTED_SUFFIXES else ".bin"
        target = self.ws.archive / f"{item.sha256}{ext}"
        if self.archived_size(target) != item.size:
            assert item.data is not None
            self._write(target, item.data)
            self._note_archived(target, item.size)
        return target

    def restore_archive(self, item: Input, archive_path: str) -> None:
        """Put the archive copy of an accepted file back if it is missing or short.

        A power cut can keep a ledger commit while losing the copy written just before it (both wait
        for the same sync); the input is still in the inbox then, because it is removed only after
        that sync, so the copy is made again from it before it leaves.
        """
        if item.data is None or not archive_path:
            return
        archive = self.ws.root / archive_path
        if archive.parent == self.ws.archive and self.archived_size(archive) != item.size:
            logger.warning("collect: archive copy %s was missing; restored from %s", archive.name, item.name)
            self._write(archive, item.data)
            self._note_archived(archive, item.size)

    def quarantine(self, item: Input, reason: str, problems: Sequence[Problem]) -> Path:
        """Copy a refused file to the quarantine with its ``.原因.txt``; the copy's path."""
        stem = safe_filename(item.name, max_len=60, default="附件")
        target = self.ws.quarantine / f"{item.sha256[:12]}-{stem}"
        if _size(target) != item.size:
            self._write(target, item.data, item.path)
        lines = [
            f"文件：{item.name}",
            f"收到时间：{clock.iso(item.received_at)}",
            f"来源：{item.source}" + (f"（发件人 {item.sender}）" if item.sender else ""),
            f"SHA-256：{item.sha256}",
            f"隔离原因：{reason}",
        ]
        lines += [f"  - {p.sheet or ''}{'!' + p.cell if p.cell else ''} {p.message}" for p in problems]
        self._write(target.with_name(target.name + ".原因.txt"), ("\r\n".join(lines) + "\r\n").encode("utf-8"))
        return target

    def relative(self, path: Path) -> str:
        """A copy's path as the ledger keeps it (relative to the workspace)."""
        try:
            return path.relative_to(self.ws.root).as_posix()
        except ValueError:
            return str(path)

    # -- what is in the archive

    def archived_size(self, path: Path) -> int | None:
        """Size of an archive copy if it exists: one directory listing per run instead of a stat
        per file (the archive holds every file ever received, and a miss is the common case)."""
        if path.parent != self.ws.archive:
            return _size(path)
        if self._archived is None:
            self._archived = {}
            with os.scandir(self.ws.archive) as entries:
                for entry in entries:
                    if stale_temp(entry.name):  # a copy a killed run was writing: never used
                        Path(entry.path).unlink(missing_ok=True)
                        continue
                    try:
                        self._archived[entry.name] = entry.stat().st_size
                    except OSError:
                        continue
        return self._archived.get(path.name)

    def _note_archived(self, path: Path, size: int) -> None:
        if self._archived is not None and path.parent == self.ws.archive:
            self._archived[path.name] = size

    def sweep(self) -> None:
        """Remove temporary copies that runs killed mid-write left in the archive and the
        quarantine (the archive's are removed by its listing)."""
        self.archived_size(self.ws.archive / "-")
        with os.scandir(self.ws.quarantine) as entries:
            for entry in entries:
                if stale_temp(entry.name):
                    Path(entry.path).unlink(missing_ok=True)

    # -- leaving the inbox

    def remove_later(self, item: Input) -> int:
        """Remove an inbox file once its copy and its ledger rows are durable (at once when not
        batched); the number of removals now waiting."""
        if not (item.in_inbox and item.path is not None):
            return len(self.removals)
        if self.batched:
            self.removals.append(item.path)
        else:
            _remove(item.path)
        return len(self.removals)

    def forget_removals(self) -> None:
        """The rows of the waiting inputs may be gone (a failed commit or copy): they stay in the inbox."""
        self.removals.clear()

    def pending(self) -> bool:
        return bool(self.unsynced or self.removals)

    def sync(self, also: Sequence[Path] = ()) -> None:
        """Make every copy written so far durable, and the files ``also`` (the ledger's WAL)."""
        sync_files([*self.unsynced, *also])
        self.unsynced.clear()

    def remove_stored(self) -> None:
        """Remove the inbox files waiting for it (call after :meth:`sync` and the ledger's commit)."""
        removals, self.removals = self.removals, []
        for path in removals:
            _remove(path)


def _remove(path: Path) -> None:
    """Remove a stored inbox file; a failure (locked on Windows) only costs a duplicate next run."""
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        logger.warning("collect: cannot remove %s from the inbox (%s); the next run will", path, exc)
