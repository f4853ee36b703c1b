"""The terminal front end: a REPL (`cfy-bot shell`) and one-shot commands (`cfy-bot run`)."""

from __future__ import annotations

import getpass
import json
import os
import sys
from collections.abc import Callable
from typing import TextIO

from bot.core import Actor, Invocation, ProgressEvent, Reply, Tone
from bot.engine.dispatch import Dispatcher, Outcome
from bot.spec.parser import MANAGER_FLAGS
from bot.spec.registry import Registry
from bot.front.render import event_json, progress_line, reply_json, reply_text


class TerminalSink:
    """Prints progress events as timestamped lines (JSON objects with `as_json`).

    A transfer's progress (`transfer` events) is one line rewritten in place on a terminal, and left out when the
    output is piped or JSON: the step that follows a transfer says how it ended.
    """

    def __init__(self, out: TextIO, color: bool = False, as_json: bool = False) -> None:
        self.out, self.color, self.as_json = out, color, as_json
        self.finished: dict[str, str] = {}  # op id -> the finished line printed, so the reply does not repeat it
        self._live = False  # a transfer line is open (no newline yet)
        self.followups: list[tuple[str, str]] = []  # (operation id, question) opened while an operation ran

    def emit(self, event: ProgressEvent) -> None:
        """Print one event."""
        if event.kind == "gate":
            other = event.data.get("operation")
            if other and other != event.op_id:  # a follow-up question another operation asks, answered after it
                self.followups.append((str(other), event.text))
            return
        if self.as_json:
            if event.kind != "transfer":
                print(json.dumps(event_json(event)), file=self.out, flush=True)
            return
        if event.kind == "transfer":
            if self.color:  # a terminal: one updating line
                print("\r\x1b[2K" + progress_line(event, self.color), end="", file=self.out, flush=True)
                self._live = True
            return
        if self._live:
            print("\r\x1b[2K", end="", file=self.out)
            self._live = False
        if event.kind == "finished":
            self.finished[event.op_id] = event.text
        print(progress_line(event, self.color), file=self.out, flush=True)


def shell_actor(name: str | None = None) -> Actor:
    """The terminal user as an actor (`shell:$USER`)."""
    user = name or os.environ.get("USER") or _login()
    return Actor(f"shell:{user}", user, "shell")


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "operator"


def _waiting(op_id: str, requester: Actor) -> Reply:
    """Where a restore waits: who must act, and the command they run."""
    return Reply(text=f"{op_id} waits for a second admin's approval. Another admin approves it with "
                      f"`cfy-bot run \"approve {op_id}\"` under their own login (not {requester.name}), or with "
                      f"the Approve button in Slack. `operations` shows it; it expires if nobody answers.",
                 title="Waiting for approval", tone=Tone.WARNING)


