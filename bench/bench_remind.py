"""Benchmark: reminder decisions (``due_reminders``) as the service runs them, naive baseline side by side.

The service asks "which reminders are due?" every few minutes all year.  The naive way reads every
assignment's current answer (``Ledger.current_answers``: 1 103 rows for the sample) and normalises
each status in Python, on every decision; ours asks SQL only which units still have open assignments
(one short row per unit and due date) and reads the task details only for the units that are actually due.  Both
give the same reminders (checked here).

    python bench/bench_remind.py            # prints a table and the ratio
"""

from __future__ import annotations

import datetime as dt
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from automation import clock, remind  # noqa: E402
from automation.config import load_config  # noqa: E402
from automation.ledger import Ledger, open_workspace  # noqa: E402
from automation.ledger.records import OpenTask, Response  # noqa: E402
from automation.mail.transports import OutboxTransport  # noqa: E402
from automation.tasks.importing import init_batch  # noqa: E402
from automation.text import normalize_status  # noqa: E402
from automation.workdays import WorkCalendar  # noqa: E402


def naive_unfinished(ledger: Ledger, batch_id: int) -> dict[int, list[OpenTask]]:
    """The obvious version: every current answer, every status normalised in Python."""
    titles = {t.number: t.title for t in ledger.tasks(batch_id)}
    out: dict[int, list[OpenTask]] = {}
    for a in ledger.current_answers(batch_id):
        status = normalize_status(a.status) if a.status else None
        if status in remind.FINISHED:
            continue
        out.setdefault(a.unit_id, []).append(OpenTask(a.task, titles.get(a.task, ""), a.role, status or "",
                                                      a.submitted_at))
    return out


def setup(folder: Path) -> tuple[Any, Ledger]:
    shutil.copy(ROOT / "config.toml", folder / "config.toml")
    (folder / "samples").mkdir()
    shutil.copy(ROOT / "samples" / "task-table.txt", folder / "samples")
    text = (folder / "config.toml").read_text(encoding="utf-8").replace("deadline = 2021-12-15", "deadline = 2026-09-30")
    (folder / "config.toml").write_text(text, encoding="utf-8")
    config = load_config(folder / "config.toml")
    _ws, ledger = open_workspace(config)
    start = dt.datetime(2026, 9, 1, 8, tzinfo=clock.TZ)
    init_batch(config, ledger, start)
    batch = ledger.require_batch(config.batch.title)
    # two thirds of the units have answered everything (mixed statuses), the rest nothing
    for u in ledger.assigned_units(batch.id):
        if u.id % 3:
            tasks = [a.task for a in ledger.assignments(batch.id, u.id)]
            ledger.record_submission(
                sha256=f"b{u.id}", file_name="x.xlsx", archive_path="-", received_at=start, now=start,
                outcome="accepted", batch_id=batch.id, unit_id=u.id,
                responses=[Response(t, ("已完成", "推进中", "不适用")[t % 3], "p") for t in tasks])
    return config, ledger


def run(config: Any, ledger: Ledger, times: list[dt.datetime], outbox: Path) -> tuple[float, list[Any]]:
    """The service loop: decide and send (to an outbox folder) at every poll."""
    cal = WorkCalendar()
    transport = OutboxTransport(outbox)
    out = []
    t0 = time.perf_counter()
    for now in times:
        out.append([(r.unit, r.idem_key) for r in remind.send_reminders(config, ledger, now, transport, calendar=cal)])
    return time.perf_counter() - t0, out


def main() -> None:
    # the service polling every 10 minutes for three days around the deadline (reminders are sent
    # at 09:00, so almost every poll decides that nothing is due: that is the case to make cheap)
    first = dt.datetime(2026, 9, 29, 0, tzinfo=clock.TZ)
    times = [first + dt.timedelta(minutes=10 * i) for i in range(3 * 144)]
    with tempfile.TemporaryDirectory() as tmp:
        config, ledger = setup(Path(tmp))
        config = replace(config, remind=replace(config.remind, attach_workbook=False))
        fast, ours = run(config, ledger, times, Path(tmp) / "outbox")
        ledger.close()
    with tempfile.TemporaryDirectory() as tmp:
        config, ledger = setup(Path(tmp))
        config = replace(config, remind=replace(config.remind, attach_workbook=False))
        # the naive decision: one full scan of current answers per poll, then per-unit lookups
        stash: dict[int, list[OpenTask]] = {}

        def naive_open_due_dates(batch_id: int, default_due: str) -> dict[int, dict[str, int]]:
            stash.clear()
            stash.update(naive_unfinished(ledger, batch_id))
            return {unit: {default_due: len(tasks)} for unit, tasks in sorted(stash.items())}

        ledger.open_due_dates = naive_open_due_dates  # type: ignore[method-assign]
        ledger.open_tasks = lambda batch_id, unit_id: stash.get(unit_id, [])  # type: ignore[method-assign]
        slow, theirs = run(config, ledger, times, Path(tmp) / "outbox")
        ledger.close()
    assert ours == theirs, "the two versions disagree"
    n = len(times)
    sent = sum(len(x) for x in ours)
    print(f"remind every 10 minutes for 3 days: {n} polls, {sent} reminders sent (37 units, 1103 assignments)")
    print(f"  naive (current_answers + normalize_status per poll): {slow:.3f} s  ({slow / n * 1000:.2f} ms per poll)")
    print(f"  ours  (open units from SQL, details only when due):  {fast:.3f} s  ({fast / n * 1000:.2f} ms per poll)")
    print(f"  ratio: {slow / fast:.1f}x")


if __name__ == "__main__":
    main()
