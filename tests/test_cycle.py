"""The supervision cycle (issue 18): per-task 完成时限 in reminders on 2027's working days, the workbook's
完成时限 column, refused answers named in reminders and handed back in the re-attached workbook."""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import logging
from email import policy
from pathlib import Path

import openpyxl
import pytest

from automation import clock
from automation.agenda import next_reminder
from automation.collect.pipeline import collect_file
from automation.config import Config, load_config
from automation.demo import fill_returned_workbook
from automation.ledger import Ledger, open_workspace
from automation.ledger.records import Response
from automation.mail.transports import OutboxTransport
from automation.progress.status import status_summary
from automation.remind import due_reminders, open_tasks, send_reminders
from automation.tasks.importing import init_batch
from automation.units import Assignment
from automation.workbook.build import build_unit_workbook
from automation.workbook.layout import TASK_SHEET
from automation.workdays import WorkCalendar

D = dt.date
TZ = clock.TZ
A, B = "市财政局", "市商务局"


def at(y: int, m: int, d: int, h: int = 9, minute: int = 30) -> dt.datetime:
    return dt.datetime(y, m, d, h, minute, tzinfo=TZ)


def configure(config_file: Path, deadline: str, year: int, extra: str = "") -> Config:
    text = config_file.read_text(encoding="utf-8")
    text = text.replace("deadline = 2021-12-15", f"deadline = {deadline}").replace("year = 2021", f"year = {year}")
    text = text.replace("weekly_weekday = 1", "weekly_weekday = 0") + extra
    config_file.write_text(text, encoding="utf-8")
    return load_config(config_file)


def answer(ledger: Ledger, unit: str, statuses: dict[int, str], when: dt.datetime, tag: str) -> None:
    unit_id = ledger.unit_by_name(unit).id
    ledger.record_submission(
        sha256=f"{tag}-{unit_id}", file_name=f"{unit}.xlsx", archive_path="-", received_at=when, now=when,
        outcome="accepted", batch_id=1, unit_id=unit_id,
        responses=[Response(t, s, "已推进") for t, s in statuses.items()])


def with_due_dates(ledger: Ledger, config: Config, due: dict[int, tuple[str, str]], now: dt.datetime) -> None:
    """Give tasks their own 完成时限 (text, ISO date), as the table import does for a 时限 column."""
    batch = ledger.require_batch(config.batch.title)
    tasks = [dataclasses.replace(t, deadline=due[t.number][0], due_date=due[t.number][1]) if t.number in due else t
             for t in ledger.tasks(batch.id)]
    assignments = [Assignment(a.task, a.unit, a.role, a.note) for a in ledger.assignments(batch.id)]
    ledger.import_tasks(batch, tasks, assignments, now, replace=True)


def shared_tasks(ledger: Ledger) -> tuple[int, int]:
    """Two tasks that both A and B have."""
    mine = {u: {a.task for a in ledger.assignments(1, ledger.unit_by_name(u).id)} for u in (A, B)}
    both = sorted(mine[A] & mine[B])
    return both[0], both[1]


@pytest.fixture
def year_2027(config_file: Path) -> tuple[Config, Ledger, int, int]:
    """A 2027 batch (deadline 12-15) whose task t1 is due 2月12日 (after 春节) and t2 10月8日 (after 国庆);
    every unit but A and B has finished; B finishes t1 and t2 early, A never answers until late."""
    config = configure(config_file, "2027-12-15", 2027)
    _ws, ledger = open_workspace(config)
    init_batch(config, ledger, at(2027, 1, 4, 8))
    t1, t2 = shared_tasks(ledger)
    with_due_dates(ledger, config, {t1: ("2月12日前", "2027-02-12"), t2: ("国庆节后一周内", "2027-10-08")},
                   at(2027, 1, 4, 8))
    for u in ledger.assigned_units(1):
        if u.name not in (A, B):
            answer(ledger, u.name, {a.task: "已完成" for a in ledger.assignments(1, u.id)}, at(2027, 1, 5), "done")
    b_tasks = [a.task for a in ledger.assignments(1, ledger.unit_by_name(B).id)]
    answer(ledger, B, {t: "已完成" if t in (t1, t2) else "推进中" for t in b_tasks}, at(2027, 1, 20), "b")
    return config, ledger, t1, t2


