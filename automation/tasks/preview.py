"""What an import would do, before it does it (the console's 任务表 preview).

Read a table as ``automation init`` would, and say: the tasks by section, the registered units
it names, the names the registry does not know with the closest registered ones, the rows it
skipped or repaired with their text, and whether importing it now replaces a table already sent
out (the ``init --replace`` rule, which then needs a second confirmation).  Writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from automation.config import Config
from automation.errors import UnknownUnitError
from automation.ledger import Ledger, tasks_digest
from automation.model import Problem, Task
from automation.tasks.load import load_tasks
from automation.units import Registry, expand_assignments, unknown_names

__all__ = ["UnknownName", "NamedUnit", "PreviewSection", "TablePreview", "preview_table"]


@dataclass(frozen=True)
class UnknownName:
    name: str
    first_task: int
    suggestions: list[str]


@dataclass(frozen=True)
class NamedUnit:
    """A registered unit or group the table names, and in how many tasks."""

    name: str
    kind: str            # 单位 / 分组
    tasks: int
    members: int = 1     # units a group stands for


@dataclass(frozen=True)
class PreviewSection:
    section: str | None
    title: str | None
    subsection: str | None
    subtitle: str | None
    tasks: list[Task]


@dataclass(frozen=True)
class TablePreview:
    source: str
    tasks: list[Task]
    sections: list[PreviewSection]
    named: list[NamedUnit]
    unknown: list[UnknownName]
    skipped: list[Problem]           # rows not imported (severity error), with their text
    notes: list[Problem]             # rows repaired or merged (severity info)
    assignments: int | None              # task × unit pairs (None while names are unknown)
    current_revision: int                # 0: the batch has no table yet
    unchanged: bool                      # the same table as the current revision
    sent: bool                           # the batch's workbooks have gone out

    @property
    def needs_replace(self) -> bool:
        """Importing means replacing a table already sent out: a second confirmation is needed."""
        return self.sent and self.current_revision > 0 and not self.unchanged

    @property
    def importable(self) -> bool:
        return bool(self.tasks) and not self.unknown


def _sections(tasks: list[Task]) -> list[PreviewSection]:
    out: list[PreviewSection] = []
    key: tuple[str | None, str | None] | None = None
    for t in tasks:
        if (t.section, t.subsection) != key:
            key = (t.section, t.subsection)
            out.append(PreviewSection(t.section, t.section_title, t.subsection, t.subsection_title, []))
        out[-1].tasks.append(t)
    return out


def preview_table(config: Config, path: Path, ledger: Ledger | None = None, sheet: str | None = None,
                  source_name: str | None = None) -> TablePreview:
    """Read ``path`` and describe the import (raises :class:`~automation.errors.InputError` as
    ``tasks show`` does for a file that is not a task table)."""
    table = load_tasks(path, sheet)
    registry = Registry.from_config(config)
    unknown = [UnknownName(name, task, registry.suggest(name)) for name, task in unknown_names(table.tasks, registry)]
    named: dict[tuple[str, str], int] = {}
    for t in table.tasks:
        for name in dict.fromkeys((*t.lead, *t.responsible)):
            hit = registry.lookup(name)
            if hit is not None:
                named[hit] = named.get(hit, 0) + 1
    units = [NamedUnit(name, "分组" if kind == "group" else "单位", n,
                       len(registry.groups[name]) if kind == "group" else 1)
             for (kind, name), n in sorted(named.items(), key=lambda kv: (kv[0][0] != "group", -kv[1]))]
    assignments = None
    if not unknown:
        try:
            assignments = len(expand_assignments(table.tasks, registry))
        except UnknownUnitError:  # cannot happen once unknown_names is empty; kept as a guard
            assignments = None
    revision, unchanged, sent = 0, False, False
    if ledger is not None:
        batch = ledger.batch_by_title(config.batch.title)
        if batch is not None:
            revisions = ledger.revisions(batch.id)
            if revisions:
                revision = revisions[-1].revision
                unchanged = revisions[-1].digest == tasks_digest(table.tasks)
            sent = ledger.was_sent(batch.id)
    return TablePreview(
        source=source_name or Path(path).name, tasks=table.tasks, sections=_sections(table.tasks), named=units,
        unknown=unknown, skipped=[p for p in table.problems if p.severity != "info"],
        notes=[p for p in table.problems if p.severity == "info"], assignments=assignments,
        current_revision=revision, unchanged=unchanged, sent=sent,
    )
