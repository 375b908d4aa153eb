"""What the console's pages show: the overview, the task table, one task, the registry, one unit.

Plain functions returning dataclasses, built from the same derivations as ``automation status``
and the report (:mod:`automation.progress.summary`): the overview from the very snapshot
``status`` uses, a task's 落实情况 text by :func:`~automation.progress.summary.rollup_task` as the
report's cell is built, a unit's level by :func:`~automation.progress.summary.unit_level`.  A page
of one task or one unit reads only that task's or unit's rows, so it stays fast on a province
batch.  The web layer renders them and adds nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from automation import clock
from automation.config import Config
from automation.ledger import Ledger
from automation.ledger.records import (
    AnswerRecord,
    HistoryRecord,
    MessageRow,
    Refusal,
    Revision,
    Submission,
    refusal_for,
)
from automation.model import Task, UnitRow
from automation.progress.periods import KIND_ALL, RoundProgress, round_progress
from automation.progress.summary import (
    DONE,
    IN_PROGRESS,
    LEVEL_NAMES,
    NOT_APPLICABLE,
    NOT_STARTED,
    STATUSES,
    UNREPORTED,
    Counts,
    DeadlineInfo,
    Snapshot,
    UnitProgress,
    count_statuses,
    deadline_info,
    effective_status,
    load_snapshot,
    role_text,
    rollup_task,
    task_due_date,
)
from automation.rounds import Round, batch_rounds, round_of
from automation.units import ROLE_LEAD
from automation.workdays import WorkCalendar

__all__ = [
    "UnitLine", "Overview", "overview", "TaskLine", "SectionGroup", "TaskTable", "task_table",
    "AnswerLine", "TaskView", "task_view", "RegistryLine", "Registry", "registry_view", "UnitView", "unit_view",
    "ReminderNote", "unit_state", "CHART_UNITS", "HEADLINE_LEVEL", "STATUS_KEYS", "IntakeView", "intake_view",
    "overview_from", "group_tasks", "OverdueLine", "TrendLine", "RoundsView", "overdue_lines", "rounds_view",
]

#: How many units the overview's completion chart shows at most (the worst ones), as in the report.
CHART_UNITS = 40
#: The colour class of a task headline (the report's cell colours).
HEADLINE_LEVEL = {DONE: "green", NOT_APPLICABLE: "green", IN_PROGRESS: "yellow", NOT_STARTED: "red",
                  UNREPORTED: "red", "无责任单位": "green"}
#: Status → the key used in ``status --json`` counts (and in CSS classes).
STATUS_KEYS = {DONE: "done", IN_PROGRESS: "in_progress", NOT_STARTED: "not_started",
               NOT_APPLICABLE: "not_applicable", UNREPORTED: "unreported"}


def unit_state(counts: Counts, overdue: bool) -> str:
    """One word for a unit, keeping a unit that sent nothing apart from one that is under way:
    已完成 / 未报送 / 逾期 / 推进中."""
    if counts.finished:
        return "已完成"
    if counts.reported == 0:
        return "未报送"
    return "逾期" if overdue else "推进中"


@dataclass(frozen=True)
class UnitLine:
    """One unit's row in the overview (the report's 单位进度 row)."""

    unit_id: int
    name: str
    kind: str
    level: str                 # red / yellow / green
    state: str                 # 已完成 / 未报送 / 逾期 / 推进中
    completion: float
    counts: dict[str, int]     # STATUS_KEYS values → n, plus assigned / applicable / reported
    last_submission: str | None
    reminders: int
    overdue_workdays: int
    overdue_tasks: int = 0     # its assignments past their own due date, unfinished
    score: float = 0.0         # 综合得分
    rank: int = 0              # within its kind
    round_state: str = ""      # 本期已报送 / 本期未报送 (a batch with rounds)

    @property
    def level_name(self) -> str:
        return LEVEL_NAMES[self.level]

    @classmethod
    def of(cls, u: UnitProgress) -> UnitLine:
        c = u.counts
        counts = {STATUS_KEYS[s]: c[s] for s in STATUSES}
        counts.update(assigned=c.assigned, applicable=c.applicable, reported=c.reported)
        return cls(u.unit_id, u.name, u.kind, u.level, unit_state(c, u.overdue), c.completion, counts,
                   u.last_submission, u.reminders, u.overdue_workdays, u.overdue_tasks, u.score, u.rank,
                   u.round_state)


@dataclass(frozen=True)
class OverdueLine:
    """A task past its due date with units still unfinished."""

    number: int
    title: str
    deadline: str             # as the table wrote it, else the date
    due: dt.date
    overdue_workdays: int
    unfinished: int


@dataclass(frozen=True)
class TrendLine:
    """One series of the trend chart: a unit kind's completion at the end of each round so far."""

    name: str
    values: list[float]


