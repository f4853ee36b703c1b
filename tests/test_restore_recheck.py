"""The manager may change between the card and the approval (QA findings 1, 19, 25): the approved restore reads
it again before it changes anything, and refuses, touching nothing, saying what changed since the card."""

from __future__ import annotations

from typing import Any

from sim_fixtures import daily

MUTATING = ("POST", "PUT", "PATCH", "DELETE")


def mutating_calls(bot: Any, since_row: int = 0) -> list[str]:
    """Every call that changes the manager made after audit row `since_row` (every manager call is audited)."""
    calls = bot.store.query_audit(event="manager_call", limit=500)
    return [f"{c['detail']['method']} {c['detail'].get('path')}" for c in calls
            if c["detail"]["method"] in MUTATING and c["seq"] > since_row]


def last_row(bot: Any) -> int:
    rows = bot.store.query_audit(limit=1)
    return int(rows[0]["seq"]) if rows else 0


def nothing_changed(bot: Any, since_row: int, executions: dict[str, str]) -> None:
    assert mutating_calls(bot, since_row) == []
    assert bot.sim.state.maintenance["status"] == "deactivated"
    assert not [e for e in bot.sim.state.executions.values() if e["workflow_id"] == "restore_snapshot"]
    assert {e["id"]: e["status"] for e in bot.sim.state.executions.values()} == executions  # nothing cancelled


def emptied(bot: Any) -> dict[str, Any]:
    """Empty every tenant's blueprints and deployments; what was there, to put back."""
    saved = {"blueprints": {t: list(v) for t, v in bot.sim.state.blueprints.items()},
             "deployments": {t: list(v) for t, v in bot.sim.state.deployments.items()}}
    for t in bot.sim.state.blueprints:
        bot.sim.state.blueprints[t] = []
    for t in bot.sim.state.deployments:
        bot.sim.state.deployments[t] = []
    return saved


def waiting_op(bot: Any) -> str:
    op = bot.store.list_operations(limit=1)[0]
    assert op.state == "pending" and op.kind == "restore", op
    return str(op.id)


def test_a_blueprint_uploaded_during_the_approval_window_stops_the_restore_before_maintenance_mode(make_bot) -> None:
    bot = make_bot(scheduled=True)  # 4 scheduled executions the old flow cancelled before the manager refused
    snap = daily(1)
    assert bot.run(f"snapshots download {snap}")[0] == 0  # legacy, known from the archive copy
    saved = emptied(bot)
    code, out = bot.run(f"restore {snap}", yes=True)  # no -f needed on an empty manager: the card is right
    assert code == 3, out
    op = waiting_op(bot)
    bot.sim.state.blueprints.update(saved["blueprints"])  # someone uploads blueprints during the window
    bot.sim.state.deployments.update(saved["deployments"])
    executions = {e["id"]: e["status"] for e in bot.sim.state.executions.values()}
    row = last_row(bot)
    code, out = bot.run(f"approve {op}", user="bob")
    assert code == 1, out
    nothing_changed(bot, row, executions)
    blueprints = sum(len(v) for v in saved["blueprints"].values())
    deployments = sum(len(v) for v in saved["deployments"].values())
    assert (f"since the card of {op} (09:00 UTC), production had 0 blueprints and 0 deployments then and has "
            f"{blueprints} and {deployments} now") in out
    assert "Nothing was changed." in out and f"`restore {snap} -f`" in out
    assert "maintenance mode requested" not in out
    assert bot.store.get_operation(op).state == "failed"


def test_the_snapshot_deleted_during_the_approval_window_stops_the_restore_touching_nothing(make_bot) -> None:
    bot = make_bot()
    snap = daily(1)  # on the manager only
    code, out = bot.run(f"restore {snap} -f", yes=True)
    assert code == 3, out
    op = waiting_op(bot)
    bot.services.managers["production"].delete_snapshot(snap)  # deleted behind the bot's back (cfy, or a script)
    executions = {e["id"]: e["status"] for e in bot.sim.state.executions.values()}
    row = last_row(bot)
    code, out = bot.run(f"approve {op}", user="bob")
    assert code == 1, out
    nothing_changed(bot, row, executions)
    assert f"snapshot {snap} was deleted from production since the card of {op} (09:00 UTC)" in out
    assert "Nothing was changed; the bot has no archive copy of it; `snapshots list` shows what is left." in out


