"""Reminders on Chinese working days: which are due (a pure decision), and sending them.

Stage 7 of the loop.  The cadence comes from config.toml ``[remind]``; every reminder is sent
at ``time`` (Asia/Shanghai, whatever the host's zone) on a *working day* (see
:mod:`automation.workdays`).  A unit's reminders are about its **deadlines**: the date each of
its unfinished tasks falls due (the task's own 完成时限 where the table names one, else the batch
deadline) and, when ``[rounds]`` asks for periodic reports, the deadline of the first round it
has not reported in yet (:mod:`automation.rounds`).  Each deadline has its **slots**:

- ``before``: ``N`` working days before it, for each N in ``before_deadline_days`` (the batch
  deadline and rounds) or ``task_before_days`` (a task's own date); 0 = the day itself;
- ``overdue``: every working day after it (``overdue_daily``);
- ``escalate``: the first reminder once it is ``escalate_after_days`` working days overdue, with
  cc to ``escalate_cc`` (or ``[office] supervisor_email``); once per unit and deadline.

and every unit with unfinished tasks has the ``weekly`` slots (``weekly_weekday``, moved to the
next working day when that day is a holiday) until the batch deadline.

**One mail per unit per day**: the slots of all its deadlines on a day make one reminder, whose
kind is the most urgent (escalate > overdue > before > weekly; the earlier deadline on a tie) and
which lists every unfinished task grouped by due date.  Reminders go out only on a working day at
or after ``time``.  Then the *latest* day with a slot that has passed is due for a unit if the unit
still has unfinished assignments and no reminder was sent for that day (or on it) yet.  Earlier
days that were missed (the machine was off) are not sent one by one: the latest goes out once,
marked ``catch_up``.  Slots count from the unit's first distribution (or the batch's creation).

Every reminder has the key ``remind:<batch id>:<unit id>:<kind>:<date>`` in the ledger, so
:func:`send_reminders` is at-most-once like every other mailing (:func:`automation.mail.sending.send_once`).
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from automation import clock
from automation.config import Config, RemindConfig
from automation.ledger import Ledger
from automation.ledger.records import OpenTask, refusal_for
from automation.model import Batch
from automation.rounds import Round, batch_rounds, round_of
from automation.text import STATUS_OPTIONS, normalize_status
from automation.workdays import WorkCalendar
from automation.workspace import Workspace

__all__ = ["Slot", "Due", "DueGroup", "Reminder", "Plan", "schedule", "due_reminders", "send_reminders",
           "open_tasks", "FINISHED", "KIND_NAMES"]

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
class Due:
    """One deadline of a unit with a slot on the reminder's day."""

    deadline: dt.date
    kind: str
    days_left: int | None
    overdue_days: int
    round: int | None = None       # a reporting round's deadline (the unit has not reported in it)


@dataclass(frozen=True)
class DueGroup:
    """The unit's unfinished tasks that fall due on one date (a reminder lists them grouped so)."""

    deadline: dt.date
    tasks: tuple[OpenTask, ...]
    days_left: int                 # working days from today to the date (0: today; negative: overdue)
    batch: bool                    # the batch deadline (tasks without a 完成时限 of their own)

    def to_json(self) -> dict[str, Any]:
        return {"deadline": self.deadline.isoformat(), "tasks": [t.task for t in self.tasks],
                "days_left": self.days_left}


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
    deadline: dt.date | None = None              # the deadline this reminder is about
    round: int | None = None                     # … when it is a reporting round's
    groups: tuple[DueGroup, ...] = ()            # every unfinished task, by due date
    dues: tuple[Due, ...] = ()                   # every deadline with a slot that day

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(day=self.day.isoformat(), due_at=clock.iso(self.due_at), to=list(self.to), cc=list(self.cc),
                 tasks=[t.task for t in self.tasks], missed=[m.isoformat() for m in self.missed],
                 kind_name=KIND_NAMES.get(self.kind, self.kind),
                 deadline=self.deadline.isoformat() if self.deadline else None,
                 groups=[g.to_json() for g in self.groups],
                 refused=[t.task for t in self.tasks if t.refused])
        d.pop("dues")
        return d


def _remind_time(remind: RemindConfig) -> dt.time:
    return dt.time.fromisoformat(remind.time)


