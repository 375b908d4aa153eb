"""IMAP intake: units' replies with workbooks attached go to the collector by themselves.

``automation collect --imap`` and the service's polling job call :func:`collect_imap`.  One run
(the session is :mod:`automation.mail.imap`, decoding a message :mod:`automation.mail.parsing`):

1. connect, log in, send the IMAP ``ID`` command (163/126 refuse to open a folder without it),
   select the folder to read;
2. list UNSEEN messages and fetch only their headers (Message-ID, From, Date, Subject), so the
   office's ordinary mail is downloaded in full once at most: a message without a workbook is
   remembered in the ledger as ``ignored`` and left alone, unread;
3. per message with workbook attachments: decode it (GBK/GB18030 bodies, RFC 2231 and RFC 2047
   attachment names, raw 8-bit headers), hand every workbook to the collector with the sender and
   the Message-ID (the collector checks the sender against the unit registry, archives,
   validates, quarantines), and only then move the message to the processed folder.

Exactly once, whatever breaks: the ledger table ``imap_messages`` (key: Message-ID) records each
message's state, ``collecting`` → ``collected`` → ``moved``, and the collector itself is
idempotent by content hash.  A connection that drops after a file is in the ledger but before the
message moved leaves it ``collected``: the next run only moves it.  A message seen twice (the
same Message-ID delivered again) is collected once.  Attachment names are never used as paths.
"""

from __future__ import annotations

import datetime as dt
import imaplib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from automation.config import Config
from automation.errors import ConfigError
from automation.ledger import Ledger
from automation.mail.imap import CONNECTION_ERRORS, ClientFactory, ImapSession
from automation.mail.parsing import parse_message

__all__ = ["collect_imap", "IntakeResult", "MessageOutcome"]

log = logging.getLogger("automation.mail.intake")

Collector = Callable[..., Any]


@dataclass
class MessageOutcome:
    """What happened to one message in this run.

    ``state``: ``collected`` (attachments handed to the collector, message moved),
    ``already`` (a message collected before – a second copy or one whose move was interrupted –
    moved without collecting again), ``ignored`` (no workbook attached: left in the folder),
    ``failed`` (left in the folder for the next run; ``note`` says why).
    """

    message_id: str
    uid: str
    sender: str = ""
    subject: str = ""
    state: str = ""
    moved: bool = False
    files: list[Any] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id, "uid": self.uid, "sender": self.sender, "subject": self.subject,
            "state": self.state, "moved": self.moved, "unsupported": self.unsupported, "note": self.note,
            "files": [_file_json(f) for f in self.files],
        }


@dataclass
class IntakeResult:
    """The outcome of one IMAP run; ``error`` is set when the connection broke off midway."""

    folder: str = ""
    messages: list[MessageOutcome] = field(default_factory=list)
    skipped: int = 0  # unseen messages already known to carry no workbook
    error: str | None = None

    @property
    def files(self) -> list[Any]:
        """Every collector result of this run (for receipts and the summary)."""
        return [f for m in self.messages for f in m.files]

    def count(self, outcome: str) -> int:
        return sum(1 for f in self.files if getattr(f, "outcome", None) == outcome)

    @property
    def accepted(self) -> int:
        return self.count("accepted")

    @property
    def quarantined(self) -> int:
        return self.count("quarantined")

    @property
    def duplicates(self) -> int:
        return self.count("duplicate")

    @property
    def moved(self) -> int:
        return sum(1 for m in self.messages if m.moved)

    def summary(self) -> str:
        collected = sum(1 for m in self.messages if m.state == "collected")
        text = (f"邮箱 {self.folder}：处理 {collected} 封邮件，附件 {len(self.files)} 个"
                f"（接收 {self.accepted}，隔离 {self.quarantined}，重复 {self.duplicates}），"
                f"移入已处理文件夹 {self.moved} 封")
        unsupported = [n for m in self.messages for n in m.unsupported]
        if unsupported:
            text += f"；不支持的格式 {len(unsupported)} 个（{'、'.join(unsupported)}，请单位另存为 .xlsx）"
        failed = [m for m in self.messages if m.state == "failed"]
        if failed:
            text += f"；{len(failed)} 封未处理完，下次收取时重试"
        if self.error:
            text += f"；{self.error}"
        return text + "。"

    def to_json(self) -> dict[str, Any]:
        return {
            "folder": self.folder,
            "messages": [m.to_json() for m in self.messages if m.state != "ignored"],
            "ignored": sum(1 for m in self.messages if m.state == "ignored") + self.skipped,
            "files": len(self.files),
            "accepted": self.accepted,
            "quarantined": self.quarantined,
            "duplicate": self.duplicates,
            "moved": self.moved,
            "error": self.error,
        }


def _file_json(result: Any) -> Any:
    if hasattr(result, "to_json"):
        return result.to_json()
    keys = ("file_name", "sha256", "outcome", "reason", "unit", "unit_id", "rows_accepted", "submission_id")
    return {k: getattr(result, k, None) for k in keys}


def _default_collector() -> Collector:
    from automation.collect.pipeline import collect_bytes

    return collect_bytes


