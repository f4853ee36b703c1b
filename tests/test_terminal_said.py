"""QA s13 findings 2, 6, 15, 16, 18 and 27: what the terminal says at gates is true, said once, and can be
followed (the whole bot over real SQLite and the simulator, on the injected clock)."""

from __future__ import annotations

import io
import json

from bot.front.shell import Terminal, shell_actor
from sim_fixtures import approve_and_die_at, daily

SNAP = daily(1)


def _op(bot, kind: str = "restore") -> dict:
    return next(o for o in bot.store.list_operations() if o.kind == kind)


def test_end_of_input_at_a_confirmation_names_nobody(make_bot, monkeypatch) -> None:
    bot = make_bot()
    lines = iter(["maintenance-mode activate"])

    def typed(_prompt: str = "") -> str:
        for line in lines:
            return line
        raise EOFError

    monkeypatch.setattr("builtins.input", typed)
    out = io.StringIO()
    assert Terminal(bot.dispatcher, out=out, actor=shell_actor("root")).repl(tty=True) == 0
    text = out.getvalue()
    op = _op(bot, "maintenance-mode activate")
    assert "not confirmed (end of input); nothing was changed on production" in text, text
    assert "cancelled by" not in text and "root" not in text, text
    assert op.state == "cancelled" and op.decided_by == "system:unanswered"
    [row] = bot.store.query_audit(event="gate_unanswered")
    assert row["actor"] == "system:unanswered" and row["detail"]["why"] == "end of input"
    assert bot.sim.state.maintenance["status"] == "deactivated"


def test_the_confirmation_card_is_printed_once_and_where_it_waits_once(make_bot) -> None:
    bot = make_bot()
    out = io.StringIO()
    term = Terminal(bot.dispatcher, out=out, actor=shell_actor("alice"))
    assert term.run(f"restore {SNAP} -f", yes=True) == 3
    text = out.getvalue()
    card = f"enter maintenance mode on production and restore snapshot {SNAP}"
    assert text.count(card) == 1 and text.count("Waiting for approval") == 1, text
    assert "alice confirmed." in text


def test_a_typed_cancel_says_its_line_once_without_a_title_repeating_it(make_bot) -> None:
    bot = make_bot()
    bot.run(f"restore {SNAP} -f", yes=True)
    op = _op(bot)
    code, out = bot.run(f"cancel {op.id}", user="carol")
    assert code == 0
    assert out.count("cancelled by carol; nothing was changed on production") == 1, out
    assert "Cancelled" not in out, out


def test_json_of_a_restore_left_waiting_is_one_reply_waiting_for_approval_exit_3(make_bot) -> None:
    bot = make_bot()
    out = io.StringIO()
    term = Terminal(bot.dispatcher, out=out, actor=shell_actor("alice"), as_json=True)
    assert term.run(f"restore {SNAP} -f", yes=True) == 3
    objects = [json.loads(line) for line in out.getvalue().splitlines()]  # every line is JSON
    replies = [o for o in objects if o["type"] == "reply"]
    assert len(replies) == 1, replies
    assert replies[0]["waiting_for"] == "approve" and replies[0]["exit_status"] == 3
    assert replies[0]["operation_id"] == _op(bot).id
    gates = [o for o in objects if o["type"] == "progress" and o["kind"] == "gate"]
    assert [g["data"]["gate"] for g in gates] == ["confirm", "approve"]


def test_the_follow_up_shown_to_the_approver_names_the_requester_who_answers_it(make_bot) -> None:
    bot = make_bot()
    code, _ = bot.run(f"restore {SNAP} -f", yes=True)  # alice confirmed; waits for a second admin
    assert code == 3
    bot.sim.faults.fail_next("restore_snapshot", "pg_restore: could not connect")
    asked: list[str] = []
    code, out = bot.run(f"approve {_op(bot).id}", user="bob", ask=lambda q: asked.append(q) or "yes")
    assert code == 1, out
    follow = _op(bot, "maintenance-mode deactivate")
    assert not [q for q in asked if "confirm" in q], asked  # bob is not asked what only alice may answer
    assert "waits for your answer" not in out
    assert (f"Operation {follow.id} waits for alice's answer: only alice, who requested it, can confirm it: "
            f'alice runs `cfy-bot run "confirm {follow.id}"`') in out, out
    assert follow.state == "pending" and bot.sim.state.maintenance["status"] == "activated"
    code, out = bot.run(f"confirm {follow.id}", user="alice")  # the hint runs as printed, by whom it names
    assert code == 0 and bot.sim.state.maintenance["status"] == "deactivated", out


