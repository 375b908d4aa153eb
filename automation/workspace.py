"""The workspace: where the ledger and every file the tool writes live, and ``init``.

``<workspace>/`` holds ``ledger.sqlite3`` and the folders below; nothing outside it is ever
written (except the report path the user names).  :func:`init_batch` is what ``automation init``
runs: sync the unit registry, import the task table, expand the assignments.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from .config import Config
from .errors import ConfigError, UnknownUnitError
from .fsutil import sha256_file
from .ledger import ImportResult, Ledger
from .load import TaskTable, load_tasks
from .units import Registry, expand_assignments, unknown_names

__all__ = ["Workspace", "open_workspace", "init_batch", "register_units_in_config"]

FOLDERS = ("workbooks", "inbox", "archive", "quarantine", "outbox", "reports", "logs")


@dataclass(frozen=True)
class Workspace:
    root: Path

    @property
    def workbooks(self) -> Path:
        return self.root / "workbooks"

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"

    @property
    def archive(self) -> Path:
        return self.root / "archive"

    @property
    def quarantine(self) -> Path:
        return self.root / "quarantine"

    @property
    def outbox(self) -> Path:
        return self.root / "outbox"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def create(self) -> None:
        for folder in FOLDERS:
            (self.root / folder).mkdir(parents=True, exist_ok=True)

    @property
    def ledger_path(self) -> Path:
        return self.root / "ledger.sqlite3"


def open_workspace(config: Config, now: dt.datetime | None = None) -> tuple[Workspace, Ledger]:
    """The workspace folders and its ledger, with the unit registry synced from config.toml.

    Syncing on every open means an address added to config.toml is used by the next ``send``,
    ``collect`` or reminder without re-running ``init`` (it is an upsert that changes nothing when
    the registry is unchanged).
    """
    from . import clock

    ws = Workspace(config.workspace)
    ws.create()
    ledger = Ledger.open(ws.root)
    if ledger.execute("SELECT 1 FROM units LIMIT 1").fetchone() is not None:
        ledger.sync_units(config.units, now or clock.now())
    return ws, ledger


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
    table = load_tasks(path, config.batch.sheet if tasks_path is None else None)
    registry = Registry.from_config(config)
    unknown = unknown_names(table.tasks, registry)
    units = list(config.units)
    if unknown:
        if not register_unknown:
            name, task = unknown[0]
            more = f"（另有 {len(unknown) - 1} 个未知名称）" if len(unknown) > 1 else ""
            raise UnknownUnitError(name, registry.suggest(name), where=f"{Path(path).name} 第 {task} 项任务{more}")
        from .config import UnitSpec

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
    return result, table