@dataclass(frozen=True)
class RoundsView:
    """定期报送 at a glance: the current round, who reported in it, and the trend."""

    current: Round
    total: int
    reported_units: int           # units that answered something in the current round
    units: int
    labels: list[str]             # 第1期 … up to the current round
    trend: list[TrendLine]


@dataclass(frozen=True)
class Overview:
    """总览: the batch at a glance, units worst first."""

    batch: str
    now: dt.datetime
    deadline: DeadlineInfo
    completion: float
    counts: dict[str, int]              # status → assignments (and assigned / applicable / reported)
    task_counts: dict[str, int]         # task headline → tasks
    tasks: int
    units: list[UnitLine]               # worst first
    levels: dict[str, int]              # red / yellow / green → units
    states: dict[str, int]              # 已完成 / 未报送 / 逾期 / 推进中 → units
    overdue: list[OverdueLine] = field(default_factory=list)   # tasks past their due date, earliest first
    rounds: RoundsView | None = None    # a batch with reporting rounds

    @property
    def chart_units(self) -> list[UnitLine]:
        """The units the completion chart shows: the worst :data:`CHART_UNITS`."""
        return self.units[:CHART_UNITS]

    @property
    def silent(self) -> list[UnitLine]:
        return [u for u in self.units if u.state == "未报送"]


def _counts_dict(c: Counts) -> dict[str, int]:
    out = {s: c[s] for s in STATUSES}
    out.update(assigned=c.assigned, applicable=c.applicable, reported=c.reported)
    return out


def overdue_lines(snap: Snapshot) -> list[OverdueLine]:
    titles = {t.number: t for t in snap.tasks}
    lines = [OverdueLine(d.number, titles[d.number].title, titles[d.number].deadline or d.due.isoformat(), d.due,
                         d.overdue_workdays, d.unfinished) for d in snap.overdue_tasks]
    return sorted(lines, key=lambda x: (x.due, x.number))


def rounds_view(snap: Snapshot, progress: list[RoundProgress]) -> RoundsView | None:
    """The rounds of a snapshot with :func:`~automation.progress.periods.round_progress` (None without rounds)."""
    if not snap.periodic or snap.round is None or not progress:
        return None
    kinds: dict[str, list[int]] = {KIND_ALL: [uid for uid, _n in snap.unit_order]}
    for uid, _n in snap.unit_order:
        kinds.setdefault(snap.kinds.get(uid) or "其他单位", []).append(uid)
    trend = [TrendLine(kind, [p.completion(ids) for p in progress]) for kind, ids in kinds.items()]
    current = progress[-1]
    return RoundsView(snap.round, len(snap.rounds), current.reported_units(), len(snap.unit_order),
                      [p.round.name for p in progress], trend)


def overview_from(snap: Snapshot, progress: list[RoundProgress] | None = None) -> Overview:
    """The overview of a snapshot (:func:`~automation.progress.summary.load_snapshot`)."""
    units = [UnitLine.of(u) for u in snap.units]
    levels = dict.fromkeys(("red", "yellow", "green"), 0)
    states = dict.fromkeys(("未报送", "逾期", "推进中", "已完成"), 0)
    for u in units:
        levels[u.level] += 1
        states[u.state] += 1
    return Overview(snap.batch.title, snap.now, snap.deadline, snap.overall.completion, _counts_dict(snap.overall),
                    snap.task_counts(), len(snap.tasks), units, levels, states, overdue_lines(snap),
                    rounds_view(snap, progress or []))


