"""The pool (parent side): long-lived worker subprocesses, served without ever blocking.

The worker is started once and reused (starting an interpreter per file would cost more than
parsing it), and restarted when it dies, so an abort in native code costs one file, not the
run.  The pipes are served without ever blocking (non-blocking pipes and ``poll`` on POSIX, a
reader and a writer thread per worker on Windows), so a stuck worker can never block the caller
before its timeout.
"""

from __future__ import annotations

import atexit
import json
import math
import os
import queue
import select
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict

from automation.collect.safety.limits import Limits, ParseFailed, Refused
from automation.collect.safety.protocol import (
    ParsedBook,
    decode_reply,
    frame_prefix,
    read_frame,
    request_head,
    split_frames,
)

__all__ = ["ParserPool", "get_pool", "shutdown_pool", "IO_MODE"]


#: How the parent talks to its workers: "select" (POSIX: non-blocking pipes served by the calling
#: thread with ``poll``) or "threads" (a reader and a writer thread per worker; Windows, where select() does
#: not take pipes).
IO_MODE = "select" if os.name == "posix" else "threads"


_PIPE_BYTES = 1 << 20
_PUMP_READ = 8 << 20   # most bytes one pump() reads from a worker before the caller looks at the clock


def _widen_pipe(fd: int) -> None:
    """Ask Linux for a 1 MB pipe (64 KB by default): requests and replies of a few files fit, so a
    worker neither waits for the rest of a request nor to hand over its reply while the
    collecting thread is busy storing a file (it serves the pipes between files)."""
    try:
        import fcntl

        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
    except (ImportError, AttributeError, OSError):  # not Linux, or above /proc/sys/fs/pipe-max-size
        pass


