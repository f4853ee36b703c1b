"""Interrupting never orphans an operation (issue 14 point 6).

Ctrl-C in the shell stops following, not the work: the operation goes on on a worker thread of the shell's process,
`operations` shows its owner and step, and `exit` asks. In `run` a first Ctrl-C cancels at the next step boundary.
`cancel` from any bot process (another Bot on the same SQLite file here) stops it at its next poll, and a cancelled
operation cancels its own Cloudify execution. A gone owner's operation is settled at the next start.

Ctrl-C is a real SIGINT sent to the test's main thread (the terminal's) from inside the operation's progress, on the
worker thread, at a chosen step; the worker then waits on an event, so nothing depends on timing. No real sleeps: the
injected clock moves when the bot polls.
"""

from __future__ import annotations

import io
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest
from sim_fixtures import served, served_settings

from bot.core import ProgressEvent
from bot.front.shell import INTERRUPTED, Terminal, TerminalSink, shell_actor

WAIT = 30.0  # real seconds a test waits for a thread before it fails (never reached when the code works)


@pytest.fixture(autouse=True)
def sigint_raises() -> Iterator[None]:
    """Ctrl-C raises KeyboardInterrupt in the main thread, as in the shell."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def ctrl_c() -> None:
    """Press Ctrl-C: SIGINT to the main thread (the terminal's), from whichever thread calls this."""
    signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)


def after_cancel_request(term: Terminal, then: Callable[[], None]) -> None:
    """Run `then` right after the terminal has asked, on the first Ctrl-C, to cancel its operation."""
    original = term._cancel_on_interrupt

    def cancel_then(job: Any) -> bool:
        result = original(job)
        then()
        return result

    term._cancel_on_interrupt = cancel_then  # type: ignore[method-assign]


class Hooked(TerminalSink):
    """The terminal's sink; when a step containing `when` is printed, run `then` on the operation's thread and
    block that thread until `resume` is set (the operation pauses there; the terminal's thread does not)."""

    def __init__(self, out: io.StringIO, when: str, then: Callable[[], None]) -> None:
        super().__init__(out)
        self.when, self.then = when, then
        self.resume = threading.Event()
        self.fired = threading.Event()

    def emit(self, event: ProgressEvent) -> None:
        super().emit(event)
        if self.when in event.text and not self.fired.is_set():
            self.fired.set()
            self.then()
            assert self.resume.wait(WAIT), "the test never let the operation go on"


def terminal(bot: Any, out: io.StringIO, *, answers: list[str] | None = None, user: str = "alice",
             dispatcher: Any = None) -> Terminal:
    given = list(answers or [])
    return Terminal(dispatcher or bot.dispatcher, out=out, actor=shell_actor(user),
                    ask=lambda _q: given.pop(0) if given else "", simulated_approvals=True)


def wait_done(term: Terminal) -> None:
    for job in list(term.background):
        assert job.done.wait(WAIT)


def only_op(bot: Any) -> dict[str, Any]:
    [op] = bot.store.list_operations(kinds="snapshots create")
    return op


def test_ctrl_c_in_the_shell_stops_following_and_the_operation_goes_on_to_its_end(make_bot) -> None:
    bot = make_bot()
    out = io.StringIO()
    term = terminal(bot, out)
    term.shell = True
    term.sink = hooked = Hooked(out, "creating snapshot nightly-1", ctrl_c)

    code = term.run("snapshots create nightly-1")

    assert code == INTERRUPTED
    op = only_op(bot)
    assert op.state == "running"
    assert f"{op.id} goes on in this shell; `operations` shows it, `cancel {op.id}` stops it at its next " \
           "step" in out.getvalue()
    # while it is paused mid-way, `operations` names its owner (this shell, host:pid), its step, its last heartbeat
    listing = io.StringIO()
    assert terminal(bot, listing).run("operations") == 0
    row = next(line for line in listing.getvalue().splitlines() if line.startswith(op.id))
    assert f"this shell ({socket.gethostname()}:" in row and "0s ago" in row and "creating snapshot nightly-1" in row
    printed = len(out.getvalue())
    hooked.resume.set()
    wait_done(term)
    assert out.getvalue()[printed:] == ""  # nobody follows it: its later steps are not printed
    done = bot.store.get_operation(op.id)
    assert done.state == "succeeded" and done.error == ""
    outcome = bot.store.query_audit(event="outcome", operation_id=op.id)
    assert [row["detail"]["state"] for row in outcome] == ["succeeded"]
    assert bot.sim.state.snapshots["default_tenant"]["nightly-1"]["status"] == "created"
    assert bot.store.get_copy("production", "nightly-1").verified
    term._report_background()  # what the next prompt prints first
    assert f"{op.id} (no longer followed) has ended:" in out.getvalue()[printed:]
    assert "Snapshot nightly-1 created on production, copied off and verified." in out.getvalue()[printed:]