def collect_imap(
    config: Config,
    ledger: Ledger,
    now: dt.datetime,
    *,
    collector: Collector | None = None,
    client_factory: ClientFactory | None = None,
) -> IntakeResult:
    """Collect every unseen message with workbook attachments from ``[imap] folder``.

    ``collector`` defaults to :func:`automation.collect.pipeline.collect_bytes`; ``client_factory`` (tests)
    returns a connected, unauthenticated :class:`imaplib.IMAP4` for the ``[imap]`` settings.
    Configuration, connection and login problems raise :class:`AutomationError`; a connection
    that breaks off after that returns what was done so far with ``error`` set.
    """
    cfg = config.imap
    if not cfg.host:
        raise ConfigError("config.toml：[imap] 未填写 host（收信服务器），无法从邮箱收取。")
    password = cfg.password()
    if not password:
        raise ConfigError(f"未设置收信密码：请把邮箱密码（授权码）放在环境变量 {cfg.password_env} 中"
                          "（[imap] password_env）。")
    ledger.require_batch(config.batch.title)  # "run automation init first", before touching the mailbox
    collect = collector or _default_collector()
    result = IntakeResult(folder=cfg.folder)
    with ImapSession(cfg, client_factory, password) as session:
        try:
            _run(session, config, ledger, now, collect, result)
        except CONNECTION_ERRORS as exc:
            result.error = (f"与收信服务器的连接中断（{type(exc).__name__}: {exc}）；已收取的文件都已入账，"
                            "下次收取时继续")
    return result


def _run(session: ImapSession, config: Config, ledger: Ledger, now: dt.datetime, collect: Collector,
         result: IntakeResult) -> None:
    """Every unseen message of the folder, once: known ones skipped or only moved, new ones collected."""
    folder = config.imap.folder
    uids = session.unseen()
    heads = session.headers(uids) if uids else {}
    for uid in uids:
        if uid not in heads:
            continue
        key, internal = heads[uid]
        seen = ledger.imap_message(key)
        if seen is not None and seen.state == "ignored":
            result.skipped += 1
            continue
        outcome = MessageOutcome(message_id=key, uid=uid)
        result.messages.append(outcome)
        if seen is not None and seen.state in ("collected", "moved"):
            outcome.state = "already"
            outcome.note = "此前已收取（Message-ID 相同），不重复收取"
            _move(session, ledger, outcome, now, folder)
            continue
        _collect_message(session, config, ledger, now, collect, outcome, internal)


def _collect_message(session: ImapSession, config: Config, ledger: Ledger, now: dt.datetime, collect: Collector,
                     outcome: MessageOutcome, internal: dt.datetime | None) -> None:
    folder = config.imap.folder
    raw = session.fetch(outcome.uid)
    if raw is None:
        outcome.state, outcome.note = "failed", "服务器未返回邮件内容"
        return
    parsed = parse_message(raw)
    outcome.sender, outcome.subject = parsed.sender, parsed.subject
    if not parsed.workbooks:
        outcome.state = "ignored"
        # Only the key is kept: the office's other mail is none of the ledger's business.
        ledger.record_imap_message(outcome.message_id, now, "ignored", folder=folder, uid=outcome.uid)
        return
    # The server's arrival time orders two replies of one unit; a sender's clock is a poor second.
    received = min(internal or parsed.date or now, now)
    ledger.record_imap_message(outcome.message_id, now, "collecting", folder=folder, uid=outcome.uid,
            sender=parsed.sender, subject=parsed.subject)
    for att in parsed.workbooks:
        if att.kind == "unsupported":
            outcome.unsupported.append(att.filename)
        try:
            outcome.files.append(collect(
                config, ledger, att.filename, att.data, now, source="imap", sender=parsed.sender or None,
                message_id=outcome.message_id, received_at=received,
            ))
        except Exception as exc:  # disk full, a collector bug: keep the message for the next run, go on
            log.exception("处理 %s 发来的附件“%s”时出错，邮件留在原文件夹，下次重试", parsed.sender, att.filename)
            outcome.state = "failed"
            outcome.note = f"附件“{att.filename}”处理出错（{type(exc).__name__}: {exc}），邮件留在原文件夹，下次重试"
            ledger.record_imap_message(outcome.message_id, now, "collecting", folder=folder, uid=outcome.uid,
                    note=outcome.note)
            return
    outcome.state = "collected"
    names = "、".join(a.filename for a in parsed.workbooks)
    ledger.record_imap_message(outcome.message_id, now, "collected", folder=folder, uid=outcome.uid,
            note=f"附件：{names}", processed=True)
    _move(session, ledger, outcome, now, folder)


def _move(session: ImapSession, ledger: Ledger, outcome: MessageOutcome, now: dt.datetime, folder: str) -> None:
    try:
        session.move(outcome.uid)
    except imaplib.IMAP4.abort:
        raise
    except imaplib.IMAP4.error as exc:
        outcome.note = (outcome.note + "；" if outcome.note else "") + f"移动邮件失败（{exc}），下次收取时再移"
        log.warning("邮件 %s 移入已处理文件夹失败：%s（下次收取时再移）", outcome.message_id, exc)
        return
    outcome.moved = True
    ledger.record_imap_message(outcome.message_id, now, "moved", folder=folder, uid=outcome.uid, processed=True)
