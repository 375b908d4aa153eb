"""Per-task deadlines: the 时限 text kept, the date it names as due_date, and the ledger keeps both."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3

import pytest

from automation.cli import main
from automation.ledger import MIGRATIONS, Ledger, tasks_digest
from automation.tasks.deadlines import looks_like_deadline, parse_due_date
from automation.tasks.load import load_tasks
from tests.import_kit import FIXTURES


@pytest.mark.parametrize(("text", "due"), [
    ("6月底前", "2021-06-30"), ("年底前", "2021-12-31"), ("2022年9月", "2022-09-30"), ("三季度", "2021-09-30"),
    ("第二季度末", "2021-06-30"), ("2021年6月底前", "2021-06-30"), ("9月15日前", "2021-09-15"),
    ("2021.9.15", "2021-09-15"), ("2021-09-30", "2021-09-30"), ("上半年", "2021-06-30"), ("年内", "2021-12-31"),
    ("次年3月底", "2022-03-31"), ("6月中旬", "2021-06-20"), ("十一月底", "2021-11-30"),
    ("2月底前", "2021-02-28"), ("6月底前出台方案，年底前全部完成", "2021-12-31"),  # the latest: due as a whole
    ("持续推进", None), ("长期坚持", None), ("每季度", None), ("每月10日前报送", None), ("2月30日", None),
])
def test_deadline_texts(text, due):
    got = parse_due_date(text, 2021)
    assert (got.isoformat() if got else None) == due


def test_what_counts_as_a_deadline_cell():
    assert all(looks_like_deadline(t) for t in ("持续推进", "6月底前", "2022年9月", "每季度", "三季度"))
    assert not any(looks_like_deadline(t) for t in ("市发改委", "已完成", "", "加强政策解读，做好宣传。"
                                                    "在年底前完成各项工作并形成报告，报送市政府。"))


def table_file(tmp_path, title: str = "") -> object:
    path = tmp_path / "时限.txt"
    path.write_text(
        (f"{title}\n" if title else "")
        + "工作任务 | 牵头单位 | 时限 | 备注\n"
        "1.公开规划 | 市发改委 | 持续推进 | \n"
        "2.公开预算 | 市财政局 | 6月底前 | \n"
        "3.公开债务 | 市财政局 | 三季度 | \n",
        encoding="utf-8",
    )
    return path


def test_a_standing_duty_in_the_deadline_column_is_a_deadline_not_unsorted(tmp_path):
    t1, t2, t3 = load_tasks(table_file(tmp_path), year=2021).tasks
    assert (t1.deadline, t1.due_date, t1.extra) == ("持续推进", None, {})
    assert (t2.due_date, t3.due_date) == ("2021-06-30", "2021-09-30")


def test_the_year_comes_from_the_batch_else_the_title_else_today(tmp_path):
    path = table_file(tmp_path, "南平市2023年政务公开工作任务表")
    assert load_tasks(path, year=2021).tasks[1].due_date == "2021-06-30"
    table = load_tasks(path, today=dt.date(2030, 1, 1))
    assert (table.year, table.year_source, table.tasks[1].due_date) == (2023, "标题", "2023-06-30")
    table = load_tasks(table_file(tmp_path), today=dt.date(2030, 1, 1))
    assert (table.year, table.year_source, table.tasks[1].due_date) == (2030, "当年", "2030-06-30")


def test_a_deadline_written_in_the_remarks(tmp_path):
    path = tmp_path / "备注.txt"
    path.write_text("工作任务 | 牵头单位 | 备注\n1.公开规划 | 市发改委 | 2021年底前完成\n2.公开预算 | 市财政局 | 重点任务\n",
                    encoding="utf-8")
    t1, t2 = load_tasks(path).tasks
    assert (t1.deadline, t1.due_date, t1.extra) == ("2021年底前完成", "2021-12-31", {"备注": "2021年底前完成"})
    assert (t2.deadline, t2.extra) == (None, {"备注": "重点任务"})


def test_tasks_show_json_has_due_date(capsys):
    assert main(["tasks", "show", str(FIXTURES / "table_deadlines.pdf"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [d["due_date"] for d in data][:4] == ["2022-06-30", "2022-12-31", None, "2022-09-30"]
    assert list(data[0])[10:12] == ["deadline", "due_date"]


# --------------------------------------------------------------------------- the ledger


def deadlines_config(config_file, tmp_path):
    """The bundled config with the 时限 table as the batch's task table (year 2022)."""
    text = config_file.read_text(encoding="utf-8")
    text = text.replace('tasks = "samples/task-table.txt"', f'tasks = "{FIXTURES / "table_deadlines.pdf"}"')
    text = text.replace("year = 2021", "year = 2022")
    config_file.write_text(text, encoding="utf-8")
    return config_file


