"""Sheet 各期进度 (only when ``[rounds]`` asks for periodic reports): the trend of completion over the
rounds by unit kind (a table and a line chart), then per unit and round whether it reported in that
round and its completion at the round's end."""

from __future__ import annotations

import xlsxwriter
from xlsxwriter.worksheet import Worksheet

from automation import clock
from automation.progress.periods import KIND_ALL, RoundProgress
from automation.progress.report.styles import SHEET_ROUNDS, Styles, print_setup
from automation.progress.summary import ROUND_MISSED, Snapshot

_TREND_COLOURS = ("#404040", "#4472C4", "#ED7D31", "#70AD47", "#FFC000", "#7030A0")


def kinds_of(snap: Snapshot) -> dict[str, list[int]]:
    """Unit ids by kind (registry order), 全部单位 first."""
    out: dict[str, list[int]] = {KIND_ALL: [uid for uid, _n in snap.unit_order]}
    for uid, _name in snap.unit_order:
        out.setdefault(snap.kinds.get(uid) or "其他单位", []).append(uid)
    return out


def write_rounds_sheet(wb: xlsxwriter.Workbook, ws: Worksheet, st: Styles, snap: Snapshot,
                       progress: list[RoundProgress]) -> None:
    n = len(progress)
    last_col = max(2 + 2 * n - 1, 4)
    ws.set_column(0, 0, 22)
    ws.set_column(1, 1, 14)
    ws.set_column(2, 2 + 2 * n, 10)
    ws.set_row(0, 30)
    ws.merge_range(0, 0, 0, last_col, f"{snap.batch.title}各期进度", st.title)
    ws.set_row(1, 36)
    ws.merge_range(1, 0, 1, last_col,
                   f"统计时间：{clock.local(snap.now):%Y-%m-%d %H:%M}　　共{len(snap.rounds)}期，已进行{n}期。"
                   "每次填报归入收到当期；完成率为该期截止日结束时的完成率（进行中的一期为当前）。"
                   f"本期报送：该期内报送的任务项数，一项也未报送为“{ROUND_MISSED}”。", st.meta)
    # the trend: one row per kind, one column per round
    kinds = kinds_of(snap)
    ws.write_string(2, 0, "完成率（各期末）", st.header)
    for i, p in enumerate(progress):
        ws.write_string(2, 1 + i, p.round.name + ("" if p.closed else "（进行中）"), st.header)
    for row, (kind, ids) in enumerate(kinds.items(), start=3):
        ws.write_string(row, 0, kind, st.bold_text if kind == KIND_ALL else st.text)
        for i, p in enumerate(progress):
            ws.write_number(row, 1 + i, p.completion(ids), st.pct)
    trend_end = 2 + len(kinds)
    chart_row = trend_end + 2
    chart = wb.add_chart({"type": "line"})
    for j, _kind in enumerate(kinds):
        row = 3 + j
        chart.add_series({
            "name": [SHEET_ROUNDS, row, 0], "categories": [SHEET_ROUNDS, 2, 1, 2, n],
            "values": [SHEET_ROUNDS, row, 1, row, n],
            "line": {"color": _TREND_COLOURS[j % len(_TREND_COLOURS)], "width": 2.5 if j == 0 else 1.75},
            "marker": {"type": "circle", "size": 5, "fill": {"color": _TREND_COLOURS[j % len(_TREND_COLOURS)]}},
            "data_labels": {"value": j == 0, "num_format": "0%", "position": "above", "font": {"size": 8}},
        })
    chart.set_title({"name": "各期完成率走势（按单位类别）", "name_font": {"size": 11, "bold": True}})
    chart.set_y_axis({"min": 0, "max": 1, "major_unit": 0.2, "num_format": "0%", "num_font": {"size": 8},
                      "major_gridlines": {"visible": True, "line": {"color": "#D9D9D9"}}})
    chart.set_x_axis({"num_font": {"size": 9}})
    chart.set_legend({"position": "bottom", "font": {"size": 9}})
    chart.set_size({"width": 720, "height": 300})
    ws.insert_chart(chart_row, 0, chart, {"x_offset": 4, "y_offset": 4, "object_position": 3})
    # per unit: reported in the round, completion at its end
    head = chart_row + 17
    ws.set_row(head, 24)
    ws.merge_range(head, 0, head + 1, 0, "单位", st.header)
    ws.merge_range(head, 1, head + 1, 1, "类别", st.header)
    for i, p in enumerate(progress):
        c0 = 2 + 2 * i
        ws.merge_range(head, c0, head, c0 + 1, p.round.label(), st.header)
        ws.write_string(head + 1, c0, "本期报送", st.header)
        ws.write_string(head + 1, c0 + 1, "完成率", st.header)
    row = head + 2
    for uid, name in snap.unit_order:
        ws.write_string(row, 0, name, st.text)
        ws.write_string(row, 1, snap.kinds.get(uid, ""), st.text)
        for i, p in enumerate(progress):
            c0 = 2 + 2 * i
            got = p.reported.get(uid, 0)
            if got:
                ws.write_string(row, c0, f"{got}项", st.center)
            else:
                ws.write_string(row, c0, ROUND_MISSED if p.closed else "尚未报送",
                                st.headline["red"] if p.closed else st.center)
            c = p.counts.get(uid)
            ws.write_number(row, c0 + 1, c.completion if c else 0, st.pct)
        row += 1
    ws.freeze_panes(head + 2, 2)
    print_setup(ws, snap, SHEET_ROUNDS, head + 1)
