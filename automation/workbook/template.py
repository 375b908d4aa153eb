"""The office's template: ``templates/report_template.xlsx`` ⇄ :class:`~automation.workbook.layout.Layout`.

The office changes the look of the assignment workbooks in Excel or WPS, not in code, so the
template is an ordinary workbook whose *cells* are the settings:

- ``任务清单``: A1 the title (``{batch}`` ``{unit}`` ``{deadline}``, styled as the title); row 3 the
  header (label, order, width, font, fill and border per column); row 4 ``对应内容``, the fixed
  name of what each column holds (:data:`~automation.workbook.layout.FIELD_NAMES`) so a header may be
  renamed or moved freely; row 5 ``是否填报`` 是/否; row 6 the input message of a fill-in column;
  rows 7–9 style samples for section, subsection and task rows (the cell holding the sample
  text gives the heading styles; task cells of a fill-in column give the fill style, of any
  other column the task style).  The table ends at the first
  column whose header and 对应内容 are both empty; notes starting with ``←`` are ignored.
- ``填报说明``: one instruction line per row in column A (A1 styled as the heading, A2 as the
  text); placeholders {unit} {deadline} {office} {contact} {phone} {email} {batch}, and a row
  holding only {status_meanings} becomes one row per status option.
- ``落实情况选项``: from row 2, column A an option of the 落实情况 dropdown, column B its meaning.
- ``模板说明``: help for the office; never read.

:func:`read_template` (openpyxl) turns the file into a Layout whose ``version`` hashes its
content; :func:`write_template` (xlsxwriter, fixed document dates so the bytes are reproducible)
writes one.  ``read_template(write_template(L)) == L`` for the default layout, so an untouched
template keeps the version of :data:`~automation.workbook.layout.DEFAULT_LAYOUT`.  A template broken in
Excel gives an :class:`~automation.errors.InputError` naming the sheet and cell.
"""

from __future__ import annotations

import colorsys
import datetime as dt
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from automation.config import Config
from automation.errors import InputError
from automation.text import STATUS_OPTIONS, canonical_status
from automation.workbook.layout import (
    DEFAULT_LAYOUT,
    FIELD_NAMES,
    FILL_KEYS,
    HELP_SHEET,
    TASK_KEYS,
    TASK_SHEET,
    Column,
    Layout,
)

__all__ = [
    "read_template",
    "write_template",
    "layout_for",
    "TEMPLATE_TASK_SHEET",
    "TEMPLATE_HELP_SHEET",
    "TEMPLATE_STATUS_SHEET",
    "TEMPLATE_NOTES_SHEET",
]

TEMPLATE_TASK_SHEET = TASK_SHEET
TEMPLATE_HELP_SHEET = HELP_SHEET
TEMPLATE_STATUS_SHEET = "落实情况选项"
TEMPLATE_NOTES_SHEET = "模板说明"

# 1-based rows of the template's 任务清单 sheet.
_TITLE_ROW, _HINT_ROW, _HEADER_ROW, _FIELD_ROW, _FILL_ROW, _PROMPT_ROW = 1, 2, 3, 4, 5, 6
_SECTION_ROW, _SUBSECTION_ROW, _TASK_ROW = 7, 8, 9
_ROW_NOTES = {
    _HEADER_ROW: "← 表头：可改名称、顺序、列宽、字体、底色",
    _FIELD_ROW: "← 对应内容：每列装什么，请勿修改文字（可随列移动）",
    _FILL_ROW: "← 是否填报：是 = 单位填写（不锁定），否 = 下发内容（锁定）",
    _PROMPT_ROW: "← 填报提示：单位点到该列单元格时显示（可用 {statuses} 代表全部选项）",
    _SECTION_ROW: "← 大项标题行的样式",
    _SUBSECTION_ROW: "← 小项标题行的样式",
    _TASK_ROW: "← 任务行的样式（下发内容列 / 填报列）",
}
_YES, _NO = "是", "否"
_REQUIRED = ("number", "title", "status")
_FIXED_DATE = dt.datetime(2021, 1, 1)  # document dates of the template: reproducible bytes

_BORDERS = {"thin": 1, "medium": 2, "dashed": 3, "dotted": 4, "thick": 5, "double": 6, "hair": 7,
            "mediumDashed": 8, "dashDot": 9, "mediumDashDot": 10, "dashDotDot": 11, "mediumDashDotDot": 12,
            "slantDashDot": 13}
