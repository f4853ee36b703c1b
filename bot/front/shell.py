"""The terminal front end: a REPL (`cfy-bot shell`) and one-shot commands (`cfy-bot run`).

Every command runs on a worker thread of this process; the terminal's own thread follows it (prints its progress)
and asks the questions gates need. Ctrl-C never interrupts the work itself:

- in the shell it stops following: the operation goes on in the shell's process, `operations` shows it (owner "this
  shell", current step), `cancel OP` stops it at its next step, and how it ended is shown at the next prompt;
  `exit` (or end of input) with work running says what runs and asks: wait, cancel, or leave anyway;
- in `run` the first Ctrl-C asks the operation to cancel (it stops at its next step boundary, within seconds while
  it waits for the manager) and keeps following it; a second one leaves: the process exits, and the next start of
  cfy-bot on the same data folder settles the operation (resumes it, or marks it failed or cancelled).
"""

from __future__ import annotations

import getpass
import json
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from bot.core import Actor, Invocation, Operation, ProgressEvent, Reply, Tone
from bot.engine.context import NullSink
from bot.engine.dispatch import Dispatcher, Outcome
from bot.spec.parser import MANAGER_FLAGS
from bot.spec.registry import Registry
from bot.front.render import event_json, progress_line, reply_json, reply_text
from bot.redact import redact_url_secrets


INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a command Ctrl-C stopped


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
            if self.as_json:  # with --json a card is progress: the one reply object is how the run ended
                print(json.dumps(event_json(event)), file=self.out, flush=True)
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


def next_start(dispatcher: Dispatcher, op: Operation) -> str:
    """What the next start of cfy-bot on this data folder does with `op` if its process exits while it runs."""
    current = dispatcher.services.store.get_operation(op.id) or op
    if current.state == "approved":
        return "the next start of cfy-bot on this data folder marks it failed (it had not started)."
    if current.cancel_requested:
        return ("the next start of cfy-bot on this data folder settles it as cancelled (and asks the manager to "
                "cancel its execution if that still runs).")
    cmd = dispatcher.services.registry.commands.get(tuple(str(op.kind).split()))
    if cmd is not None and cmd.resumable:
        return "the next start of cfy-bot on this data folder resumes it where it was."
    return ("the next start of cfy-bot on this data folder marks it failed, saying what became of its Cloudify "
            "execution.")


def shell_actor(name: str | None = None) -> Actor:
    """The terminal user as an actor (`shell:$USER`)."""
    user = name or os.environ.get("USER") or _login()
    return Actor(f"shell:{user}", user, "shell")


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "operator"


def _waiting(op_id: str, requester: Actor, demo: str = "") -> Reply:
    """Where a restore waits: who must act, and the command they run (`demo`: "shell" or "run" with --demo, where
    there is no other login and no Slack)."""
    if demo == "shell":
        how = (f"With --demo there is no other login and no Slack: type `approve {op_id}` in this shell and a "
               f"simulated second admin ({DEMO_ADMIN}) approves it.")
    elif demo == "run":
        how = ("With --demo each `cfy-bot run` has its own throw-away data folder, so no other command can approve "
               "it: run the same command again with `--approve-as NAME` (a simulated second admin), or use "
               "`cfy-bot shell --demo`.")
    else:
        how = (f"Another admin approves it with `cfy-bot run \"approve {op_id}\"` under their own login (not "
               f"{requester.name}), or with the Approve button in Slack.")
    return Reply(text=f"{requester.name} confirmed. {op_id} waits for a second admin's approval. {how} "
                      "`operations` shows it; it expires if nobody answers.",
                 title="Waiting for approval", tone=Tone.WARNING)


DEMO_ADMIN = "demo-admin"  # the simulated second admin of `approve OP` typed in `cfy-bot shell --demo`
EOF_ANSWER = "end of input"


