"""Issue 15: nothing a unit typed is lost, misfiled or called complete when it is not.

Each test builds its case the way it really arises (a unit's edits made with openpyxl, names as
raw bytes on disk, a writer process paused half-way, two real ``automation collect`` processes)
and asserts what the ledger holds and what the result and its problems say.  The LibreOffice
cases are in ``test_collect_libreoffice.py``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import openpyxl
import pytest
from collect_kit import ROOT, answers, corpus, fill_workbook, find_header, issued, listing, tasks_of

from automation import clock
from automation.cli import main
from automation.collect import pipeline
from automation.collect.inputs import QUIET_SECONDS, InboxCheck, load_input, stat_input
from automation.collect.pipeline import collect_bytes, collect_file, collect_paths
from automation.collect.runlock import CollectLock
from automation.collect.values import CELL_TEXT_LIMIT
from automation.ledger import Ledger
from automation.workbook.layout import TASK_SHEET

UNIT = "市财政局"
OTHER = "市司法局"


@pytest.fixture
def blank(config, ledger, now, tmp_path) -> Path:
    return issued(config, ledger, UNIT, now, tmp_path / "issued" / "市财政局.xlsx")


def _with(result, word: str):
    hits = [p for p in result.problems if word in p.message]
    assert hits, f"no problem mentioning {word!r} in {[p.message for p in result.problems]}"
    return hits[0]


def _stored(ledger: Ledger, result) -> set[str]:
    """The problem messages the ledger holds for the result's submission."""
    return {p.problem.message for p in ledger.problems(submission_id=result.submission_id)}


def _col(path: Path, label: str) -> int:
    return find_header(openpyxl.load_workbook(path)[TASK_SHEET])[1][label]


# --------------------------------------------------------------------------- retitled / deleted columns


def test_retitled_fill_in_columns_are_still_read_and_noted(config, ledger, now, blank, tmp_path):
    t1, t2, *_ = tasks_of(ledger, config, UNIT)
    filled = tmp_path / "filled.xlsx"
    fill_workbook(blank, filled, {
        t1: {"落实情况": "已完成", "工作进展及成效": "已在门户网站设立专题。", "佐证材料": "https://np.gov.cn/a.html",
             "存在问题及下步打算": "无。"},
        t2: {"落实情况": "推进中", "工作进展及成效": "推进中。", "存在问题及下步打算": "年底前完成。"},
    })
    renamed = {"工作进展及成效": "工作进展情况", "佐证材料": "佐证材料（附件）", "存在问题及下步打算": "存在问题及下一步打算"}
    corpus.retitle_columns(filled, tmp_path / "retitled.xlsx", renamed)
    result = collect_file(config, ledger, tmp_path / "retitled.xlsx", now)
    assert result.outcome == "accepted" and result.tasks_accepted == [t1, t2]
    got = answers(ledger, config, UNIT)
    assert (got[t1]["progress"], got[t1]["evidence"], got[t1]["issues"]) == (
        "已在门户网站设立专题。", "https://np.gov.cn/a.html", "无。")
    assert (got[t2]["progress"], got[t2]["issues"]) == ("推进中。", "年底前完成。")
    for header, new in renamed.items():
        note = _with(result, f"“{header}”列的表头被改成了“{new}”")
        assert note.severity == "info" and note.cell and note.cell.endswith("3")
    assert {p.severity for p in result.problems} == {"info"}
    assert {p.message for p in result.problems} <= _stored(ledger, result)


def test_a_retitled_column_nothing_like_its_header_is_found_where_it_was_issued(config, ledger, now, blank,
                                                                                 tmp_path):
    t1 = tasks_of(ledger, config, UNIT)[0]
    fill_workbook(blank, tmp_path / "filled.xlsx", {t1: {"落实情况": "推进中", "佐证材料": "会议纪要"}})
    corpus.retitle_columns(tmp_path / "filled.xlsx", tmp_path / "retitled.xlsx", {"佐证材料": "附件清单"})
    result = collect_file(config, ledger, tmp_path / "retitled.xlsx", now)
    assert result.outcome == "accepted"
    assert answers(ledger, config, UNIT)[t1]["evidence"] == "会议纪要"
    assert "按下发时的位置" in _with(result, "“佐证材料”列的表头被改成了“附件清单”").message


