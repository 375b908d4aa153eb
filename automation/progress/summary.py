"""Derived progress: what the report and ``automation status`` both show, computed once.

The ledger stores raw answers; everything a reader sees on top of them — the task-level
落实情况 line (``推进中（已完成 14/21，未报 3）``), the units that have not finished a task, the
per-unit progress row, completion rates, overdue working days, the red/yellow/green level and the
"worst first" order — is derived here by plain functions.  :mod:`automation.progress.report` (the workbook)
and :func:`automation.progress.report.status_summary` (the terminal and ``--json``) both call them, so the
two views cannot disagree.

Definitions (documented in the README, tested in tests/test_report.py):

- an assignment's status is the unit's current answer, or 未填报 when there is none (a blank status
  in a returned workbook is also 未填报); "reported" means anything but 未填报;
- "finished" means 已完成 or 不适用; completion = 已完成 / (assigned − 不适用) (100 % when every
  assignment is 不适用);
- a task is 已完成 when every assigned unit is finished; otherwise its line is
  ``<headline>（已完成 d/a，未报 u）`` where the headline is 推进中 if any unit has 已完成 or 推进中,
  未启动 if units answered but none started, and 未填报 if nobody answered (``，未报 u`` only when u > 0);
- a unit is overdue when the batch deadline has passed and it still has unfinished assignments (the
  same rule ``automation remind`` uses); overdue working days are the working days in (deadline, today];
- level: red = overdue or nothing reported yet; green = every assignment finished; yellow otherwise;
- worst first: red, yellow, green; then lower completion; then more 未填报; then registry order;
- a task's due date is its own 完成时限 where the table names a date, else the batch deadline; an
  assignment is overdue when its due date has passed and it is not finished; it was finished on
  time when it is 不适用, or 已完成 with a 完成时间 (else the receipt date) on or before its due date;
- a task is overdue when its due date has passed and some unit has not finished it; its overdue
  working days are those in (due date, today];
- reporting rounds (``[rounds]``, :mod:`automation.rounds`): the snapshot of round *k* is the
  answers as they stood at the end of its deadline day, and a unit *reported in the round* when it
  answered at least one task in the round's window; a unit that sent nothing in a round that has
  closed is 「本期未报送」 (and red) in that round, whatever it answered before;
- the score (综合得分, 0–100, ranked within each unit kind) = 50 × completion + 30 × on-time rate
  + 20 × reporting rate, where the on-time rate counts the assignments whose due date has passed
  (the completion when none has yet) and the reporting rate is reported ÷ assigned — so a unit that
  sent nothing ranks below one that reported and is still working.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from automation import clock
from automation.config import Config
from automation.ledger import Ledger
from automation.model import Batch, Task
from automation.rounds import Round, batch_rounds, current_round, round_cutoff
from automation.text import STATUS_OPTIONS, canonical_status
from automation.units import ROLE_LEAD
from automation.workdays import WorkCalendar

__all__ = [
    "DONE", "IN_PROGRESS", "NOT_STARTED", "NOT_APPLICABLE", "UNREPORTED", "STATUSES", "FINISHED",
    "LEVELS", "LEVEL_NAMES",
    "Counts", "TaskRollup", "UnitProgress", "DeadlineInfo", "Snapshot", "TaskDue", "ROUND_MISSED", "ROUND_REPORTED",
    "effective_status", "count_statuses", "task_headline", "task_summary", "rollup_task", "unit_level",
    "worst_first_key", "deadline_info", "task_due_date", "role_text", "unit_list_text", "load_snapshot",
    "snapshot_round", "round_window",
    "iter_history", "fmt_time",
]

DONE, IN_PROGRESS, NOT_STARTED, NOT_APPLICABLE = STATUS_OPTIONS
UNREPORTED = "未填报"
#: Every status an assignment can have, in display order.
STATUSES: tuple[str, ...] = (*STATUS_OPTIONS, UNREPORTED)
FINISHED = frozenset({DONE, NOT_APPLICABLE})
#: Unfinished statuses in the order the 未完成单位 column lists them.
UNFINISHED_ORDER = (IN_PROGRESS, NOT_STARTED, UNREPORTED)

LEVELS = ("red", "yellow", "green")
ROUND_REPORTED, ROUND_MISSED = "本期已报送", "本期未报送"
LEVEL_NAMES = {"red": "红", "yellow": "黄", "green": "绿"}
_LEVEL_RANK = {lvl: i for i, lvl in enumerate(LEVELS)}


def effective_status(status: str | None) -> str:
    """The status a reader sees: the answer's, or 未填报 when there is no (valid) answer.

    Answers are stored canonical; a template option stored verbatim by an older version
    (已办结) still counts in its class.
    """
    if status in STATUS_OPTIONS:
        return status
    return (canonical_status(status) if status else None) or UNREPORTED


@dataclass
class Counts:
    """How many assignments are in each status (keys: :data:`STATUSES`)."""

    by_status: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))

    def add(self, status: str) -> None:
        self.by_status[status] += 1

    def __getitem__(self, status: str) -> int:
        return self.by_status[status]

    @property
    def assigned(self) -> int:
        return sum(self.by_status.values())

    @property
    def reported(self) -> int:
        return self.assigned - self.by_status[UNREPORTED]

    @property
    def done(self) -> int:
        return self.by_status[DONE]

    @property
    def unreported(self) -> int:
        return self.by_status[UNREPORTED]

    @property
    def applicable(self) -> int:
        """Assignments that can be completed (not 不适用)."""
        return self.assigned - self.by_status[NOT_APPLICABLE]

    @property
    def finished(self) -> bool:
        """Every assignment 已完成 or 不适用 (and there is at least one)."""
        return self.assigned > 0 and self.done == self.applicable

    @property
    def completion(self) -> float:
        """已完成 / applicable; 1.0 when everything is 不适用, 0.0 when nothing is assigned."""
        if self.applicable:
            return self.done / self.applicable
        return 1.0 if self.assigned else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "assigned": self.assigned, "reported": self.reported, "done": self.done,
            "in_progress": self[IN_PROGRESS], "not_started": self[NOT_STARTED],
            "not_applicable": self[NOT_APPLICABLE], "unreported": self.unreported,
            "completion": round(self.completion, 4),
        }


def count_statuses(statuses: Iterable[str]) -> Counts:
    counts = Counts()
    for status, n in Counter(statuses).items():
        counts.by_status[status] += n
    return counts


def task_headline(counts: Counts) -> str:
    """One word for a task: 已完成 / 不适用 / 推进中 / 未启动 / 未填报 (or 无责任单位)."""
    if counts.assigned == 0:
        return "无责任单位"
    if counts.finished:
        return DONE if counts.applicable else NOT_APPLICABLE
    if counts.done or counts[IN_PROGRESS]:
        return IN_PROGRESS
    if counts.reported:
        return NOT_STARTED
    return UNREPORTED


def task_summary(counts: Counts) -> str:
    """The derived 落实情况 line, e.g. ``推进中（已完成 14/21，未报 3）`` or ``已完成``."""
    head = task_headline(counts)
    if counts.assigned == 0 or counts.finished:
        return head
    tail = f"，未报 {counts.unreported}" if counts.unreported else ""
    return f"{head}（已完成 {counts.done}/{counts.applicable}{tail}）"


def role_text(role: str, note: str | None) -> str:
    """牵头 / 责任, with the scope note from the task table: ``责任（负责市政府规章）``."""
    return f"{role}（{note}）" if note else role


def unit_list_text(names: Sequence[str], groups: Mapping[str, Sequence[str]] | None = None) -> str:
    """Names joined with 、; a whole config group (2+ members, all present) becomes ``组名（n个）``.

    Long lists like 37 units read better as 各县（市、区）政府（10个）、市财政局 on paper.
    """
    names = list(names)
    if groups:
        present = set(names)
        for group, members in groups.items():
            if len(members) >= 2 and present.issuperset(members):
                first = min(names.index(m) for m in members)
                names[first] = f"{group}（{len(members)}个）"
                drop = set(members)
                names = [n for i, n in enumerate(names) if i == first or n not in drop]
                present = set(names)
    return "、".join(names)


@dataclass
class TaskRollup:
    """One task seen from all its units."""

    number: int
    counts: Counts
    lead_answers: list[tuple[str, str, str]]      # (unit, status, progress) of lead units that answered
    unfinished: dict[str, list[str]]              # status -> units, for 推进中 / 未启动 / 未填报

    @property
    def headline(self) -> str:
        return task_headline(self.counts)

    @property
    def summary(self) -> str:
        return task_summary(self.counts)

    def text(self) -> str:
        """The 落实情况 cell: each lead unit's own answer first, then the derived line."""
        lines = []
        for unit, status, progress in self.lead_answers:
            lines.append(f"{unit}（牵头）：{status}" + (f"。{progress}" if progress else ""))
        lines.append(self.summary)
        return "\n".join(lines)

    def unfinished_units(self) -> list[str]:
        return [u for s in UNFINISHED_ORDER for u in self.unfinished.get(s, [])]

    def unfinished_text(self, groups: Mapping[str, Sequence[str]] | None = None) -> str:
        """The 未完成单位 cell: one line per unfinished status, e.g. ``未填报：市财政局、市卫健委``."""
        return "\n".join(f"{s}：{unit_list_text(self.unfinished[s], groups)}"
                         for s in UNFINISHED_ORDER if self.unfinished.get(s))


