"""What a terminal user expects: stderr for failures, colour only on a terminal, `--json`, `--version`, a closed
pipe, a busy simulator port, Tab completion, one line of transfer progress, and no reply said twice."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
from datetime import UTC, datetime

import commands  # noqa: F401 - registers the commands
from bot.core import ProgressEvent, Reply
from bot.front.render import reply_text, transfer_text, use_color
from bot.front.shell import Completer, Terminal, TerminalSink
from bot.spec.registry import REGISTRY

TRACEBACK = "Traceback (most recent call last)"


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _cli(*args: str, home: str, **popen: object) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOT_", "CLOUDIFY_", "SLACK_", "NO_COLOR"))}
    env["HOME"] = home
    return subprocess.run([sys.executable, "-m", "bot.front.cli", *args], capture_output=True, text=True,
                          timeout=120, env=env, stdin=subprocess.DEVNULL, **popen)  # type: ignore[call-overload]


def test_colour_only_on_a_terminal_and_never_with_no_color() -> None:
    assert use_color(Tty(), {}) is True
    assert use_color(Tty(), {"NO_COLOR": "1"}) is False
    assert use_color(Tty(), {"TERM": "dumb"}) is False
    assert use_color(io.StringIO(), {}) is False
    reply = Reply(text="it broke", title="Failed", tone="danger", ok=False)
    assert reply_text(reply) == "ALERT Failed\nit broke"
    coloured = reply_text(reply, color=True)
    assert coloured.startswith("\x1b[31m✖ ALERT\x1b[0m Failed") and "it broke" in coloured


def test_failures_and_usage_errors_go_to_stderr(make_bot) -> None:
    bot = make_bot()
    out, err = io.StringIO(), io.StringIO()
    term = Terminal(bot.dispatcher, out=out, err=err)
    assert term.run("snapshots lsit") == 2
    assert "Did you mean" in err.getvalue() and out.getvalue() == ""
    assert term.run("snapshots show nothing-here") == 1
    assert "does not exist" in err.getvalue() and "does not exist" not in out.getvalue()
    assert term.run("snapshots list") == 0
    assert "Snapshots on production" in out.getvalue()


def test_run_json_is_one_object_per_line(make_bot) -> None:
    bot = make_bot()
    out = io.StringIO()
    term = Terminal(bot.dispatcher, out=out, as_json=True)
    assert term.run("snapshots list") == 0
    objs = [json.loads(line) for line in out.getvalue().splitlines()]
    reply = objs[-1]
    assert reply["type"] == "reply" and reply["exit_status"] == 0 and reply["tone"] == "info"
    assert reply["table"]["columns"][0] == "id" and len(reply["table"]["rows"]) >= 1
    on_manager = set(bot.sims["production"].state.snapshots["default_tenant"])
    assert {row["id"] for row in reply["table"]["rows"]} == on_manager
    out.seek(0), out.truncate()
    assert term.run("snapshots show nothing-here") == 1
    failed = json.loads(out.getvalue().splitlines()[-1])
    assert failed["exit_status"] == 1 and failed["ok"] is False and "does not exist" in failed["text"]


def test_json_progress_and_operation_id(make_bot) -> None:
    bot = make_bot()
    out = io.StringIO()
    term = Terminal(bot.dispatcher, out=out, as_json=True)
    assert term.run("snapshots create") == 0
    objs = [json.loads(line) for line in out.getvalue().splitlines()]
    kinds = [o.get("kind") for o in objs if o["type"] == "progress"]
    assert kinds[0] == "started" and kinds[-1] == "finished"
    final = objs[-1]
    assert final["type"] == "reply" and final["operation_id"] and final["operation_id"] == objs[0]["operation_id"]


def test_a_streamed_result_is_not_printed_again(make_bot) -> None:
    bot = make_bot()
    out = io.StringIO()
    assert Terminal(bot.dispatcher, out=out).run("snapshots create") == 0
    text = out.getvalue()
    finished = [line for line in text.splitlines() if " ■ " in line]
    assert len(finished) == 1
    said = finished[0].split("] ", 1)[1].removeprefix("OK ")
    assert text.count(said) == 1, text
    assert "sha256" in text  # the reply's fields are still shown


def test_tab_completes_command_words_then_flags() -> None:
    c = Completer(REGISTRY)
    assert c.candidates("sn") == ["snapshots"]
    assert "list" in c.candidates("snapshots ") and "restore" in c.candidates("snapshots ")
    assert c.candidates("snapshots list --s") == ["--search", "--sort-by"]
    assert "--manager" in c.candidates("maintenance-mode status --")
    assert c.candidates("nothing-like-this") == []


def test_a_transfer_is_one_updating_line_on_a_terminal_and_silent_when_piped() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    events = [ProgressEvent("op-1", "transfer", f"downloading s1: {transfer_text(n, 4 << 20, n / (1 << 20))}",
                            at=at) for n in (1 << 20, 2 << 20, 3 << 20)]
    tty = Tty()
    sink = TerminalSink(tty, color=True)
    for event in events:
        sink.emit(event)
    sink.emit(ProgressEvent("op-1", "step", "verified the copy", at=at))
    shown = tty.getvalue()
    assert shown.count("\n") == 1 and shown.count("\r") == 4  # three rewrites, then cleared before the step
    assert "3.0 MiB of 4.0 MiB (75%), 1.0 MiB/s, 1s left" in shown
    piped = io.StringIO()
    plain = TerminalSink(piped)
    for event in events:
        plain.emit(event)
    assert piped.getvalue() == ""


def test_transfer_text_says_bytes_rate_and_time_left() -> None:
    assert transfer_text(512 << 20, 1 << 30, 10.0) == "512.0 MiB of 1.0 GiB (50%), 51.2 MiB/s, 10s left"
    assert transfer_text(3 << 20, None, 3.0) == "3.0 MiB so far, 1.0 MiB/s"


def test_version_and_a_closed_pipe(tmp_path) -> None:
    version = _cli("--version", home=str(tmp_path))
    assert version.returncode == 0 and version.stdout.startswith("cfy-bot ")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOT_", "CLOUDIFY_", "SLACK_"))}
    env["HOME"] = str(tmp_path)
    reader = subprocess.Popen([sys.executable, "-m", "bot.front.cli", "run", "--demo", "help"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, stdin=subprocess.DEVNULL)
    assert reader.stdout is not None and reader.stderr is not None
    reader.stdout.readline()
    reader.stdout.close()  # as `| head -1` does
    err = reader.stderr.read().decode()
    reader.wait(timeout=120)
    assert TRACEBACK not in err and "BrokenPipe" not in err


def test_simulator_on_a_busy_port_says_so_in_one_line(tmp_path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = _cli("simulator", "--port", str(port), "--data-dir", str(tmp_path / "sim"), home=str(tmp_path))
    assert result.returncode == 1
    assert "simulated Cloudify manager on" not in result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"cannot listen on 127.0.0.1:{port}" in lines[0], result.stderr


def test_a_text_that_repeats_its_title_is_said_once() -> None:
    reply = Reply(text="Snapshot s1 on staging: created", title="Snapshot s1 on staging", tone="good")
    assert reply_text(reply) == "OK Snapshot s1 on staging: created"
    other = Reply(text="6 snapshots on staging", title="Snapshots on staging")
    assert reply_text(other) == "Snapshots on staging\n6 snapshots on staging"
