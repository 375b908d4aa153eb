"""Collect returned workbooks end to end: real issued workbooks, filled and re-arranged as units do."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import shutil
from pathlib import Path

import openpyxl
import pytest
from collect_kit import answers, edit_metadata, fill_workbook, find_header, issued, rewrite_zip, tasks_of

from automation import clock
from automation.cli import main
from automation.collect.pipeline import collect_bytes, collect_file, collect_paths
from automation.model import Problem
from automation.workbook.layout import TASK_SHEET

UNIT = "市财政局"
OTHER = "市司法局"


@pytest.fixture
def blank(config, ledger, now, tmp_path) -> Path:
    return issued(config, ledger, UNIT, now, tmp_path / "issued" / "市财政局.xlsx")


def _problem(result, word: str) -> Problem:
    hits = [p for p in result.problems if word in p.message]
    assert hits, f"no problem mentioning {word!r} in {result.problems}"
    return hits[0]


def _col(path: Path, label: str) -> str:
    wb = openpyxl.load_workbook(path, read_only=False)
    _row, cols = find_header(wb[TASK_SHEET])
    return openpyxl.utils.get_column_letter(cols[label])


def _row_of(path: Path, task: int) -> int:
    wb = openpyxl.load_workbook(path)
    ws = wb[TASK_SHEET]
    header, cols = find_header(ws)
    return next(r for r in range(header + 1, ws.max_row + 1) if ws.cell(r, cols["序号"]).value == task)


def test_filled_workbook_is_accepted_archived_and_moved_out_of_the_inbox(config, ledger, now, blank, ws):
    t1, t2, t3, *_ = tasks_of(ledger, config, UNIT)
    fill_workbook(blank, ws.inbox / "财政局回传.xlsx", {
        t1: {"落实情况": "已完成", "工作进展及成效": "  已在门户网站设立专题。 ", "完成时间": dt.datetime(2021, 6, 30),
             "佐证材料": "https://www.np.gov.cn/x.html"},
        t2: {"落实情况": "推进中", "工作进展及成效": "第一行\n第二行", "存在问题及下步打算": "年底前完成。"},
        t3: {"落实情况": "不适用", "存在问题及下步打算": "本单位不涉及。"},
    }, contact="张三", phone="0599-1234567")
    (result,) = collect_paths(config, ledger, None, now)
    assert result.outcome == "accepted", result.reason
    assert (result.unit, result.rows_accepted, result.tasks_accepted) == (UNIT, 3, [t1, t2, t3])
    assert result.signed and result.problems == []
    assert (result.contact, result.phone) == ("张三", "0599-1234567")
    archive = Path(result.archive_path)
    assert archive.parent == ws.archive and archive.name == f"{result.sha256}.xlsx"
    assert list(ws.inbox.iterdir()) == []
    got = answers(ledger, config, UNIT)
    assert set(got) == {t1, t2, t3}
    assert (got[t1]["status"], got[t1]["progress"], got[t1]["completed_on"], got[t1]["evidence"]) == (
        "已完成", "已在门户网站设立专题。", "2021-06-30", "https://www.np.gov.cn/x.html")
    assert (got[t2]["status"], got[t2]["progress"], got[t2]["completed_on"], got[t2]["issues"]) == (
        "推进中", "第一行\n第二行", None, "年底前完成。")
    assert got[t3]["status"] == "不适用"
    sub = ledger.submissions()[0]
    assert (sub.contact, sub.phone, sub.signed, sub.rows_accepted) == ("张三", "0599-1234567", 1, 3)
    assert result.to_json()["tasks_accepted"] == [t1, t2, t3]


def test_typed_statuses_and_dates_are_normalised(config, ledger, now, blank, tmp_path):
    tasks = tasks_of(ledger, config, UNIT)
    typed = [("完成", "2021/6/30"), ("已完成。", "2021.6.30"), ("已办结", "2021年6月30日"), ("完成", "2021年6月"),
             ("完成", "6月底"), ("完成", 44377), ("进行中", None), ("正在推进", None), ("未开始", None)]
    plan = {}
    for task, (status, date) in zip(tasks, typed, strict=False):
        plan[task] = {"落实情况": status, "工作进展及成效": "已落实"}
        if date is not None:
            plan[task]["完成时间"] = date
    fill_workbook(blank, tmp_path / "typed.xlsx", plan)
    result = collect_file(config, ledger, tmp_path / "typed.xlsx", now)
    assert result.outcome == "accepted" and result.rows_accepted == len(typed), result.problems
    got = answers(ledger, config, UNIT)
    expected = ["已完成"] * 6 + ["推进中", "推进中", "未启动"]
    assert [got[t]["status"] for t in tasks[:len(typed)]] == expected
    assert [got[t]["completed_on"] for t in tasks[:6]] == ["2021-06-30"] * 6
    assert (tmp_path / "typed.xlsx").exists(), "files outside the inbox are never moved"


def test_problems_name_the_cell_and_bad_values_are_not_applied(config, ledger, now, blank, tmp_path):
    t1, t2, t3, t4, t5, *_ = tasks_of(ledger, config, UNIT)
    path = tmp_path / "problems.xlsx"
    fill_workbook(blank, path, {
        t1: {"落实情况": "差不多", "工作进展及成效": "x"},
        t2: {"落实情况": "已完成"},
        t3: {"落实情况": "已完成", "工作进展及成效": "做完了", "完成时间": "2022-03-01"},
        t4: {"落实情况": "推进中", "完成时间": "下周"},
        t5: {"工作进展及成效": "忘了选落实情况"},
    })
    result = collect_file(config, ledger, path, now)
    assert result.outcome == "accepted"
    status_col, progress_col, date_col = _col(path, "落实情况"), _col(path, "工作进展及成效"), _col(path, "完成时间")
    bad = _problem(result, "差不多")
    assert (bad.severity, bad.sheet, bad.cell, bad.task_number) == (
        "error", TASK_SHEET, f"{status_col}{_row_of(path, t1)}", t1)
    missing = _problem(result, "没有填写“工作进展及成效”")
    assert missing.cell == f"{progress_col}{_row_of(path, t2)}"
    future = _problem(result, "晚于报送日期")
    assert future.cell == f"{date_col}{_row_of(path, t3)}"
    assert _problem(result, "下周").cell == f"{date_col}{_row_of(path, t4)}"
    assert _problem(result, "记为“未填报”").task_number == t5
    assert result.tasks_accepted == [t3, t4, t5]
    got = answers(ledger, config, UNIT)
    assert set(got) == {t3, t4, t5}
    assert got[t3]["completed_on"] is None and got[t3]["status"] == "已完成"
    assert got[t4]["completed_on"] is None
    assert got[t5]["status"] == "未填报"
    stored = ledger.problems(submission_id=result.submission_id)
    assert {p.problem.message for p in stored} == {p.message for p in result.problems}


def test_rows_are_matched_by_number_not_position(config, ledger, now, blank, tmp_path):
    tasks = tasks_of(ledger, config, UNIT)
    wb = openpyxl.load_workbook(blank)
    ws = wb[TASK_SHEET]
    header, cols = find_header(ws)
    task_rows = [r for r in range(header + 1, ws.max_row + 1) if isinstance(ws.cell(r, 1).value, (int, float))]
    values = [[ws.cell(r, c).value for c in range(1, ws.max_column + 1)] for r in task_rows]
    for r, row in zip(task_rows, reversed(values), strict=True):  # re-sorted descending
        for c, v in enumerate(row, start=1):
            ws.cell(r, c).value = v
    for r in task_rows:
        n = int(ws.cell(r, 1).value)
        ws.cell(r, cols["落实情况"]).value = "推进中"
        ws.cell(r, cols["工作进展及成效"]).value = f"第{n}项进展"
    ws.row_dimensions[task_rows[0]].hidden = True
    deleted = int(ws.cell(task_rows[-1], 1).value)
    ws.delete_rows(task_rows[-1])
    ws.insert_rows(task_rows[1])  # an empty row in the middle
    wb.save(tmp_path / "resorted.xlsx")
    result = collect_file(config, ledger, tmp_path / "resorted.xlsx", now)
    assert result.outcome == "accepted"
    assert sorted(result.tasks_accepted) == sorted(set(tasks) - {deleted})
    got = answers(ledger, config, UNIT)
    assert all(got[n]["progress"] == f"第{n}项进展" for n in got)
    assert f"第 {deleted} 项" in _problem(result, "找不到").message


def test_foreign_task_rejected_and_locked_edit_reported_not_applied(config, ledger, now, blank, tmp_path):
    mine = tasks_of(ledger, config, UNIT)
    foreign = next(n for n in range(1, 36) if n not in mine)
    wb = openpyxl.load_workbook(blank)
    ws = wb[TASK_SHEET]
    header, cols = find_header(ws)
    rows = [r for r in range(header + 1, ws.max_row + 1) if isinstance(ws.cell(r, 1).value, (int, float))]
    ws.cell(rows[0], cols["工作任务"]).value = "改过的任务名称"
    ws.cell(rows[0], cols["落实情况"]).value = "推进中"
    # Another unit's row pasted over one of ours: its 序号 and its issued text (a row is known by its text).
    task = next(t for t in ledger.tasks(ledger.require_batch(config.batch.title).id) if t.number == foreign)
    ws.cell(rows[1], 1).value = foreign
    ws.cell(rows[1], cols["工作任务"]).value = task.title
    ws.cell(rows[1], cols["工作要求"]).value = task.requirement
    ws.cell(rows[1], cols["落实情况"]).value = "已完成"
    ws.cell(rows[1], cols["工作进展及成效"]).value = "别的单位的任务"
    wb.save(tmp_path / "foreign.xlsx")
    result = collect_file(config, ledger, tmp_path / "foreign.xlsx", now)
    assert result.outcome == "accepted"
    assert result.tasks_accepted == [mine[0]]
    rejected = _problem(result, "不是分配给本单位")
    assert (rejected.severity, rejected.task_number) == ("error", foreign)
    locked = _problem(result, "下发内容")
    assert (locked.severity, locked.field, locked.task_number) == ("warning", "title", mine[0])
    assert locked.cell == f"{_col(tmp_path / 'foreign.xlsx', '工作任务')}{rows[0]}"
    batch = ledger.require_batch(config.batch.title)
    assert next(t for t in ledger.tasks(batch.id) if t.number == mine[0]).title != "改过的任务名称"


def test_duplicated_and_unnumbered_rows(config, ledger, now, blank, tmp_path):
    """A copied row (same 序号 twice) keeps the first; content beside a missing 序号 is reported, not guessed."""
    t1, t2, *_ = tasks_of(ledger, config, UNIT)
    wb = openpyxl.load_workbook(blank)
    ws = wb[TASK_SHEET]
    header, cols = find_header(ws)
    rows = [r for r in range(header + 1, ws.max_row + 1) if isinstance(ws.cell(r, 1).value, (int, float))]
    ws.cell(rows[0], cols["落实情况"]).value = "推进中"
    ws.cell(rows[0], cols["工作进展及成效"]).value = "第一次"
    for c in range(1, cols["落实情况"]):  # the unit pasted t1's row (序号 and issued text) over t2's
        ws.cell(rows[1], c).value = ws.cell(rows[0], c).value
    ws.cell(rows[1], cols["落实情况"]).value = "已完成"
    ws.cell(rows[1], cols["工作进展及成效"]).value = "第二次"
    ws.cell(rows[2], 1).value = None
    ws.cell(rows[2], cols["落实情况"]).value = "推进中"
    label = [c for c in ws[2] if isinstance(c.value, str) and c.value.startswith("填报联系人")][0]
    label.value = "填报联系人：赵六"  # typed into the label cell itself
    wb.save(tmp_path / "dup.xlsx")
    result = collect_file(config, ledger, tmp_path / "dup.xlsx", now)
    assert result.outcome == "accepted" and result.tasks_accepted == [t1]
    assert result.contact == "赵六"
    assert _problem(result, "出现了两次").cell == f"A{rows[1]}"
    assert _problem(result, "没有有效的序号").cell == f"A{rows[2]}"
    assert f"第 {t2}" in _problem(result, "找不到").message
    assert answers(ledger, config, UNIT)[t1]["progress"] == "第一次"


def _unsigned(path: Path, title: str, rows: list[tuple[int, str, str]]) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Sheet1"
    ws.append([title])
    ws.append(["序号", "工作任务", "落实情况", "工作进展及成效", "完成时间"])
    for n, status, progress in rows:
        ws.append([n, "（复制的任务）", status, progress, None])
    wb.save(path)


def test_unsigned_copy_matched_by_title_or_file_name(config, ledger, now, tmp_path):
    t1, t2, *_ = tasks_of(ledger, config, UNIT)
    _unsigned(tmp_path / "copy.xlsx", "南平市财政局2021年政务公开工作落实情况", [(t1, "已完成", "已完成。"), (t2, "推进中", "")])
    result = collect_file(config, ledger, tmp_path / "copy.xlsx", now)
    assert (result.outcome, result.unit, result.signed, result.tasks_accepted) == ("accepted", UNIT, False, [t1, t2])
    assert _problem(result, "没有签名页").severity == "warning"
    assert ledger.submissions()[-1].signed == 0

    _unsigned(tmp_path / "市财政局-补报.xlsx", "落实情况", [(t1, "推进中", "补报")])
    assert collect_file(config, ledger, tmp_path / "市财政局-补报.xlsx", now).unit == UNIT

    _unsigned(tmp_path / "nobody.xlsx", "落实情况", [(t1, "推进中", "无名")])
    nobody = collect_file(config, ledger, tmp_path / "nobody.xlsx", now)
    assert nobody.outcome == "quarantined" and "无法从标题或文件名确定" in nobody.reason

    by_mail = collect_bytes(config, ledger, "附件1.xlsx", (tmp_path / "nobody.xlsx").read_bytes(), now,
                            sender=ledger.unit_by_name(UNIT).emails[0])
    # the same bytes were quarantined above; mailed by a known unit they are checked again and accepted
    assert (by_mail.outcome, by_mail.unit, by_mail.submission_id is not None) == ("accepted", UNIT, True)
    assert ledger.submission_by_sha(nobody.sha256).outcome == "accepted"
    _unsigned(tmp_path / "mailed.xlsx", "落实情况", [(t1, "推进中", "邮件")])
    by_mail = collect_bytes(config, ledger, "附件1.xlsx", (tmp_path / "mailed.xlsx").read_bytes(), now,
                            sender=ledger.unit_by_name(UNIT).emails[0])
    assert (by_mail.outcome, by_mail.unit) == ("accepted", UNIT)
    assert "发件邮箱" in _problem(by_mail, "没有签名页").message

    strict = dataclasses.replace(config, collect=dataclasses.replace(config.collect, accept_unsigned=False))
    _unsigned(tmp_path / "strict.xlsx", "市财政局落实情况", [(t1, "已完成", "x")])
    refused = collect_file(strict, ledger, tmp_path / "strict.xlsx", now)
    assert refused.outcome == "quarantined" and "没有签名页" in refused.reason


def test_unsigned_file_is_only_accepted_for_the_senders_own_unit(config, ledger, now, tmp_path):
    """Without a signature the unit comes from typed text: another unit's mailbox cannot answer for it."""
    other = ledger.unit_by_name(OTHER)
    t1 = tasks_of(ledger, config, OTHER)[0]
    _unsigned(tmp_path / "forged.xlsx", f"{OTHER}落实情况", [(t1, "已完成", "冒名填报")])
    data = (tmp_path / "forged.xlsx").read_bytes()
    sender = ledger.unit_by_name(UNIT).emails[0]
    foreign = collect_bytes(config, ledger, f"{OTHER}.xlsx", data, now, sender=f"某人 <{sender}>")
    # Read and refused for what it shows (another unit's title): filed under no unit, not the sender's.
    assert foreign.outcome == "quarantined" and foreign.unit is None
    assert all(word in foreign.reason for word in ("没有签名页", OTHER, UNIT, sender)), foreign.reason
    assert Path(foreign.quarantine_path).exists()
    assert answers(ledger, config, OTHER) == {}
    # The unit's own mailbox sending the same bytes: checked again and accepted (with the unsigned warning).
    own = collect_bytes(config, ledger, f"{OTHER}.xlsx", data, now, sender=other.emails[0])
    assert (own.outcome, own.unit) == ("accepted", OTHER)
    assert answers(ledger, config, OTHER)[t1]["progress"] == "冒名填报"


