"""What units type, understood: statuses, dates, formula-looking text, task numbers."""

from __future__ import annotations

import datetime as dt

import pytest

from automation.collect.values import (
    ValueProblem,
    cell_ref,
    cell_text,
    looks_like_formula,
    parse_date,
    parse_status,
    parse_task_number,
)
from automation.workbook.layout import DEFAULT_LAYOUT

OPTIONS = DEFAULT_LAYOUT.statuses


@pytest.mark.parametrize(
    ("typed", "status"),
    [
        ("完成", "已完成"), ("已完成。", "已完成"), ("已办结", "已完成"), (" 已完成 ", "已完成"),
        ("进行中", "推进中"), ("正在推进", "推进中"), ("未开始", "未启动"), ("不涉及", "不适用"),
        ("推进中", "推进中"), ("", None), (None, None), ("未填报", None),
    ],
)
def test_status_synonyms(typed, status):
    assert parse_status(typed, OPTIONS) == status


def test_template_options_are_stored_in_their_class_and_unknown_is_a_problem():
    options = ("已办结", "部分完成", "未启动", "不适用")   # an office renamed 已完成, added 部分完成
    assert parse_status("部分完成", options) == "推进中"
    assert parse_status("已办结", options) == "已完成"
    assert parse_status(" 已办结。", options) == "已完成"
    with pytest.raises(ValueProblem, match="差不多.*已完成 / 推进中"):
        parse_status("差不多", OPTIONS)


@pytest.mark.parametrize(
    "typed",
    ["2021-06-30", "2021/6/30", "2021.6.30", "2021年6月30日", "2021年6月30号", "20210630", "2021-06-30 00:00:00",
     "2021年6月", "2021-6", "2021年6月底", "6月底", "6月30日", "２０２１年６月３０日", "2021年6月30日前",
     44377, 44377.0, "44377", dt.date(2021, 6, 30), dt.datetime(2021, 6, 30, 0, 0)],
)
def test_dates_people_type(typed):
    assert parse_date(typed, 2021) == dt.date(2021, 6, 30)


def test_year_end_and_month_end():
    assert parse_date("年底", 2021) == dt.date(2021, 12, 31)
    assert parse_date("2022年2月", 2021) == dt.date(2022, 2, 28)
    assert parse_date("", 2021) is None


@pytest.mark.parametrize("typed", ["下周", "2021-13-01", "2021-02-30", "3020-01-01", True, 12, dt.time(9, 30)])
def test_not_dates(typed):
    with pytest.raises(ValueProblem, match="完成时间"):
        parse_date(typed, 2021)


@pytest.mark.parametrize(
    ("text", "formula"),
    [
        ('=HYPERLINK("http://evil.example","点击")', True), ("=cmd|' /C calc'!A0", True), ("@SUM(1,2)", True),
        ("+IMPORTXML(A1)", True), ("说明 =cmd| /c calc", True), ("＝HYPERLINK(\"x\")", True),
        ("=已完成（以等号开头的文字，不是公式）", False), ("-已完成培训", False), ("+86 0599-8888001", False),
        ("已完成。", False), ("", False), ("a|b", False),
    ],
)
def test_formula_looking_text(text, formula):
    assert looks_like_formula(text) is formula


@pytest.mark.parametrize(("value", "number"), [(3, 3), (3.0, 3), ("3", 3), ("（3）", 3), ("3.", 3), ("一、总体", None),
                                                 ("", None), (0, None), (2.5, None), (True, None)])
def test_task_numbers(value, number):
    assert parse_task_number(value) == number


def test_cell_text_and_refs():
    assert cell_text("  多行\r\n文字  ") == "多行\n文字"
    assert cell_text(60.0) == "60"
    assert cell_text(dt.datetime(2021, 6, 30)) == "2021-06-30"
    assert cell_ref(0, 0) == "A1"
    assert cell_ref(9, 27) == "AB10"