def overview(config: Config, ledger: Ledger, now: dt.datetime) -> Overview:
    """总览 at ``now``: the snapshot ``automation status`` is computed from, without the per-assignment rows
    (and, for a batch with rounds, the progress of each round)."""
    with ledger.reading():
        snap = load_snapshot(config, ledger, now)
        progress = round_progress(ledger, snap) if snap.periodic else []
    return overview_from(snap, progress)


# --------------------------------------------------------------------------- the task table


@dataclass(frozen=True)
class TaskLine:
    number: int
    title: str
    lead: list[str]
    responsible: list[str]
    deadline: str | None
    headline: str
    summary: str
    level: str
    due_date: dt.date | None = None     # its own 完成时限 as a date
    overdue: bool = False
    overdue_workdays: int = 0


@dataclass(frozen=True)
class SectionGroup:
    """A 大项 (or a 小项 inside it) with its tasks, in table order."""

    section: str | None
    title: str | None
    subsection: str | None
    subtitle: str | None
    tasks: list[TaskLine]


@dataclass(frozen=True)
class TaskTable:
    """任务表: the batch's current table with each task's 落实情况 line, and every revision imported."""

    batch: str
    revision: int
    sent: bool
    groups: list[SectionGroup]
    revisions: list[Revision]
    tasks: int


def group_tasks(tasks: list[Any], line: Any) -> list[SectionGroup]:
    """Tasks (anything with section / subsection fields) grouped by 大项 and 小项 in order, each
    turned into ``line(task)``."""
    groups: list[SectionGroup] = []
    key: tuple[Any, Any] | None = None
    for t in tasks:
        k = (t.section, t.subsection)
        if k != key:
            groups.append(SectionGroup(t.section, t.section_title, t.subsection, t.subsection_title, []))
            key = k
        groups[-1].tasks.append(line(t))
    return groups


def task_table(config: Config, ledger: Ledger, now: dt.datetime) -> TaskTable:
    with ledger.reading():
        snap = load_snapshot(config, ledger, now)
        revisions = ledger.revisions(snap.batch.id)
        sent = ledger.was_sent(snap.batch.id)

    def line(t: Task) -> TaskLine:
        r = snap.rollups[t.number]
        d = snap.dues[t.number]
        return TaskLine(t.number, t.title, t.lead, t.responsible, t.deadline, r.headline, r.summary,
                        HEADLINE_LEVEL.get(r.headline, "red"), d.due if d.own else None, d.overdue,
                        d.overdue_workdays)

    return TaskTable(snap.batch.title, snap.batch.revision, sent, group_tasks(snap.tasks, line), revisions,
                     len(snap.tasks))


# --------------------------------------------------------------------------- one task


@dataclass(frozen=True)
class AnswerLine:
    """One unit's current answer (on a task page or a unit page)."""

    task: int
    title: str
    unit_id: int
    unit: str
    kind: str
    role: str                # 牵头 / 责任
    role_label: str          # with the scope note: 责任（负责市政府规章）
    status: str              # effective: 未填报 when there is no answer
    progress: str
    completed_on: str | None
    evidence: str
    issues: str
    submitted_at: str | None
    submission_id: int | None
    source_file: str | None
    deadline: str | None = None     # the task's 完成时限 as written
    overdue: bool = False           # past its due date and not finished
    refused: str = ""               # why the unit's latest return of it was refused

    @property
    def status_key(self) -> str:
        return STATUS_KEYS.get(self.status, "unreported")

    @classmethod
    def of(cls, a: AnswerRecord, task: Task | None = None, today: dt.date | None = None,
           batch_deadline: dt.date | None = None, refused: str = "") -> AnswerLine:
        status = effective_status(a.status)
        overdue = False
        if task is not None and today is not None and batch_deadline is not None:
            overdue = today > task_due_date(task, batch_deadline) and status not in (DONE, NOT_APPLICABLE)
        return cls(a.task, a.title, a.unit_id, a.unit, a.kind, a.role, role_text(a.role, a.note), status,
                   a.progress, a.completed_on, a.evidence, a.issues, a.submitted_at, a.submission_id, a.source_file,
                   task.deadline if task else None, overdue, refused)


