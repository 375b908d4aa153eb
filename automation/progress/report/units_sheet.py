"""Sheet 2, 单位进度: one row per unit, worst first, red/yellow/green."""

from __future__ import annotations

from xlsxwriter.worksheet import Worksheet

from automation import clock
from automation.progress.report.styles import SHEET_UNITS, Styles, print_setup
from automation.progress.summary import (
    IN_PROGRESS,
    LEVEL_NAMES,
    NOT_APPLICABLE,
    NOT_STARTED,
    Snapshot,
    fmt_time,
)

UNIT_COLUMNS: tuple[tuple[str, float], ...] = (
    ("序号", 5), ("单位", 20), ("类别", 14), ("承担任务", 7), ("已报送", 7), ("已完成", 7), ("推进中", 7),
    ("未启动", 7), ("不适用", 7), ("未填报", 7), ("完成率", 8), ("最近报送", 16), ("催办次数", 7),
    ("逾期工作日", 8), ("预警", 6), ("逾期任务", 7), ("综合得分", 7), ("类内排名", 7), ("联系人", 10),
    ("联系电话", 13),
)


def write_units_sheet(ws: Worksheet, st: Styles, snap: Snapshot) -> None:
    last_col = len(UNIT_COLUMNS) - 1
    for i, (_label, width) in enumerate(UNIT_COLUMNS):
        ws.set_column(i, i, width)
    ws.set_row(0, 30)
    ws.merge_range(0, 0, 0, last_col, f"{snap.batch.title}各单位进度", st.title)
    info = snap.deadline
    ws.set_row(1, 50)
    ws.merge_range(1, 0, 1, last_col,
                   f"统计时间：{clock.local(snap.now):%Y-%m-%d %H:%M}　　报送截止：{info.deadline:%Y-%m-%d}"
                   f"（{info.text()}）　　按进度由差到好排列。\n预警：红 = 已逾期仍未完成，或尚未报送任何内容；"
                   "黄 = 已报送、尚未全部完成；绿 = 全部完成（已完成或不适用）。完成率 = 已完成 ÷（承担任务 − 不适用）。"
                   "综合得分 = 完成率×50 + 按时完成率×30 + 报送率×20，同类单位（县（市、区）、市直部门）之间排名。",
                   st.meta)
    ws.set_row(2, 30)
    for i, (label, _w) in enumerate(UNIT_COLUMNS):
        ws.write_string(2, i, label, st.header)
    for i, u in enumerate(snap.units):
        row = 3 + i
        f = st.level[u.level]
        c = u.counts
        ws.write_number(row, 0, i + 1, f["center"])
        ws.write_string(row, 1, u.name, f["text"])
        ws.write_string(row, 2, u.kind, f["text"])
        for col, n in enumerate((c.assigned, c.reported, c.done, c[IN_PROGRESS], c[NOT_STARTED],
                                 c[NOT_APPLICABLE], c.unreported), start=3):
            ws.write_number(row, col, n, f["center"])
        ws.write_number(row, 10, c.completion, f["pct"])
        ws.write_string(row, 11, fmt_time(u.last_submission), f["center"])
        ws.write_number(row, 12, u.reminders, f["center"])
        if u.overdue:
            ws.write_number(row, 13, u.overdue_workdays, f["center"])
        else:
            ws.write_blank(row, 13, None, f["center"])
        ws.write_string(row, 14, LEVEL_NAMES[u.level], f["center"])
        ws.write_number(row, 15, u.overdue_tasks, f["center"])
        ws.write_number(row, 16, u.score, f["center"])
        ws.write_number(row, 17, u.rank, f["center"])
        ws.write_string(row, 18, u.contact, f["text"])
        ws.write_string(row, 19, u.phone, f["text"])
    ws.freeze_panes(3, 2)
    ws.autofilter(2, 0, 2 + len(snap.units), last_col)
    print_setup(ws, snap, SHEET_UNITS, 2)