def rollup_task(number: int, rows: Iterable[tuple[str, str, str, str]]) -> TaskRollup:
    """Roll up one task from (unit, role, status, lead progress) rows in assignment order."""
    counts = Counts()
    leads: list[tuple[str, str, str]] = []
    unfinished: dict[str, list[str]] = {}
    for unit, role, status, progress in rows:
        counts.add(status)
        if role == ROLE_LEAD and status != UNREPORTED:
            leads.append((unit, status, progress))
        if status not in FINISHED:
            unfinished.setdefault(status, []).append(unit)
    return TaskRollup(number, counts, leads, unfinished)


@dataclass(frozen=True)
class DeadlineInfo:
    deadline: dt.date
    today: dt.date
    days_left: int          # working days in (today, deadline]; negative = overdue working days
    passed: bool            # today is after the deadline

    @property
    def overdue_workdays(self) -> int:
        return -self.days_left if self.passed else 0

    def text(self) -> str:
        """Chinese phrase for the days left: 剩余 N 个工作日 / 今天截止 / 已逾期 N 个工作日."""
        if self.passed:
            return f"已逾期 {self.overdue_workdays} 个工作日"
        if self.days_left == 0:
            return "今天截止"
        return f"剩余 {self.days_left} 个工作日"


def deadline_info(deadline: dt.date, now: dt.datetime, calendar: WorkCalendar) -> DeadlineInfo:
    today = clock.local(now).date()
    if today > deadline:
        return DeadlineInfo(deadline, today, -calendar.workdays_between(deadline, today), True)
    return DeadlineInfo(deadline, today, calendar.workdays_between(today, deadline), False)


