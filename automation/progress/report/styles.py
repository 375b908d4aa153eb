"""What every sheet of the report shares: colours, cell formats, print setup, column headers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import xlsxwriter
from xlsxwriter.worksheet import Worksheet

from automation import clock
from automation.progress.summary import DONE, IN_PROGRESS, NOT_APPLICABLE, NOT_STARTED, UNREPORTED, Snapshot
from automation.workbook.layout import DEFAULT_LAYOUT

#: How many units the completion chart shows at most (the worst ones, in 单位进度 order).
CHART_UNITS = 40

# Fill and font colours: Excel's own good / neutral / bad, plus orange and grey.
STATUS_COLOURS = {
    DONE: ("#C6EFCE", "#006100"),
    IN_PROGRESS: ("#FFEB9C", "#9C5700"),
    NOT_STARTED: ("#F8CBAD", "#843C0C"),
    NOT_APPLICABLE: ("#E7E6E6", "#595959"),
    UNREPORTED: ("#FFC7CE", "#9C0006"),
}
CHART_COLOURS = {DONE: "#70AD47", IN_PROGRESS: "#FFC000", NOT_STARTED: "#ED7D31", NOT_APPLICABLE: "#A5A5A5",
                 UNREPORTED: "#C00000"}
LEVEL_COLOURS = {"red": STATUS_COLOURS[UNREPORTED], "yellow": STATUS_COLOURS[IN_PROGRESS],
                 "green": STATUS_COLOURS[DONE]}
LEVEL_BAR_COLOURS = {"red": "#C00000", "yellow": "#FFC000", "green": "#70AD47"}
HEADLINE_LEVEL = {DONE: "green", NOT_APPLICABLE: "green", IN_PROGRESS: "yellow", NOT_STARTED: "red",
                  UNREPORTED: "red"}

SEVERITY_NAMES = {"error": "错误", "warning": "警告", "info": "提示"}
QUARANTINED = "已隔离"
FIELD_NAMES = {c.key: c.header for c in DEFAULT_LAYOUT.columns}
FONT = "宋体"

SHEET_SUMMARY, SHEET_UNITS, SHEET_MATRIX, SHEET_DETAIL, SHEET_PROBLEMS, SHEET_HISTORY = SHEETS = (
    "落实情况汇总", "单位进度", "任务×单位", "进展明细", "问题清单", "提交记录",
)
#: The sheet of progress per reporting round, after 单位进度 (only for a batch with ``[rounds]``).
SHEET_ROUNDS = "各期进度"


def header_footer(ws: Worksheet, batch_title: str, sheet: str, now: dt.datetime) -> None:
    def esc(s: str) -> str:
        return s.replace("&", "&&")[:80]

    # "&9" is a font size: the space after it keeps a title starting with digits (2021年…) out of it.
    ws.set_header(f"&L&9 {esc(batch_title)}&C&9 {esc(sheet)}&R&9 统计时间 {clock.local(now):%Y-%m-%d %H:%M}")
    ws.set_footer("&C&9第 &P 页，共 &N 页")


def print_setup(ws: Worksheet, snap: Snapshot, sheet: str, header_row: int | None, fit_width: bool = True,
                 repeat_cols: tuple[int, int] | None = None) -> None:
    ws.set_paper(9)             # A4
    ws.set_landscape()
    ws.set_margins(left=0.4, right=0.4, top=0.7, bottom=0.6)
    header_footer(ws, snap.batch.title, sheet, snap.now)
    if header_row is not None:
        ws.repeat_rows(header_row)
    if repeat_cols:
        ws.repeat_columns(*repeat_cols)
    if fit_width:
        ws.fit_to_pages(1, 0)


class Styles:
    """Every cell format of the report, created once."""

    def __init__(self, wb: xlsxwriter.Workbook) -> None:
        base = {"font_name": FONT, "font_size": 10}
        cell = {**base, "border": 1, "valign": "top", "text_wrap": True}
        self.wb = wb
        self.title = wb.add_format({"font_name": "黑体", "font_size": 16, "bold": True, "align": "center",
                                    "valign": "vcenter"})
        self.meta = wb.add_format({**base, "valign": "vcenter", "text_wrap": True})
        self.header = wb.add_format({**base, "bold": True, "bg_color": "#D9E1F2", "border": 1, "align": "center",
                                     "valign": "vcenter", "text_wrap": True})
        self.header_vertical = wb.add_format({**base, "bold": True, "bg_color": "#D9E1F2", "border": 1,
                                              "align": "center", "valign": "top", "rotation": 270})
        self.section = wb.add_format({"font_name": "黑体", "font_size": 11, "bold": True, "bg_color": "#EDEDED",
                                      "border": 1, "valign": "vcenter", "text_wrap": True})
        self.subsection = wb.add_format({"font_name": "楷体", "font_size": 11, "bold": True, "bg_color": "#F5F5F5",
                                         "border": 1, "valign": "vcenter", "text_wrap": True})
        self.text = wb.add_format(cell)
        self.center = wb.add_format({**cell, "align": "center"})
        self.int = wb.add_format({**cell, "align": "center", "num_format": "0"})
        self.pct = wb.add_format({**cell, "align": "center", "num_format": "0.0%"})
        self.bold_text = wb.add_format({**cell, "bold": True})
        self.status_cell = wb.add_format({**cell, "font_size": 9, "align": "center", "valign": "vcenter",
                                          "text_wrap": False})
        self.headline = {lvl: wb.add_format({**cell, "bg_color": bg, "font_color": fg})
                         for lvl, (bg, fg) in LEVEL_COLOURS.items()}
        self.level = {
            lvl: {kind: wb.add_format({**cell, "bg_color": bg, **extra})
                  for kind, extra in (("text", {}), ("center", {"align": "center"}),
                                      ("pct", {"align": "center", "num_format": "0.0%"}))}
            for lvl, (bg, _fg) in LEVEL_COLOURS.items()
        }
        self.status_dxf = {s: wb.add_format({"bg_color": bg, "font_color": fg})
                           for s, (bg, fg) in STATUS_COLOURS.items()}

    def status_rules(self, ws: Worksheet, first_row: int, first_col: int, last_row: int, last_col: int) -> None:
        """Conditional colours for cells holding a status."""
        if last_row < first_row or last_col < first_col:
            return
        for status, fmt in self.status_dxf.items():
            ws.conditional_format(first_row, first_col, last_row, last_col,
                                  {"type": "cell", "criteria": "==", "value": f'"{status}"', "format": fmt})


def px(width: float) -> int:
    """Excel column width (characters) → pixels, as Excel and XlsxWriter compute it."""
    return int(width * 7 + 5) if width >= 1 else int(width * 12 + 0.5)


def header_columns(ws: Worksheet, st: Styles, columns: Sequence[tuple[str, float, str]]) -> None:
    for i, (label, width, kind) in enumerate(columns):
        ws.set_column(i, i, width, getattr(st, kind))
        ws.write_string(0, i, label, st.header)
