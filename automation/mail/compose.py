"""Composition: the MIME message every mailing sends, with Chinese names that every client shows.

A ``multipart/mixed`` message with a real ``text/plain`` alternative next to the ``text/html``
one, and attachments whose Chinese names display in QQ Mail, Foxmail and Outlook.  yagmail (the
design card's choice) gets three things wrong for us: it turns every newline into ``<br>``, sends
the HTML as the plain-text part and names attachments only one way.  So we build the MIME
ourselves with the ``compat32`` policy (the modern policy re-folds parameters and even RFC
2047-encodes long content types) and give every attachment both an RFC 2231 ``filename*`` and an
RFC 2047 ``name=`` (what Outlook and older Foxmail read).  The Message-ID is made here, before
sending, so the ledger can store it first (:mod:`automation.mail.sending`).
"""

from __future__ import annotations

import datetime as dt
import io
import secrets
import urllib.parse
from collections.abc import Sequence
from email import encoders, policy
from email.generator import BytesGenerator
from email.header import Header, decode_header, make_header
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr, getaddresses

from automation import clock
from automation.config import MailConfig
from automation.errors import ConfigError
from automation.fsutil import safe_filename
from automation.mail.attachment import Attachment
from automation.model import UnitRow

__all__ = ["compose_message", "make_message_id", "message_bytes", "recipients_of", "headers_of", "set_message_id",
           "unit_recipients"]

_POLICY = policy.compat32.clone(linesep="\r\n")


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


def headers_of(message: Message) -> tuple[str, list[str], list[str]]:
    """(decoded Subject, To addresses, Cc addresses) of a composed message, as the ledger records them."""
    subject = str(make_header(decode_header(str(message.get("Subject", "")))))
    to = [a for _n, a in getaddresses([str(v) for v in message.get_all("To") or []]) if a]
    cc = [a for _n, a in getaddresses([str(v) for v in message.get_all("Cc") or []]) if a]
    return subject, to, cc


def set_message_id(msg: Message, message_id: str) -> None:
    """Give a message another Message-ID (a resend keeps the first one, so clients show one copy)."""
    del msg["Message-ID"]
    msg["Message-ID"] = message_id


def unit_recipients(unit: UnitRow) -> tuple[list[str], list[str]]:
    """(To, Cc) for a unit: its addresses, and its cc addresses that are not among them."""
    return list(unit.emails), [c for c in unit.cc if c.lower() not in {e.lower() for e in unit.emails}]