def test_2027_per_task_deadlines_remind_on_working_days_only(year_2027, tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    config, ledger, t1, t2 = year_2027
    a_id = ledger.unit_by_name(A).id
    assert next_reminder(config, ledger, at(2027, 1, 20, 12), a_id).day == D(2027, 2, 1)
    transport = OutboxTransport(tmp_path / "outbox")
    cal = WorkCalendar()
    sent = []
    day = D(2027, 1, 4)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="automation.workdays"):
        while day <= D(2027, 12, 31):
            for r in send_reminders(config, ledger, at(day.year, day.month, day.day), transport, calendar=cal):
                assert r.action == "sent", r
                sent.append(r)
            if day == D(2027, 2, 18):    # A finishes the 春节 task the day after its escalation
                answer(ledger, A, {t1: "已完成"}, at(2027, 2, 18, 12), "a1")
            if day == D(2027, 10, 11):   # … and the 国庆 task on its first overdue day
                answer(ledger, A, {t2: "已完成"}, at(2027, 10, 11, 12), "a2")
            day += dt.timedelta(days=1)
    a = [(r.detail["day"], r.detail["kind"], r.detail["deadline"], r.detail.get("days_left"), r.detail["overdue_days"])
         for r in sent if r.unit == A]
    assert a[:10] == [
        ("2027-02-01", "before", "2027-02-12", 5, 0),      # 5 working days: 春节 02-05..10 skipped
        ("2027-02-11", "before", "2027-02-12", 1, 0),
        ("2027-02-15", "overdue", "2027-02-12", None, 1),
        ("2027-02-16", "overdue", "2027-02-12", None, 2),
        ("2027-02-17", "escalate", "2027-02-12", None, 3),
        ("2027-02-18", "overdue", "2027-02-12", None, 4),
        ("2027-09-28", "before", "2027-10-08", 5, 0),      # 国庆 10-01..05 skipped
        ("2027-10-07", "before", "2027-10-08", 1, 0),
        ("2027-10-11", "overdue", "2027-10-08", None, 1),
        ("2027-12-08", "before", "2027-12-15", 5, 0),      # the batch deadline for the other tasks
    ]
    assert a[10:14] == [("2027-12-14", "before", "2027-12-15", 1, 0), ("2027-12-16", "overdue", "2027-12-15", None, 1),
                        ("2027-12-17", "overdue", "2027-12-15", None, 2),
                        ("2027-12-20", "escalate", "2027-12-15", None, 3)]    # escalated again: another deadline
    assert len(a) == 14 + 9                                                   # then every working day to 12-31
    # B finished both dated tasks: nothing until the batch deadline draws near
    b = [r.detail["day"] for r in sent if r.unit == B]
    assert b[:3] == ["2027-12-08", "2027-12-14", "2027-12-16"]
    # never on a holiday or a weekend, one mail per unit per day
    days = [D.fromisoformat(r.detail["day"]) for r in sent]
    assert all(cal.is_workday(d) for d in days)
    assert not set(days) & ({D(2027, 2, m) for m in range(5, 11)} | {D(2027, 10, m) for m in range(1, 6)})
    assert len({(r.unit, r.detail["day"]) for r in sent}) == len(sent)
    escalations = [r for r in sent if r.detail["kind"] == "escalate" and r.unit == A]
    assert all("ducha@np.example.com" in r.cc for r in escalations) and len(escalations) == 2
    assert sum("2027" in m.getMessage() for m in caplog.records) == 1          # the unknown 调休, once
    # the first one lists everything open, grouped by due date, the dated task first
    first = email.message_from_bytes(Path(sent[0].path).read_bytes(), policy=policy.default)
    plain = first.get_body(("plain",)).get_content()
    assert plain.index("完成时限2027年2月12日（还有5个工作日）") < plain.index("报送截止2027年12月15日")
    assert "部分任务的完成时限为2027年2月12日" in plain and "距截止还有5个工作日" in str(first["Subject"])
    assert "你单位" in plain and "贵单位" not in plain
    ledger.close()


def test_status_and_report_show_overdue_tasks(year_2027) -> None:
    config, ledger, t1, _t2 = year_2027
    data = status_summary(config, ledger, at(2027, 2, 16))
    tasks = {t["task"]: t for t in data["tasks"]}
    assert tasks[t1]["overdue"] is True and tasks[t1]["due_date"] == "2027-02-12" and tasks[t1]["deadline"] == "2月12日前"
    assert tasks[t1]["overdue_workdays"] == 2 and data["overdue_tasks"] == 1
    units = {u["unit"]: u for u in data["units"]}
    assert units[A]["overdue_tasks"] == 1 and units[B]["overdue_tasks"] == 0
    assert units[A]["level"] == "red" and not units[A]["overdue"]      # late on a task, not on the batch
    ledger.close()


