"""File-system helpers: atomic writes, safe file names, content hashes.

Outputs are written to a temporary file in the same directory and renamed into place, so a
reader (or a crash) never sees half a workbook.  Names that come from units or e-mail are never
trusted as paths: :func:`safe_filename` keeps Chinese, drops what Windows refuses.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "safe_filename", "sha256_file", "sha256_bytes"]

_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}


@contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; on success it replaces ``target`` atomically."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=target.suffix, dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        # mkstemp creates 0600; outputs get the usual permissions (shared folders, Samba).
        os.chmod(tmp_path, 0o666 & ~_UMASK)
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _umask()  # read once: os.umask can only be read by setting it, which is not thread-safe


def atomic_write_bytes(target: str | Path, data: bytes) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def atomic_write_text(target: str | Path, text: str) -> Path:
    return atomic_write_bytes(target, text.encode("utf-8"))


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
