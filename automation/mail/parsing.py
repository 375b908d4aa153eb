"""Reading a received message: sender, subject, date and attachments, decoded as Chinese mail clients send them.

The standard ``email`` package does the parsing (:data:`email.policy.default`: RFC 2231
parameters and their continuations, encoded words inside quoted names, transfer encodings,
``get_filename``, ``get_body``, ``get_content``).  We add only what it cannot do, in one policy:

- raw 8-bit header bytes (GBK or UTF-8 names and subjects without any encoding) are decoded as
  UTF-8, then GB18030; the library turns them into U+FFFD;
- adjacent encoded words in one charset are joined *before* decoding, because old clients cut a
  GBK character in two across words (the library decodes each word on its own);
- charset labels are read leniently: Chinese clients label GBK text gb2312 (a subset) or give
  an unknown label; everything GB is read as GB18030, and a failing label falls back to UTF-8,
  then GB18030 (the library decodes by the label and replaces what does not fit).

Nothing here raises on malformed input: oddities become best guesses.
"""

from __future__ import annotations

import base64
import datetime as dt
import email
import hashlib
import re
from dataclasses import dataclass
from email.contentmanager import ContentManager
from email.errors import HeaderParseError
from email.header import decode_header
from email.message import EmailMessage, Message
from email.policy import EmailPolicy
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any, cast

from automation import clock
from automation.fsutil import safe_filename
from automation.mail.attachment import UNSUPPORTED_EXTENSIONS, WORKBOOK_EXTENSIONS, Attachment

__all__ = ["ParsedMessage", "parse_message", "parse_headers", "message_key", "decode_bytes", "decode_header_value",
           "POLICY"]

# Content types that identify a workbook whose attachment carries no usable name.
_CONTENT_TYPE_EXT = {
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
    "application/vnd.ms-excel": ".xls",
    "application/vnd.ms-excel.sheet.macroenabled.12": ".xlsm",
    "application/vnd.oasis.opendocument.spreadsheet": ".ods",
    "application/kset": ".et",
    "application/vnd.ms-works": ".et",
}

# Chinese mail clients label GBK text as gb2312 (a subset) or give no charset at all;
# gb18030 is a superset of both, so every such label is read as gb18030.
_CHARSET_ALIASES = {
    "gb2312": "gb18030", "gb_2312": "gb18030", "gb_2312-80": "gb18030", "euc-cn": "gb18030", "euccn": "gb18030",
    "x-euc-cn": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "cp936": "gb18030", "ms936": "gb18030",
    "windows-936": "gb18030", "chinese": "gb18030", "csgb2312": "gb18030", "big5": "big5hkscs",
    "us-ascii": "utf-8", "ascii": "utf-8", "ansi_x3.4-1968": "utf-8", "utf8": "utf-8",
    "unknown-8bit": "", "x-unknown": "", "unknown": "", "default": "",
}


def decode_bytes(data: bytes, charset: str | None = None) -> str:
    """Text from bytes in a declared (often wrong) charset: declared, then UTF-8, then GB18030.

    Kept by hand: no library decodes by a label and falls back when the label is wrong.
    """
    label = (charset or "").strip().strip('"').lower().split("*", 1)[0]  # RFC 2231 language: utf-8*zh
    declared = _CHARSET_ALIASES.get(label, label)
    for candidate in dict.fromkeys(c for c in (declared, "utf-8", "gb18030") if c):
        try:
            return data.decode(candidate)
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("gb18030", errors="replace")


def decode_header_value(value: str | bytes | None) -> str:
    """Decode an RFC 2047 header value, including the sloppy forms Chinese clients send.

    Each run of adjacent encoded words goes to :func:`email.header.decode_header`, which joins
    the words of one charset before they are decoded (a GBK character cut in two across words
    comes out whole); the bytes are then decoded with :func:`decode_bytes`.  Raw 8-bit bytes
    (UTF-8 or GBK) are accepted too; a word whose base64 is broken stays as it came.
    """
    if value is None:
        return ""
    if isinstance(value, bytes):
        value = decode_bytes(value)
    text = _WORD_RUN.sub(lambda m: _decode_run(m.group(0)), str(value))
    return re.sub(r"\s*[\r\n]+\s*", " ", text).strip()


