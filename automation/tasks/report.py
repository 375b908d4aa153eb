"""The import report: one line per problem, and the summary line that closes ``tasks show``.

The summary says what was found (tasks, sections, unit names, names the registry does not know,
dates read from 时限) and what was not used (rows skipped, tasks naming no unit), so nothing is
lost without a word; ``--strict`` turns the last two into a failing exit code.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from automation.config import default_config_path, load_config
from automation.errors import ConfigError
from automation.model import Problem
from automation.tasks.load import load_tasks
from automation.tasks.records import TaskTable
from automation.tasks.word import PARAGRAPHS
from automation.units import Registry

__all__ = ["ImportSummary", "Review", "summarize", "describe", "review"]

_RAW_SHOWN = 80


def describe(p: Problem) -> str:
    """One line for a problem: where (page, row or paragraph), what, and the text it was about."""
    if p.row is None:
        where = "文档"
    elif p.sheet == PARAGRAPHS:
        where = f"正文第 {p.row} 段"
    elif p.sheet and p.sheet.startswith("第 ") and p.sheet.endswith(" 页"):
        where = f"{p.sheet}第 {p.row} 行"
    else:
        where = f"第 {p.row} 行"
    raw = p.raw if len(p.raw) <= _RAW_SHOWN else p.raw[:_RAW_SHOWN] + "…"
    return f"{where}：{p.message}" + (f"：{raw}" if raw else "")


@dataclass(frozen=True)
class ImportSummary:
    """What an import found and what it did not use."""

    tasks: int
    sections: int
    subsections: int
    units: tuple[str, ...]            # every unit name the tasks give, in order of appearance
    unknown: tuple[str, ...] | None   # names the registry does not know (None: no registry to ask)
    skipped: int                      # source rows or paragraphs skipped (error problems)
    without_units: tuple[int, ...]    # tasks naming no unit
    due_dates: int                    # tasks whose 时限 names a date
    deadlines: int                    # tasks with a 时限 at all
    year: int | None
    year_source: str

    @property
    def complete(self) -> bool:
        """Every row used and every task assigned (what ``--strict`` requires)."""
        return self.skipped == 0 and not self.without_units

    def line(self) -> str:
        parts = [f"{self.tasks} 项任务", f"{self.sections} 个大项"]
        if self.subsections:
            parts.append(f"{self.subsections} 个小项")
        units = f"单位名称 {len(self.units)} 个"
        if self.unknown is None:
            units += "（未检查是否登记：没有找到 config.toml）"
        elif self.unknown:
            shown = "、".join(self.unknown[:5]) + ("等" if len(self.unknown) > 5 else "")
            units += f"，其中 {len(self.unknown)} 个未在 config.toml 登记（{shown}）"
        else:
            units += "，均已登记"
        parts.append(units)
        if self.deadlines:
            parts.append(f"完成时限 {self.deadlines} 项（{self.due_dates} 项换算为日期，按 {self.year} 年，"
                         f"年份取自{self.year_source}）")
        parts.append(f"跳过 {self.skipped} 行")
        parts.append(f"无单位的任务 {len(self.without_units)} 项")
        return "汇总：" + "，".join(parts) + "。"


def summarize(table: TaskTable, registry: Registry | None = None) -> ImportSummary:
    """The summary of an import; ``registry`` (from config.toml) to count names it does not know."""
    names = tuple(dict.fromkeys(n for t in table.tasks for n in (*t.lead, *t.responsible)))
    unknown = None if registry is None else tuple(n for n in names if registry.lookup(n) is None)
    return ImportSummary(
        tasks=len(table.tasks),
        sections=len(table.sections),
        subsections=len(table.subsections),
        units=names,
        unknown=unknown,
        skipped=sum(1 for p in table.problems if p.severity == "error" and p.row is not None),
        without_units=tuple(t.number for t in table.tasks if not t.lead and not t.responsible),
        due_dates=sum(1 for t in table.tasks if t.due_date),
        deadlines=sum(1 for t in table.tasks if t.deadline),
        year=table.year,
        year_source=table.year_source,
    )


@dataclass(frozen=True)
class Review:
    """What ``automation tasks show`` reports: the table, its problems as lines, the summary."""

    table: TaskTable
    summary: ImportSummary
    config_note: str = ""  # why the registry was not asked, when a config.toml was there but unreadable

    @property
    def problem_lines(self) -> list[tuple[str, str]]:
        return [(p.severity, describe(p)) for p in self.table.problems]


def _registry(config_path: Path | None) -> tuple[Registry | None, str]:
    """The registry of the given config.toml, else of the one found (./config.toml, $AUTOMATION_CONFIG)."""
    if config_path is not None:
        return Registry.from_config(load_config(config_path)), ""
    found = default_config_path()
    if not found.exists():
        return None, ""
    try:
        return Registry.from_config(load_config(found)), ""
    except ConfigError as exc:  # the table can still be shown; say why names were not checked
        return None, f"未检查单位是否登记：{exc}"


def review(path: Path, sheet: str | None = None, config_path: Path | None = None,
           today: dt.date | None = None) -> Review:
    """Read a task list and summarise it, checking names against config.toml when there is one.

    Deadlines are dated in the year the document's title names (「2021年…」), else ``today``'s.
    """
    registry, note = _registry(config_path)
    table = load_tasks(path, sheet, today=today)
    return Review(table, summarize(table, registry), note)
