"""``automation init``: bring a task table into the ledger, with the unit registry it names.

Sync the registry from config.toml, read the table, refuse (or register) names the registry does
not know, expand the task × unit assignments and store the table as the batch's revision.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

from automation.config import Config, UnitSpec
from automation.errors import ConfigError, UnknownUnitError
from automation.fsutil import sha256_file
from automation.ledger import ImportResult, Ledger
from automation.tasks.load import TaskTable, load_tasks
from automation.units import Registry, expand_assignments, unknown_names

__all__ = ["init_batch", "register_units_in_config", "missing_addresses"]


def register_units_in_config(config: Config, names: list[str]) -> None:
    """Append a ``[[units]]`` block per new name to config.toml (comments are kept)."""
    blocks = "".join(
        f'\n[[units]]\nname = "{n}"\n# 自动登记：请补充邮箱、联系人和电话\nemail = []\ncontact = ""\nphone = ""\n'
        for n in names
    )
    with open(config.path, "a", encoding="utf-8") as fh:
        fh.write(blocks)


def init_batch(
    config: Config,
    ledger: Ledger,
    now: dt.datetime,
    tasks_path: Path | None = None,
    replace: bool = False,
    register_unknown: bool = False,
) -> tuple[ImportResult, TaskTable]:
    """Import the batch's task table into the ledger (idempotent; see :meth:`Ledger.import_tasks`)."""
    path = tasks_path or config.batch.tasks
    if path is None:
        raise ConfigError("config.toml：[batch] 缺少 tasks（任务表文件路径），或用 automation init --tasks 指定。")
    table = load_tasks(path, config.batch.sheet if tasks_path is None else None, year=config.batch.year)
    registry = Registry.from_config(config)
    unknown = unknown_names(table.tasks, registry)
    units = list(config.units)
    if unknown:
        if not register_unknown:
            name, task = unknown[0]
            more = f"（另有 {len(unknown) - 1} 个未知名称）" if len(unknown) > 1 else ""
            raise UnknownUnitError(name, registry.suggest(name), where=f"{Path(path).name} 第 {task} 项任务{more}")
        register_units_in_config(config, [n for n, _ in unknown])
        units += [UnitSpec(name=n) for n, _ in unknown]
        registry = Registry(units, config.groups, config.office.city)
    ledger.sync_units(units, now)
    assignments = expand_assignments(table.tasks, registry)
    batch = ledger.ensure_batch(config.batch.title, config.batch.year, config.batch.deadline, now)
    result = ledger.import_tasks(
        batch, table.tasks, assignments, now,
        source_name=Path(path).name, source_sha256=sha256_file(path), replace=replace,
    )
    return dataclasses.replace(result, warnings=tuple(missing_addresses(ledger, result.batch.id))), table


def missing_addresses(ledger: Ledger, batch_id: int) -> list[str]:
    """One warning per unit that has tasks but no e-mail address (it cannot be sent its workbook)."""
    return [f"单位“{u.name}”有任务但未登记邮箱，无法向其发送工作簿和提醒：请在 config.toml 该单位的 [[units]] 中填写 email。"
            for u in ledger.assigned_units(batch_id) if not u.emails]