def unit_level(counts: Counts, overdue: bool) -> str:
    """red: overdue or nothing reported; green: everything finished; yellow: in between."""
    if counts.finished:
        return "green"
    if overdue or counts.reported == 0:
        return "red"
    return "yellow"


@dataclass
class UnitProgress:
    """One unit's row of 单位进度."""

    unit_id: int
    name: str
    kind: str
    order: int                      # registry order
    counts: Counts
    last_submission: str | None     # ISO receipt time of the latest accepted file
    reminders: int                  # reminders sent (messages purpose 'remind', state 'sent')
    overdue: bool
    overdue_workdays: int
    due: int = 0                    # assignments whose due date has passed
    on_time: int = 0                # … of which finished on time
    overdue_tasks: int = 0          # … of which still unfinished
    contact: str = ""
    phone: str = ""
    rank: int = 0                   # within its kind, by score (1 = best)
    periodic: bool = False          # the batch has reporting rounds
    round_reported: int = 0         # tasks answered in the round viewed
    round_closed: bool = False      # … and that round's deadline has passed

    @property
    def round_state(self) -> str:
        """本期已报送 / 本期未报送 in a batch with rounds, else ""."""
        if not self.periodic:
            return ""
        return ROUND_REPORTED if self.round_reported else ROUND_MISSED

    @property
    def round_missed(self) -> bool:
        """Sent nothing in a round that has closed."""
        return self.periodic and self.round_closed and not self.round_reported

    @property
    def level(self) -> str:
        if self.round_missed:
            return "red"
        return unit_level(self.counts, self.overdue or self.overdue_tasks > 0)

    @property
    def on_time_rate(self) -> float:
        return self.on_time / self.due if self.due else self.counts.completion

    @property
    def reporting_rate(self) -> float:
        return self.counts.reported / self.counts.assigned if self.counts.assigned else 0.0

    @property
    def score(self) -> float:
        return round(50 * self.counts.completion + 30 * self.on_time_rate + 20 * self.reporting_rate, 1)

    def to_json(self) -> dict[str, Any]:
        return {
            "unit": self.name, "kind": self.kind, **self.counts.to_json(),
            "last_submission": self.last_submission, "reminders": self.reminders,
            "overdue": self.overdue, "overdue_workdays": self.overdue_workdays, "level": self.level,
            "overdue_tasks": self.overdue_tasks, "on_time_rate": round(self.on_time_rate, 4),
            "score": self.score, "rank": self.rank, "round_reported": self.round_reported,
            "round_state": self.round_state,
        }


