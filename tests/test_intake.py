"""IMAP intake against a real Dovecot: decoding, pick-up once, move, Message-ID idempotency, drops."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import imaplib
import os
import socket
import uuid
from dataclasses import replace
from types import SimpleNamespace
from urllib.parse import quote

import pytest
from dovecot_server import DOVECOT, Dovecot, start_dovecot

from automation import clock
from automation.config import Config, ImapConfig
from automation.errors import AutomationError, ConfigError
from automation.mail.imap import imap_utf7_decode, imap_utf7_encode
from automation.mail.intake import collect_imap
from automation.mail.parsing import decode_bytes, decode_header_value, parse_message

PROCESSED = "督办已处理"
NOW = dt.datetime(2021, 11, 1, 9, 0, tzinfo=clock.TZ)
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


# --------------------------------------------------------------------------- building raw messages


def b_word(text: str, charset: str = "GBK") -> str:
    return f"=?{charset}?B?{base64.b64encode(text.encode('gb18030' if charset.upper() != 'UTF-8' else 'utf-8')).decode()}?="


def rfc2231(name: str) -> str:
    return "filename*=UTF-8''" + quote(name.encode("utf-8"), safe="")


def part(headers: str, payload: bytes) -> bytes:
    body = base64.encodebytes(payload)
    return headers.encode("ascii") + b"\r\nContent-Transfer-Encoding: base64\r\n\r\n" + body


def message(sender: str, subject: str, attachments: list[tuple[str, bytes]], *, message_id: str | None = None,
            body: str = "附件是我单位的填报情况，请查收。——市发改委 陈建华", raw_subject: bytes | None = None) -> bytes:
    """A multipart message as Chinese clients send it: GB18030 body, GBK/RFC 2231 names.

    ``attachments``: (Content-Type/Disposition header lines, data).
    """
    mid = f"<{uuid.uuid4().hex}@np.example.com>" if message_id is None else message_id
    lines = [f"From: {b_word('陈建华')} <{sender}>", "To: gwgk@np.example.com",
             "Date: Mon, 01 Nov 2021 08:50:00 +0800", *([f"Message-ID: {mid}"] if mid else []),
             "MIME-Version: 1.0", 'Content-Type: multipart/mixed; boundary="==BOUNDARY=="']
    head = "".join(line + "\r\n" for line in lines).encode("ascii")
    head += b"Subject: " + (raw_subject if raw_subject is not None else b_word(subject, "GB18030").encode()) + b"\r\n"
    parts = [part('Content-Type: text/plain; charset="GB18030"', body.encode("gb18030"))]
    parts += [part(h, data) for h, data in attachments]
    out = head + b"\r\n"
    for p in parts:
        out += b"--==BOUNDARY==\r\n" + p
    return out + b"--==BOUNDARY==--\r\n"


def gbk_attachment(name: str) -> str:
    """RFC 2047 inside quotes (Foxmail, 163 web mail) – technically invalid, ubiquitous."""
    w = b_word(name, "GBK")
    return f'Content-Type: {XLSX_TYPE}; name="{w}"\r\nContent-Disposition: attachment; filename="{w}"'


def utf8_2231_attachment(name: str) -> str:
    return f"Content-Type: application/octet-stream\r\nContent-Disposition: attachment; {rfc2231(name)}"


# --------------------------------------------------------------------------- decoding (no server)


def test_attachment_names_in_every_encoding_and_never_a_path():
    long_name = "市发改委-2021年政务公开重点工作-填报.xlsx"
    encoded = quote(long_name.encode("utf-8"), safe="")
    split = encoded.index("%", len(encoded) // 2)  # clients cut between %XX escapes
    continuation = (f"Content-Type: application/octet-stream\r\nContent-Disposition: attachment;\r\n"
                    f" filename*0*=UTF-8''{encoded[:split]};\r\n filename*1*={encoded[split:]}")
    # A GBK name cut in the middle of a character across two encoded words (seen from old clients).
    gbk = "延平区政府反馈.xls".encode("gb18030")
    cut = f"=?GB2312?B?{base64.b64encode(gbk[:5]).decode()}?= =?GB2312?B?{base64.b64encode(gbk[5:]).decode()}?="
    raw = message("fgw@np.example.com", "回复：关于报送政务公开工作落实情况的通知", [
        (gbk_attachment("市发改委填报表（定稿）.xlsx"), b"one"),
        (utf8_2231_attachment("建阳区政府.xlsm"), b"two"),
        (continuation, b"three"),
        (f'Content-Type: application/vnd.ms-excel; name="{cut}"', b"four"),
        (utf8_2231_attachment("..\\..\\Windows\\system32\\报表.xlsx"), b"five"),
        (utf8_2231_attachment("市财政局.et"), b"six"),
        ('Content-Type: application/pdf; name="scan.pdf"', b"seven"),
        (f"Content-Type: {XLSX_TYPE}", b"eight"),
        (f'Content-Type: {XLSX_TYPE}; name="{b_word("邵武市反馈", "GBK")}"', b"nine"),
    ])
    parsed = parse_message(raw)
    assert parsed.sender == "fgw@np.example.com" and parsed.sender_name == "陈建华"
    assert parsed.subject == "回复：关于报送政务公开工作落实情况的通知"
    assert "我单位的填报情况" in parsed.body
    names = [(a.filename, a.kind, a.data) for a in parsed.attachments]
    assert names == [
        ("市发改委填报表（定稿）.xlsx", "workbook", b"one"),
        ("建阳区政府.xlsm", "workbook", b"two"),
        (long_name, "workbook", b"three"),
        ("延平区政府反馈.xls", "workbook", b"four"),
        ("报表.xlsx", "workbook", b"five"),
        ("市财政局.et", "unsupported", b"six"),
        ("scan.pdf", "other", b"seven"),
        ("附件8.xlsx", "workbook", b"eight"),
        ("邵武市反馈.xlsx", "workbook", b"nine"),
    ]
    assert [a.filename for a in parsed.workbooks][-1] == "邵武市反馈.xlsx"
    assert len(parsed.workbooks) == 8  # the .et goes to the collector too (refused there with a reason)


def test_raw_8bit_gbk_headers_and_charset_fallbacks():
    raw = message("jyj@np.example.com", "", [(gbk_attachment("a.xlsx"), b"x")],
                  raw_subject="市教育局报送".encode("gb18030"))
    parsed = parse_message(raw)
    assert parsed.subject == "市教育局报送"
    assert decode_bytes("中文".encode("gbk"), "us-ascii") == "中文"
    assert decode_bytes("𠀀中文".encode("gb18030"), "gb2312") == "𠀀中文"
    assert decode_header_value("=?utf-8?Q?=E5=9B=9E=E5=A4=8D?=: 报表") == "回复: 报表"
    assert decode_header_value("=?x-unknown-charset?B?" + base64.b64encode("乱码".encode("gbk")).decode() + "?=") == "乱码"


def test_display_names_with_commas_broken_words_and_malformed_senders():
    raw = message("bgs@np.example.com", "x", [(gbk_attachment("a.xlsx"), b"x")])
    named = raw.replace(b_word("陈建华").encode(), b_word("市政府办公室, 综合科", "UTF-8").encode())
    assert named != raw and parse_message(named).sender_name == "市政府办公室, 综合科"  # one address, not two
    broken = named.replace(b"Subject: " + b_word("x", "GB18030").encode(),
                           b"Subject: =?GBK?B?u9i4tKO6udjTg==?= " + b_word("报送的通知").encode())
    assert broken != named and parse_message(broken).subject == "=?GBK?B?u9i4tKO6udjTg==?=报送的通知"  # the good word still decoded
    # A From the header parser gives up on still yields its address.
    odd = raw.replace(f"From: {b_word('陈建华')} <".encode(), b"From: =?GBK?]?s8K9qLuq?= <")
    assert odd != raw and parse_message(odd).sender == "bgs@np.example.com"
    assert decode_header_value("=?utf-8?b?5Zue5aSN?= C:\\users\\x") == "回复 C:\\users\\x"


def test_missing_message_id_gets_a_stable_key():
    raw = message("fgw@np.example.com", "x", [(gbk_attachment("a.xlsx"), b"x")], message_id="")
    assert parse_message(raw).message_id == parse_message(raw).message_id
    assert parse_message(raw).message_id.startswith("<no-message-id-")


def test_modified_utf7_folder_names():
    assert imap_utf7_encode("督办已处理") == "&d2NSnl3yWQR0Bg-"
    assert imap_utf7_encode("A&B 收件箱") == "A&-B &ZTZO9nux-"
    for name in ("督办已处理", "A&B 收件箱", "INBOX", "已处理/2021"):
        assert imap_utf7_decode(imap_utf7_encode(name)) == name


# --------------------------------------------------------------------------- against Dovecot


@pytest.fixture(scope="module")
def dovecot() -> Dovecot:
    if DOVECOT is None:
        if os.environ.get("CI"):
            pytest.fail("dovecot is not installed: .ci/run must install dovecot-imapd")
        pytest.skip("dovecot-imapd is not installed")
    server = start_dovecot()
    yield server
    server.stop()


@pytest.fixture
def mailbox(dovecot: Dovecot, config: Config, monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """A fresh mailbox on the shared server and a config pointing at it."""
    user = f"office-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("DUBAN_IMAP_TEST_PASSWORD", dovecot.password)
    imap = ImapConfig(host="127.0.0.1", port=dovecot.port, security="none", user=user,
                      password_env="DUBAN_IMAP_TEST_PASSWORD", folder="INBOX", processed_folder=PROCESSED,
                      timeout=10.0)
    cfg = replace(config, imap=imap)
    admin = imaplib.IMAP4("127.0.0.1", dovecot.port)
    admin.login(user, dovecot.password)

    def append(raw: bytes, folder: str = "INBOX") -> None:
        typ, data = admin.append(folder, None, None, raw)
        assert typ == "OK", data

    def uids(folder: str) -> list[bytes]:
        typ, _ = admin.select('"' + imap_utf7_encode(folder) + '"', readonly=True)
        if typ != "OK":
            return []
        return admin.uid("SEARCH", None, "ALL")[1][0].split()

    def unseen(folder: str) -> int:
        admin.select('"' + imap_utf7_encode(folder) + '"', readonly=True)
        return len(admin.uid("SEARCH", None, "UNSEEN")[1][0].split())

    yield SimpleNamespace(config=cfg, user=user, append=append, uids=uids, unseen=unseen, server=dovecot)
    admin.logout()


class StubCollector:
    """Stands in for collect.collect_bytes: content-hash idempotent, records every call."""

    def __init__(self) -> None:
        self.calls: list[dict] = []
        self.seen: set[str] = set()

    def __call__(self, config, ledger, name, data, now, *, source="imap", sender=None, message_id=None,
                 received_at=None):
        sha = hashlib.sha256(data).hexdigest()
        outcome = "duplicate" if sha in self.seen else "accepted"
        self.seen.add(sha)
        self.calls.append({"name": name, "data": data, "sender": sender, "message_id": message_id,
                           "source": source, "received_at": received_at, "outcome": outcome})
        return SimpleNamespace(file_name=name, sha256=sha, outcome=outcome, reason=None, unit=None, unit_id=None,
                               rows_accepted=0, problems=[], submission_id=None)

    def accepted(self) -> list[bytes]:
        return sorted(c["data"] for c in self.calls if c["outcome"] == "accepted")


def test_messages_are_picked_up_once_moved_and_not_again(mailbox, ledger, now):
    mailbox.append(message("fgw@np.example.com", "市发改委报送", [(gbk_attachment("市发改委.xlsx"), b"fgw-1")],
                           message_id="<m1@np.example.com>"))
    mailbox.append(message("ypq@np.example.com", "延平区报送", [(utf8_2231_attachment("延平区政府.xls"), b"ypq-1"),
                                                            ('Content-Type: application/pdf; name="a.pdf"', b"pdf")]))
    # Ordinary office mail: no workbook. It must stay where it is, unread.
    mailbox.append(message("someone@example.org", "会议通知", [('Content-Type: application/pdf; name="n.pdf"', b"p")]))
    collector = StubCollector()

    result = collect_imap(mailbox.config, ledger, now, collector=collector)

    assert result.error is None
    assert [(c["name"], c["sender"], c["source"]) for c in collector.calls] == [
        ("市发改委.xlsx", "fgw@np.example.com", "imap"), ("延平区政府.xls", "ypq@np.example.com", "imap")]
    assert collector.calls[0]["message_id"] == "<m1@np.example.com>"
    assert collector.calls[0]["received_at"].utcoffset().total_seconds() == 8 * 3600
    assert result.accepted == 2 and result.moved == 2
    assert len(mailbox.uids(PROCESSED)) == 2
    assert len(mailbox.uids("INBOX")) == 1 and mailbox.unseen("INBOX") == 1
    states = dict(ledger.execute("SELECT message_id, state FROM imap_messages").fetchall())
    assert states["<m1@np.example.com>"] == "moved"
    assert sorted(states.values()) == ["ignored", "moved", "moved"]
    assert "市发改委报送" in [r[0] for r in ledger.execute("SELECT subject FROM imap_messages")]
    assert "处理 2 封邮件" in result.summary()
    doc = result.to_json()
    assert (doc["moved"], doc["ignored"], doc["accepted"], len(doc["messages"])) == (2, 1, 2, 2)
    assert doc["messages"][0]["files"][0]["file_name"] == "市发改委.xlsx"

    again = collect_imap(mailbox.config, ledger, now, collector=collector)
    assert len(collector.calls) == 2
    assert again.files == [] and again.skipped == 1 and again.messages == []


def test_the_id_command_goes_before_select_and_the_processed_folder_is_created(mailbox, ledger, now):
    commands: list[str] = []

    class Recording(imaplib.IMAP4):
        def _command(self, name, *args):
            commands.append(name if name != "UID" else f"UID {args[0]}")
            return super()._command(name, *args)

    mailbox.append(message("fgw@np.example.com", "x", [(gbk_attachment("a.xlsx"), b"a")]))
    collect_imap(mailbox.config, ledger, now, collector=StubCollector(),
                 client_factory=lambda cfg: Recording(cfg.host, cfg.port))
    assert commands.index("ID") < commands.index("SELECT") and "LOGIN" in commands[:commands.index("ID")]
    assert "CREATE" in commands and "UID MOVE" in commands
    # The second run finds the folder (no second CREATE).
    commands.clear()
    mailbox.append(message("fgw@np.example.com", "y", [(gbk_attachment("b.xlsx"), b"b")]))
    collect_imap(mailbox.config, ledger, now, collector=StubCollector(),
                 client_factory=lambda cfg: Recording(cfg.host, cfg.port))
    assert "CREATE" not in commands and "UID MOVE" in commands


def test_a_collector_failure_leaves_the_message_for_the_next_run(mailbox, ledger, now):
    mailbox.append(message("fgw@np.example.com", "x", [(gbk_attachment("a.xlsx"), b"a")]))
    mailbox.append(message("ypq@np.example.com", "y", [(gbk_attachment("b.xlsx"), b"b")]))
    stub = StubCollector()

    def disk_full_once(*args, **kwargs):
        if not stub.calls:
            stub.calls.append({"data": b"", "outcome": "failed"})
            raise OSError(28, "No space left on device")
        return stub(*args, **kwargs)

    first = collect_imap(mailbox.config, ledger, now, collector=disk_full_once)
    assert [m.state for m in first.messages] == ["failed", "collected"]
    assert "No space left" in first.messages[0].note and "下次收取时重试" in first.summary()
    assert len(mailbox.uids("INBOX")) == 1
    second = collect_imap(mailbox.config, ledger, now, collector=disk_full_once)
    assert [m.state for m in second.messages] == ["collected"] and mailbox.uids("INBOX") == []
    assert stub.accepted() == [b"a", b"b"]


def test_the_same_message_twice_is_collected_once(mailbox, ledger, now):
    raw = message("fgw@np.example.com", "重复", [(gbk_attachment("a.xlsx"), b"same")], message_id="<dup@x>")
    mailbox.append(raw)
    mailbox.append(raw)
    collector = StubCollector()
    result = collect_imap(mailbox.config, ledger, now, collector=collector)
    assert len(collector.calls) == 1
    assert [m.state for m in result.messages] == ["collected", "already"]
    assert result.moved == 2 and mailbox.uids("INBOX") == []
    # Delivered once more later (a unit's mail server retrying): still not collected again.
    mailbox.append(raw)
    collect_imap(mailbox.config, ledger, now, collector=collector)
    assert len(collector.calls) == 1 and mailbox.uids("INBOX") == []


def test_wps_et_attachments_are_reported_unsupported(mailbox, ledger, now):
    mailbox.append(message("czj@np.example.com", "财政局", [(utf8_2231_attachment("市财政局.et"), b"et")]))
    collector = StubCollector()
    result = collect_imap(mailbox.config, ledger, now, collector=collector)
    assert result.messages[0].unsupported == ["市财政局.et"]
    assert "不支持的格式" in result.summary() and "市财政局.et" in result.summary()
    assert [c["name"] for c in collector.calls] == ["市财政局.et"]  # the collector refuses it, with a receipt


def test_copy_and_expunge_when_the_server_has_no_move(mailbox, ledger, now):
    class NoMove(imaplib.IMAP4):
        def capability(self):
            typ, data = super().capability()
            return typ, [d.replace(b" MOVE", b"") for d in data]

    mailbox.append(message("fgw@np.example.com", "x", [(gbk_attachment("a.xlsx"), b"a")]))
    result = collect_imap(mailbox.config, ledger, now, collector=StubCollector(),
                          client_factory=lambda cfg: NoMove(cfg.host, cfg.port))
    assert result.moved == 1
    assert mailbox.uids("INBOX") == [] and len(mailbox.uids(PROCESSED)) == 1


@pytest.mark.parametrize("drop_after", ["collect", "move"])
def test_a_dropped_connection_loses_nothing_and_collects_exactly_once(mailbox, ledger, now, drop_after):
    for i in range(3):
        mailbox.append(message(f"u{i}@np.example.com", f"m{i}",
                               [(gbk_attachment(f"单位{i}-甲.xlsx"), f"{i}a".encode()),
                                (gbk_attachment(f"单位{i}-乙.xlsx"), f"{i}b".encode())]))
    clients: list[imaplib.IMAP4] = []

    def factory(cfg: ImapConfig) -> imaplib.IMAP4:
        client = Dropping(cfg.host, cfg.port)
        clients.append(client)
        return client

    class Dropping(imaplib.IMAP4):
        moves = 0

        def uid(self, command, *args):
            out = super().uid(command, *args)
            if command == "MOVE":
                Dropping.moves += 1
                if drop_after == "move" and Dropping.moves == 1:
                    self.sock.shutdown(socket.SHUT_RDWR)
            return out

    stub = StubCollector()

    def collector(*args, **kwargs):
        out = stub(*args, **kwargs)
        # The second message's first file is safely stored – then the line goes dead.
        if drop_after == "collect" and len(stub.calls) == 3:
            clients[-1].sock.shutdown(socket.SHUT_RDWR)
        return out

    first = collect_imap(mailbox.config, ledger, now, collector=collector, client_factory=factory)
    assert first.error and "连接中断" in first.error and "下次收取时继续" in first.summary()
    assert len(mailbox.uids(PROCESSED)) == 1
    assert len(mailbox.uids("INBOX")) == 2

    second = collect_imap(mailbox.config, ledger, now, collector=stub)
    assert second.error is None
    assert len(mailbox.uids(PROCESSED)) == 3 and mailbox.uids("INBOX") == []
    # Every file is in exactly once; what was interrupted was redone idempotently, not duplicated.
    assert stub.accepted() == sorted(f"{i}{s}".encode() for i in range(3) for s in "ab")
    states = [r[0] for r in ledger.execute("SELECT state FROM imap_messages")]
    assert states == ["moved"] * 3


# --------------------------------------------------------------------------- with the real collector


def filled_workbook(config, ledger, unit_name: str, progress: str) -> bytes:
    """The unit's signed workbook, filled in as a unit would (task 5: 推进中 + progress)."""
    from io import BytesIO

    import openpyxl

    from automation.workbook.build import build_unit_workbook

    batch = ledger.require_batch(config.batch.title)
    unit = ledger.unit_by_name(unit_name)
    built = build_unit_workbook(config, ledger, batch, unit.id, NOW)
    wb = openpyxl.load_workbook(built.path)
    sheet = wb["任务清单"]
    sheet.cell(row=7, column=7, value="推进中")
    sheet.cell(row=7, column=8, value=progress)
    out = BytesIO()
    wb.save(out)
    wb.close()
    return out.getvalue()


