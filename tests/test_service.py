"""``automation run`` driven with injected time: due jobs, guarded failures, the lock, signals, logs."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from automation import clock
from automation.collect.runlock import CollectLock
from automation.config import Config
from automation.errors import AutomationError, LedgerError
from automation.ledger import Ledger
from automation.mail.compose import recipients_of
from automation.mail.intake import IntakeResult, MessageOutcome
from automation.mail.receipts import pending_receipts, send_owed_receipts
from automation.mail.transports import Delivery, MailConnectionError
from automation.service import LOCK_FILE, AlreadyRunning, InstanceLock, Service

START = dt.datetime(2021, 11, 1, 8, 55, tzinfo=clock.TZ)  # a Monday


class FakeClock:
    """Time that moves only when the service sleeps; stops the service at ``until``."""

    def __init__(self, start: dt.datetime, until: dt.datetime) -> None:
        self.t = start
        self.until = until
        self.service: Service | None = None
        self.sleeps = 0

    def now(self) -> dt.datetime:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.t += dt.timedelta(seconds=seconds)
        if self.t >= self.until and self.service is not None:
            self.service.stop("test over")


class Stage:
    """Records the calls the service makes to the stage functions."""

    def __init__(self, clk: FakeClock, *, collect_fails: bool = False, remind_fails_first: bool = False,
                 reply_at_poll: int = 2) -> None:
        self.clk = clk
        self.reply_at_poll = reply_at_poll
        self.collect_fails = collect_fails
        self.remind_fails_first = remind_fails_first
        self.polls: list[dt.datetime] = []
        self.reminds: list[dt.datetime] = []
        self.reports: list[dt.datetime] = []
        self.receipts: list[list[str]] = []
        self.transports = 0
        self.closed = 0
        self.sent: list[str] = []          # idempotency keys the transport delivered
        self.sent_at: list[dt.datetime] = []
        self.smtp_down = False

    def collect(self, config, ledger, now):
        assert ledger is not None
        self.polls.append(now)
        if self.collect_fails:
            raise RuntimeError("imap exploded")
        result = IntakeResult(folder="INBOX")
        if len(self.polls) == self.reply_at_poll:  # one reply arrives (by default at the second poll)
            f = SimpleNamespace(file_name="市发改委.xlsx", sha256="ab" * 32, outcome="accepted", unit="市发改委",
                                unit_id=1, rows_accepted=0, problems=[], sender="fgw@np.example.com", reason="")
            batch = ledger.batch_by_title(config.batch.title)
            if batch is not None:  # recorded as collect would (receipts are owed from the ledger)
                f.unit_id = ledger.unit_by_name("市发改委").id
                ledger.record_submission(sha256=f.sha256, file_name=f.file_name, archive_path="archive/ab.xlsx",
                                         received_at=now, now=now, outcome="accepted", batch_id=batch.id,
                                         unit_id=f.unit_id, source="imap", message_id="<m@x>", sender=f.sender)
            result.messages.append(MessageOutcome("<m@x>", "1", files=[f], state="collected", moved=True))
        return result

    def remind(self, config, ledger, now, transport):
        self.reminds.append(now)
        if self.remind_fails_first and len(self.reminds) == 1:
            raise LedgerError("台账中还没有批次")
        return [SimpleNamespace(action="sent")]

    def receipt(self, config, ledger, now, transport):
        """The real send_owed_receipts (it writes the ledger), recording the files it found owed."""
        owed = pending_receipts(config, ledger)
        if owed:
            self.receipts.append([f.file_name for f in owed])
        return send_owed_receipts(config, ledger, now, transport)

    def report(self, config, ledger, now):
        self.reports.append(now)
        return config.workspace / "reports" / "汇总.xlsx"

    def transport(self, config, workspace):
        self.transports += 1
        return FakeTransport(self)


class FakeTransport:
    """The mail edge: records what would have gone out; ``stage.smtp_down`` makes it fail like a dead server."""

    name = "fake"

    def __init__(self, stage: Stage) -> None:
        self.stage = stage

    def send(self, message, idem_key):
        if self.stage.smtp_down:
            raise MailConnectionError("无法连接邮件服务器 smtp.example.invalid:465（ConnectionRefusedError）")
        self.stage.sent.append(idem_key)
        self.stage.sent_at.append(self.stage.clk.now())
        return Delivery(accepted=recipients_of(message))

    def close(self):
        self.stage.closed += 1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def service_for(config: Config, clk: FakeClock, stage: Stage, **kwargs) -> Service:
    svc = Service(config, now_fn=clk.now, sleep_fn=clk.sleep, collect_fn=stage.collect, remind_fn=stage.remind,
                  receipts_fn=stage.receipt, report_fn=stage.report, transport_factory=stage.transport, **kwargs)
    clk.service = svc
    return svc


@pytest.fixture
def svc_config(config: Config) -> Config:
    imap = replace(config.imap, host="imap.example.invalid")
    return replace(config, imap=imap, service=replace(config.service, poll_minutes=10))


def log_text(config: Config) -> str:
    return (config.workspace / config.service.log_file).read_text(encoding="utf-8")


def test_jobs_fire_when_due(svc_config: Config, ledger: Ledger):
    clk = FakeClock(START, until=START + dt.timedelta(days=1, minutes=35))  # to Tuesday 09:30
    stage = Stage(clk)
    svc = service_for(svc_config, clk, stage, handle_signals=False)
    svc.run_forever()

    minutes = [(p - START).total_seconds() / 60 for p in stage.polls]
    assert minutes[:3] == [0, 10, 20] and minutes == [10 * i for i in range(len(minutes))]
    assert stage.polls[-1] == dt.datetime(2021, 11, 2, 9, 25, tzinfo=clock.TZ)
    # Reminders: once at start (catch-up), then at 09:00 Shanghai each day.
    assert stage.reminds == [START, START.replace(hour=9, minute=0), START.replace(day=2, hour=9, minute=0)]
    # The reply at the second poll: one receipt, one report refresh, at that moment; nothing after.
    assert stage.receipts == [["市发改委.xlsx"]]
    assert stage.sent == [f"receipt:{'ab' * 32}:accepted"]
    assert stage.reports == [stage.polls[1]]
    assert stage.transports == stage.closed == 1 + 3
    assert not (svc_config.workspace / LOCK_FILE).exists()
    text = log_text(svc_config)
    assert "督办服务已启动" in text and "汇总表已更新" in text and "督办服务已停止" in text
    assert "收到 市发改委 的“市发改委.xlsx”" in text
    # The loop waits for the next job (a minute at most, to notice a PC waking up), it does not spin.
    assert clk.sleeps <= 24 * 60 + 35 + 5


def test_a_failing_job_does_not_stop_the_others(svc_config: Config):
    clk = FakeClock(START, until=START + dt.timedelta(days=1, minutes=35))
    stage = Stage(clk, collect_fails=True, remind_fails_first=True)
    svc = service_for(svc_config, clk, stage, handle_signals=False)
    svc.run_forever()
    # The failing poll is rescheduled every time (schedule alone would have dropped it) …
    assert len(stage.polls) == 24 * 6 + 4
    assert svc.stats["poll"].failures == len(stage.polls)
    # … and the reminders still go out; the one that failed at start did not block the 09:00 one.
    assert len(stage.reminds) == 3 and svc.stats["remind"].failures == 1
    text = log_text(svc_config)
    assert "收取邮件出错" in text and "RuntimeError: imap exploded" in text and "Traceback" in text
    assert "催办提醒失败：台账中还没有批次" in text


def test_receipts_that_fail_are_retried_and_do_not_block_the_report(svc_config: Config, ledger: Ledger):
    """The SMTP server is down when the reply arrives: the report still refreshes, the receipt is
    retried at every poll from the ledger, also by a restarted service, and goes out exactly once."""
    key = f"receipt:{'ab' * 32}:accepted"
    clk = FakeClock(START, until=START + dt.timedelta(minutes=25))
    stage = Stage(clk)
    stage.smtp_down = True
    svc = service_for(svc_config, clk, stage, handle_signals=False)
    svc.run_forever()                                    # polls at 0, 10, 20: the reply comes at 10
    assert stage.receipts == [["市发改委.xlsx"], ["市发改委.xlsx"]]  # retried at the next poll
    assert stage.reports == [stage.polls[1]]
    assert stage.sent == [] and svc.stats["receipts"].failures == 2
    assert "回执失败" in log_text(svc_config)
    assert ledger.execute("SELECT state FROM messages WHERE idem_key = ?", (key,)).fetchone()[0] == "failed"

    # The service is restarted (nothing in memory) and the server is back: sent at the first poll, once.
    clk = FakeClock(START + dt.timedelta(minutes=30), until=START + dt.timedelta(minutes=55))
    again = Stage(clk, reply_at_poll=0)                  # no new reply this time
    svc = service_for(svc_config, clk, again, handle_signals=False)
    svc.run_forever()
    assert again.receipts == [["市发改委.xlsx"]] and again.sent == [key] and again.sent_at == again.polls[:1]
    row = ledger.execute("SELECT state, attempts FROM messages WHERE idem_key = ?", (key,)).fetchone()
    assert tuple(row) == ("sent", 3)
    assert svc.stats["receipts"].failures == svc.stats["poll"].failures == 0


def test_times_are_shanghai_whatever_the_host_zone(svc_config: Config, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        svc = Service(svc_config, handle_signals=False)  # the real clock
        svc.start(catch_up=False)
        try:
            now = clock.now()
            expected = now.replace(hour=9, minute=0, second=0, microsecond=0)
            if expected <= now:
                expected += dt.timedelta(days=1)
            assert svc.next_run("remind") == expected
            assert dt.timedelta(minutes=9) < svc.next_run("poll") - clock.now() <= dt.timedelta(minutes=10)
        finally:
            svc.close()
    finally:
        monkeypatch.undo()
        time.tzset()


def test_one_instance_at_a_time_and_stale_locks_are_taken_over(svc_config: Config):
    clk = FakeClock(START, until=START)
    first = service_for(svc_config, clk, Stage(clk), handle_signals=False)
    first.start(catch_up=False)
    second = service_for(svc_config, clk, Stage(clk), handle_signals=False)
    with pytest.raises(AlreadyRunning, match=f"PID {os.getpid()}"):
        second.start()
    assert second.ledger is None
    first.close()
    assert not (svc_config.workspace / LOCK_FILE).exists()

    # A lock left by a process that is gone (power cut, "End task"): taken over.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock_path = svc_config.workspace / LOCK_FILE
    lock_path.write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(), "started": "x"}), "utf-8")
    second.start(catch_up=False)
    assert json.loads(lock_path.read_text("utf-8"))["pid"] == os.getpid()
    second.close()
    assert "未正常退出，已接管" in log_text(svc_config)

    # A lock from another computer sharing the workspace cannot be checked: respected.
    lock_path.write_text(json.dumps({"pid": 1, "host": "another-pc", "started": "x"}), "utf-8")
    with pytest.raises(AlreadyRunning, match="another-pc"):
        InstanceLock(svc_config.workspace).acquire()
    lock_path.unlink()


def test_ctrl_c_stops_cleanly_between_jobs(svc_config: Config):
    clk = FakeClock(START, until=START + dt.timedelta(days=30))
    stage = Stage(clk)

    def sleep(seconds: float) -> None:
        clk.sleep(seconds)
        if len(stage.polls) == 3:
            os.kill(os.getpid(), signal.SIGINT)

    svc = Service(svc_config, now_fn=clk.now, sleep_fn=sleep, collect_fn=stage.collect, remind_fn=stage.remind,
                  receipts_fn=stage.receipt, report_fn=stage.report, transport_factory=stage.transport)
    before = signal.getsignal(signal.SIGINT)
    svc.run_forever()
    assert len(stage.polls) == 3
    assert signal.getsignal(signal.SIGINT) is before
    assert not (svc_config.workspace / LOCK_FILE).exists()
    assert "SIGINT" in log_text(svc_config)


def test_log_file_rotates(svc_config: Config):
    cfg = replace(svc_config, service=replace(svc_config.service, log_max_kb=1, log_backups=2))
    clk = FakeClock(START, until=START + dt.timedelta(hours=12))
    stage = Stage(clk, collect_fails=True)  # every poll writes a traceback
    service_for(cfg, clk, stage, handle_signals=False).run_forever()
    logs = sorted(p.name for p in (cfg.workspace / "logs").iterdir())
    assert logs == ["automation.log", "automation.log.1", "automation.log.2"]
    assert all((cfg.workspace / "logs" / n).stat().st_size <= 1024 + 4096 for n in logs)


def test_run_once_reports_failure_by_exit_status(svc_config: Config):
    clk = FakeClock(START, until=START)
    ok = service_for(svc_config, clk, Stage(clk), handle_signals=False)
    assert ok.run_once() is True
    bad = service_for(svc_config, clk, Stage(clk, collect_fails=True), handle_signals=False)
    assert bad.run_once() is False
    assert not (svc_config.workspace / LOCK_FILE).exists()


def test_bad_poll_interval_is_a_config_error(svc_config: Config):
    with pytest.raises(AutomationError, match="poll_minutes"):
        Service(replace(svc_config, service=replace(svc_config.service, poll_minutes=0)))


def test_sigterm_stops_the_real_command_cleanly(config_file: Path):
    text = config_file.read_text(encoding="utf-8")
    config_file.write_text(text.replace('host = "imap.exmail.qq.com"', 'host = ""'), encoding="utf-8")
    workspace = config_file.parent / "var"
    env = {k: v for k, v in os.environ.items() if k != "AUTOMATION_CONFIG"}
    proc = subprocess.Popen([sys.executable, "-m", "automation", "--config", str(config_file), "run"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        log_path = workspace / "logs" / "automation.log"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            if log_path.exists() and "催办提醒" in log_path.read_text(encoding="utf-8"):
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()
        assert json.loads((workspace / LOCK_FILE).read_text("utf-8"))["pid"] == proc.pid
        # A second instance refuses to start, naming the first.
        second = subprocess.run([sys.executable, "-m", "automation", "--config", str(config_file), "run", "--once"],
                                capture_output=True, text=True, env=env, timeout=60)
        assert second.returncode == 1 and f"PID {proc.pid}" in second.stderr
        os.kill(proc.pid, signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert not (workspace / LOCK_FILE).exists()
    text = log_path.read_text(encoding="utf-8")
    assert "SIGTERM" in text and text.rstrip().endswith("督办服务已停止。")


def test_the_service_keeps_one_latest_report(config, ledger, now):
    """automation run refreshes a fixed file instead of adding a timestamped one per poll."""
    from automation.progress.report import latest_report_path
    from automation.service import Service

    ticks = [now]

    def tick() -> dt.datetime:
        ticks.append(ticks[-1] + dt.timedelta(minutes=10))
        return ticks[-1]

    service = Service(config, now_fn=tick, sleep_fn=lambda s: None, handle_signals=False)
    try:
        service.start(catch_up=False)
        service.refresh_report()
        service.refresh_report()
    finally:
        service.close()
    reports = list((config.workspace / "reports").glob("*.xlsx"))
    assert reports == [latest_report_path(config, config.batch.title)]


def test_run_also_collects_the_inbox_folder(config: Config, ledger: Ledger, now: dt.datetime, tmp_path: Path):
    """Without a mailbox the service still reads <workspace>/inbox/: the file is stored, the inbox
    emptied, the report refreshed; a folder file has no sender, so no receipt is owed."""
    from collect_kit import fill_workbook, issued, tasks_of

    unit = "市财政局"
    t1 = tasks_of(ledger, config, unit)[0]
    inbox = config.workspace / "inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    fill_workbook(issued(config, ledger, unit, now, tmp_path / "issued.xlsx"), inbox / "财政局.xlsx",
                  {t1: {"落实情况": "推进中", "工作进展及成效": "已起草"}})
    config = replace(config, imap=replace(config.imap, host=""))   # no mailbox configured
    reports: list[dt.datetime] = []
    service = Service(config, now_fn=lambda: now, sleep_fn=lambda s: None, handle_signals=False,
                      report_fn=lambda c, led, at: reports.append(at) or "report.xlsx",
                      remind_fn=lambda *a: [])
    try:
        service.start(catch_up=False)
        assert "poll" in service.jobs
        with CollectLock(config.workspace):              # someone runs `automation collect` by hand
            service.poll()                               # … the poll does not wait for it
        assert [p.name for p in inbox.iterdir()] == ["财政局.xlsx"] and reports == []
        assert service.run_all()                         # `run --once`: no mailbox, still the folder
        service.poll()                                   # nothing new: no second report
    finally:
        service.close()
    assert list(inbox.iterdir()) == []
    batch = ledger.require_batch(config.batch.title)
    answers = {a.task: a for a in ledger.current_answers(batch.id, ledger.unit_by_name(unit).id)}
    assert answers[t1].status == "推进中" and answers[t1].source_file == "财政局.xlsx"
    assert reports == [now]
    assert "inbox 文件夹：1 个文件" in log_text(config) and "本轮跳过" in log_text(config)
