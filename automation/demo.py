"""``automation demo``: the whole loop on the bundled sample, in a fresh directory.

A newcomer runs one command and sees every stage work: init from the sample table, build the
workbooks, send them (outbox mode: .eml files, nothing leaves the machine), simulate the units'
returns — most complete, some partial, one re-sorted, one saved as .xls, one with problems, one
hostile file, a few silent — collect them (with receipts), write the report, and run the
reminders at a simulated date.  Time is simulated too (the sample is the 2021 list), so the
run is the same on every machine.

The unit simulation (:func:`fill_returned_workbook`) edits the issued workbook with openpyxl the
way a unit contact edits it in Excel or WPS; tests and benchmarks use it as well.
"""

from __future__ import annotations

import datetime as dt
import random
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from automation import clock
from automation.config import Config, load_config
from automation.errors import AutomationError
from automation.workspace import Workspace

__all__ = ["DemoResult", "run_demo", "fill_returned_workbook", "save_as_xls", "bundled_files", "DEMO_MARKER"]

DEMO_MARKER = ".duban-demo"
T_SEND = dt.datetime(2021, 11, 1, 9, 0, tzinfo=clock.TZ)
T_FIRST_RETURNS = dt.datetime(2021, 11, 15, 16, 30, tzinfo=clock.TZ)
T_RETURNS = dt.datetime(2021, 11, 26, 10, 0, tzinfo=clock.TZ)
T_REMIND = dt.datetime(2021, 12, 14, 9, 0, tzinfo=clock.TZ)


@dataclass
class DemoResult:
    """Where everything the demo wrote lives, and what happened at each stage."""

    workdir: Path
    config_path: Path
    workspace: Path
    workbooks: list[Path] = field(default_factory=list)
    sent: int = 0
    returns: list[tuple[str, str]] = field(default_factory=list)   # (file name, what the unit did)
    collected: list[Any] = field(default_factory=list)              # collect.FileResult
    receipts: int = 0
    report: Path | None = None
    reminders: list[Any] = field(default_factory=list)              # mail.SendResult
    status: dict[str, Any] = field(default_factory=dict)

    @property
    def ws(self) -> Workspace:
        return Workspace(self.workspace)

    @property
    def outbox(self) -> Path:
        return self.ws.outbox

    @property
    def quarantine(self) -> Path:
        return self.ws.quarantine


def bundled_files() -> dict[str, Path]:
    """The sample config, task table and template shipped with the package."""
    from automation.data import bundled_files as found

    files = found()
    missing = [rel for rel, path in files.items() if path is None]
    if missing:
        raise AutomationError(f"找不到示例文件 {missing[0]}：安装包不完整，请重新安装 duban-automation。")
    return {rel: path for rel, path in files.items() if path is not None}


def _fingerprint(workdir: Path) -> str:
    """What the demo left in its ledger; anything done there since changes it."""
    from automation.ledger import activity_fingerprint

    return activity_fingerprint(workdir / "var" / "ledger.sqlite3")


def _prepare(workdir: Path) -> None:
    """A fresh directory: created, or an untouched earlier demo emptied — never someone's work."""
    marker = workdir / DEMO_MARKER
    if workdir.exists():
        if not workdir.is_dir():
            raise AutomationError(f"{workdir}：已存在同名文件。请用 --workdir 指定一个新目录。")
        if any(workdir.iterdir()):
            if not marker.exists():
                raise AutomationError(
                    f"{workdir}：目录不是空的，也不是以前的演示目录。为避免覆盖文件，请用 --workdir 指定一个新目录。"
                )
            if marker.read_text(encoding="utf-8").strip() != _fingerprint(workdir):
                raise AutomationError(
                    f"{workdir}：演示之后在这个目录里又做过操作（台账有新内容）。为避免丢失，请用 --workdir 指定"
                    "一个新目录，或确认不再需要后手动删除该目录。"
                )
            shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    marker.write_text("running\n", encoding="utf-8")


# --------------------------------------------------------------------------- simulated units


