"""The same table as .xlsx, .csv (GB18030), .docx, tab text — and the odd shapes offices send."""

from __future__ import annotations

import zipfile
from pathlib import Path

import openpyxl
import pytest

from automation.errors import InputError
from automation.tasks.load import load_tasks, read_rows

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "task-table.txt"


def sample_rows() -> list[list[str]]:
    rows, _ = read_rows(SAMPLE)
    width = 5
    return [(r.cells + [""] * width)[:width] for r in rows]


def is_heading(cells: list[str]) -> bool:
    return not any(c.strip() for c in cells[1:])


def write_xlsx(path: Path, rows: list[list[str]]) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "任务表"
    ws.append(["南平市2021年政务公开工作要点任务分解表"])  # a title row above the header
    for r in rows:
        ws.append(r)
        if is_heading(r):
            ws.merge_cells(start_row=ws.max_row, start_column=1, end_row=ws.max_row, end_column=5)
    wb.save(path)


def write_docx(path: Path, rows: list[list[str]]) -> None:
    import docx

    document = docx.Document()
    document.add_paragraph("南平市2021年政务公开工作要点任务分解表")
    table = document.add_table(rows=len(rows), cols=5)
    for i, r in enumerate(rows):
        cells = table.rows[i].cells
        if is_heading(r) and i > 0:
            merged = cells[0].merge(cells[4])
            merged.text = r[0]
        else:
            for j, value in enumerate(r):
                cells[j].text = value
    document.save(path)


def records(path: Path) -> list[dict]:
    out = []
    for t in load_tasks(path).tasks:
        d = t.to_json()
        d.pop("source_row")
        out.append(d)
    return out


@pytest.fixture(scope="module")
def reference() -> list[dict]:
    return records(SAMPLE)


def test_xlsx_with_merged_headings(tmp_path, reference):
    path = tmp_path / "表.xlsx"
    write_xlsx(path, sample_rows())
    assert records(path) == reference


@pytest.mark.parametrize("encoding", ["gb18030", "utf-8-sig"])
def test_csv(tmp_path, reference, encoding):
    import csv
    import io

    buf = io.StringIO()
    csv.writer(buf).writerows(sample_rows())
    path = tmp_path / "表.csv"
    path.write_bytes(buf.getvalue().encode(encoding))
    assert records(path) == reference


def test_docx_with_merged_headings(tmp_path, reference):
    path = tmp_path / "表.docx"
    write_docx(path, sample_rows())
    assert records(path) == reference


def test_tab_separated_text(tmp_path, reference):
    path = tmp_path / "表.txt"
    path.write_text("\n".join("\t".join(r) for r in sample_rows()), encoding="utf-8")
    assert records(path) == reference


def test_xlsx_sheet_option(tmp_path, reference):
    path = tmp_path / "表.xlsx"
    write_xlsx(path, sample_rows())
    wb = openpyxl.load_workbook(path)
    wb.create_sheet("说明", 0).append(["本表由政务公开办编制"])
    wb.save(path)
    assert [t.number for t in load_tasks(path).tasks] == list(range(1, 36))  # finds the sheet with a header
    assert len(load_tasks(path, sheet="任务表").tasks) == 35
    with pytest.raises(InputError, match="没有名为“不存在”的工作表"):
        load_tasks(path, sheet="不存在")


