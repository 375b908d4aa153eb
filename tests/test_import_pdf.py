"""PDF task tables as a 红头文件's attachment has them: LibreOffice-made PDFs of Word tables.

The fixtures (tests/fixtures/import/table_*.pdf) and the script that makes them
(scripts/make_import_fixtures.py) are committed together; the texts they hold are in
scripts/import_fixture_texts.py, so each task is compared with what the document says.
"""

from __future__ import annotations

import pytest

from automation.cli import main
from automation.errors import InputError
from automation.ledger import Ledger
from automation.tasks.load import load_tasks, read_rows
from tests.import_kit import FIXTURES, fixture_texts, problems, units

TEXTS = fixture_texts()


@pytest.fixture(scope="module")
def sections():
    return load_tasks(FIXTURES / "table_sections.pdf")


@pytest.fixture(scope="module")
def deadlines():
    return load_tasks(FIXTURES / "table_deadlines.pdf")


def test_every_task_of_a_table_over_four_pages_word_for_word(sections):
    expected = [(cat, task) for cat, tasks in TEXTS.SECTIONS for task in tasks]
    assert [t.number for t in sections.tasks] == list(range(1, 21))
    for task, (category, (title, requirement, lead, responsible)) in zip(sections.tasks, expected, strict=True):
        assert (task.title, task.requirement) == (title, requirement), task.number
        assert (task.lead, task.responsible) == (units(lead), units(responsible)), task.number
        assert task.section_title == category.split("、", 1)[1]


def test_the_category_cell_merged_down_is_carried_to_every_task_across_pages(sections):
    assert sections.sections == ["一", "二", "三", "四"]
    # tasks 4-5 (page 2) and 11-12 (page 3) sit under a 类别 cell that began on the page before
    by_number = {t.number: t.section for t in sections.tasks}
    assert [by_number[n] for n in (1, 4, 5, 6, 10, 11, 12, 16, 20)] == list("一一一二二三三四四")


def test_the_header_repeated_on_every_page_is_read_once(sections):
    rows, _ = read_rows(FIXTURES / "table_sections.pdf")
    headers = [r for r in rows if r.cells and r.cells[0] == "序号"]
    table_pages = {r.page for r in rows if not r.text}
    assert table_pages == {1, 2, 3} and [r.page for r in headers] == [1, 2, 3]
    assert not problems(sections, "error")
    assert "序号" not in [t.title for t in sections.tasks]


def test_rows_split_by_a_page_break_are_joined_not_new_tasks(sections):
    joined = problems(sections, "info", "换页处断开")
    assert [(p.sheet, p.row) for p in joined] == [("第 2 页", 2), ("第 3 页", 2)]
    # the tail of task 5's title and of its unit cell (「各县」|「（市、区）政府」) came back together
    task5 = sections.tasks[4]
    assert task5.title == "做好医疗保障信息公开" and task5.responsible == ["各县（市、区）政府"]


def test_two_units_typed_on_two_lines_of_a_narrow_cell_stay_two(sections):
    assert sections.tasks[0].lead == ["市发改委", "市财政局"]


def test_text_around_the_table_is_reported_never_a_task(sections):
    before = problems(sections, "info", "表头之前")
    assert [p.raw for p in before] == ["附件", TEXTS.SECTIONS_TITLE, TEXTS.SECTIONS_PREAMBLE]
    after = [p.raw for p in problems(sections, "info", "表格外的文字")]
    assert after == TEXTS.SECTIONS_AFTER + TEXTS.SECTIONS_SIGNATURE
    # the page numbers in the footer (「— 2 —」) are neither tasks nor problems
    assert not [p for p in sections.problems if "—" in p.raw]
    assert sections.year == 2022 and sections.year_source == "标题"


def test_no_numbers_a_deadline_column_and_a_row_split_by_a_page_break(deadlines):
    assert [t.number for t in deadlines.tasks] == list(range(1, 13))  # numbered in row order
    for task, (title, measure, unit, deadline) in zip(deadlines.tasks, TEXTS.DEADLINES, strict=True):
        assert (task.title, task.requirement, task.responsible, task.deadline) == (title, measure, [unit], deadline)
    assert [p.sheet for p in problems(deadlines, "info", "换页处断开")] == ["第 2 页"]
    assert not problems(deadlines, "error") and not problems(deadlines, "warning")
    due = {t.deadline: t.due_date for t in deadlines.tasks}
    assert due == {
        "2022年6月底前": "2022-06-30", "年底前": "2022-12-31", "持续推进": None, "三季度": "2022-09-30",
        "长期坚持": None, "2022年9月": "2022-09-30", "6月底前": "2022-06-30", "2023年3月底前": "2023-03-31",
        "每季度": None, "2022年12月": "2022-12-31",
    }
    assert not any("未归类" in t.extra for t in deadlines.tasks)  # 「持续推进」 in 完成时限 is a deadline


def test_a_scan_is_refused_with_what_to_do():
    with pytest.raises(InputError, match="scanned.pdf：这是扫描件.*Word 原件或可复制文字的 PDF.*OCR"):
        load_tasks(FIXTURES / "scanned.pdf")


def test_a_damaged_pdf_is_one_clear_error(tmp_path):
    bad = tmp_path / "任务表.pdf"
    bad.write_bytes((FIXTURES / "table_sections.pdf").read_bytes()[:3000])
    with pytest.raises(InputError, match="任务表.pdf：.*PDF"):
        load_tasks(bad)
    not_pdf = tmp_path / "假的.pdf"
    not_pdf.write_bytes(b"this is not a pdf at all")
    with pytest.raises(InputError, match="假的.pdf：无法读取 PDF"):
        load_tasks(not_pdf)


def test_init_takes_a_pdf(config_file, capsys):
    pdf = FIXTURES / "table_sections.pdf"
    code = main(["--config", str(config_file), "init", "--tasks", str(pdf)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "20 项任务" in out
    with Ledger.open(config_file.parent / "var") as led:
        stored = led.tasks(1)
        assert len(stored) == 20 and stored[0].lead == ["市发改委", "市财政局"]
        assert led.execute("SELECT source_name FROM table_revisions").fetchone()[0] == "table_sections.pdf"
    assert main(["--config", str(config_file), "init", "--tasks", str(pdf)]) == 0
    assert "未做改动" in capsys.readouterr().out


def test_a_cell_cut_by_a_page_break_is_joined_without_a_break_inside_a_name():
    """The bench's 20-page table repeats 20 tasks seven times; page breaks cut rows at different
    places each time, and every copy must come out the same (units included)."""
    from automation.tasks.pdf import join_split

    assert join_split("市市场监", "管局") == "市市场监管局"
    assert join_split("市发改委", "市财政局") == "市发改委\n市财政局"
    assert join_split("ISO", "9001") == "ISO 9001"
    # a last line that ended short of the cell's edge was a paragraph end, whatever the characters
    assert join_split("市妇联", "市残联", wrapped=False) == "市妇联\n市残联"
    assert join_split("完成情况。", "2.开展评估", wrapped=False) == "完成情况。\n2.开展评估"
    table = load_tasks(FIXTURES / "bench_20pages.pdf")
    assert len(table.tasks) == 140
    first = {t.number: t for t in table.tasks[:20]}
    for t in table.tasks:
        same = first[(t.number - 1) % 20 + 1]
        assert (t.title, t.lead, t.responsible) == (same.title, same.lead, same.responsible), t.number
    assert not any(p.severity == "warning" for p in table.problems)