def _find_header(ws: Any, labels: Mapping[str, str]) -> tuple[int, dict[str, int]]:
    """Row of the header and column of each layout key, found by the layout's labels."""
    for row in ws.iter_rows(min_row=1, max_row=min(ws.max_row, 30)):
        cols = {c.value: c.column for c in row if isinstance(c.value, str)}
        found = {key: cols[label] for key, label in labels.items() if label in cols}
        if "number" in found and len(found) >= 3:
            return row[0].row, found
    raise AutomationError(f"工作表 {ws.title} 中找不到表头。")


def fill_returned_workbook(
    src: Path,
    out: Path,
    answers: Mapping[int, Mapping[str, Any]],
    *,
    layout: Any = None,
    contact: str | None = None,
    phone: str | None = None,
    reverse_rows: bool = False,
    edits: Mapping[int, Mapping[str, Any]] | None = None,
) -> None:
    """Fill an issued workbook as a unit contact would, with openpyxl.

    ``answers`` maps task number → {layout key: value} for the fill-in columns (status,
    progress, completed_on, evidence, issues); strings stay text even when they start with
    ``=`` (a text typed into a cell).  ``reverse_rows`` re-sorts the task rows (descending by
    序号, as an autofilter sort would); ``edits`` overwrites locked columns (e.g. a title).
    """
    import openpyxl

    from automation.workbook.layout import CONTACT_LABEL, DEFAULT_LAYOUT, PHONE_LABEL, TASK_SHEET

    layout = layout or DEFAULT_LAYOUT
    labels = {c.key: c.header for c in layout.columns}
    wb = openpyxl.load_workbook(src)
    ws = wb[TASK_SHEET]
    header, cols = _find_header(ws, labels)
    rows = {}
    for r in range(header + 1, ws.max_row + 1):
        value = ws.cell(r, cols["number"]).value
        if isinstance(value, (int, float)) or (isinstance(value, str) and value.strip().isdigit()):
            rows[int(value)] = r
    for task, values in {**(edits or {}), **answers}.items():
        merged = {**(edits or {}).get(task, {}), **values}
        for key, value in merged.items():
            cell = ws.cell(rows[task], cols[key])
            cell.value = value
            if isinstance(value, str):
                cell.data_type = "s"
    if reverse_rows:
        ordered = sorted(rows.items())
        snapshot = [[ws.cell(r, c).value for c in range(1, ws.max_column + 1)] for _, r in ordered]
        for (_, r), values in zip(ordered, reversed(snapshot), strict=True):
            for c, value in enumerate(values, start=1):
                cell = ws.cell(r, c)
                if type(cell).__name__ == "MergedCell":
                    continue
                cell.value = value
                if isinstance(value, str):
                    cell.data_type = "s"
    for label, value in ((CONTACT_LABEL, contact), (PHONE_LABEL, phone)):
        if value is None:
            continue
        for row in ws.iter_rows(min_row=1, max_row=header - 1):
            hit = next((c for c in row if isinstance(c.value, str) and c.value.startswith(label)), None)
            if hit is not None:
                target = next(x for x in row if x.column > hit.column and type(x).__name__ == "Cell")
                target.value = value
                break
    wb.save(out)


def save_as_xls(src: Path, out: Path) -> None:
    """Re-save a workbook as .xls (BIFF8) the way an old WPS/Excel would: values only, every sheet
    kept (hidden sheets stay hidden), formatting dropped."""
    import openpyxl
    import xlwt

    wb = openpyxl.load_workbook(src)
    book = xlwt.Workbook(encoding="utf-8")
    date_style = xlwt.easyxf(num_format_str="yyyy-mm-dd")
    for ws in wb.worksheets:
        sheet = book.add_sheet(ws.title[:31], cell_overwrite_ok=True)
        if ws.sheet_state != "visible":
            sheet.visibility = 2 if ws.sheet_state == "veryHidden" else 1
        for row in ws.iter_rows():
            for c in row:
                if c.value is None or type(c).__name__ == "MergedCell":
                    continue
                value = c.value
                if isinstance(value, dt.datetime | dt.date):
                    sheet.write(c.row - 1, c.column - 1, value, date_style)
                else:
                    sheet.write(c.row - 1, c.column - 1, value)
    book.save(str(out))


_PROGRESS = (
    "已在政府门户网站开设专题专栏，集中发布相关信息{n}条，按期完成。",
    "已制定工作方案，明确责任科室和时间节点，相关信息已全部公开。",
    "通过门户网站、政务新媒体同步发布，累计发布{n}条，群众反映良好。",
    "已完成专项梳理并在政府信息公开专栏集中展示，建立动态更新机制。",
)
_EVIDENCE = ("门户网站专栏截图", "工作方案及发布清单", "http://www.np.example.com/zwgk/{n}", "信息发布台账")