def task_due_date(task: Task, batch_deadline: dt.date) -> dt.date:
    """A task's own due date where its 完成时限 names one, else the batch deadline."""
    due = getattr(task, "due_date", None)
    if due:
        try:
            return dt.date.fromisoformat(due)
        except ValueError:
            pass
    return batch_deadline


def _rank(units: list[UnitProgress]) -> None:
    """Rank within each unit kind (counties and departments apart): higher score first; equal
    scores share a rank."""
    by_kind: dict[str, list[UnitProgress]] = {}
    for u in units:
        by_kind.setdefault(u.kind, []).append(u)
    for group in by_kind.values():
        previous: float | None = None
        rank = 0
        for i, u in enumerate(sorted(group, key=lambda x: (-x.score, x.order)), start=1):
            u.rank = i if u.score != previous else rank   # equal scores share a rank (1, 1, 3 …)
            rank, previous = u.rank, u.score


def worst_first_key(u: UnitProgress) -> tuple[int, float, int, int]:
    return (_LEVEL_RANK[u.level], u.counts.completion, -u.counts.unreported, u.order)


@dataclass(frozen=True)
class TaskDue:
    """When one task falls due and whether it is overdue."""

    number: int
    due: dt.date
    own: bool               # the task table gave it its own 完成时限 date (else: the batch deadline)
    overdue: bool           # the date has passed and some unit has not finished it
    overdue_workdays: int
    unfinished: int         # units that have not finished it

    def to_json(self) -> dict[str, Any]:
        return {"due_date": self.due.isoformat(), "overdue": self.overdue, "overdue_workdays": self.overdue_workdays}