def _decode_run(run: str) -> str:
    try:
        parts = decode_header(run)
    except HeaderParseError:  # a broken base64 word: the others on their own, that one as it came
        words = _WORD.findall(run)
        return "".join(_decode_run(w) for w in words) if len(words) > 1 else run
    # Only encoded words are in a run (the whitespace between them is dropped by decode_header).
    return "".join(decode_bytes(part, charset) if charset else part.decode("ascii", "replace")
                   for part, charset in parts if isinstance(part, bytes))


# A run of encoded words with only whitespace between them (decoded as one, see decode_header_value).
_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")
_WORD_RUN = re.compile(rf"{_WORD.pattern}(?:\s+{_WORD.pattern})*")


def _utf8_word(match: re.Match[str]) -> str:
    text = decode_header_value(match.group(0))
    return "=?utf-8?b?" + base64.b64encode(text.encode("utf-8")).decode("ascii") + "?="


class _ChineseMailPolicy(EmailPolicy):
    """:data:`email.policy.default`, reading header bytes and encoded words as Chinese clients write them."""

    def header_source_parse(self, sourcelines: list[str]) -> tuple[str, str]:
        name, value = super().header_source_parse(sourcelines)
        if any("\udc80" <= ch <= "\udcff" for ch in value):  # raw 8-bit bytes, kept as surrogates by the parser
            value = decode_bytes(value.encode("ascii", "surrogateescape"))
        return name, value

    def header_fetch_parse(self, name: str, value: Any) -> Any:
        if not hasattr(value, "name") and "=?" in value:
            # Each run of encoded words becomes one UTF-8 word: joined before decoding, charset read
            # leniently, and still an encoded word, so addresses and parameters parse as before.
            value = _WORD_RUN.sub(_utf8_word, value)
        return super().header_fetch_parse(name, value)


def _text_content(part: Message, errors: str = "replace") -> str:
    return decode_bytes(part.get_payload(decode=True) or b"", part.get_content_charset())


_CONTENT = ContentManager()
_CONTENT.add_get_handler("text", _text_content)
for _maintype in ("audio", "image", "video", "application"):
    _CONTENT.add_get_handler(_maintype, lambda part: part.get_payload(decode=True) or b"")

#: The policy every received message is parsed with.
POLICY = _ChineseMailPolicy(content_manager=_CONTENT)


@dataclass(frozen=True)
class ParsedMessage:
    message_id: str
    sender: str
    sender_name: str
    subject: str
    date: dt.datetime | None
    body: str
    attachments: tuple[Attachment, ...]

    @property
    def workbooks(self) -> list[Attachment]:
        return [a for a in self.attachments if a.kind in ("workbook", "unsupported")]


def _raw(msg: Message, name: str) -> str:
    """A header as it came (8-bit bytes decoded), without the header parser's normalising."""
    wanted = name.lower()
    return next((str(v) for k, v in msg.raw_items() if k.lower() == wanted), "")


def message_key(msg: Message) -> str:
    """The Message-ID, or a stable stand-in from Date/From/Subject when a client sent none.

    Read from the raw headers, so a key stays the one earlier versions stored in the ledger.
    """
    mid = _raw(msg, "Message-ID").strip()
    m = re.search(r"<[^<>\s]+>", mid)
    if m:
        return m.group(0)
    if mid:
        return mid.split()[0]
    basis = "\n".join(_raw(msg, h) for h in ("Date", "From", "Subject"))
    return f"<no-message-id-{hashlib.sha256(basis.encode('utf-8', 'surrogatepass')).hexdigest()[:32]}@duban>"


