"""Unit cells as offices write them (automation/text.py rules the registry shares)."""

from __future__ import annotations

import pytest

from automation.text import looks_like_units, parse_unit_cell, split_units


@pytest.mark.parametrize(("cell", "names"), [
    ("市发改委、市财政局等", ["市发改委", "市财政局"]),
    ("市公安局、市民政局等市有关单位", ["市公安局", "市民政局"]),
    ("市发改委 等", ["市发改委"]),
    ("各县（市、区）政府负责落实", ["各县（市、区）政府"]),
    ("市商务局负责。", ["市商务局"]),
    ("市发改委。", ["市发改委"]),
    ("各县、市、区政府", ["各县、市、区政府"]),
    ("各县、市、区人民政府，市直有关部门", ["各县、市、区人民政府", "市直有关部门"]),
    ("各县（市、区）政府", ["各县（市、区）政府"]),
    ("各县 (市、 区 ) 政府", ["各县（市、区）政府"]),
    ("各乡镇（街道）", ["各乡镇（街道）"]),
    ("市审改办 各街道", ["市审改办", "各街道"]),
    ("市发改委,市财政局，市商务局", ["市发改委", "市财政局", "市商务局"]),
])
def test_split(cell, names):
    assert [n for n, _ in split_units(cell)] == names


@pytest.mark.parametrize("cell", ["人行南平市中心支行、南平海关", "市优化营商环境工作专班", "各金融机构",
                                  "市行政服务中心管委会", "各街道", "各县（市、区）政府负责落实。"])
def test_names_with_every_suffix_offices_use_are_units(cell):
    assert looks_like_units(cell)


def test_prose_and_statuses_are_not_units():
    assert not looks_like_units("通过门户网站公开相关信息。做好解读。")
    assert not looks_like_units("已完成")


def test_roles_as_today():
    assert parse_unit_cell("市发改委牵头，市财政局、市商务局等配合") == (
        [("市发改委", None)], [("市财政局", None), ("市商务局", None)], [])
    assert split_units("市司法局（负责市政府规章）") == [("市司法局", "负责市政府规章")]