def test_the_real_collector_checks_the_sender(mailbox, ledger, now):
    cfg = mailbox.config
    mailbox.append(message("czj@np.example.com", "市财政局报送", [
        (gbk_attachment("南平市财政局填报.xlsx"), filled_workbook(cfg, ledger, "市财政局", "已起草方案"))],
        message_id="<czj-1@np.example.com>"))
    mailbox.append(message("stranger@evil.example.org", "报表", [
        (utf8_2231_attachment("市财政局.xlsx"), filled_workbook(cfg, ledger, "市财政局", "冒名填报"))]))
    mailbox.append(message("fgw@np.example.com", "代报", [
        (utf8_2231_attachment("财政局的表.xlsx"), filled_workbook(cfg, ledger, "市财政局", "发改委代为转交"))]))

    result = collect_imap(cfg, ledger, now)  # the real automation.collect.pipeline.collect_bytes

    assert result.error is None and result.moved == 3
    own, stranger, other = result.files
    assert (own.outcome, own.unit, own.file_name) == ("accepted", "市财政局", "南平市财政局填报.xlsx")
    assert (own.source, own.sender, own.message_id) == ("imap", "czj@np.example.com", "<czj-1@np.example.com>")
    assert stranger.outcome == "quarantined" and "stranger@evil.example.org" in stranger.reason
    assert stranger.unit_id is None  # no receipt goes to an unknown sender
    assert other.outcome == "accepted" and other.unit == "市财政局"
    assert any("市发改委" in p.message and p.severity == "warning" for p in other.problems)
    rows = ledger.execute("SELECT file_name, outcome, source, message_id, sender FROM submissions ORDER BY id")
    assert [(r["outcome"], r["source"], r["sender"]) for r in rows] == [
        ("accepted", "imap", "czj@np.example.com"), ("quarantined", "imap", "stranger@evil.example.org"),
        ("accepted", "imap", "fgw@np.example.com")]
    assert collect_imap(cfg, ledger, now).files == []


