"""回执 owed from the ledger: a receipt that could not go out in one run goes out in the next, once."""

from __future__ import annotations

import datetime as dt
import json
from email.header import decode_header, make_header
from pathlib import Path

import openpyxl
import pytest
from smtp_server import PASSWORD, USER, Handler, make_certificate, smtp_server

from automation import clock
from automation.cli import main
from automation.collect.pipeline import collect_file
from automation.config import Config
from automation.ledger import Ledger
from automation.mail import letters
from automation.mail.receipts import pending_receipts, receipt_key, send_owed_receipts, send_receipts
from automation.mail.transports import MailConnectionError, OutboxTransport, SmtpTransport
from automation.workbook.build import build_unit_workbook

NOW = dt.datetime(2021, 11, 2, 9, 30, tzinfo=clock.TZ)
UNIT = "市财政局"


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("tls"))


def returned_workbook(config: Config, ledger: Ledger, target: Path, progress: str = "已起草方案") -> Path:
    """The unit's workbook, filled: task 4 已完成 without progress (a problem), task 5 推进中."""
    batch = ledger.require_batch(config.batch.title)
    built = build_unit_workbook(config, ledger, batch, ledger.unit_by_name(UNIT).id, NOW - dt.timedelta(days=1))
    wb = openpyxl.load_workbook(built.path)
    sheet = wb["任务清单"]
    sheet.cell(row=6, column=7, value="已完成")
    sheet.cell(row=7, column=7, value="推进中")
    sheet.cell(row=7, column=8, value=progress)
    target.parent.mkdir(parents=True, exist_ok=True)
    wb.save(target)
    return target


def subject(msg) -> str:
    return str(make_header(decode_header(str(msg["Subject"]))))


def test_receipt_rebuilt_from_the_ledger_is_the_same_letter(config: Config, ledger: Ledger, tmp_path: Path) -> None:
    path = returned_workbook(config, ledger, tmp_path / "财政局回传.xlsx")
    fr = collect_file(config, ledger, path, NOW, sender="财政局 <czj@np.example.com>", message_id="<orig@np>")
    assert fr.outcome == "accepted" and fr.problems
    (owed,) = pending_receipts(config, ledger)
    assert (owed.submission_id, owed.unit_id, receipt_key(owed)) == (fr.submission_id, fr.unit_id, receipt_key(fr))
    assert (owed.sender, owed.message_id) == (fr.sender, fr.message_id)
    batch = ledger.require_batch(config.batch.title)
    unit = ledger.unit(fr.unit_id)
    later = NOW + dt.timedelta(days=3)        # sent days later, it still says when the file came in
    assert letters.receipt_letter(config, batch, unit, owed, later) == letters.receipt_letter(config, batch, unit, fr,
                                                                                              later)
    # owed only until it is sent
    with smtp_server("plain") as server:
        transport = SmtpTransport(host=server.host, port=server.port, security="none", sender=USER, per_minute=0,
                                  retries=0, timeout=5, sleep=lambda s: None)
        assert [r.action for r in send_receipts(config, ledger, [owed], NOW, transport)] == ["sent"]
        transport.close()
    assert pending_receipts(config, ledger) == []


