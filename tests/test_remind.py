"""Reminders on Chinese working days: the cadence, a simulated month around National Day 2026,
escalation, catch-up after an outage, the 2027 fallback, dry runs and the re-issued workbook."""

from __future__ import annotations

import datetime as dt
import email
import json
import logging
import time
from dataclasses import replace
from email import policy
from email.header import decode_header, make_header
from pathlib import Path

import openpyxl
import pytest

from automation import clock
from automation.cli import main
from automation.config import Config, load_config
from automation.ledger import Ledger, open_workspace
from automation.ledger.records import Response
from automation.mail.transports import OutboxTransport
from automation.remind import due_reminders, schedule, send_reminders
from automation.tasks.importing import init_batch
from automation.workdays import WorkCalendar

D = dt.date
TZ = clock.TZ
A, B = "市财政局", "延平区政府"   # the two units that do not finish (B has a cc address)


def at(y: int, m: int, d: int, h: int = 9, minute: int = 0) -> dt.datetime:
    return dt.datetime(y, m, d, h, minute, tzinfo=TZ)


def set_deadline(config_file: Path, deadline: str, year: int) -> None:
    text = config_file.read_text(encoding="utf-8")
    text = text.replace("deadline = 2021-12-15", f"deadline = {deadline}").replace("year = 2021", f"year = {year}")
    config_file.write_text(text, encoding="utf-8")


def answer(ledger: Ledger, unit: str, status: str, when: dt.datetime, tag: str) -> None:
    batch = ledger.batch_by_id(1)
    unit_id = ledger.unit_by_name(unit).id
    tasks = [a.task for a in ledger.assignments(batch.id, unit_id)]
    ledger.record_submission(
        sha256=f"{tag}-{unit_id}", file_name=f"{unit}.xlsx", archive_path="-", received_at=when, now=when,
        outcome="accepted", batch_id=batch.id, unit_id=unit_id,
        responses=[Response(t, status, "已推进") for t in tasks],
    )


def october(config_file: Path, attach: bool = False) -> tuple[Config, Ledger]:
    """Batch with deadline Wed 2026-09-30, created 2026-09-01; everyone but A and B has finished."""
    set_deadline(config_file, "2026-09-30", 2026)
    config = load_config(config_file)
    config = replace(config, remind=replace(config.remind, attach_workbook=attach))
    _ws, ledger = open_workspace(config)
    init_batch(config, ledger, at(2026, 9, 1, 8))
    batch = ledger.require_batch(config.batch.title)
    for u in ledger.assigned_units(batch.id):
        if u.name not in (A, B):
            answer(ledger, u.name, "已完成" if u.id % 2 else "不适用", at(2026, 9, 2), "done")
    answer(ledger, B, "推进中", at(2026, 9, 10, 15), "b1")
    return config, ledger


def subject_of(path: Path) -> str:
    msg = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    return str(make_header(decode_header(str(msg["Subject"]))))


# --------------------------------------------------------------------------- the schedule


def test_schedule_around_national_day_2026(config: Config) -> None:
    slots = schedule(config.remind, WorkCalendar(), D(2026, 9, 30), D(2026, 9, 1), D(2026, 10, 16))
    got = [(s.day, s.kind, s.days_left, s.overdue_days) for s in slots]
    assert got == [
        (D(2026, 9, 7), "weekly", 17, 0),
        (D(2026, 9, 14), "weekly", 12, 0),
        (D(2026, 9, 21), "weekly", 6, 0),
        (D(2026, 9, 22), "before", 5, 0),     # 5 working days: Mid-Autumn (9-25..27) skipped
        (D(2026, 9, 28), "weekly", 2, 0),
        (D(2026, 9, 29), "before", 1, 0),
        (D(2026, 10, 8), "overdue", None, 1),  # National Day 10-01..07: nothing
        (D(2026, 10, 9), "overdue", None, 2),
        (D(2026, 10, 10), "escalate", None, 3),  # the 调休 working Saturday counts
        (D(2026, 10, 12), "overdue", None, 4),  # Sunday 10-11: nothing
        (D(2026, 10, 13), "overdue", None, 5),
        (D(2026, 10, 14), "overdue", None, 6),
        (D(2026, 10, 15), "overdue", None, 7),
        (D(2026, 10, 16), "overdue", None, 8),
    ]
    # the working Sunday 9-20 is no weekly slot; a weekly Monday on a holiday moves to the next working day
    weekly_only = replace(config.remind, overdue_daily=False, escalate_after_days=0, before_deadline_days=())
    days = [s.day for s in schedule(weekly_only, WorkCalendar(), D(2026, 10, 31), D(2026, 9, 14), D(2026, 10, 20))]
    assert days == [D(2026, 9, 14), D(2026, 9, 21), D(2026, 9, 28), D(2026, 10, 8), D(2026, 10, 12),
                    D(2026, 10, 19)]


