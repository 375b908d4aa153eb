"""The ``automation`` command line: a few lines per command over the library.

Global options (every command): ``--config PATH`` (env AUTOMATION_CONFIG, default ./config.toml),
``--workspace DIR`` (default from config) and ``--debug``.  Errors print one line
``Error: …`` and exit 1; tracebacks only with ``--debug``.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from functools import cached_property
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from automation import clock
from automation.config import CONFIG_ENV, Config, load_config
from automation.errors import AutomationError
from automation.ledger import Ledger
from automation.model import Batch

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
        """The workspace's ledger, created with its folders when missing (commands that write)."""
        from automation.ledger import open_workspace

        _ws, ledger = open_workspace(self.config)
        return ledger

    @cached_property
    def existing_ledger(self) -> Ledger:
        """The ledger of a workspace that ``init`` set up; read-only commands never create one."""
        from automation.ledger import open_workspace

        _ws, ledger = open_workspace(self.config, create=False)
        return ledger

    @cached_property
    def workspace(self):  # type: ignore[no-untyped-def]
        from automation.workspace import Workspace

        ws = Workspace(self.config.workspace)
        ws.create()
        return ws

    def batch(self) -> Batch:
        return self.ledger.require_batch(self.config.batch.title)

    def now(self, value: dt.datetime | None = None) -> dt.datetime:
        return value or clock.now()


pass_app = click.make_pass_decorator(App)


class NowType(click.ParamType):
    """``--now``: an ISO time in Beijing time; anything else is a usage error naming the form."""

    name = "ISO-TIME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> dt.datetime:
        if isinstance(value, dt.datetime):
            return value
        try:
            return clock.parse(str(value))
        except ValueError:
            self.fail(f"“{value}”不是时间，请写成 2021-11-01T09:30（年-月-日T时:分，北京时间）。", param, ctx)


NOW = NowType()


def print_json(data: Any) -> None:
    """JSON on stdout: UTF-8 text, or \\u escapes where stdout cannot encode Chinese (a GBK console
    redirected to a file on Windows) — always valid, never lossy."""
    encoding = (getattr(sys.stdout, "encoding", None) or "").lower().replace("-", "").replace("_", "")
    click.echo(json.dumps(data, ensure_ascii=encoding not in ("utf8", "utf8sig"), indent=2, default=str))


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
@click.option("--strict", is_flag=True, help="有跳过的行或没有单位的任务时，以退出码 3 结束")
@pass_app
def tasks_show(app: App, path: Path, sheet: str | None, as_json: bool, strict: bool) -> None:
    """读取任务表 PATH，显示识别结果（不需要配置文件；有 config.toml 时核对单位是否登记）。"""
    from automation.tasks.load import tasks_to_json
    from automation.tasks.report import review

    config_path = Path(app.config_path) if app.config_path else None
    result = review(path, sheet, config_path, today=app.now().date())
    table = result.table
    if as_json:
        print_json(tasks_to_json(table.tasks))
    else:
        out = Table(title=f"{path.name}：{len(table.tasks)} 项任务，{len(table.sections)} 个大项，"
                          f"{len(table.subsections)} 个小项", show_lines=False)
        for col in ("编号", "大项", "小项", "工作任务", "牵头单位", "责任单位", "落实情况", "完成时限"):
            out.add_column(col, overflow="fold")
        for t in table.tasks:
            out.add_row(str(t.number), t.section or "", t.subsection or "", t.title,
                        "、".join(t.lead), "、".join(t.responsible), t.status, t.deadline or "")
        console.print(out)
    for severity, line in result.problem_lines:
        err_console.print({"info": "提示：", "warning": "警告："}.get(severity, "跳过：") + line, markup=False)
    if result.config_note:
        err_console.print("提示：" + result.config_note, markup=False)
    err_console.print(result.summary.line(), markup=False)
    if strict and not result.summary.complete:
        raise click.exceptions.Exit(3)


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
    from automation.tasks.importing import init_batch
    from automation.tasks.report import describe

    result, table = init_batch(app.config, app.ledger, app.now(), tasks_path, replace, register_unknown)
    if as_json:
        print_json({"batch": result.batch.title, "revision": result.revision, "changed": result.changed,
                    "tasks": result.task_count, "assignments": result.assignment_count,
                    "workspace": str(app.config.workspace)})
        return
    for p in table.problems:
        if p.severity != "info":
            err_console.print("警告：" + describe(p), markup=False)
    for warning in result.warnings:
        err_console.print("警告：" + warning, markup=False)
    console.print(f"{result.batch.title}：{result.message}（工作目录 {app.config.workspace}）", markup=False)