_ALIGN = {"left": "left", "center": "center", "right": "right", "fill": "fill", "justify": "justify",
          "centerContinuous": "center_across", "distributed": "distributed"}
_VALIGN = {"top": "top", "center": "vcenter", "justify": "vjustify", "distributed": "vdistributed"}
_NOTE_FORMAT = {"font_name": "宋体", "font_size": 9, "font_color": "#7F7F7F", "text_wrap": True, "valign": "top"}
_SETTING_FORMAT = {"font_name": "宋体", "font_size": 10, "font_color": "#595959", "bg_color": "#F2F2F2",
                   "border": 1, "text_wrap": True, "valign": "top", "align": "center"}

_NOTES_TEXT = (
    "工作簿模板说明（办公室使用；单位看不到本文件）",
    "本文件决定“automation build”生成的每个单位填报工作簿的样子。可以在 Excel 或 WPS 中修改后保存（保持 .xlsx 格式），"
    "下次生成工作簿时生效；已发出的工作簿仍按原来的格式回收。",
    "“任务清单”工作表：",
    "　　第 1 行是标题，可用 {batch}（批次名称）、{unit}（单位）、{deadline}（截止日期）；可改字体、字号。",
    "　　第 3 行是表头：可以改名称、拖动调整列的顺序、改列宽、字体、底色和边框；可以删除不需要的填报列。",
    "　　第 4 行“对应内容”说明每列装什么，请勿改动文字（移动列时整列一起移动即可）。序号、工作任务、落实情况三列必须保留。",
    "　　第 5 行“是否填报”：是 = 单位填写（不锁定），否 = 下发内容（锁定）。序号、工作任务等下发内容不能设为“是”。",
    "　　第 6 行是单位点到该列时显示的填报提示，{statuses} 代表全部落实情况选项。",
    "　　第 7–9 行是大项标题、小项标题、任务行的样式示例：改这些单元格的字体、底色即可。",
    "“填报说明”工作表：每行一段说明文字，可增删改。可用 {unit} {deadline} {office} {contact} {phone} {email} {batch}；"
    "只写 {status_meanings} 的一行会展开为各选项及其含义。",
    "“落实情况选项”工作表：A 列是下拉选项，B 列是含义（写入填报说明）。可以增加或改名选项。",
    "改坏了怎么办：运行 python scripts/make_template.py 重新生成默认模板。",
)


def layout_for(config: Config) -> Layout:
    """The layout the office's template defines, or the built-in default when there is no template file."""
    if config.template.exists():
        return read_template(config.template)
    return DEFAULT_LAYOUT


# --------------------------------------------------------------------------- reading


def _number(value: float) -> int | float:
    value = round(float(value), 2)
    return int(value) if value.is_integer() else value


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class _Colors:
    """Resolve openpyxl colours (rgb, theme + tint, indexed) to ``#RRGGBB``."""

    # dk1 lt1 dk2 lt2 accent1..6 hlink folHlink of the Office theme (used when the file has none).
    _OFFICE = ["000000", "FFFFFF", "44546A", "E7E6E6", "4472C4", "ED7D31", "A5A5A5", "FFC000", "5B9BD5",
               "70AD47", "0563C1", "954F72"]

    def __init__(self, theme_xml: bytes | None) -> None:
        scheme = list(self._OFFICE)
        if theme_xml:
            try:
                root = ElementTree.fromstring(theme_xml)
                ns = {"a": "http://schemas.openxmlformats.org/drawingml/2006/main"}
                clr = root.find(".//a:clrScheme", ns)
                if clr is not None:
                    found = []
                    for child in clr:
                        srgb = child.find("a:srgbClr", ns)
                        sys_ = child.find("a:sysClr", ns)
                        if srgb is not None:
                            found.append(srgb.get("val", "000000"))
                        elif sys_ is not None:
                            found.append(sys_.get("lastClr", "000000"))
                    if len(found) >= 12:
                        scheme = found[:12]
            except ElementTree.ParseError:
                pass
        # Theme index order swaps the first two pairs: 0 lt1, 1 dk1, 2 lt2, 3 dk2.
        self.theme = [scheme[1], scheme[0], scheme[3], scheme[2], *scheme[4:]]

    def resolve(self, color: Any) -> str | None:
        if color is None:
            return None
        kind = getattr(color, "type", None)
        rgb: str | None = None
        if kind == "rgb" and isinstance(color.rgb, str):
            rgb = color.rgb[-6:]
        elif kind == "theme" and isinstance(color.theme, int) and 0 <= color.theme < len(self.theme):
            rgb = self.theme[color.theme]
        elif kind == "indexed" and isinstance(color.indexed, int):
            from openpyxl.styles.colors import COLOR_INDEX

            if color.indexed < 64:
                rgb = COLOR_INDEX[color.indexed][-6:]
        if rgb is None:
            return None
        tint = float(getattr(color, "tint", 0.0) or 0.0)
        if tint:
            r, g, b = (int(rgb[i:i + 2], 16) / 255 for i in (0, 2, 4))
            h, l_, s = colorsys.rgb_to_hls(r, g, b)
            l_ = l_ * (1 + tint) if tint < 0 else l_ * (1 - tint) + tint
            r, g, b = colorsys.hls_to_rgb(h, l_, s)
            rgb = "".join(f"{round(v * 255):02X}" for v in (r, g, b))
        return "#" + rgb.upper()


