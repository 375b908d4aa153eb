"""Reporting rounds (定期报送, issue 18 §2) over a simulated 2027: monthly rounds by the 25th, each with its
reminders (before, on, overdue), its own snapshot (``status --round``), the report's 各期进度 sheet and trend."""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import json
from email import policy
from pathlib import Path

import openpyxl
import pytest

from automation import clock
from automation.cli import main
from automation.config import RoundsConfig, load_config
from automation.errors import ConfigError, InputError
from automation.ledger import Ledger, open_workspace
from automation.ledger.records import Response
from automation.mail.transports import OutboxTransport
from automation.progress.report import create_report
from automation.progress.status import status_summary
from automation.remind import send_reminders
from automation.rounds import batch_rounds, current_round, round_of
from automation.tasks.importing import init_batch
from automation.workbook.layout import TASK_SHEET
from automation.workdays import WorkCalendar

D = dt.date
TZ = clock.TZ
X, Y, Z, W = "市财政局", "市商务局", "市统计局", "市国资委"
def with_rounds(text: str, cadence: str, dates: str = "[]") -> str:
    """config.toml's text with its ``[rounds]`` cadence (and dates) set."""
    assert 'cadence = "none"' in text and "dates = []" in text
    return text.replace('cadence = "none"', f'cadence = "{cadence}"').replace("dates = []", f"dates = {dates}")


def at(y: int, m: int, d: int, h: int = 9, minute: int = 30) -> dt.datetime:
    return dt.datetime(y, m, d, h, minute, tzinfo=TZ)


def answer(ledger: Ledger, unit: str, status, when: dt.datetime) -> None:
    unit_id = ledger.unit_by_name(unit).id
    tasks = [a.task for a in ledger.assignments(1, unit_id)]
    ledger.record_submission(
        sha256=f"{unit_id}-{clock.iso(when)}", file_name=f"{unit}.xlsx", archive_path="-", received_at=when,
        now=when, outcome="accepted", batch_id=1, unit_id=unit_id,
        responses=[Response(t, status(i), f"第{when.month}月进展") for i, t in enumerate(tasks)])


def test_rounds_from_the_cadence() -> None:
    monthly = batch_rounds(RoundsConfig("monthly", 31), D(2027, 1, 4), D(2027, 12, 15))
    assert [r.deadline for r in monthly][:3] == [D(2027, 1, 31), D(2027, 2, 28), D(2027, 3, 31)]
    assert monthly[-1].deadline == D(2027, 12, 15) and monthly[-1].last and len(monthly) == 12
    quarterly = batch_rounds(RoundsConfig("quarterly", 25), D(2027, 1, 4), D(2027, 12, 31))
    assert [r.deadline for r in quarterly] == [D(2027, 3, 25), D(2027, 6, 25), D(2027, 9, 25), D(2027, 12, 25),
                                                D(2027, 12, 31)]
    dates = batch_rounds(RoundsConfig("dates", dates=(D(2027, 6, 30), D(2028, 1, 1))), D(2027, 1, 4), D(2027, 12, 31))
    assert [(r.number, r.start, r.deadline) for r in dates] == [(1, None, D(2027, 6, 30)),
                                                                 (2, D(2027, 6, 30), D(2027, 12, 31))]
    assert round_of(dates, D(2027, 6, 30)).number == 1 and round_of(dates, D(2027, 7, 1)).number == 2
    assert round_of(dates, D(2028, 3, 1)).number == 2            # late answers: the last round
    assert current_round(dates, D(2028, 3, 1)).number == 2
    assert len(batch_rounds(RoundsConfig(), D(2027, 1, 4), D(2027, 12, 31))) == 1


def test_rounds_config_is_checked(config_file: Path) -> None:
    text = config_file.read_text(encoding="utf-8")
    config_file.write_text(with_rounds(text, "weekly"), encoding="utf-8")
    with pytest.raises(ConfigError, match="cadence"):
        load_config(config_file)
    config_file.write_text(with_rounds(text, "dates"), encoding="utf-8")
    with pytest.raises(ConfigError, match="dates"):
        load_config(config_file)


