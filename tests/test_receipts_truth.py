"""Receipts tell the truth (issue 15): counted in 项 over the unit's tasks, blank and refused tasks
named, complete only when every assigned task has a valid answer, and a refused file from a
registered sender answered too."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
from email.header import decode_header, make_header
from pathlib import Path

import pytest
from collect_kit import fill_workbook, issued, tasks_of

from automation import clock
from automation.collect.pipeline import collect_bytes, collect_file
from automation.mail.receipts import pending_receipts, send_owed_receipts
from automation.mail.transports import OutboxTransport
from automation.text import task_list

UNIT = "市财政局"
SENDER = "财政局 <czj@np.example.com>"
NOW = dt.datetime(2021, 11, 2, 9, 30, tzinfo=clock.TZ)


def _sent(config, ledger, tmp_path: Path) -> list[tuple[str, str]]:
    """Send what is owed to an outbox; (subject, plain text) of each receipt, oldest first."""
    outbox = tmp_path / "outbox"
    results = send_owed_receipts(config, ledger, NOW + dt.timedelta(hours=1), OutboxTransport(outbox))
    assert [r.action for r in results] == ["sent"] * len(results)
    by_id = {}
    for path in outbox.glob("*.eml"):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        by_id[str(msg["Message-ID"])] = msg
    out = []
    for r in results:
        msg = by_id[r.message_id]
        out.append((str(make_header(decode_header(str(msg["Subject"])))), msg.get_body(("plain",)).get_content()))
    return out


@pytest.fixture
def blank(config, ledger, tmp_path) -> Path:
    return issued(config, ledger, UNIT, NOW - dt.timedelta(days=1), tmp_path / "issued.xlsx")


def test_ten_blank_tasks_are_named_and_the_return_is_not_called_complete(config, ledger, blank, tmp_path):
    tasks = tasks_of(ledger, config, UNIT)
    filled, left = tasks[:-10], tasks[-10:]
    fill_workbook(blank, tmp_path / "回传.xlsx", {t: {"落实情况": "推进中"} for t in filled})
    result = collect_file(config, ledger, tmp_path / "回传.xlsx", NOW, sender=SENDER)
    assert result.outcome == "accepted" and result.tasks_accepted == filled
    ((subject, plain),) = _sent(config, ledger, tmp_path)
    n = len(tasks)
    assert subject.endswith(f"已填报{n - 10}/{n}项，10项未填报")
    assert f"共承担{n}项任务，目前已填报{n - 10}项" in plain
    assert f"第{'、'.join(map(str, left))}项尚未填报落实情况" in plain
    assert "无需修改" not in plain and "内容完整" not in plain
    assert "特此回执。" in plain


def test_every_task_answered_is_complete(config, ledger, blank, tmp_path):
    tasks = tasks_of(ledger, config, UNIT)
    fill_workbook(blank, tmp_path / "回传.xlsx", {t: {"落实情况": "推进中", "工作进展及成效": "按计划推进"} for t in tasks})
    collect_file(config, ledger, tmp_path / "回传.xlsx", NOW, sender=SENDER)
    ((subject, plain),) = _sent(config, ledger, tmp_path)
    assert subject.endswith(f"已填报{len(tasks)}/{len(tasks)}项")
    assert "报送内容完整，无需修改" in plain and "特此回执。" in plain
    assert "尚未填报" not in plain


def test_a_refused_row_is_not_counted_and_says_why(config, ledger, blank, tmp_path):
    tasks = tasks_of(ledger, config, UNIT)
    answers = {t: {"落实情况": "推进中"} for t in tasks}
    answers[tasks[0]] = {"落实情况": "已完成"}         # 已完成 without progress: refused
    fill_workbook(blank, tmp_path / "回传.xlsx", answers)
    collect_file(config, ledger, tmp_path / "回传.xlsx", NOW, sender=SENDER)
    ((subject, plain),) = _sent(config, ledger, tmp_path)
    n = len(tasks)
    assert subject.endswith(f"已填报{n - 1}/{n}项，1处需修改")
    assert f"第{tasks[0]}项的填报内容未通过，未予采用" in plain and "工作进展及成效" in plain
    assert "尚未填报" not in plain and "无需修改" not in plain


def test_a_second_file_completes_what_the_first_left(config, ledger, blank, tmp_path):
    tasks = tasks_of(ledger, config, UNIT)
    first, rest = tasks[:5], tasks[5:]
    fill_workbook(blank, tmp_path / "a.xlsx", {t: {"落实情况": "推进中"} for t in first})
    collect_file(config, ledger, tmp_path / "a.xlsx", NOW, sender=SENDER)
    fill_workbook(blank, tmp_path / "b.xlsx", {t: {"落实情况": "推进中"} for t in rest})
    collect_file(config, ledger, tmp_path / "b.xlsx", NOW + dt.timedelta(minutes=5), sender=SENDER)
    (s1, p1), (subject, plain) = _sent(config, ledger, tmp_path)
    # The first file's receipt, sent after the second came in, counts only what came before it.
    assert s1.endswith(f"已填报5/{len(tasks)}项，{len(rest)}项未填报") and "沿用" not in p1
    assert subject.endswith(f"已填报{len(tasks)}/{len(tasks)}项")
    assert f"第{'、'.join(map(str, first))}项本次未填写，沿用你单位此前报送的内容" in plain
    assert "报送内容完整" in plain


@pytest.mark.parametrize(("name", "data", "why"), [
    ("回传.et", b"\xd0\xcf\x11\xe0" + b"\0" * 600, "另存为"),
    ("回传.xlsx", b"PK\x03\x04 broken zip", "重新"),
])
def test_a_refused_file_from_a_registered_sender_gets_a_receipt(config, ledger, tmp_path, name, data, why):
    """README §11: a quarantined file from a unit's own address is answered with why and how to resend."""
    result = collect_bytes(config, ledger, name, data, NOW, sender=SENDER, source="imap", message_id="<q@np>")
    assert result.outcome == "quarantined" and result.unit == UNIT
    (owed,) = pending_receipts(config, ledger)
    assert owed.outcome == "quarantined" and owed.unit == UNIT
    ((subject, plain),) = _sent(config, ledger, tmp_path)
    assert "未能接收" in subject and result.reason[:20] in plain and why in plain
    assert "此前报送的内容不受影响" in plain and "特此回执。" in plain