@cli.command("assignments")
@click.option("--unit", "unit_names", multiple=True, help="只显示这些单位（可重复）")
@click.option("--json", "as_json", is_flag=True, help="以 JSON 输出（task、unit、role、note）")
@pass_app
def assignments_cmd(app: App, unit_names: tuple[str, ...], as_json: bool) -> None:
    """列出任务 × 单位分工（每个单位在每项任务中的角色）。"""
    from automation.units import Registry

    ledger = app.existing_ledger
    batch = ledger.require_batch(app.config.batch.title)
    rows = ledger.assignments(batch.id)
    if unit_names:
        registry = Registry.from_config(app.config)
        wanted = {u for n in unit_names for u in registry.resolve(n)}
        rows = [r for r in rows if r.unit in wanted]
    if as_json:
        print_json([{"task": r.task, "unit": r.unit, "role": r.role, "note": r.note} for r in rows])
        return
    out = Table(title=f"{batch.title}：{len(rows)} 条分工")
    for col in ("任务", "单位", "角色", "说明"):
        out.add_column(col)
    for r in rows:
        out.add_row(str(r.task), r.unit, r.role, r.note or "")
    console.print(out)


# --------------------------------------------------------------------------- build (workbooks: issue 3)


@cli.command("build")
@click.option("--unit", "unit_names", multiple=True, help="只生成这些单位的工作簿（可重复；可用别名或分组名）")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="输出目录（默认 工作目录/workbooks）")
@click.option("--json", "as_json", is_flag=True, help="以 JSON 输出（unit、unit_id、path、tasks、sha256）")
@pass_app
def build_cmd(app: App, unit_names: tuple[str, ...], out_dir: Path | None, as_json: bool) -> None:
    """为每个有任务的单位生成填报工作簿（重复运行会覆盖，已有填报内容会预填）。"""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from automation.workbook.build import build_workbooks

    config = app.config
    if not config.template.exists() and not as_json:
        err_console.print(f"提示：找不到模板 {config.template}，使用内置默认格式。", markup=False)
    with Progress(TextColumn("生成工作簿"), BarColumn(), MofNCompleteColumn(), console=err_console,
                  transient=True, disable=as_json or not err_console.is_terminal) as bar:
        task = bar.add_task("build", total=None)
        built = build_workbooks(config, app.ledger, app.now(), units=list(unit_names) or None, out_dir=out_dir,
                                progress=lambda done, total: bar.update(task, completed=done, total=total))
    if as_json:
        print_json([{"unit": b.unit, "unit_id": b.unit_id, "path": str(b.path), "tasks": b.tasks,
                     "sha256": b.sha256} for b in built])
        return
    out = Table(title=f"{app.batch().title}：已生成 {len(built)} 个工作簿")
    for col in ("单位", "任务数", "文件"):
        out.add_column(col, overflow="fold")
    for b in built:
        out.add_row(b.unit, str(len(b.tasks)), b.path.name)
    console.print(out)
    if built:
        console.print(f"保存在 {built[0].path.parent}", markup=False)


# --------------------------------------------------------------------------- collect (issue 4)


