"""Retention selection (bot/schedule/retention.py): examples, then properties checked by hypothesis."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings, strategies as st

from commands.retention import RULES, Backup, daily_day, period, select

COUNTS = {"daily": 7, "weekly": 4, "monthly": 12, "yearly": 3}


def daily(day: date, n: int = 1) -> str:
    return f"daily-{day:%Y%m%d}" + (f"-{n}" if n > 1 else "")


def good(day: date, verified: bool = True, n: int = 1) -> Backup:
    return Backup(daily(day, n), "created", archived=True, verified=verified)


def test_ids() -> None:
    assert daily_day("daily-20261129") == (date(2026, 11, 29), 1)
    assert daily_day("daily-20261129-3") == (date(2026, 11, 29), 3)
    for other in ("manual-20261129-101500", "daily-2026112", "daily-20261332", "pre-upgrade-20261121",
                  "Daily-20261129"):
        assert daily_day(other) is None


def test_periods() -> None:
    d = date(2026, 11, 29)  # a Sunday: ISO week 48
    assert [period(r, d) for r in RULES] == ["2026-11-29", "2026-W48", "2026-11", "2026"]
    assert period("weekly", date(2027, 1, 1)) == "2026-W53"  # ISO weeks cross the new year
    with pytest.raises(ValueError):
        period("hourly", d)


def test_a_year_of_dailies_keeps_7_daily_4_weekly_12_monthly_3_yearly() -> None:
    today = date(2026, 11, 29)
    backups = [good(today - timedelta(days=i)) for i in range(800)]
    plan = select(backups, COUNTS)
    kept = sorted(plan.keep, reverse=True)
    # 7 days, then Sundays of 3 more weeks, then month ends back to Dec 2025, then the year ends of 2024 and 2023
    assert kept[:7] == [daily(today - timedelta(days=i)) for i in range(7)]
    assert kept[7:10] == ["daily-20261122", "daily-20261115", "daily-20261108"]
    assert "daily-20261031" in kept and "daily-20251231" in kept and "daily-20241231" in kept
    assert plan.keep["daily-20261129"] == ("daily 1/7 (2026-11-29)", "weekly 1/4 (2026-W48)",
                                           "monthly 1/12 (2026-11)", "yearly 1/3 (2026)",
                                           "the newest verified archive copy")
    assert len(plan.keep) + len(plan.delete) == 800
    assert plan.delete["daily-20261120"] == "not among the newest 7 daily, 4 weekly, 12 monthly and 3 yearly"


def test_the_newest_verified_copy_stays_whatever_the_counts() -> None:
    today = date(2026, 11, 29)
    backups = [good(today, verified=False), good(today - timedelta(days=1), verified=False),
               good(today - timedelta(days=9), verified=True)]
    plan = select(backups, {"daily": 1})
    assert set(plan.keep) == {daily(today), daily(today - timedelta(days=9))}
    assert plan.keep[daily(today - timedelta(days=9))] == ("the newest verified archive copy",)
    assert select(backups, {"daily": 0}).keep == {daily(today - timedelta(days=9)): (
        "the newest verified archive copy",)}


def test_failed_ones_take_no_slot_and_go_once_older_than_the_daily_window() -> None:
    today = date(2026, 11, 29)
    backups = [good(today), Backup(daily(today - timedelta(days=1)), "failed"), good(today - timedelta(days=2)),
               Backup(daily(today - timedelta(days=3)), "failed"), good(today - timedelta(days=4)),
               Backup(daily(today - timedelta(days=5)), "", archived=True, verified=False)]
    plan = select(backups, {"daily": 2})
    assert set(plan.keep) == {daily(today), daily(today - timedelta(days=1)), daily(today - timedelta(days=2))}
    assert plan.delete[daily(today - timedelta(days=3))].startswith("failed on the manager (failed)")
    assert plan.delete[daily(today - timedelta(days=5))].startswith("its archive copy failed its check")
    assert plan.delete[daily(today - timedelta(days=4))].startswith("not among the newest 2 daily")


def test_never_touches_other_snapshots_or_ones_being_created() -> None:
    today = date(2026, 11, 29)
    backups = [good(today), Backup("manual-20200101-000000", "created"), Backup("pre-upgrade-20200101", "failed"),
               Backup(daily(today - timedelta(days=30)), "creating")]
    plan = select(backups, {"daily": 1})
    assert plan.ignored == ("manual-20200101-000000", "pre-upgrade-20200101")
    assert plan.keep[daily(today - timedelta(days=30))][-1] == "still being created"
    assert not plan.delete


def test_a_retry_on_the_same_day_is_the_day_s_newest() -> None:
    today = date(2026, 11, 29)
    plan = select([good(today), good(today, n=2)], {"daily": 3})
    assert set(plan.keep) == {daily(today, 2)} and daily(today) in plan.delete
    plan = select([good(today), good(today, n=2, verified=False)], {"daily": 3})  # …unless it is the verified one
    assert plan.keep == {daily(today, 2): ("daily 1/3 (2026-11-29)",),
                         daily(today): ("the newest verified archive copy",)}


def test_unknown_rule() -> None:
    with pytest.raises(ValueError, match="hourly"):
        select([], {"hourly": 3})


# --- properties ---------------------------------------------------------------------------------------------

STATUSES = ("created", "created", "created", "failed", "creating", "uploaded", "")
backup = st.builds(
    lambda offset, retry, status, archived, verified: Backup(
        daily(date(2026, 11, 29) - timedelta(days=offset), retry), status, archived or verified, verified),
    st.integers(0, 1200), st.integers(1, 2), st.sampled_from(STATUSES), st.booleans(), st.booleans())
other = st.builds(lambda n, status: Backup(f"manual-{n}", status), st.integers(0, 50), st.sampled_from(STATUSES))
backups = st.lists(st.one_of(backup, backup, backup, other), max_size=60, unique_by=lambda b: b.snapshot_id)
counts = st.fixed_dictionaries({r: st.integers(0, 8) for r in RULES})


@settings(max_examples=200, deadline=None)
@given(backups, counts)
def test_properties(items, rules) -> None:
    plan = select(items, rules)
    ids = {b.snapshot_id for b in items}
    dailies = {b.snapshot_id for b in items if daily_day(b.snapshot_id)}
    # every daily backup is decided exactly once; nothing else is ever deleted
    assert set(plan.keep) | set(plan.delete) == dailies
    assert not set(plan.keep) & set(plan.delete)
    assert set(plan.delete) <= dailies and set(plan.ignored) == ids - dailies
    # the newest verified archive copy is always kept
    verified = [b for b in items if b.verified and daily_day(b.snapshot_id)]
    if verified:
        newest = max(verified, key=lambda b: b.order)
        assert newest.snapshot_id in plan.keep
    # counts: each rule keeps at most its count, one per period, and only good backups
    by_id = {b.snapshot_id: b for b in items}
    for rule in RULES:
        kept = [(sid, why) for sid, reasons in plan.keep.items() for why in reasons if why.startswith(rule + " ")]
        assert len(kept) <= rules[rule]
        assert len({period(rule, by_id[sid].day) for sid, _ in kept}) == len(kept)
        assert all(by_id[sid].good for sid, _ in kept)
    # good backups beyond the counts (and the newest verified one) go: at most sum(counts) + 1 good ones stay,
    # besides those still being created
    assert sum(by_id[s].good and by_id[s].status != "creating" for s in plan.keep) <= sum(rules.values()) + 1
    # nothing that is still being created is deleted
    assert not any(by_id[s].status == "creating" for s in plan.delete)
    # idempotent: applying the plan, then planning again, deletes nothing more
    again = select([by_id[s] for s in ids if s not in plan.delete], rules)
    assert not again.delete and set(again.keep) == set(plan.keep)