def test_a_scheduled_execution_created_during_the_window_is_named_not_left_to_block_maintenance(make_bot) -> None:
    from simulator.seed import add_scheduled_execution

    bot = make_bot()
    snap = daily(1)
    code, out = bot.run(f"restore {snap} -f", yes=True)
    assert code == 3, out
    op = waiting_op(bot)
    new = add_scheduled_execution(bot.sim, "prod-apps", "heal", ("db-prod", "db-cluster"), bot.clock.time() + 600)
    executions = {e["id"]: e["status"] for e in bot.sim.state.executions.values()}
    row = last_row(bot)
    code, out = bot.run(f"approve {op}", user="bob")
    assert code == 1, out
    nothing_changed(bot, row, executions)
    assert f"1 execution was queued or scheduled since the card of {op} (09:00 UTC)" in out
    assert new["id"] in out and "Nothing was changed." in out


def test_with_force_a_changed_manager_is_said_and_the_restore_goes_on(make_bot) -> None:
    bot = make_bot()
    snap = daily(1)
    assert bot.run(f"snapshots download {snap}")[0] == 0
    saved = emptied(bot)
    code, out = bot.run(f"restore {snap} -f", yes=True)
    assert code == 3 and "-f deletes the" not in out, out  # nothing to delete when the card was shown
    op = waiting_op(bot)
    bot.sim.state.blueprints.update(saved["blueprints"])
    bot.sim.state.deployments.update(saved["deployments"])
    code, out = bot.run(f"approve {op}", user="bob")
    assert code == 0, out
    assert f"since the card of {op} (09:00 UTC): production had 0 blueprints and 0 deployments then and has " in out
    assert out.index("since the card of") < out.index("maintenance mode requested")


def test_the_snapshot_is_read_back_just_before_maintenance_mode(make_bot) -> None:
    bot = make_bot()
    snap = daily(1)
    assert bot.run(f"snapshots download {snap}")[0] == 0  # so the operation makes no copy of its own first
    code, out = bot.run(f"restore {snap} -f", yes=True)
    op = waiting_op(bot)
    client = bot.services.managers["production"]
    real = client.get_snapshot
    reads: list[str] = []

    def deleted_after_the_recheck(sid: str, tenant: str | None = None) -> dict:
        reads.append(sid)
        if len(reads) == 2:  # the recheck saw it; then it is deleted before maintenance mode is asked for
            client.delete_snapshot(sid)
        return real(sid, tenant)

    client.get_snapshot = deleted_after_the_recheck
    executions = {e["id"]: e["status"] for e in bot.sim.state.executions.values()}
    row = last_row(bot)
    code, out = bot.run(f"approve {op}", user="bob")
    assert code == 1, out
    assert f"snapshot {snap} is no longer on production (read back just before maintenance mode)" in out
    assert mutating_calls(bot, row) == [f"DELETE /snapshots/{snap}"]  # the test's own delete, nothing else
    assert bot.sim.state.maintenance["status"] == "deactivated"
    assert {e["id"]: e["status"] for e in bot.sim.state.executions.values()} == executions


def test_deleting_the_snapshot_a_waiting_restore_will_use_is_refused_with_the_way_out(make_bot) -> None:
    bot = make_bot()
    snap = daily(1)
    code, out = bot.run(f"restore {snap} -f", yes=True)
    op = waiting_op(bot)
    row = last_row(bot)
    code, out = bot.run(f"snapshots delete {snap}", yes=True, user="carol")
    assert code == 1, out
    assert (f"snapshot {snap} is the one operation {op} (restore on production, requested by alice) will restore, "
            "and it is waiting for a second admin's approval: deleting it would make that restore fail. Nothing was "
            f"deleted. Cancel it first with `cancel {op}` if it is no longer wanted.") in out
    assert mutating_calls(bot, row) == [] and snap in bot.sim.state.snapshots["default_tenant"]
    assert bot.run(f"cancel {op}", user="carol")[0] == 0  # the way out, as printed
    code, out = bot.run(f"snapshots delete {snap}", yes=True, user="carol")
    assert code == 0 and snap not in bot.sim.state.snapshots["default_tenant"], out