def test_run_once_end_to_end_collects_answers_and_refreshes_the_report(mailbox, ledger):
    """``automation run --once`` as Task Scheduler runs it: real intake, collector, receipts, report."""
    from automation.service import Service

    cfg = replace(mailbox.config, remind=replace(mailbox.config.remind, weekly_weekday=0, before_deadline_days=()))
    mailbox.append(message("czj@np.example.com", "市财政局报送", [
        (gbk_attachment("南平市财政局填报.xlsx"), filled_workbook(cfg, ledger, "市财政局", "已起草方案"))]))
    mailbox.append(message("stranger@evil.example.org", "报表", [
        (utf8_2231_attachment("市财政局.xlsx"), filled_workbook(cfg, ledger, "市财政局", "冒名填报"))]))
    when = NOW + dt.timedelta(days=1)
    service = Service(cfg, now_fn=lambda: when, handle_signals=False)
    assert service.run_once(), service.stats
    assert service.stats["poll"].runs == 1 and service.stats["report"].runs == 1
    outbox = list((cfg.workspace / "outbox").glob("*.eml"))
    assert len(outbox) == 1  # the receipt to 市财政局; none to the stranger
    assert b"czj@np.example.com" in outbox[0].read_bytes()
    assert list((cfg.workspace / "reports").iterdir())
    log = (cfg.workspace / "logs" / "automation.log").read_text(encoding="utf-8")
    assert "收到 市财政局 的“南平市财政局填报.xlsx”：已接收" in log and "已隔离" in log
    assert mailbox.uids("INBOX") == []