@pytest.fixture
def year(config_file: Path):
    text = config_file.read_text(encoding="utf-8")
    text = text.replace("deadline = 2021-12-15", "deadline = 2027-12-15").replace("year = 2021", "year = 2027")
    config_file.write_text(with_rounds(text.replace("weekly_weekday = 1", "weekly_weekday = 0"), "monthly"), encoding="utf-8")
    config = load_config(config_file)
    config = dataclasses.replace(config, remind=dataclasses.replace(config.remind, attach_workbook=False))
    _ws, ledger = open_workspace(config)
    init_batch(config, ledger, at(2027, 1, 4, 8))
    for u in ledger.assigned_units(1):
        if u.name not in (X, Y, Z, W):
            answer(ledger, u.name, lambda _i: "已完成", at(2027, 1, 5))
    yield config, ledger
    ledger.close()


def simulate(config, ledger, transport) -> list:
    """Every day of 2027 at 09:30: reminders; X reports every month on the 20th, Y in rounds 1–3
    (half done by round 3), W everything done in round 3 and then nothing, Z never."""
    cal = WorkCalendar()
    sent = []
    day = D(2027, 1, 4)
    while day <= D(2027, 12, 31):
        sent += send_reminders(config, ledger, at(day.year, day.month, day.day), transport, calendar=cal)
        if day.day == 20:
            answer(ledger, X, lambda _i: "推进中", at(day.year, day.month, 20, 15))
            if day.month <= 3:
                answer(ledger, Y, (lambda i: "已完成" if i % 2 else "推进中") if day.month == 3 else
                       (lambda _i: "推进中"), at(day.year, day.month, 20, 15))
            if day.month == 3:
                answer(ledger, W, lambda _i: "已完成", at(2027, 3, 20, 15))
        day += dt.timedelta(days=1)
    return sent


