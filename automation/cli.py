"""The ``automation`` command line: a few lines per command over the library.

Global options (every command): ``--config PATH`` (env AUTOMATION_CONFIG, default ./config.toml),
``--workspace DIR`` (default from config) and ``--debug``.  Errors print one line
``Error: …`` and exit 1; tracebacks only with ``--debug``.
"""

from __future__ import annotations

import json
import sys
from functools import cached_property
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from . import clock
from .config import CONFIG_ENV, Config, load_config
from .errors import AutomationError
from .ledger import Batch, Ledger

console = Console(highlight=False, soft_wrap=False)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


class App:
    """Lazily loaded config, workspace and ledger for one CLI invocation."""

    def __init__(self, config_path: str | None, workspace: str | None, debug: bool) -> None:
        self.config_path = config_path
        self.workspace_override = workspace
        self.debug = debug

    @cached_property
    def config(self) -> Config:
        return load_config(self.config_path, self.workspace_override)

    @cached_property
    def ledger(self) -> Ledger:
        from .workspace import open_workspace

        _ws, ledger = open_workspace(self.config)
        return ledger

    @cached_property
    def workspace(self):  # type: ignore[no-untyped-def]
        from .workspace import Workspace

        ws = Workspace(self.config.workspace)
        ws.create()
        return ws

    def batch(self) -> Batch:
        return self.ledger.require_batch(self.config.batch.title)

    def now(self, value: str | None = None):  # type: ignore[no-untyped-def]
        return clock.parse(value) if value else clock.now()


pass_app = click.make_pass_decorator(App)


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(dir_okay=False), envvar=CONFIG_ENV,
              help="配置文件（默认 ./config.toml，或环境变量 AUTOMATION_CONFIG）")
@click.option("--workspace", type=click.Path(file_okay=False), help="工作目录（默认取配置中的 workspace）")
@click.option("--debug", is_flag=True, help="出错时显示完整的 Python 调用栈")
@click.version_option(package_name="duban-automation")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, workspace: str | None, debug: bool) -> None:
    """督办：任务表导入、分发工作簿、回收汇总、催办提醒。"""
    ctx.obj = App(config_path, workspace, debug)


# --------------------------------------------------------------------------- tasks


@cli.group()
def tasks() -> None:
    """任务表相关命令。"""


@tasks.command("show")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--sheet", help="Excel 文件中的工作表名称（默认自动查找）")
@click.option("--json", "as_json", is_flag=True, help="以 JSON 输出（每项任务一个对象）")
def tasks_show(path: Path, sheet: str | None, as_json: bool) -> None:
    """读取任务表 PATH，显示识别结果（不需要配置文件）。"""
    from .load import load_tasks, tasks_to_json

    table = load_tasks(path, sheet)
    if as_json:
        print_json(tasks_to_json(table.tasks))
    else:
        out = Table(title=f"{path.name}：{len(table.tasks)} 项任务，{len(table.sections)} 个大项，"
                          f"{len(table.subsections)} 个小项", show_lines=False)
        for col in ("编号", "大项", "小项", "工作任务", "牵头单位", "责任单位", "落实情况"):
            out.add_column(col, overflow="fold")
        for t in table.tasks:
            out.add_row(str(t.number), t.section or "", t.subsection or "", t.title,
                        "、".join(t.lead), "、".join(t.responsible), t.status)
        console.print(out)
    for p in table.problems:
        err_console.print(("提示：" if p.severity == "info" else "警告：") + str(p), markup=False)


# --------------------------------------------------------------------------- init / assignments


@cli.command("init")
@click.option("--tasks", "tasks_path", type=click.Path(dir_okay=False, path_type=Path),
              help="任务表文件（默认取配置 [batch] tasks）")
@click.option("--replace", is_flag=True, help="批次已发出后仍用新任务表替换（旧版本保留在历史中）")
@click.option("--register-unknown", is_flag=True, help="把任务表中未登记的单位追加到 config.toml")
@click.option("--json", "as_json", is_flag=True, help="以 JSON 输出结果")
@pass_app
def init_cmd(app: App, tasks_path: Path | None, replace: bool, register_unknown: bool, as_json: bool) -> None:
    """创建工作目录和台账，导入本批任务表（可重复运行）。"""
    from .workspace import init_batch

    result, table = init_batch(app.config, app.ledger, app.now(), tasks_path, replace, register_unknown)
    if as_json:
        print_json({"batch": result.batch.title, "revision": result.revision, "changed": result.changed,
                    "tasks": result.task_count, "assignments": result.assignment_count,
                    "workspace": str(app.config.workspace)})
        return
    for p in table.problems:
        if p.severity != "info":
            err_console.print("警告：" + str(p), markup=False)
    console.print(f"{result.batch.title}：{result.message}（工作目录 {app.config.workspace}）", markup=False)


@cli.command("assignments")
@click.option("--unit", "unit_names", multiple=True, help="只显示这些单位（可重复）")
@click.option("--json", "as_json", is_flag=True, help="以 JSON 输出（task、unit、role、note）")
@pass_app
def assignments_cmd(app: App, unit_names: tuple[str, ...], as_json: bool) -> None:
    """列出任务 × 单位分工（每个单位在每项任务中的角色）。"""
    from .units import Registry

    batch = app.batch()
    rows = app.ledger.assignments(batch.id)
    if unit_names:
        registry = Registry.from_config(app.config)
        wanted = {u for n in unit_names for u in registry.resolve(n)}
        rows = [r for r in rows if r["unit"] in wanted]
    if as_json:
        print_json([{"task": r["task"], "unit": r["unit"], "role": r["role"], "note": r["note"]} for r in rows])
        return
    out = Table(title=f"{batch.title}：{len(rows)} 条分工")
    for col in ("任务", "单位", "角色", "说明"):
        out.add_column(col)
    for r in rows:
        out.add_row(str(r["task"]), r["unit"], r["role"], r["note"] or "")
    console.print(out)


# --------------------------------------------------------------------------- build (workbooks: issue 3)

# --------------------------------------------------------------------------- collect (issue 4)

# --------------------------------------------------------------------------- report / status (issue 5)

# --------------------------------------------------------------------------- send / remind (issue 6)

# --------------------------------------------------------------------------- run / imap (issue 7)

# --------------------------------------------------------------------------- demo (issue 8)


# --------------------------------------------------------------------------- entry point


def main(argv: list[str] | None = None) -> int:
    """Console entry point: one-line errors, non-zero exit codes, tracebacks only with --debug."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:
        cli.main(args=args, prog_name="automation", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code or 0)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        err_console.print("已中止。")
        return 130
    except AutomationError as exc:
        if debug:
            raise
        err_console.print(f"Error: {exc}", markup=False, soft_wrap=True)
        return exc.exit_code
    except KeyboardInterrupt:
        err_console.print("已中止。")
        return 130
    except Exception as exc:  # an unexpected bug: still one line unless --debug
        if debug:
            raise
        err_console.print(
            f"Error: 内部错误 {type(exc).__name__}: {exc}。请加 --debug 重新运行并把输出反馈给维护者。",
            markup=False, soft_wrap=True,
        )
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