def test_a_deleted_fill_in_column_is_a_problem_naming_it(config, ledger, now, blank, tmp_path):
    t1 = tasks_of(ledger, config, UNIT)[0]
    fill_workbook(blank, tmp_path / "filled.xlsx", {t1: {"落实情况": "推进中", "存在问题及下步打算": "人手不足。"}})
    corpus.delete_column(tmp_path / "filled.xlsx", tmp_path / "deleted.xlsx", "佐证材料")
    result = collect_file(config, ledger, tmp_path / "deleted.xlsx", now)
    assert result.outcome == "accepted" and result.tasks_accepted == [t1]
    gone = _with(result, "找不到“佐证材料”列")
    assert (gone.severity, gone.field) == ("warning", "evidence")
    assert gone.message in _stored(ledger, result)
    got = answers(ledger, config, UNIT)[t1]
    assert (got["status"], got["issues"], got["evidence"]) == ("推进中", "人手不足。", "")


def test_a_deleted_progress_column_makes_every_done_row_a_problem(config, ledger, now, blank, tmp_path):
    t1, t2, t3, *_ = tasks_of(ledger, config, UNIT)
    fill_workbook(blank, tmp_path / "filled.xlsx", {
        t1: {"落实情况": "已完成", "工作进展及成效": "写了也被删了", "完成时间": dt.datetime(2021, 6, 30)},
        t2: {"落实情况": "推进中"},
        t3: {"落实情况": "已完成", "佐证材料": "文件"},
    })
    corpus.delete_column(tmp_path / "filled.xlsx", tmp_path / "deleted.xlsx", "工作进展及成效")
    result = collect_file(config, ledger, tmp_path / "deleted.xlsx", now)
    assert result.outcome == "accepted" and result.tasks_accepted == [t2]
    for t in (t1, t3):
        row = next(p for p in result.errors if p.task_number == t)
        assert row.field == "progress" and "表中没有这一列" in row.message and "本行未采用" in row.message
    assert _with(result, "找不到“工作进展及成效”列").severity == "warning"
    assert set(answers(ledger, config, UNIT)) == {t2}


def test_content_in_a_column_the_workbook_never_had_is_reported(config, ledger, now, blank, tmp_path):
    t1 = tasks_of(ledger, config, UNIT)[0]
    fill_workbook(blank, tmp_path / "filled.xlsx", {t1: {"落实情况": "推进中"}})
    wb = openpyxl.load_workbook(tmp_path / "filled.xlsx")
    ws = wb[TASK_SHEET]
    header, cols = find_header(ws)
    extra = ws.max_column + 1
    ws.cell(header, extra).value = "备注"
    row = next(r for r in range(header + 1, ws.max_row + 1) if ws.cell(r, 1).value == t1)
    ws.cell(row, extra).value = "请领导审阅"
    wb.save(tmp_path / "extra.xlsx")
    result = collect_file(config, ledger, tmp_path / "extra.xlsx", now)
    note = _with(result, "“备注”不是下发工作簿中的列")
    assert note.severity == "warning" and note.cell == f"{openpyxl.utils.get_column_letter(extra)}{row}"


# --------------------------------------------------------------------------- formulas without a value