def test_same_file_twice_is_a_duplicate_and_changes_nothing(config, ledger, now, blank, tmp_path):
    t1 = tasks_of(ledger, config, UNIT)[0]
    fill_workbook(blank, tmp_path / "a.xlsx", {t1: {"落实情况": "推进中"}})
    first = collect_file(config, ledger, tmp_path / "a.xlsx", now)
    before = (ledger.submissions(), ledger.current_answers(ledger.require_batch(config.batch.title).id))
    shutil.copy(tmp_path / "a.xlsx", tmp_path / "renamed.xlsx")
    again = collect_file(config, ledger, tmp_path / "renamed.xlsx", now + dt.timedelta(hours=1))
    assert again.outcome == "duplicate" and again.submission_id == first.submission_id
    assert "已于" in again.reason and again.unit == UNIT
    assert (ledger.submissions(), ledger.current_answers(ledger.require_batch(config.batch.title).id)) == before


def test_latest_receipt_wins_and_history_is_kept(config, ledger, now, blank, tmp_path):
    t1 = tasks_of(ledger, config, UNIT)[0]
    fill_workbook(blank, tmp_path / "old.xlsx", {t1: {"落实情况": "推进中", "工作进展及成效": "旧"}})
    fill_workbook(blank, tmp_path / "new.xlsx", {t1: {"落实情况": "已完成", "工作进展及成效": "新"}})
    # The newer one arrives first; the older one (by receipt time) is processed later and must not win.
    collect_bytes(config, ledger, "new.xlsx", (tmp_path / "new.xlsx").read_bytes(), now,
                  received_at=now - dt.timedelta(hours=1), source="folder")
    collect_bytes(config, ledger, "old.xlsx", (tmp_path / "old.xlsx").read_bytes(), now,
                  received_at=now - dt.timedelta(days=1), source="folder")
    assert answers(ledger, config, UNIT)[t1]["progress"] == "新"
    history = [h for h in ledger.history(ledger.require_batch(config.batch.title).id) if h.task == t1]
    assert [(h.old_status, h.status) for h in history] == [(None, "推进中"), ("推进中", "已完成")]


