"""Every line true (issue 15): counts count what they say, empty answers say why, hints run as printed, one time
format, no Slack markup or doubled tone words in the terminal."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from sim_fixtures import daily_name


def test_a_page_past_the_end_says_what_exists(make_bot) -> None:
    bot = make_bot()
    total = len(bot.sim.state.snapshots["default_tenant"])
    code, out = bot.run("snapshots list -o 100")
    assert code == 0 and "No snapshots at offset 100" in out
    assert f"production has {total} snapshots, so offsets 0 to {total - 1} hold them" in out
    code, out = bot.run("snapshots list -o 1 -s 2")
    assert code == 0 and f"2-3 of {total} snapshots on production" in out


def test_impossible_page_values_are_refused(make_bot) -> None:
    bot = make_bot()
    code, out = bot.run("snapshots list -s 0")
    assert code == 2 and "--pagination-size must be between 1 and 1000, got 0" in out
    code, out = bot.run("snapshots list -o -3")
    assert code == 2 and "--pagination-offset must not be negative" in out


def test_a_search_without_match_is_not_an_empty_manager(make_bot) -> None:
    bot = make_bot(managers=("production", "staging"))
    total = len(bot.sims["staging"].state.snapshots["default_tenant"])
    code, out = bot.run("snapshots list --search zzz -m staging")
    assert code == 0 and "No snapshots on staging." not in out
    assert f"No snapshot id on staging contains 'zzz'; staging has {total} snapshots in all." in out


def test_an_empty_tenant_says_what_the_other_tenants_hold_and_t_with_a_is_refused(make_bot) -> None:
    """QA #38: `-t` and `-a` are mutually exclusive, as in cfy 7.0.5 (`[-t T | -a]`); an empty tenant is not an
    empty manager."""
    bot = make_bot()
    total = len(bot.sim.state.snapshots["default_tenant"])
    assert not bot.sim.state.snapshots.get("prod-apps")
    for command in ("snapshots list -t prod-apps -a", "deployments list -a -t prod-apps",
                    "executions list -t prod-apps -a"):
        code, out = bot.run(command)
        assert code == 2 and "give either -t/--tenant-name or -a/--all-tenants, not both" in out, (command, out)
    code, out = bot.run("snapshots list -t prod-apps")
    assert code == 0, out
    assert (f"No snapshots on production (tenant prod-apps). Other tenants: default_tenant {total}; "
            "`snapshots list -a` lists them all, `snapshots list -t default_tenant` one tenant.") in out, out
    code, out = bot.run("snapshots list -t default_tenant")  # the hint runs as printed
    assert code == 0 and f"{total} snapshots on production (tenant default_tenant)" in out, out


def test_hints_name_the_manager_when_it_is_not_the_default(make_bot, clock) -> None:
    bot = make_bot(managers=("production", "staging"))
    snap = daily_name(clock.time(), 1)
    code, out = bot.run(f"snapshots show {snap} -m staging")
    assert code == 0 and f"`snapshots download {snap} -m staging` makes one" in out
    code, out = bot.run(f"snapshots show {snap}")
    assert f"`snapshots download {snap}` makes one" in out


def test_times_a_person_reads_say_utc_and_age(make_bot, clock) -> None:
    bot = make_bot()
    code, out = bot.run(f"snapshots show {daily_name(clock.time(), 1)}")
    assert re.search(r"created +\d{4}-\d{2}-\d{2} 02:00 UTC \((\d+[dhms] ?)+ago\)", out), out


def test_summary_counts_a_snapshot_by_when_it_was_created_not_copied(make_bot, clock) -> None:
    bot = make_bot()
    made = clock.now().replace(microsecond=0).timestamp() - 31 * 3600
    old = bot.store.record_copy(manager="production", snapshot_id="made-31h-ago", location="x", sha256="ab" * 32,
                                size=1, manager_version="7.0.5", snapshot_version="7.0.5", tenant="default_tenant",
                                created_at=datetime.fromtimestamp(made, UTC).isoformat())
    bot.store.mark_verified("production", old.snapshot_id, True)
    code, out = bot.run("backups summary")
    assert "created: none;" in out and "created: made-31h-ago" not in out


def test_no_doubled_alarm_word_and_plurals(make_bot) -> None:
    bot = make_bot(seed=False)
    code, out = bot.run("backups summary")
    assert code == 1 and "ALERT 1 manager without a recent verified backup" in out
    assert "ALERT ALARM" not in out and "manager(s)" not in out
    code, out = bot.run("managers")
    assert "1 manager configured" in out


def test_operations_show_how_a_finished_one_ended_not_its_last_step(make_bot) -> None:
    bot = make_bot()
    assert bot.run("snapshots create")[0] == 0
    code, out = bot.run("operations --all")
    row = next(line for line in out.splitlines() if line.startswith("op-"))
    assert "succeeded" in row and "succeeded 2" in row and "verified the copy" not in row, out
    assert "1 operation" in out and "1 operations" not in out


def test_a_long_error_is_cut_at_a_word(make_bot) -> None:
    from commands.common import clip

    assert clip("pg_dump: error: connection to server at localhost failed", 30) == "pg_dump: error: connection to…"
    assert clip("short", 30) == "short"


def test_the_daily_run_reports_retention_even_when_nothing_goes(make_bot) -> None:
    bot = make_bot(seed=False)
    code, out = bot.run("backups run", yes=True)
    assert code == 0, out
    assert "Retention (daily=7,weekly=4,monthly=12,yearly=3): nothing to prune." in out


def test_cluster_status_names_the_node_it_reached(make_bot) -> None:
    bot = make_bot()
    code, out = bot.run("cluster status")
    assert code == 0 and "not configured" not in out
    assert "yes, the bot talks to it" in out
