"""Chinese working days: statutory holidays and 调休 working weekends.

Three sources, in order:

1. config.toml's ``[remind] extra_holidays`` / ``extra_workdays`` (local rules, or the 调休 the
   State Council publishes each winter for the coming year) override everything;
2. chinese-calendar, which knows each year's official arrangement once it is published, 调休
   included (it covers 2004–2026 at the time of writing, and raises ``NotImplementedError`` after);
3. for later years the ``holidays`` package's China calendar, which knows the statutory holidays
   (元旦, 春节, 清明, 劳动节, 端午, 中秋, 国庆) years ahead, and the 调休 days once they are published.
   Until a year's 调休 is known, its weekends count as days off: we warn once per year, so the office
   adds the working weekends to ``extra_workdays`` when the State Council announces them.

A year neither library knows falls back to Monday–Friday, with a warning.  No statutory holiday
is ever a working day unless config.toml says so.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterable

__all__ = ["WorkCalendar"]

log = logging.getLogger(__name__)

# holidays names a day off moved from a weekend "Day off (substituted from 01/04/2026)": that weekend
# day is a working day.
_SUBSTITUTED = re.compile(r"substituted from (\d{2})/(\d{2})/(\d{4})")


class WorkCalendar:
    """Answers "is this a working day?" and counts working days between dates."""

    def __init__(self, extra_holidays: Iterable[dt.date] = (), extra_workdays: Iterable[dt.date] = ()) -> None:
        self.extra_holidays = frozenset(extra_holidays)
        self.extra_workdays = frozenset(extra_workdays)
        self.fallback_years: set[int] = set()
        self._cache: dict[dt.date, bool] = {}
        self._years: dict[int, tuple[frozenset[dt.date], frozenset[dt.date]] | None] = {}

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
            pass
        known = self._holidays_year(day.year)
        if known is None:
            return day.weekday() < 5
        holidays, workdays = known
        if day in workdays:
            return True
        return day.weekday() < 5 and day not in holidays

    def _holidays_year(self, year: int) -> tuple[frozenset[dt.date], frozenset[dt.date]] | None:
        """(statutory days off, 调休 working weekends) of a year chinese-calendar lacks, from the
        holidays package; warns once per year about what is not known yet."""
        if year in self._years:
            return self._years[year]
        import holidays

        table = holidays.China(years=year)
        off = frozenset(d for d in table if d.year == year)
        work = frozenset(dt.date(int(m[3]), int(m[1]), int(m[2])) for name in table.values()
                         for m in _SUBSTITUTED.finditer(name))
        result: tuple[frozenset[dt.date], frozenset[dt.date]] | None = (off, work)
        self.fallback_years.add(year)
        if not off:
            result = None
            log.warning("%s 年的节假日安排未知（chinese-calendar 和 holidays 均未收录），按周一至周五计算工作日；"
                        "请在 config.toml [remind] extra_holidays / extra_workdays 中补充。", year)
        elif not work:
            log.warning("chinese-calendar 未收录 %s 年的节假日安排：法定节假日按 holidays 库计算，调休上班的周末尚未公布"
                        "（暂按周一至周五工作、周末休息计）。国务院公布后，请把调休上班日写入 config.toml [remind] "
                        "extra_workdays。", year)
        self._years[year] = result
        return result

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