def test_a_simulated_approval_says_simulated_second_admin_in_the_summary(make_bot) -> None:
    bot = make_bot()
    code, out = bot.run(f"restore {SNAP} -f", yes=True, approver="bob")
    assert code == 0, out
    assert f"Restored {SNAP} on production (requested by alice, approved by bob (simulated second admin))." in out


def test_the_demo_shell_says_how_to_approve_and_approve_there_works(make_bot) -> None:
    bot = make_bot()
    out = io.StringIO()
    answers = iter(["yes", ""])  # confirm; then no name for the simulated second admin: leave it waiting
    term = Terminal(bot.dispatcher, out=out, actor=shell_actor("root"), ask=lambda _q: next(answers),
                    simulated_approvals=True, demo=True)
    typed = iter([f"restore {SNAP} -f", "APPROVE", "exit"])

    def read(_prompt: str) -> str:
        line = next(typed)
        return f"approve {_op(bot).id}" if line == "APPROVE" else line

    assert term.repl(read=read, tty=True) == 0
    text = out.getvalue()
    op = _op(bot)
    assert f"type `approve {op.id}` in this shell and a simulated second admin (demo-admin) approves it" in text
    assert "under their own login" not in text and "Slack" not in text.split("approves it.", 1)[1].split("\n")[0]
    assert f"demo-admin (a simulated second admin) approves {op.id}" in text
    assert op.state == "succeeded" and op.approved_by == "shell:demo-admin"
    assert "approved by demo-admin (simulated second admin)" in text
    [row] = bot.store.query_audit(event="approved")
    assert "simulated second admin" in row["detail"]["by"]


def test_a_restore_resumed_after_its_process_stopped_is_the_bots_in_the_audit_and_reported_here(make_bot, clock,
                                                                                                capsys) -> None:
    """QA 13: the process that finishes someone else's orphaned restore says whose it is and shows its report; the
    steps after the restart are audited as system:reconcile; the requester stays the requester."""


    from bot.cloudify import wsgi_transport
    from bot.engine.dispatch import Dispatcher
    from bot.front.cli import _reconcile
    from bot.front.shell import TerminalSink
    from bot.front.wiring import build_services

    bot = make_bot()
    assert bot.run(f"restore {SNAP} -f", yes=True)[0] == 3
    op = _op(bot)

    approve_and_die_at(bot, op.id)  # the process is gone at "the restore is running"; the row stays `running`
    [before] = bot.store.query_audit(limit=1)
    clock.advance(60)
    second = Dispatcher(build_services(bot.settings, clock=clock,
                                       transport=wsgi_transport({"production.test": bot.sim.wsgi})))
    capsys.readouterr()
    _reconcile(second, TerminalSink(__import__("sys").stdout))
    out = capsys.readouterr().out
    assert out.startswith(f"after a restart: {op.id} (restore on production, requested by alice) was left "
                          "running by a bot process that stopped; this one settles it here:\n"), out
    assert f"Restored {SNAP} on production (requested by alice, approved by bob)." in out
    assert "maintenance mode: deactivated" in out
    assert out.rstrip().endswith(f"after a restart: {op.id} (restore on production, requested by alice) is "
                                 "succeeded"), out
    after = [r for r in bot.store.query_audit(limit=200, operation_id=op.id) if r["seq"] > before["seq"]]
    assert after and {r["actor"] for r in after} == {"system:reconcile"}, {(r["event"], r["actor"]) for r in after}
    assert {"step", "manager_call", "outcome"} <= {r["event"] for r in after}
    assert bot.store.get_operation(op.id).requester == "shell:alice"
