"""The console's library functions: the same numbers as ``status``, the previews, the agenda, accounts."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pytest
from web_kit import DEMO_NOW, make_demo

from automation import actions, agenda
from automation.config import load_config
from automation.ledger import Ledger
from automation.ledger.accounts import hash_password, verify_password
from automation.mail.preview import distribution_preview
from automation.progress import views
from automation.progress.status import status_summary
from automation.remind import due_reminders
from automation.tasks.preview import preview_table


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    config = load_config(make_demo(tmp_path_factory.mktemp("views")))
    led = Ledger.open(config.workspace)
    yield config, led, status_summary(config, led, DEMO_NOW)
    led.close()


def test_overview_is_the_status_snapshot(demo) -> None:  # type: ignore[no-untyped-def]
    config, led, status = demo
    o = views.overview(config, led, DEMO_NOW)
    assert round(o.completion, 4) == status["completion"] and o.deadline.days_left == status["days_left"]
    assert [u.name for u in o.units] == [u["unit"] for u in status["units"]]
    assert [u.level for u in o.units] == [u["level"] for u in status["units"]]
    assert {u.name for u in o.silent} == {"松溪县政府", "市统计局", "市城管局"}
    assert o.states == {"未报送": 3, "逾期": 0, "推进中": 6, "已完成": 28}
    assert len(o.chart_units) == 37


def test_task_pages_build_the_reports_cell(demo) -> None:  # type: ignore[no-untyped-def]
    config, led, status = demo
    for t in status["tasks"]:
        v = views.task_view(config, led, DEMO_NOW, t["task"])
        assert v is not None and v.text == t["text"] and v.summary == t["summary"] and v.headline == t["status"]
        assert len(v.answers) == v.counts["assigned"]
    assert views.task_view(config, led, DEMO_NOW, 999) is None


def test_unit_page_agrees_with_status(demo) -> None:  # type: ignore[no-untyped-def]
    config, led, status = demo
    for row in status["units"]:
        unit = led.unit_by_name(row["unit"])
        v = agenda.unit_page(config, led, DEMO_NOW, unit.id)
        assert (v.level, v.counts["已完成"], v.counts["未填报"], v.reminders) == (
            row["level"], row["done"], row["unreported"], row["reminders"])
        assert (v.next_reminder is None) == (row["level"] == "green")
    silent = agenda.unit_page(config, led, DEMO_NOW, led.unit_by_name("市统计局").id)
    assert silent.state == "未报送" and not silent.files and not silent.history
    assert silent.next_reminder.day == dt.date(2021, 12, 16) and silent.next_reminder.kind_name == "逾期提醒"
    assert [m.purpose for m in silent.mails] == ["remind", "distribute"]
    early = agenda.unit_page(config, led, DEMO_NOW, led.unit_by_name("建瓯市政府").id)
    assert len(early.files) == 2 and {h.old_status for h in early.history} == {None, "推进中"}


def test_agenda_is_what_remind_will_send(demo) -> None:  # type: ignore[no-untyped-def]
    config, led, _status = demo
    a = agenda.reminder_agenda(config, led, DEMO_NOW)
    assert a.due == []                       # the demo sent today's reminders already
    first = a.upcoming[0]
    expected = due_reminders(config, led, dt.datetime.combine(first.day, dt.time(9, 0), tzinfo=DEMO_NOW.tzinfo))
    assert [(line.unit, line.kind) for line in first.lines] == [(r.unit, r.kind) for r in expected]
    assert first.day == dt.date(2021, 12, 16) and {line.kind for line in first.lines} == {"overdue"}
    kinds = [line.kind for d in a.upcoming for line in d.lines if line.unit == "市统计局"]
    assert kinds.count("escalate") == 1
    assert len(a.sent) == 9 and any("逾期升级" in c for c in a.cadence)


def test_import_preview(demo, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config, led, _status = demo
    text = config.batch.tasks.read_text(encoding="utf-8")
    same = preview_table(config, config.batch.tasks, led)
    assert same.unchanged and not same.needs_replace and same.importable and same.assignments == 1103
    path = tmp_path / "t.txt"
    text = text.replace("(三) 加强配套制度建设 | ||||", "(三) 加强配套制度建设 | ||||\n随便写的一行 | 另一格 | ||", 1)
    path.write_text(text.replace("市财政局", "市财正局", 1), encoding="utf-8")
    p = preview_table(config, path, led)
    assert [(u.name, u.suggestions[0]) for u in p.unknown] == [("市财正局", "市财政局")]
    assert not p.importable and p.assignments is None and p.needs_replace
    assert [(s.raw, "已跳过" in s.message) for s in p.skipped] == [("随便写的一行 | 另一格", True)]
    assert sum(len(s.tasks) for s in p.sections) == len(p.tasks) == 35
    assert any(n.kind == "分组" and n.members == 10 for n in p.named)


def test_distribution_preview(demo) -> None:  # type: ignore[no-untyped-def]
    config, led, _status = demo
    p = distribution_preview(config, led)
    assert p.mode == "outbox" and "不真正发出" in p.mode_text and len(p.lines) == 37
    assert p.to_send == 0 and p.count("sent") == 37
    assert all(line.attachment.endswith(f"_{line.unit}.xlsx") for line in p.lines)
    only = distribution_preview(config, led, ["各县（市、区）政府"])
    assert len(only.lines) == 10


def test_passwords_are_salted_slow_hashes() -> None:
    a, b = hash_password("correct horse"), hash_password("correct horse")
    assert a != b and a.startswith("scrypt$16384$8$1$")
    assert verify_password("correct horse", a) and not verify_password("correct horsf", a)
    assert not verify_password("x", "") and not verify_password("x", "md5$abc")


def test_uploads_are_saved_under_generated_names(demo) -> None:  # type: ignore[no-untyped-def]
    config, _led, _status = demo
    batch = actions.save_uploads(config, [("..\\..\\Windows\\evil.xlsx", io.BytesIO(b"data")),
                                          ("空.xlsx", io.BytesIO(b""))], DEMO_NOW)
    (saved,), refused = batch.saved, batch.refused
    try:
        assert saved.name == "evil.xlsx" and saved.path.parent == config.workspace / "uploads"
        assert "evil" not in saved.path.name and saved.path.suffix == ".xlsx" and saved.path.read_bytes() == b"data"
        assert refused == [("空.xlsx", "文件是空的，未接收。")]
    finally:
        saved.path.unlink()
