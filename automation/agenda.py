"""The reminders ahead: which unit gets which kind of reminder on which working day.

The console's 催办 page and the "next reminder" on a unit's page.  :func:`reminder_agenda` asks
:func:`automation.remind.due_reminders` — the very decision ``automation remind`` takes — at the
reminder time of each coming working day, so the forecast cannot disagree with what will be
sent; it assumes every unit stays as unfinished as it is now and that each reminder goes out as
planned (so a unit's 逾期升级 shows once).  :func:`next_reminder` walks one unit's schedule
(:class:`automation.remind.Plan`) instead, which stays cheap on a province batch.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from automation import clock
from automation.config import Config
from automation.ledger import Ledger
from automation.ledger.records import MessageRow
from automation.progress.views import ReminderNote, UnitView, unit_view
from automation.remind import KIND_NAMES, Plan, Reminder, due_reminders
from automation.workdays import WorkCalendar

__all__ = ["AgendaLine", "AgendaDay", "Agenda", "reminder_agenda", "next_reminder", "unit_page", "cadence_text"]


@dataclass(frozen=True)
class AgendaLine:
    unit_id: int
    unit: str
    kind: str
    kind_name: str
    tasks: int             # unfinished tasks the reminder lists
    to: tuple[str, ...]
    overdue_days: int
    days_left: int | None


@dataclass(frozen=True)
class AgendaDay:
    day: dt.date
    due_at: dt.datetime
    lines: list[AgendaLine]


@dataclass(frozen=True)
class Agenda:
    batch: str
    now: dt.datetime
    due: list[AgendaLine]          # due now and not sent yet (「立即发送到期提醒」 sends these)
    upcoming: list[AgendaDay]      # the coming working days that have reminders
    sent: list[MessageRow]      # reminders already sent (newest first)
    cadence: list[str]             # the rules of [remind] in plain words


def _line(r: Reminder) -> AgendaLine:
    return AgendaLine(r.unit_id, r.unit, r.kind, KIND_NAMES.get(r.kind, r.kind), len(r.tasks), r.to, r.overdue_days,
                      r.days_left)


def cadence_text(config: Config) -> list[str]:
    """The reminder rules of ``[remind]``, one sentence each."""
    r = config.remind
    out = [f"只在工作日 {r.time}（北京时间）之后发送；同一单位同一天最多一封。"]
    if r.weekly_weekday:
        out.append(f"每周提醒：每周{'一二三四五六日'[r.weekly_weekday - 1]}（遇节假日顺延到下一个工作日）。")
    if r.before_deadline_days:
        days = "、".join("当天" if d == 0 else f"前 {d} 个工作日" for d in r.before_deadline_days)
        out.append(f"截止前提醒：截止日{days}。")
    if r.overdue_daily:
        out.append("逾期提醒：截止后每个工作日。")
    if r.escalate_after_days > 0:
        cc = "、".join(r.escalate_cc) or config.office.supervisor_email or "（未设置抄送）"
        out.append(f"逾期升级：逾期满 {r.escalate_after_days} 个工作日时一次，抄送 {cc}。")
    return out


def reminder_agenda(config: Config, ledger: Ledger, now: dt.datetime, workdays: int = 5) -> Agenda:
    """Due now, the next ``workdays`` working days' reminders, and those already sent."""
    now = clock.local(now)
    batch = ledger.require_batch(config.batch.title)
    calendar = WorkCalendar.from_config(config.remind)
    at = dt.time.fromisoformat(config.remind.time)
    due = [_line(r) for r in due_reminders(config, ledger, now, calendar)]
    days: list[AgendaDay] = []
    escalated: set[int] = set()
    day = now.date()
    for _ in range(60):
        if len(days) >= workdays:
            break
        when = dt.datetime.combine(day, at, tzinfo=clock.TZ)
        if calendar.is_workday(day) and when > now:
            lines = []
            for r in due_reminders(config, ledger, when, calendar):
                line = _line(r)
                if line.kind == "escalate":
                    if r.unit_id in escalated:
                        line = replace(line, kind="overdue", kind_name=KIND_NAMES["overdue"])
                    escalated.add(r.unit_id)
                lines.append(line)
            days.append(AgendaDay(day, when, lines))
        day += dt.timedelta(days=1)
    sent = ledger.message_records(batch.id, purpose="remind", limit=500)
    return Agenda(batch.title, now, due, [d for d in days if d.lines], sent, cadence_text(config))


def next_reminder(config: Config, ledger: Ledger, now: dt.datetime, unit_id: int,
                  horizon_days: int = 60) -> ReminderNote | None:
    """The next reminder slot of one unit after ``now`` (or due now and not sent yet), if it stays
    unfinished: the same deadlines and slots :func:`automation.remind.due_reminders` uses."""
    now = clock.local(now)
    batch = ledger.require_batch(config.batch.title)
    calendar = WorkCalendar.from_config(config.remind)
    today = now.date()
    plan = Plan(config, ledger, batch, calendar, today + dt.timedelta(days=horizon_days), unit_id)
    if unit_id not in plan.open:
        return None
    rows = [m for m in ledger.message_records(batch.id, unit_id=unit_id, purpose="remind")
            if m.state != "failed" or m.detail.get("permanent")]
    taken = {m.idem_key.split(":")[-1] for m in rows}
    escalated = set()
    for m in rows:
        if m.idem_key.split(":")[-2:-1] == ["escalate"]:
            try:
                escalated.add(dt.date.fromisoformat(str(m.detail.get("deadline") or batch.deadline.isoformat())))
            except ValueError:
                escalated.add(batch.deadline)
    days, sources = plan.unit_days(unit_id, max(today, plan.first_day(unit_id)), plan.end)
    for day in days:
        if day.isoformat() in taken:
            continue  # sent (or being sent) already; a slot of today not sent yet is due now
        main = plan.choose(plan.dues(day, sources), escalated)
        return ReminderNote(day, main.kind, KIND_NAMES.get(main.kind, main.kind),
                            dt.datetime.combine(day, plan.at, tzinfo=clock.TZ))
    return None


def unit_page(config: Config, ledger: Ledger, now: dt.datetime, unit_id: int) -> UnitView | None:
    """单位详情 with the next reminder due (when the unit has anything unfinished)."""
    view = unit_view(config, ledger, now, unit_id)
    if view is None or view.finished or not view.tasks:
        return view
    return replace(view, next_reminder=next_reminder(config, ledger, now, unit_id))