def test_formulas_saved_without_a_value_are_kept_as_text_with_a_warning(config, ledger, now, blank, tmp_path):
    t1, t2, t3, *_ = tasks_of(ledger, config, UNIT)
    link = '=HYPERLINK("http://np.gov.cn/x.html","点击查看")'
    path = tmp_path / "formulas.xlsx"
    fill_workbook(blank, path, {
        t1: {"落实情况": "推进中", "工作进展及成效": "=1+1", "佐证材料": link},
        t2: {"落实情况": '="已完成"', "工作进展及成效": "写了"},
        t3: {"落实情况": "推进中", "工作进展及成效": "普通文字"},
    }, as_text=False)
    with zipfile.ZipFile(path) as z:  # what openpyxl wrote: the formula, no value
        assert any("<f>1+1</f>" in z.read(n).decode() for n in z.namelist() if n.startswith("xl/worksheets/"))
    result = collect_file(config, ledger, path, now)
    assert result.outcome == "accepted", result.reason
    got = answers(ledger, config, UNIT)
    assert (got[t1]["progress"], got[t1]["evidence"]) == ("=1+1", link)
    for key in ("工作进展及成效", "佐证材料"):
        warn = _with(result, f"第 {t1} 项的“{key}”是公式")
        assert warn.severity == "warning" and "已按文字原样保存" in warn.message
    # A formula in 落实情况 is not a status: refused and named, never counted as 未填报.
    status = next(p for p in result.errors if p.task_number == t2)
    assert status.field == "status" and '="已完成"' in status.message
    assert t2 not in got and got[t3]["progress"] == "普通文字"
    assert {p.message for p in result.problems} <= _stored(ledger, result)

    # Downstream the text stays text: the report and a re-issued workbook hold it as a string.
    from automation.progress.report import build_report
    from automation.workbook.build import build_unit_workbook

    report = build_report(config, ledger, now, out=tmp_path / "report.xlsx")
    batch = ledger.require_batch(config.batch.title)
    again = build_unit_workbook(config, ledger, batch, ledger.unit_by_name(UNIT).id, now, prefill=True,
                                out_path=tmp_path / "again.xlsx").path
    for made in (report, again):
        with zipfile.ZipFile(made) as z:
            xml = "".join(z.read(n).decode("utf-8") for n in z.namelist() if n.endswith(".xml"))
        assert "<f>" not in xml and "<f " not in xml, made.name
        assert "=1+1" in xml and ("HYPERLINK(&quot;" in xml or 'HYPERLINK("' in xml)
    reissued = openpyxl.load_workbook(again)[TASK_SHEET]
    cells = [c for row in reissued.iter_rows() for c in row if c.value == "=1+1"]
    assert cells and all(c.data_type == "s" for c in cells)


def test_formula_text_typed_as_text_is_still_refused(config, ledger, now, blank, tmp_path):
    """Text that only looks like a formula (typed into a text cell) is formula injection: unchanged."""
    t1 = tasks_of(ledger, config, UNIT)[0]
    fill_workbook(blank, tmp_path / "typed.xlsx", {t1: {"落实情况": "推进中", "佐证材料": "=cmd|' /C calc'!A0"}})
    result = collect_file(config, ledger, tmp_path / "typed.xlsx", now)
    assert result.outcome == "quarantined" and "公式" in result.reason


# --------------------------------------------------------------------------- another unit's metadata


def test_another_units_pasted_metadata_is_quarantined_naming_both(config, ledger, now, tmp_path):
    mine = issued(config, ledger, UNIT, now, tmp_path / "mine.xlsx")
    donor = issued(config, ledger, OTHER, now, tmp_path / "donor.xlsx")
    t1 = tasks_of(ledger, config, UNIT)[0]
    fill_workbook(mine, tmp_path / "filled.xlsx", {t1: {"落实情况": "推进中", "工作进展及成效": "财政局填的"}})
    corpus.paste_metadata(tmp_path / "filled.xlsx", donor, tmp_path / "pasted.xlsx")
    result = collect_file(config, ledger, tmp_path / "pasted.xlsx", now)
    assert result.outcome == "quarantined"
    assert UNIT in result.reason and OTHER in result.reason and "隐藏签名页" in result.reason
    sub = ledger.submission_by_sha(result.sha256)
    assert (sub.outcome, sub.unit_id) == ("quarantined", ledger.unit_by_name(UNIT).id)
    assert answers(ledger, config, UNIT) == {} and answers(ledger, config, OTHER) == {}
    assert Path(result.quarantine_path).read_bytes() == (tmp_path / "pasted.xlsx").read_bytes()


def test_pasted_metadata_with_the_title_retyped_is_known_by_the_rows(config, ledger, now, tmp_path):
    mine = issued(config, ledger, UNIT, now, tmp_path / "mine.xlsx")
    donor = issued(config, ledger, OTHER, now, tmp_path / "donor.xlsx")
    title = openpyxl.load_workbook(donor)[TASK_SHEET].cell(1, 1).value
    corpus.paste_metadata(mine, donor, tmp_path / "pasted.xlsx", title=title)
    result = collect_file(config, ledger, tmp_path / "pasted.xlsx", now)
    assert result.outcome == "quarantined"
    assert UNIT in result.reason and OTHER in result.reason
    # The unit's own workbook with rows it deleted is not mistaken for another unit's.
    wb = openpyxl.load_workbook(donor)
    ws = wb[TASK_SHEET]
    header, _cols = find_header(ws)
    ws.delete_rows(next(r for r in range(header + 1, ws.max_row + 1) if ws.cell(r, 1).value == 21))
    wb.save(tmp_path / "fewer.xlsx")
    own = collect_file(config, ledger, tmp_path / "fewer.xlsx", now)
    assert own.outcome == "accepted" and own.unit == OTHER