def test_the_ledger_stores_due_dates(config_file, tmp_path, capsys):
    deadlines_config(config_file, tmp_path)
    assert main(["--config", str(config_file), "init"]) == 0
    with Ledger.open(config_file.parent / "var") as led:
        tasks = led.tasks(1)
        assert [t.due_date for t in tasks][:3] == ["2022-06-30", "2022-12-31", None]
        stored = json.loads(led.execute("SELECT tasks_json FROM table_revisions").fetchone()[0])
        assert stored[0]["due_date"] == "2022-06-30"


def _as_before_due_dates(ledger_path) -> None:
    """Turn a ledger back into what the release before due dates wrote: schema 3, no column, and
    the digest as it computed it (over the records without a due_date key)."""
    conn = sqlite3.connect(ledger_path)
    stored = json.loads(conn.execute("SELECT tasks_json FROM table_revisions").fetchone()[0])
    old = [{k: v for k, v in r.items() if k not in ("raw", "due_date")} for r in stored]
    digest = hashlib.sha256(json.dumps(old, ensure_ascii=False, sort_keys=True).encode("utf-8")).hexdigest()
    conn.execute("UPDATE table_revisions SET digest = ?", (digest,))
    conn.execute("ALTER TABLE tasks DROP COLUMN due_date")
    # and what the later migrations (5: console accounts, 6: refused input kept) added
    conn.executescript("DROP TABLE accounts; DROP TABLE login_attempts; ALTER TABLE problems DROP COLUMN raw;")
    conn.execute("PRAGMA user_version = 3")
    conn.commit()
    conn.close()


def test_an_unchanged_table_after_the_upgrade_is_still_a_no_op(config_file, capsys):
    assert main(["--config", str(config_file), "init"]) == 0
    ledger = config_file.parent / "var" / "ledger.sqlite3"
    _as_before_due_dates(ledger)
    capsys.readouterr()
    assert main(["--config", str(config_file), "init"]) == 0
    assert "未做改动" in capsys.readouterr().out
    with Ledger.open(config_file.parent / "var") as led:
        assert led.schema_version == len(MIGRATIONS)
        assert led.execute("SELECT COUNT(*) FROM table_revisions").fetchone()[0] == 1


def test_after_the_upgrade_due_dates_are_filled_in_without_a_new_revision(config_file, tmp_path, capsys, now):
    deadlines_config(config_file, tmp_path)
    assert main(["--config", str(config_file), "init"]) == 0
    ledger = config_file.parent / "var" / "ledger.sqlite3"
    _as_before_due_dates(ledger)
    with Ledger.open(config_file.parent / "var") as led:
        assert all(t.due_date is None for t in led.tasks(1))  # the column is new, nothing in it yet
        led.execute("INSERT INTO messages(idem_key, purpose, batch_id, message_id, subject, state, created_at) "
                    "VALUES ('distribute:1:1', 'distribute', 1, '<m@x>', 's', 'sent', '2022-03-01T09:00:00+08:00')")
    capsys.readouterr()
    assert main(["--config", str(config_file), "init"]) == 0  # already sent: still no --replace needed
    assert "8 项任务的完成时限日期已更新" in capsys.readouterr().out
    with Ledger.open(config_file.parent / "var") as led:
        assert [t.due_date for t in led.tasks(1)][:2] == ["2022-06-30", "2022-12-31"]
        assert led.execute("SELECT COUNT(*) FROM table_revisions").fetchone()[0] == 1
    assert main(["--config", str(config_file), "init"]) == 0
    assert "未做改动" in capsys.readouterr().out


def test_the_digest_ignores_the_derived_date():
    table = load_tasks(FIXTURES / "table_deadlines.pdf")
    before = tasks_digest(table.tasks)
    for t in table.tasks:
        t.due_date = None
    assert tasks_digest(table.tasks) == before
    table.tasks[0].deadline = "年底前"
    assert tasks_digest(table.tasks) != before  # the text itself still counts
