"""The terminal front end: a REPL (`cfy-bot shell`) and one-shot commands (`cfy-bot run`)."""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Callable
from typing import TextIO

from bot.core import Actor, Invocation, ProgressEvent
from bot.engine.dispatch import Dispatcher, Outcome
from bot.front.render import progress_line, reply_text


class TerminalSink:
    """Prints progress events as timestamped lines."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def emit(self, event: ProgressEvent) -> None:
        """Print one event."""
        if event.kind != "gate":
            print(progress_line(event), file=self.out, flush=True)


def shell_actor(name: str | None = None) -> Actor:
    """The terminal user as an actor (`shell:$USER`)."""
    user = name or os.environ.get("USER") or _login()
    return Actor(f"shell:{user}", user, "shell")


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "operator"


class Terminal:
    """Runs command texts through the dispatcher and answers gates at the terminal."""

    def __init__(self, dispatcher: Dispatcher, out: TextIO = sys.stdout, actor: Actor | None = None,
                 ask: Callable[[str], str] | None = None) -> None:
        self.dispatcher = dispatcher
        self.out = out
        self.actor = actor or shell_actor()
        self.ask = ask
        self.sink = TerminalSink(out)

    def run(self, text: str, yes: bool = False, approver: str = "") -> int:
        """Run one command text; returns the exit code (0 done, 1 failed, 2 usage error)."""
        clock = self.dispatcher.services.clock
        inv = Invocation(text=text, actor=self.actor, channel="terminal", transport="shell", received_at=clock.now())
        outcome = self.dispatcher.handle(inv, self.sink)
        while outcome.gate:
            self._show(outcome)
            outcome = self._answer(outcome, yes, approver)
        self._show(outcome)
        return outcome.exit_code

    def _answer(self, outcome: Outcome, yes: bool, approver: str) -> Outcome:
        op = outcome.operation or {}
        if outcome.gate == "confirm":
            ok = yes or self._prompt(f"Type yes to confirm {op.get('id')}: ").strip().lower() in ("y", "yes")
            action, actor = ("confirm" if ok else "reject"), self.actor
        else:
            name = approver or ("" if yes else self._prompt("Name of the second admin who approves (blank: leave "
                                                            "it waiting): ").strip())
            if not name:
                print(f"{op.get('id')} is waiting for a second admin's approval.", file=self.out)
                return Outcome(outcome.reply, 0, op)
            action, actor = "approve", shell_actor(name)
        return self.dispatcher.decide(op["id"], actor, action, self.sink, "terminal", "shell")

    def _prompt(self, question: str) -> str:
        if self.ask is not None:
            return self.ask(question)
        if not sys.stdin.isatty():
            return ""
        try:
            return input(question)
        except (EOFError, KeyboardInterrupt):
            return ""

    def _show(self, outcome: Outcome) -> None:
        print(reply_text(outcome.reply), file=self.out, flush=True)

    def repl(self, history: str | None = None) -> int:
        """Read commands until `exit`, `quit` or end of input."""
        _history(history)
        print("cfy-bot shell: type `help`, or `exit` to leave.", file=self.out)
        while True:
            try:
                line = input("cfy> ")
            except EOFError:
                print(file=self.out)
                return 0
            except KeyboardInterrupt:
                print("^C", file=self.out)
                continue
            if line.strip() in ("exit", "quit"):
                return 0
            if line.strip():
                try:
                    self.run(line)
                except KeyboardInterrupt:
                    print("interrupted; the operation's state is kept and shown by `status`", file=self.out)


def _history(path: str | None) -> None:
    """Line editing and a history file, where readline exists."""
    try:
        import atexit
        import readline
    except ImportError:
        return
    if not path:
        return
    try:
        readline.read_history_file(path)
    except OSError:
        pass
    atexit.register(lambda: _save_history(readline, path))


def _save_history(readline, path: str) -> None:  # type: ignore[no-untyped-def]
    try:
        readline.write_history_file(path)
    except OSError:
        pass
