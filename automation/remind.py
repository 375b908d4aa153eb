"""Reminders on Chinese working days: which are due (a pure decision), and sending them.

Stage 7 of the loop.  The cadence comes from config.toml ``[remind]``; every reminder is sent
at ``time`` (Asia/Shanghai, whatever the host's zone) on a *working day* (chinese-calendar, see
:mod:`automation.workdays`).  For each unit the days form a schedule of **slots**:

- ``weekly``: every week on ``weekly_weekday`` (moved to the next working day when that day is a
  holiday, e.g. the Monday of National Day week);
- ``before``: ``N`` working days before the deadline, for each N in ``before_deadline_days``
  (0 = the deadline day itself);
- ``overdue``: every working day after the deadline (``overdue_daily``);
- ``escalate``: the first reminder once the unit is ``escalate_after_days`` working days
  overdue, with cc to ``escalate_cc`` (or ``[office] supervisor_email``); sent once per unit.

One slot per day (escalate > overdue > before > weekly).  Reminders go out only on a working day
at or after ``time``.  Then the *latest* slot that has passed is due for a unit if the unit has
unfinished assignments (no answer, or an answer other than 已完成 / 不适用) and no reminder was
sent for that slot (or on that day) yet.  Earlier slots that were missed (the machine was off, the
service stopped) are not sent one by one: the latest one goes out once, marked ``catch_up``.  A
slot counts from the unit's first distribution (or the batch's creation when nothing was mailed).

Every reminder has the key ``remind:<batch id>:<unit id>:<kind>:<date>`` in the ledger, so
:func:`send_reminders` is at-most-once like every other mailing (:func:`automation.mail.sending.send_once`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from automation import clock
from automation.config import Config, RemindConfig
from automation.ledger import Ledger
from automation.ledger.records import OpenTask
from automation.model import Batch
from automation.text import STATUS_OPTIONS, normalize_status
from automation.workdays import WorkCalendar
from automation.workspace import Workspace

__all__ = ["Slot", "Reminder", "schedule", "due_reminders", "send_reminders", "FINISHED", "KIND_NAMES"]

#: Statuses that need no reminder.
FINISHED = frozenset({"已完成", "不适用"})
KIND_NAMES = {"weekly": "每周提醒", "before": "截止前提醒", "overdue": "逾期提醒", "escalate": "逾期升级"}
_PRIORITY = {"weekly": 0, "before": 1, "overdue": 2, "escalate": 3}


@dataclass(frozen=True)
class Slot:
    """A day on which a reminder is scheduled (at ``[remind] time``)."""

    day: dt.date
    kind: str
    days_left: int | None = None   # working days to the deadline (before / weekly before the deadline)
    overdue_days: int = 0          # working days past the deadline


@dataclass(frozen=True)
class Reminder:
    """A reminder due now for one unit."""

    batch_id: int
    unit_id: int
    unit: str
    kind: str
    day: dt.date
    due_at: dt.datetime
    key: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    tasks: tuple[OpenTask, ...]
    overdue_days: int = 0
    days_left: int | None = None
    catch_up: bool = False
    missed: tuple[dt.date, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(day=self.day.isoformat(), due_at=clock.iso(self.due_at), to=list(self.to), cc=list(self.cc),
                 tasks=[t.task for t in self.tasks], missed=[m.isoformat() for m in self.missed],
                 kind_name=KIND_NAMES.get(self.kind, self.kind))
        return d


def _remind_time(remind: RemindConfig) -> dt.time:
    return dt.time.fromisoformat(remind.time)


def schedule(remind: RemindConfig, calendar: WorkCalendar, deadline: dt.date, start: dt.date,
             end: dt.date) -> list[Slot]:
    """Every slot on the days ``start`` … ``end`` (inclusive), one per day, in date order."""
    if end < start:
        return []
    days_left: dict[dt.date, int] = {}
    if start <= deadline:
        n = 0
        day = deadline
        while day >= start:
            days_left[day] = n
            n += calendar.is_workday(day)
            day -= dt.timedelta(days=1)
    overdue = calendar.workdays_between(deadline, start - dt.timedelta(days=1)) if start > deadline else 0
    escalate_at = remind.escalate_after_days
    slots: list[Slot] = []
    day = start
    while day <= end:
        workday = calendar.is_workday(day)
        if day > deadline and workday:
            overdue += 1
        if workday:
            kinds = []
            left = days_left.get(day)
            if left is not None and left in remind.before_deadline_days:
                kinds.append("before")
            if remind.weekly_weekday and (day <= deadline or not remind.overdue_daily) and _weekly(
                    remind.weekly_weekday, calendar, day):
                kinds.append("weekly")
            if overdue and remind.overdue_daily:
                kinds.append("overdue")
            if overdue and escalate_at > 0 and overdue == escalate_at:
                kinds.append("escalate")
            if kinds:
                kind = max(kinds, key=_PRIORITY.__getitem__)
                slots.append(Slot(day, kind, left if day <= deadline else None, overdue))
        day += dt.timedelta(days=1)
    return slots


def _weekly(weekday: int, calendar: WorkCalendar, day: dt.date) -> bool:
    """Is ``day`` this week's weekly slot (the weekday itself, or the first working day after it)?"""
    anchor = day - dt.timedelta(days=(day.isoweekday() - weekday) % 7)
    return calendar.next_workday(anchor) == day