def test_sender_must_be_registered_and_a_foreign_sender_is_flagged(config, ledger, now, blank, tmp_path):
    t1 = tasks_of(ledger, config, UNIT)[0]
    fill_workbook(blank, tmp_path / "a.xlsx", {t1: {"落实情况": "推进中"}})
    data = (tmp_path / "a.xlsx").read_bytes()
    unknown = collect_bytes(config, ledger, "a.xlsx", data, now, sender="Stranger <x@evil.example>",
                            message_id="<m1@x>")
    assert unknown.outcome == "quarantined" and "x@evil.example" in unknown.reason
    assert Path(unknown.quarantine_path).exists()
    again = collect_bytes(config, ledger, "a.xlsx", data, now, sender="Stranger <x@evil.example>")
    assert again.outcome == "duplicate" and "仍不能接收" in again.reason
    assert ledger.submission_by_sha(unknown.sha256).outcome == "quarantined"

    other = ledger.unit_by_name(OTHER)
    fill_workbook(blank, tmp_path / "b.xlsx", {t1: {"落实情况": "已完成", "工作进展及成效": "代报"}})
    flagged = collect_bytes(config, ledger, "../../b.xlsx", (tmp_path / "b.xlsx").read_bytes(), now,
                            sender=f"{other.contact} <{other.emails[0].upper()}>", message_id="<m2@x>")
    assert (flagged.outcome, flagged.unit, flagged.file_name) == ("accepted", UNIT, "b.xlsx")
    warning = _problem(flagged, OTHER)
    assert warning.severity == "warning" and other.emails[0] in warning.message
    sub = ledger.submission_by_sha(flagged.sha256)
    assert (sub.source, sub.message_id, sub.sender) == ("imap", "<m2@x>", flagged.sender)

    own = ledger.unit_by_name(UNIT)
    fill_workbook(blank, tmp_path / "c.xlsx", {t1: {"落实情况": "已完成", "工作进展及成效": "本单位"}})
    mine = collect_bytes(config, ledger, "c.xlsx", (tmp_path / "c.xlsx").read_bytes(), now, sender=own.emails[0])
    assert mine.outcome == "accepted" and mine.problems == []


