"""``automation run``: the long-lived scheduler that keeps the loop going by itself.

Three jobs on :mod:`schedule`:

- **poll** every ``[service] poll_minutes``: the workspace's ``inbox/`` folder
  (:func:`automation.collect.pipeline.collect_paths`: files staff saved there, or another mail
  client's rule drops there), then the mailbox when ``[imap] host`` is set
  (:func:`automation.mail.intake.collect_imap`), then every receipt still owed according to the ledger (this poll's files and any that could not be sent
  before), then (``report_after_collect``) a report refresh when something new arrived;
- **remind** every day at ``[remind] time`` and once at start (catch-up after the PC was off):
  :func:`automation.remind.send_reminders` decides itself what is due, so running it is enough;
- **report** only after new submissions (part of poll, guarded on its own).

What keeps it alive unattended:

- every job is *guarded*: ``schedule`` never reschedules a job that raised (it would then be
  "due" forever, run first on every pass and block the rest), so each job catches and logs
  everything and the scheduler always sees a normal return;
- one instance per workspace: :class:`InstanceLock`, a lock file holding the PID; a lock left by a
  process that no longer exists (power cut, Task Scheduler's "End task") is taken over;
- SIGTERM (systemd) and Ctrl-C stop it cleanly between jobs; the lock is released;
- a rotating log file in the workspace (``[service] log_file / log_max_kb / log_backups``);
- Asia/Shanghai times whatever the host's zone: ``schedule`` computes with the naive local
  ``datetime.datetime.now()``; we hand it the naive Shanghai time of *our* clock instead (see
  :func:`_schedule_clock`), which is also how tests drive it with injected time, without sleeping.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import logging.handlers
import os
import signal
import socket
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import schedule

from automation import clock
from automation.config import Config
from automation.errors import AutomationError, ConfigError

__all__ = ["Service", "InstanceLock", "AlreadyRunning", "JobStats", "pid_alive", "LOCK_FILE", "setup_logging"]

log = logging.getLogger("automation.service")

LOCK_FILE = "automation.lock"
JOB_NAMES = {"poll": "收取邮件", "receipts": "发送回执", "remind": "催办提醒", "report": "刷新汇总表"}

# =========================================================================== schedule in Shanghai time

_clock: Callable[[], dt.datetime] = clock.now


class _ScheduleDateTime(dt.datetime):
    """``datetime.datetime`` as schedule sees it: ``now()`` is the naive Asia/Shanghai time of our clock."""

    @classmethod
    def now(cls, tz: dt.tzinfo | None = None) -> dt.datetime:  # type: ignore[override]
        value = clock.local(_clock())
        return value.astimezone(tz) if tz is not None else value.replace(tzinfo=None)


_shim = types.ModuleType("datetime")
_shim.__dict__.update({k: v for k, v in vars(dt).items() if not k.startswith("__")})
_shim.datetime = _ScheduleDateTime  # type: ignore[attr-defined]
schedule.datetime = _shim  # type: ignore[attr-defined]  # the scheduler is ours alone in this process


@contextmanager
def _schedule_clock(now_fn: Callable[[], dt.datetime]) -> Iterator[None]:
    global _clock
    previous, _clock = _clock, now_fn
    try:
        yield
    finally:
        _clock = previous


# =========================================================================== one instance


class AlreadyRunning(AutomationError):
    """Another ``automation run`` (or ``collect --imap``) holds the workspace lock."""


def pid_alive(pid: int) -> bool:
    """Is a process with this PID running on this machine?"""
    if pid <= 0:
        return False
    if sys.platform == "win32":  # os.kill(pid, 0) would *terminate* the process on Windows
        import ctypes

        kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return kernel32.GetLastError() == 5  # access denied: it exists
        try:
            code = ctypes.c_ulong()
            kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
            return code.value == 259  # STILL_ACTIVE
        finally:
            kernel32.CloseHandle(handle)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class InstanceLock:
    """``<workspace>/automation.lock``: created exclusively, holds PID, host and start time.

    A lock whose process is gone is stale and taken over; a lock written by another computer
    (a workspace on a shared drive) cannot be checked and is respected.
    """

    def __init__(self, workspace: str | Path, what: str = "automation run") -> None:
        self.path = Path(workspace) / LOCK_FILE
        self.what = what
        self.held = False
        self.took_over: dict[str, Any] | None = None  # the stale lock replaced, for the log

    def read(self) -> dict[str, Any] | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError:
            return {}
        try:
            info = json.loads(text)
        except ValueError:
            return {}
        return info if isinstance(info, dict) else {}

    def _stale(self, info: dict[str, Any]) -> bool:
        if not info:  # being written this instant, or garbage: garbage only when old
            try:
                return time.time() - self.path.stat().st_mtime > 30
            except FileNotFoundError:
                return True
        if info.get("host") not in (None, socket.gethostname()):
            return False
        return not pid_alive(int(info.get("pid") or 0))

    def acquire(self, now: dt.datetime | None = None) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _attempt in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                info = self.read()
                if info is None:
                    continue
                if not self._stale(info):
                    raise AlreadyRunning(self._message(info)) from None
                self.took_over = info
                if self.read() == info:  # nobody took it over in between
                    with suppress(FileNotFoundError):
                        self.path.unlink()
                continue
            payload = {"pid": os.getpid(), "host": socket.gethostname(), "command": self.what,
                       "started": clock.iso(now or clock.now())}
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(payload, fh, ensure_ascii=False)
                fh.flush()
                os.fsync(fh.fileno())
            self.held = True
            return
        raise AlreadyRunning(f"{self.path}：无法创建锁文件，请稍后重试。")

    def _message(self, info: dict[str, Any]) -> str:
        pid, host = info.get("pid", "?"), info.get("host")
        where = f"计算机 {host} 上" if host and host != socket.gethostname() else ""
        return (f"{where}已有 {info.get('command', 'automation')} 在运行（PID {pid}，{info.get('started', '启动时间不明')} "
                f"启动），同一工作目录只能运行一个。如确认它已不在运行，请删除锁文件 {self.path} 后重试。")

    def release(self) -> None:
        if not self.held:
            return
        info = self.read()
        if info and info.get("pid") == os.getpid():
            with suppress(FileNotFoundError):
                self.path.unlink()
        self.held = False

    def __enter__(self) -> InstanceLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


# =========================================================================== logging


class _ShanghaiFormatter(logging.Formatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return dt.datetime.fromtimestamp(record.created, clock.TZ).strftime(datefmt or "%Y-%m-%d %H:%M:%S")


def setup_logging(config: Config, console: bool = False) -> list[logging.Handler]:
    """Attach a rotating file handler (and optionally stderr) to the ``automation`` logger.

    Returns the handlers so the caller can detach and close them.
    """
    svc = config.service
    path = Path(svc.log_file)
    if not path.is_absolute():
        path = config.workspace / path
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = _ShanghaiFormatter("%(asctime)s %(levelname)-7s %(message)s")
    file_handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=max(1, svc.log_max_kb) * 1024, backupCount=max(0, svc.log_backups), encoding="utf-8")
    file_handler.setFormatter(fmt)
    handlers: list[logging.Handler] = [file_handler]
    if console:
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(fmt)
        handlers.append(stream)
    root = logging.getLogger("automation")
    root.setLevel(logging.INFO)
    for h in handlers:
        root.addHandler(h)
    return handlers


def _detach(handlers: list[logging.Handler]) -> None:
    root = logging.getLogger("automation")
    for h in handlers:
        root.removeHandler(h)
        h.close()


# =========================================================================== the service


@dataclass
class JobStats:
    runs: int = 0
    failures: int = 0
    last_run: dt.datetime | None = None
    last_error: str | None = None


class Service:
    """The scheduler.  Everything it touches is injectable so tests drive it without sleeping.

    ``now_fn``: the clock (aware datetimes; default :func:`automation.clock.now`); ``sleep_fn``:
    how to wait (default: an event wait that a stop request interrupts).  ``collect_fn``,
    ``remind_fn``, ``receipts_fn``, ``report_fn``, ``transport_factory`` default to the real
    stage functions (imported when first needed).
    """

    def __init__(
        self,
        config: Config,
        *,
        now_fn: Callable[[], dt.datetime] = clock.now,
        sleep_fn: Callable[[float], Any] | None = None,
        collect_fn: Callable[..., Any] | None = None,
        remind_fn: Callable[..., Any] | None = None,
        receipts_fn: Callable[..., Any] | None = None,
        folder_fn: Callable[..., Any] | None = None,
        report_fn: Callable[..., Any] | None = None,
        transport_factory: Callable[..., Any] | None = None,
        console: bool = False,
        handle_signals: bool = True,
    ) -> None:
        if config.service.poll_minutes < 1:
            raise ConfigError("config.toml：[service] poll_minutes 应为不小于 1 的整数（分钟）。")
        self.config = config
        self.now_fn = now_fn
        self._stopping = threading.Event()
        self.sleep_fn = sleep_fn or self._stopping.wait
        self._collect_fn = collect_fn
        self._remind_fn = remind_fn
        self._receipts_fn = receipts_fn
        self._folder_fn = folder_fn
        self._report_fn = report_fn
        self._transport_factory = transport_factory
        self.console = console
        self.handle_signals = handle_signals
        self.scheduler = schedule.Scheduler()
        self.jobs: dict[str, schedule.Job] = {}
        self.stats: dict[str, JobStats] = {name: JobStats() for name in JOB_NAMES}
        self.lock = InstanceLock(config.workspace)
        self.report_pending = False
        self.ledger: Any = None
        self._handlers: list[logging.Handler] = []
        self._old_signals: dict[int, Any] = {}
        self.started = False

    # ------------------------------------------------------------------ lifecycle

    @property
    def polling(self) -> bool:
        return bool(self.config.imap.host)

    def start(self, catch_up: bool = True) -> None:
        """Take the lock, open the log and the ledger, schedule the jobs, run the catch-up pass."""
        from automation.ledger import open_workspace

        self.lock.acquire(self.now_fn())
        try:
            self._handlers = setup_logging(self.config, self.console)
            if self.lock.took_over is not None:
                log.warning("上次运行（PID %s，%s 启动）未正常退出，已接管它留下的锁文件。",
                            self.lock.took_over.get("pid", "?"), self.lock.took_over.get("started", "时间不明"))
            _ws, self.ledger = open_workspace(self.config)
            self._install_signals()
            with _schedule_clock(self.now_fn):
                # Always: the inbox folder is read even without a mailbox.
                self.jobs["poll"] = self.scheduler.every(self.config.service.poll_minutes).minutes.do(
                    self._guard, "poll", self.poll)
                self.jobs["remind"] = self.scheduler.every().day.at(self.config.remind.time).do(
                    self._guard, "remind", self.remind)
        except BaseException:
            self.close()
            raise
        self.started = True
        log.info("督办服务已启动（PID %s，工作目录 %s）：%s；每天 %s（北京时间）检查催办提醒。", os.getpid(),
                 self.config.workspace,
                 f"每 {self.config.service.poll_minutes} 分钟检查 inbox 文件夹" + (
                     f"并收取邮箱 {self.config.imap.user}" if self.polling else "（未配置 [imap] host，不收取邮件）"),
                 self.config.remind.time)
        if catch_up:
            self.run_all()

    def run_all(self) -> bool:
        """Every job once, now (start-up catch-up and ``run --once``); True when none failed."""
        ok = self._guard("poll", self.poll)     # the inbox folder, and the mailbox when configured
        ok &= self._guard("remind", self.remind)
        return ok

    def run_pending(self) -> None:
        """Run the jobs that are due at ``now_fn()``."""
        with _schedule_clock(self.now_fn):
            self.scheduler.run_pending()

    def idle_seconds(self) -> float:
        with _schedule_clock(self.now_fn):
            idle = self.scheduler.idle_seconds
        return 60.0 if idle is None else max(0.0, idle)

    def next_run(self, name: str) -> dt.datetime | None:
        """When a job runs next (aware, Asia/Shanghai)."""
        job = self.jobs.get(name)
        return job.next_run.replace(tzinfo=clock.TZ) if job and job.next_run else None

    def run_forever(self) -> None:
        """Start, then run due jobs until stopped (SIGTERM, Ctrl-C or :meth:`stop`)."""
        if not self.started:
            self.start()
        try:
            while not self._stopping.is_set():
                self.run_pending()
                if self._stopping.is_set():
                    break
                # At most a minute at a time: a PC waking from sleep catches up within a minute.
                self.sleep_fn(max(1.0, min(self.idle_seconds(), 60.0)))
        finally:
            self.close()

    def run_once(self) -> bool:
        """One pass (poll, receipts, report, reminders) and exit: for Task Scheduler or cron."""
        self.start(catch_up=False)
        try:
            return self.run_all()
        finally:
            self.close()

    def stop(self, reason: str = "") -> None:
        if not self._stopping.is_set():
            log.info("正在停止督办服务%s……", f"（{reason}）" if reason else "")
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def close(self) -> None:
        """Release everything start() took (idempotent)."""
        if self.started:
            log.info("督办服务已停止。")
        self.started = False
        self.scheduler.clear()
        self.jobs.clear()
        self._restore_signals()
        if self.ledger is not None:
            self.ledger.close()
            self.ledger = None
        self.lock.release()
        _detach(self._handlers)
        self._handlers = []

    def _install_signals(self) -> None:
        if not self.handle_signals or threading.current_thread() is not threading.main_thread():
            return
        wanted = [signal.SIGINT, signal.SIGTERM]
        if hasattr(signal, "SIGBREAK"):  # Ctrl-Break in a Windows console
            wanted.append(signal.SIGBREAK)  # type: ignore[attr-defined]
        for sig in wanted:
            self._old_signals[sig] = signal.signal(sig, self._on_signal)

    def _restore_signals(self) -> None:
        for sig, handler in self._old_signals.items():
            with suppress(ValueError, TypeError):
                signal.signal(sig, handler)
        self._old_signals.clear()

    def _on_signal(self, signum: int, _frame: Any) -> None:
        if self._stopping.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        self.stop(signal.Signals(signum).name)

    # ------------------------------------------------------------------ guarded jobs

    def _guard(self, name: str, job: Callable[[], Any]) -> bool:
        """Run a job; log and count whatever it raises, never let it reach ``schedule``."""
        stats = self.stats[name]
        stats.runs += 1
        stats.last_run = self.now_fn()
        try:
            job()
        except Exception as exc:  # noqa: BLE001 - the point of the guard
            stats.failures += 1
            stats.last_error = f"{type(exc).__name__}: {exc}"
            if isinstance(exc, AutomationError):
                log.error("%s失败：%s", JOB_NAMES[name], exc)
            else:
                log.exception("%s出错（程序内部错误，请把日志发给维护者）：%s", JOB_NAMES[name], exc)
            return False
        return True

    def _transport(self) -> Any:
        """A transport for one job (used in a ``with`` block, so it is closed after the job)."""
        factory = self._transport_factory
        if factory is None:
            from automation.mail.transports import transport_from_config as factory
        from automation.workspace import Workspace

        return factory(self.config, Workspace(self.config.workspace))

    def poll(self) -> None:
        """Collect the inbox folder and the mailbox, send receipts, refresh the report when
        something new came in."""
        from automation.mail.intake import collect_imap

        now = self.now_fn()
        try:
            files = list(self._collect_folder(now))
            folder_error = None
        except AutomationError as exc:  # logged, and the mailbox, receipts and report still run
            files, folder_error = [], exc
            log.error("inbox 文件夹收取失败：%s", exc)
        result = (self._collect_fn or collect_imap)(self.config, self.ledger, now) if self.polling else None
        if result is not None:
            files += result.files
        for f in files:
            log.info("收到 %s 的“%s”：%s", getattr(f, "unit", None) or getattr(f, "sender", None) or "未知发件人",
                     getattr(f, "file_name", "?"), _result_line(f))
        if result is not None and result.files:
            log.info("%s", result.summary())
        new = [f for f in files if getattr(f, "outcome", "") in ("accepted", "quarantined")]
        if self.config.collect.receipts:
            # Guarded on its own: a mail server that is down must not hold up the report.
            self._guard("receipts", lambda: self._send_receipts(now))
        if new and self.config.service.report_after_collect:
            self.report_pending = True
        if self.report_pending:
            self._guard("report", self.refresh_report)
        if result is not None and result.error:
            raise AutomationError(result.error)
        if folder_error is not None:
            raise folder_error

    def _collect_folder(self, now: dt.datetime) -> list[Any]:
        """The files waiting in ``<workspace>/inbox/`` (nothing is opened while it is empty)."""
        from automation.workspace import Workspace

        inbox = Workspace(self.config.workspace).inbox
        if not inbox.is_dir() or not any(inbox.iterdir()):
            return []
        from automation.collect.runlock import CollectBusy

        collect = self._folder_fn
        if collect is None:
            from automation.collect.pipeline import collect_paths as collect
        try:
            # Never wait on a collect someone started by hand: the scheduler would stall behind it.
            results = list(collect(self.config, self.ledger, None, now, lock_timeout=0))
        except CollectBusy:
            log.info("inbox 文件夹：另一个 automation collect 正在处理，本轮跳过，下一轮再收。")
            return []
        if results:
            log.info("inbox 文件夹：%d 个文件", len(results))
        return results

    def _send_receipts(self, now: dt.datetime) -> None:
        """Every receipt still owed, whichever poll (or earlier process) collected the file.

        :func:`automation.mail.receipts.send_owed_receipts` takes the list from the ledger, not
        from memory: a receipt that failed (server down, 授权码 wrong) or that a killed service
        never sent is found again at the next poll, also after a restart; none goes out twice.
        The transport is opened only when a receipt is owed.
        """
        receipts = self._receipts_fn
        if receipts is None:
            from automation.mail.receipts import send_owed_receipts as receipts
        sent = receipts(self.config, self.ledger, now, self._transport)
        failed = sum(1 for r in sent if getattr(r, "action", "") == "failed")
        if sent:
            log.info("回执：%d 封%s", len(sent), f"，其中 {failed} 封发送失败（下次收取时重试）" if failed else "")
        if failed:
            raise AutomationError(f"{failed} 封回执发送失败，下次收取时重试。")

    def refresh_report(self) -> None:
        report = self._report_fn
        if report is None:
            from functools import partial

            from automation.progress.report import build_report, latest_report_path

            report = partial(build_report, out=latest_report_path(self.config, self.config.batch.title))
        path = report(self.config, self.ledger, self.now_fn())
        self.report_pending = False
        log.info("汇总表已更新：%s", path)

    def remind(self) -> None:
        remind = self._remind_fn
        if remind is None:
            from automation.remind import send_reminders as remind
        with self._transport() as transport:
            results = remind(self.config, self.ledger, self.now_fn(), transport)
        counts: dict[str, int] = {}
        for r in results:
            counts[getattr(r, "action", "?")] = counts.get(getattr(r, "action", "?"), 0) + 1
        if counts.get("sent") or counts.get("failed"):
            log.info("催办提醒：发送 %d 封，失败 %d 封。", counts.get("sent", 0), counts.get("failed", 0))
        if counts.get("failed"):
            raise AutomationError(f"{counts['failed']} 封催办提醒发送失败，将在下次检查时重试。")


def _result_line(result: Any) -> str:
    try:
        from automation.collect.pipeline import result_line
    except ImportError:  # pragma: no cover - collect always ships with the package
        return str(getattr(result, "outcome", ""))
    try:
        return result_line(result)
    except Exception:  # noqa: BLE001 - a stub result in tests
        return str(getattr(result, "outcome", ""))