class Following:
    """The sink of one command run on a worker thread: its progress reaches the terminal while the user follows it
    and is dropped once they stop following (Ctrl-C in the shell); follow-up questions are always kept. It records
    the operations the run started, to say what runs and to cancel it."""

    def __init__(self, sink: TerminalSink) -> None:
        self.sink = sink
        self.detached = False
        self.op_ids: list[str] = []
        self._lock = threading.Lock()

    def emit(self, event: ProgressEvent) -> None:
        """Record the operation, then print the event unless nobody follows it."""
        with self._lock:
            if event.kind in ("started", "gate") and not event.data.get("operation") \
                    and event.op_id not in self.op_ids:
                self.op_ids.append(event.op_id)
            if self.detached and event.kind != "gate":
                return
        self.sink.emit(event)


@dataclass
class Job:
    """One command text, run on a worker thread of this process."""

    text: str
    sink: Following
    yes: bool = False
    approver: str = ""
    done: threading.Event = field(default_factory=threading.Event)
    outcome: Outcome | None = None
    error: BaseException | None = None

    def op_ids(self) -> list[str]:
        """The operations this run started (or answered)."""
        ids = list(self.sink.op_ids)
        op = self.outcome.operation if self.outcome else None
        op_id = op.id if op else ""
        return ids + [op_id] if op_id and op_id not in ids else ids