@dataclass
class Snapshot:
    """Everything derived for one batch at one moment (the report's and status's common input)."""

    batch: Batch
    now: dt.datetime
    deadline: DeadlineInfo
    tasks: list[Task]
    rollups: dict[int, TaskRollup]
    units: list[UnitProgress]                     # worst first
    overall: Counts
    unit_order: list[tuple[int, str]]             # (unit_id, name) of assigned units, registry order
    matrix: dict[int, dict[int, str]]             # task -> unit_id -> status
    groups: dict[str, tuple[str, ...]]
    kinds: dict[int, str] = field(default_factory=dict)   # unit_id -> registry kind
    dues: dict[int, TaskDue] = field(default_factory=dict)  # task -> due date and overdue
    rounds: list[Round] = field(default_factory=list)     # every reporting round (one: the batch)
    round: Round | None = None                            # the round this snapshot is of
    past: bool = False                                    # a past round (as of its deadline), not now

    @property
    def periodic(self) -> bool:
        return len(self.rounds) > 1

    @property
    def overdue_tasks(self) -> list[TaskDue]:
        return [d for d in self.dues.values() if d.overdue]

    def task_counts(self) -> dict[str, int]:
        """How many tasks have each headline."""
        out: dict[str, int] = {}
        for r in self.rollups.values():
            out[r.headline] = out.get(r.headline, 0) + 1
        return out


def snapshot_round(config: Config, batch: Batch, now: dt.datetime, number: int | None) -> tuple[
        list[Round], Round, bool]:
    """The batch's rounds, the one to show (``number``, else the current one) and whether it is a
    past round; a round that has not begun yet is refused."""
    from automation.errors import InputError

    rounds = batch_rounds(config.rounds, clock.parse(batch.created_at).date(), batch.deadline)
    today = clock.local(now).date()
    current = current_round(rounds, today)
    if number is None:
        return rounds, current, False
    if len(rounds) == 1 and number != 1:
        raise InputError("本批没有设定期报送（config.toml [rounds] cadence = \"none\"），整个批次就是第1期。")
    if not 1 <= number <= len(rounds):
        raise InputError(f"本批共有{len(rounds)}期报送（config.toml [rounds]），没有第{number}期。")
    r = rounds[number - 1]
    if r.number > current.number:
        raise InputError(f"第{number}期（{r.deadline.isoformat()}截止）还没有开始，当前是第{current.number}期。")
    return rounds, r, r.number < current.number


def round_window(r: Round) -> tuple[str | None, str | None]:
    """The ISO bounds [after, before) of the answers received in a round."""
    def day_start(day: dt.date) -> str:
        return clock.iso(dt.datetime.combine(day, dt.time(), tzinfo=clock.TZ))

    after = day_start(r.start + dt.timedelta(days=1)) if r.start else None
    return after, None if r.last else day_start(round_cutoff(r))


