"""Word 分工方案 written as numbered paragraphs (not a table), as .docx and pasted as .txt."""

from __future__ import annotations

import pytest

from automation.errors import InputError
from automation.tasks.load import load_tasks
from tests.import_kit import FIXTURES, problems


def records(table):
    out = []
    for t in table.tasks:
        d = t.to_json()
        d.pop("source_row")
        out.append(d)
    return out


@pytest.fixture(scope="module")
def labels():
    return load_tasks(FIXTURES / "fengong_labels.docx")


@pytest.fixture(scope="module")
def inline():
    return load_tasks(FIXTURES / "fengong_inline.docx")


def test_numbered_paragraphs_with_label_lines(labels):
    assert labels.shape == "paragraphs"
    assert [t.number for t in labels.tasks] == list(range(1, 8))
    assert labels.sections == ["一", "二"] and len(labels.subsections) == 4
    t1 = labels.tasks[0]
    assert (t1.section_title, t1.subsection, t1.subsection_title) == (
        "围绕稳定宏观经济大盘加强政策发布解读", "（一）", "做好稳增长政策公开")
    assert t1.title == "及时公开稳增长政策措施"
    assert t1.requirement.startswith("全面梳理减税降费") and t1.requirement.endswith("动态更新政策清单。")
    assert (t1.lead, t1.responsible) == (["市发改委"], ["市财政局", "市工信局", "市商务局"])  # 「等」 dropped
    assert (t1.deadline, t1.due_date) == ("2022年6月底前", "2022-06-30")


def test_every_label_gives_its_role(labels):
    t2, t4, t6 = labels.tasks[1], labels.tasks[3], labels.tasks[5]
    assert (t2.lead, t2.responsible) == (["市工信局"], ["市数字发展中心", "市市场监管局"])  # 牵头责任单位 / 协同责任单位
    assert (t4.lead, t4.responsible) == (["市数字发展中心"], ["市直有关部门"])  # 配合单位
    assert t6.responsible == ["各县（市、区）政府"]  # 「负责落实」 dropped


def test_a_leader_line_is_a_person_kept_as_a_note_never_a_unit(labels):
    t2, t5 = labels.tasks[1], labels.tasks[4]
    assert t2.extra == {"牵头负责领导": "陈明副市长"} and t5.extra == {"责任领导": "李华副市长"}
    names = {n for t in labels.tasks for n in (*t.lead, *t.responsible)}
    assert not any("市长" in n for n in names)


def test_preamble_signature_and_closing_prose_are_reported_not_tasks(labels):
    preamble = [p.raw for p in problems(labels, "info", "前言")]
    assert preamble[:4] == ["南平市人民政府办公室关于印发南平市2022年政务公开工作要点任务分工方案的通知",
                            "南政办〔2022〕18号", "各县（市、区）人民政府，市直各单位：",
                            "现将《南平市2022年政务公开工作要点任务分工方案》印发给你们，请结合实际认真贯彻落实。"]
    assert "2022年5月16日" in preamble and "（此件主动公开）" in preamble
    # 三、保障措施: headings with prose, no tasks under them — said so, paragraph by paragraph
    prose = [p.raw for p in problems(labels, "info", "说明文字")]
    assert prose == ["各地各部门要高度重视政务公开工作，明确分管领导和工作机构，确保各项任务落到实处。",
                     "市政务公开办将对任务落实情况进行跟踪督办，督办结果纳入年度政务公开考核。"]
    assert not problems(labels, "error") and not problems(labels, "warning")
    assert "保障措施" not in [t.section_title for t in labels.tasks]


def test_the_same_text_pasted_as_txt_reads_the_same(labels):
    assert records(load_tasks(FIXTURES / "fengong_labels.txt")) == records(labels)
    assert records(load_tasks(FIXTURES / "fengong_inline.txt")) == records(load_tasks(FIXTURES / "fengong_inline.docx"))


def test_units_inline_at_the_end_of_a_task(inline):
    t1, t2, t3 = inline.tasks[:3]
    assert t1.title == "持续精简行政许可事项，动态调整行政许可事项清单并向社会公布"
    assert (t1.lead, t1.responsible) == (["市审改办"], ["市直有关部门"])
    assert (t2.lead, t2.responsible) == (["市司法局"], ["市公安局", "市民政局"])  # 「等市有关单位」 dropped
    assert t3.lead == ["市市场监管局"]
    # 「A牵头，B配合」 in brackets at the end
    assert (inline.tasks[3].lead, inline.tasks[3].responsible[:1]) == (["市市场监管局"], ["市直有关部门"])


