"""One folder collect at a time per workspace: ``<workspace>/collect.lock``, held by an OS lock.

Two ``automation collect`` runs over the same inbox would read the same files, both find them
new and both store them.  The second run waits for the first (saying so once) and then finds
what the first stored as duplicates.  The lock is the operating system's (``flock`` on POSIX,
``msvcrt.locking`` on Windows), so it goes away with the process that held it, even one that
was killed: nothing stale is ever left to clean up.  The file itself only names who holds it.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from automation.errors import AutomationError

__all__ = ["CollectLock", "CollectBusy", "LOCK_NAME", "WAIT_SECONDS"]

LOCK_NAME = "collect.lock"
#: How long a second run waits for the first before it gives up with one ``Error:`` line.
WAIT_SECONDS = 3600.0
_POLL = 0.2


class CollectBusy(AutomationError):
    """Another collect held the lock for longer than this one would wait."""


def _try_lock(fd: int) -> bool:
    if os.name == "nt":  # pragma: no cover - Windows
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


class CollectLock:
    """Hold the workspace's collect lock for a ``with`` block; wait for another holder first.

    ``waiting(message)`` is called once when another run holds it (the CLI prints it on stderr).
    """

    def __init__(self, workspace: Path, waiting: Callable[[str], None] | None = None,
                 timeout: float = WAIT_SECONDS) -> None:
        self.path = Path(workspace) / LOCK_NAME
        self.waiting = waiting
        self.timeout = timeout
        self._fd: int | None = None

    def _holder(self) -> str:
        try:
            info = json.loads(self.path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            return ""
        if not isinstance(info, dict):
            return ""
        return f"（PID {info.get('pid', '?')}）" if info.get("pid") else ""

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if not _try_lock(fd):
                message = (f"另一个 automation collect 正在处理本工作目录的文件{self._holder()}，等待其结束后再处理"
                           "（它处理过的文件本次会作为重复文件跳过）……")
                if self.waiting is not None:
                    self.waiting(message)
                deadline = time.monotonic() + self.timeout
                while not _try_lock(fd):
                    if time.monotonic() > deadline:
                        raise CollectBusy(
                            f"另一个 automation collect 已运行超过 {self.timeout / 60:.0f} 分钟仍未结束{self._holder()}，"
                            "本次未处理任何文件。请等它结束后重新运行。")
                    time.sleep(_POLL)
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode("utf-8"))
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the OS lock
            self._fd = None

    def __enter__(self) -> CollectLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
