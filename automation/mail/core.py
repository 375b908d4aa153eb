"""Mail out: message composition, transports, at-most-once sending, distribution and receipts.

Stage 5 of the loop.  Three layers, each usable on its own:

- **Composition** (:func:`compose_message`): a ``multipart/mixed`` message with a real
  ``text/plain`` alternative next to the ``text/html`` one, and attachments whose Chinese names
  display in QQ Mail, Foxmail and Outlook.  yagmail (the design card's choice) gets three things
  wrong for us: it turns every newline into ``<br>``, sends the HTML as the plain-text part and
  names attachments only one way.  So we build the MIME ourselves with the ``compat32`` policy
  (the modern policy re-folds parameters and even RFC 2047-encodes long content types) and give
  every attachment both an RFC 2231 ``filename*`` and an RFC 2047 ``name=`` (what Outlook and
  older Foxmail read).
- **Transports**: :class:`OutboxTransport` writes ``<workspace>/outbox/<key>.eml`` atomically
  (the default: nothing leaves the machine); :class:`SmtpTransport` uses yagmail only for the
  connection and login and hands it our own bytes, with a per-minute throttle, retries with
  exponential backoff on transient failures (4xx, dropped connections) and per-recipient
  permanent failures (5xx) that do not stop the other recipients.
- **Idempotency** (:func:`send_once`): every message has an idempotency key and a row in the
  ledger's ``messages`` table.  The row is written as ``pending`` with the Message-ID *before*
  the transport is called and marked ``sent`` after.  A ``pending`` row found later means the
  process died in between: it may or may not have gone out, so it becomes ``uncertain`` and is
  never sent again unless the user asks (``--resend-uncertain``, same Message-ID, so a client
  that got both shows one).

:func:`distribute` and :func:`send_receipts` are the two mailings of this module; reminders are in
:mod:`automation.remind`.  The Chinese texts live in :mod:`automation.mail.letters`.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import logging
import secrets
import smtplib
import ssl
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email import encoders, policy
from email.generator import BytesGenerator
from email.header import Header
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr, getaddresses
from pathlib import Path
from typing import Any, Protocol

from automation import clock
from automation.config import Config, MailConfig
from automation.errors import AutomationError, ConfigError
from automation.fsutil import atomic_write_bytes, safe_filename
from automation.ledger import Ledger
from automation.model import Batch, UnitRow

__all__ = [
    "Attachment",
    "compose_message",
    "make_message_id",
    "message_bytes",
    "recipients_of",
    "Delivery",
    "TransportError",
    "MailAuthError",
    "MailConnectionError",
    "Transport",
    "OutboxTransport",
    "SmtpTransport",
    "transport_from_config",
    "SendResult",
    "message_row",
    "send_once",
    "settled_result",
    "distribute",
    "receipt_key",
    "ReceiptSource",
    "pending_receipts",
    "send_receipts",
    "XLSX_TYPE",
]

log = logging.getLogger(__name__)

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_POLICY = policy.compat32.clone(linesep="\r\n")


# --------------------------------------------------------------------------- composition


@dataclass(frozen=True)
class Attachment:
    """A file to attach: its display name (Chinese is fine), bytes and MIME type."""

    filename: str
    data: bytes
    content_type: str = XLSX_TYPE

    @classmethod
    def from_path(cls, path: str | Path, filename: str | None = None, content_type: str = XLSX_TYPE) -> Attachment:
        p = Path(path)
        return cls(filename or p.name, p.read_bytes(), content_type)


def _encoded_words(text: str) -> str:
    """RFC 2047 encoded-words for ``text`` (split so each word stays under 76 characters)."""
    return Header(text, "utf-8").encode(linesep="\r\n ", maxlinelen=76)


def _rfc2231(text: str) -> str:
    return "utf-8''" + urllib.parse.quote(text.encode("utf-8"), safe="")


def _attachment_part(att: Attachment) -> MIMEBase:
    """One attachment, named both ways.

    ``Content-Type: …; name="=?utf-8?b?…?="`` is what Outlook and Foxmail show;
    ``Content-Disposition: attachment; filename*=utf-8''%E4…`` is the standard (RFC 2231) that
    Thunderbird, Apple Mail and QQ Mail's web client read; ``filename="=?utf-8?b?…?="`` after it
    helps clients that read the disposition but not RFC 2231.  ``safe_filename`` bounds the name
    so the single-line ``filename*`` stays well under the 998-character line limit.
    """
    maintype, _, subtype = att.content_type.partition("/")
    part = MIMEBase(maintype or "application", subtype or "octet-stream")
    part.set_payload(att.data)
    encoders.encode_base64(part)
    name = safe_filename(att.filename, max_len=80)
    ascii_name = name.isascii()
    del part["Content-Type"]
    if ascii_name:
        part["Content-Type"] = f'{att.content_type};\r\n name="{name}"'
        part["Content-Disposition"] = f'attachment;\r\n filename="{name}"'
    else:
        words = _encoded_words(name)
        part["Content-Type"] = f'{att.content_type};\r\n name="{words}"'
        part["Content-Disposition"] = f'attachment;\r\n filename*={_rfc2231(name)};\r\n filename="{words}"'
    return part


def _address(name: str, addr: str) -> str:
    """``name <addr>`` with a Chinese display name RFC 2047-encoded (plain address when no name)."""
    if not name:
        return addr
    return formataddr((name, addr), charset="utf-8")


def make_message_id(sender: str, now: dt.datetime) -> str:
    """A globally unique Message-ID in the sender's domain (pre-generated, stored before sending)."""
    domain = sender.rpartition("@")[2] or "duban.localhost"
    stamp = clock.local(now).strftime("%Y%m%d%H%M%S")
    return f"<duban.{stamp}.{secrets.token_hex(8)}@{domain}>"