def load_snapshot(config: Config, ledger: Ledger, now: dt.datetime, round_number: int | None = None) -> Snapshot:
    """Read the batch's assignments and current statuses (only the columns needed) and derive all.

    ``round_number``: the snapshot of that reporting round — for a past round the answers as they
    stood at the end of its deadline day, and the time of the snapshot is then.
    """
    batch = ledger.require_batch(config.batch.title)
    rounds, shown, past = snapshot_round(config, batch, now, round_number)
    after, before = round_window(shown)
    if past:
        now = dt.datetime.combine(shown.deadline, dt.time(23, 59, 59), tzinfo=clock.TZ)
    calendar = WorkCalendar.from_config(config.remind)
    info = deadline_info(batch.deadline, now, calendar)
    tasks = ledger.tasks(batch.id)

    today = info.today
    due_dates = {t.number: task_due_date(t, batch.deadline) for t in tasks}
    timing: dict[int, list[int]] = {}   # unit → [due, on time, overdue]
    per_task: dict[int, list[tuple[str, str, str, str]]] = {}
    per_unit: dict[int, list[str]] = {}
    matrix: dict[int, dict[int, str]] = {}
    for task, unit_id, unit, role, status, lead_progress, completed_on, received_at in ledger.iter_statuses(
            batch.id, ROLE_LEAD, before if past else None):
        status = effective_status(status)
        due = due_dates.get(task, batch.deadline)
        if today > due:
            t = timing.get(unit_id)
            if t is None:
                t = timing[unit_id] = [0, 0, 0]
            t[0] += 1
            if status == NOT_APPLICABLE or (status == DONE and (completed_on or (received_at or "")[:10] or "9")
                                            <= due.isoformat()):
                t[1] += 1
            elif status not in FINISHED:
                t[2] += 1
        rows = per_task.get(task)
        if rows is None:
            rows = per_task[task] = []
            matrix[task] = {}
        rows.append((unit, role, status, lead_progress or ""))
        matrix[task][unit_id] = status
        statuses = per_unit.get(unit_id)
        if statuses is None:
            statuses = per_unit[unit_id] = []
        statuses.append(status)
    counts_by_unit = {uid: count_statuses(st) for uid, st in per_unit.items()}
    overall = Counts()
    for c in counts_by_unit.values():
        for k, v in c.by_status.items():
            overall.by_status[k] += v
    rollups = {t.number: rollup_task(t.number, per_task.get(t.number, ())) for t in tasks}
    dues = {}
    for t in tasks:
        due = due_dates[t.number]
        c = rollups[t.number].counts
        unfinished = c.assigned - c.done - c[NOT_APPLICABLE]
        late = today > due and unfinished > 0
        dues[t.number] = TaskDue(t.number, due, bool(t.due_date), late,
                                 calendar.workdays_between(due, today) if late else 0, unfinished)

    periodic = len(rounds) > 1
    in_round = ledger.answered_between(batch.id, after, before) if periodic else {}
    closed = past or today > shown.deadline
    last = ledger.last_accepted(batch.id)
    reminders = ledger.sent_counts(batch.id, "remind")
    units: list[UnitProgress] = []
    unit_order: list[tuple[int, str]] = []
    for order, u in enumerate(ledger.assigned_units(batch.id)):
        counts = counts_by_unit.get(u.id, Counts())
        overdue = info.passed and not counts.finished
        due, on_time, late_n = timing.get(u.id, (0, 0, 0))
        units.append(UnitProgress(u.id, u.name, u.kind, order, counts, last.get(u.id), reminders.get(u.id, 0),
                                  overdue, info.overdue_workdays if overdue else 0, due, on_time, late_n,
                                  u.contact, u.phone, periodic=periodic, round_reported=in_round.get(u.id, 0),
                                  round_closed=closed))
        unit_order.append((u.id, u.name))
    _rank(units)
    units.sort(key=worst_first_key)
    return Snapshot(batch, now, info, tasks, rollups, units, overall, unit_order, matrix, dict(config.groups),
                    {u.unit_id: u.kind for u in units}, dues, rounds, shown, past)


# --------------------------------------------------------------------------- streamed history


def iter_history(ledger: Ledger, batch_id: int) -> Iterator[tuple[str, int, int, str, int, str | None]]:
    """(received_at, unit_id, task, status, submission_id, old_status) per response, in receipt order.

    :meth:`Ledger.history` streamed and without the text: the previous status of the same (unit,
    task) is tracked here instead of with ``LAG() OVER (PARTITION BY …)``, which made SQLite sort
    every response twice (receipt order restricted to one (unit, task) is that pair's order, so
    the result is the same).
    """
    last: dict[tuple[int, int], str] = {}
    for received_at, unit_id, task, status, submission_id in ledger.iter_responses(batch_id):
        key = (unit_id, task)
        yield received_at, unit_id, task, status, submission_id, last.get(key)
        last[key] = status


def fmt_time(iso: str | None) -> str:
    """Ledger ISO time (Shanghai offset) as ``2021-10-20 15:00`` for people."""
    if not iso:
        return ""
    if iso.endswith("+08:00") and len(iso) >= 16:  # what the ledger stores (clock.iso): no parsing needed
        return f"{iso[:10]} {iso[11:16]}"
    try:
        return clock.local(dt.datetime.fromisoformat(iso)).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return iso
