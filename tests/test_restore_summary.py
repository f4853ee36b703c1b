"""Issue 14 point 3: every line of the guided restore's summary, asserted whole, in the five cases the issue names:
success, refused by the manager (400), execution failed, version refused up front, and interrupted then resumed
(a second bot instance on the same SQLite file settles the operation the first one stopped in the middle of).
Each expected line is built from what the simulator and the journal hold, not from what the bot printed."""

from __future__ import annotations

from typing import Any


from sim_fixtures import START, approve_and_die_at, daily
from test_restore_preflight import archived

SNAP = daily(1)


def summary(out: str, title: str) -> list[str]:
    """The summary block: its title line, then one line per field (up to the first line that is not a field)."""
    lines = out.splitlines()
    start = lines.index(title)
    block = [title]
    rest = lines[start + 1:]
    if rest and rest[0][21:22] != " ":  # a failure repeats the reply's text under its title
        rest = rest[1:]
    for line in rest:
        if not line[:22].rstrip() or line[21:22] != " " or line[:1] == " ":
            break
        block.append(line)
    return block


def row(label: str, value: str) -> str:
    return f"{label:<22}{value}"


def scheduled(bot: Any) -> dict[str, dict[str, Any]]:
    return {e["id"]: e for e in bot.sim.state.executions.values() if e["status"] == "scheduled"}


def restore_of(bot: Any) -> dict[str, Any]:
    [e] = [e for e in bot.sim.state.executions.values() if e["workflow_id"] == "restore_snapshot"]
    return e


def listed(bot: Any) -> list[str]:
    """The ids of the manager's snapshots as it lists them (oldest first), read from the simulator."""
    rows = [r for per in bot.sim.state.snapshots.values() for r in per.values()]
    return [r["id"] for r in sorted(rows, key=lambda r: r["created_at"])]


def snapshots_row(bot: Any, before: list[str]) -> str:
    """The report's `snapshots` line, from the simulator's list and the catalog's verified copies."""
    now = listed(bot)
    gone = [i for i in before if i not in now]
    text = f"{len(now)} snapshot{'' if len(now) == 1 else 's'} on production now ({len(before)} before the restore)"
    if not gone:
        return text
    copied = {c.snapshot_id for c in bot.store.list_copies(manager="production", verified=True)}
    kept, lost = [i for i in gone if i in copied], [i for i in gone if i not in copied]
    return (f"{text}; {len(gone)} gone: {len(kept)} with an archive copy ({', '.join(kept)}; `snapshots upload "
            f"{kept[0]}` puts one back); {len(lost)} with no archive copy, lost: {', '.join(lost)}")


def restored_schedules(bot: Any) -> list[dict[str, Any]]:
    """The simulator's `<workflow>_restored_…` schedules, sorted as the report groups them."""
    rows = [s for per in bot.sim.state.schedules.values() for s in per.values()]
    found = [s for s in rows if str(s["id"]).startswith(f"{s['workflow_id']}_restored_")]
    return sorted(found, key=lambda s: (s["tenant_name"], s["deployment_id"], s["id"]))


def test_success(make_bot) -> None:
    bot = make_bot(scheduled=True)  # 4 live scheduled executions: 1 overdue, 3 due later
    live = scheduled(bot)
    overdue = [i for i, e in live.items() if e["scheduled_for"] < START.isoformat()[:16]]
    assert len(live) == 4 and len(overdue) == 1
    before = listed(bot)
    code, out = bot.run(f"restore {SNAP} -f", yes=True, approver="bob")
    assert code == 0, out
    assert listed(bot) == []  # a legacy restore empties the snapshots table; the bot copied SNAP off first
    assert summary(out, "OK Restore of production succeeded") == [
        "OK Restore of production succeeded",
        row("snapshot", SNAP),
        row("execution", f"{restore_of(bot)['id']} terminated"),
        row("scheduled executions", "1 overdue marked FAILED, 0 kept scheduled, 3 later ones marked FAILED and "
                                    "re-scheduled, re-created as execution schedules: "
                                    + ", ".join(s["id"] for s in restored_schedules(bot))),
        row("cancelled by the bot", f"4 cancelled by the bot; 1 not brought back by the restore ({overdue[0]}; "
                                    "listed above)"),
        row("snapshots", snapshots_row(bot, before)),
        row("maintenance mode", "deactivated"),
        row("durations", "copy off 0s, maintenance 1s, restore request 0s, restore 13s, deactivate 0s; total 14s"),
    ]
    assert f"Restored {SNAP} on production (requested by alice, approved by bob (simulated second admin))." in out
    assert bot.sim.state.maintenance["status"] == "deactivated"
    schedules = [s for t in bot.sim.state.schedules.values() for s in t.values() if "_restored_" in s["id"]]
    assert len(schedules) == 3  # the 3 later ones are back as schedules, as the lines say