def test_a_restore_requested_between_the_delete_card_and_its_confirmation_keeps_its_snapshot(make_bot) -> None:
    bot = make_bot()
    snap = daily(1)
    answers = iter(["yes"])

    def meanwhile(prompt: str) -> str:  # while carol reads the delete card, alice asks for a restore of it
        assert bot.run(f"restore {snap} -f", yes=True)[0] == 3
        return next(answers)

    code, out = bot.run(f"snapshots delete {snap}", user="carol", ask=meanwhile)
    assert code == 1 and "deleting it would make that restore fail. Nothing was deleted." in out, out
    assert snap in bot.sim.state.snapshots["default_tenant"]


def test_the_plain_snapshots_restore_refuses_up_front_what_the_manager_would_refuse(make_bot) -> None:
    bot = make_bot()
    snap = daily(1)
    assert bot.run(f"snapshots download {snap}")[0] == 0  # legacy, known from the archive copy
    executions = {e["id"]: e["status"] for e in bot.sim.state.executions.values()}
    ops = len(bot.store.list_operations(limit=50))
    row = last_row(bot)
    code, out = bot.run(f"snapshots restore {snap}", yes=True, approver="bob")
    assert code == 1, out
    assert f"{snap} is a legacy-format snapshot (7.0.5; " in out and "and production has " in out
    assert f"Nothing was changed. To replace them, run `snapshots restore {snap} -f`." in out
    assert "Confirm" not in out and len(bot.store.list_operations(limit=50)) == ops  # no gate, no operation
    nothing_changed(bot, row, executions)


def test_the_plain_snapshots_restore_card_says_the_format_and_rechecks_after_approval(make_bot) -> None:
    bot = make_bot()
    snap = daily(1)
    assert bot.run(f"snapshots download {snap}")[0] == 0
    saved = emptied(bot)
    code, out = bot.run(f"snapshots restore {snap}", yes=True)
    assert code == 3 and f"{snap} is a legacy-format snapshot (7.0.5; " in out, out
    op = bot.store.list_operations(limit=1)[0].id
    bot.sim.state.blueprints.update(saved["blueprints"])
    executions = {e["id"]: e["status"] for e in bot.sim.state.executions.values()}
    row = last_row(bot)
    code, out = bot.run(f"approve {op}", user="bob")
    assert code == 1 and f"since the card of {op} (09:00 UTC), production had 0 blueprints" in out, out
    nothing_changed(bot, row, executions)


def test_the_plain_snapshots_restore_of_a_snapshot_the_manager_lacks_says_how_to_get_it_there(make_bot) -> None:
    bot = make_bot()
    snap = daily(1)
    assert bot.run(f"snapshots download {snap}")[0] == 0
    bot.services.managers["production"].delete_snapshot(snap)
    code, out = bot.run(f"snapshots restore {snap} -f", yes=True, approver="bob")
    assert code == 1, out
    assert f"snapshot {snap} is not on production: `snapshots upload {snap}` puts the archive copy there" in out


def field(out: str, name: str) -> str:
    """The value of one field of the final report (`name  value` on its own line)."""
    [line] = [ln for ln in out.splitlines() if ln.startswith(name + "  ")]
    return line[len(name):].strip()


