"""Cron expressions in a time zone: parsing, next/previous firings, and what happens when clocks change."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings, strategies as st

from bot.schedule.cron import Cron, CronError, instant, zone
from bot.schedule.timetable import Schedule

BERLIN = zone("Europe/Berlin")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def fires(expr: str, start: datetime, end: datetime, tz=BERLIN) -> list[datetime]:
    return [at for at, _ in Cron.parse(expr).between(start, end, tz)]


@pytest.mark.parametrize("expr, problem", [
    ("0 2 * *", "5 fields"),
    ("0 2 * * * *", "5 fields"),
    ("60 2 * * *", "minute: 60 is out of range 0-59"),
    ("0 24 * * *", "hour: 24 is out of range 0-23"),
    ("0 2 0 * *", "day of month: 0 is out of range 1-31"),
    ("0 2 * 13 *", "month: 13 is out of range 1-12"),
    ("0 2 * * 8", "day of week: 8 is out of range 0-7"),
    ("*/0 2 * * *", "minute: 0 is out of range"),
    ("0 5-2 * * *", "runs backwards"),
    ("0 x * * *", "hour: 'x' is not a number"),
    ("0 2,,3 * * *", "empty item"),
    ("0 0 30 2 *", "never fires"),
    ("0 0 31 apr,jun *", "never fires"),
])
def test_bad_expressions_say_what_is_wrong(expr, problem) -> None:
    with pytest.raises(CronError, match=problem):
        Cron.parse(expr)


def test_fields_steps_ranges_lists_and_names() -> None:
    c = Cron.parse("*/15 1-3,22 * JAN-mar mon-fri")
    assert c.minutes == (0, 15, 30, 45) and c.hours == (1, 2, 3, 22)
    assert c.months == {1, 2, 3} and c.weekdays == {1, 2, 3, 4, 5}
    assert Cron.parse("5/20 0 * * *").minutes == (5, 25, 45)
    assert Cron.parse("0 0 * * 7").weekdays == {0} == Cron.parse("0 0 * * sun").weekdays
    assert Cron.parse("0 0 29 2 *").next_after(utc(2026, 1, 1), UTC) == utc(2028, 2, 29)


def test_day_of_month_or_day_of_week_when_both_are_restricted() -> None:
    # Vixie cron: "the 13th, or any Friday"
    days = {at.date() for at in fires("0 12 13 * fri", utc(2026, 2, 1), utc(2026, 3, 1), UTC)}
    assert days == {date(2026, 2, 6), date(2026, 2, 13), date(2026, 2, 20), date(2026, 2, 27)}
    # with `*` in one of them, both must match: Fridays that are the 13th
    assert [at.date() for at in fires("0 12 13 * *", utc(2026, 2, 1), utc(2026, 3, 1), UTC)] == [date(2026, 2, 13)]
    assert [at.date() for at in fires("0 12 */1 * fri", utc(2026, 2, 1), utc(2026, 2, 14), UTC)] == [
        date(2026, 2, 6), date(2026, 2, 13)]


def test_daily_in_a_time_zone() -> None:
    c = Cron.parse("0 2 * * *")
    assert c.next_after(utc(2026, 11, 29, 9), BERLIN) == utc(2026, 11, 30, 1)  # 02:00 CET
    assert c.next_after(utc(2026, 7, 1, 9), BERLIN) == utc(2026, 7, 2, 0)  # 02:00 CEST
    assert c.next_after(utc(2026, 11, 30, 1), BERLIN) == utc(2026, 12, 1, 1)  # strictly after
    assert c.previous(utc(2026, 11, 30, 1), BERLIN)[0] == utc(2026, 11, 30, 1)  # at or before
    assert c.previous(utc(2026, 11, 30, 0, 59), BERLIN)[0] == utc(2026, 11, 29, 1)


def test_spring_forward_a_skipped_time_fires_once_at_the_end_of_the_gap() -> None:
    # 2026-03-29 in Berlin: 02:00 CET jumps to 03:00 CEST, so 02:30 does not exist that day
    got = fires("30 2 * * *", utc(2026, 3, 27), utc(2026, 3, 31))
    assert got == [utc(2026, 3, 27, 1, 30), utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30)]
    assert got[2].astimezone(BERLIN).strftime("%H:%M %Z") == "03:00 CEST"
    # every minute of the gap maps to the same instant: one firing, not sixty
    assert fires("* 2 29 3 *", utc(2026, 3, 28), utc(2026, 3, 30)) == [utc(2026, 3, 29, 1, 0)]
    # the schedule day stays the 29th (daily-20260329)
    schedule = Schedule(Cron.parse("30 2 * * *"), BERLIN, "Europe/Berlin")
    assert [f.day for f in schedule.between(utc(2026, 3, 28, 12), utc(2026, 3, 29, 12))] == [date(2026, 3, 29)]


def test_fall_back_a_repeated_time_fires_once_at_its_first_occurrence() -> None:
    # 2026-10-25 in Berlin: 03:00 CEST goes back to 02:00 CET, so 02:30 happens twice
    got = fires("30 2 * * *", utc(2026, 10, 24), utc(2026, 10, 27))
    assert got == [utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]
    c = Cron.parse("30 2 * * *")
    assert c.next_after(utc(2026, 10, 25, 0, 45), BERLIN) == utc(2026, 10, 26, 1, 30)  # not the second 02:30
    # an hourly schedule fires 24 times in that 25-hour day: once per wall-clock hour, the repeated one once
    assert len(fires("0 * * * *", utc(2026, 10, 24, 21, 59), utc(2026, 10, 25, 22, 59))) == 24


def test_instant_of_wall_times() -> None:
    assert instant(datetime(2026, 3, 29, 2, 30), BERLIN) == utc(2026, 3, 29, 1)
    assert instant(datetime(2026, 10, 25, 2, 30), BERLIN) == utc(2026, 10, 25, 0, 30)
    assert instant(datetime(2026, 1, 1, 0, 0), zone("UTC")) == utc(2026, 1, 1)


def test_unknown_time_zone() -> None:
    with pytest.raises(CronError, match="unknown time zone"):
        zone("Mars/Olympus")


def test_schedule_next_runs_are_one_per_day() -> None:
    schedule = Schedule(Cron.parse("0 2,14 * * *"), BERLIN, "Europe/Berlin")
    runs = schedule.next_runs(utc(2026, 11, 29, 9), 3)  # 10:00 CET: today's 14:00, then the first of each day
    assert [f.day for f in runs] == [date(2026, 11, 29), date(2026, 11, 30), date(2026, 12, 1)]
    assert [f.at for f in runs] == [utc(2026, 11, 29, 13), utc(2026, 11, 30, 1), utc(2026, 12, 1, 1)]


ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "America/Santiago"]
field = st.one_of(st.just("*"), st.integers(0, 5).map(str), st.integers(2, 7).map(lambda n: f"*/{n}"))


@settings(max_examples=60, deadline=None)
@given(minute=st.sampled_from(["0", "30", "15,45", "*/20"]), hour=st.sampled_from(["2", "0-3", "*/6", "23"]),
       dom=st.sampled_from(["*", "1", "1-15", "*/3"]), dow=st.sampled_from(["*", "0", "1-5", "sat"]),
       tz=st.sampled_from(ZONES), start=st.datetimes(datetime(2024, 1, 1), datetime(2030, 1, 1)))
def test_next_after_is_the_first_matching_firing(minute, hour, dom, dow, tz, start) -> None:
    c, z = Cron.parse(f"{minute} {hour} {dom} * {dow}"), zone(tz)
    after = start.replace(tzinfo=UTC)
    at, wall = c.next_with_wall(after, z)
    assert at > after
    assert c.matches_day(wall.date()) and wall.hour in c.hours and wall.minute in c.minutes
    assert at == instant(wall, z)  # it happens when that wall time first happens (or when its gap ends)
    prev = c.previous(at - timedelta(microseconds=1), z)
    assert prev is None or prev[0] <= after  # nothing fires in between
    assert c.previous(at, z)[0] == at
