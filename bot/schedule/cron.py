"""Five-field cron expressions evaluated in a time zone, with explicit rules for daylight-saving changes.

Fields: minute (0-59), hour (0-23), day of month (1-31), month (1-12 or jan-dec), day of week (0-7 or
sun-sat; 0 and 7 are Sunday). Each field is `*`, a number, a range `a-b`, a step `*/n`, `a-b/n` or `a/n`
(from a to the end), or a comma-separated list of those. As in Vixie cron, when both the day of month and
the day of week are restricted (neither starts with `*`) a day matches if EITHER matches.

Wall-clock times are read in the given time zone, and a time that the clock skips or repeats fires once:
- spring forward (e.g. 02:30 in Europe/Berlin on the last Sunday of March does not exist): it fires at
  the end of the gap (03:00 local), so a daily job is never lost;
- fall back (02:30 happens twice on the last Sunday of October): it fires at the first one only.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))
MONTHS = {name: i for i, name in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep",
                                            "oct", "nov", "dec"), start=1)}
DAYS = {name: i for i, name in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
SEARCH_DAYS = 366 * 9  # a Feb 29 schedule restricted to one weekday fires within 28 years; nine is plenty here
_MINUTE = timedelta(minutes=1)
_SLACK = timedelta(hours=26)  # more than any clock change moves a wall time


class CronError(ValueError):
    """A cron expression that cannot be read; the message says which field and why."""


@dataclass(frozen=True)
class Cron:
    """A parsed expression: the allowed values of each field, and whether day fields were `*`."""

    expression: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday … 6 = Saturday
    days_star: bool
    weekdays_star: bool

    @classmethod
    def parse(cls, expression: str) -> Cron:
        """Read `expression`; CronError names the field and the problem."""
        parts = expression.split()
        if len(parts) != 5:
            raise CronError(f"a cron expression has 5 fields (minute hour day-of-month month day-of-week), "
                            f"got {len(parts)} in {expression!r}")
        values = [_field(text, *spec) for text, spec in zip(parts, FIELDS, strict=True)]
        cron = cls(expression=" ".join(parts), minutes=tuple(sorted(values[0])), hours=tuple(sorted(values[1])),
                   days=frozenset(values[2]), months=frozenset(values[3]),
                   weekdays=frozenset(d % 7 for d in values[4]),
                   days_star=parts[2].startswith("*"), weekdays_star=parts[4].startswith("*"))
        if not cron._can_fire():
            raise CronError(f"{expression!r} never fires: no month has those days")
        return cron

    def _can_fire(self) -> bool:
        if self.days_star or not self.weekdays_star:
            return True  # every month has every weekday, and `*` days exist in every month
        longest = {m: 29 if m == 2 else calendar.monthrange(2001, m)[1] for m in self.months}
        return any(d <= longest[m] for m in self.months for d in self.days)

    def matches_day(self, day: date) -> bool:
        """Whether the expression fires at some time on local date `day`."""
        if day.month not in self.months:
            return False
        dom = day.day in self.days
        dow = (day.weekday() + 1) % 7 in self.weekdays
        if self.days_star or self.weekdays_star:
            return dom and dow
        return dom or dow

    def fires_on(self, day: date, tz: tzinfo, walls_from: datetime | None = None
                 ) -> Iterator[tuple[datetime, datetime]]:
        """The (UTC instant, local wall time) of each firing on local date `day`, in order; wall times
        before `walls_from` (naive) are left out without being converted."""
        if not self.matches_day(day):
            return
        last: datetime | None = None
        for hour in self.hours:
            for minute in self.minutes:
                wall = datetime(day.year, day.month, day.day, hour, minute)
                if walls_from is not None and wall < walls_from:
                    continue
                at = instant(wall, tz)
                if at != last:  # several skipped times map to the end of the same gap: fire once
                    last = at
                    yield at, wall

    def next_after(self, after: datetime, tz: tzinfo) -> datetime:
        """The first firing strictly after `after` (an aware datetime), as an aware UTC datetime."""
        return self.next_with_wall(after, tz)[0]

    def next_with_wall(self, after: datetime, tz: tzinfo) -> tuple[datetime, datetime]:
        """The first firing strictly after `after`, and the local wall time it was scheduled for."""
        local = after.astimezone(tz).replace(tzinfo=None)
        walls_from = local - _SLACK  # a skipped wall time fires later than it says, never by more than a day
        start = walls_from.date()
        for offset in range(SEARCH_DAYS):
            for at, wall in self.fires_on(start + timedelta(days=offset), tz, walls_from):
                if at > after:
                    return at, wall
        raise CronError(f"{self.expression!r} does not fire within {SEARCH_DAYS // 366} years")

    def previous(self, at: datetime, tz: tzinfo) -> tuple[datetime, datetime] | None:
        """The last firing at or before `at`, with its local wall time; None if there is none in nine years."""
        start = at.astimezone(tz).date()
        for offset in range(SEARCH_DAYS):
            fires = [f for f in self.fires_on(start - timedelta(days=offset), tz) if f[0] <= at]
            if fires:
                return fires[-1]
        return None

    def between(self, start: datetime, end: datetime, tz: tzinfo) -> Iterator[tuple[datetime, datetime]]:
        """Every firing in (start, end], oldest first."""
        cursor = start
        while True:
            at, wall = self.next_with_wall(cursor, tz)
            if at > end:
                return
            yield at, wall
            cursor = at


def instant(wall: datetime, tz: tzinfo) -> datetime:
    """When local wall time `wall` (naive) happens in `tz`, in UTC: its first occurrence when the clock
    repeats it, the end of the gap when the clock skips it."""
    probe = wall
    for _ in range(2 * 24 * 60):  # the longest gap on record is a day (Samoa, 2011)
        at = probe.replace(tzinfo=tz).astimezone(UTC)  # fold=0: the first of two, or "before" for a gap
        if at.astimezone(tz).replace(tzinfo=None) == probe:
            return at
        probe += _MINUTE
    raise CronError(f"{wall} never happens in {tz}")


def zone(name: str) -> ZoneInfo:
    """The time zone called `name`; CronError when there is none."""
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError, OSError):
        raise CronError(f"unknown time zone {name!r}") from None


def _field(text: str, name: str, low: int, high: int) -> set[int]:
    """The values one field allows."""
    out: set[int] = set()
    for part in text.split(","):
        if not part:
            raise CronError(f"{name}: empty item in {text!r}")
        body, _, step_text = part.partition("/")
        step = _number(step_text, name, 1, high - low + 1) if step_text else 1
        if body == "*":
            first, last = low, high
        elif "-" in body:
            a, _, b = body.partition("-")
            first, last = _value(a, name, low, high), _value(b, name, low, high)
            if first > last:
                raise CronError(f"{name}: the range {body!r} runs backwards")
        else:
            first = _value(body, name, low, high)
            last = high if step_text else first  # `5/15` means 5, 20, 35, 50
        out.update(range(first, last + 1, step))
    return out


def _value(text: str, name: str, low: int, high: int) -> int:
    names = MONTHS if name == "month" else DAYS if name == "day of week" else {}
    if text.lower() in names:
        return names[text.lower()]
    return _number(text, name, low, high)


def _number(text: str, name: str, low: int, high: int) -> int:
    if not (text.isascii() and text.isdigit()):  # "²".isdigit() is true, and int("²") fails
        raise CronError(f"{name}: {text!r} is not a number")
    value = int(text)
    if not low <= value <= high:
        raise CronError(f"{name}: {value} is out of range {low}-{high}")
    return value