def test_deadline_in_2027_uses_the_weekday_fallback_and_config_overrides(config_file: Path,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    set_deadline(config_file, "2027-01-13", 2027)
    text = config_file.read_text(encoding="utf-8").replace("extra_holidays = []", "extra_holidays = [2027-01-11]")
    config_file.write_text(text, encoding="utf-8")
    config = load_config(config_file)
    _ws, ledger = open_workspace(config)
    init_batch(config, ledger, at(2026, 12, 20))
    with caplog.at_level(logging.WARNING, logger="automation.workdays"):
        due = due_reminders(config, ledger, at(2027, 1, 18, 9, 30))
    assert any("2027" in r.getMessage() and "周一至周五" in r.getMessage() for r in caplog.records)
    assert {r.kind for r in due} == {"escalate"} and len(due) == 37
    assert all(r.day == D(2027, 1, 18) and r.overdue_days == 3 for r in due)  # 1-14, 1-15, 1-18
    assert "ducha@np.example.com" in due[0].cc
    slots = schedule(config.remind, WorkCalendar.from_config(config.remind), D(2027, 1, 13), D(2027, 1, 1),
                     D(2027, 1, 13))
    # 2027-01-11 is a holiday by config: five working days before 1-13 is 1-5
    assert [(s.day, s.kind) for s in slots] == [(D(2027, 1, 4), "weekly"), (D(2027, 1, 5), "before"),
                                                (D(2027, 1, 12), "before")]
    ledger.close()


# --------------------------------------------------------------------------- the simulated month


def test_simulated_month_cadence_escalation_no_duplicates_one_catch_up(config_file: Path, tmp_path: Path) -> None:
    config, ledger = october(config_file)
    outbox = tmp_path / "outbox"
    transport = OutboxTransport(outbox)
    cal = WorkCalendar()
    outage = (at(2026, 10, 13, 12), at(2026, 10, 16, 6))
    sent = []
    t = at(2026, 9, 1, 0)
    while t <= at(2026, 10, 31, 21):
        if t == at(2026, 10, 9, 12):
            answer(ledger, B, "已完成", t, "b2")          # B finishes: no more reminders for B
        if not outage[0] <= t < outage[1]:
            for r in send_reminders(config, ledger, t, transport, calendar=cal):
                assert r.action == "sent", r
                sent.append((t, r))
        t += dt.timedelta(hours=3)

    a = [(t, r.detail["day"], r.detail["kind"]) for t, r in sent if r.unit == A]
    assert [(d, k) for _t, d, k in a] == [
        ("2026-09-07", "weekly"), ("2026-09-14", "weekly"), ("2026-09-21", "weekly"), ("2026-09-22", "before"),
        ("2026-09-28", "weekly"), ("2026-09-29", "before"),
        ("2026-10-08", "overdue"), ("2026-10-09", "overdue"), ("2026-10-10", "escalate"),
        ("2026-10-12", "overdue"), ("2026-10-13", "overdue"),
        ("2026-10-16", "overdue"),                       # the one catch-up after the outage
        ("2026-10-19", "overdue"), ("2026-10-20", "overdue"), ("2026-10-21", "overdue"), ("2026-10-22", "overdue"),
        ("2026-10-23", "overdue"), ("2026-10-26", "overdue"), ("2026-10-27", "overdue"), ("2026-10-28", "overdue"),
        ("2026-10-29", "overdue"), ("2026-10-30", "overdue"),
    ]
    # each went out at 09:00 on its day; the service came back at 06:00 on 10-16 and waited for 09:00
    for when, day, _kind in a:
        assert when == dt.datetime.combine(D.fromisoformat(day), dt.time(9), tzinfo=TZ)
    catch_up = next(r for t, r in sent if r.unit == A and r.detail["day"] == "2026-10-16")
    assert catch_up.detail["catch_up"] is True and catch_up.detail["missed"] == ["2026-10-14", "2026-10-15"]
    assert [(r.unit, r.detail["day"]) for t, r in sent if r.detail["catch_up"]] == [(A, "2026-10-16")]

    b = [(r.detail["day"], r.detail["kind"]) for _t, r in sent if r.unit == B]
    assert b[-2:] == [("2026-10-08", "overdue"), ("2026-10-09", "overdue")] and len(b) == 8
    assert all(r.cc == ["ypq-gk@np.example.com"] for _t, r in sent if r.unit == B)

    escalations = [r for _t, r in sent if r.detail["kind"] == "escalate"]
    assert len(escalations) == 1 and escalations[0].cc == ["ducha@np.example.com"]
    assert "逾期督办" in escalations[0].subject and "已逾期3个工作日" in escalations[0].subject

    # no duplicates anywhere: one ledger row and one .eml per (unit, slot), nothing on holidays or Sunday
    keys = [r.idem_key for _t, r in sent]
    assert len(keys) == len(set(keys)) == len(list(outbox.glob("*.eml")))
    per_day = [(r.unit, r.detail["day"]) for _t, r in sent]
    assert len(per_day) == len(set(per_day))
    assert not {d for _u, d in per_day} & ({f"2026-10-0{i}" for i in range(1, 8)} | {"2026-10-11", "2026-09-20"})
    rows = ledger.execute("SELECT COUNT(*), COUNT(DISTINCT idem_key) FROM messages WHERE purpose = 'remind'").fetchone()
    assert tuple(rows) == (len(sent), len(sent))
    assert "逾期督办" in subject_of(outbox / (escalations[0].idem_key.replace(":", "_") + ".eml"))
    ledger.close()


def test_host_time_zone_does_not_matter(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config, ledger = october(config_file)
    monkeypatch.setenv("TZ", "America/Los_Angeles")
    time.tzset()
    try:
        # 2026-10-10 09:30 in Shanghai is 01:30 UTC (the evening before in Los Angeles)
        utc = dt.datetime(2026, 10, 10, 1, 30, tzinfo=dt.UTC)
        due = due_reminders(config, ledger, utc)
        naive = due_reminders(config, ledger, dt.datetime(2026, 10, 10, 9, 30))  # naive = Shanghai time
        early = due_reminders(config, ledger, dt.datetime(2026, 10, 10, 0, 59, tzinfo=dt.UTC))
    finally:
        monkeypatch.undo()
        time.tzset()
    assert [(r.unit, r.kind, r.day) for r in due] == [(A, "escalate", D(2026, 10, 10)),
                                                       (B, "escalate", D(2026, 10, 10))]
    assert [(r.unit, r.kind, r.day) for r in naive] == [(r.unit, r.kind, r.day) for r in due]
    # 08:59 Shanghai: nothing goes out before 09:00, not even yesterday's missed reminder
    assert early == []
    later = due_reminders(config, ledger, dt.datetime(2026, 10, 10, 1, 0, tzinfo=dt.UTC))
    assert {(r.day, r.catch_up, r.missed[-1]) for r in later} == {(D(2026, 10, 10), True, D(2026, 10, 9))}
    ledger.close()


def test_pending_and_uncertain_reminders_are_not_repeated(config_file: Path, tmp_path: Path) -> None:
    config, ledger = october(config_file)
    ledger.execute(
        "INSERT INTO messages(idem_key, purpose, batch_id, unit_id, message_id, subject, state, created_at) "
        "VALUES (?, 'remind', 1, ?, '<x@y>', 's', 'pending', ?)",
        (f"remind:1:{ledger.unit_by_name(A).id}:escalate:2026-10-10", ledger.unit_by_name(A).id,
         clock.iso(at(2026, 10, 10))),
    )
    results = send_reminders(config, ledger, at(2026, 10, 10, 10), OutboxTransport(tmp_path / "o"))
    assert [(r.unit, r.action) for r in results] == [(B, "sent")]
    # the next day, A's overdue reminder is due; the escalation counts as done (at most once)
    nxt = due_reminders(config, ledger, at(2026, 10, 12, 9))
    assert [(r.unit, r.kind) for r in nxt] == [(A, "overdue"), (B, "overdue")]
    ledger.close()


# --------------------------------------------------------------------------- sending


def test_reminder_message_lists_unfinished_tasks_and_attaches_prefilled_workbook(config_file: Path,
                                                                                  tmp_path: Path) -> None:
    config, ledger = october(config_file, attach=True)
    batch = ledger.require_batch(config.batch.title)
    b_id = ledger.unit_by_name(B).id
    # B finishes all but two tasks
    tasks = [a.task for a in ledger.assignments(batch.id, b_id)]
    ledger.record_submission(
        sha256="b-partial", file_name="b.xlsx", archive_path="-", received_at=at(2026, 10, 8, 15),
        now=at(2026, 10, 8, 15), outcome="accepted", batch_id=batch.id, unit_id=b_id,
        responses=[Response(t, "已完成" if t not in tasks[:2] else "推进中", f"进展{t}") for t in tasks],
    )
    results = send_reminders(config, ledger, at(2026, 10, 9, 9, 5), OutboxTransport(tmp_path / "o"))
    r = next(x for x in results if x.unit == B)
    assert r.action == "sent" and r.detail["tasks"] == tasks[:2]
    msg = email.message_from_bytes(Path(r.path).read_bytes(), policy=policy.default)
    plain = msg.get_body(("plain",)).get_content()
    titles = {t.number: t.title for t in ledger.tasks(batch.id)}
    assert "已逾期2个工作日" in plain and "<br" not in plain
    for t in tasks[:2]:
        assert titles[t][:20] in plain
    assert titles[tasks[3]][:20] not in plain
    html = msg.get_body(("html",)).get_content()
    assert html.count("<tr>") == 3 and "推进中" in html
    (att,) = list(msg.iter_attachments())
    assert att.get_filename().endswith(f"_{B}.xlsx")
    book = tmp_path / "att.xlsx"
    book.write_bytes(att.get_content())
    sheet = openpyxl.load_workbook(book)["任务清单"]
    cells = {row[0].value: row for row in sheet.iter_rows(min_row=4) if isinstance(row[0].value, int)}
    assert cells[tasks[0]][6].value == "推进中" and cells[tasks[0]][7].value == f"进展{tasks[0]}"
    assert cells[tasks[3]][6].value == "已完成"
    issue = ledger.execute("SELECT purpose, path FROM issues WHERE unit_id = ? ORDER BY id DESC", (b_id,)).fetchone()
    assert issue[0] == "remind" and Path(issue[1]).is_file()
    ledger.close()


def test_dry_run_records_nothing_and_cli(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config, ledger = october(config_file)
    ledger.close()
    cfg = str(config_file)
    code = main(["--config", cfg, "remind", "--now", "2026-10-10T09:30", "--dry-run", "--json"])
    rows = json.loads(capsys.readouterr().out)
    assert code == 0 and [(r["unit"], r["action"], r["kind"]) for r in rows] == [(A, "dry-run", "escalate"),
                                                                                 (B, "dry-run", "escalate")]
    assert rows[0]["cc"] == ["ducha@np.example.com"]
    outbox = config_file.parent / "var" / "outbox"
    with Ledger.open(config_file.parent / "var") as led:
        assert led.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 0
    assert not list(outbox.glob("*.eml"))
    code = main(["--config", cfg, "remind", "--now", "2026-10-10T09:30"])
    out = capsys.readouterr().out
    assert code == 0 and "已发送 2 封" in out and "发件箱模式" in out
    assert len(list(outbox.glob("remind_*.eml"))) == 2
    code = main(["--config", cfg, "remind", "--now", "2026-10-10T15:00", "--json"])
    assert code == 0 and json.loads(capsys.readouterr().out) == []


# --------------------------------------------------------------------------- the calendar after chinese-calendar


def test_2027_statutory_holidays_are_days_off_with_one_warning_per_year(caplog) -> None:
    cal = WorkCalendar()
    with caplog.at_level(logging.WARNING, logger="automation.workdays"):
        # 元旦, 春节 (02-08..10 are weekdays), 劳动节, 国庆 (10-01 Friday, 10-04/05 Monday/Tuesday)
        for day in (D(2027, 1, 1), D(2027, 2, 8), D(2027, 2, 9), D(2027, 2, 10), D(2027, 5, 3), D(2027, 5, 4),
                    D(2027, 10, 1), D(2027, 10, 4), D(2027, 10, 5)):
            assert not cal.is_workday(day), day
        assert cal.is_workday(D(2027, 1, 4)) and cal.is_workday(D(2027, 2, 11))
        assert not cal.is_workday(D(2027, 1, 2))                    # an ordinary weekend
        cal.is_workday(D(2027, 6, 1))
    warnings = [r.getMessage() for r in caplog.records if "2027" in r.getMessage()]
    assert len(warnings) == 1 and "调休" in warnings[0] and "extra_workdays" in warnings[0]


def test_config_adds_the_published_adjusted_working_weekends() -> None:
    cal = WorkCalendar(extra_workdays=[D(2027, 2, 20)], extra_holidays=[D(2027, 2, 11)])
    assert cal.is_workday(D(2027, 2, 20)) and not cal.is_workday(D(2027, 2, 11))


def test_known_years_still_come_from_chinese_calendar() -> None:
    cal = WorkCalendar()
    assert cal.is_workday(D(2026, 10, 10))        # 调休: a Saturday worked
    assert not cal.is_workday(D(2026, 10, 6))     # 国庆 off on a Tuesday
    assert cal.fallback_years == set()