def _style(cell: Any, colors: _Colors) -> dict[str, Any]:
    """The xlsxwriter format properties of an openpyxl cell (only what differs from plain)."""
    font, fill, border, align = cell.font, cell.fill, cell.border, cell.alignment
    out: dict[str, Any] = {}
    if font is not None:
        if font.b:
            out["bold"] = True
        if font.i:
            out["italic"] = True
        if font.u and font.u != "none":
            out["underline"] = 2 if font.u == "double" else 1
        out["font_name"] = font.name or "宋体"
        out["font_size"] = _number(font.sz or 11)
        color = colors.resolve(font.color)
        if color and color != "#000000":
            out["font_color"] = color
    if fill is not None and fill.patternType == "solid":
        color = colors.resolve(fill.fgColor)
        if color:
            out["bg_color"] = color
    if border is not None:
        for side in (border.left, border.top, border.right, border.bottom):
            if side is not None and side.style in _BORDERS:
                out["border"] = _BORDERS[side.style]
                break
    if align is not None:
        if align.horizontal in _ALIGN:
            out["align"] = _ALIGN[align.horizontal]
        if align.vertical in _VALIGN:
            out["valign"] = _VALIGN[align.vertical]
        if align.wrap_text:
            out["text_wrap"] = True
    return out


def _column_widths(ws: Any) -> dict[int, float]:
    """Stored width per 1-based column index (Excel may store one <col> for a range)."""
    from openpyxl.utils import column_index_from_string

    widths: dict[int, float] = {}
    for key, dim in ws.column_dimensions.items():
        if not dim.width:
            continue
        lo = dim.min or column_index_from_string(key)
        hi = dim.max or lo
        for idx in range(lo, hi + 1):
            widths[idx] = float(dim.width)
    return widths


def _writer_width(stored: float | None) -> int | float:
    """The xlsxwriter ``set_column`` width that stores ``stored`` (which includes 5 px padding)."""
    if stored is None:
        stored = 8.43 + 5 / 7
    pixels = round(stored * 7)
    return max(1, _number((pixels - 5) / 7))


