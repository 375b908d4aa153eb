"""The foundation commands: tasks show, init, assignments, global options and error handling."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from automation.cli import main
from automation.ledger import Ledger


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_tasks_show_json_needs_no_config(tmp_path, monkeypatch, capsys, sample_path):
    monkeypatch.chdir(tmp_path)  # no config.toml here
    code, out, _ = run(capsys, "tasks", "show", str(sample_path), "--json")
    assert code == 0
    data = json.loads(out)
    assert len(data) == 35
    assert data[20]["unit_notes"] == {"市司法局": "负责市政府规章"}


def test_tasks_show_table(capsys, sample_path):
    code, out, err = run(capsys, "tasks", "show", str(sample_path))
    assert code == 0
    assert "35 项任务" in out and "4 个大项" in out and "13 个小项" in out
    assert "第 5 项单元格错位" in err  # repairs are reported, not silent


def test_python_dash_m(sample_path):
    proc = subprocess.run([sys.executable, "-m", "automation", "tasks", "show", str(sample_path), "--json"],
                          capture_output=True, text=True, encoding="utf-8", check=False)
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)) == 35


def test_init_is_idempotent(config_file, capsys):
    code, out, _ = run(capsys, "--config", str(config_file), "init")
    assert code == 0 and "35 项任务" in out and "1103 条单位分工" in out
    code, out, _ = run(capsys, "--config", str(config_file), "init")
    assert code == 0 and "未做改动" in out
    with Ledger.open(config_file.parent / "var") as led:
        assert led.schema_version >= 1
        assert led.execute("SELECT COUNT(*) FROM table_revisions").fetchone()[0] == 1
        assert led.execute("SELECT COUNT(*) FROM assignments").fetchone()[0] == 1103


def test_assignments_json(config_file, capsys):
    run(capsys, "--config", str(config_file), "init")
    code, out, _ = run(capsys, "--config", str(config_file), "assignments", "--json")
    rows = json.loads(out)
    assert code == 0 and len(rows) == 1103
    assert set(rows[0]) == {"task", "unit", "role", "note"}
    # 市发改委 leads task 4 and is also one of 市直有关部门: once, as 牵头
    t4 = [r for r in rows if r["task"] == 4 and r["unit"] == "市发改委"]
    assert t4 == [{"task": 4, "unit": "市发改委", "role": "牵头", "note": None}]
    assert {r["role"] for r in rows if r["task"] == 4} == {"牵头", "责任"}
    assert sum(1 for r in rows if r["task"] == 4) == 37  # every unit once
    t21 = [r for r in rows if r["task"] == 21 and r["unit"] == "市司法局"]
    assert t21 == [{"task": 21, "unit": "市司法局", "role": "责任", "note": "负责市政府规章"}]
    code, out, _ = run(capsys, "--config", str(config_file), "assignments", "--json", "--unit", "延平区")
    assert {r["unit"] for r in json.loads(out)} == {"延平区政府"}
    assert len(json.loads(out)) == 34


def test_changed_table_after_sending_needs_replace(config_file, capsys, now):
    run(capsys, "--config", str(config_file), "init")
    table = config_file.parent / "samples" / "task-table.txt"
    changed = config_file.parent / "changed.txt"
    changed.write_bytes(table.read_bytes().replace("做好规划信息数据互联互通".encode(), "做好规划数据互联互通".encode()))
    with Ledger.open(config_file.parent / "var") as led:
        led.execute(
            "INSERT INTO messages(idem_key, purpose, batch_id, message_id, subject, state, created_at) "
            "VALUES ('distribute:1:1', 'distribute', 1, '<m@x>', 's', 'sent', '2021-11-01T09:00:00+08:00')"
        )
    code, _, err = run(capsys, "--config", str(config_file), "init", "--tasks", str(changed))
    assert code == 1 and "已经发出" in err and "--replace" in err
    code, out, _ = run(capsys, "--config", str(config_file), "init", "--tasks", str(changed), "--replace")
    assert code == 0 and "第 2 版" in out
    with Ledger.open(config_file.parent / "var") as led:
        assert [r.revision for r in led.revisions(1)] == [1, 2]
        assert led.tasks(1)[2].title == "做好规划数据互联互通"


def test_unknown_unit_lists_closest_names(config_file, capsys):
    table = config_file.parent / "t.txt"
    table.write_text("工作任务 | 牵头单位 | 责任单位\n1.公开 | 市发展委 | 各县（市、区）政府\n", encoding="utf-8")
    code, out, err = run(capsys, "--config", str(config_file), "init", "--tasks", str(table))
    assert code == 1
    assert err.startswith("Error: ") and "市发展委" in err and "市发改委" in err and "Traceback" not in err
    code, out, _ = run(capsys, "--config", str(config_file), "init", "--tasks", str(table), "--register-unknown")
    assert code == 0
    assert 'name = "市发展委"' in config_file.read_text(encoding="utf-8")


def test_errors_are_one_line_and_debug_shows_traceback(tmp_path, capsys):
    code, out, err = run(capsys, "--config", str(tmp_path / "missing.toml"), "init")
    assert code == 1 and err.strip().count("\n") == 0 and err.startswith("Error: ")
    assert "找不到配置文件" in err
    with pytest.raises(Exception, match="找不到配置文件"):
        main(["--debug", "--config", str(tmp_path / "missing.toml"), "init"])


def test_bad_config_names_the_key(tmp_path, capsys, config_file):
    text = config_file.read_text(encoding="utf-8").replace('mode = "outbox"', 'mode = "fax"')
    config_file.write_text(text, encoding="utf-8")
    code, _, err = run(capsys, "--config", str(config_file), "init")
    assert code == 1 and "[mail] mode" in err and "outbox" in err


def test_config_from_env_and_workspace_option(config_file, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("AUTOMATION_CONFIG", str(config_file))
    other = tmp_path / "elsewhere"
    code, _, _ = run(capsys, "--workspace", str(other), "init")
    assert code == 0
    assert (other / "ledger.sqlite3").exists()
    assert not (config_file.parent / "var" / "ledger.sqlite3").exists()


def test_no_traceback_for_broken_input(capsys, tmp_path):
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(b"PK\x03\x04 not really")
    code, _, err = run(capsys, "tasks", "show", str(bad))
    assert code == 1 and "bad.xlsx" in err and "Traceback" not in err


def test_workspace_layout(config_file, capsys):
    run(capsys, "--config", str(config_file), "init")
    ws = config_file.parent / "var"
    for folder in ("workbooks", "inbox", "archive", "quarantine", "outbox", "reports", "logs"):
        assert (ws / folder).is_dir()
    assert Path(ws / "ledger.sqlite3").exists()


def test_misspelt_config_key_is_refused(capsys, config_file):
    text = config_file.read_text(encoding="utf-8").replace("per_minute = 20.0", "per_minut = 20.0")
    config_file.write_text(text, encoding="utf-8")
    code, _, err = run(capsys, "--config", str(config_file), "init")
    assert code == 1 and "[mail]" in err and "per_minut" in err and "per_minute" in err


def test_json_on_a_gbk_console_is_valid_and_lossless(tmp_path):
    import os

    table = tmp_path / "t.txt"
    table.write_text("工作任务 | 牵头单位\n1.完成✔任务👍 | 市发改委\n", encoding="utf-8")
    env = {**os.environ, "PYTHONIOENCODING": "gbk"}
    proc = subprocess.run([sys.executable, "-m", "automation", "tasks", "show", str(table), "--json"],
                          capture_output=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr.decode("gbk", "replace")
    assert json.loads(proc.stdout.decode("gbk"))[0]["title"] == "完成✔任务👍"
    proc = subprocess.run([sys.executable, "-m", "automation", "tasks", "show", str(table)],
                          capture_output=True, env=env, check=False)
    assert proc.returncode == 0 and "市发改委" in proc.stdout.decode("gbk")


def test_utf16_text_table(tmp_path, sample_path):
    from automation.tasks.load import load_tasks

    path = tmp_path / "unicode.txt"  # Excel's "Unicode 文本" / Notepad's "Unicode"
    path.write_bytes(sample_path.read_text(encoding="utf-8").encode("utf-16"))
    assert [t.to_json() for t in load_tasks(path).tasks] == [t.to_json() for t in load_tasks(sample_path).tasks]


def test_outputs_are_not_private_files(tmp_path):
    import os

    from automation.fsutil import atomic_write_bytes

    target = atomic_write_bytes(tmp_path / "report.xlsx", b"x")
    umask = os.umask(0o022)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # as any new file, not mkstemp's 0600


@pytest.mark.parametrize(("old", "new", "named"), [
    ("max_file_mb = 20.0", "max_file_mb = -1.0", "[collect] max_file_mb"),
    ('email = ["fgw@np.example.com"]', 'email = ["a@b@c"]', "a@b@c"),
])
def test_bad_limits_and_addresses_are_refused_at_load(capsys, config_file, old, new, named):
    text = config_file.read_text(encoding="utf-8")
    assert old in text
    config_file.write_text(text.replace(old, new, 1), encoding="utf-8")
    code, _, err = run(capsys, "--config", str(config_file), "init")
    assert code == 1 and err.startswith("Error: ") and named in err
    assert not (config_file.parent / "var").exists()


def test_init_warns_about_units_without_an_address(capsys, config_file):
    text = config_file.read_text(encoding="utf-8")
    config_file.write_text(text.replace('email = ["fgw@np.example.com"]', "email = []", 1), encoding="utf-8")
    code, _, err = run(capsys, "--config", str(config_file), "init")
    assert code == 0 and "未登记邮箱" in err and "市发改委" in err


def test_read_only_commands_on_a_missing_workspace_create_nothing(capsys, config_file, tmp_path):
    wrong = tmp_path / "拼错的目录"
    for command in (["status"], ["report"], ["assignments"], ["remind", "--dry-run"]):
        code, out, err = run(capsys, "--config", str(config_file), "--workspace", str(wrong), *command)
        assert code == 1 and err.startswith("Error: ") and err.strip().count("\n") == 0, command
        assert "automation init" in err
        assert not wrong.exists(), command


def test_malformed_now_is_a_usage_error(capsys, config_file):
    run(capsys, "--config", str(config_file), "init")
    code, _, err = run(capsys, "--config", str(config_file), "status", "--now", "2021/13/45")
    assert code == 2 and "2021-11-01T09:30" in err and "内部错误" not in err


def test_report_out_into_a_missing_folder_is_refused(capsys, config_file, tmp_path):
    run(capsys, "--config", str(config_file), "init")
    target = tmp_path / "没有的文件夹" / "汇总表.xlsx"
    code, _, err = run(capsys, "--config", str(config_file), "report", "--out", str(target))
    assert code == 1 and "文件夹不存在" in err and not target.parent.exists()