def test_collect_imap_command(mailbox, ledger, config_file, capsys):
    """``automation collect --imap --json``: the collect contract, plus the lock shared with ``run``."""
    import json
    import re

    from automation.cli import main
    from automation.service import InstanceLock

    imap = mailbox.config.imap
    text = config_file.read_text(encoding="utf-8")
    head, rest = text.split("[imap]", 1)
    section, tail = rest.split("[remind]", 1)
    section = re.sub(r'(?m)^host = .*$', f'host = "{imap.host}"', section)
    section = re.sub(r'(?m)^port = .*$', f"port = {imap.port}", section)
    section = re.sub(r'(?m)^security = .*$', 'security = "none"', section)
    section = re.sub(r'(?m)^user = .*$', f'user = "{imap.user}"', section)
    section = re.sub(r'(?m)^password_env = .*$', f'password_env = "{imap.password_env}"', section)
    config_file.write_text(head + "[imap]" + section + "[remind]" + tail, encoding="utf-8")
    mailbox.append(message("czj@np.example.com", "市财政局报送", [
        (gbk_attachment("南平市财政局填报.xlsx"), filled_workbook(mailbox.config, ledger, "市财政局", "已起草"))]))

    with InstanceLock(mailbox.config.workspace):
        assert main(["--config", str(config_file), "collect", "--imap"]) == 1
        assert "同一工作目录只能运行一个" in capsys.readouterr().err
    assert len(mailbox.uids("INBOX")) == 1

    assert main(["--config", str(config_file), "collect", "--imap", "--json"]) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert doc["totals"]["accepted"] == 1 and doc["files"][0]["source"] == "imap"
    assert doc["files"][0]["unit"] == "市财政局" and "处理 1 封邮件" in captured.err
    assert len(list((mailbox.config.workspace / "outbox").glob("*.eml"))) == 1  # the receipt
    assert mailbox.uids("INBOX") == []