# --------------------------------------------------------------------------- swapped 序号


def test_swapped_numbers_the_task_text_wins_and_the_warning_says_where_it_went(config, ledger, now, blank,
                                                                              tmp_path):
    t1, t2, *_ = tasks_of(ledger, config, UNIT)
    fill_workbook(blank, tmp_path / "filled.xlsx", {
        t1: {"落实情况": "已完成", "工作进展及成效": f"这是第{t1}项的进展"},
        t2: {"落实情况": "推进中", "工作进展及成效": f"这是第{t2}项的进展"},
    })
    corpus.swap_numbers(tmp_path / "filled.xlsx", tmp_path / "swapped.xlsx", t1, t2)
    result = collect_file(config, ledger, tmp_path / "swapped.xlsx", now)
    assert result.outcome == "accepted" and result.tasks_accepted == [t1, t2]
    got = answers(ledger, config, UNIT)
    assert (got[t1]["status"], got[t1]["progress"]) == ("已完成", f"这是第{t1}项的进展")
    assert (got[t2]["status"], got[t2]["progress"]) == ("推进中", f"这是第{t2}项的进展")
    for stored_as, shown in ((t1, t2), (t2, t1)):
        warn = next(p for p in result.problems if p.task_number == stored_as and p.field == "number")
        assert f"序号是 {shown}" in warn.message and f"已按任务内容记为第 {stored_as} 项" in warn.message
    assert not any("下发内容" in p.message for p in result.problems)


# --------------------------------------------------------------------------- names, links, hidden files


def test_names_that_are_not_utf8_are_read_and_one_file_never_stops_a_run(config, ledger, now, blank, ws, tmp_path):
    t1 = tasks_of(ledger, config, UNIT)[0]
    fill_workbook(blank, tmp_path / "a.xlsx", {t1: {"落实情况": "推进中", "工作进展及成效": "GBK 文件名"}})
    other = issued(config, ledger, OTHER, now, tmp_path / "other.xlsx")
    fill_workbook(other, tmp_path / "b.xlsx", {tasks_of(ledger, config, OTHER)[0]: {"落实情况": "推进中"}})
    inbox = os.fsencode(ws.inbox)
    gbk = "市财政局回传.xlsx".encode("gbk")
    with pytest.raises(UnicodeDecodeError):
        gbk.decode("utf-8")
    with open(os.path.join(inbox, gbk), "wb") as fh:
        fh.write((tmp_path / "a.xlsx").read_bytes())
    with open(os.path.join(inbox, b"\xff\xfe\x80-broken.xlsx"), "wb") as fh:
        fh.write(b"not a workbook at all")
    (ws.inbox / "zz-司法局.xlsx").write_bytes((tmp_path / "b.xlsx").read_bytes())
    results = {r.file_name: r for r in collect_paths(config, ledger, None, now)}
    assert results["市财政局回传.xlsx"].outcome == "accepted"
    assert results["zz-司法局.xlsx"].outcome == "accepted"
    broken = next(r for n, r in results.items() if n.endswith("-broken.xlsx"))
    assert broken.outcome == "quarantined" and Path(broken.quarantine_path).is_file()
    assert answers(ledger, config, UNIT)[t1]["progress"] == "GBK 文件名"
    names = {s.file_name for s in ledger.submissions()}
    assert "市财政局回传.xlsx" in names and all(n.isprintable() for n in names)
    assert os.listdir(inbox) == []


