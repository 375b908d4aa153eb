"""One attachment type for mail going out (a workbook issued) and coming in (a workbook returned)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Attachment", "XLSX_TYPE", "WORKBOOK_EXTENSIONS", "UNSUPPORTED_EXTENSIONS"]

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
WORKBOOK_EXTENSIONS = (".xlsx", ".xls", ".xlsm", ".xlsb", ".ods")
#: WPS's own formats: reported back to the unit as "please save as .xlsx", never parsed.
UNSUPPORTED_EXTENSIONS = (".et", ".ett")


@dataclass(frozen=True)
class Attachment:
    """A file in a message: its file name (Chinese is fine), bytes and MIME type.

    Going out, ``filename`` is the name the unit sees.  Coming in (:func:`automation.mail.parsing.parse_message`),
    ``filename`` is a safe file name made from ``original_name`` (what the sender's client wrote,
    decoded; never used as a path), and ``kind`` says where it goes: ``workbook`` (to the
    collector), ``unsupported`` (.et: to the collector, which refuses it with a clear reason) or
    ``other`` (PDF scans and the like: left alone).
    """

    filename: str
    data: bytes = field(repr=False)
    content_type: str = XLSX_TYPE
    original_name: str = ""
    kind: str = ""

    @classmethod
    def from_path(cls, path: str | Path, filename: str | None = None, content_type: str = XLSX_TYPE) -> Attachment:
        p = Path(path)
        return cls(filename or p.name, p.read_bytes(), content_type)
