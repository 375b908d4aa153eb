"""Chinese working days: statutory holidays and 调休 working weekends.

chinese-calendar knows each year's official arrangement once the State Council publishes it
(it covers up to 2026 at the time of writing) and raises ``NotImplementedError`` for later
years.  For those we fall back to Monday–Friday and warn once per year; config.toml's
``[remind] extra_holidays`` / ``extra_workdays`` override both (local rules, or the next year's
arrangement before the library catches up).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable

__all__ = ["WorkCalendar"]

log = logging.getLogger(__name__)


class WorkCalendar:
    """Answers "is this a working day?" and counts working days between dates."""

    def __init__(self, extra_holidays: Iterable[dt.date] = (), extra_workdays: Iterable[dt.date] = ()) -> None:
        self.extra_holidays = frozenset(extra_holidays)
        self.extra_workdays = frozenset(extra_workdays)
        self.fallback_years: set[int] = set()
        self._cache: dict[dt.date, bool] = {}

    @classmethod
    def from_config(cls, remind: object) -> WorkCalendar:
        return cls(getattr(remind, "extra_holidays", ()), getattr(remind, "extra_workdays", ()))

    def is_workday(self, day: dt.date) -> bool:
        if isinstance(day, dt.datetime):
            day = day.date()
        if day in self.extra_workdays:
            return True
        if day in self.extra_holidays:
            return False
        hit = self._cache.get(day)
        if hit is None:
            hit = self._official(day)
            self._cache[day] = hit
        return hit

    def _official(self, day: dt.date) -> bool:
        import chinese_calendar

        try:
            return bool(chinese_calendar.is_workday(day))
        except NotImplementedError:
            if day.year not in self.fallback_years:
                self.fallback_years.add(day.year)
                log.warning(
                    "chinese-calendar 未收录 %s 年的节假日安排，按周一至周五计算工作日；"
                    "可在 config.toml [remind] extra_holidays / extra_workdays 中补充。", day.year,
                )
            return day.weekday() < 5

    def workdays_between(self, start: dt.date, end: dt.date) -> int:
        """Working days in (start, end]: 0 when end <= start."""
        if end <= start:
            return 0
        n = 0
        day = start + dt.timedelta(days=1)
        while day <= end:
            n += self.is_workday(day)
            day += dt.timedelta(days=1)
        return n

    def add_workdays(self, day: dt.date, n: int) -> dt.date:
        """The date ``n`` working days after (n > 0) or before (n < 0) ``day``."""
        step = 1 if n >= 0 else -1
        remaining = abs(n)
        while remaining:
            day += dt.timedelta(days=step)
            if self.is_workday(day):
                remaining -= 1
        return day

    def next_workday(self, day: dt.date, include: bool = True) -> dt.date:
        """The first working day on or after ``day`` (after, when ``include`` is false)."""
        if not include:
            day += dt.timedelta(days=1)
        while not self.is_workday(day):
            day += dt.timedelta(days=1)
        return day
