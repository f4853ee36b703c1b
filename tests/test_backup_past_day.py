"""`backups run --day PAST` takes today's data, so the snapshot is named by today and the past day's run records
it; a snapshot made on the past day itself is still adopted under its own name (QA s13 #8)."""

from __future__ import annotations

from datetime import timedelta

from sim_fixtures import START, daily_name


def test_a_past_day_s_new_snapshot_is_named_by_the_day_it_is_taken(make_bot) -> None:
    bot = make_bot(seed=False)
    today = daily_name(START.timestamp(), 0)
    past = (START - timedelta(days=2)).date().isoformat()
    past_name = daily_name(START.timestamp(), 2)
    code, out = bot.run(f"backups run --day {past}")
    assert code == 0, out
    assert f"named {today}, not after {past}" in out
    assert f"Daily backup {today} of production created, copied off and verified, for the run of {past}" in out
    assert past_name not in bot.sim.state.snapshots["default_tenant"]
    assert bot.store.get_run("production", past)["snapshot_id"] == today
    code, out = bot.run("backups prune --dry-run")
    assert past_name not in out
    code, out = bot.run("backups run")  # today's own run finds today's snapshot and keeps it
    assert code == 0 and f"already has {today}" in out, out
    assert bot.store.latest_verified("production").snapshot_id == today


def test_a_snapshot_made_on_the_past_day_is_adopted_under_its_name(make_bot) -> None:
    bot = make_bot()  # seeded: the manager has daily snapshots of the past days
    yesterday = daily_name(START.timestamp(), 1)
    assert yesterday in bot.sim.state.snapshots["default_tenant"]
    day = f"{yesterday[6:10]}-{yesterday[10:12]}-{yesterday[12:14]}"
    code, out = bot.run(f"backups run --day {day}")
    assert code == 0 and f"already has {yesterday}" in out, out
    assert bot.store.get_run("production", day)["snapshot_id"] == yesterday