def compose_message(
    mail: MailConfig,
    *,
    to: Sequence[str],
    subject: str,
    text: str,
    now: dt.datetime,
    cc: Sequence[str] = (),
    html: str | None = None,
    attachments: Sequence[Attachment] = (),
    message_id: str | None = None,
    in_reply_to: str | None = None,
    to_name: str = "",
) -> Message:
    """A complete message: From (Chinese sender name), To/Cc, Reply-To, Message-ID, Date (+08:00).

    ``text`` is the real plain-text alternative (newlines kept as newlines); ``html`` is optional.
    ``to_name`` is a display name for every To address (the unit's name).
    """
    if not mail.sender:
        raise ConfigError("config.toml：[mail] 缺少 sender（发件地址），例如 sender = \"gwgk@example.com\"。")
    body: Message
    plain = MIMEText(text, "plain", "utf-8")
    if html is not None:
        body = MIMEMultipart("alternative")
        body.attach(plain)
        body.attach(MIMEText(html, "html", "utf-8"))
    else:
        body = plain
    if attachments:
        msg: Message = MIMEMultipart("mixed")
        msg.attach(body)
        for att in attachments:
            msg.attach(_attachment_part(att))
    else:
        msg = body
    msg.policy = _POLICY
    msg["Subject"] = Header(" ".join(subject.split()), "utf-8")  # never a line break in a header
    msg["From"] = _address(mail.sender_name, mail.sender)
    msg["To"] = ", ".join(_address(to_name, a) for a in _dedupe(to))
    cc_list = [a for a in _dedupe(cc) if a.lower() not in {t.lower() for t in to}]
    if cc_list:
        msg["Cc"] = ", ".join(cc_list)
    if mail.reply_to:
        msg["Reply-To"] = mail.reply_to
    msg["Date"] = format_datetime(clock.local(now))
    msg["Message-ID"] = message_id or make_message_id(mail.sender, now)
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
        msg["References"] = in_reply_to
    msg["X-Mailer"] = "duban-automation"
    return msg