def test_refused_by_the_manager_with_a_400(make_bot) -> None:
    bot = make_bot(scheduled=True)
    live = scheduled(bot)
    client = bot.services.managers["production"]
    restore_call = client.restore_snapshot
    started: list[str] = []

    def someone_starts_a_workflow_first(*args: Any, **kw: Any) -> Any:
        """Just before the bot's restore call another admin's workflow starts (past maintenance mode): the manager
        answers the restore with a real 400 and leaves a stray pending restore execution (reference §2.7)."""
        bot.sim.durations["install"] = 600.0
        with bot.sim.lock:
            started.append(bot.sim.engine.create("prod-apps", "admin", "install", {}, is_system_workflow=False,
                                                 deployment_id="web-prod", blueprint_id="web-app")["id"])
        return restore_call(*args, **kw)

    client.restore_snapshot = someone_starts_a_workflow_first
    code, out = bot.run(f"restore {SNAP} -f", yes=True, approver="bob")
    assert code == 1, out
    [op] = [o for o in bot.store.list_operations() if o.kind == "restore"]
    journaled = bot.store.get_operation(op.id).journal["cancelled"]
    assert {e["id"] for e in journaled} == set(live)
    [stray] = [e for e in bot.sim.state.executions.values() if e["workflow_id"] == "restore_snapshot"]
    assert summary(out, "ALERT Restore of production refused") == [
        "ALERT Restore of production refused",
        row("snapshot", SNAP),
        row("execution", f"none started: manager production refused to restore snapshot {SNAP} because other "
                         f"executions are running: {started[0]}. The manager left a stray pending restore execution "
                         f"({stray['id']}); the bot killed it."),
        row("cancelled by the bot", "4 cancelled by the bot; 4 still gone, as nothing was restored ("
                                    + ", ".join(e["id"] for e in journaled) + "; listed above)"),
        row("maintenance mode", "turned off again (it was off before, and nothing was restored)"),
        row("durations", "copy off 0s, maintenance 1s, restore request 0s, restore not run, deactivate 0s; "
                         "total 1s"),
    ]
    assert (f"The restore of {SNAP} on production did not start: the manager refused it, and nothing was restored "
            "(requested by alice, approved by bob (simulated second admin)).") in out
    for e in journaled:  # each cancelled one, with what it takes to re-create it
        assert f"to re-create {e['id']}: run workflow {e['workflow_id']} on deployment {e['deployment_id']}" in out
    assert bot.sim.state.maintenance["status"] == "deactivated"
    assert all(bot.sim.state.executions[i]["status"] == "cancelled" for i in live)
    assert stray["status"] in ("kill_cancelling", "cancelled")  # no stray pending restore left behind