def _deadline_slots(remind: RemindConfig, calendar: WorkCalendar, deadline: dt.date, before: tuple[int, ...],
                    start: dt.date, end: dt.date) -> list[Slot]:
    """The before / overdue / escalate slots of one deadline on the days ``start`` … ``end``."""
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
        if calendar.is_workday(day):
            if day > deadline:
                overdue += 1
                if escalate_at > 0 and overdue == escalate_at:
                    slots.append(Slot(day, "escalate", None, overdue))
                elif remind.overdue_daily:
                    slots.append(Slot(day, "overdue", None, overdue))
            elif days_left.get(day) in before:
                slots.append(Slot(day, "before", days_left[day], 0))
        day += dt.timedelta(days=1)
    return slots


def _weekly_slots(remind: RemindConfig, calendar: WorkCalendar, deadline: dt.date, start: dt.date,
                  end: dt.date) -> list[Slot]:
    """The weekly slots (until the batch deadline, or after it too when there are no overdue ones)."""
    if not remind.weekly_weekday or end < start:
        return []
    out = []
    day = start
    while day <= end:
        if (day <= deadline or not remind.overdue_daily) and calendar.is_workday(day) and _weekly(
                remind.weekly_weekday, calendar, day):
            out.append(Slot(day, "weekly", calendar.workdays_between(day, deadline) if day <= deadline else None,
                            calendar.workdays_between(deadline, day)))
        day += dt.timedelta(days=1)
    return out


def schedule(remind: RemindConfig, calendar: WorkCalendar, deadline: dt.date, start: dt.date,
             end: dt.date) -> list[Slot]:
    """Every slot of the batch deadline (with the weekly ones) on the days ``start`` … ``end``
    (inclusive), one per day (the most urgent), in date order."""
    by_day: dict[dt.date, Slot] = {}
    for s in (*_weekly_slots(remind, calendar, deadline, start, end),
              *_deadline_slots(remind, calendar, deadline, remind.before_deadline_days, start, end)):
        old = by_day.get(s.day)
        if old is None or _PRIORITY[s.kind] > _PRIORITY[old.kind]:
            by_day[s.day] = s
    return [by_day[d] for d in sorted(by_day)]


def _weekly(weekday: int, calendar: WorkCalendar, day: dt.date) -> bool:
    """Is ``day`` this week's weekly slot (the weekday itself, or the first working day after it)?"""
    anchor = day - dt.timedelta(days=(day.isoweekday() - weekday) % 7)
    return calendar.next_workday(anchor) == day


