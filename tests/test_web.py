"""The console through Flask's test client: pages, the /api/status contract, CSRF, accounts, uploads."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from web_kit import DEMO_NOW, copy_demo, filled_return, make_demo

from automation.errors import AutomationError
from automation.ledger import Ledger
from automation.progress.status import status_summary
from automation.web.app import create_app
from automation.web.server import check_address

HOST = {"Host": "127.0.0.1:8000"}


@pytest.fixture(scope="module")
def demo_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_demo(tmp_path_factory.mktemp("webdemo"))


@pytest.fixture
def config(demo_config: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    return copy_demo(demo_config, tmp_path / "ws")


@pytest.fixture
def client(config):  # type: ignore[no-untyped-def]
    app = create_app(config, now=lambda: DEMO_NOW)
    with app.test_client() as c:
        c.environ_base.update({"HTTP_HOST": "127.0.0.1:8000", "REMOTE_ADDR": "127.0.0.1"})
        yield c


def token(client) -> str:  # type: ignore[no-untyped-def]
    return client.get("/api/session").get_json()["csrf_token"]


def wait(client, kind: str) -> dict:  # type: ignore[no-untyped-def]
    app = client.application
    app.config["DUBAN"].jobs.wait(120)
    return client.get("/api/jobs").get_json()[kind]


def events(config, kind: str) -> list[dict]:  # type: ignore[no-untyped-def]
    with Ledger.open(config.workspace) as led:
        return [json.loads(d) for (d,) in led.execute("SELECT detail FROM events WHERE kind = ? ORDER BY id", (kind,))]


def test_overview_of_the_demo(client, config) -> None:  # type: ignore[no-untyped-def]
    page = client.get("/").get_data(as_text=True)
    assert "2021年南平市政务公开重点工作" in page and "84.5%" in page and "剩余 1 个工作日" in page
    # The three silent units are marked 未报送, apart from the units under way (推进中).
    silent = re.search(r"未报送的单位（(\d) 个）</h2>\s*<p>(.*?)</p>", page, re.S)
    assert silent and silent.group(1) == "3"
    assert all(u in silent.group(2) for u in ("松溪县政府", "市统计局", "市城管局"))
    assert page.count('class="state state-silent"') == 3 and page.count('class="state state-going"') == 6
    assert "<svg" in page and "本机单用户模式" in page


def test_overview_refreshes_itself_while_a_collect_runs(client) -> None:  # type: ignore[no-untyped-def]
    from automation.web.jobs import Job

    assert 'data-state="running"' not in client.get("/").get_data(as_text=True)
    client.application.config["DUBAN"].jobs.latest["collect"] = Job(1, "collect", "上传 500 个文件", "本机", DEMO_NOW,
                                                                     done=120, total=500)
    for path in ("/", "/collect"):
        page = client.get(path).get_data(as_text=True)
        assert 'data-state="running" data-id="1" data-refresh="5"' in page and 'value="120"' in page
        assert '<meta http-equiv="refresh" content="5">' in page      # without script too
    assert client.get("/api/jobs").get_json()["collect"]["percent"] == 24


def test_api_status_is_status_json(client, config) -> None:  # type: ignore[no-untyped-def]
    with Ledger.open(config.workspace) as led:
        expected = status_summary(config, led, DEMO_NOW)
    assert client.get("/api/status").get_json() == json.loads(json.dumps(expected, default=str))


def test_every_page_renders(client, config) -> None:  # type: ignore[no-untyped-def]
    with Ledger.open(config.workspace) as led:
        unit = led.unit_by_name("市商务局")
    for path, text in (("/tasks", "导入记录"), ("/tasks/1", "推进中（已完成 10/12，未报 1）"), ("/units", "单位名册"),
                       (f"/units/{unit.id}", "差不多了"), ("/send", "发件箱模式"), ("/collect", "建阳区政府_伪造.xlsx"),
                       ("/remind", "逾期升级"), ("/report", "生成汇总表")):
        r = client.get(path)
        assert r.status_code == 200 and text in r.get_data(as_text=True), path
    assert client.get("/tasks/999").status_code == 404
    assert client.get(f"/units/{unit.id}").get_data(as_text=True).count("下一次催办") == 1


def test_security_headers_and_host(client) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/")
    assert r.headers["X-Frame-Options"] == "DENY"
    csp = r.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "<script>" not in r.get_data(as_text=True) and " style=" not in r.get_data(as_text=True)
    assert client.get("/", headers={"Host": "attacker.example:8000"}).status_code == 400
    cookie = r.headers.get("Set-Cookie", "") or client.get("/api/session").headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie


def test_post_without_csrf_token_is_403(client, config) -> None:  # type: ignore[no-untyped-def]
    assert client.post("/remind").status_code == 403
    assert client.post("/remind", data={"csrf_token": "forged"}).status_code == 403
    assert client.post("/collect", data={"files": []}).status_code == 403
    assert not events(config, "remind")
    assert client.post("/remind", data={"csrf_token": token(client)}).status_code == 303
    assert wait(client, "remind")["state"] == "done"
    assert events(config, "remind")[-1]["account"] == "本机"


def test_upload_changes_the_units_progress(client, config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    before = client.get("/api/status").get_json()
    unit = next(u for u in before["units"] if u["unit"] == "市统计局")
    assert unit["done"] == 0 and unit["level"] == "red"
    path = filled_return(config, "市统计局", tmp_path / "统计局报送.xlsx")
    with path.open("rb") as fh:
        r = client.post("/collect", data={"csrf_token": token(client), "files": [(fh, path.name)]},
                        headers={"Accept": "application/json"}, content_type="multipart/form-data")
    doc = r.get_json()
    assert r.status_code == 200, doc
    assert doc["totals"]["accepted"] == 1 and doc["files"][0]["unit"] == "市统计局"
    assert doc["files"][0]["file_name"] == "统计局报送.xlsx" and doc["files"][0]["source"] == "web"
    after = client.get("/api/status").get_json()
    unit = next(u for u in after["units"] if u["unit"] == "市统计局")
    assert unit["done"] == unit["assigned"] == 28 and unit["level"] == "green"
    assert after["completion"] > before["completion"]
    assert not list((config.workspace / "uploads").glob("*"))          # stored, so the upload copy is gone
    ev = events(config, "collect")[-1]
    assert ev["account"] == "本机" and ev["address"] == "127.0.0.1" and ev["accepted"] == 1
    page = client.get("/collect").get_data(as_text=True)
    assert "统计局报送.xlsx" in page and "已接收 28 项" in page
    # The same file again is a duplicate; the office's browser form gets a redirect to the results.
    with path.open("rb") as fh:
        r = client.post("/collect", data={"csrf_token": token(client), "files": [(fh, path.name)]},
                        content_type="multipart/form-data")
    assert r.status_code == 303
    assert wait(client, "collect")["state"] == "done"
    assert "重复文件" in client.get("/collect").get_data(as_text=True)


def test_upload_limits(client, config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import io
    from dataclasses import replace

    app = create_app(replace(config, collect=replace(config.collect, max_files=2, max_file_mb=0.001)),
                     now=lambda: DEMO_NOW)
    c = app.test_client()
    c.environ_base.update({"HTTP_HOST": "127.0.0.1:8000"})
    t = token(c)
    r = c.post("/collect", data={"csrf_token": t, "files": [(io.BytesIO(b"x"), f"{i}.xlsx") for i in range(3)]},
               headers={"Accept": "application/json"}, content_type="multipart/form-data")
    assert r.status_code == 400 and "一次最多上传 2 个文件" in r.get_json()["error"]
    r = c.post("/collect", data={"csrf_token": t, "files": [(io.BytesIO(b"x" * 5000), "../../etc/大.xlsx")]},
               headers={"Accept": "application/json"}, content_type="multipart/form-data")
    doc = r.get_json()
    assert doc["refused"][0]["file_name"] == "大.xlsx" and "文件过大" in doc["refused"][0]["reason"]
    assert not list((config.workspace / "uploads").glob("*"))


def test_quarantine_download_and_recheck(client, config) -> None:  # type: ignore[no-untyped-def]
    with Ledger.open(config.workspace) as led:
        q = led.quarantined(led.require_batch(config.batch.title).id)[0]
    with client.get(f"/files/{q.id}") as r:
        assert r.status_code == 200 and r.data == (config.workspace / q.quarantine_path).read_bytes()
        assert "attachment" in r.headers["Content-Disposition"]
    assert client.post(f"/collect/recheck/{q.id}", data={"csrf_token": token(client)}).status_code == 303
    page = client.get("/collect").get_data(as_text=True)
    assert "重新检查后仍不能接收" in page            # a forged signature stays refused
    assert events(config, "recheck")[-1]["submission"] == q.id


def _table(config, tmp_path: Path, old: str, new: str) -> Path:  # type: ignore[no-untyped-def]
    text = config.batch.tasks.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "新任务表.txt"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def test_import_preview_names_unknown_units(client, config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = _table(config, tmp_path, "市财政局", "市财正局")
    with path.open("rb") as fh:
        r = client.post("/tasks/preview", data={"csrf_token": token(client), "table": (fh, path.name)},
                        content_type="multipart/form-data")
    page = r.get_data(as_text=True)
    assert r.status_code == 200 and "未登记的单位名称（1 个）" in page
    row = re.search(r'<tr class="unknown"><td>市财正局</td><td>第 (\d+) 项</td><td>(.*?)</td>', page)
    assert row and row.group(2).startswith("市财政局")
    assert re.search(r"<button disabled>确认替换</button>", page)


def test_replacing_a_sent_table_needs_a_second_confirmation(client, config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = _table(config, tmp_path, "政务公开", "政务公开（修订）")
    with path.open("rb") as fh:
        page = client.post("/tasks/preview", data={"csrf_token": token(client), "table": (fh, path.name)},
                           content_type="multipart/form-data").get_data(as_text=True)
    assert "工作簿已经发出" in page and 'name="confirm_replace"' in page
    tok = re.search(r'name="token" value="([^"]+)"', page).group(1)
    form = {"csrf_token": token(client), "token": tok, "source_name": path.name, "replace": "1"}
    r = client.post("/tasks/import", data=form)
    assert r.status_code == 400 and "已经发出" in r.get_data(as_text=True)
    r = client.post("/tasks/import", data={**form, "confirm_replace": "1"}, follow_redirects=True)
    assert "替换为第 2 版" in r.get_data(as_text=True)
    assert events(config, "import")[-1]["replace"] is True and events(config, "import")[-1]["account"] == "本机"


def test_send_page_previews_and_sends_nothing_twice(client, config) -> None:  # type: ignore[no-untyped-def]
    page = client.get("/send").get_data(as_text=True)
    assert "发件箱模式" in page and "2021年南平市政务公开重点工作_市发改委.xlsx" in page and "待发送 0" in page
    assert client.post("/send", data={"csrf_token": token(client), "what": "distribute"}).status_code == 303
    job = wait(client, "send")
    assert job["state"] == "done"
    assert "已发过 37 封" in client.get("/send").get_data(as_text=True)


def test_smtp_mode_is_said_plainly_and_no_secret_is_shown(config, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    monkeypatch.setenv("DUBAN_SMTP_PASSWORD", "s3cret-授权码")
    smtp = replace(config, mail=replace(config.mail, mode="smtp", host="smtp.example.com", port=465))
    c = create_app(smtp, now=lambda: DEMO_NOW).test_client()
    page = c.get("/send", headers=HOST).get_data(as_text=True)
    assert "真实发送" in page and "smtp.example.com:465" in page and "已设置" in page
    assert "s3cret" not in page and "s3cret" not in c.get("/api/status", headers=HOST).get_data(as_text=True)


def test_report_made_and_downloaded(client, config) -> None:  # type: ignore[no-untyped-def]
    assert client.post("/report", data={"csrf_token": token(client)}).status_code == 303
    assert wait(client, "report")["state"] == "done"
    name = re.search(r'href="/reports/([^"]+)"', client.get("/report").get_data(as_text=True)).group(1)
    with client.get(f"/reports/{name}") as r:
        assert r.status_code == 200 and r.data[:2] == b"PK"
    assert client.get("/reports/..%2Fledger.sqlite3").status_code == 404


def test_accounts_login_throttle_and_viewer(config) -> None:  # type: ignore[no-untyped-def]
    with Ledger.open(config.workspace) as led:
        led.save_account("办公室", "admin", "correct horse", DEMO_NOW)
        led.save_account("督查室", "viewer", "viewer pass", DEMO_NOW)
        with pytest.raises(AutomationError):
            led.save_account("短", "admin", "short", DEMO_NOW)
        assert "correct horse" not in led.account("办公室").password_hash
    app = create_app(config, now=lambda: DEMO_NOW)
    c = app.test_client()
    c.environ_base.update({"HTTP_HOST": "127.0.0.1:8000", "REMOTE_ADDR": "10.1.2.3"})
    assert c.get("/").status_code == 302 and c.get("/api/status").status_code == 401
    login = c.get("/login").get_data(as_text=True)
    t = re.search(r'name="csrf_token" value="([^"]+)"', login).group(1)
    assert c.post("/login", data={"name": "办公室", "password": "x"}).status_code == 403   # no token
    r = c.post("/login", data={"csrf_token": t, "name": "督查室", "password": "viewer pass"})
    assert r.status_code == 303
    assert c.get("/").status_code == 200
    assert "生成工作簿</button>" not in c.get("/send").get_data(as_text=True)
    t = token(c)
    assert c.post("/remind", data={"csrf_token": t}).status_code == 403       # a viewer changes nothing
    assert c.post("/report", data={"csrf_token": t}).status_code == 403
    c.post("/logout", data={"csrf_token": t})
    assert c.get("/").status_code == 302
    # Throttled: after five failures from an address even the right password waits.
    t = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/login").get_data(as_text=True)).group(1)
    for _ in range(5):
        assert c.post("/login", data={"csrf_token": t, "name": "办公室", "password": "wrong"}).status_code == 401
    r = c.post("/login", data={"csrf_token": t, "name": "办公室", "password": "correct horse"})
    assert r.status_code == 401 and "次数过多" in r.get_data(as_text=True)
    with Ledger.open(config.workspace) as led:
        kinds = [k for (k,) in led.execute("SELECT kind FROM events WHERE kind LIKE 'login%'")]
    assert kinds.count("login") == 1 and kinds.count("login-failed") == 5 and "login-throttled" in kinds
    assert all(e["address"] == "10.1.2.3" for e in events(config, "login-failed"))


def test_non_loopback_address_needs_an_account(config) -> None:  # type: ignore[no-untyped-def]
    check_address(config, "127.0.0.1")
    with pytest.raises(AutomationError, match="--add-user"):
        check_address(config, "0.0.0.0")
    with Ledger.open(config.workspace) as led:
        led.save_account("办公室", "admin", "correct horse", DEMO_NOW)
    check_address(config, "0.0.0.0")


def test_cli_refuses_a_network_address_without_accounts(config) -> None:  # type: ignore[no-untyped-def]
    from automation.cli import main

    assert main(["--config", str(config.path), "web", "--host", "0.0.0.0", "--port", "0"]) == 1


def test_ctrl_c_stops_the_server_cleanly(config) -> None:  # type: ignore[no-untyped-def]
    import os
    import signal
    import subprocess
    import sys
    import urllib.request

    proc = subprocess.Popen([sys.executable, "-m", "automation", "--config", str(config.path), "web", "--port", "0",
                             "--now", "2021-12-14T09:00"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        line = proc.stdout.readline()
        url = re.search(r"(http://127\.0\.0\.1:\d+/)", line).group(1)
        with urllib.request.urlopen(url, timeout=30) as r:
            assert r.status == 200 and "总览" in r.read().decode("utf-8")
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill() if proc.poll() is None else None
    assert proc.returncode == 0 and "工作台已停止" in out and "Traceback" not in out


def test_send_preview_from_the_command_line(config, capsys) -> None:  # type: ignore[no-untyped-def]
    from automation.cli import main

    assert main(["--config", str(config.path), "send", "--preview", "--json", "--unit", "各县（市、区）政府"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["mode"] == "outbox" and doc["to_send"] == 0 and len(doc["units"]) == 10
    assert {u["state_name"] for u in doc["units"]} == {"已发送"}
    with Ledger.open(config.workspace) as led:
        assert not led.execute("SELECT 1 FROM messages WHERE state = 'pending'").fetchall()


def test_notice_made_and_downloaded(client, config) -> None:  # type: ignore[no-untyped-def]
    page = client.get("/report").get_data(as_text=True)
    assert "生成情况通报" in page and "生成汇总表" in page
    assert client.post("/report", data={"csrf_token": token(client), "kind": "notice"}).status_code == 303
    assert wait(client, "report")["state"] == "done"
    name = re.search(r'href="/reports/([^"]+\.docx)"', client.get("/report").get_data(as_text=True)).group(1)
    assert "%E6%83%85%E5%86%B5%E9%80%9A%E6%8A%A5" in name or "情况通报" in name
    with client.get(f"/reports/{name}") as r:
        assert r.status_code == 200 and r.data[:2] == b"PK"
    assert events(config, "report")[-1]["document"] == "notice"


def test_the_cycle_on_the_console(config) -> None:  # type: ignore[no-untyped-def]
    """Per-task deadlines, overdue tasks, rounds, refused answers and scores on 总览 / 任务 / 单位."""
    import dataclasses

    from automation.config import load_config
    from automation.units import Assignment

    text = config.path.read_text(encoding="utf-8")
    config.path.write_text(text.replace('cadence = "none"', 'cadence = "dates"').replace("dates = []", "dates = [2021-11-20]"),
                           encoding="utf-8")
    config = load_config(config.path)
    with Ledger.open(config.workspace) as led:
        batch = led.require_batch(config.batch.title)
        tasks = [dataclasses.replace(t, deadline="11月底前", due_date="2021-11-30") if t.number == 2 else t
                 for t in led.tasks(batch.id)]
        led.import_tasks(batch, tasks, [Assignment(a.task, a.unit, a.role, a.note) for a in led.assignments(batch.id)],
                         DEMO_NOW, replace=True)
        unit = led.unit_by_name("市商务局")
    app = create_app(config, now=lambda: DEMO_NOW)
    with app.test_client() as c:
        c.environ_base.update({"HTTP_HOST": "127.0.0.1:8000", "REMOTE_ADDR": "127.0.0.1"})
        page = c.get("/").get_data(as_text=True)
        assert "逾期任务" in page and "第2期" in page and "本期已报送" in page and 'class="chart trend"' in page
        overdue = re.search(r"逾期任务（(\d+) 项）", page)
        assert overdue and overdue.group(1) == "1" and "11月底前" in page
        assert "综合得分" in page and "类内排名" in page
        task = c.get("/tasks/2").get_data(as_text=True)
        assert "11月底前" in task and "（2021-11-30）" in task and "已逾期 10 个工作日" in task
        tasks = c.get("/tasks").get_data(as_text=True)
        assert "已逾期 10 个工作日" in tasks
        mine = c.get(f"/units/{unit.id}").get_data(as_text=True)
        assert "已报送但未通过：" in mine and "差不多了" in mine and "综合得分" in mine and "定期报送" in mine
        units = c.get("/units").get_data(as_text=True)
        assert units.count('<td class="num">1</td>') >= 2       # a rank 1 in each kind