def test_execution_failed(make_bot) -> None:
    bot = make_bot()
    bot.sim.faults.fail_next("restore_snapshot", "Traceback (most recent call last):\nRuntimeError: pg_restore: "
                                                 "could not connect")
    before = listed(bot)
    code, out = bot.run(f"restore {SNAP} -f", yes=True, approver="bob")
    assert code == 1, out
    [follow] = [o for o in bot.store.list_operations() if o.kind == "maintenance-mode deactivate"]
    assert summary(out, "ALERT Restore of production failed") == [
        "ALERT Restore of production failed",
        row("snapshot", SNAP),
        row("execution", f"{restore_of(bot)['id']} failed"),
        row("error", "RuntimeError: pg_restore: could not connect"),
        row("scheduled executions", "none were scheduled"),
        row("cancelled by the bot", "none"),
        row("snapshots", snapshots_row(bot, before)),
        row("maintenance mode", f"still ON after the failed restore; deactivation waits for confirmation "
                                f"({follow.id})"),
        row("durations", "copy off 0s, maintenance 0s, restore request 0s, restore 8s, deactivate not run; total 8s"),
    ]
    assert restore_of(bot)["status"] == "failed" and bot.sim.state.maintenance["status"] == "activated"
    assert (f"Operation {follow.id} waits for your answer: `cfy-bot run \"confirm {follow.id}\"` or "
            f"`cfy-bot run \"reject {follow.id}\"`") in out


def test_version_refused_up_front(make_bot) -> None:
    bot = make_bot()
    archived(bot, "future-1", layout="legacy", version="7.1.0")
    code, out = bot.run("restore future-1 -f", yes=True, approver="bob")
    assert code == 1, out
    assert out.splitlines() == [
        "ALERT Failed",
        "future-1 was taken on Cloudify 7.1.0 (metadata.json in its archive copy of production), newer than "
        "production's 7.0.5: a manager refuses to restore a newer manager's snapshot. Nothing was changed.",
    ]
    assert bot.store.list_operations() == [] and bot.sim.state.maintenance["status"] == "deactivated"


def test_interrupted_then_resumed_by_another_bot_instance(make_bot, clock) -> None:
    """The first instance stops in the middle of watching the restore (its thread dies as a killed process would);
    a second instance on the same SQLite file and manager settles it at start and reports the whole summary."""
    from bot.cloudify import wsgi_transport
    from bot.engine.dispatch import Dispatcher
    from bot.front.wiring import build_services

    bot = make_bot(scheduled=True)
    live = scheduled(bot)
    overdue = [i for i, e in live.items() if e["scheduled_for"] < START.isoformat()[:16]]
    before = listed(bot)
    assert bot.run(f"restore {SNAP} -f", yes=True)[0] == 3
    [op] = [o for o in bot.store.list_operations() if o.kind == "restore"]

    approve_and_die_at(bot, op.id)  # the process is gone at "the restore is running"; the row stays `running`
    assert bot.store.get_operation(op.id).state == "running"
    clock.advance(60)  # the bot is down for a minute
    second = Dispatcher(build_services(bot.settings, clock=clock,
                                       transport=wsgi_transport({"production.test": bot.sim.wsgi})))
    seen: list[str] = []

    class Keeps:
        def emit(self, event: Any) -> None:
            seen.append(event.text)

    [settled] = second.operations.reconcile(sink_for=lambda _op: Keeps())
    assert settled.state == "succeeded" and len([restore_of(bot)]) == 1  # one restore, never posted twice
    assert seen[0].startswith("the bot restarted; resuming restore on production at: the restore is running")
    assert seen[-1].splitlines() == [
        f"Restored {SNAP} on production (requested by alice, approved by bob).",
        f"snapshot: {SNAP}",
        f"execution: {restore_of(bot)['id']} terminated",
        "scheduled executions: 1 overdue marked FAILED, 0 kept scheduled, 3 later ones marked FAILED and re-scheduled, "
        "re-created as execution schedules: " + ", ".join(s["id"] for s in restored_schedules(bot)),
        f"cancelled by the bot: 4 cancelled by the bot; 1 not brought back by the restore ({overdue[0]}; listed "
        "above)",  # a terminal operation, resumed as one: no thread (QA #32)
        f"snapshots: {snapshots_row(bot, before)}",
        "maintenance mode: deactivated",
        "durations: copy off 0s, maintenance 1s, restore request 0s, restore 1m, deactivate 0s; total 1m (wall "
        "clock, the time the bot was down included)",
    ]
    fields = dict(bot.store.get_operation(op.id).result["fields"])  # kept with the operation
    assert fields["maintenance mode"] == "deactivated" and fields["snapshot"] == SNAP
    assert bot.sim.state.maintenance["status"] == "deactivated"