def test_a_simulated_year_of_monthly_rounds(year, tmp_path: Path, capsys) -> None:
    config, ledger = year
    cal = WorkCalendar()
    sent = simulate(config, ledger, OutboxTransport(tmp_path / "outbox"))
    assert all(r.action == "sent" for r in sent)
    rounds = batch_rounds(config.rounds, D(2027, 1, 4), D(2027, 12, 15))
    assert len(rounds) == 12

    def of(unit):
        return [(r.detail["day"], r.detail["kind"], r.detail["round"], r.detail.get("days_left"),
                 r.detail["overdue_days"]) for r in sent if r.unit == unit]

    # X reports by the 20th: one reminder a round, five working days before its deadline (Jan–Nov)
    x = of(X)
    def before(deadline: D, n: int) -> str:
        """The working day with n working days left until the deadline (a Sunday deadline counts from Friday)."""
        day = deadline
        while not (cal.is_workday(day) and cal.workdays_between(day, deadline) == n):
            day -= dt.timedelta(days=1)
        return day.isoformat()

    expected = [(before(r.deadline, 5), "before", r.number, 5, 0) for r in rounds[:11]]
    assert x[:11] == expected
    assert x[1][0] == "2027-02-18"                      # 春节: 02-05..10 are no working days
    # Y stops after round 3: round 4 (04-25, a Sunday) is chased before, on its last working days, then overdue
    y = of(Y)
    assert y[:3] == expected[:3]
    assert y[3:8] == [("2027-04-16", "before", 4, 5, 0), ("2027-04-22", "before", 4, 1, 0),
                      ("2027-04-26", "overdue", 4, None, 1), ("2027-04-27", "overdue", 4, None, 2),
                      ("2027-04-28", "escalate", 4, None, 3)]
    assert all(k == "overdue" for _d, k, _r, _l, _o in y[8:] if _d < "2027-12-16")
    assert [d for d, k, *_ in y if k == "escalate"] == ["2027-04-28", "2027-12-20"]   # round 4, then the batch
    # Z never reported: round 1 is what it owes, all year
    z = of(Z)
    assert z[:5] == [("2027-01-18", "before", 1, 5, 0), ("2027-01-22", "before", 1, 1, 0),
                     ("2027-01-26", "overdue", 1, None, 1), ("2027-01-27", "overdue", 1, None, 2),
                     ("2027-01-28", "escalate", 1, None, 3)]
    # W sent nothing until it finished everything in round 3 (03-20): chased as Z until then, never after
    assert of(W) == [r for r in z if r[0] < "2027-03-20"] and of(W)[-1][0] == "2027-03-19"
    days = [D.fromisoformat(r.detail["day"]) for r in sent]
    assert all(cal.is_workday(d) for d in days) and len({(r.unit, r.detail["day"]) for r in sent}) == len(sent)
    reminder = email.message_from_bytes(Path(next(r for r in sent if r.unit == Y and r.detail["round"] == 4).path)
                                        .read_bytes(), policy=policy.default)
    assert "第4期进展报送截止日期为2027年4月25日" in reminder.get_body(("plain",)).get_content()

    # each round its own snapshot
    now = at(2027, 6, 1, 10)
    r3 = {u["unit"]: u for u in status_summary(config, ledger, now, 3)["units"]}
    r4 = status_summary(config, ledger, now, 4)
    units4 = {u["unit"]: u for u in r4["units"]}
    assert r4["round"]["number"] == 4 and r4["round"]["past"] and r4["now"].startswith("2027-04-25T23:59")
    assert (r3[X]["round_state"], r3[Y]["round_state"], r3[W]["round_state"], r3[Z]["round_state"]) == (
        "本期已报送", "本期已报送", "本期已报送", "本期未报送")
    assert r3[W]["level"] == "green" and r3[W]["completion"] == 1.0
    # reported in round 3, not in round 4: 本期未报送 (and red), not 已完成
    assert units4[W]["round_state"] == "本期未报送" and units4[W]["level"] == "red" and units4[W]["completion"] == 1.0
    assert units4[Y]["round_state"] == "本期未报送" and 0 < units4[Y]["completion"] < 1
    assert units4[X]["round_state"] == "本期已报送" and units4[X]["round_reported"] == units4[X]["assigned"]
    # a past round's answers are those of its end: X's April answer, not its May one
    x_rows = [a for a in r4["assignments"] if a["unit"] == X]
    assert x_rows and all(a["submitted_at"].startswith("2027-04-20") for a in x_rows)
    current = status_summary(config, ledger, now)
    assert current["round"]["number"] == 6 and not current["round"]["past"]
    with pytest.raises(InputError, match="还没有开始"):
        status_summary(config, ledger, now, 8)

    # the report: 各期进度 with the trend by unit kind
    info = create_report(config, ledger, at(2027, 12, 31, 18))
    wb = openpyxl.load_workbook(info.path)
    assert wb.sheetnames[2] == "各期进度"
    ws = wb["各期进度"]
    assert [ws.cell(3, 1 + i).value for i in range(1, 4)] == ["第1期", "第2期", "第3期"]
    trend = {ws.cell(r, 1).value: [ws.cell(r, 1 + i).value for i in range(1, 13)] for r in range(4, 7)}
    assert set(trend) == {"全部单位", "市直部门", "县（市、区）政府"}
    overall = trend["全部单位"]
    assert overall == sorted(overall) and overall[1] < overall[2]        # Y's and W's 已完成 in round 3
    assert trend["县（市、区）政府"] == [1.0] * 12
    assert ws._charts and ws._charts[0].tagname == "lineChart"
    cells = {c.value: c for row in ws.iter_rows() for c in row if isinstance(c.value, str)}
    assert "本期未报送" in cells

    # the CLI: status --round
    ledger.close()
    assert main(["--config", str(config.path), "status", "--round", "4", "--now", "2027-06-01T10:00", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["round"]["number"] == 4
    assert main(["--config", str(config.path), "status", "--round", "4", "--now", "2027-06-01T10:00"]) == 0
    out = capsys.readouterr().out
    assert "第4期" in out and "本期未报送" in out
    assert main(["--config", str(config.path), "status", "--round", "13", "--now", "2027-06-01T10:00"]) == 1
    assert "没有第13期" in capsys.readouterr().err


def test_a_round_reminder_attaches_the_workbook_with_the_latest_answers(year, tmp_path: Path) -> None:
    config, ledger = year
    config = dataclasses.replace(config, remind=dataclasses.replace(config.remind, attach_workbook=True))
    answer(ledger, Y, lambda i: "已完成" if i % 2 else "推进中", at(2027, 3, 20, 15))
    (r,) = [x for x in send_reminders(config, ledger, at(2027, 4, 16), OutboxTransport(tmp_path / "o"))
            if x.unit == Y]
    assert r.detail["round"] == 4 and r.detail["kind"] == "before"
    msg = email.message_from_bytes(Path(r.path).read_bytes(), policy=policy.default)
    (att,) = list(msg.iter_attachments())
    book = tmp_path / "y.xlsx"
    book.write_bytes(att.get_content())
    ws = openpyxl.load_workbook(book)[TASK_SHEET]
    header = [c.value for c in ws[3]]
    statuses = [row[header.index("落实情况")].value for row in ws.iter_rows(min_row=4) if isinstance(row[0].value, int)]
    assert set(statuses) == {"已完成", "推进中"}
