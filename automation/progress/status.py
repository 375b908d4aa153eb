"""``automation status``: the batch's progress as one object (the terminal table, ``--json``, and the
console's ``/api/status`` all render this)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from automation import clock
from automation.config import Config
from automation.ledger import Ledger
from automation.ledger.records import CurrentAnswer
from automation.progress.summary import effective_status, load_snapshot, round_window

__all__ = ["status_summary", "assignment_json", "ASSIGNMENT_KEYS"]

#: The per-assignment keys of ``automation status --json``, in this order.
ASSIGNMENT_KEYS = ("unit", "task", "role", "status", "progress", "completed_on", "evidence", "problems",
                   "submitted_at")


def assignment_json(row: CurrentAnswer) -> dict[str, Any]:
    """One current answer as the ``status --json`` object (exactly :data:`ASSIGNMENT_KEYS`).

    ``problems`` is the unit's own 存在问题及下步打算 text; the problems found in collection are in the
    report's 问题清单.
    """
    return {
        "unit": row.unit, "task": row.task, "role": row.role, "status": effective_status(row.status),
        "progress": row.progress or "", "completed_on": row.completed_on, "evidence": row.evidence or "",
        "problems": row.issues or "", "submitted_at": row.submitted_at,
    }


def status_summary(config: Config, ledger: Ledger, now: dt.datetime, round_number: int | None = None) -> dict[str, Any]:
    """The ``automation status --json`` object: batch, deadline, working days left, completion, per-task
    lines, per-unit counts (worst first) and every assignment's current answer.

    ``round_number`` (``status --round N``): that reporting round — a past one as it stood at the end
    of its deadline day, with each unit's 本期已报送 / 本期未报送.
    """
    with ledger.reading():
        snap = load_snapshot(config, ledger, now, round_number)
        before = round_window(snap.round)[1] if snap.past and snap.round else None
        assignments = [assignment_json(r) for r in ledger.current_answers(snap.batch.id, before=before)]
    info = snap.deadline
    shown = snap.round
    return {
        "batch": snap.batch.title,
        "deadline": info.deadline.isoformat(),
        "now": clock.iso(snap.now),
        "days_left": info.days_left,
        "deadline_passed": info.passed,
        "completion": round(snap.overall.completion, 4),
        "counts": snap.overall.to_json(),
        "tasks": [
            {"task": t.number, "title": t.title, "status": r.headline, "summary": r.summary, "text": r.text(),
             "done": r.counts.done, "applicable": r.counts.applicable, "unreported": r.counts.unreported,
             "unfinished_units": r.unfinished_units(), "deadline": t.deadline, **snap.dues[t.number].to_json()}
            for t in snap.tasks for r in [snap.rollups[t.number]]
        ],
        "overdue_tasks": len(snap.overdue_tasks),
        "round": {**shown.to_json(), "past": snap.past} if shown else None,
        "rounds": [r.to_json() for r in snap.rounds],
        "units": [u.to_json() for u in snap.units],
        "assignments": assignments,
    }