def test_a_quarantined_file_is_accepted_once_its_sender_is_registered(config_file, now, blank, tmp_path):
    """The office registers the new address, drops the quarantined copy into the inbox: accepted."""
    from automation.config import load_config
    from automation.ledger import open_workspace

    config = load_config(config_file)
    _ws, ledger = open_workspace(config)
    t1 = tasks_of(ledger, config, UNIT)[0]
    fill_workbook(blank, tmp_path / "a.xlsx", {t1: {"落实情况": "推进中"}})
    first = collect_bytes(config, ledger, "a.xlsx", (tmp_path / "a.xlsx").read_bytes(), now,
                          sender="新联系人 <new-contact@np.example.com>", message_id="<m1@x>")
    assert first.outcome == "quarantined"
    text = config_file.read_text(encoding="utf-8")
    unit_block = text.index(f'name = "{UNIT}"')
    email_at = text.index("email = [", unit_block)
    config_file.write_text(text[:email_at] + 'email = ["new-contact@np.example.com", ' + text[email_at + 9:],
                           encoding="utf-8")
    config = load_config(config_file)
    ledger.sync_units(config.units, now)
    retry = collect_file(config, ledger, Path(first.quarantine_path), now, sender="new-contact@np.example.com")
    assert retry.outcome == "accepted" and retry.tasks_accepted == [t1]
    assert answers(ledger, config, UNIT)[t1]["status"] == "推进中"
    assert ledger.submission_by_sha(first.sha256).outcome == "accepted"
    event = ledger.execute("SELECT detail FROM events WHERE kind = 'requarantine-accepted'").fetchone()
    assert "new-contact@np.example.com" in event[0]
    again = collect_file(config, ledger, Path(first.quarantine_path), now, sender="new-contact@np.example.com")
    assert again.outcome == "duplicate"
    ledger.close()