def _answers(tasks: list[int], rng: random.Random, *, done_ratio: float, year: int) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    for t in tasks:
        if rng.random() < done_ratio:
            out[t] = {
                "status": "已完成",
                "progress": rng.choice(_PROGRESS).format(n=rng.randint(3, 60)),
                "completed_on": dt.datetime(year, rng.randint(6, 10), rng.randint(1, 28)),
                "evidence": rng.choice(_EVIDENCE).format(n=t),
            }
        elif rng.random() < 0.6:
            out[t] = {
                "status": "推进中",
                "progress": "已启动，正在按计划推进，预计年底前完成。",
                "issues": "部分基层单位进度较慢，下一步加强督促指导。",
            }
    return out


# --------------------------------------------------------------------------- the loop


def run_demo(workdir: Path, *, say: Callable[[str], None] | None = None) -> DemoResult:
    """Run the whole loop on the bundled sample in ``workdir`` (created; a previous demo there is replaced)."""
    from automation.collect.pipeline import collect_paths
    from automation.ledger import open_workspace
    from automation.mail.distribution import distribute
    from automation.mail.receipts import send_receipts
    from automation.mail.transports import transport_from_config
    from automation.progress.report import build_report
    from automation.progress.status import status_summary
    from automation.remind import send_reminders
    from automation.tasks.importing import init_batch
    from automation.workbook.build import build_workbooks
    from automation.workspace import Workspace

    say = say or (lambda _msg: None)
    workdir = Path(workdir).resolve()
    _prepare(workdir)
    for rel, src in bundled_files().items():
        (workdir / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, workdir / rel)
    config: Config = load_config(workdir / "config.toml")
    if config.mail.mode != "outbox":  # never send real mail from a demo
        from dataclasses import replace

        config = replace(config, mail=replace(config.mail, mode="outbox"))
    ws = Workspace(config.workspace)
    _ws, ledger = open_workspace(config)
    result = DemoResult(workdir, config.path, config.workspace)
    with ledger, transport_from_config(config, ws) as transport:
        imported, _table = init_batch(config, ledger, T_SEND)
        say(f"① 导入任务表：{imported.message}")

        built = build_workbooks(config, ledger, T_SEND)
        result.workbooks = [b.path for b in built]
        say(f"② 生成工作簿：{len(built)} 个单位，保存在 {ws.workbooks}")

        sent = distribute(config, ledger, T_SEND, transport)
        result.sent = sum(1 for s in sent if s.action in ("sent", "resent"))
        say(f"③ 分发（发件箱模式，不真正发信）：{result.sent} 封邮件写入 {ws.outbox}")

        result.returns = _simulate_returns(config, ledger, built, ws.inbox)
        say(f"④ 模拟单位报回：{len(result.returns)} 个文件放入 {ws.inbox}")

        first = collect_paths(config, ledger, [ws.inbox / "first"], T_FIRST_RETURNS)
        later = collect_paths(config, ledger, None, T_RETURNS)
        result.collected = first + later
        receipts = send_receipts(config, ledger, result.collected, T_RETURNS, transport)
        result.receipts = sum(1 for s in receipts if s.action in ("sent", "resent"))
        accepted = sum(1 for r in result.collected if r.outcome == "accepted")
        quarantined = sum(1 for r in result.collected if r.outcome == "quarantined")
        say(f"⑤ 回收：接收 {accepted} 个、隔离 {quarantined} 个，回执 {result.receipts} 封")

        result.report = build_report(config, ledger, T_RETURNS)
        say(f"⑥ 汇总表：{result.report}")

        result.reminders = send_reminders(config, ledger, T_REMIND, transport)
        reminded = sum(1 for s in result.reminders if s.action in ("sent", "resent"))
        say(f"⑦ 催办（模拟时间 {T_REMIND:%Y-%m-%d %H:%M}，截止前 1 个工作日）：{reminded} 个单位收到提醒")
        result.status = status_summary(config, ledger, T_REMIND)
    (workdir / DEMO_MARKER).write_text(_fingerprint(workdir) + "\n", encoding="utf-8")
    return result