def _unfinished(ledger: Ledger, batch: Batch, unit_id: int) -> list[OpenTask]:
    """The unit's assignments without an answer or with an answer other than 已完成 / 不适用.

    Statuses are stored canonical; anything else is normalised here as a safeguard.
    """
    out = []
    for a in ledger.open_tasks(batch.id, unit_id):
        if a.status and a.status not in STATUS_OPTIONS:
            status = normalize_status(a.status) or a.status
            if status in FINISHED:
                continue
            a = dataclasses.replace(a, status=status)
        out.append(a)
    return out


@dataclass(frozen=True)
class _Sent:
    day: dt.date          # the slot it was for
    kind: str
    state: str
    detail: dict[str, Any]
    on: dt.date           # the day it was sent (a catch-up goes out on a later day than its slot)

    @property
    def taken(self) -> bool:
        """Does this row occupy its slot?  Everything except a transient failure (retried next run)."""
        return self.state != "failed" or bool(self.detail.get("permanent"))


def _history(ledger: Ledger, batch: Batch) -> dict[int, list[_Sent]]:
    """Reminder rows per unit."""
    out: dict[int, list[_Sent]] = {}
    for r in ledger.messages_for(batch.id, "remind"):
        parts = r.idem_key.split(":")
        try:
            day = dt.date.fromisoformat(parts[-1])
        except ValueError:
            continue
        out.setdefault(r.unit_id, []).append(_Sent(day, parts[-2], r.state, r.detail,
                                                   clock.parse(r.created_at).date()))
    return out


def _starts(ledger: Ledger, batch: Batch) -> dict[int, dt.datetime]:
    return ledger.first_sent_at(batch.id, "distribute")


def due_reminders(config: Config, ledger: Ledger, now: dt.datetime,
                  calendar: WorkCalendar | None = None) -> list[Reminder]:
    """The reminders due at ``now`` (reads the ledger, writes nothing)."""
    now = clock.local(now)
    batch = ledger.require_batch(config.batch.title)
    remind = config.remind
    cal = calendar or WorkCalendar.from_config(remind)
    at = _remind_time(remind)
    if now.time() < at or not cal.is_workday(now.date()):
        return []  # nothing goes out at night, at weekends or on holidays, not even a catch-up
    open_units = ledger.open_units(batch.id)
    if not open_units:
        return []
    history = _history(ledger, batch)
    starts = _starts(ledger, batch)
    created = clock.parse(batch.created_at)
    first = min([created, *starts.values()]).date()
    slots = schedule(remind, cal, batch.deadline, first, now.date())
    escalate_cc = list(remind.escalate_cc) or ([config.office.supervisor_email] if config.office.supervisor_email else [])
    out: list[Reminder] = []
    for unit_id in open_units:
        start = starts.get(unit_id, created)
        mine = [s for s in slots if start < _at(s.day, at) <= now]
        if not mine:
            continue
        latest = mine[-1]
        rows = [r for r in history.get(unit_id, []) if r.taken]
        # A slot is done when a reminder was sent for it, or when any reminder (a catch-up) went out that day.
        if any(r.day == latest.day or r.on == latest.day for r in rows):
            continue
        unit = ledger.unit(unit_id)
        tasks = _unfinished(ledger, batch, unit_id)
        if unit is None or not tasks:
            continue
        last_sent = max((max(r.day, r.on) for r in rows), default=None)
        missed = tuple(s.day for s in mine[:-1] if last_sent is None or s.day > last_sent)
        escalated = any(r.kind == "escalate" for r in rows)
        kind = latest.kind
        if (remind.escalate_after_days > 0 and latest.overdue_days >= remind.escalate_after_days
                and not escalated):
            kind = "escalate"
        elif kind == "escalate":
            kind = "overdue"
        to = tuple(unit.emails)
        cc = [c for c in unit.cc if c not in to]
        if kind == "escalate":
            cc += [c for c in escalate_cc if c not in to and c not in cc]
        out.append(Reminder(
            batch_id=batch.id, unit_id=unit_id, unit=unit.name, kind=kind, day=latest.day,
            due_at=_at(latest.day, at), key=f"remind:{batch.id}:{unit_id}:{kind}:{latest.day.isoformat()}",
            to=to, cc=tuple(cc), tasks=tuple(tasks), overdue_days=latest.overdue_days, days_left=latest.days_left,
            catch_up=bool(missed), missed=missed,
        ))
    return out


