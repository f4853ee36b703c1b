"""`cfy-bot run` exit codes mean what README says (issue 14, point 5), and the terminal never names a person who did
nothing: 0 done (also nothing to do), 1 failed or did not happen, 2 usage, 3 waiting for another person."""

from __future__ import annotations

import io
import re
import os
import subprocess
import sys

from bot.front.shell import Terminal, shell_actor

TRACEBACK = "Traceback (most recent call last)"


def test_an_unanswerable_confirmation_is_not_a_cancellation_by_the_user(make_bot) -> None:
    bot = make_bot()
    bot.sim.state.maintenance["status"] = "activated"
    out = io.StringIO()
    term = Terminal(bot.dispatcher, out=out, actor=shell_actor("alice"))  # no ask, stdin is not a terminal here
    code = term.run("maintenance-mode deactivate")
    text = out.getvalue()
    assert code == 1, text
    assert "not confirmed (no terminal to ask and no --yes); nothing was changed on production" in text
    assert "cancelled by" not in text and "alice" not in text.split("Confirm", 1)[-1]
    assert bot.sim.state.maintenance["status"] == "activated"
    [row] = bot.store.query_audit(event="gate_unanswered")
    assert row["actor"] == "system:unanswered"


def test_answering_no_is_a_rejection_and_exit_1(make_bot) -> None:
    bot = make_bot()
    bot.sim.state.maintenance["status"] = "activated"
    code, out = bot.run("maintenance-mode deactivate", ask=lambda _q: "no")
    assert code == 1 and "cancelled by alice" in out
    assert bot.sim.state.maintenance["status"] == "activated"


def test_nothing_to_prune_is_done_not_failed(make_bot) -> None:
    bot = make_bot()
    code, out = bot.run("backups prune", yes=True)
    assert code == 0 and out.startswith("Nothing to do\nNothing to prune on production"), out


def test_approve_as_only_with_demo(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOT_", "CLOUDIFY_", "SLACK_"))}
    env.update(HOME=str(tmp_path), CLOUDIFY_MANAGER_URL="http://127.0.0.1:9", CLOUDIFY_PASSWORD="x")
    result = subprocess.run([sys.executable, "-m", "bot.front.cli", "run", "--approve-as", "bob", "status"],
                            capture_output=True, text=True, timeout=120, env=env, stdin=subprocess.DEVNULL)
    assert result.returncode == 2 and "--approve-as only works with --demo" in result.stderr
    assert TRACEBACK not in result.stderr


def test_a_simulated_approver_says_so_in_the_output_and_the_audit(make_bot, clock) -> None:
    from sim_fixtures import daily

    bot = make_bot()
    code, out = bot.run(f"restore {daily(1)} -f", yes=True, approver="bob")
    assert code == 0, out
    [row] = bot.store.query_audit(event="approved")
    assert row["actor"] == "shell:bob" and "simulated second admin" in row["detail"]["by"]


def test_without_simulation_a_restore_waits_with_exit_3_and_says_how_to_approve(make_bot) -> None:
    from sim_fixtures import daily

    bot = make_bot()
    out = io.StringIO()
    term = Terminal(bot.dispatcher, out=out, actor=shell_actor("alice"), ask=lambda _q: "bob")
    code = term.run(f"restore {daily(1)} -f", yes=True, approver="bob")  # approver ignored: no simulation
    text = out.getvalue()
    assert code == 3, text
    op = bot.store.list_operations(limit=1)[0]
    assert op.state == "pending" and op.gate == "approve"
    assert f'`cfy-bot run "approve {op.id}"` under their own login (not alice)' in text
    assert text.count("Waiting for approval") == 1  # the card once (under Confirm), then where it waits


def test_the_follow_up_question_is_asked_where_the_user_is(make_bot) -> None:
    from sim_fixtures import daily

    bot = make_bot()
    bot.sim.faults.fail_next("restore_snapshot", "pg_restore: could not connect")
    answers = iter(["yes"])  # the shell: the deactivation question is asked at the prompt and answered
    code, out = bot.run(f"restore {daily(1)} -f", yes=True, approver="bob", ask=lambda _q: next(answers))
    assert code == 1, out
    assert "maintenance mode stays ON" in out and "Type yes to confirm" not in out  # (the prompt goes to ask)
    assert bot.sim.state.maintenance["status"] == "deactivated"
    followup = [o for o in bot.store.list_operations(limit=5) if o.kind == "maintenance-mode deactivate"]
    assert followup and followup[0].state == "succeeded"


def test_without_a_terminal_the_follow_up_prints_its_id_and_answer(make_bot) -> None:
    from sim_fixtures import daily

    bot = make_bot()
    bot.sim.faults.fail_next("restore_snapshot", "pg_restore: could not connect")
    out = io.StringIO()
    term = Terminal(bot.dispatcher, out=out, actor=shell_actor("alice"), simulated_approvals=True)
    code = term.run(f"restore {daily(1)} -f", yes=True, approver="bob")
    text = out.getvalue()
    assert code == 1, text
    op = next(o for o in bot.store.list_operations(limit=5) if o.kind == "maintenance-mode deactivate")
    assert f'Operation {op.id} waits for your answer: `cfy-bot run "confirm {op.id}"`' in text
    assert op.state == "pending" and bot.sim.state.maintenance["status"] == "activated"


def test_the_shell_reads_answers_where_it_reads_commands(make_bot, monkeypatch) -> None:
    bot = make_bot()
    lines = iter(["maintenance-mode activate", "yes", "exit"])
    monkeypatch.setattr("builtins.input", lambda _prompt="": next(lines))
    out = io.StringIO()
    assert Terminal(bot.dispatcher, out=out, actor=shell_actor("alice")).repl() == 0
    assert bot.sim.state.maintenance["status"] == "activated", out.getvalue()
    shown = out.getvalue().split("(activated ", 1)[1]
    assert re.match(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC \(", shown), shown  # a person's time, not raw ISO