@cli.command("collect")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="以 JSON 输出（每个文件的结果和合计）")
@click.option("--now", "now_text", type=NOW, metavar="ISO-TIME", help="按此时间（北京时间）处理，例如 2021-11-01T09:30")
@click.option("--imap", "from_imap", is_flag=True, help="从邮箱（config.toml [imap]）收取单位回复邮件中的工作簿")
@pass_app
def collect_cmd(app: App, paths: tuple[Path, ...], as_json: bool, now_text: dt.datetime | None, from_imap: bool) -> None:
    """回收单位报回的工作簿：校验、归档、写入台账（默认处理 工作目录/inbox 中的文件）。

    PATH 可以是文件或文件夹，可写多个。每个文件的结果是“已接收”（写入台账）、“已隔离”（移入
    quarantine 并附原因）、“重复文件”或“已跳过”（暂时无法读取，如正在 WPS/Excel 中打开，留在原处下次重试）之一；
    收件箱中的文件处理后移出，其他位置的文件不会改动。

    \b
    --json 输出：{"files": [每个文件一个对象], "totals": {...}}
      文件对象：file_name, sha256, outcome (accepted|quarantined|duplicate|skipped), reason, unit, unit_id,
      rows_accepted, tasks_accepted [任务序号], problems [{severity (error|warning), sheet, cell,
      task_number, field, message}], submission_id, signed, archive_path, quarantine_path, sender,
      source, message_id, received_at, contact, phone
      totals：files, accepted, quarantined, duplicate, skipped, rows, problems
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from automation import actions
    from automation.collect.pipeline import result_line, summarize

    now = app.now(now_text)
    if from_imap:
        if paths:
            raise click.UsageError("--imap 从邮箱收取，不能同时指定文件或文件夹。")
        # One reader of the mailbox at a time: a running `automation run` already collects by itself.
        outcome = actions.collect_mailbox(app.config, app.ledger, now, who="automation collect --imap")
        err_console.print(outcome.summary, markup=False)
    else:
        with Progress(TextColumn("回收工作簿"), BarColumn(), MofNCompleteColumn(), console=err_console,
                      transient=True, disable=as_json or not err_console.is_terminal) as bar:
            task = bar.add_task("collect", total=None)
            outcome = actions.collect_folder(
                app.config, app.ledger, now, paths,
                progress=lambda done, total, _r: bar.update(task, completed=done, total=total),
                waiting=lambda message: err_console.print(message, markup=False))
    if outcome.receipts.sent:
        err_console.print(f"已发送回执 {outcome.receipts.sent} 封。", markup=False)
    if outcome.receipts.warning:
        err_console.print("警告：" + outcome.receipts.warning, markup=False)
    results = outcome.results
    if as_json:
        print_json(summarize(results))
        return
    if not results:
        console.print("没有需要处理的文件（收件箱为空）。", markup=False)
        return
    out = Table(title=f"{app.config.batch.title}：回收 {len(results)} 个文件")
    for col in ("文件", "单位", "结果"):
        out.add_column(col, overflow="fold")
    for r in results:
        out.add_row(r.file_name, r.unit or "", result_line(r))
    console.print(out)
    totals = summarize(results)["totals"]
    console.print(f"接收 {totals['accepted']} 个（{totals['rows']} 项），隔离 {totals['quarantined']} 个，"
                  f"重复 {totals['duplicate']} 个；问题 {totals['problems']} 个。", markup=False)
    if totals["skipped"]:
        console.print(f"{totals['skipped']} 个文件已跳过（原因见上表，如正在 WPS/Excel 中打开、仍在写入、链接失效），"
                      "留在原处，下次运行时重试。", markup=False)
    if totals["quarantined"]:
        console.print(f"隔离的文件及原因见 {app.workspace.quarantine}", markup=False)



# --------------------------------------------------------------------------- report / status (issue 5)

_LEVEL_STYLE = {"red": "bold red", "yellow": "yellow", "green": "green"}


@cli.command("report")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path),
              help="汇总表保存位置（默认 工作目录/reports/<批次>_汇总表_<年月日-时分>.xlsx）")
@click.option("--json", "as_json", is_flag=True, help="以 JSON 输出结果（path、batch、tasks、units、assignments、completion）")
@click.option("--now", "now_text", type=NOW, metavar="ISO-TIME", help="按指定时间统计（默认当前时间），例如 2021-11-01T09:30")
@pass_app
def report_cmd(app: App, out: Path | None, as_json: bool, now_text: dt.datetime | None) -> None:
    """生成汇总表：原表格式 + 落实情况、单位进度、任务×单位、进展明细、问题清单、提交记录。"""
    from automation.progress.report import create_report

    info = create_report(app.config, app.existing_ledger, app.now(now_text), out)
    if as_json:
        print_json(info.to_json())
        return
    s = info.snapshot
    console.print(f"汇总表已生成：{info.path}", markup=False)
    console.print(f"{s.batch.title}：{len(s.tasks)} 项任务、{len(s.units)} 个单位，整体完成率 "
                  f"{s.overall.completion:.1%}（{s.deadline.text()}）。", markup=False)


@cli.command("notice")
@click.option("--now", "now_text", type=NOW, metavar="ISO-TIME", help="按指定时间统计（默认当前时间），例如 2021-12-20T09:00")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path),
              help="保存位置（默认 工作目录/reports/<批次>_情况通报_<年月日-时分>.docx）")
@click.option("--pdf", is_flag=True, help="同时用 LibreOffice 转换为 PDF（需已安装 LibreOffice）")
@click.option("--json", "as_json", is_flag=True, help="以 JSON 输出（path、pdf、completion、silent）")
@pass_app
def notice_cmd(app: App, now_text: dt.datetime | None, out: Path | None, pdf: bool, as_json: bool) -> None:
    """生成情况通报（Word）：总体情况、全部完成的单位、进度滞后的单位、未报送的单位、逾期任务、排名。"""
    from automation.progress.notice import write_notice

    info = write_notice(app.config, app.existing_ledger, app.now(now_text), out, pdf=pdf)
    if as_json:
        print_json({"path": str(info.path), "pdf": str(info.pdf) if info.pdf else None,
                    "completion": round(info.content.completion, 4), "silent": info.content.silent_names})
        return
    console.print(f"情况通报已生成：{info.path}", markup=False)
    if info.pdf:
        console.print(f"PDF：{info.pdf}", markup=False)
    console.print(f"整体完成率 {info.content.completion:.1%}；未报送的单位："
                  f"{'、'.join(info.content.silent_names) or '无'}。", markup=False)


@cli.command("status")
@click.option("--json", "as_json", is_flag=True,
              help="以 JSON 输出（批次、截止日期、剩余工作日、完成率、每项任务、每个单位、每条分工的最新填报）")
@click.option("--now", "now_text", type=NOW, metavar="ISO-TIME", help="按指定时间统计（默认当前时间），例如 2021-11-01T09:30")
@click.option("--round", "round_number", type=click.IntRange(min=1), metavar="N",
              help="查看第 N 期定期报送（config.toml [rounds]）：往期按其截止日结束时的情况统计")
@pass_app
def status_cmd(app: App, as_json: bool, now_text: dt.datetime | None, round_number: int | None) -> None:
    """在终端查看进度：截止日期、剩余工作日、整体完成率、各单位进度（差的在前）。"""
    from automation.progress.status import status_summary

    data = status_summary(app.config, app.existing_ledger, app.now(now_text), round_number)
    if as_json:
        print_json(data)
        return
    print_status(data)


def print_status(data: dict[str, Any]) -> None:
    """The terminal view of status_summary (shared by ``status`` and ``demo``)."""
    from automation.progress.summary import LEVEL_NAMES, fmt_time

    left = data["days_left"]
    left_text = (f"已逾期 {-left} 个工作日" if data["deadline_passed"] else "今天截止" if left == 0
                 else f"剩余 {left} 个工作日")
    c = data["counts"]
    console.print(f"批次：{data['batch']}　截止：{data['deadline']}（{left_text}）", markup=False)
    console.print(f"整体完成率：{data['completion']:.1%}（已完成 {c['done']} / 应完成 {c['assigned'] - c['not_applicable']}"
                  f"，未填报 {c['unreported']}；逾期任务 {data.get('overdue_tasks', 0)} 项）", markup=False)
    shown, periodic = data.get("round"), len(data.get("rounds") or ()) > 1
    if periodic and shown:
        console.print(f"定期报送：{shown['name']}（{shown['deadline']}截止{'，往期' if shown['past'] else ''}），"
                      f"共 {len(data['rounds'])} 期", markup=False)
    out = Table(title="各单位进度（差的在前；逾期按工作日计）", box=None, padding=(0, 1, 0, 0), pad_edge=False,
                title_justify="left")
    # Headers in full (「不适」 read as "unwell"); a unit name is never cut, it wraps; below 100 columns
    # the 最近报送 column gives way to the names.
    wide = console.width >= 100
    for col in ("预警", "单位", "完成率", "已完成", "推进中", "未启动", "不适用", "未填报", "最近报送", "催办", "逾期",
                "逾期任务", "本期"):
        if (col == "最近报送" and not wide) or (col == "本期" and not periodic):
            continue
        out.add_column(col, no_wrap=col != "单位", overflow="fold",
                       justify="left" if col in ("预警", "单位", "最近报送") else "right")
    for u in data["units"]:
        last = [fmt_time(u["last_submission"])[5:]] if wide else []        # MM-DD HH:MM
        out.add_row("未报" if u["reported"] == 0 else LEVEL_NAMES[u["level"]], u["unit"],
                    f"{u['completion']:.1%}", f"{u['done']}/{u['assigned']}",
                    *(str(u[k]) for k in ("in_progress", "not_started", "not_applicable", "unreported")),
                    *last, str(u["reminders"]), f"{u['overdue_workdays']}天" if u["overdue"] else "",
                    str(u.get("overdue_tasks", 0)), *([u["round_state"]] if periodic else []),
                    style=_LEVEL_STYLE[u["level"]])
    console.print(out)


# --------------------------------------------------------------------------- send / remind (issue 6)

_ACTION_NAMES = {"sent": "已发送", "resent": "已重发", "skipped": "已发过（未重发）", "held": "结果不确定（未重发）",
                 "failed": "发送失败", "no-address": "未登记邮箱", "dry-run": "将发送（演练）"}


def _finish_mail(app: App, results: list[Any], as_json: bool, title: str) -> None:
    """Print the results (JSON or a table); exit 1 when any message failed (sent again next run)."""
    if as_json:
        print_json([r.to_json() for r in results])
    else:
        _print_mail_results(app, results, title)
    if any(r.action == "failed" for r in results):
        raise click.exceptions.Exit(1)


def _print_mail_results(app: App, results: list[Any], title: str) -> None:
    out = Table(title=title)
    for col in ("单位", "结果", "收件人", "说明"):
        out.add_column(col, overflow="fold")
    for r in results:
        note = r.error or r.detail.get("kind_name", "") or (r.path or "")
        out.add_row(r.unit, _ACTION_NAMES.get(r.action, r.action), "、".join(r.to + r.cc), note)
    if results:
        console.print(out)
    counts: dict[str, int] = {}
    for r in results:
        counts[r.action] = counts.get(r.action, 0) + 1
    summary = "，".join(f"{_ACTION_NAMES.get(k, k)} {v} 封" for k, v in counts.items()) or "没有需要发送的邮件"
    console.print(summary + "。", markup=False)
    if app.config.mail.mode == "outbox" and any(r.action in ("sent", "resent") for r in results):
        console.print(f"（发件箱模式：邮件已写入 {app.workspace.outbox}，未真正发出；正式发送请在 config.toml [mail] "
                      "设置 mode = \"smtp\"。）", markup=False)
    if counts.get("held"):
        err_console.print("提示：有邮件上次发送中断、无法确定对方是否收到，为避免重复未再发送；确认未收到时加 "
                          "--resend-uncertain 重发。", markup=False)


@cli.command("send")
@click.option("--unit", "unit_names", multiple=True, help="只发给这些单位（可重复；可写单位分组名）")
@click.option("--json", "as_json", is_flag=True, help="以 JSON 输出每封邮件的结果")
@click.option("--resend-uncertain", is_flag=True, help="重发上次中断、无法确定是否发出的邮件（沿用原 Message-ID）")
@click.option("--receipts", "receipts", is_flag=True,
              help="不分发工作簿，只补发尚未发出的回执（含上次发送失败、被拒收的）")
@click.option("--preview", is_flag=True, help="只显示分发预览（收件人、附件、发件箱还是真实发送、各单位状态），不发送")
@pass_app
def send_cmd(app: App, unit_names: tuple[str, ...], as_json: bool, resend_uncertain: bool, receipts: bool,
             preview: bool) -> None:
    """把工作簿和说明邮件发给各单位（已发过的不会重发）；--receipts 补发回执。"""
    if preview:
        _print_preview(app, unit_names, as_json)
        return
    from automation.mail.distribution import distribute
    from automation.mail.receipts import send_owed_receipts
    from automation.mail.transports import transport_from_config

    if receipts and unit_names:
        raise click.UsageError("--receipts 补发全部欠发的回执，不能与 --unit 同时使用。")
    if receipts and not app.config.collect.receipts:
        raise AutomationError("config.toml 中 [collect] receipts = false（不发回执）；如需补发请先改为 true。")
    title = f"{app.config.batch.title}：{'补发回执' if receipts else '分发工作簿'}"
    results: list[Any] = []   # filled as each message is settled, so an abort still reports them
    try:
        with transport_from_config(app.config, app.workspace) as transport:
            if receipts:
                send_owed_receipts(app.config, app.ledger, app.now(), transport, retry_refused=True,
                                   resend_uncertain=resend_uncertain, results=results)
            else:
                distribute(app.config, app.ledger, app.now(), transport, unit_names or None,
                           resend_uncertain=resend_uncertain, results=results)
    except AutomationError:
        # The server went away or refused the login half-way: say what went out before it did.
        if as_json:
            print_json([r.to_json() for r in results])
        elif results:
            _print_mail_results(app, results, title)
        raise
    _finish_mail(app, results, as_json, title)


def _print_preview(app: App, unit_names: tuple[str, ...], as_json: bool) -> None:
    """``send --preview``: the console's 分发 preview (:func:`automation.mail.preview.distribution_preview`)."""
    from dataclasses import asdict

    from automation.mail.preview import distribution_preview

    p = distribution_preview(app.config, app.ledger, unit_names or None)
    if as_json:
        print_json({"mode": p.mode, "mode_text": p.mode_text, "sender": p.sender, "to_send": p.to_send,
                    "units": [{**asdict(line), "state_name": line.state_name} for line in p.lines]})
        return
    console.print(p.mode_text, markup=False)
    out = Table(title=f"{p.batch}：{len(p.lines)} 个单位，待发送 {p.to_send} 封")
    for col in ("单位", "收件人", "附件", "状态"):
        out.add_column(col, overflow="fold")
    for line in p.lines:
        out.add_row(line.unit, "、".join(line.to + line.cc), line.attachment, line.state_name)
    console.print(out)


