"""Building the assignment workbooks: one per unit with tasks, pre-filled with its latest answers,
written atomically and recorded in the ledger.

What a workbook looks like is :mod:`automation.workbook.render`'s job; this module reads what one
build needs from the ledger once (:class:`_Source`), turns it into plain picklable jobs, renders
them in worker processes (the work is CPU-bound XML and zlib), and touches the ledger only in the
calling process, in one transaction after the files are written.
"""

from __future__ import annotations

import builtins
import datetime as dt
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from automation import clock
from automation.config import Config
from automation.errors import InputError
from automation.fsutil import atomic_write_bytes, safe_filename, sha256_bytes
from automation.ledger import Ledger
from automation.ledger.records import AssignmentRow, CurrentAnswer, Refusal
from automation.model import Batch
from automation.units import Registry
from automation.workbook.layout import META_KEYS, META_MAGIC, SIGNATURE_KEY, Layout, sign
from automation.workbook.render import BuildContext, WorkbookJob, render_workbook
from automation.workspace import Workspace

__all__ = [
    "BuiltWorkbook",
    "build_workbooks",
    "build_unit_workbook",
    "workbook_filename",
    "render_workbook",
    "WorkbookJob",
    "BuildContext",
    "metadata",
]

_FILENAME_MAX = 80
_MIN_PARALLEL = 6          # below this many workbooks a process pool costs more than it saves


@dataclass
class BuiltWorkbook:
    """One issued workbook: for whom, where, which tasks, and its content hash."""

    unit: str
    unit_id: int
    path: Path
    tasks: list[int]
    sha256: str

    def to_json(self) -> dict[str, Any]:
        return {"unit": self.unit, "unit_id": self.unit_id, "path": str(self.path), "tasks": list(self.tasks),
                "sha256": self.sha256}


# --------------------------------------------------------------------------- names


def workbook_filename(batch_title: str, unit_name: str) -> str:
    """``<batch title>_<unit>.xlsx``, safe on Windows, Chinese kept, at most 80 characters.

    When too long the batch title is shortened first, so the unit stays recognisable.
    """
    def clean(text: str) -> str:  # a slash in a title is text, not a directory
        return text.replace("/", "_").replace("\\", "_")

    unit = safe_filename(clean(unit_name), max_len=40, default="单位")
    room = _FILENAME_MAX - len(".xlsx") - len(unit) - 1
    title = safe_filename(clean(batch_title), max_len=max(room, 8), default="督办")
    return safe_filename(f"{title}_{unit}.xlsx", max_len=_FILENAME_MAX)


# --------------------------------------------------------------------------- jobs from the ledger


def metadata(batch: Batch, unit_id: int, unit_name: str, template_version: str, issued_at: dt.datetime,
             tasks: Sequence[int]) -> list[tuple[str, str]]:
    """The metadata rows (all strings) including the signature, in sheet order."""
    fields = {
        "magic": META_MAGIC,
        "batch_uid": batch.uid,
        "batch_title": batch.title,
        "unit_id": str(unit_id),
        "unit_name": unit_name,
        "template_version": template_version,
        "issued_at": clock.iso(issued_at),
        "tasks": ",".join(str(t) for t in tasks),
    }
    rows = [(k, fields[k]) for k in META_KEYS]
    rows.append((SIGNATURE_KEY, sign(batch.secret, fields)))
    return rows


_FILL = ("status", "progress", "completed_on", "evidence", "issues")


def _due(task: Any, batch: Batch) -> dt.date:
    """The task's own due date, else the batch deadline (the sort key of the task rows)."""
    try:
        return dt.date.fromisoformat(task.due_date) if task.due_date else batch.deadline
    except ValueError:
        return batch.deadline


