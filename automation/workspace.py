"""The workspace: the one folder holding the ledger and every file the tool writes.

``<workspace>/`` holds ``ledger.sqlite3`` and the folders below; nothing outside it is ever
written (except a report path the user names).  Every path the other layers use is a property
or method here, so a folder is renamed in one place and a reader of the code finds them all.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from automation import clock
from automation.fsutil import safe_filename

__all__ = ["Workspace", "LEDGER_FILE", "FOLDERS"]

LEDGER_FILE = "ledger.sqlite3"
FOLDERS = ("workbooks", "inbox", "archive", "quarantine", "outbox", "reports", "logs")


@dataclass(frozen=True)
class Workspace:
    root: Path

    @property
    def ledger_path(self) -> Path:
        return self.root / LEDGER_FILE

    @property
    def workbooks(self) -> Path:
        return self.root / "workbooks"

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"

    @property
    def archive(self) -> Path:
        return self.root / "archive"

    @property
    def quarantine(self) -> Path:
        return self.root / "quarantine"

    @property
    def outbox(self) -> Path:
        return self.root / "outbox"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def uploads(self) -> Path:
        """Files uploaded in the console, under generated names, until they are collected or imported."""
        return self.root / "uploads"

    @property
    def lock_file(self) -> Path:
        """Held by ``automation run`` so two services never share one workspace."""
        return self.root / "automation.lock"

    def reissued(self, day: dt.date) -> Path:
        """Where the workbooks re-attached to one day's reminders go."""
        return self.workbooks / "reissued" / day.isoformat()

    def report_path(self, batch_title: str, now: dt.datetime) -> Path:
        """A time-stamped report file name, as ``automation report`` writes by default."""
        stamp = clock.local(now).strftime("%Y%m%d-%H%M")
        return self.reports / safe_filename(f"{batch_title}_汇总表_{stamp}.xlsx", max_len=120)

    def latest_report_path(self, batch_title: str) -> Path:
        """The report the service refreshes in place (and the console offers for download)."""
        return self.reports / safe_filename(f"{batch_title}_汇总表_最新.xlsx", max_len=120)

    def exists(self) -> bool:
        """Has ``automation init`` run here (is there a ledger)?"""
        return self.ledger_path.is_file()

    def create(self) -> None:
        for folder in FOLDERS:
            (self.root / folder).mkdir(parents=True, exist_ok=True)