@cli.command("remind")
@click.option("--now", "now_text", type=NOW, metavar="ISO-TIME", help="按此时间（北京时间）判断应发的提醒，例如 2026-10-09T09:30")
@click.option("--dry-run", is_flag=True, help="只显示将要发送的提醒，不发送、不记录")
@click.option("--json", "as_json", is_flag=True, help="以 JSON 输出每条提醒")
@pass_app
def remind_cmd(app: App, now_text: dt.datetime | None, dry_run: bool, as_json: bool) -> None:
    """按工作日节奏给有未完成任务的单位发催办提醒（每个单位每个时点最多一封）。"""
    from contextlib import nullcontext

    from automation.mail.transports import transport_from_config
    from automation.remind import send_reminders

    now = app.now(now_text)
    with nullcontext() if dry_run else transport_from_config(app.config, app.workspace) as transport:
        results = send_reminders(app.config, app.existing_ledger if dry_run else app.ledger, now, transport,
                                 dry_run=dry_run)
    _finish_mail(app, results, as_json, f"{app.config.batch.title}：催办提醒（{clock.iso(now)}）")

# --------------------------------------------------------------------------- run / imap (issue 7)


@cli.command("run")
@click.option("--once", is_flag=True, help="只运行一轮（收取邮件、回执、刷新汇总表、到期提醒）后退出，适合任务计划程序")
@pass_app
def run_cmd(app: App, once: bool) -> None:
    """长期运行：定时收取邮件、发回执、刷新汇总表，每天按时发催办提醒（Ctrl-C 停止）。"""
    from automation.service import Service

    service = Service(app.config, console=True)
    if once:
        if not service.run_once():
            raise click.exceptions.Exit(1)
        return
    service.run_forever()