def read_template(path: Path) -> Layout:
    """Read the office's template into a Layout (see the module docstring for its shape)."""
    path = Path(path)
    wb = _open_template(path)
    name = path.name
    try:
        colors = _Colors(getattr(wb, "loaded_theme", None))
        for sheet in (TEMPLATE_TASK_SHEET, TEMPLATE_HELP_SHEET, TEMPLATE_STATUS_SHEET):
            if sheet not in wb.sheetnames:
                raise InputError(
                    f"模板 {name} 缺少工作表“{sheet}”（现有：{'、'.join(wb.sheetnames)}）。"
                    "请恢复该工作表的名称，或运行 python scripts/make_template.py 重新生成默认模板。"
                )
        ws = wb[TEMPLATE_TASK_SHEET]
        columns, task_style, fill_style = _read_columns(ws, name, colors)
        title = _text(ws.cell(_TITLE_ROW, 1).value).strip()
        if not title:
            raise InputError(f"模板 {name} 的“{TEMPLATE_TASK_SHEET}”工作表 A{_TITLE_ROW}：标题为空，请填写，"
                             f"例如 {DEFAULT_LAYOUT.title_format}。")
        options = _read_status_options(wb[TEMPLATE_STATUS_SHEET], name)
        help_ws = wb[TEMPLATE_HELP_SHEET]
        lines = _read_instructions(help_ws, name)
        styles = dict(DEFAULT_LAYOUT.styles)
        styles["title"] = _style(ws.cell(_TITLE_ROW, 1), colors)
        styles["section"] = _style(_sample_cell(ws, _SECTION_ROW, len(columns)), colors)
        styles["subsection"] = _style(_sample_cell(ws, _SUBSECTION_ROW, len(columns)), colors)
        if task_style is not None:
            styles["task"] = task_style
        if fill_style is not None:
            styles["fill"] = fill_style
        styles["help_title"] = _style(help_ws.cell(1, 1), colors)
        if len(lines) > 1:
            styles["help"] = _style(help_ws.cell(2, 1), colors)
        return Layout(columns=tuple(columns), status_options=tuple(options), instructions=tuple(lines),
                      styles=styles, title_format=title)
    finally:
        wb.close()


def _open_template(path: Path) -> Any:
    import openpyxl

    if not path.exists():
        raise InputError(f"找不到模板 {path}。请检查 config.toml 中的 template，或运行 python scripts/make_template.py 生成。")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # openpyxl warns about Excel extensions it drops
            return openpyxl.load_workbook(path, data_only=True)
    except (zipfile.BadZipFile, OSError, KeyError, ValueError, TypeError) as exc:
        raise InputError(
            f"模板 {path.name} 无法打开（{type(exc).__name__}）。请在 Excel/WPS 中另存为 .xlsx，"
            "或运行 python scripts/make_template.py 重新生成默认模板。"
        ) from exc


def _read_columns(ws: Any, name: str, colors: _Colors) -> tuple[list[Column], dict[str, Any] | None,
                                                                  dict[str, Any] | None]:
    """The table's columns, left to right until the first empty one, and the task/fill style samples."""
    where = f"模板 {name} 的“{TEMPLATE_TASK_SHEET}”工作表"
    widths = _column_widths(ws)
    columns: list[Column] = []
    seen: dict[str, str] = {}
    fill_style: dict[str, Any] | None = None
    task_style: dict[str, Any] | None = None
    for col in range(1, ws.max_column + 1):
        column = _read_column(ws, col, where, seen, widths, colors)
        if column is None:
            break
        columns.append(column)
        sample = _style(ws.cell(_TASK_ROW, col), colors)
        if column.fill_in and fill_style is None:
            fill_style = sample
        elif not column.fill_in and task_style is None:
            task_style = sample
    for key in _REQUIRED:
        if key not in seen:
            raise InputError(
                f"{where} 第 {_FIELD_ROW} 行缺少“{FIELD_NAMES[key]}”列（序号、工作任务、落实情况必须保留）。"
                "请恢复该列，或运行 python scripts/make_template.py 重新生成默认模板。"
            )
    return columns, task_style, fill_style


_KEY_BY_NAME = {v: k for k, v in FIELD_NAMES.items()}