def shell_session(bot: Any, lines: list[str], answers: list[str], tty: bool) -> tuple[int, str, Hooked, Terminal]:
    """A whole `cfy-bot shell`: `lines` typed at the prompt; Ctrl-C while `snapshots create nightly-1` runs."""
    out = io.StringIO()
    given = list(answers)

    def ask(question: str) -> str:
        out.write(question + "\n")
        hooked.resume.set()  # the operation goes on once the shell has asked
        return given.pop(0) if given else ""

    term = Terminal(bot.dispatcher, out=out, actor=shell_actor("alice"), ask=ask)
    term.sink = hooked = Hooked(out, "creating snapshot nightly-1", ctrl_c)
    typed = list(lines)

    def read(prompt: str) -> str:
        if not typed:
            raise EOFError
        line = typed.pop(0)
        if line == "<resume>":
            hooked.resume.set()
            wait_done(term)
            return ""
        return line

    code = term.repl(read=read, tty=tty)
    return code, out.getvalue(), hooked, term


def test_exit_with_work_running_says_what_runs_and_asks_then_waits_for_it(make_bot) -> None:
    bot = make_bot()

    def answer_wait(question: str) -> str:
        assert question.startswith("Wait for it (w), cancel it (c), or leave anyway (l)?")
        hooked.resume.set()  # the operation goes on while the shell waits
        return "w"

    out = io.StringIO()
    term = Terminal(bot.dispatcher, out=out, actor=shell_actor("alice"), ask=answer_wait)
    term.sink = hooked = Hooked(out, "creating snapshot nightly-1", ctrl_c)
    lines = ["snapshots create nightly-1", "exit"]
    code = term.repl(read=lambda _p: lines.pop(0), tty=True)

    assert code == 0
    op = only_op(bot)
    text = out.getvalue()
    assert f"{op.id} (snapshots create on production) is running in this shell, step: creating snapshot " \
           "nightly-1" in text
    assert bot.store.get_operation(op.id).state == "succeeded"
    after = text.split("is running in this shell, step:")[1]
    assert "execution" in after and "finished" in after  # it was followed again while the shell waited


def test_exit_with_work_running_and_no_terminal_waits_and_says_so(make_bot) -> None:
    bot = make_bot()
    out = io.StringIO()
    term = Terminal(bot.dispatcher, out=out, actor=shell_actor("alice"), ask=lambda _q: "")
    term.sink = hooked = Hooked(out, "creating snapshot nightly-1", ctrl_c)
    lines = ["snapshots create nightly-1"]

    def read(_prompt: str) -> str:
        if lines:
            return lines.pop(0)
        hooked.resume.set()  # end of input: the shell must wait for the operation, which now goes on
        raise EOFError

    assert term.repl(read=read, tty=False) == 0
    assert "No terminal to ask (standard input is not one), so the shell waits for it to end" in out.getvalue()
    assert only_op(bot).state == "succeeded"


def test_exit_then_cancel_stops_the_operation_and_its_execution(make_bot) -> None:
    bot = make_bot()
    code, text, hooked, term = shell_session(bot, ["snapshots create nightly-1", "exit"], ["c"], tty=True)
    # the shell asked, cancel was requested, then it waited: the operation went on only to its next step
    op = only_op(bot)
    assert code == 0 and op.state == "cancelled"
    assert f"cancel requested by alice: {op.id} stops at its next step boundary" in text
    execution = bot.sim.state.executions[op.execution_id]
    assert execution["status"] == "cancelled"
    assert f"execution {op.execution_id} was cancelled on production" in op.error
    assert "Snapshot nightly-1 is failed on production; `snapshots delete nightly-1` removes it." in op.error


