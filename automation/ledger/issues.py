"""Workbook layouts (template versions) and every workbook handed out."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from automation import clock
from automation.ledger.connection import Connection, _j


class IssueQueries(Connection):
    def save_layout(self, version: str, spec: dict[str, Any], now: dt.datetime) -> None:
        self.conn.execute(
            "INSERT OR IGNORE INTO layouts(version, spec_json, created_at) VALUES (?, ?, ?)",
            (version, json.dumps(spec, ensure_ascii=False), clock.iso(now)),
        )

    def layout(self, version: str) -> dict[str, Any] | None:
        r = self.conn.execute("SELECT spec_json FROM layouts WHERE version = ?", (version,)).fetchone()
        return json.loads(r[0]) if r else None

    def record_issue(self, batch_id: int, unit_id: int, issued_at: dt.datetime, template_version: str,
                     task_numbers: Sequence[int], path: str | None, sha256: str | None,
                     purpose: str = "build") -> None:
        self.conn.execute(
            "INSERT INTO issues(batch_id, unit_id, issued_at, template_version, tasks_json, path, sha256, purpose) "
            "VALUES (?,?,?,?,?,?,?,?)",
            (batch_id, unit_id, clock.iso(issued_at), template_version, _j(list(task_numbers)), path, sha256,
             purpose),
        )

    def latest_template_version(self, batch_id: int) -> str | None:
        """The layout version of the batch's most recently issued workbook (None: none issued yet)."""
        r = self.conn.execute(
            "SELECT template_version FROM issues WHERE batch_id = ? ORDER BY issued_at DESC, id DESC LIMIT 1",
            (batch_id,)).fetchone()
        return str(r[0]) if r else None
