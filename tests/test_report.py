"""The consolidated report and ``automation status``: every derived value against a hand-computed ledger.

The ledger (5 units, a 3-unit group, 5 tasks in 2 sections) is built with ``record_submission``
the way ``collect`` fills it: several files over time (so history has old → new changes), a
blank status, problems, quarantined files (one of another batch), reminders sent and failed.
Every expected value below was worked out by hand from those answers.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import openpyxl
import pytest

from automation import clock
from automation.cli import main
from automation.config import load_config
from automation.ledger import open_workspace
from automation.ledger.records import CurrentAnswer, Response
from automation.model import Problem
from automation.progress.report import SHEETS, build_report, default_report_path
from automation.progress.status import ASSIGNMENT_KEYS, status_summary
from automation.progress.summary import (
    Counts,
    count_statuses,
    deadline_info,
    iter_history,
    task_summary,
    unit_list_text,
)
from automation.tasks.importing import init_batch
from automation.workbook.textsize import wrapped_lines as text_lines
from automation.workdays import WorkCalendar

NOW = dt.datetime(2021, 11, 1, 9, 30, tzinfo=clock.TZ)
LATE = dt.datetime(2021, 12, 20, 10, 0, tzinfo=clock.TZ)       # Monday after the 12-15 (Wednesday) deadline

TASKS_CSV = """工作任务,工作要求,牵头单位,责任单位,落实情况
一、第一部分,,,,
（一）小项甲,,,,
1.任务一,要求一,甲局,各区政府,
2.任务二,要求二,乙局,甲局、各区政府,
（二）小项乙,,,,
3.任务三,要求三,甲局,乙局（负责规章）,
二、第二部分,,,,
4.任务四,要求四,,各区政府,
5.任务五,要求五,乙局,各区政府,
"""

CONFIG = """workspace = "var"
[office]
name = "测试办公室"
[batch]
title = "测试批次"
year = 2021
deadline = 2021-12-15
tasks = "tasks.csv"
[groups]
"各区政府" = ["东区政府", "西区政府", "南区政府"]
[[units]]
name = "甲局"
kind = "市直部门"
[[units]]
name = "乙局"
kind = "市直部门"
[[units]]
name = "东区政府"
kind = "区政府"
[[units]]
name = "西区政府"
kind = "区政府"
[[units]]
name = "南区政府"
kind = "区政府"
"""

HYPERLINK = '=HYPERLINK("http://x","y")'
EVIL_FILE = '=HYPERLINK("http://evil","点我").xlsx'


def at(month: int, day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2021, month, day, hour, minute, tzinfo=clock.TZ)


def answer(task: int, status: str, progress: str = "", completed_on: str | None = None, evidence: str = "",
           issues: str = "") -> Response:
    return Response(task, status, progress, completed_on, evidence, issues)


@pytest.fixture
def small(tmp_path: Path):
    (tmp_path / "config.toml").write_text(CONFIG, encoding="utf-8")
    (tmp_path / "tasks.csv").write_text(TASKS_CSV, encoding="utf-8")
    config = load_config(tmp_path / "config.toml")
    _ws, led = open_workspace(config)
    init_batch(config, led, at(10, 1, 9))
    batch = led.require_batch("测试批次")
    ids = led.unit_ids()

    def submit(sha: str, unit: str | None, when: dt.datetime, name: str, rows=(), problems=(),
               outcome: str = "accepted", reason: str | None = None, batch_id: int | None = batch.id) -> None:
        led.record_submission(sha256=sha, file_name=name, archive_path=f"archive/{sha}", received_at=when,
                              now=when, outcome=outcome, reason=reason, batch_id=batch_id,
                              unit_id=ids[unit] if unit else None, responses=rows, problems=problems)

    submit("s1", "甲局", at(10, 10, 10), "甲局_第一次.xlsx",
           [answer(1, "推进中", "=1+1"), answer(2, "推进中", "二的进展"), answer(3, "未启动")])
    submit("s2", "东区政府", at(10, 12, 9), "东区.xlsx",
           [answer(1, "已完成", "东区完成一", "2021-10-11", "东区佐证.pdf"), answer(2, "已完成", "东区完成二"),
            answer(4, "推进中", "东区四", issues="缺少经费")],
           [Problem("文件没有签名页，已按文件名识别为东区政府", "warning")])
    submit("s3", "乙局", at(10, 15, 14, 30), "乙局.xlsx",
           [answer(2, "推进中", "乙局牵头推进"), answer(3, "不适用", issues="本单位不涉及")])
    submit("s4", "甲局", at(10, 20, 15), "甲局_第二次.xlsx",
           [answer(1, "已完成", HYPERLINK, "2021-10-18", "http://example.com/a.pdf"),
            answer(2, "已完成", "甲局完成二"), answer(3, "已完成", "甲局完成三")])
    submit("s5", "西区政府", at(10, 25, 11), "西区.xlsx",
           [answer(1, "未启动", "=1+1"), answer(2, "未填报"), answer(4, "不适用", issues="西区无此项")],
           [Problem("落实情况“完成了吗”无法识别，请从下拉列表选择", sheet="任务清单", cell="G6", task_number=2,
                    field="status")])
    submit("q1", "南区政府", at(10, 26, 8), "南区.xlsx", outcome="quarantined",
           reason="文件已加密（有打开密码），无法读取。请取消密码后重新发送。")
    submit("q2", None, at(10, 27, 8), EVIL_FILE, outcome="quarantined", reason="不是本批次的工作簿", batch_id=None)
    other = led.ensure_batch("其他批次", 2021, dt.date(2021, 12, 31), at(10, 1, 9))
    submit("q3", "甲局", at(10, 28, 8), "其他.xlsx", outcome="quarantined", reason="其他批次的问题", batch_id=other.id)
    for i, (unit, purpose, state) in enumerate([("南区政府", "remind", "sent"), ("南区政府", "remind", "sent"),
                                                ("南区政府", "remind", "failed"), ("西区政府", "remind", "sent"),
                                                ("甲局", "distribute", "sent")]):
        led.execute("INSERT INTO messages(idem_key, purpose, batch_id, unit_id, message_id, subject, state, "
                    "created_at) VALUES (?, ?, ?, ?, ?, '提醒', ?, ?)",
                    (f"k{i}", purpose, batch.id, ids[unit], f"<{i}@test>", state, clock.iso(at(10, 28, 9))))
    yield config, led
    led.close()


# --------------------------------------------------------------------------- expected values (by hand)

TITLES = {1: "任务一", 2: "任务二", 3: "任务三", 4: "任务四", 5: "任务五"}
UNITS = ["甲局", "乙局", "东区政府", "西区政府", "南区政府"]

SUMMARY = {
    1: "推进中（已完成 2/4，未报 1）",
    2: "推进中（已完成 2/5，未报 2）",
    3: "已完成",
    4: "推进中（已完成 0/2，未报 1）",
    5: "未填报（已完成 0/4，未报 4）",
}
TEXT = {
    1: f"甲局（牵头）：已完成。{HYPERLINK}\n" + SUMMARY[1],
    2: "乙局（牵头）：推进中。乙局牵头推进\n" + SUMMARY[2],
    3: "甲局（牵头）：已完成。甲局完成三\n已完成",
    4: SUMMARY[4],
    5: SUMMARY[5],
}
UNFINISHED = {
    1: "未启动：西区政府\n未填报：南区政府",
    2: "推进中：乙局\n未填报：西区政府、南区政府",
    3: "",
    4: "推进中：东区政府\n未填报：南区政府",
    5: "未填报：乙局、各区政府（3个）",
}
SUMMARY_TABLE = [
    ["工作任务", "工作要求", "牵头单位", "责任单位", "落实情况", "未完成单位"],
    ["一、第一部分", "", "", "", "", ""],
    ["（一）小项甲", "", "", "", "", ""],
    ["1.任务一", "要求一", "甲局", "各区政府", TEXT[1], UNFINISHED[1]],
    ["2.任务二", "要求二", "乙局", "甲局、各区政府", TEXT[2], UNFINISHED[2]],
    ["（二）小项乙", "", "", "", "", ""],
    ["3.任务三", "要求三", "甲局", "乙局（负责规章）", TEXT[3], UNFINISHED[3]],
    ["二、第二部分", "", "", "", "", ""],
    ["4.任务四", "要求四", "", "各区政府", TEXT[4], UNFINISHED[4]],
    ["5.任务五", "要求五", "乙局", "各区政府", TEXT[5], UNFINISHED[5]],
]
# status, 单位分工（条）, 占比, 任务（项）
STATUS_TABLE = [
    ["已完成", 5, 5 / 18, 1], ["推进中", 2, 2 / 18, 3], ["未启动", 1, 1 / 18, 0], ["不适用", 2, 2 / 18, 0],
    ["未填报", 8, 8 / 18, 1], ["合计", 18, 1, 5],
]
# 序号 单位 类别 承担 已报送 已完成 推进中 未启动 不适用 未填报 完成率 最近报送 催办次数 逾期工作日 预警
UNIT_ROWS = [
    [1, "南区政府", "区政府", 4, 0, 0, 0, 0, 0, 4, 0.0, "", 2, "", "红"],
    [2, "西区政府", "区政府", 4, 2, 0, 0, 1, 1, 2, 0.0, "2021-10-25 11:00", 1, "", "黄"],
    [3, "乙局", "市直部门", 3, 2, 0, 1, 0, 1, 1, 0.0, "2021-10-15 14:30", 0, "", "黄"],
    [4, "东区政府", "区政府", 4, 3, 2, 1, 0, 0, 1, 0.5, "2021-10-12 09:00", 0, "", "黄"],
    [5, "甲局", "市直部门", 3, 3, 3, 0, 0, 0, 0, 1.0, "2021-10-20 15:00", 0, "", "绿"],
]
MATRIX = {
    1: ["已完成", "", "已完成", "未启动", "未填报"],
    2: ["已完成", "推进中", "已完成", "未填报", "未填报"],
    3: ["已完成", "不适用", "", "", ""],
    4: ["", "", "推进中", "不适用", "未填报"],
    5: ["", "未填报", "未填报", "未填报", "未填报"],
}
# 序号 工作任务 单位 角色 落实情况 工作进展及成效 完成时间 佐证材料 存在问题 来源文件 接收时间
DETAIL = [
    [1, "任务一", "甲局", "牵头", "已完成", HYPERLINK, "2021-10-18", "http://example.com/a.pdf", "",
     "甲局_第二次.xlsx", "2021-10-20 15:00"],
    [1, "任务一", "东区政府", "责任", "已完成", "东区完成一", "2021-10-11", "东区佐证.pdf", "", "东区.xlsx",
     "2021-10-12 09:00"],
    [1, "任务一", "西区政府", "责任", "未启动", "=1+1", "", "", "", "西区.xlsx", "2021-10-25 11:00"],
    [1, "任务一", "南区政府", "责任", "未填报", "", "", "", "", "", ""],
    [2, "任务二", "乙局", "牵头", "推进中", "乙局牵头推进", "", "", "", "乙局.xlsx", "2021-10-15 14:30"],
    [2, "任务二", "甲局", "责任", "已完成", "甲局完成二", "", "", "", "甲局_第二次.xlsx", "2021-10-20 15:00"],
    [2, "任务二", "东区政府", "责任", "已完成", "东区完成二", "", "", "", "东区.xlsx", "2021-10-12 09:00"],
    [2, "任务二", "西区政府", "责任", "未填报", "", "", "", "", "西区.xlsx", "2021-10-25 11:00"],
    [2, "任务二", "南区政府", "责任", "未填报", "", "", "", "", "", ""],
    [3, "任务三", "甲局", "牵头", "已完成", "甲局完成三", "", "", "", "甲局_第二次.xlsx", "2021-10-20 15:00"],
    [3, "任务三", "乙局", "责任（负责规章）", "不适用", "", "", "", "本单位不涉及", "乙局.xlsx", "2021-10-15 14:30"],
    [4, "任务四", "东区政府", "责任", "推进中", "东区四", "", "", "缺少经费", "东区.xlsx", "2021-10-12 09:00"],
    [4, "任务四", "西区政府", "责任", "不适用", "", "", "", "西区无此项", "西区.xlsx", "2021-10-25 11:00"],
    [4, "任务四", "南区政府", "责任", "未填报", "", "", "", "", "", ""],
    [5, "任务五", "乙局", "牵头", "未填报", "", "", "", "", "", ""],
    [5, "任务五", "东区政府", "责任", "未填报", "", "", "", "", "", ""],
    [5, "任务五", "西区政府", "责任", "未填报", "", "", "", "", "", ""],
    [5, "任务五", "南区政府", "责任", "未填报", "", "", "", "", "", ""],
]
# 接收时间 单位 文件 工作表 单元格 序号 字段 级别 问题说明
PROBLEMS = [
    ["2021-10-12 09:00", "东区政府", "东区.xlsx", "", "", "", "", "警告", "文件没有签名页，已按文件名识别为东区政府"],
    ["2021-10-25 11:00", "西区政府", "西区.xlsx", "任务清单", "G6", 2, "落实情况", "错误",
     "落实情况“完成了吗”无法识别，请从下拉列表选择"],
    ["2021-10-26 08:00", "南区政府", "南区.xlsx", "", "", "", "", "已隔离",
     "文件已加密（有打开密码），无法读取。请取消密码后重新发送。"],
    ["2021-10-27 08:00", "（未识别）", EVIL_FILE, "", "", "", "", "已隔离", "不是本批次的工作簿"],
]
# 接收时间 单位 序号 工作任务 原状态 新状态 来源文件
HISTORY = [
    ["2021-10-10 10:00", "甲局", 1, "任务一", "未填报", "推进中", "甲局_第一次.xlsx"],
    ["2021-10-10 10:00", "甲局", 2, "任务二", "未填报", "推进中", "甲局_第一次.xlsx"],
    ["2021-10-10 10:00", "甲局", 3, "任务三", "未填报", "未启动", "甲局_第一次.xlsx"],
    ["2021-10-12 09:00", "东区政府", 1, "任务一", "未填报", "已完成", "东区.xlsx"],
    ["2021-10-12 09:00", "东区政府", 2, "任务二", "未填报", "已完成", "东区.xlsx"],
    ["2021-10-12 09:00", "东区政府", 4, "任务四", "未填报", "推进中", "东区.xlsx"],
    ["2021-10-15 14:30", "乙局", 2, "任务二", "未填报", "推进中", "乙局.xlsx"],
    ["2021-10-15 14:30", "乙局", 3, "任务三", "未填报", "不适用", "乙局.xlsx"],
    ["2021-10-20 15:00", "甲局", 1, "任务一", "推进中", "已完成", "甲局_第二次.xlsx"],
    ["2021-10-20 15:00", "甲局", 2, "任务二", "推进中", "已完成", "甲局_第二次.xlsx"],
    ["2021-10-20 15:00", "甲局", 3, "任务三", "未启动", "已完成", "甲局_第二次.xlsx"],
    ["2021-10-25 11:00", "西区政府", 1, "任务一", "未填报", "未启动", "西区.xlsx"],
    ["2021-10-25 11:00", "西区政府", 2, "任务二", "未填报", "未填报", "西区.xlsx"],
    ["2021-10-25 11:00", "西区政府", 4, "任务四", "未填报", "不适用", "西区.xlsx"],
]


def values(ws, min_row: int, max_col: int, max_row: int | None = None) -> list[list]:
    """Cell values with empty cells as ""."""
    return [["" if v is None else v for v in row]
            for row in ws.iter_rows(min_row=min_row, max_row=max_row or ws.max_row, max_col=max_col,
                                    values_only=True)]


def fill(cell) -> str:
    return (cell.fill.fgColor.rgb or "")[-6:].upper()


@pytest.fixture
def report(small, tmp_path: Path):
    config, led = small
    (tmp_path / "out").mkdir()
    path = build_report(config, led, NOW, tmp_path / "out" / "汇总表.xlsx")
    return path, openpyxl.load_workbook(path)


# --------------------------------------------------------------------------- pure functions


def test_task_summary_rules():
    def counts(**n):
        names = {"done": "已完成", "ip": "推进中", "ns": "未启动", "na": "不适用", "un": "未填报"}
        return count_statuses([names[k] for k, v in n.items() for _ in range(v)])

    assert task_summary(counts(done=21)) == "已完成"
    assert task_summary(counts(done=3, na=2)) == "已完成"
    assert task_summary(counts(na=2)) == "不适用"
    assert task_summary(counts(done=14, ip=4, un=3)) == "推进中（已完成 14/21，未报 3）"
    assert task_summary(counts(done=14, ip=4, na=2)) == "推进中（已完成 14/18）"
    assert task_summary(counts(ns=2, na=1, un=1)) == "未启动（已完成 0/3，未报 1）"
    assert task_summary(counts(un=4)) == "未填报（已完成 0/4，未报 4）"
    assert task_summary(Counts()) == "无责任单位"
    assert counts(na=3).completion == 1.0 and counts(done=1, un=3).completion == 0.25


def test_unit_list_collapses_whole_groups_only():
    groups = {"各区政府": ("东区", "西区", "南区"), "单": ("甲",)}
    assert unit_list_text(["乙", "东区", "西区", "南区"], groups) == "乙、各区政府（3个）"
    assert unit_list_text(["东区", "西区"], groups) == "东区、西区"
    assert unit_list_text(["甲"], groups) == "甲"


def test_days_left_and_overdue_in_working_days():
    cal = WorkCalendar()
    deadline = dt.date(2021, 12, 15)
    assert deadline_info(deadline, NOW, cal).days_left == 32           # 21 in November + 11 in December
    assert deadline_info(deadline, at(12, 15, 17), cal).text() == "今天截止"
    assert deadline_info(deadline, at(12, 14, 9), cal).days_left == 1
    late = deadline_info(deadline, LATE, cal)
    assert (late.passed, late.days_left, late.overdue_workdays) == (True, -3, 3)   # 16, 17, 20 December
    # 2021-10-01..07 is the National Day holiday, 09-30 a working day: 09-29 → 10-08 is 2 working days.
    assert WorkCalendar().workdays_between(dt.date(2021, 9, 29), dt.date(2021, 10, 8)) == 2


def test_text_lines_counts_cjk_double():
    assert text_lines("一" * 21, 44) == 1 and text_lines("一" * 22, 44) == 2
    assert text_lines("a" * 42, 44) == 1 and text_lines("ab\ncd", 44) == 2


def test_streamed_queries_match_the_ledger(small):
    _config, led = small
    batch = led.require_batch("测试批次")
    assert [CurrentAnswer(*r) for r in led.iter_current_answers(batch.id)] == led.current_answers(batch.id)
    names = {u.id: u.name for u in led.units(active_only=False)}
    files = {s.id: s.file_name for s in led.submissions(batch.id)}
    mine = [(at_, names[uid], task, status, files[sid], old) for at_, uid, task, status, sid, old
            in iter_history(led, batch.id)]
    theirs = [(h.received_at, h.unit, h.task, h.status, h.source_file, h.old_status) for h in led.history(batch.id)]
    assert mine == theirs


# --------------------------------------------------------------------------- the workbook, sheet by sheet


def test_sheets_in_order(report):
    _path, wb = report
    assert wb.sheetnames == list(SHEETS)


def test_summary_sheet(report):
    _path, wb = report
    ws = wb["落实情况汇总"]
    assert ws["A1"].value == "测试批次落实情况汇总表"
    meta = ws["A2"].value
    assert "统计时间：2021-11-01 09:30" in meta and "报送截止：2021-12-15（剩余 32 个工作日）" in meta
    assert "整体完成率：31.2%（已完成 5 条 / 应完成 16 条，共 5 项任务、5 个单位、18 条分工）" in meta
    assert values(ws, 3, 4, 9) == [["落实情况", "单位分工（条）", "占比", "任务（项）"], *STATUS_TABLE]
    header = next(r for r in range(1, ws.max_row + 1) if ws.cell(r, 1).value == "工作任务")
    assert values(ws, header, 6) == SUMMARY_TABLE
    # Heading rows span the table; 落实情况 is coloured by the task's headline.
    merged = {str(m) for m in ws.merged_cells.ranges}
    assert f"A{header + 1}:F{header + 1}" in merged and f"A{header + 2}:F{header + 2}" in merged
    colours = {r[0]: fill(ws.cell(header + i, 5)) for i, r in enumerate(SUMMARY_TABLE) if r[0][0].isdigit()}
    assert colours == {"1.任务一": "FFEB9C", "2.任务二": "FFEB9C", "3.任务三": "C6EFCE", "4.任务四": "FFEB9C",
                       "5.任务五": "FFC7CE"}
    # Rows are tall enough for their wrapped text (nothing cut off on paper).
    assert ws.row_dimensions[header + 3].height >= 2 * 15
    assert ws.print_title_rows == f"${header}:${header}"


def test_units_sheet(report):
    _path, wb = report
    ws = wb["单位进度"]
    assert values(ws, 3, 15, 3) == [["序号", "单位", "类别", "承担任务", "已报送", "已完成", "推进中", "未启动",
                                     "不适用", "未填报", "完成率", "最近报送", "催办次数", "逾期工作日", "预警"]]
    assert values(ws, 4, 15) == UNIT_ROWS
    assert [fill(ws.cell(r, 2)) for r in range(4, 9)] == ["FFC7CE", "FFEB9C", "FFEB9C", "FFEB9C", "C6EFCE"]
    assert ws.cell(4, 11).number_format == "0.0%"
    assert ws.freeze_panes == "C4" and ws.auto_filter.ref == "A3:T8"
    # Overdue tasks, the explainable score and rank within the unit kind, and whom to call.
    assert values(ws, 3, 20, 3)[0][15:] == ["逾期任务", "综合得分", "类内排名", "联系人", "联系电话"]
    extra = values(ws, 4, 20)
    assert all(isinstance(r[16], (int, float)) and 0 <= r[16] <= 100 and r[17] >= 1 for r in extra)


def test_units_sheet_after_the_deadline(small, tmp_path):
    config, led = small
    wb = openpyxl.load_workbook(build_report(config, led, LATE, tmp_path / "late.xlsx"))
    ws = wb["单位进度"]
    got = values(ws, 4, 15)
    assert [r[1] for r in got] == ["南区政府", "西区政府", "乙局", "东区政府", "甲局"]
    assert [r[13] for r in got] == [3, 3, 3, 3, ""]
    assert [r[14] for r in got] == ["红", "红", "红", "红", "绿"]
    assert "已逾期 3 个工作日" in wb["落实情况汇总"]["A2"].value


def test_matrix_sheet(report):
    _path, wb = report
    ws = wb["任务×单位"]
    assert values(ws, 1, 8, 1) == [["序号", "工作任务", "落实情况", *UNITS]]
    assert values(ws, 2, 8) == [[n, TITLES[n], SUMMARY[n], *MATRIX[n]] for n in range(1, 6)]
    assert ws.freeze_panes == "D2"
    rules = {(str(cf.sqref), r.formula[0]) for cf in ws.conditional_formatting for r in cf.rules}
    assert rules == {("D2:H6", f'"{s}"') for s in ("已完成", "推进中", "未启动", "不适用", "未填报")}
    assert ws.cell(1, 4).alignment.textRotation == 255          # unit names stacked vertically


def test_detail_sheet(report):
    _path, wb = report
    ws = wb["进展明细"]
    assert values(ws, 1, 11, 1) == [["序号", "工作任务", "单位", "角色", "落实情况", "工作进展及成效", "完成时间",
                                     "佐证材料", "存在问题及下步打算", "来源文件", "接收时间"]]
    assert values(ws, 2, 11) == DETAIL
    assert ws.freeze_panes == "D2" and ws.auto_filter.ref == "A1:K19"
    assert {str(cf.sqref) for cf in ws.conditional_formatting} == {"E2:E19"}
    # Cells take their column's style: wrapped, bordered text.
    assert ws["F2"].alignment.wrap_text and ws["F2"].border.left.style == "thin"


def test_problems_sheet(report):
    _path, wb = report
    ws = wb["问题清单"]
    assert values(ws, 2, 9) == PROBLEMS          # not the other batch's quarantined file


def test_history_sheet(report):
    _path, wb = report
    ws = wb["提交记录"]
    assert values(ws, 1, 7, 1) == [["接收时间", "单位", "序号", "工作任务", "原状态", "新状态", "来源文件"]]
    assert values(ws, 2, 7) == HISTORY


def test_unit_text_is_never_a_formula_or_link(report):
    path, wb = report
    cells = [c for ws in wb for row in ws.iter_rows() for c in row if isinstance(c.value, str)
             and c.value.startswith("=")]
    where = {(c.parent.title, c.value) for c in cells}
    assert ("进展明细", HYPERLINK) in where and ("进展明细", "=1+1") in where and ("问题清单", EVIL_FILE) in where
    assert all(c.data_type == "s" for c in cells)
    with zipfile.ZipFile(path) as z:
        sheets = [z.read(n).decode() for n in z.namelist() if n.startswith("xl/worksheets/sheet")]
        assert not [n for n in z.namelist() if "externalLink" in n]
    assert not any("<f>" in x or "<hyperlink" in x for x in sheets)


def test_charts_reference_the_right_ranges(report):
    path, _wb = report
    with zipfile.ZipFile(path) as z:
        charts = [z.read(n).decode() for n in sorted(z.namelist()) if n.startswith("xl/charts/chart")]
    doughnut = next(c for c in charts if "<c:doughnutChart>" in c)
    bar = next(c for c in charts if "<c:barChart>" in c)
    assert "落实情况汇总!$A$4:$A$8" in doughnut and "落实情况汇总!$B$4:$B$8" in doughnut
    assert "单位进度!$B$4:$B$8" in bar and "单位进度!$K$4:$K$8" in bar


def test_matrix_prints_a_page_of_units_at_a_time():
    from automation.progress.report.matrix_sheet import UNITS_PER_PAGE, unit_page_breaks

    kinds = ["县"] * 10 + ["市直"] * 27
    breaks = unit_page_breaks(kinds, 3)
    assert breaks[0] == 3 + 10                                  # the departments start a page of their own
    assert breaks[1:] == [13 + UNITS_PER_PAGE, 13 + 2 * UNITS_PER_PAGE]
    assert unit_page_breaks(["县"] * 5, 3) == []


def test_completion_chart_is_coloured_by_level_with_labels(report):
    path, _wb = report
    with zipfile.ZipFile(path) as z:
        bar = next(t for n in sorted(z.namelist()) if n.startswith("xl/charts/chart")
                   for t in [z.read(n).decode()] if "<c:barChart>" in t)
    assert '<c:barDir val="bar"/>' in bar                     # horizontal bars: names read horizontally
    assert "C00000" in bar and "70AD47" in bar                 # red and green units
    assert "<c:showVal val=\"1\"/>" in bar                   # a 0 % unit still shows its label


def test_print_setup(report):
    _path, wb = report
    for ws in wb:
        assert ws.page_setup.paperSize == 9 and ws.page_setup.orientation == "landscape", ws.title
        assert "第 &P 页，共 &N 页" in ws.oddFooter.center.text, ws.title
        assert ws.print_title_rows, ws.title
        assert "测试批次" in ws.oddHeader.left.text
    detail = wb["进展明细"]                     # one page wide (fitToWidth defaults to 1), as many pages tall as needed
    assert detail.sheet_properties.pageSetUpPr.fitToPage and detail.page_setup.fitToHeight == 0


def test_default_path_and_atomic_rewrite(small):
    config, led = small
    path = build_report(config, led, NOW)
    assert path == default_report_path(config, "测试批次", NOW)
    assert path.parent == config.workspace / "reports" and path.name == "测试批次_汇总表_20211101-0930.xlsx"
    first = path.read_bytes()
    assert build_report(config, led, NOW) == path and path.read_bytes() == first  # the same time, the same file
    assert [p.name for p in path.parent.iterdir()] == [path.name]      # no temporary files left


# --------------------------------------------------------------------------- status


def test_status_summary_agrees_with_the_report(small, report):
    config, led = small
    _path, wb = report
    data = status_summary(config, led, NOW)
    assert (data["batch"], data["deadline"], data["days_left"], data["deadline_passed"]) == \
        ("测试批次", "2021-12-15", 32, False)
    assert data["completion"] == 0.3125
    assert data["counts"] == {"assigned": 18, "reported": 10, "done": 5, "in_progress": 2, "not_started": 1,
                              "not_applicable": 2, "unreported": 8, "completion": 0.3125}
    assert [a["unit"] for a in data["units"]] == [r[1] for r in UNIT_ROWS]
    ws = wb["单位进度"]
    for i, u in enumerate(data["units"]):
        assert [u["assigned"], u["reported"], u["done"], u["in_progress"], u["not_started"], u["not_applicable"],
                u["unreported"], u["completion"], u["reminders"]] == [
            ws.cell(4 + i, c).value for c in (4, 5, 6, 7, 8, 9, 10, 11, 13)]
    assert [u["level"] for u in data["units"]] == ["red", "yellow", "yellow", "yellow", "green"]
    assert {t["task"]: (t["summary"], t["text"]) for t in data["tasks"]} == {n: (SUMMARY[n], TEXT[n]) for n in TEXT}
    assert data["tasks"][4]["unfinished_units"] == ["乙局", "东区政府", "西区政府", "南区政府"]


def test_status_assignments_shape(small):
    config, led = small
    rows = status_summary(config, led, NOW)["assignments"]
    assert all(tuple(a) == ASSIGNMENT_KEYS for a in rows)
    got = [[a["task"], a["unit"], a["role"], a["status"], a["progress"], a["completed_on"] or "", a["evidence"],
            a["problems"], a["submitted_at"]] for a in rows]
    want = [[d[0], d[2], d[3].split("（")[0], d[4], d[5], d[6], d[7], d[8],
             clock.iso(dt.datetime.fromisoformat(d[10] + ":00+08:00")) if d[10] else None] for d in DETAIL]
    assert got == want


def test_status_on_the_sample_without_answers(config, ledger, now):
    data = status_summary(config, ledger, now)
    assert len(data["assignments"]) == 1103 and len(data["units"]) == 37 and len(data["tasks"]) == 35
    assert data["counts"]["unreported"] == 1103 and data["completion"] == 0.0
    assert {u["level"] for u in data["units"]} == {"red"}
    assert data["tasks"][0]["summary"] == "未填报（已完成 0/12，未报 12）"


# --------------------------------------------------------------------------- CLI


def test_cli_status_and_report(small, tmp_path, capsys):
    config, _led = small
    base = ["--config", str(config.path)]
    assert main([*base, "status", "--json", "--now", "2021-11-01T09:30"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["days_left"] == 32 and [u["unit"] for u in data["units"]][0] == "南区政府"

    assert main([*base, "status", "--now", "2021-11-01T09:30"]) == 0
    out = capsys.readouterr().out
    assert "测试批次" in out and "剩余 32 个工作日" in out and "31.2%" in out
    order = [out.index(name) for name in ("南区政府", "西区政府", "乙局", "东区政府", "甲局")]
    assert order == sorted(order)

    target = tmp_path / "指定.xlsx"
    assert main([*base, "report", "--out", str(target), "--json", "--now", "2021-11-01T09:30"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got == {"path": str(target), "batch": "测试批次", "tasks": 5, "units": 5, "assignments": 18,
                   "completion": 0.3125}
    assert openpyxl.load_workbook(target).sheetnames == list(SHEETS)

    assert main([*base, "report", "--now", "2021-11-01T09:30"]) == 0
    assert "测试批次_汇总表_20211101-0930.xlsx" in capsys.readouterr().out


# --------------------------------------------------------------------------- LibreOffice


@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice (soffice) is not installed")
def test_libreoffice_opens_the_report(report, tmp_path):
    """A real client converts the report: it opens (no repair) and the literal texts survive."""
    path, _wb = report
    work = tmp_path / "lo"
    work.mkdir()
    src = work / "report.xlsx"
    shutil.copy(path, src)
    profile = (tmp_path / "lo-profile").as_uri()
    subprocess.run(["soffice", f"-env:UserInstallation={profile}", "--headless", "--convert-to", "pdf",
                    "--outdir", str(work), str(src)], check=True, capture_output=True, timeout=180)
    pdf = work / "report.pdf"
    assert pdf.exists(), "soffice exited without writing the PDF"
    assert pdf.read_bytes()[:5] == b"%PDF-"
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
        flat = re.sub(r"\s+", "", text)
        for needle in ("测试批次落实情况汇总表", "落实情况分布", "各单位完成率", HYPERLINK, "推进中（已完成2/4，未报1）"):
            assert re.sub(r"\s+", "", needle) in flat, needle