def test_a_note_sets_a_unit_for_every_later_task_and_the_report_says_so(inline):
    assert "各县市区" not in inline.tasks[0].responsible + inline.tasks[1].responsible
    assert all(t.responsible[-1] == "各县市区" for t in inline.tasks[2:])
    note = problems(inline, "info", "以下均需各县市区落实")
    assert len(note) == 1 and "其后 6 项任务（第 3–8 项）" in note[0].message and "各县市区" in note[0].message


def test_numbers_restarting_in_each_part_are_renumbered_the_written_one_kept(inline):
    assert [t.number for t in inline.tasks] == list(range(1, 9))
    assert [t.extra.get("原编号") for t in inline.tasks] == [None, None, None, "1", "2", "3", "1", "2"]
    assert problems(inline, "info", "重新开始")


def test_unit_names_as_offices_write_them(inline):
    t5, t6, t7, t8 = inline.tasks[4:8]
    assert (t5.lead, t5.responsible[:1]) == (["人行三明市中心支行", "市金融监管局"], ["各金融机构"])
    assert t6.lead == ["三明海关"]
    # units on a line of their own in brackets; 「各县、市、区政府」 is one name
    assert (t7.lead, t7.responsible[:2]) == (["市行政服务中心管委会"], ["市直有关部门", "各县、市、区政府"])
    assert t7.requirement.startswith("（1）梳理公布第一批")  # the (1) (2) points stay in their task
    assert (t8.lead, t8.responsible[:1]) == (["市优化营商环境工作专班"], ["各乡镇（街道）"])
    assert t8.unit_notes == {}


def test_closing_prose_after_the_last_task_is_reported(inline):
    assert [p.raw for p in problems(inline, "info", "说明文字")] == ["各牵头单位请于每季度末将工作进展报送市审改办。"]


def test_prose_between_two_tasks_is_a_skipped_row_and_a_unit_line_without_task_too(tmp_path):
    path = tmp_path / "方案.txt"
    path.write_text(
        "某市2022年重点任务分工方案\n"
        "责任单位：市发改委\n"
        "一、重点任务\n"
        "1.做好政策公开。\n牵头单位：市发改委\n"
        "这一段本来是一项任务，编号丢了。\n"
        "2.做好政策解读。\n牵头单位：市政府办\n"
        "3.做好舆情回应。\n",
        encoding="utf-8",
    )
    table = load_tasks(path)
    assert [t.title for t in table.tasks] == ["做好政策公开", "做好政策解读", "做好舆情回应"]
    skipped = problems(table, "error")
    assert [(p.row, p.raw) for p in skipped] == [(2, "责任单位：市发改委"), (6, "这一段本来是一项任务，编号丢了。")]
    assert "单位行前面没有任务" in skipped[0].message
    assert [p.task_number for p in problems(table, "warning")] == [3]  # no unit
    assert problems(table, "info", "前言")[0].raw == "某市2022年重点任务分工方案"
    # the unit line before any task is given to no task
    assert all("市发改委" not in t.responsible for t in table.tasks)


def test_a_heading_followed_straight_by_unit_lines_is_the_task(tmp_path):
    path = tmp_path / "方案.txt"
    path.write_text("一、重点任务\n（一）加强政策解读。\n牵头单位：市政府办\n（二）做好舆情回应\n牵头单位：市委网信办\n",
                    encoding="utf-8")
    table = load_tasks(path)
    assert [(t.number, t.title, t.lead) for t in table.tasks] == [
        (1, "加强政策解读", ["市政府办"]), (2, "做好舆情回应", ["市委网信办"])]
    assert len(problems(table, "info", "已作为第")) == 2


def test_text_that_is_neither_a_table_nor_a_plan_is_refused(tmp_path):
    path = tmp_path / "随笔.txt"
    path.write_text("今天天气很好。\n我们去公园散步。\n", encoding="utf-8")
    with pytest.raises(InputError, match="找不到表头，也不是分条列出的任务分工方案"):
        load_tasks(path)
