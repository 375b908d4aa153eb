"""Reporting rounds (定期报送): which period an answer belongs to, and each period's deadline.

A batch may ask units to report their progress on a cadence until its deadline (config.toml
``[rounds]``: monthly on a day, quarterly, or a list of dates).  The rounds are derived, never
stored: from the cadence, the day the batch was created and the batch deadline, so changing
``[rounds]`` re-reads the ledger's answers under the new periods without a migration.

- Round *k* has a deadline ``d_k``; the cadence's dates after the batch was created and before
  the batch deadline, then the batch deadline itself, which always closes the last round.
- An answer belongs to the round in which it was *received*: round 1 takes everything received
  on or before ``d_1``, round *k* what came after ``d_{k-1}`` up to the end of ``d_k``, and the
  last round also what comes after the batch deadline (late answers).
- Without ``[rounds]`` (``cadence = "none"``) the batch is one round, so every view can speak of
  rounds without a special case.

Foundation module: it imports only the config.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from automation.config import RoundsConfig

__all__ = ["Round", "batch_rounds", "round_of", "current_round", "round_cutoff"]

_QUARTER_MONTHS = (3, 6, 9, 12)


@dataclass(frozen=True)
class Round:
    """One reporting period: answers received after ``start`` (exclusive; None = from the beginning)
    up to the end of ``deadline``; the last round also takes what comes after."""

    number: int
    start: dt.date | None       # the previous round's deadline (answers on that day belong to it)
    deadline: dt.date
    last: bool = False

    @property
    def name(self) -> str:
        return f"第{self.number}期"

    def label(self) -> str:
        """第3期（3月25日截止）"""
        return f"{self.name}（{self.deadline.month}月{self.deadline.day}日截止）"

    def holds(self, day: dt.date) -> bool:
        """Does an answer received on ``day`` belong to this round?"""
        return (self.start is None or day > self.start) and (self.last or day <= self.deadline)

    def to_json(self) -> dict[str, object]:
        return {"number": self.number, "name": self.name, "start": self.start.isoformat() if self.start else None,
                "deadline": self.deadline.isoformat(), "last": self.last}


def _day_of(year: int, month: int, day: int) -> dt.date:
    return dt.date(year, month, min(day, calendar.monthrange(year, month)[1]))


def _cadence_dates(cfg: RoundsConfig, first: dt.date, deadline: dt.date) -> list[dt.date]:
    if cfg.cadence == "dates":
        return list(cfg.dates)
    if cfg.cadence not in ("monthly", "quarterly"):
        return []
    out = []
    year, month = first.year, first.month
    while (year, month) <= (deadline.year, deadline.month):
        if cfg.cadence == "monthly" or month in _QUARTER_MONTHS:
            out.append(_day_of(year, month, cfg.day))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def batch_rounds(cfg: RoundsConfig, created: dt.date, deadline: dt.date) -> list[Round]:
    """The batch's rounds, in order; at least one (the batch itself)."""
    dates = [d for d in _cadence_dates(cfg, created, deadline) if created < d < deadline] if cfg.enabled else []
    dates.append(deadline)
    rounds = []
    previous: dt.date | None = None
    for i, d in enumerate(dates, start=1):
        rounds.append(Round(i, previous, d, last=i == len(dates)))
        previous = d
    return rounds


def round_of(rounds: Sequence[Round], day: dt.date) -> Round:
    """The round an answer received on ``day`` belongs to."""
    for r in rounds:
        if r.holds(day):
            return r
    return rounds[-1]


def current_round(rounds: Sequence[Round], today: dt.date) -> Round:
    """The round under way on ``today`` (the last one once the batch deadline has passed)."""
    return next((r for r in rounds if today <= r.deadline), rounds[-1])


def round_cutoff(r: Round) -> dt.date:
    """The first day *after* the round (answers received before it are in this round or earlier)."""
    return r.deadline + dt.timedelta(days=1)