def test_leaving_anyway_says_what_the_next_start_does(make_bot) -> None:
    bot = make_bot()
    code, text, hooked, term = shell_session(bot, ["snapshots create nightly-1", "exit"], ["l"], tty=True)
    op = only_op(bot)
    assert code == 0
    assert (f"{op.id} is left running in this process, which ends now: the next start of cfy-bot on this data "
            "folder resumes it where it was.") in text
    hooked.resume.set()  # (the test process goes on: let the worker end)
    wait_done(term)


def test_blank_answer_to_exit_goes_back_to_the_prompt(make_bot) -> None:
    bot = make_bot()
    code, text, hooked, term = shell_session(bot, ["snapshots create nightly-1", "exit", "<resume>", "exit"], [""],
                                             tty=True)
    assert code == 0
    assert text.count("Wait for it (w)") == 1  # the second exit found nothing running
    assert only_op(bot).state == "succeeded"


def test_ctrl_c_in_run_cancels_at_the_next_step_and_a_second_one_leaves(make_bot) -> None:
    bot = make_bot()
    out = io.StringIO()
    term = terminal(bot, out)
    term.sink = hooked = Hooked(out, "creating snapshot nightly-1", ctrl_c)
    # the first Ctrl-C: cancel requested; the operation is let go on only after the terminal asked
    after_cancel_request(term, hooked.resume.set)
    code = term.run("snapshots create nightly-1")
    op = only_op(bot)
    assert code == 1 and op.state == "cancelled"
    text = out.getvalue()
    assert "Following it until it stops; Ctrl-C again leaves it to the next start of cfy-bot." in text
    assert bot.sim.state.executions[op.execution_id]["status"] == "cancelled"
    # the clock the bot runs on: the cancel took effect within seconds of being asked
    asked = bot.store.query_audit(event="gate_answered", operation_id=op.id)[0]["at"]
    ended = bot.store.query_audit(event="outcome", operation_id=op.id)[0]["at"]
    assert (datetime.fromisoformat(ended) - datetime.fromisoformat(asked)).total_seconds() <= 10


def test_a_second_ctrl_c_in_run_leaves_the_operation_to_the_next_start(make_bot) -> None:
    bot = make_bot()
    out = io.StringIO()
    term = terminal(bot, out)
    term.sink = hooked = Hooked(out, "creating snapshot nightly-1", ctrl_c)
    after_cancel_request(term, ctrl_c)  # pressed again before the operation reached its next step
    code = term.run("snapshots create nightly-1")
    op = only_op(bot)
    assert code == INTERRUPTED and op.state == "running" and op.cancel_requested == "shell:alice"
    assert (f"left {op.id} (snapshots create on production, step: creating snapshot nightly-1") in out.getvalue()
    assert ("the next start of cfy-bot on this data folder settles it as cancelled (and asks the manager to cancel "
            "its execution if that still runs).") in out.getvalue()
    hooked.resume.set()
    assert bot.store.get_operation(op.id) is not None


def dead_owner() -> str:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return f"{socket.gethostname()}:{gone.stdout.strip()}"


def left_running(bot: Any, **fields: Any) -> dict[str, Any]:
    """`snapshots create nightly-1` whose process died while it followed its execution."""
    client = bot.services.managers["production"]
    started = client.create_snapshot("nightly-1", legacy=True)
    op = bot.store.create_operation(kind="snapshots create", args={"snapshot_id": "nightly-1"}, manager="production",
                                    requester="shell:alice", requester_name="alice", channel="terminal",
                                    transport="shell", state="approved")
    journal = {"owner": dead_owner(), "snapshot_id": "nightly-1", "create_sent": True,
               "execution_id": started.id}
    return bot.store.transition(op.id, "approved", "running", step="creating snapshot nightly-1",
                                execution_id=started.id, result={"journal": journal}, **fields)


def test_operations_says_a_gone_owner_is_gone_and_the_next_start_resumes_its_operation(make_bot) -> None:
    bot = make_bot()
    op = left_running(bot)
    listing = io.StringIO()
    terminal(bot, listing).run("operations")
    row = next(line for line in listing.getvalue().splitlines() if line.startswith(op.id))
    assert f"{op.journal['owner']}: gone (last heard 0s ago); settled at the next start" in row
    [settled] = bot.dispatcher.operations.reconcile()  # the next start
    assert settled.state == "succeeded"