def _read_column(ws: Any, col: int, where: str, seen: dict[str, str], widths: dict[int, float],
                 colors: _Colors) -> Column | None:
    """One column's settings (rows 3–6), or None where the table ends."""
    from openpyxl.utils import get_column_letter

    letter = get_column_letter(col)
    header = _text(ws.cell(_HEADER_ROW, col).value).strip()
    field = _text(ws.cell(_FIELD_ROW, col).value).strip()
    if not header and not field or header.startswith("←") or field.startswith("←"):
        return None
    key = _KEY_BY_NAME.get(field) or (field if field in FIELD_NAMES else None)
    if key is None:
        raise InputError(
            f"{where} {letter}{_FIELD_ROW}：对应内容“{field}”无法识别，应为以下之一："
            f"{'、'.join(FIELD_NAMES.values())}。表头名称请在第 {_HEADER_ROW} 行修改，第 {_FIELD_ROW} 行请勿改动。"
        )
    if key in seen:
        raise InputError(f"{where} {letter}{_FIELD_ROW}：“{FIELD_NAMES[key]}”与 {seen[key]} 重复，请删除其中一列。")
    seen[key] = f"{letter}{_FIELD_ROW}"
    if not header:
        raise InputError(f"{where} {letter}{_HEADER_ROW}：表头为空，请填写“{FIELD_NAMES[key]}”列的表头名称。")
    flag = _text(ws.cell(_FILL_ROW, col).value).strip()
    if flag not in (_YES, _NO):
        raise InputError(f"{where} {letter}{_FILL_ROW}：是否填报应为“是”或“否”，现为“{flag}”。")
    fill_in = flag == _YES
    if fill_in and key in TASK_KEYS:
        raise InputError(f"{where} {letter}{_FILL_ROW}：“{FIELD_NAMES[key]}”是下发内容，不能设为填报列，请改为“否”。")
    if key == "status" and not fill_in:
        raise InputError(f"{where} {letter}{_FILL_ROW}：“{FIELD_NAMES[key]}”必须由单位填写，请改为“是”。")
    prompt = _text(ws.cell(_PROMPT_ROW, col).value).strip() if fill_in else ""
    return Column(key, header, _writer_width(widths.get(col)), fill_in, prompt,
                  _style(ws.cell(_HEADER_ROW, col), colors))


def _read_status_options(ws: Any, name: str) -> list[tuple[str, str]]:
    """落实情况选项: (option, meaning) from row 2; every option must belong to one of the four classes."""
    where = f"模板 {name} 的“{TEMPLATE_STATUS_SHEET}”工作表"
    options: list[tuple[str, str]] = []
    rows: dict[str, int] = {}
    for row in range(2, ws.max_row + 1):
        value = _text(ws.cell(row, 1).value).strip()
        meaning = _text(ws.cell(row, 2).value).strip()
        if not value:
            if meaning:
                raise InputError(f"{where} A{row}：选项为空但 B{row} 有含义，请填写选项。")
            continue
        if value in rows:
            raise InputError(f"{where} A{row}：选项“{value}”与第 {rows[value]} 行重复。")
        if canonical_status(value) is None:
            raise InputError(
                f"{where} A{row}：选项“{value}”看不出属于{'/'.join(STATUS_OPTIONS)}中的哪一类（统计和催办按这四类进行）。"
                "请改用能看出类别的说法，例如“已办结”“部分完成”“尚未开始”“不涉及”。"
            )
        rows[value] = row
        options.append((value, meaning))
    if not options:
        raise InputError(f"{where}没有选项：请从 A2 起每行填写一个落实情况选项。")
    return options


def _read_instructions(ws: Any, name: str) -> list[str]:
    lines = [_text(ws.cell(row, 1).value).rstrip() for row in range(1, ws.max_row + 1)]
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise InputError(f"模板 {name} 的“{TEMPLATE_HELP_SHEET}”工作表是空的：请在 A 列逐行填写填报说明。")
    return lines


def _sample_cell(ws: Any, row: int, ncol: int) -> Any:
    """The cell of a style-sample row that holds the sample text (the office styles that one)."""
    for col in range(1, ncol + 1):
        if _text(ws.cell(row, col).value).strip():
            return ws.cell(row, col)
    return ws.cell(row, 1)


# --------------------------------------------------------------------------- writing


