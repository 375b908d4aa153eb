"""Mail out against real SMTP servers (aiosmtpd on 127.0.0.1): composition, transports, at-most-once."""

from __future__ import annotations

import contextlib
import datetime as dt
import email
import json
import re
from dataclasses import replace
from email import policy
from email.header import decode_header, make_header
from pathlib import Path

import pytest
from smtp_server import PASSWORD, USER, UTF8_PASSWORD, UTF8_USER, Handler, make_certificate, smtp_server

from automation import clock
from automation.config import Config
from automation.errors import ConfigError
from automation.ledger import Ledger
from automation.mail.attachment import Attachment
from automation.mail.compose import compose_message, message_bytes
from automation.mail.sending import send_once
from automation.mail.transports import (
    MailAuthError,
    MailConnectionError,
    OutboxTransport,
    SmtpTransport,
    transport_from_config,
)
from automation.workspace import Workspace

NOW = dt.datetime(2021, 11, 1, 9, 30, tzinfo=clock.TZ)
NAME = "2021年南平市政务公开重点工作_市行政服务中心管委会.xlsx"


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("tls"))


class FakeClock:
    """Injected sleep/monotonic: sleeping advances the clock, nothing waits."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 3))
        self.t += seconds

    def monotonic(self) -> float:
        return self.t


def smtp(server, security: str = "none", clock_: FakeClock | None = None, **kw) -> SmtpTransport:
    c = clock_ or FakeClock()
    args = dict(host=server.host, port=server.port, security=security, user="", password=None,
                sender=USER, per_minute=0, retries=3, backoff_seconds=5.0, timeout=5,
                ssl_context=server.client_context, sleep=c.sleep, monotonic=c.monotonic)
    args.update(kw)
    return SmtpTransport(**args)


def letter(config: Config, to=("fgw@np.example.com",), cc=(), attach: bool = True, subject: str = ""):
    html = ("<table><tr><th>序号</th><th>工作任务</th></tr>"
            "<tr><td>3</td><td>推进行政执法信息公开</td></tr></table>")
    return compose_message(
        config.mail, to=list(to), cc=list(cc), subject=subject or "【督办】请填报：2021年南平市政务公开重点工作",
        text="市发改委：\n\n请于 2021年12月15日 前填报。\n第二行", html=html, now=NOW,
        attachments=[Attachment(NAME, b"PK\x03\x04 not really a workbook")] if attach else (), to_name="市发改委",
    )


def header_text(value: str) -> str:
    return str(make_header(decode_header(value)))


# --------------------------------------------------------------------------- composition


def test_composed_message_has_real_plain_part_and_both_attachment_encodings(config: Config) -> None:
    raw = message_bytes(letter(config))
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    assert "\r\n" in raw.decode("ascii") and all(len(line) <= 998 for line in raw.split(b"\r\n"))
    assert "\r\nDate: Mon, 01 Nov 2021 09:30:00 +0800\r\n" in head + "\r\n"
    msg = email.message_from_bytes(raw, policy=policy.default)
    assert msg["From"].addresses[0].display_name == "南平市政务公开办"
    assert msg["From"].addresses[0].addr_spec == "gwgk@np.example.com"
    assert msg["Message-ID"].endswith("@np.example.com>") and msg["Reply-To"] is None
    with_reply = email.message_from_bytes(message_bytes(letter(
        replace(config, mail=replace(config.mail, reply_to="huizhi@np.example.com")))), policy=policy.default)
    assert with_reply["Reply-To"] == "huizhi@np.example.com"
    plain = msg.get_body(("plain",)).get_content()
    assert "请于 2021年12月15日 前填报。\n第二行" in plain and "<br" not in plain and "<td" not in plain
    assert "<td>推进行政执法信息公开</td>" in msg.get_body(("html",)).get_content()
    (att,) = list(msg.iter_attachments())
    assert att.get_filename() == NAME
    raw_text = raw.decode("ascii")
    assert "filename*=utf-8''2021%E5%B9%B4" in raw_text                     # RFC 2231
    name_param = re.search(r'name="(=\?utf-8\?b\?.*?)"', raw_text, re.S).group(1)  # RFC 2047 in Content-Type
    assert header_text(name_param) == NAME
    assert att.get_content() == b"PK\x03\x04 not really a workbook"


def test_outbox_transport_is_idempotent_by_key(config: Config, ledger: Ledger, tmp_path: Path) -> None:
    transport = OutboxTransport(tmp_path / "outbox")
    first = send_once(ledger, transport, "test:1", "test", None, None, letter(config), NOW, unit="市发改委")
    again = send_once(ledger, transport, "test:1", "test", None, None, letter(config), NOW, unit="市发改委")
    assert (first.action, again.action) == ("sent", "skipped")
    files = list((tmp_path / "outbox").iterdir())
    assert [f.name for f in files] == ["test_1.eml"]
    parsed = email.message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert parsed["Message-ID"] == first.message_id == again.message_id
    row = ledger.execute("SELECT state, attempts, path FROM messages WHERE idem_key = 'test:1'").fetchone()
    assert tuple(row) == ("sent", 1, str(files[0]))


def test_transport_from_config(config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outbox = transport_from_config(config, tmp_path)
    assert isinstance(outbox, OutboxTransport) and outbox.folder == tmp_path / "outbox"
    assert transport_from_config(config).folder == config.workspace / "outbox"
    assert transport_from_config(config, Workspace(tmp_path / "ws")).folder == tmp_path / "ws" / "outbox"
    smtp_config = replace(config, mail=replace(config.mail, mode="smtp"))
    monkeypatch.delenv("DUBAN_SMTP_PASSWORD", raising=False)
    with pytest.raises(ConfigError, match="DUBAN_SMTP_PASSWORD"):
        transport_from_config(smtp_config, tmp_path)
    monkeypatch.setenv("DUBAN_SMTP_PASSWORD", "x")
    t = transport_from_config(smtp_config, tmp_path)
    assert isinstance(t, SmtpTransport) and (t.host, t.port, t.security) == ("smtp.exmail.qq.com", 465, "ssl")


# --------------------------------------------------------------------------- real SMTP


def check_received(received, to: list[str]) -> email.message.EmailMessage:
    assert sorted(received.rcpt_tos) == sorted(to)
    msg = received.message
    assert header_text(msg["Subject"]) == "【督办】请填报：2021年南平市政务公开重点工作"
    assert msg["From"].addresses[0].display_name == "南平市政务公开办"
    assert msg["To"].addresses[0].display_name == "市发改委"
    (att,) = list(msg.iter_attachments())
    assert att.get_filename() == NAME
    head = received.data.decode("ascii")
    assert "filename*=utf-8''" in head and 'name="=?utf-8?b?' in head
    plain = msg.get_body(("plain",)).get_content()
    assert "第二行" in plain and "<br" not in plain
    assert "<th>工作任务</th>" in msg.get_body(("html",)).get_content()
    return msg


@pytest.mark.parametrize("kind,security", [("plain", "none"), ("ssl", "ssl"), ("starttls", "starttls")])
def test_sends_through_real_smtp(kind: str, security: str, cert, config: Config, ledger: Ledger) -> None:
    with smtp_server(kind, cert) as server:
        transport = smtp(server, security)
        result = send_once(ledger, transport, f"t:{kind}", "test", None, None,
                           letter(config, cc=["fgw-cc@np.example.com"]), NOW)
        transport.close()
        assert result.action == "sent" and result.refused == {}
        (got,) = server.handler.received
    msg = check_received(got, ["fgw@np.example.com", "fgw-cc@np.example.com"])
    assert msg["Message-ID"] == result.message_id
    assert got.mail_from == USER


def test_auth_over_starttls(cert, config: Config, ledger: Ledger) -> None:
    with smtp_server("auth", cert) as server:
        wrong = smtp(server, "starttls", user=USER, password="wrong")
        with pytest.raises(MailAuthError, match="授权码"):
            send_once(ledger, wrong, "t:auth", "test", None, None, letter(config), NOW)
        assert ledger.execute("SELECT state FROM messages WHERE idem_key = 't:auth'").fetchone()[0] == "failed"
        right = smtp(server, "starttls", user=USER, password=PASSWORD)
        result = send_once(ledger, right, "t:auth", "test", None, None, letter(config), NOW)
        right.close()
        assert (result.action, result.attempts) == ("sent", 2)
        utf8 = smtp(server, "starttls", user=UTF8_USER, password=UTF8_PASSWORD)
        assert send_once(ledger, utf8, "t:auth8", "test", None, None, letter(config), NOW).action == "sent"
        utf8.close()
        assert len(server.handler.received) == 2


def test_451_then_accepts_with_backoff(config: Config, ledger: Ledger) -> None:
    handler = Handler(fail_data=["451 4.3.0 Temporary local problem", "421 4.4.2 closing, try later"])
    with smtp_server("plain", handler=handler) as server:
        c = FakeClock()
        transport = smtp(server, clock_=c)
        result = send_once(ledger, transport, "t:451", "test", None, None, letter(config), NOW)
        transport.close()
    assert result.action == "sent" and handler.data_commands == 3
    assert c.sleeps == [5.0, 10.0]                       # exponential backoff, injected sleep
    assert len(handler.received) == 1
    detail = ledger.execute("SELECT detail_json FROM messages WHERE idem_key = 't:451'").fetchone()[0]
    assert '"smtp_attempts": 3' in detail


def test_transient_failure_exhausted_is_failed_and_retried_next_run(config: Config, ledger: Ledger) -> None:
    handler = Handler(fail_data=["451 4.3.0 busy"] * 3)
    with smtp_server("plain", handler=handler) as server:
        transport = smtp(server, retries=2)
        first = send_once(ledger, transport, "t:busy", "test", None, None, letter(config), NOW)
        assert first.action == "failed" and "451" in first.error
        second = send_once(ledger, transport, "t:busy", "test", None, None, letter(config), NOW)
        transport.close()
    assert second.action == "sent" and second.message_id == first.message_id
    assert len(handler.received) == 1


def test_550_for_one_recipient_the_others_still_get_it(config: Config, ledger: Ledger) -> None:
    handler = Handler(reject={"nobody@np.example.com"})
    with smtp_server("plain", handler=handler) as server:
        transport = smtp(server)
        r1 = send_once(ledger, transport, "t:550a", "test", None, None,
                       letter(config, to=["fgw@np.example.com", "nobody@np.example.com"]), NOW)
        r2 = send_once(ledger, transport, "t:550b", "test", None, None,
                       letter(config, to=["nobody@np.example.com"]), NOW)
        r3 = send_once(ledger, transport, "t:550c", "test", None, None, letter(config), NOW)
        transport.close()
    assert r1.action == "sent" and list(r1.refused) == ["nobody@np.example.com"] and "550" in r1.refused[
        "nobody@np.example.com"]
    assert r2.action == "failed" and "550" in r2.error          # nobody accepted: permanent, recorded
    assert r3.action == "sent"
    assert [g.rcpt_tos for g in handler.received] == [["fgw@np.example.com"], ["fgw@np.example.com"]]
    row = ledger.execute("SELECT state, detail_json FROM messages WHERE idem_key = 't:550a'").fetchone()
    assert row[0] == "sent" and "nobody@np.example.com" in row[1]


def test_partial_delivery_then_server_gone_is_never_sent_twice(config: Config, ledger: Ledger) -> None:
    """a@ accepts, b@ is greylisted (451); while we wait to retry b@ the server goes away and
    reconnecting fails.  a@ has the message: it must be recorded as sent (b@ refused) and a
    later run must not send it again."""
    a, b = "fgw@np.example.com", "fgw-cc@np.example.com"
    handler = Handler(defer={b: 1})
    down = contextlib.ExitStack()
    server = down.enter_context(smtp_server("plain", handler=handler))
    c = FakeClock()

    def sleep(seconds: float) -> None:
        c.sleep(seconds)
        down.close()                                    # the server is gone before the retry

    transport = smtp(server, sleep=sleep, retries=2)
    first = send_once(ledger, transport, "t:partial", "test", None, None, letter(config, to=[a, b]), NOW)
    transport.close()
    assert [g.rcpt_tos for g in handler.received] == [[a]]
    assert first.action == "sent" and list(first.refused) == [b]
    assert "ConnectionRefusedError" in first.refused[b] and "未送达" in first.refused[b]
    assert b in first.error
    row = ledger.execute("SELECT state, detail_json FROM messages WHERE idem_key = 't:partial'").fetchone()
    assert row["state"] == "sent"
    assert json.loads(row["detail_json"])["accepted"] == [a]

    with smtp_server("plain", handler=handler) as back:   # next run, the server is back
        transport = smtp(back)
        again = send_once(ledger, transport, "t:partial", "test", None, None, letter(config, to=[a, b]), NOW)
        transport.close()
    assert again.action == "skipped"
    assert [g.rcpt_tos for g in handler.received] == [[a]]  # a@ got it exactly once


def test_throttle_per_minute(config: Config, ledger: Ledger) -> None:
    with smtp_server("plain") as server:
        c = FakeClock()
        transport = smtp(server, clock_=c, per_minute=4)
        for i in range(3):
            assert send_once(ledger, transport, f"t:rate{i}", "test", None, None, letter(config), NOW).action == "sent"
        transport.close()
        assert len(server.handler.received) == 3
    assert c.sleeps == [15.0, 15.0]


def test_crash_between_sending_and_recording_never_duplicates(config: Config, ledger: Ledger,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    with smtp_server("plain") as server:
        transport = smtp(server)

        def crash(*args, **kwargs):
            raise SystemExit("killed after the server accepted the message")

        monkeypatch.setattr(ledger, "record_message_sent", crash)
        with pytest.raises(SystemExit):
            send_once(ledger, transport, "t:crash", "test", None, None, letter(config), NOW)
        monkeypatch.undo()
        assert ledger.execute("SELECT state FROM messages WHERE idem_key = 't:crash'").fetchone()[0] == "pending"
        assert len(server.handler.received) == 1

        # next run: the pending row becomes uncertain and is not sent again
        again = send_once(ledger, transport, "t:crash", "test", None, None, letter(config), NOW)
        assert again.action == "held" and again.state == "uncertain"
        assert send_once(ledger, transport, "t:crash", "test", None, None, letter(config), NOW).action == "held"
        assert len(server.handler.received) == 1

        # only on explicit request, and with the same Message-ID
        resent = send_once(ledger, transport, "t:crash", "test", None, None, letter(config), NOW,
                           resend_uncertain=True)
        transport.close()
        assert resent.action == "resent"
        ids = [g.message["Message-ID"] for g in server.handler.received]
    assert len(ids) == 2 and ids[0] == ids[1] == resent.message_id
    assert ledger.execute("SELECT state FROM messages WHERE idem_key = 't:crash'").fetchone()[0] == "sent"


def test_smtp_from_config_with_internal_ca_file(cert, config_file: Path, ledger: Ledger,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A 政务邮箱 with a certificate from the office's own CA: [mail] ca_file, password from the env."""
    with smtp_server("ssl", cert) as server:
        text = config_file.read_text(encoding="utf-8")
        text = (text.replace('host = "smtp.exmail.qq.com"', f'host = "{server.host}"')
                .replace("port = 465", f"port = {server.port}").replace('mode = "outbox"', 'mode = "smtp"')
                .replace('ca_file = ""', f'ca_file = "{cert[0]}"'))
        config_file.write_text(text, encoding="utf-8")
        from automation.config import load_config

        cfg = load_config(config_file)
        monkeypatch.setenv("DUBAN_SMTP_PASSWORD", "unused-no-auth-on-this-server")
        transport = transport_from_config(replace(cfg, mail=replace(cfg.mail, user="")), config_file.parent)
        assert send_once(ledger, transport, "t:ca", "test", None, None, letter(cfg), NOW).action == "sent"
        transport.close()
        assert len(server.handler.received) == 1
        no_ca = transport_from_config(replace(cfg, mail=replace(cfg.mail, user="", ca_file="")), config_file.parent)
        with pytest.raises(MailConnectionError, match="证书无法验证"):
            send_once(ledger, no_ca, "t:ca2", "test", None, None, letter(cfg), NOW)
