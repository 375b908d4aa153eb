"""Bulk rows spliced into an XlsxWriter package: escaping, styles, pre-rendered rows, failures."""

from __future__ import annotations

import zipfile
from pathlib import Path

import openpyxl
import pytest
import xlsxwriter
from python_calamine import CalamineWorkbook

from automation.workbook.xlsxbulk import BulkSheet, RowWriter, splice, xml_text

HOSTILE = ["=1+1", '=HYPERLINK("http://x","y")', "=cmd|' /c calc'!A1", "<b>&amp;</b>", "a\x01b\x1fc",
           "literal _x000D_ stays", " leading and trailing ", "两行\n文字", "制表\t符"]


def staging(path: Path, sheet: str = "数据") -> None:
    """An XlsxWriter workbook with a header row, column styles, frozen panes and a second sheet."""
    wb = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False, "strings_to_urls": False})
    ws = wb.add_worksheet(sheet)
    wrap = wb.add_format({"text_wrap": True, "border": 1})
    center = wb.add_format({"align": "center", "bold": True})
    ws.set_column(0, 0, 30, wrap)
    ws.set_column(1, 1, 8, center)
    ws.write_string(0, 0, "文本")
    ws.write_string(0, 1, "数字")
    ws.freeze_panes(1, 0)
    ws.autofilter(0, 0, len(HOSTILE), 1)
    wb.add_worksheet("其他").write_string(0, 0, "不动")
    wb.close()


def rows(w: RowWriter) -> None:
    """Hostile texts as inline strings, repeated labels as shared strings, numbers."""
    for i, text in enumerate(HOSTILE):
        w.row([text, i + 1, w.memo(HOSTILE[i % 3]), w.memo("共享文字")], 30)


def test_escaping_is_what_excel_reads_back():
    assert xml_text("a<b>&c") == "a&lt;b&gt;&amp;c"
    assert xml_text("\x01_x0041_\ufffe") == "_x0001__x005F_x0041__xFFFE_"
    assert xml_text("普通文字\n第二行") == "普通文字\n第二行"


def test_rows_are_inline_text_with_the_column_styles(tmp_path):
    src, out = tmp_path / "src.xlsx", tmp_path / "out.xlsx"
    staging(src)
    splice(src, out, [BulkSheet("数据", 1, len(HOSTILE), 4, rows)])
    wb = openpyxl.load_workbook(out)
    ws = wb["数据"]
    assert ws.dimensions == f"A1:D{len(HOSTILE) + 1}"
    got = [(c.value, c.data_type) for c in ws["A"][1:]]
    assert [d for _v, d in got] == ["s"] * len(HOSTILE)
    assert [r[1].value for r in ws.iter_rows(min_row=2)] == list(range(1, len(HOSTILE) + 1))
    assert ws["A2"].alignment.wrap_text and ws["B2"].font.b and ws["A2"].border.left.style == "thin"
    assert ws.row_dimensions[2].height == 30
    assert wb["其他"]["A1"].value == "不动" and ws.freeze_panes == "A2"
    # calamine decodes the _xHHHH_ escapes like Excel does: every text comes back exactly.
    back = CalamineWorkbook.from_path(str(out)).get_sheet_by_name("数据").to_python()
    assert [r[0] for r in back[1:]] == HOSTILE
    with zipfile.ZipFile(out) as z:
        xml = z.read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in xml and 't="inlineStr"' in xml and 't="s"' in xml
    assert '<t xml:space="preserve"> leading and trailing </t>' in xml and "<t>=1+1</t>" in xml


def test_shared_strings_are_appended_to_the_table(tmp_path):
    src, out = tmp_path / "src.xlsx", tmp_path / "out.xlsx"
    staging(src)
    splice(src, out, [BulkSheet("数据", 1, len(HOSTILE), 4, rows)])
    with zipfile.ZipFile(src) as z:
        before = z.read("xl/sharedStrings.xml").decode()
    with zipfile.ZipFile(out) as z:
        after = z.read("xl/sharedStrings.xml").decode()
    # XlsxWriter's three strings (文本, 数字, 不动) keep their places; four new ones, 2 × 9 new references.
    assert 'count="3" uniqueCount="3"' in before
    assert f'count="{3 + 2 * len(HOSTILE)}" uniqueCount="7"' in after
    assert after.startswith(before[:before.index("</sst>")].replace('count="3" uniqueCount="3"',
                                                                     f'count="{3 + 2 * len(HOSTILE)}" uniqueCount="7"'))
    ws = openpyxl.load_workbook(out)["数据"]
    assert [r for r in ws.iter_rows(min_row=2, min_col=3, max_col=4, values_only=True)] == [
        (HOSTILE[i % 3], "共享文字") for i in range(len(HOSTILE))]
    assert ws["A1"].value == "文本" and ws["C2"].data_type == "s"


def test_a_wrong_row_count_is_an_error(tmp_path):
    src = tmp_path / "src.xlsx"
    staging(src)
    with pytest.raises(RuntimeError, match="wrote 9 rows, expected 3"):
        splice(src, tmp_path / "out.xlsx", [BulkSheet("数据", 1, 3, 4, rows)])
    with pytest.raises(ValueError, match="no worksheet"):
        splice(src, tmp_path / "out.xlsx", [BulkSheet("没有", 1, 3, 4, rows)])
