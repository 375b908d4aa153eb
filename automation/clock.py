"""Time in one place: every timestamp is Asia/Shanghai, whatever the host's zone.

Functions throughout the package take ``now`` as a parameter; only the CLI and the service
call :func:`now` to get the real time, so tests pass fixed values and never sleep.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

TZ = ZoneInfo("Asia/Shanghai")


def now() -> dt.datetime:
    """The current time in Asia/Shanghai (aware)."""
    return dt.datetime.now(TZ)


def local(value: dt.datetime) -> dt.datetime:
    """An aware datetime in Asia/Shanghai; naive values are taken to be Shanghai time already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=TZ)
    return value.astimezone(TZ)


def iso(value: dt.datetime) -> str:
    """Sortable ISO text with offset, second precision (what the ledger stores)."""
    return local(value).isoformat(timespec="seconds")


def parse(text: str) -> dt.datetime:
    """Parse ISO text (``2026-10-09T09:00`` or with offset) into Shanghai time."""
    return local(dt.datetime.fromisoformat(text.strip()))