def _at(day: dt.date, at: dt.time) -> dt.datetime:
    return dt.datetime.combine(day, at, tzinfo=clock.TZ)


def send_reminders(config: Config, ledger: Ledger, now: dt.datetime, transport: Any,
                   dry_run: bool = False, calendar: WorkCalendar | None = None) -> list[Any]:
    """Send the due reminders (one per unit and slot) and return a :class:`~automation.mail.sending.SendResult` each.

    Each message lists the unit's unfinished tasks (HTML table and plain text) and, with
    ``[remind] attach_workbook``, attaches a re-issued workbook pre-filled with the unit's latest
    answers.  ``dry_run``: nothing is built, sent or recorded; the results have action ``dry-run``.
    """
    from automation.mail import letters
    from automation.mail.attachment import Attachment
    from automation.mail.compose import compose_message
    from automation.mail.sending import SendResult, send_once, settled_result

    now = clock.local(now)
    batch = ledger.require_batch(config.batch.title)
    results: list[SendResult] = []
    to_send: list[tuple[int, Reminder, dict[str, Any]]] = []
    for r in due_reminders(config, ledger, now, calendar):
        detail = {k: v for k, v in r.to_json().items() if k in ("kind", "kind_name", "day", "catch_up", "missed",
                                                                  "overdue_days", "days_left", "tasks")}
        if dry_run:
            letter = letters.reminder_letter(config, batch, r, now.date(), None)
            results.append(SendResult(r.key, "remind", r.unit, r.unit_id, letter.subject, action="dry-run",
                                      to=list(r.to), cc=list(r.cc), detail=detail))
            continue
        if not r.to:
            results.append(SendResult(r.key, "remind", r.unit, r.unit_id, "", action="no-address", detail=detail,
                                      error=f"单位“{r.unit}”未登记邮箱：请在 config.toml 该单位的 [[units]] 中填写 email。"))
            continue
        settled = settled_result(ledger, r.key, now, purpose="remind", unit=r.unit, unit_id=r.unit_id)
        if settled is not None:
            settled.detail = detail
            results.append(settled)
            continue
        to_send.append((len(results), r, detail))
        results.append(None)  # type: ignore[arg-type]  # filled below, keeping the order of the reminders
    paths = _reissue(config, ledger, batch, [r for _i, r, _d in to_send], now) \
        if to_send and config.remind.attach_workbook else {}
    for index, r, detail in to_send:
        attachments = [Attachment.from_path(paths[r.unit_id])] if r.unit_id in paths else []
        letter = letters.reminder_letter(config, batch, r, now.date(), attachments[0].filename if attachments else None)
        msg = compose_message(config.mail, to=list(r.to), cc=list(r.cc), subject=letter.subject, text=letter.text,
                              html=letter.html, attachments=attachments, now=now, to_name=r.unit)
        results[index] = send_once(ledger, transport, r.key, "remind", batch.id, r.unit_id, msg, now,
                                   unit=r.unit, detail=detail)
    return results


def _reissue(config: Config, ledger: Ledger, batch: Batch, reminders: list[Reminder],
             now: dt.datetime) -> dict[int, Path]:
    """Each unit's workbook again, pre-filled with its latest answers (kept under
    workbooks/reissued/<day>/): one build per day of the reminders, not one ledger read per unit."""
    from automation.workbook.build import build_workbooks

    by_day: dict[dt.date, list[str]] = {}
    for r in reminders:
        by_day.setdefault(r.day, []).append(r.unit)
    paths: dict[int, Path] = {}
    for day, units in by_day.items():
        folder = Workspace(config.workspace).reissued(day)
        for built in build_workbooks(config, ledger, now, units=units, out_dir=folder, purpose="remind"):
            paths[built.unit_id] = Path(built.path)
    return paths

