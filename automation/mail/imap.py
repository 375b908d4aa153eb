"""The IMAP session: connect, log in, identify (RFC 2971 ID), select, and the few commands intake needs.

Plain :mod:`imaplib`, not imap-tools' ``MailBox``: its ``move`` falls back to a plain
``EXPUNGE`` that also purges every other message the office flagged deleted in the folder (we
expunge our own UID only, with UIDPLUS), it has no ``ID`` command (163/126 refuse to open a folder
without it) and it fetches whole header blocks without ``INTERNALDATE``.  imap-tools does give
us the modified UTF-7 of folder names (:mod:`imap_tools.imap_utf7`).
"""

from __future__ import annotations

import datetime as dt
import imaplib
import logging
import re
import ssl
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from imap_tools.imap_utf7 import utf7_decode, utf7_encode

from automation import clock
from automation.config import ImapConfig
from automation.errors import AutomationError, ConfigError
from automation.mail.parsing import message_key, parse_headers

__all__ = ["ImapSession", "ClientFactory", "connect_imap", "imap_utf7_encode", "imap_utf7_decode",
           "CONNECTION_ERRORS"]

log = logging.getLogger("automation.mail.intake")

ClientFactory = Callable[[ImapConfig], imaplib.IMAP4]

#: Errors that mean "the connection is gone": stop this run, lose nothing, resume next time.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (imaplib.IMAP4.abort, OSError, EOFError)


def imap_utf7_encode(name: str) -> str:
    """Modified UTF-7 of RFC 3501 §5.1.3, for folder names such as 督办已处理."""
    return utf7_encode(name).decode("ascii")


def imap_utf7_decode(name: str) -> str:
    return utf7_decode(name.encode("ascii"))


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


class ImapSession:
    """One logged-in IMAP connection with the few commands intake needs; ``with`` logs out at the end."""

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
            _ok(*self.client.select(self.folder_arg), f"select {cfg.folder}")
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
        """RFC 2971 ID: 163/126 answer "Unsafe Login" to ``select`` from a client that did not identify itself."""
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
                    out[m.group(1).decode("ascii")] = (message_key(parse_headers(literal)), _internaldate(meta))
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

    def __enter__(self) -> ImapSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.client.logout()
        except Exception:  # noqa: BLE001 - a dead connection is closed either way
            try:
                self.client.shutdown()
            except Exception:  # noqa: BLE001
                pass