def test_a_cancel_of_a_gone_owners_operation_is_recorded_and_settled_at_the_next_start(make_bot) -> None:
    bot = make_bot()
    op = left_running(bot)
    out = io.StringIO()
    assert terminal(bot, out, user="bob").run(f"cancel {op.id}") == 0
    assert f"the process that ran it ({op.journal['owner']}) is gone" in out.getvalue()
    [settled] = bot.dispatcher.operations.reconcile()
    assert settled.state == "cancelled"
    assert "the bot asked production to cancel it" in settled.error
    bot.sim.advance()
    bot.clock.advance(5)
    status = bot.services.managers["production"].get_execution(op.execution_id).status
    assert status == "cancelled"


def second_bot(bot: Any, transport: Any) -> Any:
    """Another bot process's dispatcher: its own services and connections on the same SQLite file."""
    from bot.engine.dispatch import Dispatcher
    from bot.front.wiring import build_services

    return Dispatcher(build_services(bot.settings, clock=bot.clock, transport=transport))


def test_cancel_from_another_bot_on_the_same_database_stops_the_operation_at_its_next_poll(make_bot) -> None:
    from bot.cloudify import wsgi_transport

    bot = make_bot()
    other = second_bot(bot, wsgi_transport({"production.test": bot.sim.wsgi}))
    out, answer = io.StringIO(), io.StringIO()

    def cancel_from_the_other_bot() -> None:
        op = only_op(bot)
        assert terminal(bot, answer, user="bob", dispatcher=other).run(f"cancel {op.id}") == 0
        hooked.resume.set()

    term = terminal(bot, out)
    term.sink = hooked = Hooked(out, "creating snapshot nightly-1", cancel_from_the_other_bot)
    assert term.run("snapshots create nightly-1") == 1
    op = only_op(bot)
    assert op.state == "cancelled" and op.cancel_requested == "shell:bob"
    assert "cancel requested by bob" in answer.getvalue()
    assert bot.sim.state.executions[op.execution_id]["status"] == "cancelled"
    steps = [row["detail"]["text"] for row in bot.store.query_audit(event="step", operation_id=op.id, limit=100)]
    assert not any("finished" in s for s in steps)  # stopped at the next poll, not at the end
    other.services.store.close()


def test_cancel_over_http_from_another_bot(tmp_path, clock) -> None:
    """The same across real sockets: the simulator served on 127.0.0.1, two bots with the real client."""
    from bot.engine.dispatch import Dispatcher
    from bot.front.wiring import build_services
    from simulator import Simulator
    from simulator.seed import seed_demo

    sim = Simulator(now=clock.time, sleep=clock.sleep, data_dir=str(tmp_path / "sim"))
    seed_demo(sim, "healthy")
    with served(sim) as url:
        settings = served_settings(url, str(tmp_path / "bot"))
        first = Dispatcher(build_services(settings, clock=clock))
        other = Dispatcher(build_services(settings, clock=clock))
        out, answer = io.StringIO(), io.StringIO()

        def cancel() -> None:
            [op] = first.services.store.list_operations(kinds="snapshots create")
            code = Terminal(other, out=answer, actor=shell_actor("bob")).run(f"cancel {op.id}")
            assert code == 0
            hooked.resume.set()

        term = Terminal(first, out=out, actor=shell_actor("alice"))
        term.sink = hooked = Hooked(out, "creating snapshot nightly-1", cancel)
        assert term.run("snapshots create nightly-1") == 1
        [op] = first.services.store.list_operations(kinds="snapshots create")
        assert op.state == "cancelled"
        assert f"execution {op.execution_id} was cancelled on production" in op.error
        assert sim.state.executions[op.execution_id]["status"] == "cancelled"
        first.services.store.close()
        other.services.store.close()


def test_ctrl_c_in_run_json_keeps_one_json_object_per_line(make_bot) -> None:
    import json

    bot = make_bot()
    out = io.StringIO()
    term = Terminal(bot.dispatcher, out=out, actor=shell_actor("alice"), as_json=True)
    term.sink = hooked = Hooked(out, "creating snapshot nightly-1", ctrl_c)
    hooked.as_json = True
    after_cancel_request(term, hooked.resume.set)
    assert term.run("snapshots create nightly-1") == 1
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    notices = [line["text"] for line in lines if line["type"] == "notice"]
    assert notices[-1] == "Following it until it stops; Ctrl-C again leaves it to the next start of cfy-bot."
    assert lines[-1]["type"] == "reply" and lines[-1]["exit_status"] == 1


