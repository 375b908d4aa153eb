"""IMAP intake: units' replies with workbooks attached go to the collector by themselves.

``automation collect --imap`` and the service's polling job call :func:`collect_imap`.  One run:

1. connect, log in, send the IMAP ``ID`` command (163/126 refuse SELECT without it), select the
   folder to read;
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

import base64
import binascii
import datetime as dt
import email
import hashlib
import imaplib
import logging
import quopri
import re
import ssl
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from email.message import Message
from email.policy import Compat32
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any

from automation import clock
from automation.config import Config, ImapConfig
from automation.errors import AutomationError, ConfigError
from automation.fsutil import safe_filename
from automation.ledger import Ledger

__all__ = [
    "collect_imap",
    "IntakeResult",
    "MessageOutcome",
    "ParsedMessage",
    "Attachment",
    "parse_message",
    "decode_header_value",
    "decode_bytes",
    "imap_utf7_encode",
    "imap_utf7_decode",
    "connect_imap",
    "WORKBOOK_EXTENSIONS",
    "UNSUPPORTED_EXTENSIONS",
]

log = logging.getLogger("automation.mail.intake")

WORKBOOK_EXTENSIONS = (".xlsx", ".xls", ".xlsm", ".xlsb", ".ods")
#: WPS's own formats: reported back to the unit as "please save as .xlsx", never parsed.
UNSUPPORTED_EXTENSIONS = (".et", ".ett")

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

Collector = Callable[..., Any]
ClientFactory = Callable[[ImapConfig], imaplib.IMAP4]

# Errors that mean "the connection is gone": stop this run, lose nothing, resume next time.
_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (imaplib.IMAP4.abort, OSError, EOFError)


# =========================================================================== decoding


def decode_bytes(data: bytes, charset: str | None = None) -> str:
    """Text from bytes in a declared (often wrong) charset: declared, then UTF-8, then GB18030."""
    label = (charset or "").strip().strip('"').lower()
    declared = _CHARSET_ALIASES.get(label, label)
    for candidate in dict.fromkeys(c for c in (declared, "utf-8", "gb18030") if c):
        try:
            return data.decode(candidate)
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("gb18030", errors="replace")


_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")


def _word_bytes(encoding: str, text: str) -> bytes:
    if encoding.upper() == "B":
        text = re.sub(r"[^A-Za-z0-9+/=]", "", text)
        try:
            return base64.b64decode(text + "=" * (-len(text) % 4))
        except (binascii.Error, ValueError):
            return text.encode("ascii", "replace")
    return quopri.decodestring(text.replace("_", " ").encode("ascii", "replace"), header=True)


def decode_header_value(value: str | bytes | None) -> str:
    """Decode an RFC 2047 header value, including the sloppy forms Chinese clients send.

    Adjacent encoded words in one charset are joined *before* decoding, because some clients cut
    a GBK character in two across words; encoded words inside quotes and raw 8-bit bytes (UTF-8 or
    GBK) are accepted too.
    """
    if value is None:
        return ""
    if isinstance(value, bytes):
        value = decode_bytes(value)
    value = str(value)
    out: list[str] = []
    pending: list[bytes] = []
    pending_charset: str | None = None
    pos = 0

    def flush() -> None:
        nonlocal pending, pending_charset
        if pending:
            out.append(decode_bytes(b"".join(pending), pending_charset))
        pending, pending_charset = [], None

    for m in _ENCODED_WORD.finditer(value):
        between = value[pos:m.start()]
        charset = m.group(1).split("*", 1)[0].lower()  # RFC 2231 language suffix: utf-8*zh
        adjacent = bool(pending) and not between.strip()  # whitespace between encoded words is dropped
        if not (adjacent and charset == pending_charset):
            flush()
            if not adjacent:
                out.append(between)
        if not pending:
            pending_charset = charset
        pending.append(_word_bytes(m.group(2), m.group(3)))
        pos = m.end()
    flush()
    out.append(value[pos:])
    text = "".join(out)
    return re.sub(r"\s*[\r\n]+\s*", " ", text).strip()


class _LenientPolicy(Compat32):
    """compat32, but raw 8-bit header bytes are decoded as UTF-8 or GBK instead of left as junk."""

    def _sanitize_header(self, name: str, value: Any) -> Any:  # noqa: D401 - stdlib hook
        if isinstance(value, str) and any("\udc80" <= ch <= "\udcff" for ch in value):
            return decode_bytes(value.encode("ascii", "surrogateescape"))
        return super()._sanitize_header(name, value)


_POLICY = _LenientPolicy()


def _param(part: Message, name: str, header: str) -> str | None:
    """A MIME parameter with RFC 2231 (continuations, charset) and RFC 2047 decoded."""
    value = part.get_param(name, None, header=header)
    if value is None:
        return None
    if isinstance(value, tuple):  # RFC 2231: (charset, language, %-decoded text as latin-1)
        charset, _lang, text = value
        raw = text.encode("raw-unicode-escape") if isinstance(text, str) else bytes(text)
        return decode_bytes(raw, charset).strip()
    text = email.utils.unquote(str(value))
    return decode_header_value(text)


def imap_utf7_encode(name: str) -> str:
    """Modified UTF-7 of RFC 3501 §5.1.3, for folder names such as 督办已处理."""
    out: list[str] = []
    buf: list[str] = []

    def flush() -> None:
        if buf:
            b64 = base64.b64encode("".join(buf).encode("utf-16-be")).decode("ascii").rstrip("=")
            out.append("&" + b64.replace("/", ",") + "-")
            buf.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            buf.append(ch)
    flush()
    return "".join(out)


def imap_utf7_decode(name: str) -> str:
    def repl(m: re.Match[str]) -> str:
        body = m.group(1)
        if not body:
            return "&"
        data = body.replace(",", "/")
        return base64.b64decode(data + "=" * (-len(data) % 4)).decode("utf-16-be")

    return re.sub(r"&([^-]*)-", repl, name)


# =========================================================================== parsed messages


@dataclass(frozen=True)
class Attachment:
    """One attachment: its decoded display name, safe file name, kind and bytes.

    ``kind``: ``workbook`` (to the collector), ``unsupported`` (.et: to the collector, which
    refuses it with a clear reason) or ``other`` (PDF scans and the like: left alone).
    """

    original_name: str
    name: str
    kind: str
    content_type: str
    data: bytes = field(repr=False)


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


def _message_key(msg: Message) -> str:
    """The Message-ID, or a stable stand-in from Date/From/Subject when a client sent none."""
    mid = (msg.get("Message-ID") or msg.get("Message-Id") or "").strip()
    m = re.search(r"<[^<>\s]+>", mid)
    if m:
        return m.group(0)
    if mid:
        return mid.split()[0]
    basis = "\n".join(str(msg.get(h) or "") for h in ("Date", "From", "Subject"))
    return f"<no-message-id-{hashlib.sha256(basis.encode('utf-8', 'surrogatepass')).hexdigest()[:32]}@duban>"


def _sender(msg: Message) -> tuple[str, str]:
    for header in ("From", "Sender", "Reply-To"):
        raw = msg.get(header)
        if not raw:
            continue
        pairs = getaddresses([decode_header_value(str(raw))])
        for name, addr in pairs:
            if addr and "@" in addr:
                return addr.strip().lower(), name.strip()
    return "", ""


def _attachment_name(part: Message) -> str | None:
    name = _param(part, "filename", "content-disposition") or _param(part, "name", "content-type")
    return name or None


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


def parse_message(raw: bytes) -> ParsedMessage:
    """Decode one RFC 822 message (never raises on malformed input; oddities become best guesses)."""
    msg = email.message_from_bytes(raw, policy=_POLICY)
    sender, sender_name = _sender(msg)
    subject = decode_header_value(str(msg.get("Subject") or ""))
    try:
        date = parsedate_to_datetime(str(msg.get("Date"))) if msg.get("Date") else None
        if date is not None:
            date = clock.local(date) if date.tzinfo else date.replace(tzinfo=dt.UTC).astimezone(clock.TZ)
    except (TypeError, ValueError, IndexError):
        date = None
    body = ""
    attachments: list[Attachment] = []
    index = 0
    for part in msg.walk():
        if part.is_multipart():
            continue
        content_type = part.get_content_type().lower()
        name = _attachment_name(part)
        disposition = (part.get("Content-Disposition") or "").split(";", 1)[0].strip().lower()
        if name is None and content_type.startswith("text/") and disposition != "attachment":
            if not body or (content_type == "text/plain" and not body.strip()):
                payload = part.get_payload(decode=True) or b""
                text = decode_bytes(payload, part.get_content_charset())
                if content_type == "text/html":
                    text = re.sub(r"<[^>]+>", " ", text)
                body = re.sub(r"[ \t\r\f\v]+", " ", text).strip()
            continue
        if name is None and content_type not in _CONTENT_TYPE_EXT:
            continue
        index += 1
        original, safe, kind = _classify(name, content_type, index)
        data = part.get_payload(decode=True) or b""
        attachments.append(Attachment(original, safe, kind, content_type, data))
    return ParsedMessage(_message_key(msg), sender, sender_name, subject, date, body, tuple(attachments))


# =========================================================================== results


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


# =========================================================================== the IMAP session


def _ssl_context(cfg: ImapConfig) -> ssl.SSLContext:
    if not cfg.ca_file:
        return ssl.create_default_context()
    try:
        return ssl.create_default_context(cafile=cfg.ca_file)
    except FileNotFoundError as exc:
        raise ConfigError(f"config.toml：[imap] ca_file 指定的证书文件 {cfg.ca_file} 不存在。") from exc
    except ssl.SSLError as exc:
        raise ConfigError(f"config.toml：[imap] ca_file {cfg.ca_file} 不是 PEM 格式的证书（{exc}）。") from exc


def connect_imap(cfg: ImapConfig) -> imaplib.IMAP4:
    """A connected, not yet authenticated client for ``[imap]`` (ssl / starttls / none)."""
    context = _ssl_context(cfg) if cfg.security in ("ssl", "starttls") else None
    if cfg.security == "ssl":
        return imaplib.IMAP4_SSL(cfg.host, cfg.port, ssl_context=context, timeout=cfg.timeout)
    client = imaplib.IMAP4(cfg.host, cfg.port, timeout=cfg.timeout)
    if cfg.security == "starttls":
        try:
            client.starttls(context)
        except BaseException:
            client.shutdown()
            raise
    return client


def _quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _ok(typ: str, data: Sequence[Any], what: str) -> Sequence[Any]:
    if typ != "OK":
        detail = b" ".join(d for d in data if isinstance(d, bytes)).decode("utf-8", "replace")
        raise imaplib.IMAP4.error(f"{what}: {typ} {detail}")
    return data


_INTERNALDATE = re.compile(rb'INTERNALDATE "\s*(\d{1,2}-[A-Za-z]{3}-\d{4} \d\d:\d\d:\d\d [+-]\d{4})"')
_UID = re.compile(rb"\bUID (\d+)")


def _internaldate(meta: bytes) -> dt.datetime | None:
    m = _INTERNALDATE.search(meta)
    if not m:
        return None
    try:
        return clock.local(dt.datetime.strptime(m.group(1).decode("ascii"), "%d-%b-%Y %H:%M:%S %z"))
    except ValueError:
        return None


def _fetch_records(data: Iterable[Any]) -> list[tuple[bytes, bytes]]:
    """(metadata, literal) per message of a FETCH response; metadata includes text after the literal."""
    records: list[list[bytes]] = []
    for item in data:
        if isinstance(item, tuple):
            records.append([item[0], item[1] if len(item) > 1 else b""])
        elif isinstance(item, bytes) and records:
            records[-1][0] += b" " + item
    return [(meta, body) for meta, body in records]


class _Session:
    """One logged-in IMAP connection with the few commands intake needs."""

    def __init__(self, cfg: ImapConfig, factory: ClientFactory | None, password: str) -> None:
        self.cfg = cfg
        where = f"{cfg.host}:{cfg.port}"
        try:
            self.client = (factory or connect_imap)(cfg)
        except ssl.SSLCertVerificationError as exc:
            raise AutomationError(
                f"收信服务器 {where} 的证书无法验证（{exc.verify_message or exc}）。内网邮箱使用自建证书时，请把信息中心"
                "提供的根证书（PEM）填入 [imap] ca_file。") from exc
        except (OSError, imaplib.IMAP4.error) as exc:
            raise AutomationError(f"无法连接收信服务器 {where}（{exc}）。请检查 [imap] host、port、security "
                                  "和网络（内网邮箱请确认服务器地址）。") from exc
        try:
            _ok(*self.client.login(cfg.user, password), "LOGIN")
        except imaplib.IMAP4.abort as exc:
            self.close()
            raise AutomationError(f"收信服务器 {where} 断开了连接（{exc}）。") from exc
        except imaplib.IMAP4.error as exc:
            self.close()
            raise AutomationError(
                f"邮箱 {cfg.user} 登录失败（{exc}）。请检查 [imap] user 和环境变量 {cfg.password_env} 中的密码；"
                "QQ/163/126 邮箱须在网页设置中开启 IMAP 服务并使用“授权码”而不是登录密码。") from exc
        self.capabilities = self._capabilities()
        self._send_id()
        self.folder_arg = _quote(imap_utf7_encode(cfg.folder))
        try:
            _ok(*self.client.select(self.folder_arg), f"SELECT {cfg.folder}")
        except imaplib.IMAP4.abort:
            self.close()
            raise
        except imaplib.IMAP4.error as exc:
            self.close()
            raise AutomationError(f"邮箱中打不开文件夹“{cfg.folder}”（{exc}）。请检查 [imap] folder。") from exc
        self._processed_ready = False

    def _capabilities(self) -> set[str]:
        try:
            typ, data = self.client.capability()
        except imaplib.IMAP4.abort:
            raise
        except imaplib.IMAP4.error:
            return {c.upper() for c in self.client.capabilities}
        words = b" ".join(d for d in data if isinstance(d, bytes)).decode("ascii", "replace").upper().split()
        return set(words) | {c.upper() for c in self.client.capabilities}

    def _send_id(self) -> None:
        """RFC 2971 ID: 163/126 answer "Unsafe Login" to SELECT from a client that did not identify itself."""
        from automation import __version__

        args = f'("name" "duban-automation" "version" "{__version__}" "vendor" "duban")'
        try:
            self.client.xatom("ID", args)
        except imaplib.IMAP4.abort:
            raise
        except imaplib.IMAP4.error as exc:  # a server without ID: nothing to do
            log.debug("IMAP ID refused: %s", exc)

    def unseen(self) -> list[str]:
        data = _ok(*self.client.uid("SEARCH", None, "UNSEEN"), "SEARCH UNSEEN")
        return [u.decode("ascii") for d in data if isinstance(d, bytes) for u in d.split()]

    def headers(self, uids: Sequence[str]) -> dict[str, tuple[str, dt.datetime | None]]:
        """uid → (message key, INTERNALDATE) for many messages, in chunks, without downloading bodies."""
        out: dict[str, tuple[str, dt.datetime | None]] = {}
        for i in range(0, len(uids), 200):
            chunk = ",".join(uids[i:i + 200])
            data = _ok(*self.client.uid(
                "FETCH", chunk, "(UID INTERNALDATE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID FROM DATE SUBJECT)])"),
                "FETCH headers")
            for meta, literal in _fetch_records(data):
                m = _UID.search(meta)
                if m:
                    msg = email.message_from_bytes(literal, policy=_POLICY)
                    out[m.group(1).decode("ascii")] = (_message_key(msg), _internaldate(meta))
        return out

    def fetch(self, uid: str) -> bytes | None:
        data = _ok(*self.client.uid("FETCH", uid, "(UID BODY.PEEK[])"), f"FETCH {uid}")
        for _meta, literal in _fetch_records(data):
            return literal
        return None

    def _ensure_processed_folder(self) -> str:
        target = _quote(imap_utf7_encode(self.cfg.processed_folder))
        if not self._processed_ready:
            typ, data = self.client.list('""', target)
            exists = typ == "OK" and any(d for d in data if d)
            if not exists:
                _ok(*self.client.create(target), f"CREATE {self.cfg.processed_folder}")
                log.info("已在邮箱中创建文件夹“%s”", self.cfg.processed_folder)
                try:
                    self.client.subscribe(target)
                except imaplib.IMAP4.abort:
                    raise
                except imaplib.IMAP4.error:
                    pass
            self._processed_ready = True
        return target

    def move(self, uid: str) -> None:
        """Move one message to the processed folder (MOVE, else COPY + \\Deleted (+ UID EXPUNGE))."""
        if not self.cfg.processed_folder:
            _ok(*self.client.uid("STORE", uid, "+FLAGS.SILENT", r"(\Seen)"), f"STORE {uid}")
            return
        target = self._ensure_processed_folder()
        if "MOVE" in self.capabilities:
            _ok(*self.client.uid("MOVE", uid, target), f"MOVE {uid}")
            return
        _ok(*self.client.uid("COPY", uid, target), f"COPY {uid}")
        _ok(*self.client.uid("STORE", uid, "+FLAGS.SILENT", r"(\Deleted \Seen)"), f"STORE {uid}")
        if "UIDPLUS" in self.capabilities:
            _ok(*self.client.uid("EXPUNGE", uid), f"UID EXPUNGE {uid}")

    def close(self) -> None:
        try:
            self.client.logout()
        except Exception:  # noqa: BLE001 - a dead connection is closed either way
            try:
                self.client.shutdown()
            except Exception:  # noqa: BLE001
                pass


# =========================================================================== the ledger side


def _state(ledger: Ledger, key: str) -> str | None:
    row = ledger.execute("SELECT state FROM imap_messages WHERE message_id = ?", (key,)).fetchone()
    return row["state"] if row else None


def _record(ledger: Ledger, key: str, now: dt.datetime, state: str, *, folder: str = "", uid: str = "",
            sender: str | None = None, subject: str | None = None, note: str | None = None,
            processed: bool = False) -> None:
    with ledger.transaction():
        ledger.execute(
            "INSERT INTO imap_messages(message_id, folder, uid, sender, subject, state, note, seen_at, processed_at) "
            "VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT(message_id) DO UPDATE SET state = excluded.state, "
            "folder = excluded.folder, uid = excluded.uid, "
            "sender = COALESCE(excluded.sender, imap_messages.sender), "
            "subject = COALESCE(excluded.subject, imap_messages.subject), "
            "note = COALESCE(excluded.note, imap_messages.note), "
            "processed_at = COALESCE(excluded.processed_at, imap_messages.processed_at)",
            (key, folder, uid, sender, subject, state, note, clock.iso(now),
             clock.iso(now) if processed else None),
        )


# =========================================================================== the run


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
    session = _Session(cfg, client_factory, password)
    try:
        uids = session.unseen()
        heads = session.headers(uids) if uids else {}
        for uid in uids:
            if uid not in heads:
                continue
            key, internal = heads[uid]
            state = _state(ledger, key)
            if state == "ignored":
                result.skipped += 1
                continue
            outcome = MessageOutcome(message_id=key, uid=uid)
            result.messages.append(outcome)
            if state in ("collected", "moved"):
                outcome.state = "already"
                outcome.note = "此前已收取（Message-ID 相同），不重复收取"
                _move(session, ledger, outcome, now, cfg.folder)
                continue
            _collect_message(session, config, ledger, now, collect, outcome, internal)
    except _CONNECTION_ERRORS as exc:
        result.error = f"与收信服务器的连接中断（{type(exc).__name__}: {exc}）；已收取的文件都已入账，下次收取时继续"
    finally:
        session.close()
    return result


def _collect_message(session: _Session, config: Config, ledger: Ledger, now: dt.datetime, collect: Collector,
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
        _record(ledger, outcome.message_id, now, "ignored", folder=folder, uid=outcome.uid)
        return
    # The server's arrival time orders two replies of one unit; a sender's clock is a poor second.
    received = min(internal or parsed.date or now, now)
    _record(ledger, outcome.message_id, now, "collecting", folder=folder, uid=outcome.uid,
            sender=parsed.sender, subject=parsed.subject)
    for att in parsed.workbooks:
        if att.kind == "unsupported":
            outcome.unsupported.append(att.name)
        try:
            outcome.files.append(collect(
                config, ledger, att.name, att.data, now, source="imap", sender=parsed.sender or None,
                message_id=outcome.message_id, received_at=received,
            ))
        except Exception as exc:  # disk full, a collector bug: keep the message for the next run, go on
            log.exception("处理 %s 发来的附件“%s”时出错，邮件留在原文件夹，下次重试", parsed.sender, att.name)
            outcome.state = "failed"
            outcome.note = f"附件“{att.name}”处理出错（{type(exc).__name__}: {exc}），邮件留在原文件夹，下次重试"
            _record(ledger, outcome.message_id, now, "collecting", folder=folder, uid=outcome.uid,
                    note=outcome.note)
            return
    outcome.state = "collected"
    names = "、".join(a.name for a in parsed.workbooks)
    _record(ledger, outcome.message_id, now, "collected", folder=folder, uid=outcome.uid,
            note=f"附件：{names}", processed=True)
    _move(session, ledger, outcome, now, folder)


def _move(session: _Session, ledger: Ledger, outcome: MessageOutcome, now: dt.datetime, folder: str) -> None:
    try:
        session.move(outcome.uid)
    except imaplib.IMAP4.abort:
        raise
    except imaplib.IMAP4.error as exc:
        outcome.note = (outcome.note + "；" if outcome.note else "") + f"移动邮件失败（{exc}），下次收取时再移"
        log.warning("邮件 %s 移入已处理文件夹失败：%s（下次收取时再移）", outcome.message_id, exc)
        return
    outcome.moved = True
    _record(ledger, outcome.message_id, now, "moved", folder=folder, uid=outcome.uid, processed=True)