def test_ssl_and_starttls_with_the_offices_own_ca(mailbox, ledger, now):
    """Intranet mail servers often use a certificate of their own: trusted through [imap] ca_file."""
    server = mailbox.server
    if server.cert is None:
        pytest.skip("openssl is not installed")
    base = mailbox.config.imap
    collector = StubCollector()
    with pytest.raises(AutomationError, match="证书无法验证.*ca_file"):
        collect_imap(replace(mailbox.config, imap=replace(base, security="ssl", port=server.tls_port)), ledger, now,
                     collector=collector)
    with pytest.raises(ConfigError, match="ca_file"):
        collect_imap(replace(mailbox.config, imap=replace(base, security="ssl", port=server.tls_port,
                                                          ca_file=str(server.root / "missing.pem"))),
                     ledger, now, collector=collector)
    for i, (security, port) in enumerate([("ssl", server.tls_port), ("starttls", server.port)]):
        mailbox.append(message("fgw@np.example.com", security, [(gbk_attachment(f"{security}.xlsx"), bytes([i]))]))
        cfg = replace(mailbox.config, imap=replace(base, security=security, port=port, ca_file=str(server.cert)))
        assert collect_imap(cfg, ledger, now, collector=collector).moved == 1
    assert [c["name"] for c in collector.calls] == ["ssl.xlsx", "starttls.xlsx"]