@dataclass(frozen=True)
class TaskView:
    """任务详情: the task as imported and every unit's answer to it."""

    batch: str
    task: Task
    headline: str
    summary: str
    text: str                 # the report's 落实情况 cell: lead units' own answers, then the summary line
    unfinished_text: str      # the report's 未完成单位 cell
    counts: dict[str, int]
    level: str
    answers: list[AnswerLine]
    due: dt.date | None = None           # its own 完成时限 as a date
    overdue: bool = False
    overdue_workdays: int = 0


def task_view(config: Config, ledger: Ledger, now: dt.datetime, number: int) -> TaskView | None:
    """One task's page, or None when the batch has no such task."""
    batch = ledger.require_batch(config.batch.title)
    with ledger.reading():
        task = next((t for t in ledger.tasks(batch.id) if t.number == number), None)
        if task is None:
            return None
        refusals: dict[int, list[Refusal]] = {}
        for f in ledger.refusals(batch.id):
            if f.task in (None, number):
                refusals.setdefault(f.unit_id, []).append(f)
        today = clock.local(now).date()
        answers = [AnswerLine.of(a, task, today, batch.deadline,
                                 refusal_for(refusals.get(a.unit_id, []), number, a.submitted_at))
                   for a in ledger.task_answers(batch.id, number)]
    # The report's cell: rows of (unit, role, status, progress of a lead unit) in assignment order.
    rows = [(a.unit, a.role, a.status, a.progress if a.role == ROLE_LEAD else "") for a in answers]
    r = rollup_task(number, rows)
    due = task_due_date(task, batch.deadline)
    late = today > due and not r.counts.finished
    calendar = WorkCalendar.from_config(config.remind)
    return TaskView(batch.title, task, r.headline, r.summary, r.text(), r.unfinished_text(config.groups),
                    _counts_dict(r.counts), HEADLINE_LEVEL.get(r.headline, "red"), answers,
                    due if task.due_date else None, late, calendar.workdays_between(due, today) if late else 0)


# --------------------------------------------------------------------------- the registry


@dataclass(frozen=True)
class RegistryLine:
    unit: UnitRow
    assignments: int
    progress: UnitLine | None = None    # its 单位进度 row (score, rank, overdue tasks), when it has tasks

    @property
    def missing_email(self) -> bool:
        return not self.unit.emails


@dataclass(frozen=True)
class Registry:
    """单位: the registry as synced from config.toml, with each unit's share of the batch."""

    batch: str
    units: list[RegistryLine]
    groups: dict[str, tuple[str, ...]]

    @property
    def missing_email(self) -> list[RegistryLine]:
        return [u for u in self.units if u.missing_email and u.assignments]


def registry_view(config: Config, ledger: Ledger, now: dt.datetime | None = None) -> Registry:
    """The registry; with ``now``, each unit's 单位进度 row too (综合得分, 类内排名: the snapshot's)."""
    batch = ledger.require_batch(config.batch.title)
    with ledger.reading():
        counts = ledger.assignment_counts(batch.id)
        progress = {u.unit_id: UnitLine.of(u) for u in load_snapshot(config, ledger, now).units} if now else {}
        lines = [RegistryLine(u, counts.get(u.id, 0), progress.get(u.id)) for u in ledger.units()]
    return Registry(batch.title, lines, dict(config.groups))


# --------------------------------------------------------------------------- one unit


@dataclass(frozen=True)
class ReminderNote:
    """The next reminder a unit will get if it has not finished by then."""

    day: dt.date
    kind: str
    kind_name: str
    due_at: dt.datetime


@dataclass(frozen=True)
class UnitView:
    """单位详情: the unit's tasks, history, files received and mails sent."""

    batch: str
    unit: UnitRow
    level: str
    state: str
    completion: float
    counts: dict[str, int]
    deadline: DeadlineInfo
    overdue_workdays: int
    last_submission: str | None
    reminders: int
    tasks: list[AnswerLine]
    history: list[HistoryRecord]
    files: list[Submission]
    mails: list[MessageRow]
    next_reminder: ReminderNote | None = None
    problems: dict[int, list[dict[str, Any]]] = field(default_factory=dict)   # submission id → problems
    score: float = 0.0
    overdue_tasks: int = 0
    rounds: list[tuple[str, int, bool]] = field(default_factory=list)   # (round label, tasks answered, closed)

    @property
    def level_name(self) -> str:
        return LEVEL_NAMES[self.level]

    @property
    def finished(self) -> bool:
        return self.state == "已完成"