def test_collect_sends_the_receipt_a_failed_run_could_not(cert, config: Config, config_file: Path, ledger: Ledger,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """First setup with a wrong 授权码: the file is collected, its receipt fails.  With the right one
    the next collect — nothing new in the inbox — sends it, exactly once."""
    with smtp_server("auth", cert) as server:
        text = config_file.read_text(encoding="utf-8")
        text = (text.replace('mode = "outbox"', 'mode = "smtp"')
                .replace('host = "smtp.exmail.qq.com"', f'host = "{server.host}"')
                .replace("port = 465", f"port = {server.port}").replace('\nsecurity = "ssl"', '\nsecurity = "starttls"', 1)
                .replace('ca_file = ""', f'ca_file = "{cert[0]}"').replace("per_minute = 20.0", "per_minute = 0")
                .replace("retries = 3", "retries = 0"))
        config_file.write_text(text, encoding="utf-8")
        returned_workbook(config, ledger, config_file.parent / "var" / "inbox" / "财政局.xlsx")
        args = ["--config", str(config_file), "collect", "--now", "2021-11-02T09:30", "--json"]

        monkeypatch.setenv("DUBAN_SMTP_PASSWORD", "wrong-code")
        assert main(args) == 0
        out = capsys.readouterr()
        (f,) = json.loads(out.out)["files"]
        assert f["outcome"] == "accepted" and f["unit"] == UNIT
        assert "回执未能发送" in out.err and "授权码" in out.err
        key = f"receipt:{f['sha256']}:accepted"
        assert ledger.execute("SELECT state FROM messages WHERE idem_key = ?", (key,)).fetchone()[0] == "failed"
        assert server.handler.received == []

        monkeypatch.setenv("DUBAN_SMTP_PASSWORD", PASSWORD)
        for _run in range(2):                 # the inbox is empty now; the receipt is still owed once
            assert main(args) == 0
            assert json.loads(capsys.readouterr().out)["files"] == []
        (got,) = server.handler.received
    assert got.rcpt_tos == ["czj@np.example.com"]
    assert "回执" in subject(got.message) and "财政局.xlsx" in got.message.get_body(("plain",)).get_content()
    row = ledger.execute("SELECT state, attempts FROM messages WHERE idem_key = ?", (key,)).fetchone()
    assert tuple(row) == ("sent", 2)


def test_refused_for_good_waits_for_send_receipts(config: Config, ledger: Ledger, tmp_path: Path,
                                                  config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every recipient refused it (550): not retried at each poll, but ``send --receipts`` tries again."""
    path = returned_workbook(config, ledger, tmp_path / "财政局回传.xlsx")
    fr = collect_file(config, ledger, path, NOW)
    with smtp_server("plain", handler=Handler(reject={"czj@np.example.com"})) as server:
        transport = SmtpTransport(host=server.host, port=server.port, security="none", sender=USER, per_minute=0,
                                  retries=0, timeout=5, sleep=lambda s: None)
        (failed,) = send_receipts(config, ledger, pending_receipts(config, ledger), NOW, transport)
        transport.close()
    assert failed.action == "failed" and "550" in failed.error
    assert pending_receipts(config, ledger) == []
    assert [r.submission_id for r in pending_receipts(config, ledger, retry_refused=True)] == [fr.submission_id]

    # `automation send --receipts` (outbox mode here) retries it; then nothing is owed
    cli = ["--config", str(config_file), "send", "--receipts", "--json"]
    assert main(cli) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["purpose"], row["unit"], row["action"], row["to"]) == ("receipt", UNIT, "sent", ["czj@np.example.com"])
    assert Path(row["path"]).is_file()
    assert main(cli) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["--config", str(config_file), "send", "--receipts", "--unit", UNIT]) == 2


class DiesAfterOne(OutboxTransport):
    """The outbox, but the server goes away after the first message (a fatal error, as SMTP raises it)."""

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        self.sent: list[str] = []
        self.closed = False

    def send(self, message, idem_key):
        if self.sent:
            raise MailConnectionError("无法连接邮件服务器 smtp.example.invalid:465（ConnectionResetError）")
        self.sent.append(idem_key)
        return super().send(message, idem_key)

    def close(self) -> None:
        self.closed = True


def test_send_owed_receipts_opens_a_transport_only_when_owed_and_keeps_what_went_out(
        config: Config, ledger: Ledger, tmp_path: Path) -> None:
    opened: list[DiesAfterOne] = []

    def open_transport() -> DiesAfterOne:
        opened.append(DiesAfterOne(tmp_path / "outbox"))
        return opened[-1]

    assert send_owed_receipts(config, ledger, NOW, open_transport) == [] and opened == []  # nothing owed
    first = collect_file(config, ledger, returned_workbook(config, ledger, tmp_path / "a.xlsx"), NOW)
    second = collect_file(config, ledger, returned_workbook(config, ledger, tmp_path / "b.xlsx", "方案已印发"), NOW)
    assert first.sha256 != second.sha256
    results: list = []
    with pytest.raises(MailConnectionError):
        send_owed_receipts(config, ledger, NOW, open_transport, results=results)
    (transport,) = opened
    assert transport.closed and transport.sent == [receipt_key(first)]
    assert [(r.idem_key, r.action) for r in results] == [(receipt_key(first), "sent")]
    states = dict(ledger.execute("SELECT idem_key, state FROM messages").fetchall())
    assert states == {receipt_key(first): "sent", receipt_key(second): "failed"}
    assert [r.sha256 for r in pending_receipts(config, ledger)] == [second.sha256]


@pytest.mark.parametrize("args", [["send", "--json"], ["send", "--receipts", "--json"]])
def test_send_json_reports_what_went_out_when_the_server_goes_away(
        config: Config, config_file: Path, ledger: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    """The run stops at the second message: --json still prints the first, then one Error: line."""
    from contextlib import contextmanager

    from automation.mail import transports

    if "--receipts" in args:
        for name, progress in (("a.xlsx", "已起草方案"), ("b.xlsx", "方案已印发")):
            collect_file(config, ledger, returned_workbook(config, ledger, tmp_path / name, progress), NOW,
                         sender="财政局 <czj@np.example.com>")
    dying = DiesAfterOne(tmp_path / "outbox")

    @contextmanager
    def fake_transport(*_a, **_k):
        yield dying

    monkeypatch.setattr(transports, "transport_from_config", fake_transport)
    capsys.readouterr()
    assert main(["--config", str(config_file), *args]) != 0
    captured = capsys.readouterr()
    printed = json.loads(captured.out)
    assert [r["action"] for r in printed] == ["sent"] and printed[0]["key"] == dying.sent[0]
    assert "Error:" in captured.err and "无法连接邮件服务器" in captured.err and "Traceback" not in captured.err
