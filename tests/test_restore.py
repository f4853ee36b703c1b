"""Issue 6: the guided restore, maintenance mode and the operation engine against the simulator."""

from __future__ import annotations

import threading

import pytest

from bot.core import Actor, Invocation
from sim_fixtures import daily

SNAP = f"{daily(1)}"


def latest_op(bot, kind: str = "restore") -> dict:
    ops = [o for o in bot.store.list_operations() if o.kind == kind]
    return ops[0]


def audit_events(bot, op_id: str) -> list[str]:
    return [r["event"] for r in bot.store.query_audit(limit=1000) if r.get("operation_id") == op_id][::-1]


def restore_executions(sim) -> list[dict]:
    return [e for e in sim.state.executions.values() if e["workflow_id"] == "restore_snapshot"]


def test_happy_path_needs_both_decisions_and_reports_everything(make_bot) -> None:
    bot = make_bot(scheduled=True)  # the stuck-maintenance scenario: live scheduled rows, in the snapshot too
    code, out = bot.run(f"restore {SNAP} -f", yes=True, approver="bob")
    assert code == 0, out
    op = latest_op(bot)
    assert op.state == "succeeded" and op.confirmed_by == "shell:alice" and op.approved_by == "shell:bob"
    assert "verified: production is in maintenance mode (activated)" in out
    assert f"restore of {daily(1)} started" in out
    assert "cancelled scheduled execution" in out  # they would have kept maintenance mode activating forever
    assert "marked FAILED" in out and "overdue" in out
    assert "production has left maintenance mode" in out and "durations" in out
    assert bot.sim.state.maintenance["status"] == "deactivated"
    events = audit_events(bot, op.id)
    for needed in ("gate_shown", "gate_answered", "approved", "step", "manager_call", "outcome"):
        assert needed in events, needed
    assert bot.store.verify_audit().ok


def test_healthy_manager_activates_at_once_and_the_older_weekly_still_reports_scheduled_rows(bot) -> None:
    assert not [e for e in bot.sim.state.executions.values() if e["status"] in ("queued", "scheduled")]
    code, out = bot.run("restore weekly-20261119 -f", yes=True, approver="bob")
    assert code == 0, out
    assert "cancelled scheduled execution" not in out  # maintenance mode activated at once
    assert "marked FAILED" in out and "overdue" in out  # the old data inside the older legacy snapshot
    assert ("none were scheduled before; 4 from the snapshot's data marked FAILED by the restore (1 overdue, "
            "3 due later)") in out
    failed = [e for e in bot.sim.state.executions.values() if e.get("scheduled_for") and e["status"] == "failed"]
    assert len(failed) == 4


def test_requester_cannot_approve_and_a_viewer_cannot_either(make_bot) -> None:
    bot = make_bot(env={"BOT_ADMINS": "shell:alice,shell:bob", "BOT_SHELL_ROLE": "viewer"})
    code, out = bot.run(f"restore {SNAP} -f", yes=True)  # confirmed, waiting for approval
    assert code == 3 and f"{latest_op(bot).id} waits for a second admin's approval" in out
    assert "cfy-bot run \"approve op-" in out
    op = latest_op(bot)
    code, out = bot.run(f"approve {op.id}", user="alice")
    assert code == 1 and "second admin" in out
    code, out = bot.run(f"approve {op.id}", user="mallory")
    assert code == 1 and "admin" in out
    assert latest_op(bot).state == "pending" and not restore_executions(bot.sim)
    code, out = bot.run(f"approve {op.id}", user="bob")
    assert code == 0 and latest_op(bot).state == "succeeded"


def test_gate_expires_and_a_late_approval_starts_nothing(bot) -> None:
    bot.run(f"restore {SNAP} -f", yes=True)
    op = latest_op(bot)
    bot.clock.advance(601)
    code, out = bot.run(f"approve {op.id}", user="bob")
    assert code == 1 and "expired" in out
    assert latest_op(bot).state == "expired" and not restore_executions(bot.sim)
    assert bot.sim.state.maintenance["status"] == "deactivated"


def test_reject_before_anything_happens(bot) -> None:
    bot.run(f"restore {SNAP} -f", yes=True)
    op = latest_op(bot)
    code, out = bot.run(f"reject {op.id}", user="bob")
    assert code == 0 and "nothing was changed" in out
    assert latest_op(bot).state == "cancelled"
    code, out = bot.run(f"approve {op.id}", user="bob")
    assert code == 1 and "cancelled" in out


