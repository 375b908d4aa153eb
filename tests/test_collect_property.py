"""Property: build → fill random valid answers (openpyxl) → collect gives back exactly what was filled."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from collect_kit import answers, fill_workbook, issued, private_config, tasks_of
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from automation import clock
from automation.collect.pipeline import collect_bytes
from automation.ledger import open_workspace
from automation.tasks.importing import init_batch
from automation.text import normalize_status

NOW = clock.parse("2021-11-01T09:30")
UNIT = "市司法局"  # has a scope note in its role column
TYPED_STATUSES = ("已完成", "推进中", "未启动", "不适用", "完成", "已办结", "已完成。", "进行中", "正在推进", "未开始")
ALPHABET = st.characters(codec="utf-8", categories=("Lo", "Nd", "Lu", "Ll"), max_codepoint=0x9FFF) | st.sampled_from(
    list("，。、；：（）《》“”%- \n"))


PAD = st.sampled_from(["", "", " ", "  ", "\n", " \n"])


def _text(min_size: int = 0) -> st.SearchStrategy[str]:
    # No leading =+-@ (formula-looking text is refused by design); padded edges must come back trimmed.
    core = st.text(ALPHABET, min_size=min_size, max_size=40).filter(
        lambda s: s.lstrip()[:1] not in ("-", "+", "=", "@") and (min_size == 0 or s.strip()))
    return st.builds(lambda a, b, c: a + b + c, PAD, core, PAD)


def _date_cell(day: dt.date) -> st.SearchStrategy[object]:
    serial = (day - dt.date(1899, 12, 30)).days
    return st.sampled_from([dt.datetime(day.year, day.month, day.day), day.isoformat(),
                            f"{day.year}/{day.month}/{day.day}", f"{day.year}年{day.month}月{day.day}日", serial])


@st.composite
def answer(draw: st.DrawFn) -> dict[str, object]:
    status = draw(st.sampled_from(TYPED_STATUSES))
    done = normalize_status(status) == "已完成"
    a: dict[str, object] = {"落实情况": status, "工作进展及成效": draw(_text(1 if done else 0))}
    day = draw(st.none() | st.dates(dt.date(2021, 1, 1), dt.date(2021, 10, 31)))
    if day is not None:
        a["完成时间"] = draw(_date_cell(day))
        a["_date"] = day
    a["佐证材料"] = draw(_text())
    a["存在问题及下步打算"] = draw(_text())
    return a


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("property")
    config = private_config(root)
    _ws, ledger = open_workspace(config)
    init_batch(config, ledger, NOW)
    blank = issued(config, ledger, UNIT, NOW, root / "blank.xlsx")
    yield config, ledger, blank, tasks_of(ledger, config, UNIT), root
    ledger.close()


_clock = itertools.count(1)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(data=st.data())
def test_collect_returns_exactly_what_was_filled(world, data):
    config, ledger, blank, tasks, root = world
    chosen = data.draw(st.lists(st.sampled_from(tasks), min_size=1, max_size=6, unique=True))
    plan = {t: data.draw(answer()) for t in chosen}
    contact = data.draw(st.sampled_from(["王小明", "李 红", ""]))
    tick = next(_clock)
    phone = f"0599-{8800000 + tick}"  # also makes every file unique (an identical file is a no-op duplicate)
    out = root / "filled.xlsx"
    fill_workbook(blank, out, {t: {k: v for k, v in a.items() if not k.startswith("_")} for t, a in plan.items()},
                  contact=contact or None, phone=phone)
    received = NOW + dt.timedelta(seconds=tick)  # each example is the unit's latest submission
    result = collect_bytes(config, ledger, "filled.xlsx", out.read_bytes(), NOW, received_at=received,
                           source="folder")
    assert result.outcome == "accepted", result.reason
    assert [p for p in result.problems if p.severity == "error"] == []
    assert result.tasks_accepted == sorted(chosen)
    assert (result.contact, result.phone) == (contact.strip(), phone)
    got = answers(ledger, config, UNIT)
    for t, a in plan.items():
        row = got[t]
        assert row["submitted_at"] == clock.iso(received)
        assert row["status"] == normalize_status(a["落实情况"])
        assert row["progress"] == a["工作进展及成效"].strip()
        assert row["completed_on"] == (a["_date"].isoformat() if "_date" in a else None)
        assert row["evidence"] == a["佐证材料"].strip()
        assert row["issues"] == a["存在问题及下步打算"].strip()