def test_only_the_cached_value_of_a_formula_is_used(config, ledger, now, blank, tmp_path):
    t1 = tasks_of(ledger, config, UNIT)[0]
    row = _row_of(blank, t1)
    status, progress = f"{_col(blank, '落实情况')}{row}", f"{_col(blank, '工作进展及成效')}{row}"

    def formulas(xml: bytes) -> bytes:
        for ref, cached in ((status, "已完成"), (progress, "见链接")):
            cell = f'<c r="{ref}" t="str"><f>HYPERLINK("http://evil.example/","{cached}")</f><v>{cached}</v></c>'
            xml, n = re.subn(rf'<c r="{ref}"[^>]*?(/>|>.*?</c>)'.encode(), cell.encode(), xml, count=1)
            assert n == 1
        return xml

    rewrite_zip(blank, tmp_path / "formula.xlsx", {"xl/worksheets/sheet2.xml": formulas})
    result = collect_file(config, ledger, tmp_path / "formula.xlsx", now)
    assert result.outcome == "accepted", result.reason
    got = answers(ledger, config, UNIT)[t1]
    assert (got["status"], got["progress"]) == ("已完成", "见链接")


def test_metadata_tampering_and_other_batches_are_quarantined(config, ledger, now, blank, tmp_path):
    edit_metadata(blank, tmp_path / "forged.xlsx", {"unit_name": "市教育局"})
    forged = collect_file(config, ledger, tmp_path / "forged.xlsx", now)
    assert forged.outcome == "quarantined" and "签名校验失败" in forged.reason
    reason_file = Path(forged.quarantine_path + ".原因.txt")
    assert "签名校验失败" in reason_file.read_text(encoding="utf-8")
    assert ledger.submission_by_sha(forged.sha256).outcome == "quarantined"