def _dedupe(addresses: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for a in addresses:
        a = a.strip()
        if a and a.lower() not in seen:
            seen.add(a.lower())
            out.append(a)
    return out


def message_bytes(msg: Message) -> bytes:
    """The wire form (CRLF line ends, compat32 folding)."""
    buf = io.BytesIO()
    BytesGenerator(buf, mangle_from_=False, policy=_POLICY).flatten(msg)
    return buf.getvalue()


def recipients_of(msg: Message) -> list[str]:
    """Envelope recipients: every address in To, Cc and Bcc, once."""
    fields = [str(v) for h in ("To", "Cc", "Bcc") for v in (msg.get_all(h) or [])]
    return _dedupe([addr for _name, addr in getaddresses(fields) if addr])


def _set_message_id(msg: Message, message_id: str) -> None:
    del msg["Message-ID"]
    msg["Message-ID"] = message_id


# --------------------------------------------------------------------------- transports


@dataclass
class Delivery:
    """What a transport did with one message."""

    accepted: list[str]
    # address -> "550 5.1.1 …": not delivered (refused for good, or still failing after the retries
    # while others already accepted it — never retried then, see SmtpTransport.send)
    refused: dict[str, str] = field(default_factory=dict)
    attempts: int = 1
    path: str | None = None


class TransportError(Exception):
    """The message was not delivered to anyone.

    ``permanent``: the server refused it (5xx) and retrying will not help.  ``fatal``: no other
    message can go either (bad password, server unreachable) — the run stops.
    """

    def __init__(self, message: str, *, permanent: bool, refused: dict[str, str] | None = None,
                 attempts: int = 1, fatal: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.refused = refused or {}
        self.attempts = attempts
        self.fatal = fatal


class MailAuthError(TransportError, AutomationError):
    """Login refused: stop the run with a message about the password / 授权码."""

    def __init__(self, message: str) -> None:
        TransportError.__init__(self, message, permanent=True, fatal=True)


class MailConnectionError(TransportError, AutomationError):
    """The server cannot be reached (after retries) or its certificate is wrong: stop the run."""

    def __init__(self, message: str, attempts: int = 1) -> None:
        TransportError.__init__(self, message, permanent=False, fatal=True, attempts=attempts)


class Transport(Protocol):
    name: str

    def send(self, message: Message, idem_key: str) -> Delivery: ...

    def close(self) -> None: ...


def _key_filename(idem_key: str) -> str:
    return safe_filename(idem_key.replace(":", "_"), max_len=150) + ".eml"


class OutboxTransport:
    """Writes each message to ``<outbox>/<idempotency key>.eml`` instead of sending it.

    The file name comes from the key, so writing the same message again replaces the file rather
    than adding one: the outbox is itself idempotent.  Staff can open the .eml files in Foxmail or
    Outlook to check them, and send them by hand if they like.
    """

    name = "outbox"

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def send(self, message: Message, idem_key: str) -> Delivery:
        path = self.folder / _key_filename(idem_key)
        atomic_write_bytes(path, message_bytes(message))
        return Delivery(accepted=recipients_of(message), path=str(path))

    def close(self) -> None:
        pass


def _reply(code: int, text: bytes | str) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return f"{code} {text}".strip()


class SmtpTransport:
    """SMTP through yagmail's connection and login, with our own bytes, throttle and retries.

    yagmail is used for what it does well (``SSL`` / ``STARTTLS`` / plain connection and login);
    its ``send`` is not: it rebuilds the message, retries with ``time.sleep`` and swallows failures
    (returns ``False``).  We call ``sendmail`` on its connection, so partial refusals come back per
    recipient.  We also undo two defaults: a login name without ``@`` (政务邮箱 often use bare
    account names) is not turned into ``…@gmail.com``, and a missing password never prompts or
    reads the keyring (cron and services have neither).

    ``sleep`` and ``monotonic`` are injected so tests neither wait nor depend on the clock.
    """

    name = "smtp"

    def __init__(
        self,
        *,
        host: str,
        port: int,
        security: str = "ssl",
        user: str = "",
        password: str | None = None,
        sender: str,
        per_minute: float = 20.0,
        retries: int = 3,
        backoff_seconds: float = 5.0,
        timeout: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not host:
            raise ConfigError("config.toml：[mail] mode = \"smtp\" 时必须填写 host（发信服务器地址）。")
        if security not in ("ssl", "starttls", "none"):
            raise ConfigError(f"config.toml：[mail] security = {security!r} 无效，可选：ssl / starttls / none。")
        self.host, self.port, self.security = host, int(port), security
        self.user, self.password, self.sender = user, password, sender
        self.interval = 60.0 / per_minute if per_minute and per_minute > 0 else 0.0
        self.retries = max(0, int(retries))
        self.backoff = max(0.0, float(backoff_seconds))
        self.timeout = timeout
        self.ssl_context = ssl_context
        self.sleep = sleep
        self.monotonic = monotonic
        self._yag: Any = None
        self._last_send: float | None = None
        self.sent_count = 0

    @classmethod
    def from_config(cls, mail: MailConfig, **kwargs: Any) -> SmtpTransport:
        password = mail.password()
        if mail.user and not password:
            raise ConfigError(
                f"发信密码未设置：请把邮箱密码（QQ、163 等邮箱为“授权码”）放在环境变量 {mail.password_env} 中，"
                f"例如 Windows 命令行 set {mail.password_env}=授权码，Linux export {mail.password_env}=授权码。"
            )
        if mail.ca_file and "ssl_context" not in kwargs:
            if not Path(mail.ca_file).is_file():
                raise ConfigError(f"config.toml：[mail] ca_file 指定的证书文件 {mail.ca_file} 不存在。")
            try:
                kwargs["ssl_context"] = ssl.create_default_context(cafile=mail.ca_file)
            except (ssl.SSLError, ValueError) as exc:
                raise ConfigError(f"config.toml：[mail] ca_file {mail.ca_file} 不是 PEM 格式的证书（{exc}）。") from exc
        return cls(host=mail.host, port=mail.port, security=mail.security, user=mail.user, password=password,
                   sender=mail.sender, per_minute=mail.per_minute, retries=mail.retries,
                   backoff_seconds=mail.backoff_seconds, timeout=mail.timeout, **kwargs)

    # -- connection

    def _connect(self) -> Any:
        import yagmail

        context = self.ssl_context or ssl.create_default_context()
        kwargs: dict[str, Any] = {"timeout": self.timeout}
        # smtplib can only log in with ASCII passwords; 政务邮箱 passwords may hold Chinese.
        utf8_password = bool(self.password) and not (self.password or "").isascii()
        if self.security == "ssl":
            kwargs["context"] = context
        yag = yagmail.SMTP(
            user=self.user or self.sender,
            password=self.password or "",
            host=self.host,
            port=self.port,
            smtp_ssl=self.security == "ssl",
            smtp_starttls={"context": context} if self.security == "starttls" else False,
            smtp_skip_login=not self.user or utf8_password,
            soft_email_validation=False,
            **kwargs,
        )
        yag.set_logging(None)
        yag.user = self.user or self.sender  # yagmail appends @gmail.com to bare account names
        try:
            yag.login()
            if self.user and utf8_password:
                _auth_plain_utf8(yag.smtp, self.user, self.password or "")
        except BaseException:
            _quietly_close(yag)
            raise
        return yag

    def _connection(self) -> smtplib.SMTP:
        """The open connection, connecting (with retries) when there is none."""
        if self._yag is not None:
            return self._yag.smtp
        attempt = 0
        while True:
            attempt += 1
            try:
                self._yag = self._connect()
                return self._yag.smtp
            except smtplib.SMTPAuthenticationError as exc:
                raise MailAuthError(
                    f"邮件服务器 {self.host} 拒绝登录（{_reply(exc.smtp_code, exc.smtp_error)}）。请检查 [mail] user "
                    "和环境变量中的密码；QQ、163、126 邮箱须使用网页设置中生成的“授权码”，并开启 SMTP 服务。"
                ) from exc
            except smtplib.SMTPNotSupportedError as exc:
                raise MailConnectionError(
                    f"邮件服务器 {self.host}:{self.port} 不支持所需功能（{exc}）。请检查 [mail] security 与端口是否匹配："
                    "465 通常为 ssl，587 为 starttls，25 为 none 或 starttls。"
                ) from exc
            except ssl.SSLCertVerificationError as exc:
                raise MailConnectionError(
                    f"邮件服务器 {self.host} 的证书无法验证（{exc.verify_message}）。请确认 host 填写的是服务器的正式域名。"
                ) from exc
            except (smtplib.SMTPException, OSError) as exc:
                if isinstance(exc, smtplib.SMTPResponseException) and exc.smtp_code >= 500:
                    raise MailConnectionError(
                        f"邮件服务器 {self.host}:{self.port} 拒绝连接（{_reply(exc.smtp_code, exc.smtp_error)}）。"
                    ) from exc
                if attempt > self.retries:
                    raise MailConnectionError(
                        f"无法连接邮件服务器 {self.host}:{self.port}（{type(exc).__name__}: {exc}），已重试 {self.retries} 次。"
                        "请检查网络、[mail] host / port / security 设置，稍后重新运行（已发出的邮件不会重复发送）。",
                        attempts=attempt,
                    ) from exc
                self._backoff(attempt)

    def _drop(self) -> None:
        if self._yag is not None:
            _quietly_close(self._yag)
        self._yag = None

    def close(self) -> None:
        self._drop()

    # -- sending

    def _throttle(self) -> None:
        if self.interval and self._last_send is not None:
            wait = self.interval - (self.monotonic() - self._last_send)
            if wait > 0:
                self.sleep(wait)
        self._last_send = self.monotonic()

    def _backoff(self, attempt: int) -> None:
        self.sleep(self.backoff * (2 ** (attempt - 1)))

    def send(self, message: Message, idem_key: str) -> Delivery:
        """Deliver to every recipient once; retry transient failures, record permanent ones.

        Per recipient: 2xx → accepted; 5xx → ``refused`` (permanent, the others still get it);
        4xx → retried (only those recipients) with exponential backoff.  A 4xx or a dropped
        connection for the whole message is retried as a whole; a 5xx for the whole message
        refuses it for everyone.  Raises :class:`TransportError` only when nobody got the message.

        Once any recipient has accepted the message this never raises: recipients still failing
        when the retries run out, or when a retry cannot even reconnect (server gone, login
        refused), are returned in ``refused`` with their last transient reply.  Raising would make
        :func:`send_once` mark the message ``failed`` and a later run send it again to those who
        already have it; instead the message is ``sent`` and the ledger says who did not get it.
        (Keeping the accepted list and later resending to the rest only was the alternative: it
        needs per-recipient state in the ledger and a second message the unit may see twice in a
        shared mailbox, for a case the office can settle by forwarding the copy it has.)
        """
        data = message_bytes(message)
        pending = recipients_of(message)
        if not pending:
            raise TransportError("邮件没有收件人。", permanent=True)
        accepted: list[str] = []
        refused: dict[str, str] = {}
        transient: dict[str, str] = {}
        attempt = 0
        last_error = ""
        while pending:
            attempt += 1
            self._throttle()
            try:
                conn = self._connection()
                errors = conn.sendmail(self.sender, pending, data)
            except TransportError as exc:  # cannot reconnect (or log in again) for a retry
                if not accepted:
                    raise
                # Some recipients already have it: a TransportError now would mark the message
                # failed and a later run would send it to them again.  Give up on the rest instead.
                why = _cause_text(exc)
                refused.update({r: f"{transient.get(r, last_error)}；重试时{why}，未送达"
                                   "（其他收件人已收到，为避免重复不再重发）" for r in pending})
                log.warning("%s: delivered to %d, gave up on %d after %s", idem_key, len(accepted), len(pending), why)
                break
            except smtplib.SMTPRecipientsRefused as exc:  # nobody accepted at RCPT time
                errors = exc.recipients
            except smtplib.SMTPResponseException as exc:  # MAIL FROM / DATA refused for everyone
                last_error = _reply(exc.smtp_code, exc.smtp_error)
                if exc.smtp_code == 421:
                    self._drop()
                if 400 <= exc.smtp_code < 500:
                    errors = {r: (exc.smtp_code, exc.smtp_error) for r in pending}
                else:
                    for r in pending:
                        refused[r] = last_error
                    pending = []
                    break
            except (smtplib.SMTPException, OSError) as exc:  # dropped connection, timeout, reset
                last_error = f"{type(exc).__name__}: {exc}"
                self._drop()
                errors = {r: (0, last_error) for r in pending}
            transient = {}
            for r in pending:
                if r in errors:
                    code, text = errors[r]
                    if 400 <= code < 500 or code == 0:
                        transient[r] = _reply(code, text) if code else str(text)
                    else:
                        refused[r] = _reply(code, text)
                else:
                    accepted.append(r)
            pending = list(transient)
            if not pending:
                break
            last_error = next(iter(transient.values()))
            if attempt > self.retries:
                refused.update({r: f"{t}（已重试 {self.retries} 次）" for r, t in transient.items()})
                if not accepted:
                    raise TransportError(f"暂时无法发送（{last_error}），已重试 {self.retries} 次。",
                                         permanent=False, refused=refused, attempts=attempt)
                break
            log.info("%s: transient failure (%s), retry %d", idem_key, last_error, attempt)
            self._backoff(attempt)
        if not accepted:
            raise TransportError("所有收件人均被拒收：" + "；".join(f"{a} {t}" for a, t in refused.items()),
                                 permanent=True, refused=refused, attempts=attempt)
        self.sent_count += 1
        return Delivery(accepted=accepted, refused=refused, attempts=attempt)


def _cause_text(exc: BaseException) -> str:
    """The short reason behind a transport error (the underlying socket/SMTP error if any)."""
    cause = exc.__cause__
    if isinstance(cause, smtplib.SMTPResponseException):
        return f"连接失败（{_reply(cause.smtp_code, cause.smtp_error)}）"
    if cause is not None:
        return f"连接失败（{type(cause).__name__}: {cause}）"
    return f"连接失败（{exc}）"


def _auth_plain_utf8(conn: smtplib.SMTP, user: str, password: str) -> None:
    """AUTH PLAIN with UTF-8 credentials (RFC 4616), which ``smtplib.login`` cannot send."""
    conn.ehlo_or_helo_if_needed()
    token = base64.b64encode(b"\0" + user.encode("utf-8") + b"\0" + password.encode("utf-8")).decode("ascii")
    code, resp = conn.docmd("AUTH", "PLAIN " + token)
    if code != 235:
        raise smtplib.SMTPAuthenticationError(code, resp)


def _quietly_close(yag: Any) -> None:
    try:
        yag.is_closed = True
        if yag.smtp is not None:
            yag.smtp.close()
    except Exception:  # noqa: BLE001 - closing a broken connection must not mask the real error
        pass


def transport_from_config(config: Config, workspace: Any = None) -> Transport:
    """The transport ``[mail] mode`` asks for.

    ``workspace``: a :class:`~automation.workspace.Workspace`, its root path, or None for the
    configured workspace; outbox mode writes to ``<root>/outbox``.
    """
    from automation.workspace import Workspace

    if workspace is None:
        root = config.workspace
    elif isinstance(workspace, Workspace):
        root = workspace.root
    else:  # a plain path is the root itself (Path.root would be "/")
        root = Path(workspace)
    if config.mail.mode == "smtp":
        return SmtpTransport.from_config(config.mail)
    return OutboxTransport(root / "outbox")


# --------------------------------------------------------------------------- idempotent sending


@dataclass
class SendResult:
    """One message and what happened to it in this run.

    ``action``: ``sent`` (went out now), ``resent`` (an uncertain one, on request), ``skipped``
    (already sent earlier), ``held`` (uncertain: a crash may have sent it; not repeated),
    ``failed`` (nobody got it; a later run tries again), ``no-address`` (unit has no e-mail),
    ``dry-run`` (would be sent).  ``state`` is the ledger state afterwards.
    """

    idem_key: str
    purpose: str
    unit: str
    unit_id: int | None
    subject: str
    action: str
    state: str = ""
    message_id: str = ""
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)
    error: str = ""
    path: str | None = None
    attempts: int = 0
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.idem_key, "purpose": self.purpose, "unit": self.unit, "action": self.action,
            "state": self.state, "message_id": self.message_id, "subject": self.subject, "to": self.to,
            "cc": self.cc, "refused": self.refused, "error": self.error, "path": self.path,
            "attempts": self.attempts, **self.detail,
        }


def message_row(ledger: Ledger, idem_key: str) -> dict[str, Any] | None:
    """The ledger row for an idempotency key, or None."""
    r = ledger.execute("SELECT * FROM messages WHERE idem_key = ?", (idem_key,)).fetchone()
    return dict(r) if r else None


def _headers_of(message: Message) -> tuple[str, list[str], list[str]]:
    from email.header import decode_header, make_header

    subject = str(make_header(decode_header(str(message.get("Subject", "")))))
    to = [a for _n, a in getaddresses([str(v) for v in message.get_all("To") or []]) if a]
    cc = [a for _n, a in getaddresses([str(v) for v in message.get_all("Cc") or []]) if a]
    return subject, to, cc


def _record_sent(ledger: Ledger, row_id: int, delivery: Delivery, now: dt.datetime, detail: dict[str, Any]) -> None:
    """Mark a message sent (a separate function so tests can inject a crash right here)."""
    ledger.execute(
        "UPDATE messages SET state = 'sent', sent_at = ?, path = ?, error = ?, detail_json = ? WHERE id = ?",
        (clock.iso(now), delivery.path, "；".join(f"{a} {t}" for a, t in delivery.refused.items()) or None,
         json.dumps({**detail, "accepted": delivery.accepted, "refused": delivery.refused,
                     "smtp_attempts": delivery.attempts}, ensure_ascii=False), row_id),
    )


def settled_result(
    ledger: Ledger,
    idem_key: str,
    now: dt.datetime,
    *,
    resend_uncertain: bool = False,
    purpose: str = "",
    unit: str = "",
    unit_id: int | None = None,
) -> SendResult | None:
    """A result when ``idem_key`` needs no sending now (``skipped`` / ``held``), else None.

    Turns a leftover ``pending`` row (a run died between sending and recording) into
    ``uncertain``.  Callers check this before building attachments they would not need.
    """
    row = message_row(ledger, idem_key)
    if row is None or row["state"] == "failed" or (row["state"] == "uncertain" and resend_uncertain):
        return None
    result = SendResult(idem_key, purpose or row["purpose"], unit, unit_id, row["subject"], action="skipped",
                        state=row["state"], message_id=row["message_id"], path=row["path"],
                        attempts=row["attempts"], to=json.loads(row["recipients_json"] or "[]"))
    if row["state"] == "sent":
        return result
    if row["state"] == "pending":
        if resend_uncertain:
            return None
        with ledger.transaction():
            ledger.execute(
                "UPDATE messages SET state = 'uncertain', error = ? WHERE id = ? AND state = 'pending'",
                ("上次运行在发送与记录之间中断，无法确定是否已发出；为避免重复未再发送。"
                 "如确认对方未收到，可加 --resend-uncertain 重发。", row["id"]),
            )
            ledger.event("mail-uncertain", now, key=idem_key, message_id=row["message_id"])
    result.action, result.state = "held", "uncertain"
    result.error = "发送结果不确定（上次运行中断），未重发；确认未收到时可加 --resend-uncertain。"
    return result


def send_once(
    ledger: Ledger,
    transport: Transport,
    idem_key: str,
    purpose: str,
    batch_id: int | None,
    unit_id: int | None,
    message: Message,
    now: dt.datetime,
    *,
    resend_uncertain: bool = False,
    unit: str = "",
    detail: dict[str, Any] | None = None,
) -> SendResult:
    """Send ``message`` at most once per ``idem_key``.

    - no row: insert ``pending`` with the message's Message-ID, send, mark ``sent``;
    - ``sent``: nothing (``skipped``);
    - ``pending`` (a previous run died between sending and recording): mark ``uncertain``, do not
      send (``held``) — it may already be in the unit's inbox;
    - ``uncertain``: ``held`` again, unless ``resend_uncertain``: then sent with the *same*
      Message-ID (``resent``);
    - ``failed`` (nobody got it): sent again with the same Message-ID.
    A transport failure marks the row ``failed`` (per-recipient reasons in ``detail_json``); an
    unexpected exception while sending marks it ``uncertain`` and propagates.
    """
    detail = dict(detail or {})
    subject, to, cc = _headers_of(message)
    recipients = recipients_of(message)
    base = SendResult(idem_key, purpose, unit, unit_id, subject, action="", to=to, cc=cc, detail=detail)
    with ledger.transaction():
        settled = settled_result(ledger, idem_key, now, resend_uncertain=resend_uncertain, purpose=purpose,
                                 unit=unit, unit_id=unit_id)
        if settled is not None:
            settled.to, settled.cc, settled.detail = to, cc, detail
            return settled
        row = message_row(ledger, idem_key)
        if row is not None:
            base.attempts = row["attempts"]
            state = row["state"]
            action = "resent" if state in ("uncertain", "pending") else "sent"
            _set_message_id(message, row["message_id"])
            ledger.execute(
                "UPDATE messages SET state = 'pending', attempts = attempts + 1, subject = ?, recipients_json = ?, "
                "error = NULL WHERE id = ?",
                (subject, json.dumps(recipients, ensure_ascii=False), row["id"]),
            )
            row_id = int(row["id"])
        else:
            action = "sent"
            message_id = str(message.get("Message-ID") or "")
            if not message_id:
                message_id = make_message_id(str(getaddresses([str(message.get("From", ""))])[0][1]), now)
                _set_message_id(message, message_id)
            cur = ledger.execute(
                "INSERT INTO messages(idem_key, purpose, batch_id, unit_id, message_id, subject, recipients_json, "
                "state, attempts, created_at, detail_json) VALUES (?,?,?,?,?,?,?, 'pending', 1, ?, ?)",
                (idem_key, purpose, batch_id, unit_id, message_id, subject, json.dumps(recipients, ensure_ascii=False),
                 clock.iso(now), json.dumps(detail, ensure_ascii=False)),
            )
            row_id = int(cur.lastrowid or 0)
    base.message_id = str(message["Message-ID"])
    base.attempts += 1
    try:
        delivery = transport.send(message, idem_key)
    except TransportError as exc:
        ledger.execute(
            "UPDATE messages SET state = 'failed', error = ?, detail_json = ? WHERE id = ?",
            (str(exc), json.dumps({**detail, "refused": exc.refused, "permanent": exc.permanent},
                                  ensure_ascii=False), row_id),
        )
        if exc.fatal:
            raise
        base.action, base.state, base.error, base.refused = "failed", "failed", str(exc), dict(exc.refused)
        return base
    except BaseException as exc:
        ledger.execute("UPDATE messages SET state = 'uncertain', error = ? WHERE id = ?",
                       (f"发送时出错，结果不确定：{type(exc).__name__}: {exc}", row_id))
        raise
    _record_sent(ledger, row_id, delivery, now, detail)
    base.action, base.state, base.refused, base.path = action, "sent", dict(delivery.refused), delivery.path
    if delivery.refused:
        base.error = "部分收件人拒收：" + "；".join(f"{a} {t}" for a, t in delivery.refused.items())
    return base


# --------------------------------------------------------------------------- distribution


def _unit_address(unit: UnitRow) -> tuple[list[str], list[str]]:
    return list(unit.emails), [c for c in unit.cc if c.lower() not in {e.lower() for e in unit.emails}]


def _select_units(config: Config, ledger: Ledger, batch: Batch, names: Sequence[str] | None) -> list[UnitRow]:
    units = ledger.assigned_units(batch.id)
    if not names:
        return units
    from automation.units import Registry

    registry = Registry.from_config(config)
    wanted = {u for n in names for u in registry.resolve(n, where="--unit")}
    return [u for u in units if u.name in wanted]


def _no_address(key: str, purpose: str, unit: UnitRow, subject: str) -> SendResult:
    return SendResult(key, purpose, unit.name, unit.id, subject, action="no-address", state="",
                      error=f"单位“{unit.name}”未登记邮箱：请在 config.toml 该单位的 [[units]] 中填写 email。")


def _current_workbook(ledger: Ledger, batch: Batch, unit: UnitRow) -> Path | None:
    """The latest built workbook for the unit if it is on disk, intact and for the current tasks."""
    from automation.fsutil import sha256_file

    row = ledger.execute(
        "SELECT path, sha256, tasks_json FROM issues WHERE batch_id = ? AND unit_id = ? AND purpose = 'build' "
        "AND path IS NOT NULL ORDER BY id DESC LIMIT 1", (batch.id, unit.id),
    ).fetchone()
    if row is None:
        return None
    path = Path(row["path"])
    if not path.is_file() or (row["sha256"] and sha256_file(path) != row["sha256"]):
        return None
    wanted = sorted({a.task for a in ledger.assignments(batch.id, unit.id)})
    if sorted(json.loads(row["tasks_json"] or "[]")) != wanted:
        return None
    return path


def distribute(
    config: Config,
    ledger: Ledger,
    now: dt.datetime,
    transport: Transport,
    units: Sequence[str] | None = None,
    *,
    resend_uncertain: bool = False,
) -> list[SendResult]:
    """Mail every assigned unit (or the named ones) its workbook with a Chinese cover letter.

    Idempotent per (batch, table revision, unit): a re-run sends only what has not gone out;
    a new task-table revision is a new distribution.  Missing or stale workbooks are built first.
    """
    from automation.mail import letters

    batch = ledger.require_batch(config.batch.title)
    selected = _select_units(config, ledger, batch, units)
    todo: list[tuple[UnitRow, str]] = []
    results: list[SendResult] = []
    for unit in selected:
        key = f"distribute:{batch.id}:{unit.id}:r{batch.revision}"
        settled = settled_result(ledger, key, now, resend_uncertain=resend_uncertain, purpose="distribute",
                                 unit=unit.name, unit_id=unit.id)
        if settled is not None:
            results.append(settled)
            continue
        if not unit.emails:
            results.append(_no_address(key, "distribute", unit, ""))
            continue
        todo.append((unit, key))
    if not todo:
        return results
    paths = _ensure_workbooks(config, ledger, batch, [u for u, _k in todo], now)
    tasks = {t.number: t for t in ledger.tasks(batch.id)}
    for unit, key in todo:
        assignments = ledger.assignments(batch.id, unit.id)
        letter = letters.cover_letter(config, batch, unit, assignments, tasks, paths[unit.id].name,
                                       clock.local(now).date())
        to, cc = _unit_address(unit)
        msg = compose_message(config.mail, to=to, cc=cc, subject=letter.subject, text=letter.text, html=letter.html,
                              attachments=[Attachment.from_path(paths[unit.id])], now=now, to_name=unit.name)
        results.append(send_once(ledger, transport, key, "distribute", batch.id, unit.id, msg, now,
                                 resend_uncertain=resend_uncertain, unit=unit.name,
                                 detail={"tasks": len(assignments), "workbook": paths[unit.id].name}))
    return results


def _ensure_workbooks(config: Config, ledger: Ledger, batch: Batch, units: Sequence[UnitRow],
                      now: dt.datetime) -> dict[int, Path]:
    paths: dict[int, Path] = {}
    missing: list[UnitRow] = []
    for unit in units:
        path = _current_workbook(ledger, batch, unit)
        if path is None:
            missing.append(unit)
        else:
            paths[unit.id] = path
    if missing:
        from automation.workbook.build import build_workbooks

        for built in build_workbooks(config, ledger, now, units=[u.name for u in missing]):
            paths[built.unit_id] = Path(built.path)
    lost = [u.name for u in units if u.id not in paths]
    if lost:
        raise AutomationError(f"未能生成以下单位的工作簿：{'、'.join(lost)}。请先运行 automation build 查看原因。")
    return paths


# --------------------------------------------------------------------------- receipts


def receipt_key(result: Any) -> str:
    """Idempotency key of the 回执 for one collected file: per content and outcome, so a file
    quarantined first and accepted after a re-check gets one receipt for each.
    (:func:`pending_receipts` builds the same key in SQL.)"""
    return f"receipt:{result.sha256}:{result.outcome}"


@dataclass
class ReceiptSource:
    """A returned file a 回执 is owed for, rebuilt from the ledger.

    It carries the fields of :class:`automation.collect.pipeline.FileResult` that :func:`send_receipts`
    and :func:`automation.mail.letters.receipt_letter` read, so both kinds can be mixed.
    """

    file_name: str
    sha256: str
    outcome: str                       # accepted | quarantined
    unit: str
    unit_id: int
    submission_id: int
    reason: str = ""
    rows_accepted: int = 0
    tasks_accepted: list[int] = field(default_factory=list)
    problems: list[dict[str, Any]] = field(default_factory=list)
    sender: str | None = None
    message_id: str | None = None
    received_at: str | None = None


def pending_receipts(
    config: Config,
    ledger: Ledger,
    *,
    retry_refused: bool = False,
    include_uncertain: bool = False,
) -> list[ReceiptSource]:
    """Every 回执 still owed, from the ledger, oldest first.

    Owed: an accepted or quarantined submission of the current batch from a known unit whose
    receipt (:func:`receipt_key`) has no ``messages`` row, or one in state ``failed``.  Taken from
    the ledger rather than from one run's results because the run that collected a file may not
    get its receipt out: the password / 授权码 is wrong on first setup, the server is down, or the
    process dies after the ledger write.  The next ``collect``, ``run`` poll or ``send --receipts``
    then sends it; ``sent``, ``pending`` and ``uncertain`` ones are never owed again
    (``include_uncertain`` brings the pending / uncertain ones back for ``--resend-uncertain``).

    A receipt that every one of its current recipients refused permanently (5xx, e.g. the address
    does not exist) is left out unless ``retry_refused``: each poll would only be refused again.
    When the unit's addresses are corrected (config.toml, synced into the ledger by ``init``) its
    recipients change and it is owed again.  Files with no address to answer (unit without e-mail, file from a folder) are left
    out too.  Empty when ``[collect] receipts`` is off or there is no batch yet.
    """
    if not config.collect.receipts:
        return []
    batch = ledger.batch_by_title(config.batch.title)
    if batch is None:
        return []
    states = "('failed', 'uncertain', 'pending')" if include_uncertain else "('failed')"
    rows = ledger.execute(
        "SELECT s.id, s.sha256, s.outcome, s.file_name, s.reason, s.rows_accepted, s.sender, s.message_id, "
        "s.received_at, s.unit_id, m.state AS m_state, m.detail_json AS m_detail "
        "FROM submissions s LEFT JOIN messages m ON m.idem_key = 'receipt:' || s.sha256 || ':' || s.outcome "
        f"WHERE s.batch_id = ? AND s.unit_id IS NOT NULL AND (m.id IS NULL OR m.state IN {states}) "
        "ORDER BY s.processed_at, s.id",
        (batch.id,),
    ).fetchall()
    units: dict[int, UnitRow | None] = {}
    out: list[ReceiptSource] = []
    for r in rows:
        uid = int(r["unit_id"])
        if uid not in units:
            units[uid] = ledger.unit(uid)
        unit = units[uid]
        if unit is None:
            continue
        if not _receipt_recipients(unit, r["sender"])[0]:
            continue  # no address to send it to (the registry lacks one; a folder file has no sender)
        if r["m_state"] == "failed" and not retry_refused and _refused_by_all(r["m_detail"], unit, r["sender"]):
            continue
        problems = [{k: p[k] for k in p.keys()} for p in ledger.execute(
            "SELECT severity, sheet, cell, task_number, field, message FROM problems WHERE submission_id = ? "
            "ORDER BY id", (r["id"],))]
        tasks = [int(t[0]) for t in ledger.execute(
            "SELECT task_number FROM responses WHERE submission_id = ? ORDER BY task_number", (r["id"],))]
        out.append(ReceiptSource(
            file_name=r["file_name"], sha256=r["sha256"], outcome=r["outcome"], unit=unit.name, unit_id=unit.id,
            submission_id=int(r["id"]), reason=r["reason"] or "", rows_accepted=int(r["rows_accepted"] or 0),
            tasks_accepted=tasks, problems=problems, sender=r["sender"], message_id=r["message_id"],
            received_at=r["received_at"],
        ))
    return out


def _refused_by_all(detail_json: str | None, unit: UnitRow, sender: str | None) -> bool:
    """Did the last attempt fail because every one of today's recipients refused it for good?"""
    try:
        detail = json.loads(detail_json or "{}")
    except ValueError:
        return False
    refused = {str(a).lower() for a in (detail.get("refused") or {})}
    if not detail.get("permanent") or not refused:
        return False  # transient, or nothing per recipient (login refused, server down): try again
    to, cc = _receipt_recipients(unit, sender)
    return bool(to) and {a.lower() for a in to + cc} <= refused


def _receipt_recipients(unit: UnitRow, sender: Any) -> tuple[list[str], list[str]]:
    """The unit's addresses, plus the address the file came from when it is another one."""
    to, cc = _unit_address(unit)
    address = _plain_address(sender)
    if address and address.lower() not in {a.lower() for a in to + cc}:
        to = [*to, address]
    return to, cc


def send_receipts(
    config: Config,
    ledger: Ledger,
    results: Sequence[Any],
    now: dt.datetime,
    transport: Transport,
    *,
    resend_uncertain: bool = False,
) -> list[SendResult]:
    """回执: one message per returned file from a known unit (accepted or quarantined).

    ``results`` are :class:`automation.collect.pipeline.FileResult` or :class:`ReceiptSource` (what
    :func:`pending_receipts` finds owed: the CLI and the service send those, so a receipt that
    could not go out in one run goes out in the next).  Duplicates (a file already processed)
    and files from unknown senders get none.  Idempotent per submission (file hash and outcome).
    """
    from automation.mail import letters

    if not config.collect.receipts:
        return []
    batch = ledger.batch_by_title(config.batch.title)
    out: list[SendResult] = []
    for fr in results:
        if getattr(fr, "outcome", "") not in ("accepted", "quarantined") or getattr(fr, "unit_id", None) is None:
            continue
        unit = ledger.unit(int(fr.unit_id))
        if unit is None:
            continue
        key = receipt_key(fr)
        settled = settled_result(ledger, key, now, resend_uncertain=resend_uncertain, purpose="receipt",
                                 unit=unit.name, unit_id=unit.id)
        if settled is not None:
            out.append(settled)
            continue
        letter = letters.receipt_letter(config, batch, unit, fr, now)
        to, cc = _receipt_recipients(unit, getattr(fr, "sender", None))
        if not to:
            out.append(_no_address(key, "receipt", unit, letter.subject))
            continue
        msg = compose_message(config.mail, to=to, cc=cc, subject=letter.subject, text=letter.text, html=letter.html,
                              now=now, in_reply_to=getattr(fr, "message_id", None) or None)
        out.append(send_once(ledger, transport, key, "receipt", batch.id if batch else None, unit.id, msg, now,
                             resend_uncertain=resend_uncertain, unit=unit.name,
                             detail={"file": fr.file_name, "outcome": fr.outcome,
                                     "submission_id": getattr(fr, "submission_id", None)}))
    return out


def _plain_address(value: Any) -> str:
    if not value:
        return ""
    addr = getaddresses([str(value)])[0][1]
    return addr if "@" in addr and not any(c in addr for c in "\r\n<>,;") else ""

