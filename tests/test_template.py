"""The office's template: the default reads back as the default layout; edits flow into the workbooks."""

from __future__ import annotations

import shutil
from pathlib import Path

import openpyxl
import pytest
from openpyxl.styles import PatternFill
from openpyxl.styles.colors import Color

from automation.errors import InputError
from automation.workbook.build import build_workbooks
from automation.workbook.layout import DEFAULT_LAYOUT, LISTS_SHEET, META_SHEET, TASK_SHEET
from automation.workbook.template import (
    TEMPLATE_HELP_SHEET,
    TEMPLATE_STATUS_SHEET,
    TEMPLATE_TASK_SHEET,
    layout_for,
    read_template,
    write_template,
)

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "templates" / "report_template.xlsx"


def test_default_template_reads_as_the_default_layout():
    layout = read_template(TEMPLATE)
    assert layout == DEFAULT_LAYOUT
    assert layout.version == DEFAULT_LAYOUT.version


def test_committed_template_is_what_the_script_writes(tmp_path):
    """scripts/make_template.py output is reproducible and the committed file is up to date."""
    a, b = tmp_path / "a.xlsx", tmp_path / "b.xlsx"
    write_template(a)
    write_template(b)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() == TEMPLATE.read_bytes(), "运行 python scripts/make_template.py 更新模板"


def test_layout_for_falls_back_to_default_without_a_template(config, tmp_path):
    from dataclasses import replace

    assert layout_for(replace(config, template=tmp_path / "missing.xlsx")) is DEFAULT_LAYOUT
    assert layout_for(config) == DEFAULT_LAYOUT


def _edit(path: Path, fn) -> None:
    wb = openpyxl.load_workbook(path)
    fn(wb)
    wb.save(path)


def test_office_edits_flow_into_the_workbooks(config, ledger, now):
    """Rename a header, add a status option, change a width: the built workbook follows."""
    template = config.template
    stored_width = 50.0

    def edit(wb):
        ws = wb[TEMPLATE_TASK_SHEET]
        assert ws["B4"].value == "工作任务"
        ws["B3"] = "重点任务"
        ws.column_dimensions["C"].width = stored_width
        st = wb[TEMPLATE_STATUS_SHEET]
        st.cell(st.max_row + 1, 1, "部分完成")
        st.cell(st.max_row, 2, "部分事项已完成")

    _edit(template, edit)
    layout = read_template(template)
    # Only the three edits differ from the default, even after openpyxl re-saved the file.
    assert layout.column("title").header == "重点任务"
    assert layout.column("requirement").width != DEFAULT_LAYOUT.column("requirement").width
    assert layout.statuses == (*DEFAULT_LAYOUT.statuses, "部分完成")
    assert [c.key for c in layout.columns] == [c.key for c in DEFAULT_LAYOUT.columns]
    assert layout.styles == DEFAULT_LAYOUT.styles
    assert [c.header_style for c in layout.columns] == [c.header_style for c in DEFAULT_LAYOUT.columns]
    assert layout.version != DEFAULT_LAYOUT.version

    built = build_workbooks(config, ledger, now, units=["市司法局"], jobs=1)
    wb = openpyxl.load_workbook(built[0].path)
    ws = wb[TASK_SHEET]
    headers = [c.value for c in ws[3]]
    assert headers[1] == "重点任务"
    assert ws.column_dimensions["C"].width == pytest.approx(stored_width, abs=0.01)
    lists = wb[LISTS_SHEET]
    assert [lists.cell(r, 1).value for r in range(2, 7)] == [*DEFAULT_LAYOUT.statuses, "部分完成"]
    (status_rule,) = [dv for dv in ws.data_validations.dataValidation if dv.type == "list"]
    assert status_rule.formula1 == f"'{LISTS_SHEET}'!$A$2:$A$6"
    assert "部分完成" in status_rule.prompt
    meta = {r[0].value: r[1].value for r in wb[META_SHEET].iter_rows()}
    assert meta["template_version"] == layout.version
    # The collector parses returned files with the layout stored under that version.
    assert ledger.layout(layout.version) == layout.to_dict()


def test_moved_columns_and_fill_flags_are_read(tmp_path):
    """Swap two columns (with their 对应内容 cells) and drop a fill-in column: the layout follows."""
    path = tmp_path / "t.xlsx"
    shutil.copy(TEMPLATE, path)

    def edit(wb):
        ws = wb[TEMPLATE_TASK_SHEET]
        for row in range(3, 10):  # swap 牵头单位 (D) and 责任单位 (E)
            d, e = ws.cell(row, 4), ws.cell(row, 5)
            d.value, e.value = e.value, d.value
        ws.delete_cols(10)  # 佐证材料

    _edit(path, edit)
    keys = [c.key for c in read_template(path).columns]
    assert keys == ["number", "title", "requirement", "responsible", "lead", "role", "status", "progress",
                    "completed_on", "issues", "due"]


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (lambda wb: wb.remove(wb[TEMPLATE_STATUS_SHEET]), ["落实情况选项"]),
        (lambda wb: wb[TEMPLATE_TASK_SHEET].__setitem__("C4", "要求"), ["C4", "要求"]),
        (lambda wb: wb[TEMPLATE_TASK_SHEET].__setitem__("H5", "也许"), ["H5", "是", "否"]),
        (lambda wb: wb[TEMPLATE_TASK_SHEET].__setitem__("G5", "否"), ["G5", "落实情况"]),
        (lambda wb: wb[TEMPLATE_TASK_SHEET].__setitem__("B5", "是"), ["B5", "工作任务"]),
        (lambda wb: wb[TEMPLATE_TASK_SHEET].__setitem__("D4", "工作任务"), ["D4", "重复"]),
        (lambda wb: wb[TEMPLATE_TASK_SHEET].delete_cols(1), ["序号"]),
        (lambda wb: wb[TEMPLATE_TASK_SHEET].__setitem__("A1", None), ["A1", "标题"]),
        (lambda wb: wb[TEMPLATE_HELP_SHEET].delete_rows(1, 50), ["填报说明"]),
        (lambda wb: wb[TEMPLATE_STATUS_SHEET].__setitem__("A3", "已完成"), ["A3", "重复"]),
    ],
)
def test_broken_template_names_sheet_and_cell(tmp_path, edit, words):
    path = tmp_path / "report_template.xlsx"
    shutil.copy(TEMPLATE, path)
    _edit(path, edit)
    with pytest.raises(InputError) as err:
        read_template(path)
    message = str(err.value)
    assert "report_template.xlsx" in message
    for word in words:
        assert word in message


def test_not_a_workbook(tmp_path):
    path = tmp_path / "report_template.xlsx"
    path.write_bytes(b"not a zip file")
    with pytest.raises(InputError, match="无法打开"):
        read_template(path)


def test_theme_colours_resolve_to_rgb(tmp_path):
    """Excel's palette gives theme colours with a tint; the builder needs plain #RRGGBB."""
    path = tmp_path / "t.xlsx"
    shutil.copy(TEMPLATE, path)

    def edit(wb):
        ws = wb[TEMPLATE_TASK_SHEET]
        ws["G3"].fill = PatternFill("solid", fgColor=Color(theme=4, tint=0.7999816888943144))  # 蓝色，个性色1，淡色80%

    _edit(path, edit)
    # The file's own theme counts: xlsxwriter writes the Office 2007 theme (accent1 #4F81BD), whose
    # "lighter 80%" is #DCE6F2 (with the Office 2013+ theme it would be #DAE3F3).
    assert read_template(path).column("status").header_style["bg_color"] == "#DCE6F2"