def test_cancel_from_slack_stops_the_terminals_operation_at_its_next_step(make_bot, fake) -> None:
    """The Slack bot (the real Bolt app, signed requests) shares the data folder with a terminal running an operation:
    an admin's Cancel click there stops it at its next poll, and its execution is cancelled."""
    from slack_fake_server import ADMIN, SECRET, slack_front

    from bot.cloudify import wsgi_transport

    env = {"SLACK_BOT_TOKEN": "xoxb-test", "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": fake.api_url,
           "BOT_ADMINS": ADMIN}
    bot = make_bot(env=env)
    other = second_bot(bot, wsgi_transport({"production.test": bot.sim.wsgi}))
    slack = slack_front(other.services, other, fake)
    try:
        clicked: list[tuple[int, str]] = []

        def click_cancel_in_slack() -> None:
            clicked.append(slack.click("cancel", only_op(bot).id))
            slack.settle()
            hooked.resume.set()

        out = io.StringIO()
        term = terminal(bot, out)
        term.sink = hooked = Hooked(out, "creating snapshot nightly-1", click_cancel_in_slack)
        assert term.run("snapshots create nightly-1") == 1
        assert clicked[0][0] == 200
        op = only_op(bot)
        assert op.state == "cancelled" and op.cancel_requested == f"slack:{ADMIN}"
        assert bot.sim.state.executions[op.execution_id]["status"] == "cancelled"
        assert f"cancelled by {ADMIN} before the point of no return" in op.error
    finally:
        slack.close()
        other.services.store.close()


def test_the_scheduler_stopping_names_what_it_leaves_running(make_bot, capsys) -> None:
    """`cfy-bot scheduler` stopped (Ctrl-C, SIGTERM) while a job runs: each operation still running in the process is
    named with what the next start does with it."""
    from bot.engine.liveness import RUNNING_HERE
    from bot.front.cli import _say_left

    bot = make_bot()
    op = left_running(bot)
    RUNNING_HERE.add(op.id)
    try:
        _say_left(bot.dispatcher)
    finally:
        RUNNING_HERE.discard(op.id)
    assert capsys.readouterr().err == (
        f"left {op.id} (snapshots create on production, step: creating snapshot nightly-1) running in this "
        "process, which exits now: the next start of cfy-bot on this data folder resumes it where it was.\n")


def test_a_cancelled_drill_is_not_a_failed_drill_and_turns_its_maintenance_mode_off(make_bot, tmp_path) -> None:
    """Cancelled while the target's maintenance mode activates (its scheduled executions keep it `activating`): the
    operation ends cancelled, no drill result is recorded (no failed-drill alarm), maintenance mode is off again."""
    config = tmp_path / "bot.toml"
    config.write_text('[managers.staging]\nurls = ["http://staging.test"]\ndrill_target = true\n')
    bot = make_bot(managers=("production", "staging"), env={"BOT_CONFIG": str(config)}, scheduled=True)
    snapshot = next(s for s in bot.sims["production"].state.snapshots["default_tenant"] if s.startswith("daily-"))
    assert bot.run(f"snapshots download {snapshot} -m production")[0] == 0
    out = io.StringIO()

    def cancel() -> None:
        [op] = bot.store.list_operations(kinds="backups drill")
        assert terminal(bot, io.StringIO(), user="bob").run(f"cancel {op.id}") == 0
        hooked.resume.set()

    term = terminal(bot, out)
    term.sink = hooked = Hooked(out, "maintenance mode requested on staging", cancel)
    assert term.run(f"backups drill {snapshot}") == 1, out.getvalue()
    [op] = bot.store.list_operations(kinds="backups drill")
    assert op.state == "cancelled"
    assert op.error.endswith("The maintenance mode the drill asked for was turned off again on staging. No drill "
                                "result was recorded.")
    assert bot.store.list_drills() == []
    assert bot.sims["staging"].state.maintenance["status"] == "deactivated"