# --------------------------------------------------------------------------- demo (issue 8)


@cli.command("demo")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), default=Path("duban-demo"),
              show_default=True, help="演示目录（新建；以前的演示目录会被清空重建，其他非空目录不会被动）")
def demo_cmd(workdir: Path) -> None:
    """在新目录中用自带示例跑通全流程：导入、生成、分发（发件箱）、模拟报回、回收、汇总、催办。"""
    from automation.demo import run_demo

    result = run_demo(workdir, say=lambda msg: console.print(msg, markup=False, soft_wrap=True))
    eml = sorted(result.outbox.glob("*.eml"))
    quarantined = sorted(p for p in result.quarantine.glob("*") if p.suffix != ".txt")
    console.print()
    out = Table(title="演示输出在哪里", show_header=True)
    out.add_column("内容")
    out.add_column("位置", overflow="fold")
    out.add_row("配置文件", str(result.config_path))
    out.add_row(f"填报工作簿（{len(result.workbooks)} 个）", str(result.ws.workbooks))
    out.add_row(f"发件箱邮件（{len(eml)} 封 .eml）", str(result.outbox))
    out.add_row("汇总表", str(result.report))
    out.add_row(f"隔离区（{len(quarantined)} 个文件，附原因）", str(result.quarantine))
    out.add_row("原件归档", str(result.ws.archive))
    out.add_row("台账", str(result.ws.ledger_path))
    console.print(out)
    print_status(result.status)
    console.print(f"继续体验（示例是 2021 年的批次，用 --now 指定模拟时间）：cd {result.workdir} && "
                  f"automation status --now {result.status.get('now', '')[:16]}", markup=False, soft_wrap=True)
    console.print(f"打开工作台：cd {result.workdir} && automation web --now {result.status.get('now', '')[:16]} --open",
                  markup=False, soft_wrap=True)



