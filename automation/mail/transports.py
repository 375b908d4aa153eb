"""Transports: where a composed message goes — the outbox folder, or an SMTP server.

- :class:`OutboxTransport` writes ``<workspace>/outbox/<key>.eml`` atomically (the default:
  nothing leaves the machine);
- :class:`SmtpTransport` uses yagmail only for the connection and login and hands it our own
  bytes, with a per-minute throttle, retries with exponential backoff on transient failures (4xx,
  dropped connections) and per-recipient permanent failures (5xx) that do not stop the other
  recipients.

Every transport is a context manager that closes its connection on the way out:
``with transport_from_config(config, workspace) as transport: …``.
"""

from __future__ import annotations

import base64
import logging
import smtplib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any, Protocol

from automation.config import Config, MailConfig
from automation.errors import AutomationError, ConfigError
from automation.fsutil import atomic_write_bytes, safe_filename
from automation.mail.compose import message_bytes, recipients_of
from automation.workspace import Workspace

__all__ = ["Delivery", "TransportError", "MailAuthError", "MailConnectionError", "Transport", "OutboxTransport",
           "SmtpTransport", "transport_from_config"]

log = logging.getLogger(__name__)


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
    """What the mailings need of a transport: send one message, close, and ``with`` for both."""

    name: str

    def send(self, message: Message, idem_key: str) -> Delivery: ...

    def close(self) -> None: ...

    def __enter__(self) -> Transport: ...

    def __exit__(self, *exc: object) -> None: ...


class _Closing:
    """``with transport: …`` closes it, however the block ends."""

    def close(self) -> None:
        pass

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _key_filename(idem_key: str) -> str:
    return safe_filename(idem_key.replace(":", "_"), max_len=150) + ".eml"


class OutboxTransport(_Closing):
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


def _reply(code: int, text: bytes | str) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return f"{code} {text}".strip()


class SmtpTransport(_Closing):
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


def transport_from_config(config: Config, workspace: Workspace | str | Path | None = None) -> Transport:
    """The transport ``[mail] mode`` asks for (use it in a ``with`` block: it closes itself).

    ``workspace``: a :class:`~automation.workspace.Workspace`, its root path, or None for the
    configured workspace; outbox mode writes to its ``outbox`` folder.
    """
    if config.mail.mode == "smtp":
        return SmtpTransport.from_config(config.mail)
    if not isinstance(workspace, Workspace):  # a plain path is the root itself
        workspace = Workspace(config.workspace if workspace is None else Path(workspace))
    return OutboxTransport(workspace.outbox)