def test_workbook_shows_due_dates_sorted_and_flags_the_overdue_ones(year_2027, tmp_path: Path) -> None:
    config, ledger, t1, t2 = year_2027
    batch = ledger.require_batch(config.batch.title)
    built = build_unit_workbook(config, ledger, batch, ledger.unit_by_name(A).id, at(2027, 2, 16),
                                out_path=tmp_path / "a.xlsx")
    ws = openpyxl.load_workbook(built.path)[TASK_SHEET]
    header = [c.value for c in ws[3]]
    due_col = header.index("完成时限")
    rows = [r for r in ws.iter_rows(min_row=4) if isinstance(r[0].value, int)]
    due = {r[0].value: r[due_col] for r in rows}
    assert due[t1].value == "2月12日前（已逾期）" and due[t1].fill.fgColor.rgb.endswith("FCE4D6")
    assert due[t2].value == "国庆节后一周内" and not due[t2].fill.fgColor.rgb.endswith("FCE4D6")
    # within its 小项 the dated task comes first
    order = [r[0].value for r in rows]
    assert built.tasks == order
    help_text = "\n".join(str(c.value) for c in openpyxl.load_workbook(built.path)["填报说明"]["A"] if c.value)
    assert "必须填写“工作进展及成效”" in help_text and "佐证材料" in help_text and "牵头" in help_text
    ledger.close()


def test_reminder_names_refused_answers_and_hands_them_back(config_file: Path, tmp_path: Path) -> None:
    config = configure(config_file, "2026-09-30", 2026)
    config = dataclasses.replace(config, remind=dataclasses.replace(config.remind, attach_workbook=True))
    _ws, ledger = open_workspace(config)
    init_batch(config, ledger, at(2026, 9, 1, 8))
    batch = ledger.require_batch(config.batch.title)
    unit = ledger.unit_by_name(A)
    issued = build_unit_workbook(config, ledger, batch, unit.id, at(2026, 9, 1, 8), out_path=tmp_path / "i.xlsx")
    t = issued.tasks
    filled = tmp_path / "back.xlsx"
    fill_returned_workbook(issued.path, filled, {
        t[0]: {"status": "差不多了", "progress": "正在收尾，已完成九成"},
        t[1]: {"status": "已完成"},                                      # no 工作进展及成效
        t[2]: {"status": "推进中", "progress": "按计划推进"},
    })
    result = collect_file(config, ledger, filled, at(2026, 9, 10, 15))
    assert result.outcome == "accepted" and result.tasks_accepted == [t[2]]
    kept = {r.task: r for r in ledger.refusals(batch.id, unit.id)}
    assert kept[t[0]].values == {"status": "差不多了", "progress": "正在收尾，已完成九成"} and kept[t[0]].row_refused
    due = [r for r in due_reminders(config, ledger, at(2026, 9, 29)) if r.unit == A][0]
    states = {x.task: x for x in due.tasks}
    assert states[t[0]].refused and "差不多了" in states[t[0]].refused
    assert states[t[1]].refused and "工作进展及成效" in states[t[1]].refused
    assert not states[t[2]].refused and states[t[2]].status == "推进中"
    assert not states[t[3]].refused and states[t[3]].status == ""
    (sent,) = [r for r in send_reminders(config, ledger, at(2026, 9, 29), OutboxTransport(tmp_path / "o"))
               if r.unit == A]
    assert sent.detail["refused"] == [t[0], t[1]]
    msg = email.message_from_bytes(Path(sent.path).read_bytes(), policy=policy.default)
    plain = msg.get_body(("plain",)).get_content()
    assert f"{t[0]}." in plain and "已报送但未通过：" in plain and "当前：未报送" in plain and "当前：推进中" in plain
    assert "其中2项已报送但未通过审核" in plain
    (att,) = list(msg.iter_attachments())
    book = tmp_path / "att.xlsx"
    book.write_bytes(att.get_content())
    ws = openpyxl.load_workbook(book)[TASK_SHEET]
    header = [c.value for c in ws[3]]
    cells = {r[0].value: r for r in ws.iter_rows(min_row=4) if isinstance(r[0].value, int)}
    status, progress = header.index("落实情况"), header.index("工作进展及成效")
    assert cells[t[0]][status].value == "差不多了" and cells[t[0]][progress].value == "正在收尾，已完成九成"
    assert cells[t[0]][status].fill.fgColor.rgb.endswith("FCE4D6")
    assert "未通过" in cells[t[0]][status].comment.text and "差不多了" in cells[t[0]][status].comment.text
    assert "工作进展及成效" in cells[t[1]][progress].comment.text and cells[t[1]][status].value == "已完成"
    assert cells[t[2]][status].value == "推进中" and cells[t[2]][status].comment is None
    # what the unit corrects comes back in: the refusal is over
    fixed = tmp_path / "fixed.xlsx"
    fill_returned_workbook(book, fixed, {t[0]: {"status": "推进中"}, t[1]: {"progress": "已全部公开"}})
    again = collect_file(config, ledger, fixed, at(2026, 9, 29, 15))
    assert again.outcome == "accepted" and {t[0], t[1]} <= set(again.tasks_accepted)
    assert not [x for x in open_tasks(ledger, batch, unit.id) if x.refused]
    ledger.close()
