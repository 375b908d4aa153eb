"""File-system helpers: atomic, durable writes; safe file names; content hashes.

Every output (workbooks, reports, outbox mails, archive and quarantine copies) is written here:
to a temporary file in the same folder, then renamed into place, so a reader (or a crash) never
sees half a file; with ``sync`` (the default) the content and the rename are on disk when the
call returns.  Permissions policy: every file gets what the umask gives any new file (0644
under the usual 022), archive and quarantine copies included, because the office reads them
from a shared folder; an office that wants the workspace private sets its umask or the
folder's permissions, which then covers the ledger and reports too (they hold the same data).
Names that come from units or e-mail are never trusted as paths: :func:`safe_filename` keeps
Chinese, drops what Windows refuses.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "atomic_copy", "fsync_dir", "sync_files",
           "TEMP_PREFIX", "stale_temp", "safe_filename", "sha256_file", "sha256_bytes"]

_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}

#: Temporary files are ``.tmp-<pid>-<random><suffix>``: the pid tells a later run whose a leftover
#: was (:func:`stale_temp`); the random part keeps a reused pid from meeting an old leftover.
TEMP_PREFIX = ".tmp-"


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _umask()  # read once: os.umask can only be read by setting it, which is not thread-safe
_MODE = 0o666 & ~_UMASK  # mkstemp creates 0600; outputs get what any new file gets (see above)


def _temp_file(target: Path) -> tuple[int, Path]:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-", suffix=target.suffix, dir=target.parent)
    return fd, Path(name)


def fsync_dir(folder: str | Path) -> None:
    """Make a rename in ``folder`` durable (POSIX; Windows cannot open a folder for that)."""
    if os.name == "nt":  # pragma: no cover
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _finish(fd: int, tmp: Path, target: Path, sync: bool) -> None:
    """fsync (if ``sync``), set the mode, close, rename into place; the temporary file never stays."""
    try:
        try:
            if sync:
                os.fsync(fd)
            if hasattr(os, "fchmod"):
                os.fchmod(fd, _MODE)
        finally:
            os.close(fd)
        if not hasattr(os, "fchmod"):  # pragma: no cover - Windows before 3.13
            os.chmod(tmp, _MODE)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if sync:
        fsync_dir(target.parent)


@contextmanager
def atomic_path(target: str | Path, *, sync: bool = True) -> Iterator[Path]:
    """Yield a temporary path next to ``target`` (for libraries that write by path); when the
    block succeeds it replaces ``target`` atomically, durably unless ``sync=False``."""
    target = Path(target)
    fd, tmp = _temp_file(target)
    os.close(fd)
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDWR | getattr(os, "O_BINARY", 0))
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _finish(fd, tmp, target, sync)


def _write_atomically(target: str | Path, fill: Callable[[int], None], sync: bool) -> Path:
    target = Path(target)
    fd, tmp = _temp_file(target)
    try:
        fill(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    _finish(fd, tmp, target, sync)
    return target


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def atomic_write_bytes(target: str | Path, data: bytes, *, sync: bool = True) -> Path:
    """Write ``data`` to ``target`` atomically; with ``sync=False`` it is not yet durable (the caller
    makes a batch of writes durable at once: :func:`sync_files`).  Plain system calls: collect
    writes one per accepted file."""
    return _write_atomically(target, lambda fd: _write_all(fd, data), sync)


def atomic_write_text(target: str | Path, text: str, *, sync: bool = True) -> Path:
    return atomic_write_bytes(target, text.encode("utf-8"), sync=sync)


def atomic_copy(target: str | Path, source: BinaryIO, *, sync: bool = True) -> Path:
    """Copy an open file to ``target`` atomically, a megabyte at a time (never all in memory)."""
    def fill(fd: int) -> None:
        while chunk := source.read(1 << 20):
            _write_all(fd, chunk)

    return _write_atomically(target, fill, sync)


def sync_files(paths: Sequence[str | Path]) -> None:
    """Make files written with ``sync=False`` durable, all at once: one ``os.sync`` (a batch of
    copies costs one flush, not an fsync each); Windows has none, so an fsync per file there."""
    if hasattr(os, "sync"):
        os.sync()
        return
    for path in paths:  # pragma: no cover - Windows
        try:
            with open(path, "rb+") as fh:
                os.fsync(fh.fileno())
        except FileNotFoundError:
            continue


def stale_temp(name: str) -> bool:
    """A temporary file left by a process that was killed mid-write (that process is gone)."""
    if not name.startswith(TEMP_PREFIX):
        return False
    pid = name[len(TEMP_PREFIX):].split("-", 1)[0]
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


def safe_filename(name: str, max_len: int = 80, default: str = "file") -> str:
    """A file name that is safe on Windows and Linux: no separators, reserved characters or names.

    Chinese is kept; the length is bounded (in characters, keeping the extension).
    """
    name = os.path.basename(name.replace("\\", "/"))
    name = re.sub(r'[<>:"/\\|?*\x00-\x1f\x7f]', "_", name)
    name = name.strip(" .")
    stem, dot, ext = name.rpartition(".")
    if not dot or len(ext) > 8 or not stem:
        stem, ext = name, ""
    ext = ext[:8]
    keep = max_len - (len(ext) + 1 if ext else 0)
    stem = stem[:max(1, keep)].rstrip(" .") or default
    if stem.upper() in _WINDOWS_RESERVED:
        stem = "_" + stem
    return f"{stem}.{ext}" if ext else stem


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
