"""The worker protocol: length-prefixed frames on the worker's stdin and stdout, cells as JSON.

A request is ``<Q total length>``, ``<I header length>``, a JSON header (``name``, ``wanted``
sheets) and the file's bytes.  A reply is ``<Q length>`` and JSON: the parsed book, or a refusal
(its reason, code, and whether the parser itself failed).  Never pickle: a compromised worker
must not be able to run code in the parent.  Dates and times travel as tagged objects.
"""

from __future__ import annotations

import datetime as dt
import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from automation.collect.safety.limits import ParseFailed, Refused

__all__ = ["ParsedSheet", "ParsedBook", "read_frame", "write_frame", "frame_prefix", "request_head",
           "decode_request", "encode_book", "encode_refusal", "decode_reply", "split_frames"]


@dataclass
class ParsedSheet:
    name: str
    visible: str                     # visible / hidden / veryhidden
    rows: list[list[Any]] = field(default_factory=list)
    #: (0-based row, column) → formula text (``=1+1``) of each formula the file has no value for
    #: (saved by openpyxl, a script or a web export); such a cell reads as blank in ``rows``.
    formulas: dict[tuple[int, int], str] = field(default_factory=dict)


@dataclass
class ParsedBook:
    kind: str
    sheets: list[ParsedSheet]

    def sheet(self, name: str) -> ParsedSheet | None:
        return next((s for s in self.sheets if s.name == name), None)


def _encode_cell(value: Any) -> Any:
    """JSON ``default`` hook: dates and times as tagged objects (str/int/float/bool pass as is)."""
    if isinstance(value, dt.datetime):
        return {"dt": value.isoformat()}
    if isinstance(value, dt.date):
        return {"d": value.isoformat()}
    if isinstance(value, dt.time):
        return {"t": value.isoformat()}
    if isinstance(value, dt.timedelta):
        return {"td": value.total_seconds()}
    return str(value)


def _decode_tag(obj: dict[str, Any]) -> Any:
    if "d" in obj:
        return dt.date.fromisoformat(obj["d"])
    if "dt" in obj:
        return dt.datetime.fromisoformat(obj["dt"])
    if "t" in obj:
        return dt.time.fromisoformat(obj["t"])
    if "td" in obj:
        return dt.timedelta(seconds=obj["td"])
    return obj


# -- frames


def frame_prefix(length: int) -> bytes:
    """What goes before a frame of ``length`` bytes."""
    return struct.pack("<Q", length)


def split_frames(buf: bytearray, max_len: int) -> tuple[list[bytes], bool]:
    """Take the whole frames off the front of ``buf`` (in place); True when a frame claims more
    than ``max_len`` (a worker gone wrong: its output must end here, nothing is buffered)."""
    frames: list[bytes] = []
    while len(buf) >= 8:
        (n,) = struct.unpack_from("<Q", buf)
        if n > max_len:
            return frames, True
        if len(buf) < 8 + n:
            break
        frames.append(bytes(buf[8:8 + n]))
        del buf[:8 + n]
    return frames, False


def read_frame(stream: Any, max_len: int | None = None) -> bytes | None:
    """One length-prefixed frame; None at the end of the stream, a cut frame or one longer than
    ``max_len`` (a worker gone wrong must not make the parent allocate what it claims)."""
    head = stream.read(8)
    if len(head) < 8:
        return None
    (n,) = struct.unpack("<Q", head)
    if max_len is not None and n > max_len:
        return None
    body = stream.read(n)
    return body if len(body) == n else None


def write_frame(stream: Any, payload: bytes) -> None:
    stream.write(struct.pack("<Q", len(payload)) + payload)
    stream.flush()


# -- requests (parent → worker)


def request_head(name: str, wanted: Sequence[str]) -> bytes:
    """A request's header; the frame is ``frame_prefix(len(head) + len(data)) + head + data``."""
    header = json.dumps({"name": name[-200:], "wanted": list(wanted)}).encode("utf-8")
    return struct.pack("<I", len(header)) + header


def decode_request(frame: bytes) -> tuple[str, list[str], bytes]:
    """(file name, wanted sheets, the file's bytes) of a request frame."""
    header_len = struct.unpack_from("<I", frame)[0]
    request = json.loads(frame[4:4 + header_len])
    return request.get("name", ""), list(request.get("wanted", ())), frame[4 + header_len:]


# -- replies (worker → parent)


def encode_book(book: ParsedBook) -> bytes:
    reply = {"ok": True, "kind": book.kind,
             "sheets": [{"name": s.name, "visible": s.visible, "rows": s.rows,
                         **({"formulas": [[r, c, f] for (r, c), f in s.formulas.items()]} if s.formulas else {})}
                        for s in book.sheets]}
    return json.dumps(reply, ensure_ascii=False, default=_encode_cell).encode("utf-8")


def encode_refusal(reason: str, code: str, failed: bool) -> bytes:
    """A refused file (``failed``: the parser itself failed, timed out or died on it)."""
    reply: dict[str, Any] = {"ok": False, "reason": reason, "code": code}
    if failed:
        reply["failed"] = True
    return json.dumps(reply, ensure_ascii=False).encode("utf-8")


def decode_reply(frame: bytes) -> ParsedBook | Refused:
    """The parsed book, or the refusal to raise; a reply that cannot be read is the worker's failure."""
    try:
        reply = json.loads(frame.decode("utf-8"), object_hook=_decode_tag)
    except (ValueError, UnicodeDecodeError):
        return ParseFailed("读取程序返回了无法识别的结果，未处理。", "crash")
    if not reply.get("ok"):
        cls = ParseFailed if reply.get("failed") else Refused
        return cls(str(reply.get("reason", "文件无法读取。")), str(reply.get("code", "unreadable")))
    try:
        return ParsedBook(reply["kind"], [
            ParsedSheet(s["name"], s["visible"], s["rows"],
                        {(int(r), int(c)): str(f) for r, c, f in s.get("formulas", ())})
            for s in reply["sheets"]])
    except (KeyError, TypeError, ValueError):
        return ParseFailed("读取程序返回了无法识别的结果，未处理。", "crash")
