"""Text copied out of web pages and PDF viewers (one cell per line), and old office formats."""

from __future__ import annotations

import datetime as dt
import shutil

import pytest

from automation import office
from automation.errors import InputError
from automation.tasks.load import load_tasks
from tests.import_kit import FIXTURES, fixture_texts, problems

TEXTS = fixture_texts()
needs_soffice = pytest.mark.skipif(office.soffice() is None, reason="LibreOffice (soffice) is not installed")


@pytest.fixture(scope="module")
def web():
    return load_tasks(FIXTURES / "web_extract.txt")


def test_a_web_page_extract_rebuilds_its_rows(web):
    assert [t.number for t in web.tasks] == [1, 2, 3, 4, 5, 6]  # the unlabelled number column
    for task, (_group, title, requirement, units, deadline) in zip(web.tasks, TEXTS.WEB_ROWS, strict=True):
        assert (task.title, task.requirement, task.deadline) == (title, requirement, deadline)
        assert task.responsible == units.split("、")
    assert web.columns["工作任务"] == "title" and web.columns["具体要求"] == "requirement"  # letter-spaced
    assert not problems(web, "error") and not problems(web, "warning")


def test_a_group_cell_covering_several_tasks_is_inherited(web):
    groups = [(t.section, t.section_title) for t in web.tasks]
    assert groups == [("一", "政务服务")] * 3 + [("二", "数据共享")] * 2 + [("三", "安全保障")]


def test_the_metadata_table_before_the_header_is_skipped_and_reported(web):
    before = [p.raw for p in problems(web, "info", "表头之前")]
    assert "索引号： | 11350400MB1D6543XK/2021-00172" in before and "文号： | 明政办〔2021〕21号" in before
    assert not any("索引号" in t.title for t in web.tasks)
    assert [p.raw for p in problems(web, "info", "表格外")] == ["三明市人民政府办公室", "2021年4月19日"]
    assert web.year == 2021 and web.tasks[0].due_date == "2021-06-30"


def test_a_viewer_extract_with_headings_merged_into_the_first_task_and_a_title_only_row():
    table = load_tasks(FIXTURES / "viewer_extract.txt")
    assert [(t.number, t.section, t.title) for t in table.tasks] == [
        (1, "一", "完善重大行政决策预公开制度"), (2, "一", "推进政府常务会议开放"), (3, "二", "公开重点工作落实情况"),
        (4, "二", "做好审计结果公开"), (5, "二", "开展政务公开第三方评估"), (6, "二", "做好政务公开年度报告")]
    assert table.tasks[0].section_title == "推进决策公开"
    assert table.tasks[0].requirement == TEXTS.VIEWER_ROWS[0][1]  # wrapped over two lines, joined
    assert table.tasks[5].responsible == ["市直有关部门", "各县（市、区）政府"]
    # the title-only row is a task, and a warning says it names no unit
    assert [p.task_number for p in problems(table, "warning")] == [5]


def test_a_shared_unit_cell_is_inherited_where_the_row_fits_best(tmp_path):
    cells = ["序号", "工作任务", "具体要求", "责任单位", "完成时限",
             "1", "公开规划", "在网站公开各类规划。", "市发改委、市自然资源局", "6月底前",
             "2", "解读规划", "做好规划解读工作。", "年底前",  # 责任单位 merged with the row above
             "3", "公开预算", "公开预决算信息。", "市财政局", "持续推进"]
    path = tmp_path / "网页.txt"
    path.write_text("".join(f"{c}\n|\n" for c in cells), encoding="utf-8")
    t1, t2, t3 = load_tasks(path, today=dt.date(2022, 1, 1)).tasks
    assert (t2.responsible, t2.deadline, t2.due_date) == (["市发改委", "市自然资源局"], "年底前", "2022-12-31")
    assert (t3.responsible, t3.deadline) == (["市财政局"], "持续推进")


def test_cells_beyond_the_header_are_placed_by_content_or_reported(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("工作任务 | 工作要求 | 牵头单位\n1.公开规划 | 公开。 | 市发改委 | 市财政局 | 推进中 | 另附说明\n",
                    encoding="utf-8")
    table = load_tasks(path)
    task = table.tasks[0]
    assert (task.lead, task.extra) == (["市发改委", "市财政局"], {"未归类": "推进中；另附说明"})
    assert problems(table, "info", "超出表头") and problems(table, "info", "未归类")


@pytest.mark.slow
@needs_soffice
@pytest.mark.parametrize("name", ["fengong_labels.doc", "fengong_labels.wps"])
def test_old_word_files_are_converted_by_libreoffice(name):
    converted = load_tasks(FIXTURES / name)
    original = load_tasks(FIXTURES / "fengong_labels.docx")
    assert [t.to_json() for t in converted.tasks] == [t.to_json() for t in original.tasks]


@pytest.mark.slow
@needs_soffice
def test_an_et_workbook_is_converted_by_libreoffice():
    table = load_tasks(FIXTURES / "table_deadlines.et")
    assert [(t.title, t.deadline) for t in table.tasks] == [(r[0], r[3]) for r in TEXTS.DEADLINES]
    assert table.year == 2022  # from the title row above the header


def test_old_formats_without_libreoffice_are_refused_with_how_to_convert(monkeypatch, tmp_path):
    monkeypatch.setattr(office, "soffice", lambda: None)
    path = tmp_path / "任务表.wps"
    shutil.copyfile(FIXTURES / "fengong_labels.wps", path)
    with pytest.raises(InputError, match="任务表.wps：.*没有安装 LibreOffice.*另存为” .docx"):
        load_tasks(path)
    path = tmp_path / "任务表.et"
    shutil.copyfile(FIXTURES / "table_deadlines.et", path)
    with pytest.raises(InputError, match="另存为” .xlsx"):
        load_tasks(path)