class _Source:
    """The ledger rows one build needs, read once (not once per unit)."""

    def __init__(self, ledger: Ledger, batch: Batch, layout: Layout, prefill: bool) -> None:
        self.version = layout.version  # a hash of the whole layout: compute once per build
        self.tasks = {t.number: t for t in ledger.tasks(batch.id)}
        self.assignments: dict[int, list[AssignmentRow]] = {}
        for a in ledger.assignments(batch.id):
            self.assignments.setdefault(a.unit_id, []).append(a)
        self.answers: dict[tuple[int, int], CurrentAnswer] = {}
        self.contacts: dict[int, tuple[str, str]] = {}
        self.refusals: dict[tuple[int, int], list[Refusal]] = {}
        if prefill:
            for r in ledger.current_answers(batch.id):
                if r.submission_id is not None:
                    self.answers[(r.unit_id, r.task)] = r
            self.contacts = ledger.latest_contacts(batch.id)
            for f in ledger.refusals(batch.id):
                if f.task is not None:
                    self.refusals.setdefault((f.unit_id, f.task), []).append(f)

    def refused(self, unit_id: int, task: int, answer: CurrentAnswer | None) -> tuple[dict[str, str], dict[str, str]]:
        """What the unit typed that was not taken, to hand back (key → text), and why (key → reason):
        a row refused after the current answer, or a cell dropped from the current answer's own file."""
        values: dict[str, str] = {}
        notes: dict[str, str] = {}
        since = answer.submitted_at if answer else None
        for f in self.refusals.get((unit_id, task), ()):
            if f.row_refused and (since is None or f.received_at > since):
                values, notes = dict(f.values), {}
                notes[f.field if f.field in _FILL else "status"] = f.reason
            elif not f.row_refused and answer is not None and f.submission_id == answer.submission_id and f.field:
                if f.values.get(f.field):
                    values[f.field] = f.values[f.field]
                notes[f.field] = f.reason
        return values, notes

    def job(self, batch: Batch, unit_id: int, unit_name: str, issued_at: dt.datetime, path: Path) -> WorkbookJob:
        rows = []
        today = clock.local(issued_at).date()
        groups: dict[tuple[Any, Any], int] = {}
        for a in self.assignments.get(unit_id, []):
            t = self.tasks.get(a.task)
            if t is None:
                continue
            answer = self.answers.get((unit_id, t.number))
            answers = {k: getattr(answer, k) for k in _FILL} if answer else {}
            refused, notes = self.refused(unit_id, t.number, answer)
            due = _due(t, batch)
            overdue = bool(t.due_date) and due < today and answers.get("status") not in ("已完成", "不适用")
            group = groups.setdefault((t.section, t.subsection), len(groups))
            rows.append(((group, due, t.number), {
                "number": t.number, "section": t.section, "section_title": t.section_title,
                "subsection": t.subsection, "subsection_title": t.subsection_title, "title": t.title,
                "requirement": t.requirement, "lead": "、".join(t.lead), "responsible": "、".join(t.responsible),
                "role": f"{a.role}（{a.note}）" if a.note else a.role,
                "due": (t.deadline or "") + ("（已逾期）" if overdue else ""), "overdue": overdue,
                "answers": {**answers, **refused}, "refused": tuple(refused), "notes": notes,
            }))
        # Within each 大项/小项 the tasks come by their 完成时限 (the earliest first), then in table order.
        rows = [row for _key, row in sorted(rows, key=lambda r: r[0])]
        numbers = [row["number"] for row in rows]
        contact, phone = self.contacts.get(unit_id, ("", ""))
        meta = metadata(batch, unit_id, unit_name, self.version, issued_at, numbers)
        return WorkbookJob(unit_name, unit_id, tuple(rows), contact, phone, tuple(meta), str(path), tuple(numbers))


# --------------------------------------------------------------------------- running jobs

_WORKER_CONTEXT: BuildContext | None = None


def _init_worker(ctx: BuildContext) -> None:
    global _WORKER_CONTEXT
    _WORKER_CONTEXT = ctx


def _write_job(ctx: BuildContext, job: WorkbookJob) -> str:
    data = render_workbook(ctx, job)
    try:
        atomic_write_bytes(job.path, data)
    except PermissionError as exc:  # Windows: the old file is open in Excel/WPS
        raise InputError(f"无法写入 {job.path}：文件可能正在 Excel 或 WPS 中打开，请关闭后重新运行。") from exc
    return sha256_bytes(data)


def _worker(job: WorkbookJob) -> tuple[str, list[tuple[str, str]]]:
    """Run in a worker process; warnings travel back so the caller's filters (tests: error) apply."""
    assert _WORKER_CONTEXT is not None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sha = _write_job(_WORKER_CONTEXT, job)
    return sha, [(w.category.__name__, str(w.message)) for w in caught]


def _pool_context() -> Any:
    import multiprocessing as mp

    # forkserver: no fork of a process holding an SQLite connection and threads; spawn on Windows.
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["automation.workbook.build", "xlsxwriter"])
        return ctx
    return mp.get_context("spawn")


def _run(ctx: BuildContext, jobs: list[WorkbookJob], workers: int,
         progress: Callable[[int, int], None] | None) -> list[str]:
    total = len(jobs)
    shas: list[str] = [""] * total
    if progress:
        progress(0, total)
    if workers <= 1 or total < _MIN_PARALLEL:
        for i, job in enumerate(jobs):
            shas[i] = _write_job(ctx, job)
            if progress:
                progress(i + 1, total)
        return shas
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    done = 0
    try:
        with ProcessPoolExecutor(max_workers=min(workers, total), mp_context=_pool_context(),
                                 initializer=_init_worker, initargs=(ctx,)) as pool:
            futures = {pool.submit(_worker, job): i for i, job in enumerate(jobs)}
            for future in as_completed(futures):
                sha, caught = future.result()
                shas[futures[future]] = sha
                for category, message in caught:
                    cls = getattr(builtins, category, None)
                    warnings.warn(message, cls if isinstance(cls, type) and issubclass(cls, Warning)
                                  else UserWarning, stacklevel=2)
                done += 1
                if progress:
                    progress(done, total)
    except BrokenProcessPool:
        # Workers could not start (e.g. the caller's __main__ cannot be re-imported): finish here.
        for i, job in enumerate(jobs):
            if not shas[i]:
                shas[i] = _write_job(ctx, job)
                done += 1
                if progress:
                    progress(done, total)
    return shas


