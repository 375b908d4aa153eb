"""The records every layer shares: a task of the table, a batch, a registered unit.

They are plain data with no behaviour that needs a ledger or a file, so the loader, the
ledger, the builder, the collector and the report can all speak of the same things without
importing each other.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Task", "Batch", "UnitRow", "Problem", "SEVERITIES"]

#: How bad a problem is: error (not used), warning (used, please check), info (repaired or noted).
SEVERITIES = ("error", "warning", "info")


@dataclass
class Task:
    """One task of the table, normalised.  ``raw`` keeps the source cells for traceability."""

    number: int
    section: str | None
    section_title: str | None
    subsection: str | None
    subsection_title: str | None
    title: str
    requirement: str
    lead: list[str]
    responsible: list[str]
    status: str
    deadline: str | None
    #: The deadline as an ISO date where ``deadline`` names one (「6月底前」 → 2021-06-30), else None.
    #: Keyword-only with a default so records built before it existed still construct; it sits
    #: beside ``deadline`` in ``to_json``.
    due_date: str | None = field(default=None, kw_only=True)
    unit_notes: dict[str, str]
    extra: dict[str, str]
    source_row: int
    raw: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The public ``tasks show --json`` shape (exactly these keys)."""
        d = asdict(self)
        d.pop("raw")
        return d

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Task:
        known = {k: data.get(k) for k in cls.__dataclass_fields__}
        known["raw"] = data.get("raw") or {}
        known["unit_notes"] = data.get("unit_notes") or {}
        known["extra"] = data.get("extra") or {}
        return cls(**known)



@dataclass(frozen=True)
class Batch:
    id: int
    uid: str
    title: str
    year: int
    deadline: dt.date
    secret: bytes
    revision: int
    created_at: str


@dataclass(frozen=True)
class UnitRow:
    id: int
    name: str
    kind: str
    emails: tuple[str, ...]
    cc: tuple[str, ...]
    aliases: tuple[str, ...]
    contact: str
    phone: str


@dataclass(frozen=True)
class Problem:
    """Something in an input that was refused, doubted or repaired, and where it is.

    One type for every input: a task table (``row`` and ``raw``: the source line and its text),
    a returned workbook (``sheet``, ``cell``, ``task_number``, ``field``).  The message is Chinese,
    for the office staff or the unit, and says what to do.
    """

    message: str
    severity: str = "error"
    sheet: str | None = None
    cell: str | None = None
    task_number: int | None = None
    field: str | None = None
    row: int | None = None
    raw: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