def test_synonym_and_letter_spaced_headers_with_number_column(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(
        "序号,重点任务,具 体 要 求,牵头部门,配合单位,完成时限,进展情况,备注,分管领导\n"
        "一、第一部分,,,,,,,,\n"
        "1,公开规划,在网站公开。,市发改委,市财政局、市商务局,2021年6月底前,推进中,重点,张副市长\n"
        "2,=HYPERLINK(\"x\"),做好解读。,市政府办,各县（市、区）政府,长期坚持,,,\n",
        encoding="utf-8",
    )
    table = load_tasks(path)
    assert [t.number for t in table.tasks] == [1, 2]
    t1 = table.tasks[0]
    assert (t1.title, t1.requirement, t1.lead, t1.responsible) == (
        "公开规划", "在网站公开。", ["市发改委"], ["市财政局", "市商务局"])
    assert (t1.deadline, t1.status, t1.section, t1.section_title) == ("2021年6月底前", "推进中", "一", "第一部分")
    # unknown columns are kept, never dropped; 备注 too
    assert t1.extra == {"分管领导": "张副市长", "备注": "重点"}
    assert table.columns["分管领导"] == "extra:分管领导"
    assert table.tasks[1].title == '=HYPERLINK("x")'  # kept as text; writers must never make it live


def test_lead_and_partner_in_one_cell(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text(
        "工作任务 | 工作要求 | 责任单位\n1、做好公开 | 按要求公开。 | 市发改委牵头，市财政局、市商务局配合\n",
        encoding="utf-8",
    )
    t = load_tasks(path).tasks[0]
    assert (t.lead, t.responsible) == (["市发改委"], ["市财政局", "市商务局"])


def test_partners_marked_in_the_lead_column_are_responsible(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text(
        "工作任务 | 工作要求 | 牵头单位 | 责任单位\n"
        "1、做好公开 | 按要求公开。 | 市财政局牵头，市发改委、市商务局配合 | 各县（市、区）政府\n"
        "2、做好解读 | 按要求解读。 | 市财政局 | 市政府办牵头，市商务局\n",
        encoding="utf-8",
    )
    t1, t2 = load_tasks(path).tasks
    assert (t1.lead, t1.responsible) == (["市财政局"], ["市发改委", "市商务局", "各县（市、区）政府"])
    assert (t2.lead, t2.responsible) == (["市财政局", "市政府办"], ["市商务局"])


def test_section_title_merged_into_task_cell(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text(
        "工作任务 | 工作要求 | 牵头单位 | 责任单位\n"
        "一、深化公开 （一）做好规划 1.公开规划纲要 | 通过网站公开。 | 市发改委 | 各县（市、区）政府\n"
        "（2）归集历史规划 | 集中发布。 | 市发改委 | 各县（市、区）政府\n",
        encoding="utf-8",
    )
    table = load_tasks(path)
    t1, t2 = table.tasks
    assert (t1.section, t1.section_title, t1.subsection, t1.subsection_title, t1.title) == (
        "一", "深化公开", "（一）", "做好规划", "公开规划纲要")
    assert (t2.number, t2.title, t2.subsection) == (2, "归集历史规划", "（一）")


def test_unnumbered_rows_are_reported_not_dropped(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text(
        "工作任务 | 工作要求 | 牵头单位\n1.公开规划 | 公开。 | 市发改委\n注：本表由市政务公开办负责解释 | | \n"
        "1.重复编号 | 公开。 | 市发改委\n",
        encoding="utf-8",
    )
    table = load_tasks(path)
    assert [t.title for t in table.tasks] == ["公开规划"]
    errors = [p for p in table.problems if p.severity == "error"]
    assert [p.row for p in errors] == [3, 4]
    assert "注：本表由市政务公开办负责解释" in errors[0].raw
    assert "重复" in errors[1].message


# ------------------------------------------------------------------------- bad inputs


def test_empty_file(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(InputError, match="empty.csv：文件是空的"):
        load_tasks(path)


def test_no_recognisable_header(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("姓名 | 电话\n张三 | 123\n", encoding="utf-8")
    with pytest.raises(InputError, match="找不到表头"):
        load_tasks(path)


def test_binary_file_named_csv(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(bytes(range(256)) * 20)
    with pytest.raises(InputError, match="t.csv：不是文本表格"):
        load_tasks(path)


def test_truncated_xlsx(tmp_path):
    good = tmp_path / "good.xlsx"
    write_xlsx(good, sample_rows())
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(InputError, match="bad.xlsx：无法读取工作簿"):
        load_tasks(bad)


def test_doc_renamed_docx(tmp_path):
    path = tmp_path / "t.docx"
    path.write_bytes(b"\xd0\xcf\x11\xe0" + b"\0" * 600)
    with pytest.raises(InputError, match="不是有效的 .docx"):
        load_tasks(path)


def test_unsupported_suffix(tmp_path):
    path = tmp_path / "t.pptx"
    path.write_bytes(b"PK\x03\x04")
    with pytest.raises(InputError, match="不支持的文件类型 .pptx"):
        load_tasks(path)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="文件不存在"):
        load_tasks(tmp_path / "nope.xlsx")


def test_zip_that_is_not_a_workbook(tmp_path):
    path = tmp_path / "t.xlsx"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("hello.txt", "hi")
    with pytest.raises(InputError, match="t.xlsx：无法读取工作簿"):
        load_tasks(path)