def _simulate_returns(config: Config, ledger: Any, built: list[Any], inbox: Path) -> list[tuple[str, str]]:
    """Write what the units send back into the inbox (``inbox/first`` holds the earlier wave)."""
    from automation.workbook.layout import META_SHEET
    from automation.workbook.template import layout_for

    rng = random.Random(2021)
    layout = layout_for(config)
    year = config.batch.year
    by_unit = {b.unit: b for b in built}
    (inbox / "first").mkdir(parents=True, exist_ok=True)
    returns: list[tuple[str, str]] = []
    units = [b.unit for b in built]
    silent = {"市城管局", "市统计局", "松溪县政府"}                      # never answer: reminders
    partial = {"市工信局", "市国资委", "市文旅局", "政和县政府", "光泽县政府"}
    special = {"市财政局": "resorted", "浦城县政府": "xls", "市商务局": "problems", "建瓯市政府": "early"}
    for unit in units:
        if unit in silent:
            continue
        b = by_unit[unit]
        contact = next((u.contact for u in config.units if u.name == unit), "")
        phone = next((u.phone for u in config.units if u.name == unit), "")
        kind = special.get(unit, "partial" if unit in partial else "complete")
        answers = _answers(b.tasks, rng, done_ratio=0.45 if kind == "partial" else 1.0, year=year)
        name = b.path.name
        if kind == "resorted":
            fill_returned_workbook(b.path, inbox / f"{unit}（已排序）.xlsx", answers, layout=layout,
                                   contact=contact, phone=phone, reverse_rows=True)
            returns.append((f"{unit}（已排序）.xlsx", "按序号倒序重新排序后报回"))
        elif kind == "xls":
            tmp = inbox / f".{unit}.xlsx"
            fill_returned_workbook(b.path, tmp, answers, layout=layout, contact=contact, phone=phone)
            save_as_xls(tmp, inbox / f"{unit}报送.xls")
            tmp.unlink()
            returns.append((f"{unit}报送.xls", "另存为 .xls（WPS 旧格式）并改了文件名"))
        elif kind == "problems":
            t = b.tasks
            answers[t[0]] = {"status": "差不多了", "progress": "正在收尾"}
            answers[t[1]] = {"status": "已完成"}                                   # no 工作进展及成效
            answers[t[2]] = {"status": "完成", "progress": "已办结。", "completed_on": "2099年6月30日"}
            answers[t[3]] = {"status": "已完成", "progress": "已在专栏公开。", "evidence": "=1+1",
                             "completed_on": "2021.9.30"}
            fill_returned_workbook(b.path, inbox / name, answers, layout=layout, contact=contact, phone=phone,
                                   edits={t[4]: {"title": "（单位改动了任务名称）"}})
            returns.append((name, "有问题：落实情况写成“差不多了”、已完成但未写进展、完成时间在未来、改动了锁定的任务名称"))
        elif kind == "early":
            early = {t: {"status": "推进中", "progress": "已部署，正在推进。"} for t in b.tasks}
            fill_returned_workbook(b.path, inbox / "first" / name, early, layout=layout, contact=contact, phone=phone)
            fill_returned_workbook(b.path, inbox / f"{unit}（更新）.xlsx", answers, layout=layout, contact=contact,
                                   phone=phone)
            returns.append((name, "11 月 15 日先报“推进中”"))
            returns.append((f"{unit}（更新）.xlsx", "11 月 26 日更新为“已完成”（历史保留）"))
        else:
            fill_returned_workbook(b.path, inbox / name, answers, layout=layout, contact=contact, phone=phone)
            returns.append((name, "部分完成" if kind == "partial" else "全部完成"))
    # A hostile file: unit 邵武市政府's workbook with its metadata edited to claim another unit.
    import openpyxl

    victim = by_unit["邵武市政府"].path
    wb = openpyxl.load_workbook(victim)
    meta = wb[META_SHEET]
    for row in meta.iter_rows():
        if row[0].value == "unit_name":
            row[1].value = "建阳区政府"
    wb.save(inbox / "建阳区政府_伪造.xlsx")
    returns.append(("建阳区政府_伪造.xlsx", "伪造：改动了隐藏的签名页（应被隔离）"))
    return returns