def test_an_unregistered_sender_gets_no_receipt(config, ledger):
    collect_bytes(config, ledger, "回传.et", b"\xd0\xcf\x11\xe0" + b"\0" * 600, NOW, sender="x@elsewhere.example",
                  source="imap")
    assert pending_receipts(config, ledger) == []


def test_task_lists_read_as_one_phrase():
    assert task_list([3, 1, 2]) == "第1、2、3项"
    long = task_list(range(1, 35), 20)
    assert long == "第" + "、".join(map(str, range(1, 21))) + "项等34项"
    assert "等 项" not in long and "等项" not in long


def test_a_refused_row_over_an_earlier_answer_keeps_that_answer_counted(config, ledger, blank, tmp_path):
    tasks = tasks_of(ledger, config, UNIT)
    fill_workbook(blank, tmp_path / "a.xlsx", {t: {"落实情况": "推进中"} for t in tasks})
    collect_file(config, ledger, tmp_path / "a.xlsx", NOW, sender=SENDER)
    answers = {t: {"落实情况": "推进中", "工作进展及成效": "继续推进"} for t in tasks}
    answers[tasks[0]] = {"落实情况": "已完成"}         # refused: no 进展
    fill_workbook(blank, tmp_path / "b.xlsx", answers)
    collect_file(config, ledger, tmp_path / "b.xlsx", NOW + dt.timedelta(minutes=5), sender=SENDER)
    _first, (subject, plain) = _sent(config, ledger, tmp_path)
    n = len(tasks)
    assert subject.endswith(f"已填报{n}/{n}项，1处需修改")   # the ledger still holds task 1's earlier answer
    assert f"第{tasks[0]}项的填报内容未通过，未予采用，原因见下表；其中第{tasks[0]}项仍按你单位此前报送的内容统计" in plain
    assert "无需修改" not in plain