# --------------------------------------------------------------------------- web console (issue 17)


@cli.command("web")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="监听地址（默认只允许本机访问；其他地址须先用 --add-user 添加账号）")
@click.option("--port", default=8000, show_default=True, type=int, help="端口")
@click.option("--open", "open_browser", is_flag=True, help="启动后用浏览器打开工作台")
@click.option("--now", "now_text", type=NOW, metavar="ISO-TIME", help="按固定的时间显示和操作（用于演示或核对），例如 2021-12-14T09:00")
@click.option("--add-user", "add_user", metavar="NAME", help="添加账号（或为已有账号重设密码）后退出；会提示输入两次密码")
@click.option("--role", type=click.Choice(["admin", "viewer"]), default="admin", show_default=True,
              help="与 --add-user 同用：admin 管理员，viewer 只读（领导、督查室：只看不改）")
@pass_app
def web_cmd(app: App, host: str, port: int, open_browser: bool, now_text: dt.datetime | None, add_user: str | None,
            role: str) -> None:
    """督办工作台：在浏览器中查看进度、导入、分发、回收、催办、生成报表（Ctrl-C 停止）。"""
    if add_user:
        password = click.prompt("密码", hide_input=True, confirmation_prompt="再输入一次密码")
        account = app.ledger.save_account(add_user, role, password, app.now())
        console.print(f"账号“{account.name}”已保存（{'管理员' if account.role == 'admin' else '只读'}）。", markup=False)
        return
    from automation.web.server import serve

    fixed = app.now(now_text) if now_text else None
    serve(app.config, host, port, open_browser=open_browser, now=(lambda: fixed) if fixed else None,
          say=lambda msg: console.print(msg, markup=False))


# --------------------------------------------------------------------------- entry point


def main(argv: list[str] | None = None) -> int:
    """Console entry point: one-line errors, non-zero exit codes, tracebacks only with --debug."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    for stream in (sys.stdout, sys.stderr):
        # A GBK console cannot show every character a unit may type (✔, emoji): replace, don't crash.
        try:
            stream.reconfigure(errors="replace")  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            pass
    try:
        # Without standalone mode click *returns* the code of a `raise click.exceptions.Exit(n)`.
        code = cli.main(args=args, prog_name="automation", standalone_mode=False)
        if isinstance(code, int) and not isinstance(code, bool) and code:
            return code
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
