"""Long actions in the background, one of a kind at a time, with their progress.

A build for 2,000 units or a collect of 500 files takes minutes; the page that starts one
returns at once and shows a progress bar fed from here (``/api/jobs``), and the console stays
usable meanwhile.  Each job runs on its own thread with its own ledger connection (SQLite
connections are per thread; WAL lets the pages read while it writes).  Jobs are not daemon
threads: stopping the server waits for a running one to finish its unit of work.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from automation import clock
from automation.errors import AutomationError

__all__ = ["Job", "JobRunner", "Busy", "KINDS"]

log = logging.getLogger(__name__)

#: Job kinds and what the office calls them.
KINDS = {"build": "生成工作簿", "send": "分发", "collect": "回收", "remind": "催办", "report": "生成报表",
         "import": "导入任务表"}


class Busy(AutomationError):
    """A job of the same kind is running."""


@dataclass
class Job:
    id: int
    kind: str
    label: str
    account: str
    started: dt.datetime
    state: str = "running"            # running / done / failed
    done: int = 0
    total: int | None = None
    step: str = ""
    finished: dt.datetime | None = None
    error: str = ""
    result: Any = None
    thread: threading.Thread | None = field(default=None, repr=False)

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def percent(self) -> int | None:
        return int(100 * self.done / self.total) if self.total else None

    def progress(self, done: int, total: int | None, step: str) -> None:
        self.done, self.total, self.step = done, total, step

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "name": KINDS.get(self.kind, self.kind), "label": self.label,
                "state": self.state, "done": self.done, "total": self.total, "percent": self.percent,
                "step": self.step, "started": clock.iso(self.started),
                "finished": clock.iso(self.finished) if self.finished else None, "error": self.error}


class JobRunner:
    def __init__(self, open_ledger: Callable[[], Any]) -> None:
        self.open_ledger = open_ledger
        self.lock = threading.Lock()
        self.latest: dict[str, Job] = {}
        self.ids = itertools.count(1)

    def start(self, kind: str, label: str, account: str, work: Callable[[Any, Job], Any]) -> Job:
        """Run ``work(ledger, job)`` on a thread; :class:`Busy` when a job of ``kind`` still runs."""
        with self.lock:
            current = self.latest.get(kind)
            if current is not None and current.running:
                raise Busy(f"正在{KINDS.get(kind, kind)}（{current.label}，{current.account} 于 "
                           f"{clock.local(current.started):%H:%M} 开始），请等它完成后再操作。")
            job = Job(next(self.ids), kind, label, account, clock.now())
            self.latest[kind] = job
        job.thread = threading.Thread(target=self._run, args=(job, work), name=f"duban-{kind}-{job.id}")
        job.thread.start()
        return job

    def _run(self, job: Job, work: Callable[[Any, Job], Any]) -> None:
        ledger = None
        try:
            ledger = self.open_ledger()
            job.result = work(ledger, job)
            job.state = "done"
        except AutomationError as exc:
            job.state, job.error = "failed", str(exc)
        except Exception as exc:  # noqa: BLE001 - a bug must end the job visibly, not kill the server
            log.exception("job %s failed", job.kind)
            job.state, job.error = "failed", f"内部错误 {type(exc).__name__}: {exc}"
        finally:
            job.finished = clock.now()
            if ledger is not None:
                ledger.close()

    def get(self, kind: str) -> Job | None:
        return self.latest.get(kind)

    def running(self) -> list[Job]:
        return [j for j in self.latest.values() if j.running]

    def wait(self, timeout: float | None = None) -> None:
        """Wait for every running job (the server is stopping)."""
        for job in list(self.latest.values()):
            if job.thread is not None:
                job.thread.join(timeout)

    def to_json(self) -> dict[str, Any]:
        return {kind: job.to_json() for kind, job in self.latest.items()}