class _Worker:
    """One worker subprocess and the requests it has been sent (answered in order).

    The caller must never block on a worker: one stuck on a file stops reading, its stdin pipe
    fills (64 KB on Linux, less on Windows) and a blocking write would hang the caller before
    :meth:`ParserPool.result` could apply the timeout.  Two ways to keep that promise:

    - ``select`` (POSIX): the pipes are non-blocking; requests wait in a buffer and are written
      whenever the pipe takes them, replies are read as they come, all by the calling thread
      while it waits for a result (``poll``).  No helper threads: every thread in
      the collecting process competes for the interpreter lock, and SQLite lets go of it for
      each statement, so each helper thread's wake-up cost the collecting thread a switch.
    - ``threads`` (Windows): a writer thread per worker writes queued requests, a reader thread
      reads replies into a queue.
    """

    def __init__(self, argv: Sequence[str], mode: str = IO_MODE, max_reply: int = 1 << 30) -> None:
        self.argv = list(argv)
        self.mode = mode
        self.max_reply = max_reply        # a longer reply is a worker gone wrong: treated as its death
        self.proc: subprocess.Popen[bytes] | None = None
        self.pending: list[tuple[int, bytes, str, tuple[str, ...]]] = []
        # threads
        self.replies: queue.Queue[bytes | None] = queue.Queue()
        self.requests: queue.Queue[tuple[bytes, bytes] | None] = queue.Queue()
        # select
        self._out = bytearray()           # request bytes the pipe has not taken yet
        self._in = bytearray()            # reply bytes not yet split into frames
        self._frames: list[bytes] = []    # whole replies, oldest first
        self._eof = False                 # the worker's stdout has ended (it died or exited)
        self._rfd = self._wfd = -1

    def start(self) -> subprocess.Popen[bytes]:
        env = {**os.environ, "RUST_BACKTRACE": "0", "PYTHONDONTWRITEBYTECODE": "1"}
        flags = getattr(subprocess, "BELOW_NORMAL_PRIORITY_CLASS", 0)  # Windows; POSIX workers nice themselves
        proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, env=env, close_fds=True, creationflags=flags)
        assert proc.stdin is not None and proc.stdout is not None
        if self.mode == "select":
            self._rfd, self._wfd = proc.stdout.fileno(), proc.stdin.fileno()
            for fd in (self._rfd, self._wfd):
                os.set_blocking(fd, False)
                _widen_pipe(fd)
            self._out, self._in, self._frames, self._eof = bytearray(), bytearray(), [], False
        else:
            replies: queue.Queue[bytes | None] = queue.Queue()
            requests: queue.Queue[tuple[bytes, bytes] | None] = queue.Queue()
            threading.Thread(target=self._reader, args=(proc, replies, self.max_reply), daemon=True).start()
            threading.Thread(target=self._writer, args=(proc, requests), daemon=True).start()
            self.replies, self.requests = replies, requests
        self.proc = proc
        return proc

    @staticmethod
    def _reader(proc: subprocess.Popen[bytes], replies: queue.Queue[bytes | None], max_reply: int) -> None:
        assert proc.stdout is not None
        try:
            while True:
                frame = read_frame(proc.stdout, max_reply)
                replies.put(frame)
                if frame is None:
                    return
        except (OSError, ValueError):
            replies.put(None)

    @staticmethod
    def _writer(proc: subprocess.Popen[bytes], requests: queue.Queue[tuple[bytes, bytes] | None]) -> None:
        """Write queued frames until told to stop (None: close stdin, the worker exits on EOF).

        A write that fails (the worker died or was killed) ends the thread; the reader sees the
        EOF and the pool settles the files.
        """
        stdin = proc.stdin
        assert stdin is not None
        try:
            while (request := requests.get()) is not None:
                head, data = request
                stdin.write(frame_prefix(len(head) + len(data)) + head)
                stdin.write(data)
                stdin.flush()
        except (OSError, ValueError):
            pass
        finally:
            try:
                stdin.close()
            except (OSError, ValueError):
                pass

    def send(self, item: tuple[int, bytes, str, tuple[str, ...]]) -> bool:
        """Queue a request (starting the worker if there is none); never blocks.

        A worker that has died is *not* replaced here: the replies it wrote before dying are
        still to be read, in order, and the end of its output tells :meth:`ParserPool.result`
        which file killed it.  Replacing it now would hand the next file's reply to the file
        that killed it.  The request is queued anyway; the restart sends it again.
        """
        if self.proc is None:
            try:
                self.start()
            except OSError:
                return False
        _ticket, data, name, wanted = item
        head = request_head(name, wanted)
        if self.mode == "select":
            self._out += frame_prefix(len(head) + len(data)) + head
            self._out += data
            self.pump()
        else:
            self.requests.put((head, data))
        return True

    # -- select mode

    def pump(self) -> None:
        """Write what the stdin pipe takes and read what the worker has written; never blocks."""
        if self.proc is None:
            return
        while self._out:
            try:
                n = os.write(self._wfd, self._out)
            except BlockingIOError:
                break
            except OSError:  # the worker died: its replies, then the end of its output, tell
                self._out.clear()
                break
            del self._out[:n]
        budget = _PUMP_READ  # bounded, so a worker that never stops writing cannot hold the caller here
        while not self._eof and budget > 0:
            try:
                chunk = os.read(self._rfd, min(budget, 1 << 20))
            except BlockingIOError:
                break
            except OSError:
                chunk = b""
            if not chunk:
                self._eof = True
                break
            budget -= len(chunk)
            self._in += chunk
            frames, too_long = split_frames(self._in, self.max_reply)
            self._frames += frames
            if too_long:  # never buffer what it claims: end its output here
                self._in, self._eof = bytearray(), True
                return

    def fds(self) -> tuple[list[int], list[int]]:
        """What to poll for this worker: (readable, writable) descriptors."""
        if self.proc is None:
            return [], []
        return ([] if self._eof else [self._rfd]), ([self._wfd] if self._out else [])

    def has_reply(self) -> bool:
        """Whether :meth:`take` would return at once."""
        if self.mode == "select":
            self.pump()
            return bool(self._frames) or self._eof
        return not self.replies.empty()

    def take(self, timeout: float, others: Sequence[_Worker] = ()) -> bytes | None:
        """The next reply (None: the worker's output ended); :class:`queue.Empty` after ``timeout``.

        In select mode the other workers are served while waiting (their requests written,
        their replies read), so they keep parsing ahead.
        """
        if self.mode != "select":
            return self.replies.get(timeout=timeout)
        deadline = time.monotonic() + timeout
        while True:
            for w in (self, *others):
                w.pump()
            if self._frames:
                return self._frames.pop(0)
            if self._eof:
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                raise queue.Empty
            poller = select.poll()  # not select(): it refuses descriptors numbered 1024 and above
            for w in (self, *others):
                readable, writable = w.fds()
                for fd in readable:
                    poller.register(fd, select.POLLIN)
                for fd in writable:
                    poller.register(fd, select.POLLOUT)
            poller.poll(max(1, math.ceil(left * 1000)))

    # -- both

    def kill(self) -> None:
        """Kill the process; in threads mode its writer thread then fails on the broken pipe."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if self.mode != "select":
            self.requests.put(None)
        try:
            proc.kill()
        except OSError:
            pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover
            pass
        for stream in (proc.stdout, proc.stdin if self.mode == "select" else None):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass
        self._out, self._in, self._frames, self._eof = bytearray(), bytearray(), [], False

    def close(self) -> None:
        """Let the worker finish on EOF (after what was queued), kill it if it does not exit soon."""
        proc = self.proc
        if proc is None:
            return
        if self.mode == "select":
            self._out.clear()  # what was not written yet is not wanted any more
            for stream in (proc.stdin, proc.stdout):  # EOF: the worker exits after the request it is on
                try:  # (and its replies are not wanted: one blocked writing a big one must not wait)
                    if stream is not None:
                        stream.close()
                except OSError:
                    pass
        else:
            try:  # what was queued but not yet written is not wanted any more
                while True:
                    self.requests.get_nowait()
            except queue.Empty:
                pass
            self.requests.put(None)
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            pass
        self.kill()


class ParserPool:
    """Long-lived worker subprocesses that pre-check and parse files under memory/time limits.

    ``parse`` is synchronous; ``submit``/``result`` let the caller keep files in flight in the
    workers while it validates and stores earlier ones.  A worker that dies (native abort,
    memory limit) or hangs past the timeout costs the file it was reading, nothing else: it is
    replaced and the files queued behind it are sent again.  ``argv`` replaces the worker
    command (tests use it to simulate a hanging worker).
    """

    def __init__(self, limits: Limits, argv: Sequence[str] | None = None, workers: int | None = None,
                 io_mode: str | None = None) -> None:
        self.limits = limits
        self.argv = list(argv) if argv else [sys.executable, "-m", "automation.collect.safety", "--worker",
                                             json.dumps(asdict(limits))]
        count = workers if workers is not None else min(2, os.cpu_count() or 1)
        mode = io_mode or IO_MODE
        if mode not in ("select", "threads") or (mode == "select" and os.name != "posix"):
            raise ValueError(f"io_mode {mode!r} is not available here")
        max_reply = max(limits.parse_memory_mb, 64) << 20  # no worker can build a reply bigger than its memory
        self.workers = [_Worker(self.argv, mode, max_reply) for _ in range(max(1, count))]
        self._where: dict[int, _Worker] = {}
        self._next = 0
        self._done: dict[int, ParsedBook | Refused] = {}
        self._unwanted: set[int] = set()
        self.restarts = 0

    def close(self) -> None:
        """Stop the workers (they exit on EOF; killed if they do not)."""
        for w in self.workers:
            w.close()

    def submit(self, data: bytes, name: str, wanted: Sequence[str] = ()) -> int:
        """Queue a file for parsing; returns a ticket for :meth:`result`."""
        ticket = self._next
        self._next += 1
        worker = min(self.workers, key=lambda w: len(w.pending))
        item = (ticket, data, name, tuple(wanted))
        worker.pending.append(item)
        self._where[ticket] = worker
        if not worker.send(item):
            self._crashed(worker)
        return ticket

    def result(self, ticket: int) -> ParsedBook:
        """The parsed book for ``ticket``, or :class:`Refused`/:class:`ParseFailed` raised."""
        while ticket not in self._done:
            worker = self._where.get(ticket)
            if worker is None or not worker.pending:
                raise KeyError(ticket)
            try:
                frame = worker.take(self.limits.parse_timeout, [w for w in self.workers if w is not worker])
            except queue.Empty:
                first = worker.pending.pop(0)
                self._settle(first[0], ParseFailed(
                    f"读取超时（超过 {self.limits.parse_timeout:.0f} 秒），疑似异常文件，未处理。", "timeout"))
                self._restart(worker)
                continue
            if frame is None:
                self._crashed(worker)
                continue
            first = worker.pending.pop(0)
            self._settle(first[0], decode_reply(frame))
        outcome = self._done.pop(ticket)
        if isinstance(outcome, Refused):
            raise outcome
        return outcome

    def ready(self, ticket: int) -> bool:
        """Whether :meth:`result` would return at once (the reply has arrived)."""
        if ticket in self._done:
            return True
        worker = self._where.get(ticket)
        return worker is not None and bool(worker.pending) and worker.pending[0][0] == ticket \
            and worker.has_reply()

    def parse(self, data: bytes, name: str, wanted: Sequence[str] = ()) -> ParsedBook:
        return self.result(self.submit(data, name, wanted))

    def discard(self, ticket: int) -> None:
        """The caller will not ask for this ticket's result (the file was refused before it was
        needed): drop it now or when it arrives, so a long-lived pool does not keep it."""
        if self._done.pop(ticket, None) is None and ticket in self._where:
            self._unwanted.add(ticket)

    def _settle(self, ticket: int, outcome: ParsedBook | Refused) -> None:
        self._where.pop(ticket, None)
        if ticket in self._unwanted:
            self._unwanted.discard(ticket)
            return
        self._done[ticket] = outcome

    def _crashed(self, worker: _Worker) -> None:
        """The worker died: the oldest file it had killed it; the others are sent again."""
        if worker.pending:
            first = worker.pending.pop(0)
            self._settle(first[0], ParseFailed(
                "读取时程序异常退出（内容过大或结构异常，超出内存上限），疑似异常文件，未处理。", "crash"))
        self._restart(worker)

    def _restart(self, worker: _Worker) -> None:
        worker.kill()
        self.restarts += 1
        rest, worker.pending = worker.pending, []
        for item in rest:
            worker.pending.append(item)
            if not worker.send(item):  # pragma: no cover - a worker that cannot even start
                worker.pending.pop()
                self._settle(item[0], ParseFailed("读取程序无法启动。", "crash"))


_POOLS: dict[Limits, ParserPool] = {}
_POOL_LOCK = threading.Lock()


def get_pool(limits: Limits) -> ParserPool:
    """The process-wide pool for these limits (started lazily, stopped at exit)."""
    with _POOL_LOCK:
        pool = _POOLS.get(limits)
        if pool is None:
            pool = _POOLS[limits] = ParserPool(limits)
        return pool


def shutdown_pool() -> None:
    """Stop every worker this process started."""
    with _POOL_LOCK:
        pools = list(_POOLS.values())
        _POOLS.clear()
    for pool in pools:
        pool.close()


atexit.register(shutdown_pool)