def test_configuration_and_login_errors_are_one_clear_line(mailbox, ledger, now, monkeypatch):
    with pytest.raises(ConfigError, match="DUBAN_IMAP_TEST_PASSWORD"):
        monkeypatch.delenv("DUBAN_IMAP_TEST_PASSWORD")
        collect_imap(mailbox.config, ledger, now, collector=StubCollector())
    with pytest.raises(ConfigError, match="host"):
        collect_imap(replace(mailbox.config, imap=replace(mailbox.config.imap, host="")), ledger, now)
    from dovecot_server import free_port

    closed = replace(mailbox.config, imap=replace(mailbox.config.imap, port=free_port()))
    monkeypatch.setenv("DUBAN_IMAP_TEST_PASSWORD", mailbox.server.password)
    with pytest.raises(AutomationError, match="无法连接收信服务器"):
        collect_imap(closed, ledger, now, collector=StubCollector())
    missing = replace(mailbox.config, imap=replace(mailbox.config.imap, folder="没有这个文件夹"))
    with pytest.raises(AutomationError, match="没有这个文件夹"):
        collect_imap(missing, ledger, now, collector=StubCollector())
    # Last, and keep this test last in the module: after a failed login Dovecot delays the next
    # login from 127.0.0.1 by seconds (auth penalty).
    monkeypatch.setenv("DUBAN_IMAP_TEST_PASSWORD", "wrong")
    with pytest.raises(AutomationError, match="登录失败.*授权码"):
        collect_imap(mailbox.config, ledger, now, collector=StubCollector())