class Terminal:
    """Runs command texts through the dispatcher and answers gates at the terminal."""

    def __init__(self, dispatcher: Dispatcher, out: TextIO = sys.stdout, actor: Actor | None = None,
                 ask: Callable[[str], str] | None = None, err: TextIO | None = None, color: bool = False,
                 as_json: bool = False, simulated_approvals: bool = False, demo: bool = False) -> None:
        self.dispatcher = dispatcher
        self.out = out
        # failures and usage errors go to stderr when writing to the real stdout; a given stream takes both
        self.err = err or (sys.stderr if out is sys.stdout else out)
        self.actor = actor or shell_actor()
        self.ask = ask
        self.color, self.as_json = color, as_json
        # --demo (and test harnesses): a second admin may be simulated by name; never against real managers
        self.simulated_approvals = simulated_approvals
        self.demo = demo  # --demo: the data folder, operations included, is removed when this process ends
        self.sink = TerminalSink(out, color=color, as_json=as_json)
        self.shell = False  # the REPL: Ctrl-C stops following (the work goes on); `run`: Ctrl-C cancels
        self.background: list[Job] = []  # runs the shell stopped following, not yet reported

    def run(self, text: str, yes: bool = False, approver: str = "") -> int:
        """Run one command text; the exit code: 0 done, 1 failed or did not happen, 2 usage, 3 waiting for
        another person's approval, 130 left by Ctrl-C (`run`) or no longer followed (shell)."""
        self.dispatcher.operations.expire_due()  # an unanswered gate that left a manager in maintenance mode
        self._alerts()
        demo = self._demo_approve(text)
        if demo is not None:
            return demo
        clock = self.dispatcher.services.clock
        inv = Invocation(text=text, actor=self.actor, channel="terminal", transport="shell", received_at=clock.now())
        job = Job(text, Following(self.sink), yes, approver)
        outcome = self._follow(job, lambda sink: self.dispatcher.handle(inv, sink))
        code = INTERRUPTED if outcome is None else self._complete(job, outcome)
        self._alerts()  # what this command's own expiry check found (`operations`, a decision)
        return code

    def _alerts(self) -> None:
        """Print the alerts of expired gates this process noticed (each once)."""
        for op, text in self.dispatcher.operations.take_alerts():
            self.sink.emit(ProgressEvent(str(op.id), "step", text, Tone.DANGER,
                                         self.dispatcher.services.clock.now()))

    def _complete(self, job: Job, outcome: Outcome) -> int:
        """Answer the gates of a run on this thread, show its reply and ask its follow-up questions."""
        carded: set[str] = set()
        while outcome.gate:
            op_id = outcome.operation.id if outcome.operation else ""
            # the card once: after the requester confirmed, the approval gate repeats it; what waits is said below
            if not self.as_json and op_id not in carded:
                self._show(outcome)
            carded.add(op_id)
            answered = self._answer(job, outcome)
            if answered is None:
                return INTERRUPTED
            outcome = answered
        self._show(outcome)
        self._ask_followups()
        return outcome.exit_code

    # -- following a run on its worker thread -------------------------------------------------------------------
    def _follow(self, job: Job, call: Callable[[Following], Outcome]) -> Outcome | None:
        """Run `call` on a worker thread and follow it; None when the user stopped following it (Ctrl-C)."""
        job.done.clear()
        job.outcome, job.error = None, None
        job.sink.detached = False

        def work() -> None:
            try:
                job.outcome = call(job.sink)
            except BaseException as exc:  # noqa: BLE001 - handed to the terminal's thread, which raises it
                job.error = exc
            finally:
                job.done.set()

        worker = threading.Thread(target=work, name=f"cfy-bot: {job.text[:40]}", daemon=True)
        started, interrupts = False, 0
        while True:
            try:
                if not started:
                    started = True
                    worker.start()
                job.done.wait()
                break
            except KeyboardInterrupt:
                interrupts += 1
            if self.shell:
                self._detach(job)
                return None
            try:
                if interrupts == 1 and self._cancel_on_interrupt(job):
                    continue
            except KeyboardInterrupt:  # pressed again while the cancel was being asked
                pass
            self._leave(job)
            return None
        if job.error is not None:
            raise job.error
        return job.outcome

    def _ops(self, job: Job, running_only: bool = True) -> list[Operation]:
        """The operations of a run, as the store has them now."""
        store = self.dispatcher.services.store
        found = [store.get_operation(op_id) for op_id in job.op_ids()]
        return [op for op in found if op and (not running_only or op.state in ("approved", "running"))]

    def _say(self, text: str) -> None:
        """A line of the terminal's own (what Ctrl-C did); with --json, `{"type": "notice", "text": …}`."""
        if self.as_json:
            print(json.dumps({"type": "notice", "text": text.strip()}), file=self.out, flush=True)
            return
        print(text, file=self.out, flush=True)

    def _detach(self, job: Job) -> None:
        """Ctrl-C in the shell: stop following; the work goes on in this process."""
        job.sink.detached = True
        self.background.append(job)
        try:
            ops = self._ops(job)
            if not ops:
                self._say(f"\n`{job.text}` goes on in this shell; what it answers is shown at the next prompt.")
            for op in ops:
                self._say(f"\n{op.id} goes on in this shell; `operations` shows it, `cancel {op.id}` stops it "
                          "at its next step. How it ends is shown at the next prompt.")
        except KeyboardInterrupt:  # pressed again: it is detached already, `operations` shows it
            pass

    def _cancel_on_interrupt(self, job: Job) -> bool:
        """First Ctrl-C in `run`: ask the run's operations to cancel and keep following; False when there is
        nothing to follow."""
        ops = self._ops(job)
        if not ops:
            self._say(f"\ninterrupted: `{job.text}` had not started an operation; it is abandoned.")
            return False
        for op in ops:
            answer = self.dispatcher.decide(op.id, self.actor, "cancel", NullSink(), "terminal", "shell")
            self._say("\n" + answer.reply.text)
        self._say("Following it until it stops; Ctrl-C again leaves it to the next start of cfy-bot.")
        return True

    def _leave(self, job: Job) -> None:
        """Second Ctrl-C in `run`: this process exits, leaving its operations to be settled at the next start."""
        job.sink.detached = True
        for op in self._ops(job):
            self._say(f"\nleft {op.id} ({op.kind} on {op.manager}, step: {op.step or '-'}) in this "
                      f"process, which exits now: {self._next_start(op)}")

    def _next_start(self, op: Operation) -> str:
        """What the next start of cfy-bot does with `op` if this process exits while it runs."""
        if self.demo:
            return "with --demo its data folder is removed on exit, and the operation with it."
        return next_start(self.dispatcher, op)

    def _ask_followups(self) -> None:
        """Questions an operation left (deactivate maintenance mode after a failed restore), asked here: at a
        terminal the user answers now; otherwise the operation id and the command that answers it are printed.
        --yes never answers them: they come after something went wrong."""
        while self.sink.followups:
            op_id, question = self.sink.followups.pop(0)
            if self.as_json:  # printed as a progress object (kind gate, data.operation) when it was asked
                continue
            interactive = self.ask is not None or sys.stdin.isatty()
            followup = self.dispatcher.services.store.get_operation(op_id)
            owner = (followup.requester if followup else "") or self.actor.id
            if owner != self.actor.id:  # the requester owns the cleanup (two-person rule): say who answers
                name = (followup.requester_name if followup else "") or owner.split(":", 1)[-1]
                print(f"{question}\nOperation {op_id} waits for {name}'s answer: only {name}, who requested it, "
                      f"can confirm it: {name} runs `cfy-bot run \"confirm {op_id}\"` (or `reject {op_id}`); "
                      "`operations` shows it.", file=self.out, flush=True)
                continue
            if not interactive:
                print(f"{question}\nOperation {op_id} waits for your answer: `cfy-bot run \"confirm {op_id}\"` "
                      f"or `cfy-bot run \"reject {op_id}\"`; `operations` shows it.", file=self.out, flush=True)
                continue
            print(question, file=self.out, flush=True)
            answer = self._prompt(f"Type yes to confirm {op_id} now (anything else leaves it waiting): ") or ""
            if answer.strip().lower() in ("y", "yes"):
                self._show(self.dispatcher.decide(op_id, self.actor, "confirm", self.sink, "terminal", "shell"))
            else:
                print(f"{op_id} is left waiting: `confirm {op_id}` or `reject {op_id}` answers it later.",
                      file=self.out, flush=True)

    def _answer(self, job: Job, outcome: Outcome) -> Outcome | None:
        """Answer a gate on this thread; the decision (which may run the operation) runs on a worker."""
        op = outcome.operation
        op_id = op.id if op else ""

        def decide(action: str, actor: Actor) -> Outcome | None:
            return self._follow(job, lambda sink: self.dispatcher.decide(op_id, actor, action, sink, "terminal",
                                                                         "shell"))

        if outcome.gate == "confirm":
            if job.yes:
                return decide("confirm", self.actor)
            if self.ask is None and not sys.stdin.isatty():
                return self.dispatcher.decline(op_id, "no terminal to ask and no --yes", job.sink, "shell")
            typed = self._prompt(f"Type yes to confirm {op_id}: ")
            if typed is None:  # nobody answered: no person is named as having cancelled it
                return self.dispatcher.decline(op_id, EOF_ANSWER, job.sink, "shell")
            answer = typed.strip().lower()
            if answer not in ("y", "yes"):
                decided = self.dispatcher.decide(op_id, self.actor, "reject", job.sink, "terminal", "shell")
                return Outcome(decided.reply, 1, decided.operation)  # what was asked did not happen
            return decide("confirm", self.actor)
        name = job.approver if self.simulated_approvals else ""
        if self.simulated_approvals and not name and not job.yes:
            name = (self._prompt("Name of the simulated second admin who approves (blank: leave it waiting): ")
                    or "").strip()
        if not name:
            demo = ("shell" if self.shell else "run") if self.demo and self.simulated_approvals else ""
            return Outcome(_waiting(op_id, self.actor, demo), 3, op)
        return decide("approve", simulated_admin(name))

    def _demo_approve(self, text: str) -> int | None:
        """`approve OP` typed in `cfy-bot shell --demo` for the user's own restore: there is no other login, so a
        simulated second admin approves it, and says so. None when `text` is not that."""
        words = text.split()
        if not (self.demo and self.simulated_approvals and len(words) == 2 and words[0] == "approve"):
            return None
        op = self.dispatcher.services.store.get_operation(words[1])
        if not op or op.requester != self.actor.id or op.state != "pending" \
                or op.gate != "approve":
            return None
        self._say(f"--demo: there is no other login here, so {DEMO_ADMIN} (a simulated second admin) approves "
                  f"{words[1]}.")
        job = Job(text, Following(self.sink))
        outcome = self._follow(job, lambda sink: self.dispatcher.decide(words[1], simulated_admin(DEMO_ADMIN),
                                                                        "approve", sink, "terminal", "shell"))
        return INTERRUPTED if outcome is None else self._complete(job, outcome)

    def _prompt(self, question: str) -> str | None:
        """The answer typed; None at the end of input (nobody is there to answer)."""
        try:
            if self.ask is not None:
                return self.ask(question)
            if not sys.stdin.isatty():
                return ""
            return input(question)
        except EOFError:
            return None
        except KeyboardInterrupt:
            return ""

    def _show(self, outcome: Outcome) -> None:
        op_id = outcome.operation.id if outcome.operation else ""
        if self.as_json:  # exit 3 waits for a second admin's approval
            gate = outcome.gate or ("approve" if outcome.exit_code == 3 else "")
            print(json.dumps(reply_json(outcome.reply, outcome.exit_code, op_id, gate)), file=self.out, flush=True)
            return
        stream = self.err if outcome.exit_code in (1, 2) and not outcome.gate else self.out  # 3 waits: not a failure
        text = reply_text(outcome.reply, self.color, shown=self._shown(op_id, outcome.reply.text))
        if text:
            print(text, file=stream, flush=True)

    def _shown(self, op_id: str, text: str) -> str:
        """The finished line already printed for this reply's operation (a typed `cancel OP` names no operation in
        its outcome: the line that says the same is found by its text)."""
        if op_id:
            return self.sink.finished.pop(op_id, "")
        for key, line in list(self.sink.finished.items()):
            if text and text in line:
                return self.sink.finished.pop(key)
        return ""

    def repl(self, history: str | None = None, read: Callable[[str], str] | None = None,
             tty: bool | None = None) -> int:
        """Read commands until `exit`, `quit` or end of input (history and Tab completion where readline exists).
        `read` reads one command line (input() by default); `tty` says whether a person answers (stdin is a
        terminal by default)."""
        self.shell = True
        if read is None:
            _line_editing(history, Completer(self.dispatcher.services.registry))
            if hasattr(sys.stdin, "reconfigure"):  # bytes that are not UTF-8 reach the parser, which refuses them
                sys.stdin.reconfigure(errors="surrogateescape")
        if self.ask is None:  # the shell reads its answers where it reads its commands, a terminal or not
            self.ask = _read_answer
        person = sys.stdin.isatty() if tty is None else tty
        print("cfy-bot shell: type `help`, or `exit` to leave.", file=self.out)
        while True:
            self._report_background()
            try:
                line = (read or input)("cfy> ")
            except EOFError:
                print(file=self.out)
                if self._may_leave(person):
                    return 0
                continue
            except KeyboardInterrupt:
                print("^C", file=self.out)
                continue
            self._report_background()  # what ended while the line was typed comes before its answer
            if line.strip() in ("exit", "quit"):
                if self._may_leave(person):
                    return 0
                continue
            if line.strip():
                try:
                    self.run(line)
                except KeyboardInterrupt:  # while a reply or question was printed: what runs is in `operations`
                    print("\ninterrupted; `operations` shows what runs", file=self.out)

    def _report_background(self) -> None:
        """At the prompt: how the runs the shell stopped following ended, and the questions they left."""
        for job in [j for j in self.background if j.done.is_set()]:
            self.background.remove(job)
            if job.error is not None or job.outcome is None:
                self._say(f"`{job.text}` stopped: {job.error!r}")
                continue
            if job.sink.detached:  # nobody saw its end: say which run this is
                ids = job.op_ids()
                self._say(f"{', '.join(ids) or '`' + job.text + '`'} (no longer followed) has ended:")
            self._complete(job, job.outcome)

    def _may_leave(self, person: bool) -> bool:
        """`exit` or end of input: with work running in this shell, say what runs and ask (wait, cancel or leave);
        without a person to ask, wait for it. True when the shell may end."""
        jobs = [j for j in self.background if not j.done.is_set()]
        if not jobs:
            return True
        for job in jobs:
            ops = self._ops(job)
            for op in ops:
                self._say(f"{op.id} ({op.kind} on {op.manager}) is running in this shell, step: "
                          f"{op.step or '-'}")
            if not ops:
                self._say(f"`{job.text}` is still running in this shell")
        if not person:
            self._say("No terminal to ask (standard input is not one), so the shell waits for it to end before "
                      "leaving; Ctrl-C leaves at once.")
            return self._wait_for(jobs, person)
        answer = (self._prompt("Wait for it (w), cancel it (c), or leave anyway (l)? Anything else goes back to "
                               "the prompt: ") or "").strip().lower()
        if answer in ("w", "wait"):
            return self._wait_for(jobs, person)
        if answer in ("c", "cancel"):
            for job in jobs:
                for op in self._ops(job):
                    self._show(self.dispatcher.decide(op.id, self.actor, "cancel", NullSink(), "terminal", "shell"))
            return self._wait_for(jobs, person)
        if answer in ("l", "leave"):
            for job in jobs:
                job.sink.detached = True
                for op in self._ops(job):
                    self._say(f"{op.id} is left running in this process, which ends now: {self._next_start(op)}")
            return True
        return False

    def _wait_for(self, jobs: list[Job], person: bool) -> bool:
        """Follow the runs again until they end (then report them): True; Ctrl-C: back to the prompt (False), or,
        without a person, leave at once (True)."""
        for job in jobs:
            job.sink.detached = False
        try:
            for job in jobs:
                job.done.wait()
        except KeyboardInterrupt:
            for job in jobs:
                job.sink.detached = True
            if not person:
                for job in jobs:
                    for op in self._ops(job):
                        self._say(f"\n{op.id} is left running in this process, which ends now: "
                                  f"{self._next_start(op)}")
                return True
            self._say("\nstopped waiting; back to the prompt.")
            return False
        self._report_background()
        return True


def _read_answer(question: str) -> str:
    """One answer from standard input; Ctrl-C is no answer; end of input raises EOFError (nobody is there)."""
    try:
        return input(question)
    except KeyboardInterrupt:
        return ""


def simulated_admin(name: str) -> Actor:
    """A second admin simulated by name (--demo and test harnesses only); output and audit say so."""
    return Actor(f"shell:{name}", f"{name} (simulated second admin)", "shell")


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


def redact_history(readline: Any) -> None:
    """Typed URL credentials and signatures (`user:pw@`, `?X-Amz-Signature=`) never reach the history file."""
    for index in range(readline.get_current_history_length()):
        line = readline.get_history_item(index + 1)  # 1-based, while replace_history_item is 0-based
        if line and redact_url_secrets(line) != line:
            readline.replace_history_item(index, redact_url_secrets(line))


def path_ok(path: str | None) -> bool:
    """A history file can be kept at `path` (its folder exists)."""
    return bool(path) and os.path.isdir(os.path.dirname(path or "") or ".")


def _save_history(path: str) -> None:
    import readline

    redact_history(readline)
    try:
        readline.write_history_file(path)
    except OSError:
        pass
