"""`cfy-bot`: the process entry point (shell, run, docs, check, simulator, http, socket, audit)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from bot.errors import BotError, ConfigError

# simulator.seed.Scenario, spelled out so that parsing the command line does not import the simulator
SCENARIOS = ("healthy", "stuck-maintenance")
SCENARIO_HELP = ("the simulated managers' state: healthy (default; nothing queued or scheduled) or stuck-maintenance "
                 "(4 live scheduled executions keep maintenance mode activating until they are cancelled)")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cfy-bot", description="Slack chat-ops for Cloudify Manager backups.")
    p.add_argument("--version", action="version", version=f"cfy-bot {_version()}")
    sub = p.add_subparsers(dest="cmd", required=True)
    sh = sub.add_parser("shell", help="interactive terminal front end")
    run = sub.add_parser("run", help="run one command and exit (0 done, 1 failed or did not happen, 2 usage "
                                     "error, 3 waiting for another person, 130 left by a second Ctrl-C)")
    for q in (sh, run):
        q.add_argument("--demo", action="store_true", help="use embedded simulated managers")
        q.add_argument("-m", "--manager", help="default manager for this session")
        q.add_argument("--scenario", choices=SCENARIOS, default=None, help=f"with --demo: {SCENARIO_HELP}")
    run.add_argument("--yes", action="store_true", help="answer confirmations with yes")
    run.add_argument("--approve-as", default="", metavar="NAME",
                     help="with --demo only: a simulated second admin who approves restores")
    run.add_argument("--json", action="store_true", help="one JSON object per line: progress, then the reply")
    run.add_argument("text", help="the command, e.g. \"snapshots list\"")
    docs = sub.add_parser("docs", help="print the command table (Markdown)")
    docs.add_argument("--update", metavar="README", help="rewrite the table inside this README instead")
    sub.add_parser("check", help="validate configuration and reach every manager")
    sim = sub.add_parser("simulator", help="serve a simulated Cloudify manager over HTTP")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8100)
    sim.add_argument("--data-dir", default=None)
    sim.add_argument("--scenario", choices=SCENARIOS, default="healthy",
                     help=SCENARIO_HELP + "; applies when the data folder is new")
    http = sub.add_parser("http", help="serve Slack over HTTP (/slack/events, /health)")
    http.add_argument("--port", type=int, default=int(os.environ.get("PORT", "3000")))
    http.add_argument("--threads", type=int, default=8)
    sub.add_parser("socket", help="connect to Slack in Socket Mode")
    sub.add_parser("scheduler", help="run the daily backups without Slack (summaries and alerts to the terminal)")
    audit = sub.add_parser("audit", help="check or export the audit log")
    asub = audit.add_subparsers(dest="audit_cmd", required=True)
    ver = asub.add_parser("verify", help="check the hash chain; exit 1 naming the first bad row")
    ver.add_argument("--expect-head", default=None, metavar="SEQ:HASH",
                     help="a head printed before (by verify or the daily summary) that must still be there")
    exp = asub.add_parser("export", help="stream audit rows")
    exp.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    exp.add_argument("--since", default=None, help="ISO time or a duration such as 24h")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if getattr(args, "scenario", None) and args.cmd in ("shell", "run") and not args.demo:
        parser.error("--scenario goes with --demo (it chooses the simulated managers' state)")
    if args.cmd not in ("shell", "run"):  # servers: stderr is their log; the terminal's is set up in _terminal
        logging.basicConfig(level=_log_level(), format=LOG_FORMAT)
    if args.cmd == "simulator":
        return _simulator(args)
    if args.cmd == "docs":
        import commands  # noqa: F401
        from bot.spec.help import docs_table
        from bot.spec.registry import REGISTRY

        if args.update:
            return _update_readme(args.update, docs_table(REGISTRY))
        print(docs_table(REGISTRY))
        return 0
    try:
        return _with_settings(args)
    except ConfigError as exc:
        print(f"cfy-bot cannot start: {exc}", file=sys.stderr)
        return 2
    except BotError as exc:
        print(f"cfy-bot: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


TERMINAL_HANDLER = "cfy-bot-terminal"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _log_level() -> str:
    return os.environ.get("BOT_LOG_LEVEL", "WARNING").upper()


class BriefFormatter(logging.Formatter):
    """A terminal's log line: no traceback (that goes to the log file), but where to find it."""

    def __init__(self, log_path: str) -> None:
        super().__init__(LOG_FORMAT)
        self.log_path = log_path

    def format(self, record: logging.LogRecord) -> str:
        if not (record.exc_info or record.stack_info):
            return super().format(record)
        brief = logging.makeLogRecord(record.__dict__)
        brief.exc_info, brief.exc_text, brief.stack_info = None, None, None
        return f"{super().format(brief)} (traceback in {self.log_path})"