def _default_dir(config: Config) -> Path:
    return Workspace(config.workspace).workbooks


def _layout(config: Config) -> Layout:
    from automation.workbook.template import layout_for

    return layout_for(config)


def _context(config: Config, batch: Batch, layout: Layout, now: dt.datetime) -> BuildContext:
    from automation.workbook.layout import filling_rules

    rules = filling_rules(config.collect.require_progress_when_done, config.collect.no_future_completion)
    return BuildContext(layout=layout, batch_title=batch.title, deadline=batch.deadline, office=config.office,
                        issued_at=now, rules=rules)


def build_workbooks(
    config: Config,
    ledger: Ledger,
    now: dt.datetime,
    units: Sequence[str] | None = None,
    out_dir: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    jobs: int | None = None,
    purpose: str = "build",
) -> list[BuiltWorkbook]:
    """Build one workbook per unit with assignments (or per named unit), pre-filled with the
    unit's latest answers; overwrite atomically and record every issue in the ledger (with
    ``purpose``, e.g. "remind" for re-issues attached to reminders).

    ``units`` are names or aliases resolved through the registry (a group name means its
    members); an unknown name raises :class:`~automation.errors.UnknownUnitError`.  ``jobs``:
    worker processes (default: every core); ``progress(done, total)`` is called as files land.
    """
    batch = ledger.require_batch(config.batch.title)
    layout = _layout(config)
    assigned = ledger.assigned_units(batch.id)
    if units:
        registry = Registry.from_config(config)
        wanted: list[str] = []
        for name in units:
            resolved = registry.resolve(name, where="--unit 参数")
            if len(resolved) == 1 and resolved[0] not in {u.name for u in assigned}:
                raise InputError(f"单位“{resolved[0]}”在批次“{batch.title}”中没有任务，不生成工作簿。")
            wanted.extend(resolved)
        keep = set(wanted)
        assigned = [u for u in assigned if u.name in keep]
    out = Path(out_dir) if out_dir is not None else _default_dir(config)
    source = _Source(ledger, batch, layout, prefill=True)
    names: dict[str, int] = {}
    work: list[WorkbookJob] = []
    for u in assigned:
        name = workbook_filename(batch.title, u.name)
        if name in names:  # two units whose names differ only in characters Windows refuses
            name = name[: -len(".xlsx")] + f"_{u.id}.xlsx"
        names[name] = u.id
        work.append(source.job(batch, u.id, u.name, now, out / name))
    ctx = _context(config, batch, layout, now)
    shas = _run(ctx, work, jobs if jobs is not None else (os.cpu_count() or 1), progress)
    built = [BuiltWorkbook(j.unit, j.unit_id, Path(j.path), list(j.tasks), sha) for j, sha in zip(work, shas,
                                                                                                    strict=True)]
    with ledger.transaction():
        ledger.save_layout(source.version, layout.to_dict(), now)
        for b in built:
            ledger.record_issue(batch.id, b.unit_id, now, source.version, b.tasks, str(b.path), b.sha256, purpose)
        ledger.event("build", now, batch=batch.title, workbooks=len(built), template_version=source.version)
    return built


def build_unit_workbook(
    config: Config,
    ledger: Ledger,
    batch: Batch,
    unit_id: int,
    now: dt.datetime,
    *,
    prefill: bool = True,
    purpose: str = "build",
    out_path: Path | None = None,
) -> BuiltWorkbook:
    """Build (and record) one unit's workbook, by default pre-filled with its latest answers and
    contact, e.g. to attach to a reminder; ``purpose`` is stored with the issue."""
    unit = ledger.unit(unit_id)
    if unit is None:
        raise InputError(f"台账中没有编号为 {unit_id} 的单位。")
    layout = _layout(config)
    source = _Source(ledger, batch, layout, prefill=prefill)
    if not source.assignments.get(unit_id):
        raise InputError(f"单位“{unit.name}”在批次“{batch.title}”中没有任务，不生成工作簿。")
    path = Path(out_path) if out_path is not None else _default_dir(config) / workbook_filename(batch.title,
                                                                                                unit.name)
    job = source.job(batch, unit_id, unit.name, now, path)
    sha = _write_job(_context(config, batch, layout, now), job)
    with ledger.transaction():
        ledger.save_layout(source.version, layout.to_dict(), now)
        ledger.record_issue(batch.id, unit_id, now, source.version, list(job.tasks), str(path), sha, purpose)
    return BuiltWorkbook(unit.name, unit_id, path, list(job.tasks), sha)