class Plan:
    """What the reminder decision needs for one batch, read once: each unit's deadlines and the
    slots of every deadline (computed once per date, shared by the units that have it).

    ``end``: the last day slots are computed for (today for the decision, a later day for the
    console's forecast); ``unit_id``: one unit's deadlines only (the console's unit page).
    """

    def __init__(self, config: Config, ledger: Ledger, batch: Batch, calendar: WorkCalendar, end: dt.date,
                 unit_id: int | None = None) -> None:
        self.remind = config.remind
        self.calendar = calendar
        self.batch = batch
        self.end = end
        self.at = _remind_time(config.remind)
        self.created = clock.parse(batch.created_at)
        self.starts = ledger.first_sent_at(batch.id, "distribute")
        self.first = min([self.created, *self.starts.values()]).date()
        self.open = ledger.open_due_dates(batch.id, batch.deadline.isoformat(), unit_id)
        self.rounds: list[Round] = batch_rounds(config.rounds, self.created.date(), batch.deadline)
        self.periodic = len(self.rounds) > 1
        self.reported = ledger.last_response_at(batch.id) if self.periodic else {}
        self._slots: dict[tuple[dt.date, tuple[int, ...]], tuple[list[dt.date], dict[dt.date, Slot]]] = {}
        self._weekly: tuple[list[dt.date], dict[dt.date, Slot]] | None = None

    def start(self, unit_id: int) -> dt.datetime:
        """From when the unit's slots count: its first distribution, else the batch's creation."""
        return self.starts.get(unit_id, self.created)

    def pending_round(self, unit_id: int) -> Round | None:
        """The first round the unit has not reported in (None: it reported in the last one)."""
        if not self.periodic:
            return None
        last = self.reported.get(unit_id)
        if last is None:
            return self.rounds[0]
        r = round_of(self.rounds, clock.parse(last).date())
        return None if r.last else self.rounds[r.number]

    def deadlines(self, unit_id: int) -> dict[dt.date, int | None]:
        """The unit's deadlines → the round number when the date closes a round it owes, else None."""
        out: dict[dt.date, int | None] = {dt.date.fromisoformat(d): None for d in self.open.get(unit_id, {})}
        pending = self.pending_round(unit_id)
        if pending is not None:
            out[pending.deadline] = pending.number
        return out

    def _before(self, deadline: dt.date, round_number: int | None) -> tuple[int, ...]:
        if round_number is not None or deadline == self.batch.deadline:
            return self.remind.before_deadline_days
        return self.remind.task_before_days

    def slots(self, deadline: dt.date, before: tuple[int, ...]) -> tuple[list[dt.date], dict[dt.date, Slot]]:
        key = (deadline, before)
        hit = self._slots.get(key)
        if hit is None:
            got = _deadline_slots(self.remind, self.calendar, deadline, before, self.first, self.end)
            hit = self._slots[key] = ([s.day for s in got], {s.day: s for s in got})
        return hit

    def weekly(self) -> tuple[list[dt.date], dict[dt.date, Slot]]:
        if self._weekly is None:
            got = _weekly_slots(self.remind, self.calendar, self.batch.deadline, self.first, self.end)
            self._weekly = ([s.day for s in got], {s.day: s for s in got})
        return self._weekly

    def unit_days(self, unit_id: int, first: dt.date, last: dt.date) -> tuple[list[dt.date], list[tuple[
            dt.date, int | None, dict[dt.date, Slot]]]]:
        """Every day with a slot for the unit in ``first`` … ``last`` (sorted), and its deadlines' slots."""
        sources = [(d, r, self.slots(d, self._before(d, r))) for d, r in sorted(self.deadlines(unit_id).items())]
        days: set[dt.date] = set()
        for _d, _r, (listed, _by) in sources:
            days.update(listed[bisect.bisect_left(listed, first):bisect.bisect_right(listed, last)])
        weekly_days, _w = self.weekly()
        days.update(weekly_days[bisect.bisect_left(weekly_days, first):bisect.bisect_right(weekly_days, last)])
        return sorted(days), [(d, r, by) for d, r, (_l, by) in sources]

    def dues(self, day: dt.date, sources: list[tuple[dt.date, int | None, dict[dt.date, Slot]]]) -> list[Due]:
        """The unit's deadlines with a slot on ``day`` (the weekly slot as one about the batch deadline)."""
        out = [Due(d, s.kind, s.days_left, s.overdue_days, r) for d, r, by in sources if (s := by.get(day))]
        weekly = self.weekly()[1].get(day)
        if weekly is not None and not out:
            out.append(Due(self.batch.deadline, "weekly", weekly.days_left, weekly.overdue_days))
        return out

    def first_day(self, unit_id: int) -> dt.date:
        """The first day whose reminder time is after the unit's start."""
        start = self.start(unit_id)
        return start.date() if _at(start.date(), self.at) > start else start.date() + dt.timedelta(days=1)

    def choose(self, dues: list[Due], escalated: set[dt.date]) -> Due:
        """The reminder's kind and deadline: escalation once per deadline, the most urgent first."""
        esc = self.remind.escalate_after_days
        adjusted = []
        for d in dues:
            kind = d.kind
            if kind in ("overdue", "escalate") and esc > 0 and d.overdue_days >= esc and d.deadline not in escalated:
                kind = "escalate"
            elif kind == "escalate":
                kind = "overdue"
            adjusted.append(dataclasses.replace(d, kind=kind))
        return max(adjusted, key=lambda d: (_PRIORITY[d.kind], -d.deadline.toordinal()))


def open_tasks(ledger: Ledger, batch: Batch, unit_id: int) -> list[OpenTask]:
    """The unit's assignments without an answer or with an answer other than 已完成 / 不适用, each
    saying whether its latest return was refused (and why).

    Statuses are stored canonical; anything else is normalised here as a safeguard.  A task is
    refused when the unit's latest file that carried it was quarantined, or had the task's row
    refused, after its current answer (if any).
    """
    refusals = ledger.refusals(batch.id, unit_id)
    out = []
    for a in ledger.open_tasks(batch.id, unit_id):
        if a.status and a.status not in STATUS_OPTIONS:
            status = normalize_status(a.status) or a.status
            if status in FINISHED:
                continue
            a = dataclasses.replace(a, status=status)
        reason = refusal_for(refusals, a.task, a.submitted_at)
        if reason:
            a = dataclasses.replace(a, refused=reason)
        out.append(a)
    return out