def terminal_logging(log_path: str, stream: Any = None) -> list[logging.Handler]:
    """Log the terminal's process: whole records with tracebacks to `log_path`, brief lines to stderr.

    Returns the handlers added (a second call replaces the first call's)."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == TERMINAL_HANDLER]:
        root.removeHandler(old)
        old.close()
    os.makedirs(os.path.dirname(log_path) or ".", exist_ok=True)
    os.close(os.open(log_path, os.O_CREAT | os.O_APPEND | os.O_WRONLY, 0o600))  # private before the first line
    to_file = logging.FileHandler(log_path, encoding="utf-8")
    to_file.setFormatter(logging.Formatter(LOG_FORMAT))
    to_term = logging.StreamHandler(stream or sys.stderr)
    to_term.setFormatter(BriefFormatter(log_path))
    added: list[logging.Handler] = [to_file, to_term]
    for handler in added:
        handler.set_name(TERMINAL_HANDLER)
        root.addHandler(handler)
    root.setLevel(_log_level())
    return added


def _terminal_log_path(settings: Any, demo: bool) -> str:
    """`<data>/cfy-bot.log`; a demo's data folder is removed on exit, so its log is kept in the temp folder."""
    if not demo:
        return os.path.join(settings.data_dir, "cfy-bot.log")
    import getpass
    import tempfile

    return os.path.join(tempfile.gettempdir(), f"cfy-bot-demo-{getpass.getuser()}.log")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cfy-bot")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _simulator(args: argparse.Namespace) -> int:
    """Serve the simulator; a port that cannot be bound is one line on stderr and exit 1, before any claim."""
    from simulator.server import serve

    def ready(url: str) -> None:
        state = "" if args.scenario == "healthy" else f", scenario {args.scenario}"
        print(f"simulated Cloudify manager on {url} (admin/admin, default_tenant{state})", flush=True)

    try:
        serve(args.host, args.port, data_dir=args.data_dir, ready=ready, scenario=args.scenario)
    except OSError as exc:
        print(f"cfy-bot simulator: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


def _update_readme(path: str, table: str) -> int:
    import re

    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    pattern = re.compile(r"(<!-- commands:start -->\n).*?(\n<!-- commands:end -->)", re.S)
    if not pattern.search(text):
        print(f"cfy-bot: {path} has no <!-- commands:start --> block", file=sys.stderr)
        return 1
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(pattern.sub(lambda m: m.group(1) + table + m.group(2), text))
    return 0


def _with_settings(args: argparse.Namespace) -> int:
    from bot.config import load_audit_settings, load_settings

    if args.cmd == "audit":  # the database and the key only: an auditor's copy needs no manager configured
        from bot.front.audit import run_audit

        _load_dotenv()
        return run_audit(args, load_audit_settings())
    demo = None
    if getattr(args, "demo", False):
        from bot.front.demo import make_demo

        demo = make_demo(dict(os.environ), scenario=args.scenario or "healthy")
        settings, transport = demo.settings, demo.transport
    else:
        _load_dotenv()
        settings, transport = load_settings(), None
    try:
        return _dispatch(args, settings, transport)
    finally:
        if demo is not None:
            demo.close()


def _load_dotenv() -> None:
    from dotenv import load_dotenv

    load_dotenv(os.path.join(os.getcwd(), ".env"), override=False)


def _dispatch(args: argparse.Namespace, settings: Any, transport: Any) -> int:
    if args.cmd in ("shell", "run"):
        return _terminal(args, settings, transport)
    if args.cmd == "check":
        from bot.front.check import run_check

        return run_check(settings, transport=transport)
    if args.cmd == "http":
        from bot.slack import serve_http

        return serve_http(settings, port=args.port, threads=args.threads)
    if args.cmd == "socket":
        from bot.slack import serve_socket

        return serve_socket(settings)
    if args.cmd == "scheduler":
        return _scheduler(settings, transport)
    return 2


def _reconcile(dispatcher: Any, sink: Any, as_json: bool = False) -> None:
    """At start-up: finish or settle what a stopped bot left running, and say what became of each. Its progress
    and report reach this terminal (the person who started it may be gone), under a line that says whose it is."""
    from bot.core import Operation, person

    def named(op: Operation) -> str:
        who = op.requester_name or person(op.requester)
        return f"{op.id} ({op.kind} on {op.manager}, requested by {who})"

    def resuming(op: Operation) -> Any:
        print(f"after a restart: {named(op)} was left {op.state} by a bot process that stopped; this one settles "
              "it here:", file=sys.stderr if as_json else sys.stdout, flush=True)
        return sink

    settled: list[Operation] = dispatcher.operations.reconcile(sink_for=resuming)
    for op in settled:
        stream = sys.stdout if op.state == "succeeded" and not as_json else sys.stderr
        print(f"after a restart: {named(op)} is {op.state}" + (f": {op.error}" if op.error else ""),
              file=stream, flush=True)


def _scheduler(settings: Any, transport: Any) -> int:
    """The daily backups in the foreground: summaries and alerts printed, until Ctrl-C or SIGTERM."""
    import signal
    import threading

    from bot.front.wiring import build_dispatcher
    from bot.schedule.notify import LogNotifier
    from bot.schedule.scheduler import start_scheduler
    from bot.front.shell import TerminalSink

    dispatcher = build_dispatcher(settings, transport=transport)
    _reconcile(dispatcher, TerminalSink(sys.stdout))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    thread = start_scheduler(dispatcher.services, LogNotifier(sys.stdout), stop, dispatcher=dispatcher,
                             sink=TerminalSink(sys.stdout))
    print(f"daily backups of {', '.join(m.name for m in settings.managers)} at `{settings.backup_schedule}` "
          f"({settings.timezone}); Ctrl-C stops", flush=True)
    try:
        while thread.is_alive() and not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        stop.set()
    from bot.engine.liveness import RUNNING_HERE

    if thread.is_alive() and RUNNING_HERE:
        print(f"stopping: a running job gets {STOP_GRACE_S:.0f} s to finish; Ctrl-C again leaves it", flush=True)
    try:
        thread.join(timeout=STOP_GRACE_S)
    except KeyboardInterrupt:
        pass
    _say_left(dispatcher)
    return 0


STOP_GRACE_S = 30.0  # how long `scheduler` waits, once stopped, for the job it is running


def _say_left(dispatcher: Any) -> None:
    """Operations this process still runs as it exits: each named, with what the next start does with it."""
    from bot.engine.liveness import RUNNING_HERE
    from bot.front.shell import next_start

    for op_id in sorted(RUNNING_HERE):
        op = dispatcher.services.store.get_operation(op_id)
        if op is not None and op.state == "running":
            print(f"left {op_id} ({op.kind} on {op.manager}, step: {op.step or '-'}) running in this "
                  f"process, which exits now: {next_start(dispatcher, op)}", file=sys.stderr, flush=True)


def _terminal(args: argparse.Namespace, settings: Any, transport: Any) -> int:
    from dataclasses import replace

    from bot.front.wiring import build_dispatcher
    from bot.front.shell import Terminal

    if args.manager:
        names = [m.name for m in settings.managers]
        if args.manager not in names:
            print(f"cfy-bot: unknown manager {args.manager!r}; configured: {', '.join(names)}", file=sys.stderr)
            return 2
        first = settings.manager(args.manager)
        settings = replace(settings, managers=(first, *[m for m in settings.managers if m.name != args.manager]))
    from bot.front.render import use_color

    dispatcher = build_dispatcher(settings, transport=transport)  # checks the data folder first
    terminal_logging(_terminal_log_path(settings, bool(args.demo)))
    as_json = bool(getattr(args, "json", False))
    if getattr(args, "approve_as", "") and not args.demo:
        print("cfy-bot: --approve-as only works with --demo (a simulated second admin); against real managers "
              "another admin approves under their own login: cfy-bot run \"approve OPERATION_ID\"", file=sys.stderr)
        return 2
    term = Terminal(dispatcher, color=not as_json and use_color(sys.stdout, dict(os.environ)), as_json=as_json,
                    simulated_approvals=bool(args.demo), demo=bool(args.demo))
    _reconcile(dispatcher, term.sink, as_json)
    if args.cmd == "run":
        return term.run(args.text, yes=args.yes, approver=args.approve_as)
    return term.repl(history=os.path.join(settings.data_dir, "shell-history"))


def entry() -> None:
    """The `cfy-bot` console script and `python -m bot.front.cli`: main() in a process of its own."""
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        # the reader went away (`cfy-bot run … | head -1`): what it read is all it wanted; no traceback, and
        # no second error when Python flushes stdout at exit
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = 141  # 128 + SIGPIPE, as a shell reports a writer that lost its reader
    sys.exit(code)


if __name__ == "__main__":
    entry()
