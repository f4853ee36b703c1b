"""QA s13 findings 9, 11 and 12: refused decisions are audited, a busy manager says what holds it and how to end it,
people are named (never `shell:carol`), and an expired gate ended when its time was up."""

from __future__ import annotations

from datetime import datetime

from sim_fixtures import daily

SNAP = daily(1)


def _op(bot, kind: str = "restore") -> dict:
    return next(o for o in bot.store.list_operations() if o.kind == kind)


def test_a_refused_self_approval_and_a_wrong_confirmation_are_audited_outcomes(make_bot) -> None:
    bot = make_bot()
    code, _ = bot.run(f"restore {SNAP} -f", yes=True)  # alice confirmed; waits for a second admin
    assert code == 3
    op = _op(bot)
    code, out = bot.run(f"approve {op.id}", user="alice")
    assert code == 1 and "Not allowed" in out
    [row] = bot.store.query_audit(user="shell:alice", command="approve", event="outcome")
    assert row["detail"]["ok"] is False and row["detail"]["refused"] == "Not allowed"
    assert row["detail"]["operation"] == op.id and "second admin" in row["detail"]["error"]
    code, out = bot.run(f"confirm {op.id}", user="bob")  # nothing to confirm: it waits for approval
    assert code == 1 and "Nothing to do" in out
    [row] = bot.store.query_audit(user="shell:bob", command="confirm", event="outcome")
    assert row["detail"]["refused"] == "Nothing to do" and row["detail"]["ok"] is False
    [refused] = bot.store.query_audit(user="shell:bob", event="refused")
    assert refused["operation_id"] == op.id and refused["detail"]["decision"] == "confirm"


def test_a_busy_manager_names_the_pending_restore_its_requester_expiry_and_the_way_out(make_bot) -> None:
    bot = make_bot()
    bot.run(f"restore {SNAP} -f", yes=True)
    op = _op(bot)
    code, out = bot.run("maintenance-mode activate", yes=True, user="carol")
    assert code == 1
    expires = op.expires_at[11:16]
    assert (f"restore {op.id}, requested by alice, is waiting for a second admin's approval (expires at "
            f"{expires} UTC); `cancel {op.id}` ends it, `operations` shows it") in out, out
    assert "started by" not in out


def test_a_cancelled_operation_names_who_cancelled_it_and_shows_no_gate(make_bot) -> None:
    bot = make_bot()
    bot.run(f"restore {SNAP} -f", yes=True)
    op = _op(bot)
    code, out = bot.run(f"cancel {op.id}", user="carol")
    assert code == 0, out
    code, out = bot.run(f"reject {op.id}", user="bob")
    assert code == 1 and "is cancelled by carol" in out and "shell:" not in out, out
    code, out = bot.run("operations -a")
    row = next(line for line in out.splitlines() if line.startswith(op.id))
    assert " cancelled " in row and "(approve)" not in row and "(confirm)" not in row, row


def test_an_expired_gate_ended_when_its_time_was_up(make_bot) -> None:
    bot = make_bot()
    bot.run(f"restore {SNAP} -f", yes=True)
    op = _op(bot)
    bot.clock.advance(bot.settings.gate_ttl + 60)  # noticed a minute after it was due
    bot.run("operations -a")
    done = _op(bot)
    assert done.state == "expired"
    assert datetime.fromisoformat(str(done.finished_at)) == datetime.fromisoformat(str(op.expires_at))


def test_an_unanswered_deactivation_after_a_failed_restore_alerts_that_maintenance_is_still_on(make_bot) -> None:
    bot = make_bot()
    bot.sim.faults.fail_next("restore_snapshot", "pg_restore: could not connect")
    code, _ = bot.run(f"restore {SNAP} -f", yes=True, approver="bob")
    assert code == 1
    follow = _op(bot, "maintenance-mode deactivate")
    bot.clock.advance(bot.settings.gate_ttl + 60)
    code, out = bot.run("snapshots list")
    text = (f"ALERT {follow.id} (maintenance-mode deactivate) expired at {follow.expires_at[11:16]} UTC "
            "unanswered: production is still in maintenance mode (activated), so its backups and changes wait; "
            "`maintenance-mode deactivate` ends it.")
    assert text in out, out
    [row] = bot.store.query_audit(event="alert")
    assert row["operation_id"] == follow.id and row["actor"] == "system:gates"
    code, out = bot.run("operations -a")  # said once; the expired operation keeps why it matters
    assert "ALERT" not in out, out
    code, out = bot.run("maintenance-mode deactivate", yes=True)  # the command it names ends it
    assert code == 0 and bot.sim.state.maintenance["status"] == "deactivated", out


def test_an_expired_deactivation_after_maintenance_was_ended_otherwise_alerts_nothing(make_bot) -> None:
    bot = make_bot()
    bot.sim.faults.fail_next("restore_snapshot", "pg_restore: could not connect")
    bot.run(f"restore {SNAP} -f", yes=True, approver="bob")
    bot.services.managers["production"].maintenance_deactivate()  # someone ended it with cfy
    bot.clock.advance(bot.settings.gate_ttl + 60)
    code, out = bot.run("operations -a")
    assert "ALERT" not in out and "still in maintenance mode" not in out, out
    assert not bot.store.query_audit(event="alert")