def test_cli_collect_json(config_file, config, ledger, now, blank, ws, capsys):
    t1 = tasks_of(ledger, config, UNIT)[0]
    fill_workbook(blank, ws.inbox / "a.xlsx", {t1: {"落实情况": "推进中"}})
    (ws.inbox / "b.xlsx").write_bytes(b"not a workbook")
    ledger.close()
    assert main(["--config", str(config_file), "collect", "--json", "--now", "2021-11-01T10:00"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["totals"] == {"files": 2, "accepted": 1, "quarantined": 1, "duplicate": 0, "skipped": 0, "rows": 1,
                             "problems": 0}
    by_name = {f["file_name"]: f for f in out["files"]}
    assert by_name["a.xlsx"]["tasks_accepted"] == [t1] and by_name["a.xlsx"]["unit"] == UNIT
    assert by_name["b.xlsx"]["outcome"] == "quarantined" and by_name["b.xlsx"]["reason"]
    # the accepted file from a known unit got its 回执 (outbox mode); the anonymous junk did not
    import email
    from email import policy

    receipts = [email.message_from_bytes(p.read_bytes(), policy=policy.default)
                for p in (ws.root / "outbox").glob("*.eml")]
    assert len(receipts) == 1 and "回执" in receipts[0]["Subject"]
    assert main(["--config", str(config_file), "collect", "--now", "2021-11-01T10:00"]) == 0
    assert "没有需要处理的文件" in capsys.readouterr().out
    fill_workbook(blank, ws.inbox / "c.xlsx", {t1: {"落实情况": "差不多"}})
    assert main(["--config", str(config_file), "collect", "--now", "2021-11-01T11:00"]) == 0
    text = capsys.readouterr().out
    assert "c.xlsx" in text and "已接收 0 项，问题 1 个" in text and "接收 1 个" in text
    assert main(["--config", str(config_file), "collect", str(ws.root / "missing.xlsx")]) == 1
    assert "不存在" in capsys.readouterr().err


def test_edited_template_round_trip(config, ledger, now, tmp_path):
    """Renamed header, added status option, changed width in the office's template: still collected."""
    from automation.workbook.template import TEMPLATE_STATUS_SHEET, TEMPLATE_TASK_SHEET

    wb = openpyxl.load_workbook(config.template)
    sheet = wb[TEMPLATE_TASK_SHEET]
    assert sheet["B4"].value == "工作任务"
    sheet["B3"] = "重点任务"
    sheet.column_dimensions["C"].width = 50
    statuses = wb[TEMPLATE_STATUS_SHEET]
    assert statuses["A2"].value == "已完成"
    statuses["A2"] = "已办结"                       # renamed option
    statuses.cell(statuses.max_row + 1, 1, "部分完成")  # added option
    statuses.cell(statuses.max_row, 2, "部分事项已完成")
    wb.save(config.template)
    path = issued(config, ledger, UNIT, now, tmp_path / "edited.xlsx")
    t1, t2, t3, *_ = tasks_of(ledger, config, UNIT)
    fill_workbook(path, tmp_path / "filled.xlsx", {t1: {"落实情况": "部分完成", "工作进展及成效": "一半"},
                                                   t2: {"落实情况": "进行中", "重点任务": "改名后的表头也锁定"},
                                                   t3: {"落实情况": "已办结", "工作进展及成效": "办完了"}})
    result = collect_file(config, ledger, tmp_path / "filled.xlsx", now)
    assert result.outcome == "accepted" and result.tasks_accepted == [t1, t2, t3]
    assert [p.field for p in result.problems] == ["title"]
    got = answers(ledger, config, UNIT)
    # stored in their class, so the report, status and reminders count them
    assert (got[t1]["status"], got[t2]["status"], got[t3]["status"]) == ("推进中", "推进中", "已完成")
    from automation.progress.status import status_summary

    unit = next(u for u in status_summary(config, ledger, now)["units"] if u["unit"] == UNIT)
    assert (unit["done"], unit["in_progress"]) == (1, 2)


def test_a_template_option_that_fits_no_class_is_refused(config):
    from automation.errors import InputError
    from automation.workbook.template import TEMPLATE_STATUS_SHEET, read_template

    wb = openpyxl.load_workbook(config.template)
    statuses = wb[TEMPLATE_STATUS_SHEET]
    statuses.cell(statuses.max_row + 1, 1, "暂缓")
    wb.save(config.template)
    with pytest.raises(InputError, match="A6：选项“暂缓”看不出属于"):
        read_template(config.template)


def test_received_time_defaults_to_file_time_not_after_now(config, ledger, now, blank, tmp_path):
    import os

    t1 = tasks_of(ledger, config, UNIT)[0]
    fill_workbook(blank, tmp_path / "a.xlsx", {t1: {"落实情况": "推进中"}})
    earlier = (now - dt.timedelta(days=3)).timestamp()
    os.utime(tmp_path / "a.xlsx", (earlier, earlier))
    result = collect_paths(config, ledger, [tmp_path], now)[0]
    assert result.received_at == clock.iso(now - dt.timedelta(days=3))


def test_a_file_that_breaks_the_interpreter_is_quarantined_and_the_run_goes_on(config, ledger, now, blank, tmp_path,
                                                                                monkeypatch):
    import automation.collect.pipeline as collect_module

    t1 = tasks_of(ledger, config, UNIT)[0]
    fill_workbook(blank, tmp_path / "a.xlsx", {t1: {"落实情况": "推进中", "工作进展及成效": "a"}})
    fill_workbook(blank, tmp_path / "b.xlsx", {t1: {"落实情况": "推进中", "工作进展及成效": "b"}})
    real = collect_module.evaluate
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise IndexError("boom")
        return real(*args, **kwargs)

    monkeypatch.setattr(collect_module, "evaluate", flaky)
    first, second = collect_paths(config, ledger, [tmp_path / "a.xlsx", tmp_path / "b.xlsx"], now)
    assert first.outcome == "quarantined" and "无法解读" in first.reason
    assert second.outcome == "accepted"


def test_workbook_from_an_older_table_revision(config, ledger, now, tmp_path):
    """After init --replace renumbers tasks, an old workbook must not file answers under other tasks."""
    import datetime as dt

    from automation.tasks.importing import init_batch

    old_book = issued(config, ledger, UNIT, now, tmp_path / "old.xlsx")
    t1, t2, *_ = tasks_of(ledger, config, UNIT)
    fill_workbook(old_book, tmp_path / "filled_old.xlsx", {t1: {"落实情况": "推进中"}})
    fill_workbook(old_book, tmp_path / "filled_old2.xlsx", {t2: {"落实情况": "推进中"}})
    sample = config.batch.tasks.read_text(encoding="utf-8")
    # revision 2 changes only task 35's requirement: this unit's old workbook is still valid
    small = tmp_path / "small.txt"
    small.write_text(sample.replace("依法依规做好年度报告编制发布工作。", "依法依规做好年度报告编制发布工作（修订）。"),
                     encoding="utf-8")
    later = now + dt.timedelta(days=1)
    init_batch(config, ledger, later, tasks_path=small, replace=True)
    ok = collect_file(config, ledger, tmp_path / "filled_old.xlsx", later)
    assert ok.outcome == "accepted" and ok.tasks_accepted == [t1]
    # revision 3 swaps the titles of this unit's first two tasks (a renumbered table)
    lines = sample.split("\n")
    i1 = next(i for i, line in enumerate(lines) if line.startswith(f"{t1}."))
    i2 = next(i for i, line in enumerate(lines) if line.startswith(f"{t2}."))
    lines[i1], lines[i2] = f"{t1}." + lines[i2][len(f"{t2}."):], f"{t2}." + lines[i1][len(f"{t1}."):]
    swapped = tmp_path / "swapped.txt"
    swapped.write_text("\n".join(lines), encoding="utf-8")
    init_batch(config, ledger, later + dt.timedelta(days=1), tasks_path=swapped, replace=True)
    stale = collect_file(config, ledger, tmp_path / "filled_old2.xlsx", later + dt.timedelta(days=2))
    assert stale.outcome == "quarantined"
    assert "旧版任务表（第 1 版）" in stale.reason and "第 3 版" in stale.reason and f"{t1}、{t2}" in stale.reason
    # a workbook issued from the current revision is accepted as usual
    fresh = issued(config, ledger, UNIT, later + dt.timedelta(days=2), tmp_path / "new.xlsx")
    fill_workbook(fresh, tmp_path / "filled_new.xlsx", {t2: {"落实情况": "推进中"}})
    assert collect_file(config, ledger, tmp_path / "filled_new.xlsx", later + dt.timedelta(days=2)).outcome == "accepted"