def _sender(msg: EmailMessage) -> tuple[str, str]:
    """(address, display name) from From, else Sender, else Reply-To.

    The header parser first (display names with commas, quoted parts); when it finds no address
    in a malformed header, :func:`email.utils.getaddresses` on the decoded text still often does.
    """
    for header in ("From", "Sender", "Reply-To"):
        raw = _raw(msg, header)
        if not raw:
            continue
        try:
            pairs = [(a.display_name, a.addr_spec) for a in msg[header].addresses]
        except (AttributeError, HeaderParseError, IndexError, ValueError):
            pairs = []
        for name, addr in [*pairs, *getaddresses([decode_header_value(raw)])]:
            if addr and "@" in addr:
                return addr.strip().lower(), name.strip()
    return "", ""


def _date(msg: Message) -> dt.datetime | None:
    raw = _raw(msg, "Date")
    if not raw:
        return None
    try:
        date = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    return clock.local(date) if date.tzinfo else date.replace(tzinfo=dt.UTC).astimezone(clock.TZ)


def _body(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    text = str(part.get_content())
    if part.get_content_type() == "text/html":
        text = re.sub(r"<[^>]+>", " ", text)
    return re.sub(r"[ \t\r\f\v]+", " ", text).strip()


def _classify(name: str | None, content_type: str, index: int) -> tuple[str, str, str]:
    """(original name, safe name, kind) for one MIME part."""
    original = (name or "").strip()
    ext_by_type = _CONTENT_TYPE_EXT.get(content_type)
    base = original.replace("\\", "/").rsplit("/", 1)[-1]
    suffix = ("." + base.rsplit(".", 1)[-1].lower()) if "." in base else ""
    if suffix not in WORKBOOK_EXTENSIONS + UNSUPPORTED_EXTENSIONS and ext_by_type:
        # "市财政局反馈" sent as an xlsx content type: give it the extension it must have.
        base = (base or f"附件{index}") + ext_by_type
        suffix = ext_by_type
    if suffix in WORKBOOK_EXTENSIONS:
        kind = "workbook"
    elif suffix in UNSUPPORTED_EXTENSIONS:
        kind = "unsupported"
    else:
        kind = "other"
    safe = safe_filename(base, default=f"附件{index}")
    return original or base, safe, kind


def _attachments(msg: EmailMessage) -> list[Attachment]:
    """Every named part, and every workbook-typed part without a name, in message order.

    Walks every part (not :meth:`~email.message.EmailMessage.iter_attachments`, which stops at the
    top level): a workbook inside a forwarded message or a nested multipart is found too.
    """
    out: list[Attachment] = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        content_type = part.get_content_type().lower()
        name = part.get_filename() or None
        if name is None and (content_type.startswith("text/") and not part.is_attachment()
                             or content_type not in _CONTENT_TYPE_EXT):
            continue  # the body, or an unnamed part that is not a workbook
        original, safe, kind = _classify(name, content_type, len(out) + 1)
        out.append(Attachment(safe, part.get_payload(decode=True) or b"", content_type, original, kind))
    return out


def parse_headers(raw: bytes) -> Message:
    """The headers of a message (all of it, or a header block from an IMAP ``FETCH``), parsed."""
    return email.message_from_bytes(raw, policy=POLICY)


def parse_message(raw: bytes) -> ParsedMessage:
    """Decode one RFC 822 message (never raises on malformed input; oddities become best guesses)."""
    msg = cast(EmailMessage, email.message_from_bytes(raw, policy=POLICY))
    sender, sender_name = _sender(msg)
    subject = re.sub(r"\s*[\r\n]+\s*", " ", str(msg.get("Subject") or "")).strip()
    return ParsedMessage(message_key(msg), sender, sender_name, subject, _date(msg), _body(msg),
                         tuple(_attachments(msg)))
