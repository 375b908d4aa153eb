"""The bundled sample (2021 Nanping list, pasted out of a PDF) parses exactly."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from automation.tasks.load import load_tasks

ROOT = Path(__file__).resolve().parent.parent
CJK = r"[\u4e00-\u9fff\u3000-\u303f\uff00-\uffef“”‘’]"
CJK_SPACE = re.compile(f"{CJK}\\s+{CJK}")

S1 = ("一", "紧扣“十四五”开好局起好步深化政务公开")
S2 = ("二", "紧扣宏观政策落地见效深化政务公开")
S3 = ("三", "紧扣强基础抓基层深化政务公开")
S4 = ("四", "紧扣政府信息公开条例实施深化政务公开")
BOTH = ["市直有关部门", "各县（市、区）政府"]


def rec(number, section, sub, sub_title, title, requirement, lead, responsible, row, notes=None):
    return {
        "number": number, "section": section[0], "section_title": section[1], "subsection": sub,
        "subsection_title": sub_title, "title": title, "requirement": requirement, "lead": lead,
        "responsible": responsible, "status": "已完成", "deadline": None, "due_date": None, "unit_notes": notes or {}, "extra": {},
        "source_row": row,
    }


EXPECTED = {
    1: rec(1, S1, "（一）", "做好各类规划主动公开", "主动公开“十四五”规划纲要、国土空间规划、专项规划和区域规划等",
           "通过本级政府门户网站设立专题，并在政府信息公开专栏集中展示。", ["市发改委", "市自然资源局"],
           ["各县（市、区）政府"], 4),
    # No 工作要求: the lead units slid into the requirement column.
    5: rec(5, S1, "（二）", "做好市场规则标准和监管执法信息公开", "及时公开建设高标准市场体系行动方案的落实举措", "",
           ["市发改委", "市市场监管局", "市商务局"], BOTH, 9),
    # No 牵头单位: the single unit cell is the 责任单位.
    6: rec(6, S1, "（二）", "做好市场规则标准和监管执法信息公开", "加强监管执法信息公开",
           "加强反垄断与反不正当竞争执法信息公开工作，一视同仁公正监管，营造诚信守法的市场环境，有效维护人民群众利益。",
           [], BOTH, 10),
    12: rec(12, S2, "（一）", "持续加强重大政策发布解读",
            "以扎实做好“六稳”工作、全面落实“六保”任务以及统筹抓好“五促一保一防一控”工作为重点，做好政策解读发布工作",
            "及时发布保持宏观政策连续性稳定性可持续性、促进经济运行在合理区间，深入推进重点领域改革、更大激发市场主体活力，"
            "依靠创新推动实体经济高质量发展、培育壮大新动能，坚持扩大内需战略基点、充分挖掘国内市场潜力，全面实施乡村振兴战略，"
            "实行高水平对外开放，加强污染防治和生态建设，切实增进民生福祉，以及促生产、促消费、促项目建设、促外经贸、促旅游、"
            "保基本、防风险、控疫情等方面出台的重大政策，及时发布权威信息，开展深入解读。", [], BOTH, 20),
    14: rec(14, S2, "（二）", "不断改进政策解读工作方式", "加强政策咨询服务",
            "畅通政策咨询渠道，用好“政企直通车”“12345热线”等平台，积极解答政策执行机关和企业、群众的咨询。"
            "有条件的地方可在实体服务大厅和政府网站，设立政策咨询综合服务窗口，为企业和群众提供“一号答”“一站式”的政策咨询服务。",
            [], BOTH, 23),
    21: rec(21, S3, "（一）", "做好政务信息管理工作", "推进地方政府规章集中统一公开",
            "2021年底前，具有规章制定权的地方政府将本地区现行有效规章通过政府门户网站的政府信息公开专栏集中公开，方便公众查询使用。",
            [], ["市司法局", "各县（市、区）政府"], 33, {"市司法局": "负责市政府规章"}),
    26: rec(26, S3, "（二）", "完善政务公开平台", "办好政府公报。",
            "完善政府公报数据库，推进数字化利用，通过政务新媒体等渠道加强政府公报内容传播。", ["市政府办"],
            ["各县（市、区）政府"], 39),
    27: rec(27, S3, "（三）", "推进基层政务公开标准化规范化", "及时完善基层政务公开市级标准指引",
            "跟踪省政府部门各领域基层政务公开标准指引出台和调整完善情况，发布（修订）对应市级标准指引。", [],
            ["市直有关部门"], 41),
    32: rec(32, S4, "（一）", "提高依申请公开工作质量", "依法落实信息处理费有关规定",
            "正确适用《政府信息公开信息处理费管理办法》和省财政厅《关于做好政府信息公开信息处理费收入收缴管理有关事项的通知》"
            "（闽财非税函〔2021〕1号），严格依照规定的标准、程序、方式计收信息处理费。", [], BOTH, 48),
}


@pytest.fixture(scope="module")
def table():
    return load_tasks(ROOT / "samples" / "task-table.txt")


def test_sample_is_kept_byte_for_byte():
    # SHA-256 of ../shared/seed/task-table.txt, the published extraction (never edited here)
    data = (ROOT / "samples" / "task-table.txt").read_bytes()
    assert hashlib.sha256(data).hexdigest() == "2da131bb3ecd0acf38908900de60e45e54ef721cdcc5943dbecd85b61d7f9ac9"
    shared = ROOT.parent / "shared" / "seed" / "task-table.txt"
    if shared.exists():
        assert data == shared.read_bytes()


def test_counts(table):
    assert [t.number for t in table.tasks] == list(range(1, 36))
    assert table.sections == ["一", "二", "三", "四"]
    assert len(table.subsections) == 13
    assert [s for _, s in table.subsections].count("（一）") == 4
    assert not [p for p in table.problems if p.severity == "error"]


@pytest.mark.parametrize("number", sorted(EXPECTED))
def test_complete_records(table, number):
    assert table.tasks[number - 1].to_json() == EXPECTED[number]


def test_json_keys_are_the_public_contract(table):
    assert list(table.tasks[0].to_json()) == [
        "number", "section", "section_title", "subsection", "subsection_title", "title", "requirement", "lead",
        "responsible", "status", "deadline", "due_date", "unit_notes", "extra", "source_row",
    ]


def test_no_space_between_chinese(table):
    for task in table.tasks:
        for key, value in task.to_json().items():
            texts = value if isinstance(value, list) else list(value.values()) if isinstance(value, dict) else [value]
            for text in texts:
                if isinstance(text, str):
                    assert not CJK_SPACE.search(text), (task.number, key, text)


def test_raw_cells_kept_for_traceability(table):
    assert table.tasks[5].raw["工作要求"].startswith("加强反垄断与反不正当竞争执 法信息")


def test_every_repair_is_reported(table):
    repaired = {p.row for p in table.problems if p.severity == "info"}
    # tasks 5, 6, 12 and 27 slid left; their source rows are reported
    assert {9, 10, 20, 41} <= repaired
