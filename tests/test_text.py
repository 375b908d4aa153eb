"""Properties of text normalisation and unit splitting (hypothesis)."""

from __future__ import annotations

import re

from hypothesis import example, given, settings
from hypothesis import strategies as st

from automation.text import (
    is_cjk,
    normalize_status,
    normalize_text,
    parse_unit_cell,
    split_units,
)

HAN = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5)
PUNCT = st.sampled_from(list("，。、；：“”（）《》,;:()"))
LATIN = st.sampled_from(list("abcXYZ0123456789-_"))
SPACE = st.sampled_from([" ", "  ", "\u3000", "\n", "\t", "\u00a0"])
MIXED = st.lists(st.one_of(HAN, PUNCT, LATIN, SPACE), max_size=60).map("".join)


@given(MIXED)
@example(",,一")  # folding one comma puts the next one beside Chinese
@example("一,,")
@example("(,一")
def test_normalisation_is_idempotent(text):
    once = normalize_text(text)
    assert normalize_text(once) == once


@given(MIXED)
def test_no_whitespace_touches_chinese(text):
    out = normalize_text(text)
    for m in re.finditer(r"\s", out):
        i = m.start()
        assert not is_cjk(out[i - 1]) and not is_cjk(out[i + 1]), out
    assert out == out.strip()
    assert "  " not in out


@given(MIXED)
def test_chinese_characters_are_kept_in_order(text):
    ideographs = [c for c in text if "\u4e00" <= c <= "\u9fa5"]
    assert [c for c in normalize_text(text) if "\u4e00" <= c <= "\u9fa5"] == ideographs


@given(st.lists(st.text(alphabet="abcdefgXYZ0123456789", min_size=1, max_size=8), min_size=1, max_size=6),
       st.lists(SPACE, min_size=6, max_size=6))
def test_space_between_latin_words_is_kept(words, spaces):
    text = "".join(w + s for w, s in zip(words, spaces, strict=False))
    assert normalize_text(text) == " ".join(words)


@given(st.lists(HAN, min_size=1, max_size=5).map("".join))
def test_half_width_punctuation_folds_in_chinese_context(body):
    assert normalize_text(f"各县 ({body}、 区 ) 政府,{body}") == f"各县（{body}、区）政府，{body}"


def test_examples_from_the_sample():
    assert normalize_text("执 法信息") == "执法信息"
    assert normalize_text("用好 “政企直通车”“12345 热线”等平台") == "用好“政企直通车”“12345热线”等平台"
    assert normalize_text("各县 (市、 区 ) 政府") == "各县（市、区）政府"
    assert normalize_text("(闽财非税函〔2021〕1 号 ),严格") == "（闽财非税函〔2021〕1号），严格"
    assert normalize_text("Windows 10 和 WPS Office") == "Windows 10和WPS Office"
    assert normalize_text("1,000 元") == "1,000元"
    assert normalize_text("http://www.np.gov.cn 网站") == "http://www.np.gov.cn网站"


# ------------------------------------------------------------------------- units

SUFFIX = st.sampled_from(["局", "委", "办", "中心", "政府", "管委会"])
NAME = st.tuples(st.just("市"), st.lists(HAN, min_size=1, max_size=6).map("".join), SUFFIX).map("".join)
NOTE = st.one_of(st.none(), st.lists(HAN, min_size=2, max_size=8).map("".join))
SEP = st.sampled_from([" ", "、", ",", "，", "；", " 、", ", "])


@settings(max_examples=150)
@given(st.lists(st.tuples(NAME, NOTE), min_size=1, max_size=5, unique_by=lambda x: x[0]), st.data())
def test_split_units_round_trip(units, data):
    parts = []
    for name, note in units:
        text = name + (f"（{note}）" if note else "")
        if data.draw(st.booleans(), label="half-width"):
            text = text.replace("（", " ( ").replace("）", " ) ")
        parts.append(text)
    cell = parts[0]
    for p in parts[1:]:
        cell += data.draw(SEP, label="sep") + p
    assert split_units(cell) == [(n, note) for n, note in units]


@settings(max_examples=100)
@given(st.lists(NAME, min_size=1, max_size=4, unique=True), st.data())
def test_group_names_with_brackets_stay_whole(names, data):
    group = "各县（市、区）政府"
    cell = data.draw(SEP).join([*names, "各县 (市、 区 ) 政府"])
    assert split_units(cell) == [(n, None) for n in names] + [(group, None)]


def test_unit_examples():
    assert split_units("市司法局 ( 负责市政府规章 ) 、各县 (市、 区 ) 政府") == [
        ("市司法局", "负责市政府规章"), ("各县（市、区）政府", None)]
    assert split_units("市发改委 市自然资源局") == [("市发改委", None), ("市自然资源局", None)]
    assert parse_unit_cell("市发改委牵头，市财政局、市商务局配合") == (
        [("市发改委", None)], [("市财政局", None), ("市商务局", None)], [])
    assert parse_unit_cell("市发改委、市财政局") == ([], [], [("市发改委", None), ("市财政局", None)])


def test_status_spellings():
    assert normalize_status("已完成。") == "已完成"
    assert normalize_status(" 完成 ") == "已完成"
    assert normalize_status("已办结") == "已完成"
    assert normalize_status("正在推进") == "推进中"
    assert normalize_status("进行中") == "推进中"
    assert normalize_status("未开始") == "未启动"
    assert normalize_status("") is None
    assert normalize_status("差不多了") is None