def test_an_imap_attachment_named_in_gbk_bytes(config, ledger, now, blank, tmp_path):
    from automation.mail.intake import parse_message

    t1 = tasks_of(ledger, config, UNIT)[0]
    fill_workbook(blank, tmp_path / "a.xlsx", {t1: {"落实情况": "推进中"}})
    import base64

    body = base64.encodebytes((tmp_path / "a.xlsx").read_bytes())
    sender = ledger.unit_by_name(UNIT).emails[0]
    raw = (f"From: {sender}\r\nSubject: =?utf-8?b?5Zue5Lyg?=\r\nMIME-Version: 1.0\r\n"
           "Content-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\n见附件\r\n"
           "--XX\r\nContent-Type: application/octet-stream\r\n").encode() + (
        b'Content-Disposition: attachment; filename="' + "财政局回传.xlsx".encode("gbk") + b'"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n" + body + b"\r\n--XX--\r\n")
    (att,) = parse_message(raw).workbooks
    result = collect_bytes(config, ledger, att.filename, att.data, now, sender=sender)
    assert (result.outcome, result.file_name) == ("accepted", "财政局回传.xlsx")
    # A name that still holds undecodable bytes (kept by Python as lone surrogates) is stored readably.
    odd = collect_bytes(config, ledger, "回传\udcff\udcfe.xlsx", b"junk", now, sender=sender)
    assert odd.outcome == "quarantined" and odd.file_name.startswith("回传") and odd.file_name.isprintable()
    assert ledger.submission_by_sha(odd.sha256).file_name == odd.file_name


def test_links_loops_and_hidden_names_are_reported_and_the_run_goes_on(config_file, config, ledger, now, blank, ws,
                                                                       tmp_path, capsys):
    t1 = tasks_of(ledger, config, UNIT)[0]
    fill_workbook(blank, tmp_path / "a.xlsx", {t1: {"落实情况": "推进中"}})
    (ws.inbox / "sub").mkdir()
    (ws.inbox / "sub" / "财政局.xlsx").write_bytes((tmp_path / "a.xlsx").read_bytes())
    (ws.inbox / ".隐藏的回传.xlsx").write_bytes((tmp_path / "a.xlsx").read_bytes())
    (ws.inbox / "~$财政局.xlsx").write_bytes(b"lock")                    # an Excel lock file: passed over
    os.symlink(ws.inbox, ws.inbox / "sub" / "回到收件箱")                 # a folder link looping back
    os.symlink(ws.inbox / "自己.xlsx", ws.inbox / "自己.xlsx")            # a link to itself
    os.symlink(tmp_path / "已删除.xlsx", ws.inbox / "快捷方式.xlsx")      # a link to a file gone
    assert main(["--config", str(config_file), "collect", "--json", "--now", "2021-11-01T10:00"]) == 0
    doc = json.loads(capsys.readouterr().out)
    by_name = {f["file_name"]: f for f in doc["files"]}
    assert by_name["财政局.xlsx"]["outcome"] == "accepted"
    reasons = {name: by_name[name]["reason"] for name in ("回到收件箱", "自己.xlsx", "快捷方式.xlsx", ".隐藏的回传.xlsx")}
    assert all(by_name[n]["outcome"] == "skipped" for n in reasons)
    assert "循环" in reasons["回到收件箱"] and "指向自身" in reasons["自己.xlsx"]
    assert "已删除.xlsx" in reasons["快捷方式.xlsx"] and "不存在" in reasons["快捷方式.xlsx"]
    assert "“.”开头" in reasons[".隐藏的回传.xlsx"]
    assert doc["totals"]["skipped"] == 4 and doc["totals"]["files"] == 5
    assert "~$财政局.xlsx" not in by_name
    assert (ws.inbox / ".隐藏的回传.xlsx").exists() and (ws.inbox / "快捷方式.xlsx").is_symlink()
    assert len(ledger.submissions()) == 1


# --------------------------------------------------------------------------- files being written, file times

_WRITER = """
import sys
data = open(sys.argv[1], "rb").read()
with open(sys.argv[2], "wb") as out:
    out.write(data[: len(data) // 2])
    out.flush()
    print("half", flush=True)
    sys.stdin.readline()
    out.write(data[len(data) // 2:])
print("done", flush=True)
"""


class _Writer:
    """A process writing a file, paused half-way until told to go on."""

    def __init__(self, src: Path, dst: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(src), str(dst)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "half"

    def finish(self) -> None:
        out, _err = self.proc.communicate("go\n", timeout=30)
        assert out.strip() == "done"


def test_a_file_still_being_written_is_left_in_place_and_taken_next_run(config, ledger, blank, ws, tmp_path):
    t1 = tasks_of(ledger, config, UNIT)[0]
    fill_workbook(blank, tmp_path / "a.xlsx", {t1: {"落实情况": "推进中", "工作进展及成效": "写完了"}})
    target = ws.inbox / "正在保存.xlsx"
    writer = _Writer(tmp_path / "a.xlsx", target)
    try:
        now = clock.now()  # the run's time: the half-written file was modified a moment ago
        (result,) = collect_paths(config, ledger, None, now)
        assert result.outcome == "skipped" and "正在写入" in result.reason
        assert target.exists() and ledger.submissions() == [] and listing(ws.quarantine) == []
    finally:
        writer.finish()
    later = clock.now() + dt.timedelta(seconds=QUIET_SECONDS + 1)  # the next run, once the file is quiet
    (result,) = collect_paths(config, ledger, None, later)
    assert result.outcome == "accepted" and answers(ledger, config, UNIT)[t1]["progress"] == "写完了"
    assert listing(ws.inbox) == []


def test_a_file_that_changes_while_it_is_checked_is_skipped(config, ledger, blank, ws, tmp_path):
    fill_workbook(blank, tmp_path / "a.xlsx", {tasks_of(ledger, config, UNIT)[0]: {"落实情况": "推进中"}})
    target = ws.inbox / "写入中.xlsx"
    writer = _Writer(tmp_path / "a.xlsx", target)
    try:
        old = clock.now() - dt.timedelta(minutes=10)
        os.utime(target, (old.timestamp(), old.timestamp()))  # quiet for a while (a writer that stalled)
        item = stat_input(target, clock.now(), InboxCheck(ws.inbox))
        assert item.unreadable is None
    finally:
        writer.finish()  # it goes on writing between the first look and the reading
    load_input(item, 10 << 20)
    assert item.unreadable and "正在写入" in item.unreadable


def test_a_modification_time_in_the_future_never_wins(config, ledger, blank, ws, tmp_path):
    t1 = tasks_of(ledger, config, UNIT)[0]
    fill_workbook(blank, tmp_path / "old.xlsx", {t1: {"落实情况": "推进中", "工作进展及成效": "旧的，时钟错成2030年"}})
    fill_workbook(blank, tmp_path / "new.xlsx", {t1: {"落实情况": "已完成", "工作进展及成效": "新的",
                                                      "完成时间": dt.datetime(2021, 6, 30)}})
    bogus = ws.inbox / "a-2030.xlsx"
    bogus.write_bytes((tmp_path / "old.xlsx").read_bytes())
    future = dt.datetime(2030, 1, 1, tzinfo=clock.TZ).timestamp()
    os.utime(bogus, (future, future))  # arrived first, dated 2030 by a wrong clock
    (ws.inbox / "b-newer.xlsx").write_bytes((tmp_path / "new.xlsx").read_bytes())  # arrived after it
    now = clock.now() + dt.timedelta(seconds=QUIET_SECONDS + 1)
    results = collect_paths(config, ledger, None, now)
    assert [r.file_name for r in results] == ["a-2030.xlsx", "b-newer.xlsx"]
    assert all(r.outcome == "accepted" for r in results)
    assert all(clock.parse(r.received_at) <= now for r in results)
    assert clock.parse(results[0].received_at).year < 2030
    assert answers(ledger, config, UNIT)[t1]["progress"] == "新的"


# --------------------------------------------------------------------------- two collects at once


def _filled_inbox(config, ledger, now, ws, tmp_path, units=("市财政局", "市司法局", "市发改委", "市商务局")) -> int:
    for unit in units:
        blank = issued(config, ledger, unit, now, tmp_path / f"{unit}-blank.xlsx")
        fill_workbook(blank, ws.inbox / f"{unit}.xlsx", {tasks_of(ledger, config, unit)[0]: {"落实情况": "推进中"}})
    return len(units)


def test_two_collect_processes_at_once_one_waits_for_the_other(config_file, config, ledger, now, ws, tmp_path):
    n = _filled_inbox(config, ledger, now, ws, tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = [sys.executable, "-m", "automation", "--config", str(config_file), "collect", "--json", "--now",
            "2021-11-01T10:00"]
    lock = CollectLock(ws.root)
    lock.acquire()  # a first run holds the workspace: both processes start while it runs
    procs, errs = [], []
    try:
        for _ in range(2):
            p = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 encoding="utf-8")
            procs.append(p)
        for p in procs:  # each says it is waiting, then waits
            line = ""
            while "另一个 automation collect" not in line:
                line = p.stderr.readline()
                assert line, "the process ended without saying it waits"
            errs.append(line)
    finally:
        lock.release()
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        errs.append(err)
        assert p.returncode == 0, err
        outs.append(json.loads(out))
    text = "".join(errs)
    assert "Traceback" not in text and "IntegrityError" not in text
    assert sorted(o["totals"]["accepted"] for o in outs) == [0, n]
    assert len(ledger.submissions()) == n and listing(ws.inbox) == []


def test_a_file_stored_meanwhile_by_another_writer_is_a_duplicate(config, ledger, now, ws, tmp_path, monkeypatch):
    """The IMAP intake (no collect lock) stores the same bytes while a folder run is under way: the
    run's insert meets the other row and the file is a duplicate, not an IntegrityError."""
    _filled_inbox(config, ledger, now, ws, tmp_path, units=("市财政局", "市司法局", "市发改委"))
    third = sorted(ws.inbox.iterdir())[2]
    data = third.read_bytes()
    monkeypatch.setattr(pipeline, "_FLUSH_EVERY", 1)  # commit after each file, as a long run does
    other = Ledger.open(ws.root)
    stored = []

    def meanwhile(done, _total, _result):
        if done == 1:
            stored.append(collect_bytes(config, other, "邮件附件.xlsx", data, now, source="imap"))

    try:
        results = collect_paths(config, ledger, None, now, progress=meanwhile)
    finally:
        other.close()
    assert stored[0].outcome == "accepted"
    by_name = {r.file_name: r for r in results}
    assert by_name[third.name].outcome == "duplicate"
    assert by_name[third.name].submission_id == stored[0].submission_id
    assert len(ledger.submissions()) == 3 and listing(ws.inbox) == []


# --------------------------------------------------------------------------- long text


def test_text_longer_than_a_cell_is_cut_with_a_warning_on_the_submission(config, ledger, now, blank, tmp_path):
    t1 = tasks_of(ledger, config, UNIT)[0]
    text = "长" * (CELL_TEXT_LIMIT + 5000)
    # openpyxl (like Excel) cuts at the limit itself; a script or a web export writing the XML does not.
    fill_workbook(blank, tmp_path / "marked.xlsx", {t1: {"落实情况": "推进中", "存在问题及下步打算": "LONG-TEXT"}})
    with zipfile.ZipFile(tmp_path / "marked.xlsx") as z:
        part = next(n for n in z.namelist() if b">LONG-TEXT<" in z.read(n))
    corpus.rewrite_zip(tmp_path / "marked.xlsx", tmp_path / "long.xlsx",
                       {part: lambda x: x.replace(b">LONG-TEXT<", f">{text}<".encode())})
    result = collect_file(config, ledger, tmp_path / "long.xlsx", now)
    assert result.outcome == "accepted"
    assert answers(ledger, config, UNIT)[t1]["issues"] == text[:CELL_TEXT_LIMIT]
    warn = _with(result, f"超过单元格上限 {CELL_TEXT_LIMIT} 字")
    assert (warn.severity, warn.task_number, warn.field) == ("warning", t1, "issues")
    assert str(len(text)) in warn.message and warn.message in _stored(ledger, result)


# --------------------------------------------------------------------------- a unit without an address


def test_send_says_no_address_for_a_unit_without_email(config_file, capsys):
    text = config_file.read_text(encoding="utf-8")
    start = text.index('name = "市财政局"')
    end = text.index("\n", text.index("email", start))
    config_file.write_text(text[:start] + text[start:end].split("email")[0] + "email = []" + text[end:],
                           encoding="utf-8")
    assert main(["--config", str(config_file), "init"]) == 0
    assert "市财政局" in capsys.readouterr().err
    args = ["--config", str(config_file), "send", "--unit", "市财政局", "--unit", "市司法局"]
    assert main([*args, "--json"]) == 0
    results = {r["unit"]: r for r in json.loads(capsys.readouterr().out)}
    assert results["市财政局"]["action"] == "no-address"
    assert "市财政局" in results["市财政局"]["error"] and "email" in results["市财政局"]["error"]
    assert results["市司法局"]["action"] == "sent"
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "市财政局" in out and "未登记邮箱" in out