def write_template(path: Path, layout: Layout = DEFAULT_LAYOUT) -> None:
    """Write ``layout`` as an editable template (atomically; same layout → same bytes)."""
    import xlsxwriter

    from automation.fsutil import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp:
        wb = xlsxwriter.Workbook(str(tmp), {"strings_to_formulas": False, "strings_to_urls": False,
                                            "strings_to_numbers": False})
        wb.set_properties({"title": "督办工作簿模板", "created": _FIXED_DATE})
        formats: dict[str, Any] = {}

        def fmt(props: Mapping[str, Any]) -> Any:
            key = repr(sorted(props.items()))
            if key not in formats:
                formats[key] = wb.add_format(dict(props))
            return formats[key]

        notes = wb.add_worksheet(TEMPLATE_NOTES_SHEET)
        notes.set_column(0, 0, 110)
        for i, line in enumerate(_NOTES_TEXT):
            notes.write_string(i, 0, line, fmt(layout.styles.get("help_title", {}) if i == 0
                                               else layout.styles.get("help", {})))

        ws = wb.add_worksheet(TEMPLATE_TASK_SHEET)
        ws.activate()
        n = len(layout.columns)
        widest = max(range(n), key=lambda i: layout.columns[i].width)
        sample_col = next((i for i in range(n) if layout.columns[i].width >= 18), widest)  # text fits unwrapped
        ws.write_string(_TITLE_ROW - 1, 0, layout.title_format, fmt(layout.styles.get("title", {})))
        ws.set_row(_TITLE_ROW - 1, 30)
        ws.write_string(_HINT_ROW - 1, 0, "第 1 行为标题；第 3 行为表头；第 4–6 行为各列设置；第 7–9 行为样式示例。"
                        "修改方法见“模板说明”工作表。", fmt({**_NOTE_FORMAT, "text_wrap": False}))
        for i, c in enumerate(layout.columns):
            ws.set_column(i, i, c.width)
            ws.write_string(_HEADER_ROW - 1, i, c.header, fmt(c.header_style))
            ws.write_string(_FIELD_ROW - 1, i, FIELD_NAMES.get(c.key, c.key), fmt(_SETTING_FORMAT))
            ws.write_string(_FILL_ROW - 1, i, _YES if c.fill_in else _NO, fmt(_SETTING_FORMAT))
            ws.write_string(_PROMPT_ROW - 1, i, c.prompt, fmt({**_SETTING_FORMAT, "align": "left"}))
            sample = _sample_text(c)
            ws.write_string(_SECTION_ROW - 1, i, "一、大项标题示例" if i == sample_col else "",
                            fmt(layout.styles.get("section", {})))
            ws.write_string(_SUBSECTION_ROW - 1, i, "（一）小项标题示例" if i == sample_col else "",
                            fmt(layout.styles.get("subsection", {})))
            ws.write_string(_TASK_ROW - 1, i, sample,
                            fmt(layout.styles.get("fill" if c.fill_in else "task", {})))
        ws.data_validation(_FILL_ROW - 1, 0, _FILL_ROW - 1, n - 1,
                           {"validate": "list", "source": [_YES, _NO], "input_title": "是否填报",
                            "input_message": "是 = 单位填写（不锁定）；否 = 下发内容（锁定）。"})
        ws.set_row(_HEADER_ROW - 1, 32)
        ws.set_row(_PROMPT_ROW - 1, 80)
        ws.set_row(_SECTION_ROW - 1, 22)
        ws.set_row(_SUBSECTION_ROW - 1, 22)
        ws.set_row(_TASK_ROW - 1, 40)
        ws.set_column(n, n, 3)
        ws.set_column(n + 1, n + 1, 60)
        for row, note in _ROW_NOTES.items():
            ws.write_string(row - 1, n + 1, note, fmt(_NOTE_FORMAT))
        ws.freeze_panes(_HEADER_ROW, 0)

        help_ws = wb.add_worksheet(TEMPLATE_HELP_SHEET)
        help_ws.set_column(0, 0, 100)
        for i, line in enumerate(layout.instructions):
            help_ws.write_string(i, 0, line, fmt(layout.styles.get("help_title" if i == 0 else "help", {})))

        status_ws = wb.add_worksheet(TEMPLATE_STATUS_SHEET)
        head = fmt({"bold": True, "font_name": "宋体", "font_size": 11, "bg_color": "#D9E1F2", "border": 1})
        body = fmt({"font_name": "宋体", "font_size": 11, "border": 1, "text_wrap": True})
        status_ws.set_column(0, 0, 14)
        status_ws.set_column(1, 1, 70)
        status_ws.write_string(0, 0, "选项", head)
        status_ws.write_string(0, 1, "含义", head)
        for i, (value, meaning) in enumerate(layout.status_options, start=1):
            status_ws.write_string(i, 0, value, body)
            status_ws.write_string(i, 1, meaning, body)
        wb.close()


def _sample_text(column: Column) -> str:
    if column.key == "number":
        return "1"
    if column.key in FILL_KEYS:
        return "（单位填写）" if column.fill_in else ""
    return {"title": "任务名称（样式示例）", "requirement": "工作要求（样式示例）", "lead": "市XX局",
            "responsible": "各县（市、区）政府", "role": "责任"}.get(column.key, "")