def test_a_legacy_card_counts_the_snapshots_the_restore_deletes_and_the_report_reads_back_what_is_left(
        make_bot) -> None:
    bot = make_bot()
    snap, other = daily(1), daily(2)
    assert bot.run(f"snapshots download {other}")[0] == 0  # one of them has an archive copy
    listed = bot.services.managers["production"].list_snapshots(size=1000, all_tenants=True).items
    before = [str(s["id"]) for s in listed]  # as the manager lists them (oldest first)
    uncopied = [sid for sid in before if sid != other]
    code, out = bot.run(f"restore {snap} -f", yes=True, approver="bob")
    assert code == 0, out
    assert (f"A legacy restore deletes every snapshot on production ({len(before)} now, all tenants: the snapshots "
            f"table is not part of a legacy snapshot), and the restored zip too; {len(uncopied)} of them have no "
            f"archive copy (") in out
    assert f"Before maintenance mode the bot copies {snap} into the archive and verifies it" in out
    assert "lost unless copied first: `snapshots download " in out
    # the copy is a step of the operation, before maintenance mode, with its progress line
    assert out.index(f"copied {snap} off production into the archive before the restore") < \
        out.index("maintenance mode requested")
    assert bot.store.get_copy("production", snap).verified
    left = [sid for per in bot.sim.state.snapshots.values() for sid in per]
    gone = [sid for sid in before if sid not in left]
    assert gone  # the simulator empties the table as a 7.0.5 legacy restore does
    lost = len(gone) - 2  # snap (copied by the restore) and other (copied before) have archive copies
    assert field(out, "snapshots") == (
        f"{len(left)} snapshot{'s' if len(left) != 1 else ''} on production now ({len(before)} before the restore); "
        f"{len(gone)} gone: 2 with an archive copy ({', '.join(s for s in before if s in (snap, other))}; "
        f"`snapshots upload {[s for s in before if s in (snap, other)][0]}` puts one back); {lost} with no archive "
        "copy, lost: " + ", ".join(s for s in gone if s not in (snap, other)))
    assert "copy off " in field(out, "durations")


def test_a_snapshot_whose_version_the_card_could_not_read_is_checked_on_the_copy_before_maintenance_mode(
        make_bot) -> None:
    from test_archive import snapshot_zip

    bot = make_bot()
    client = bot.services.managers["production"]
    client.upload_snapshot("future-9", [snapshot_zip(layout="new", version="7.1.0")])  # a newer manager's
    bot.sim.faults.truncate_downloads(after_bytes=20, count=1)  # the card's read of the first bytes fails
    code, out = bot.run("restore future-9 -f", yes=True)
    assert code == 3, out
    assert "future-9: version and format unchecked (" in out
    assert "What that risks: a snapshot taken on a Cloudify newer than 7.0.5 or older than 4.0" in out
    assert "reads its metadata.json, and stops, touching nothing, if it is newer than the manager" in out
    assert "If it is a legacy-format snapshot: a legacy restore on Cloudify 6.0 or later" in out
    op = waiting_op(bot)
    executions = {e["id"]: e["status"] for e in bot.sim.state.executions.values()}
    row = last_row(bot)
    code, out = bot.run(f"approve {op}", user="bob")
    assert code == 1, out
    nothing_changed(bot, row, executions)
    assert ("stopped before changing anything: the copy the bot just made tells what the card could not: future-9 "
            "was taken on Cloudify 7.1.0 (metadata.json in its archive copy of production), newer than "
            "production's 7.0.5") in out


def test_retention_keeps_the_snapshot_a_waiting_restore_will_use(make_bot) -> None:
    bot = make_bot(env={"BOT_RETENTION": "daily=1"})
    old = daily(4)
    assert bot.run(f"restore {old} -f", yes=True)[0] == 3
    op = waiting_op(bot)
    code, out = bot.run("backups prune", yes=True, user="carol")
    assert code == 0, out
    assert (f"kept {old} although retention would prune it: operation {op} (restore) is waiting for a second "
            "admin's approval and will restore it") in out
    assert old in bot.sim.state.snapshots["default_tenant"]
    assert daily(5) not in bot.sim.state.snapshots["default_tenant"]  # the rest of the plan went ahead
    pruned = {r["detail"]["snapshot_id"] for r in bot.store.query_audit(event="pruned", limit=10)}
    assert old not in pruned and daily(5) in pruned