def _groups(tasks: list[OpenTask], batch: Batch, calendar: WorkCalendar, today: dt.date) -> tuple[DueGroup, ...]:
    by_date: dict[dt.date, list[OpenTask]] = {}
    for t in tasks:
        try:
            due = dt.date.fromisoformat(t.due_date) if t.due_date else batch.deadline
        except ValueError:
            due = batch.deadline
        by_date.setdefault(due, []).append(t)
    out = []
    for due in sorted(by_date):
        left = calendar.workdays_between(today, due) if due >= today else -calendar.workdays_between(due, today)
        out.append(DueGroup(due, tuple(by_date[due]), left, due == batch.deadline))
    return tuple(out)


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


def _escalated(rows: list[_Sent], batch: Batch) -> set[dt.date]:
    """The deadlines already escalated (a row from before per-task deadlines is about the batch's)."""
    out = set()
    for r in rows:
        if r.kind == "escalate":
            try:
                out.add(dt.date.fromisoformat(str(r.detail.get("deadline") or batch.deadline.isoformat())))
            except ValueError:
                out.add(batch.deadline)
    return out


def due_reminders(config: Config, ledger: Ledger, now: dt.datetime,
                  calendar: WorkCalendar | None = None) -> list[Reminder]:
    """The reminders due at ``now`` (reads the ledger, writes nothing)."""
    now = clock.local(now)
    batch = ledger.require_batch(config.batch.title)
    remind = config.remind
    cal = calendar or WorkCalendar.from_config(remind)
    at = _remind_time(remind)
    today = now.date()
    if now.time() < at or not cal.is_workday(today):
        return []  # nothing goes out at night, at weekends or on holidays, not even a catch-up
    plan = Plan(config, ledger, batch, cal, today)
    if not plan.open:
        return []
    history = _history(ledger, batch)
    escalate_cc = list(remind.escalate_cc) or ([config.office.supervisor_email] if config.office.supervisor_email else [])
    out: list[Reminder] = []
    for unit_id in sorted(plan.open):
        days, sources = plan.unit_days(unit_id, plan.first_day(unit_id), today)
        if not days:
            continue
        latest = days[-1]
        rows = [r for r in history.get(unit_id, []) if r.taken]
        # A slot is done when a reminder was sent for it, or when any reminder (a catch-up) went out that day.
        if any(r.day == latest or r.on == latest for r in rows):
            continue
        unit = ledger.unit(unit_id)
        tasks = open_tasks(ledger, batch, unit_id)
        if unit is None or not tasks:
            continue
        last_sent = max((max(r.day, r.on) for r in rows), default=None)
        missed = tuple(d for d in days[:-1] if last_sent is None or d > last_sent)
        dues = plan.dues(latest, sources)
        main = plan.choose(dues, _escalated(rows, batch))
        to = tuple(unit.emails)
        cc = [c for c in unit.cc if c not in to]
        if main.kind == "escalate":
            cc += [c for c in escalate_cc if c not in to and c not in cc]
        out.append(Reminder(
            batch_id=batch.id, unit_id=unit_id, unit=unit.name, kind=main.kind, day=latest,
            due_at=_at(latest, at), key=f"remind:{batch.id}:{unit_id}:{main.kind}:{latest.isoformat()}",
            to=to, cc=tuple(cc), tasks=tuple(tasks), overdue_days=main.overdue_days, days_left=main.days_left,
            catch_up=bool(missed), missed=missed, deadline=main.deadline, round=main.round,
            groups=_groups(tasks, batch, cal, today), dues=tuple(dues),
        ))
    return out


def _at(day: dt.date, at: dt.time) -> dt.datetime:
    return dt.datetime.combine(day, at, tzinfo=clock.TZ)


#: The ``to_json`` keys a sent reminder keeps in the ledger (and in ``remind --json``).
_DETAIL_KEYS = ("kind", "kind_name", "day", "catch_up", "missed", "overdue_days", "days_left", "tasks", "deadline",
                "round", "groups", "refused")


def send_reminders(config: Config, ledger: Ledger, now: dt.datetime, transport: Any,
                   dry_run: bool = False, calendar: WorkCalendar | None = None) -> list[Any]:
    """Send the due reminders (one per unit and day) and return a :class:`~automation.mail.sending.SendResult` each.

    Each message lists the unit's unfinished tasks by due date (HTML table and plain text), saying
    for each whether it was never answered or its answer was refused and why, and, with ``[remind]
    attach_workbook``, attaches a re-issued workbook pre-filled with the unit's latest answers and
    its refused input.  ``dry_run``: nothing is built, sent or recorded; the results have action
    ``dry-run``.
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
        detail = {k: v for k, v in r.to_json().items() if k in _DETAIL_KEYS}
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
    """Each unit's workbook again, pre-filled with its latest answers and refused input (kept under
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