class Terminal:
    """Runs command texts through the dispatcher and answers gates at the terminal."""

    def __init__(self, dispatcher: Dispatcher, out: TextIO = sys.stdout, actor: Actor | None = None,
                 ask: Callable[[str], str] | None = None, err: TextIO | None = None, color: bool = False,
                 as_json: bool = False, simulated_approvals: bool = False) -> None:
        self.dispatcher = dispatcher
        self.out = out
        # failures and usage errors go to stderr when writing to the real stdout; a given stream takes both
        self.err = err or (sys.stderr if out is sys.stdout else out)
        self.actor = actor or shell_actor()
        self.ask = ask
        self.color, self.as_json = color, as_json
        # --demo (and test harnesses): a second admin may be simulated by name; never against real managers
        self.simulated_approvals = simulated_approvals
        self.sink = TerminalSink(out, color=color, as_json=as_json)

    def run(self, text: str, yes: bool = False, approver: str = "") -> int:
        """Run one command text; the exit code: 0 done, 1 failed or did not happen, 2 usage, 3 waiting for
        another person's approval."""
        clock = self.dispatcher.services.clock
        inv = Invocation(text=text, actor=self.actor, channel="terminal", transport="shell", received_at=clock.now())
        outcome = self.dispatcher.handle(inv, self.sink)
        while outcome.gate:
            self._show(outcome)
            outcome = self._answer(outcome, yes, approver)
        self._show(outcome)
        self._ask_followups()
        return outcome.exit_code

    def _ask_followups(self) -> None:
        """Questions an operation left (deactivate maintenance mode after a failed restore), asked here: at a
        terminal the user answers now; otherwise the operation id and the command that answers it are printed.
        --yes never answers them: they come after something went wrong."""
        while self.sink.followups:
            op_id, question = self.sink.followups.pop(0)
            interactive = self.ask is not None or sys.stdin.isatty()
            if not interactive:
                print(f"{question}\nOperation {op_id} waits for your answer: `cfy-bot run \"confirm {op_id}\"` "
                      f"or `cfy-bot run \"reject {op_id}\"`; `operations` shows it.", file=self.out, flush=True)
                continue
            print(question, file=self.out, flush=True)
            answer = self._prompt(f"Type yes to confirm {op_id} now (anything else leaves it waiting): ")
            if answer.strip().lower() in ("y", "yes"):
                self._show(self.dispatcher.decide(op_id, self.actor, "confirm", self.sink, "terminal", "shell"))
            else:
                print(f"{op_id} is left waiting: `confirm {op_id}` or `reject {op_id}` answers it later.",
                      file=self.out, flush=True)

    def _answer(self, outcome: Outcome, yes: bool, approver: str) -> Outcome:
        op = outcome.operation or {}
        if outcome.gate == "confirm":
            if yes:
                return self.dispatcher.decide(op["id"], self.actor, "confirm", self.sink, "terminal", "shell")
            if self.ask is None and not sys.stdin.isatty():
                return self.dispatcher.decline(op["id"], "no terminal to ask and no --yes", self.sink, "shell")
            answer = self._prompt(f"Type yes to confirm {op.get('id')}: ").strip().lower()
            if answer not in ("y", "yes"):
                decided = self.dispatcher.decide(op["id"], self.actor, "reject", self.sink, "terminal", "shell")
                return Outcome(decided.reply, 1, decided.operation)  # what was asked did not happen
            return self.dispatcher.decide(op["id"], self.actor, "confirm", self.sink, "terminal", "shell")
        name = approver if self.simulated_approvals else ""
        if self.simulated_approvals and not name and not yes:
            name = self._prompt("Name of the simulated second admin who approves (blank: leave it waiting): ").strip()
        if not name:
            return Outcome(_waiting(str(op.get("id")), self.actor), 3, op)
        actor = Actor(f"shell:{name}", f"{name} (simulated second admin)", "shell")
        return self.dispatcher.decide(op["id"], actor, "approve", self.sink, "terminal", "shell")

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
        op_id = str((outcome.operation or {}).get("id") or "")
        if self.as_json:
            obj = reply_json(outcome.reply, outcome.exit_code, op_id, outcome.gate or "")
            print(json.dumps(obj), file=self.out, flush=True)
            return
        stream = self.err if outcome.exit_code in (1, 2) and not outcome.gate else self.out  # 3 waits: not a failure
        text = reply_text(outcome.reply, self.color, shown=self.sink.finished.pop(op_id, "") if op_id else "")
        if text:
            print(text, file=stream, flush=True)

    def repl(self, history: str | None = None) -> int:
        """Read commands until `exit`, `quit` or end of input (history and Tab completion where readline exists)."""
        _line_editing(history, Completer(self.dispatcher.services.registry))
        if self.ask is None:  # the shell reads its answers where it reads its commands, a terminal or not
            self.ask = _read_answer
        if hasattr(sys.stdin, "reconfigure"):  # bytes that are not UTF-8 reach the parser, which refuses them
            sys.stdin.reconfigure(errors="surrogateescape")
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
                    print("\ninterrupted; the operation's state is kept and shown by `operations`", file=self.out)


def _read_answer(question: str) -> str:
    """One answer from standard input; end of input or Ctrl-C is no answer."""
    try:
        return input(question)
    except (EOFError, KeyboardInterrupt):
        return ""


class Completer:
    """Tab completion of command words, then of the chosen command's flags (readline's completer protocol)."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._matches: list[str] = []

    def candidates(self, line: str) -> list[str]:
        """Every completion of the last word of `line` (the words before it choose the command)."""
        words = line.split(" ")
        done, word = [w for w in words[:-1] if w], words[-1]
        cmd, used = self.registry.lookup(done) if done else (None, 0)
        if cmd is not None and used == len(done) or cmd is not None and word.startswith("-"):
            flags = {"--help", *MANAGER_FLAGS} if cmd.manager_scoped else {"--help"}
            for p in cmd.params:
                flags.update(p.flags)
                if p.negatable:
                    flags.update(f"--no-{f[2:]}" for f in p.flags if f.startswith("--"))
            return sorted(f for f in flags if f.startswith(word) and f not in done)
        if cmd is not None:
            return []
        nexts = {c.path[len(done)] for c in self.registry.all() if len(c.path) > len(done)
                 and list(c.path[:len(done)]) == done}
        nexts |= {"exit", "quit"} if not done else set()
        return sorted(w for w in nexts if w.startswith(word))

    def complete(self, text: str, state: int) -> str | None:
        """readline's callback: the `state`-th completion of `text`."""
        if state == 0:
            import readline

            self._matches = [m + " " for m in self.candidates(readline.get_line_buffer()[:readline.get_endidx()])]
        return self._matches[state] if state < len(self._matches) else None


def _line_editing(history: str | None, completer: Completer) -> None:
    """Line editing, Tab completion and a history file, where readline exists."""
    try:
        import atexit
        import readline
    except ImportError:
        return
    readline.set_completer(completer.complete)
    readline.set_completer_delims(" ")
    readline.parse_and_bind("tab: complete")
    if not path_ok(history):
        return
    assert history is not None
    try:
        readline.read_history_file(history)
    except OSError:
        pass
    readline.set_history_length(1000)
    atexit.register(_save_history, history)


def path_ok(path: str | None) -> bool:
    """A history file can be kept at `path` (its folder exists)."""
    return bool(path) and os.path.isdir(os.path.dirname(path or "") or ".")


def _save_history(path: str) -> None:
    import readline

    try:
        readline.write_history_file(path)
    except OSError:
        pass