def unit_view(config: Config, ledger: Ledger, now: dt.datetime, unit_id: int) -> UnitView | None:
    """One unit's page, or None when there is no such unit."""
    batch = ledger.require_batch(config.batch.title)
    with ledger.reading():
        unit = ledger.unit(unit_id)
        if unit is None:
            return None
        today = clock.local(now).date()
        by_number = {t.number: t for t in ledger.tasks(batch.id)}
        refusals = ledger.refusals(batch.id, unit_id)
        tasks = [AnswerLine.of(a, by_number.get(a.task), today, batch.deadline,
                               refusal_for(refusals, a.task, a.submitted_at))
                 for a in ledger.unit_answers(batch.id, unit_id)]
        history = ledger.history(batch.id, unit_id, newest_first=True)
        files = ledger.unit_submissions(batch.id, unit_id)
        mails = ledger.message_records(batch.id, unit_id=unit_id)
        last, reminders = ledger.unit_activity(batch.id, unit_id)
        problems = {f.id: ledger.problem_records(f.id) for f in files if f.problem_count}
    info = deadline_info(batch.deadline, now, WorkCalendar.from_config(config.remind))
    counts = count_statuses(a.status for a in tasks)
    overdue = info.passed and not counts.finished
    due = on_time = 0
    for a in tasks:   # the snapshot's on-time rule for this unit's rows (summary.load_snapshot)
        t = by_number.get(a.task)
        d = task_due_date(t, batch.deadline) if t else batch.deadline
        if today > d:
            due += 1
            on_time += a.status == NOT_APPLICABLE or (a.status == DONE and (
                a.completed_on or (a.submitted_at or "")[:10] or "9") <= d.isoformat())
    progress = UnitProgress(unit.id, unit.name, unit.kind, 0, counts, last, reminders, overdue,
                            info.overdue_workdays if overdue else 0, due, on_time, sum(a.overdue for a in tasks))
    return UnitView(batch.title, unit, progress.level, unit_state(counts, overdue), counts.completion,
                    _counts_dict(counts), info, progress.overdue_workdays, last, reminders, tasks, history, files,
                    mails, None, problems, progress.score, progress.overdue_tasks,
                    _unit_rounds(config, batch, history, today))


def _unit_rounds(config: Config, batch: Any, history: list[HistoryRecord], today: dt.date) -> list[
        tuple[str, int, bool]]:
    """Per round so far: how many tasks the unit answered in it (from its history)."""
    rounds = batch_rounds(config.rounds, clock.parse(batch.created_at).date(), batch.deadline)
    if len(rounds) < 2:
        return []
    answered: dict[int, set[int]] = {}
    for h in history:
        answered.setdefault(round_of(rounds, clock.parse(h.received_at).date()).number, set()).add(h.task)
    return [(r.label(), len(answered.get(r.number, ())), today > r.deadline) for r in rounds
            if r.start is None or r.start < today]


# --------------------------------------------------------------------------- collection


@dataclass(frozen=True)
class IntakeView:
    """回收: the quarantine with reasons, the latest files processed, and how files may come in."""

    batch: str
    quarantined: list[Submission]
    recent: list[Submission]
    problems: dict[int, list[dict[str, Any]]]
    imap: str                 # the mailbox read by 「收取邮件」, or "" when [imap] has no host
    max_files: int
    max_file_mb: float


def intake_view(config: Config, ledger: Ledger, recent: int = 30) -> IntakeView:
    batch = ledger.require_batch(config.batch.title)
    quarantined = ledger.quarantined(batch.id)
    latest = ledger.recent_submissions(batch.id, recent)
    problems = {s.id: ledger.problem_records(s.id) for s in quarantined if s.problem_count}
    imap = f"{config.imap.user or ''}@{config.imap.host}（{config.imap.folder}）" if config.imap.host else ""
    return IntakeView(batch.title, quarantined, latest, problems, imap, config.collect.max_files,
                      config.collect.max_file_mb)