def test_twenty_concurrent_approvals_start_one_restore(bot) -> None:
    bot.run(f"restore {SNAP} -f", yes=True)
    op = latest_op(bot)
    results = []
    barrier = threading.Barrier(20)

    def click(i: int) -> None:
        barrier.wait()
        outcome = bot.dispatcher.decide(op.id, Actor(f"shell:admin{i}", f"admin{i}", "shell"), "approve")
        results.append(outcome.exit_code)

    threads = [threading.Thread(target=click, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(0) == 1 and results.count(1) == 19
    assert len(restore_executions(bot.sim)) == 1
    assert latest_op(bot).state == "succeeded"


def test_second_restore_on_the_same_manager_is_told_who_runs_the_first(bot) -> None:
    bot.run(f"restore {SNAP} -f", yes=True)
    code, out = bot.run(f"restore {SNAP} -f", yes=True, user="carol")
    assert code == 1 and "alice" in out


def test_failed_restore_keeps_maintenance_and_asks_before_deactivating(bot) -> None:
    bot.sim.faults.fail_next("restore_snapshot", "database dump is corrupt")
    code, out = bot.run(f"restore {SNAP} -f", yes=True, approver="bob")
    assert code == 1
    assert "database dump is corrupt" in out and "FAILED" in out
    assert bot.sim.state.maintenance["status"] == "activated"
    follow = latest_op(bot, "maintenance-mode deactivate")
    assert follow.state == "pending" and follow.gate == "confirm"
    code, out = bot.run(f"confirm {follow.id}")
    assert code == 0 and bot.sim.state.maintenance["status"] == "deactivated"


def test_api_outage_and_credential_change_with_fallback(make_bot) -> None:
    bot = make_bot(manager={"fallback_password": "snapshot-era-pw"})
    bot.sim.faults.api_outage_during_restore(30)
    bot.sim.faults.change_admin_password_after_restore("snapshot-era-pw")
    code, out = bot.run(f"restore {SNAP} -f", yes=True, approver="bob")
    assert code == 0, out
    assert "expected while a restore restarts its services" in out and "API is back" in out
    assert "CLOUDIFY_FALLBACK_PASSWORD" in out and "snapshot-era-pw" not in out
    assert bot.sim.state.maintenance["status"] == "deactivated"


def test_credential_change_without_fallback_says_what_to_do(bot) -> None:
    bot.sim.faults.change_admin_password_after_restore("snapshot-era-pw")
    code, out = bot.run(f"restore {SNAP} -f", yes=True, approver="bob")
    assert code == 1
    assert "CLOUDIFY_FALLBACK_PASSWORD" in out and "maintenance mode" in out
    assert latest_op(bot).state == "failed"


def test_latest_needs_a_verified_archive_copy(bot) -> None:
    code, out = bot.run("restore latest", yes=True, approver="bob")
    assert code == 1 and "no verified archive copy" in out


def test_failed_snapshot_is_refused_before_any_gate(bot) -> None:
    failed = next(s for s in bot.sim.state.snapshots["default_tenant"].values() if s["status"] == "failed")
    code, out = bot.run(f"restore {failed['id']}", yes=True, approver="bob")
    assert code == 1 and "cannot be restored" in out
    assert not bot.store.list_operations()


def test_no_reboot_needs_restore_certificates(bot) -> None:
    code, out = bot.run(f"restore {SNAP} --no-reboot", yes=True)
    assert code == 2 and "--restore-certificates" in out


def test_maintenance_blocked_by_scheduled_executions_is_said_at_once(make_bot) -> None:
    bot = make_bot(scheduled=True)
    code, out = bot.run("maintenance-mode activate", yes=True)
    assert code == 1 and "never finish while maintenance mode is activating" in out
    assert "took maintenance mode off again" in out
    assert bot.sim.state.maintenance["status"] == "deactivated"


def test_maintenance_times_out_with_a_clear_message(make_bot) -> None:
    bot = make_bot(durations={"create_snapshot": 10_000.0})
    bot.services.managers["production"].create_snapshot("slow-one", legacy=True)  # stays active for hours
    code, out = bot.run("maintenance-mode activate --timeout 60", yes=True)
    assert code == 1 and "timed out after" in out and "create_snapshot" in out


def test_maintenance_activate_and_deactivate_and_304s(make_bot) -> None:
    bot = make_bot()
    code, out = bot.run("maintenance-mode activate", yes=True)
    assert code == 0 and "in maintenance mode" in out
    code, out = bot.run("maintenance-mode activate", yes=True)
    assert code == 0 and "already on" in out
    code, out = bot.run("maintenance-mode deactivate", yes=True)
    assert code == 0 and "left maintenance mode" in out
    code, out = bot.run("maintenance-mode deactivate", yes=True)
    assert code == 0 and "nothing to do" in out


def test_cancel_before_the_point_of_no_return(make_bot) -> None:
    bot = make_bot()
    cancelled = []

    class CancelWhenWaiting:
        def emit(self, event) -> None:
            if "maintenance mode requested" in event.text and not cancelled:
                cancelled.append(bot.dispatcher.decide(event.op_id, Actor("shell:alice", "alice", "shell"), "cancel"))

    bot.run(f"restore {SNAP} -f", yes=True)
    op = latest_op(bot)
    outcome = bot.dispatcher.decide(op.id, Actor("shell:bob", "bob", "shell"), "approve", CancelWhenWaiting())
    assert cancelled and "cancel requested" in cancelled[0].reply.text
    assert latest_op(bot).state == "cancelled" and outcome.exit_code == 1
    assert not restore_executions(bot.sim)
    assert bot.sim.state.maintenance["status"] == "deactivated"


def test_cancel_after_the_point_of_no_return_is_refused(bot) -> None:
    answers = []

    class CancelAfterStart:
        def emit(self, event) -> None:
            if "restore of" in event.text and "started" in event.text and not answers:
                answers.append(bot.dispatcher.decide(event.op_id, Actor("shell:alice", "alice", "shell"), "cancel"))

    bot.run(f"restore {SNAP} -f", yes=True)
    op = latest_op(bot)
    outcome = bot.dispatcher.decide(op.id, Actor("shell:bob", "bob", "shell"), "approve", CancelAfterStart())
    assert answers and "point of no return" in answers[0].reply.text
    assert outcome.exit_code == 0 and latest_op(bot).state == "succeeded"


def test_plain_snapshots_restore_refused_while_busy_kills_the_stray_execution(make_bot) -> None:
    bot = make_bot(durations={"create_snapshot": 10_000.0})
    bot.services.managers["production"].create_snapshot("busy-one", legacy=True)  # stays active for hours
    code, out = bot.run(f"snapshots restore {SNAP} -f", yes=True, approver="bob")
    assert code == 1 and "production refused to restore snapshot" in out and "stray pending restore execution" in out
    strays = restore_executions(bot.sim)
    assert strays and all(e["status"] in ("kill_cancelling", "cancelled") for e in strays)


@pytest.mark.parametrize("kind", ["restore", "maintenance-mode activate"])
def test_restart_resumes_a_running_operation(make_bot, kind: str) -> None:
    """A bot that died mid-operation finishes it on start-up (reconcile), without a second restore."""
    bot = make_bot()
    died = []

    class DieAfterStart:
        def emit(self, event) -> None:
            if ("restore of" in event.text and "started" in event.text) or "maintenance mode requested" in event.text:
                died.append(event.op_id)
                raise KeyboardInterrupt  # the process stops here; the row stays `running`

    alice = Actor("shell:alice", "alice", "shell")
    if kind == "restore":
        bot.run(f"restore {SNAP} -f", yes=True)  # confirmed by alice, waiting for a second admin
        decider, decision = Actor("shell:bob", "bob", "shell"), "approve"
    else:
        bot.dispatcher.handle(Invocation("maintenance-mode activate", alice, "terminal", "shell", bot.clock.now()))
        decider, decision = alice, "confirm"
    op = latest_op(bot, kind)
    with pytest.raises(KeyboardInterrupt):
        bot.dispatcher.operations.decide(op.id, decider, decision, DieAfterStart())
    assert died and latest_op(bot, kind).state == "running"
    settled = bot.dispatcher.operations.reconcile()
    assert [o.state for o in settled] == ["succeeded"]
    assert len(restore_executions(bot.sim)) == (1 if kind == "restore" else 0)
    assert bot.store.verify_audit().ok


def test_every_mutating_call_is_audited_with_its_real_status(make_bot) -> None:
    """The client reports each non-GET call, so a refused one is on record with the manager's answer."""
    bot = make_bot(durations={"create_snapshot": 10_000.0})
    bot.services.managers["production"].create_snapshot("busy-one", legacy=True)  # outside any command
    bot.run(f"snapshots restore {SNAP} -f", yes=True, approver="bob")
    calls = [r for r in bot.store.query_audit(event="manager_call", limit=50)][::-1]
    seen = [(r["detail"]["method"], r["detail"]["path"], r["detail"]["status"], r["actor"]) for r in calls]
    assert ("PUT", "/snapshots/busy-one", 201, "system:bot") in seen
    assert ("POST", f"/snapshots/{SNAP}/restore", 400, "shell:alice") in seen  # refused: still on record
    kill = next(r for r in calls if r["detail"]["path"].startswith("/executions/"))
    assert kill["detail"]["status"] == 200 and kill["execution_id"] and kill["command"] == "snapshots restore"
    assert all("body" not in r["detail"] for r in calls)
