"""The guided restore's preflight refuses, touching nothing, what the manager would refuse only after maintenance
mode and cancellations (issue 14, point 1), and its card says what will really happen by version (point 2)."""

from __future__ import annotations

from typing import Any

from sim_fixtures import daily
from test_archive import download, snapshot_zip

MUTATING = ("POST", "PUT", "PATCH", "DELETE")


def untouched(bot: Any) -> None:
    """No operation was created and no call that changes the manager was made (every such call is audited)."""
    assert bot.store.list_operations(limit=5) == []
    calls = bot.store.query_audit(event="manager_call", limit=50)
    assert [c["detail"]["method"] for c in calls if c["detail"]["method"] in MUTATING] == []
    assert bot.sim.state.maintenance["status"] == "deactivated"
    assert not [e for e in bot.sim.state.executions.values() if e["workflow_id"] == "restore_snapshot"]


def archived(bot: Any, sid: str, **zip_kw: Any) -> None:
    bot.services.archive.save("production", sid, download(snapshot_zip(**zip_kw)), manager_version="7.0.5")


def test_a_legacy_snapshot_without_force_on_a_manager_with_blueprints_is_refused_up_front(make_bot) -> None:
    bot = make_bot(scheduled=True)  # 4 live scheduled executions the old flow cancelled before the refusal
    snap = daily(1)
    assert bot.run(f"snapshots download {snap}")[0] == 0  # the archive copy tells the format: legacy
    before = {e["id"]: e["status"] for e in bot.sim.state.executions.values()}
    blueprints = sum(len(v) for v in bot.sim.state.blueprints.values())
    deployments = sum(len(v) for v in bot.sim.state.deployments.values())
    ops_before = len(bot.store.list_operations(limit=50))
    code, out = bot.run(f"restore {snap}", yes=True, approver="bob")
    assert code == 1, out
    assert f"{snap} is a legacy-format snapshot (7.0.5) and production has {blueprints} blueprints and " \
           f"{deployments} deployments (all tenants counted)" in out
    assert "Nothing was changed. To replace them, run `restore " in out and " -f`." in out
    assert len(bot.store.list_operations(limit=50)) == ops_before  # no restore operation at all
    assert {e["id"]: e["status"] for e in bot.sim.state.executions.values()} == before  # nothing cancelled
    assert bot.sim.state.maintenance["status"] == "deactivated"
    assert not [e for e in bot.sim.state.executions.values() if e["workflow_id"] == "restore_snapshot"]


def test_a_snapshot_newer_than_the_manager_is_refused_before_anything(make_bot) -> None:
    bot = make_bot()
    archived(bot, "future-1", layout="new", version="7.1.0")
    code, out = bot.run("restore future-1 -f", yes=True, approver="bob")
    assert code == 1 and "future-1 was taken on Cloudify 7.1.0, newer than production's 7.0.5" in out, out
    assert "Nothing was changed." in out
    untouched(bot)


def test_a_snapshot_older_than_4_0_is_refused(make_bot) -> None:
    bot = make_bot()
    archived(bot, "ancient-1", layout="legacy", version="3.4.2")
    code, out = bot.run("restore ancient-1 -f", yes=True, approver="bob")
    assert code == 1 and "snapshots of 4.0 and later only. Nothing was changed." in out, out
    untouched(bot)


def test_an_unknown_format_on_a_manager_with_blueprints_asks_for_a_copy_or_force(make_bot) -> None:
    bot = make_bot()
    snap = daily(1)  # on the manager, no archive copy: the bot cannot read its metadata
    code, out = bot.run(f"restore {snap}", yes=True, approver="bob")
    assert code == 1, out
    assert f"the bot cannot tell whether {snap} is a legacy-format snapshot" in out
    assert f"`snapshots download {snap}`" in out and f"`restore {snap} -f`" in out
    untouched(bot)


def test_a_new_format_card_says_the_manager_checks_nothing_and_the_bot_checks_after(make_bot) -> None:
    bot = make_bot(seed=False)
    archived(bot, "fresh-1", layout="new", version="7.0.5")
    code, out = bot.run("restore fresh-1", yes=True)  # left waiting for the approval: exit 3
    assert code == 3, out
    assert ("fresh-1 is a new-format snapshot (7.0.5): the manager does no emptiness check and only logs "
            "per-entity conflicts, so the bot checks the result afterwards") in out
    assert "marks no execution FAILED" in out


def test_a_legacy_card_on_7x_says_every_scheduled_execution_is_marked_failed(make_bot) -> None:
    bot = make_bot()
    snap = daily(1)
    assert bot.run(f"snapshots download {snap}")[0] == 0
    code, out = bot.run(f"restore {snap} -f", yes=True)
    assert code == 3, out
    assert "marks every `scheduled` execution in the snapshot's data FAILED, and re-creates those due later as " \
           "execution schedules" in out
    assert "-f deletes the" in out and "overdue scheduled ones are then marked FAILED, later ones kept" not in out


def test_each_execution_the_bot_cancels_is_journaled_whole_and_reported_after(make_bot) -> None:
    bot = make_bot(scheduled=True)  # 4 live scheduled executions keep maintenance mode activating
    live = {e["id"] for e in bot.sim.state.executions.values() if e["status"] == "scheduled"}
    assert len(live) == 4
    code, out = bot.run(f"restore {daily(1)} -f", yes=True, approver="bob")
    assert code == 0, out
    op = bot.store.list_operations(limit=1)[0]
    journaled = op["result"]["journal"]["cancelled"]
    assert {e["id"] for e in journaled} == live
    for e in journaled:
        assert e["workflow_id"] and e["deployment_id"] and e["tenant_name"] and e["scheduled_for"]
        assert "parameters" in e
    for eid in live:  # read back from the manager after the restore, never assumed
        assert f"execution {eid} (" in out and "cancelled by the bot before the restore: now " in out
    # a 6.0+ legacy restore marks them FAILED and re-creates the 3 due later as execution schedules: the report
    # says so for those, and says how to re-create only the overdue one (it agrees with the schedules line)
    assert out.count("re-created by the restore as execution schedule ") == 3
    assert "3 later ones marked FAILED and re-scheduled" in out
    assert "cancelled by the bot  4 cancelled by the bot; 1 not brought back by the restore" in out
    assert out.count("to re-create ") == 1


def test_a_failed_restore_reports_steps_that_did_not_run_as_not_run(make_bot) -> None:
    bot = make_bot()
    bot.sim.faults.fail_next("restore_snapshot", "pg_restore: could not connect")
    code, out = bot.run(f"restore {daily(1)} -f", yes=True, approver="bob")
    assert code == 1, out
    assert "deactivate not run" in out and "deactivate 0s" not in out
    assert "still ON after the failed restore" in out


def test_the_preflight_reads_past_maintenance_mode_left_on_by_a_failed_restore(make_bot) -> None:
    bot = make_bot()
    snap = daily(1)
    assert bot.run(f"snapshots download {snap}")[0] == 0
    bot.sim.state.maintenance["status"] = "activated"  # as a failed restore leaves it
    code, out = bot.run(f"restore {snap}", yes=True, approver="bob")
    assert code == 1 and "legacy-format snapshot" in out and "maintenance mode" not in out.split("Failed", 1)[1]
    assert bot.sim.state.maintenance["status"] == "activated"  # left as it was: nothing changed
