"""Issue 3: the terminal front end against simulated managers; bad input gets a clear answer, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sim_fixtures import daily

TRACEBACK = "Traceback (most recent call last)"


def test_status_names_each_manager(make_bot) -> None:
    bot = make_bot(managers=("production", "staging"))
    code, out = bot.run("status")
    assert code == 0
    assert "production (http://" in out and "staging (http://" in out and "version 7.0.5" in out
    assert "*" not in out  # Slack markup stays in Slack
    assert f"newest snapshot: {daily(1)}" in out and "maintenance: deactivated" in out
    code, out = bot.run("status -m staging")
    assert "staging (http://" in out and "production (http://" not in out


def test_read_only_commands(bot) -> None:
    code, out = bot.run("snapshots list --descending")
    assert code == 0 and f"{daily(1)}" in out and "archive copy" in out
    assert out.index(f"{daily(1)}") < out.index(f"{daily(5)}")
    code, out = bot.run(f"snapshot show {daily(3)}")
    assert code == 0 and "failed" in out and "pg_dump" in out
    code, out = bot.run("snapshots status")
    assert code == 0 and "No snapshot is currently being restored" in out
    code, out = bot.run("maintenance status")
    assert code == 0 and "not in maintenance mode" in out
    code, out = bot.run("cluster status")
    assert code == 0 and "OK" in out
    code, out = bot.run("managers")
    assert code == 0 and "production" in out and "answering" in out


def test_help_forms(bot) -> None:
    code, out = bot.run("help")
    assert code == 0 and "snapshots list" in out
    code, out = bot.run("help maintenance")
    assert code == 0 and "maintenance-mode activate" in out
    code, out = bot.run("snapshots create --help")
    assert code == 0 and "--exclude-credentials" in out and "Examples:" in out


def test_usage_errors_exit_2_with_a_suggestion(bot) -> None:
    code, out = bot.run("snapshots lsit")
    assert code == 2 and "Did you mean `snapshots list`?" in out
    code, out = bot.run('snapshots show "unbalanced')
    assert code == 2 and "quotes" in out
    code, out = bot.run("snapshots show 9lives")
    assert code == 2 and "must begin with a letter" in out
    code, out = bot.run("status -m nowhere")
    assert code == 2 and "unknown manager 'nowhere'" in out and "production" in out


def test_manager_down(bot) -> None:
    bot.sim.faults.refuse_connections(seconds=3600)
    code, out = bot.run("snapshots list")
    assert code == 1 and "production is unreachable" in out and "connection refused" in out


def test_wrong_credentials_unknown_tenant_and_garbage(make_bot) -> None:
    bot = make_bot(manager={"password": "Pw-canary-77"})
    code, out = bot.run("snapshots list")
    assert code == 1 and "rejected the credentials for user admin" in out and "Pw-canary-77" not in out
    bot = make_bot(manager={"tenant": "no_such_tenant"})
    code, out = bot.run("snapshots list")
    assert code == 1 and "tenant no_such_tenant does not exist" in out
    bot = make_bot()
    bot.sim.faults.garbage_responses(seconds=3600)
    code, out = bot.run("snapshots list")
    assert code == 1 and "is this a Cloudify manager" in out


def test_failover_is_said(tmp_path, clock) -> None:
    from bot.front.wiring import build_services
    from bot.cloudify import wsgi_transport
    from bot.config import load_settings
    from bot.engine.dispatch import Dispatcher
    from bot.settings import ManagerSettings
    from bot.front.shell import Terminal, shell_actor
    from simulator import Simulator
    from simulator.seed import seed_demo

    sim = Simulator(now=clock.time, sleep=clock.sleep, data_dir=str(tmp_path / "sim"))
    sim.set_cluster(["mgr-1", "mgr-2"])
    seed_demo(sim)
    sim.set_node_down("mgr-1")
    ms = ManagerSettings("production", ("http://mgr-1.test", "http://mgr-2.test"), "admin", "admin")
    settings = load_settings({"BOT_DATA_DIR": str(tmp_path / "d"), "BOT_SHELL_ROLE": "admin"}, managers=(ms,))
    transport = wsgi_transport({"mgr-1.test": sim.node_wsgi("mgr-1"), "mgr-2.test": sim.node_wsgi("mgr-2")})
    import io

    out = io.StringIO()
    Terminal(Dispatcher(build_services(settings, clock=clock, transport=transport)), out=out,
             actor=shell_actor("alice")).run("snapshots list")
    assert "now talking to http://mgr-2.test" in out.getvalue()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60))
def test_random_text_in_the_shell_never_shows_a_traceback(bot, text: str) -> None:
    if text.strip().split(" ")[0:1] and text.strip().split()[:1] in (["restore"], ["approve"], ["confirm"]):
        return  # gated commands are covered elsewhere; here: parsing and quick answers
    code, out = bot.run(text)
    assert code in (0, 1, 2)
    assert TRACEBACK not in out and "internal error" not in out


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("BOT_", "CLOUDIFY_", "SLACK_"))}
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "bot.front.cli", *args], capture_output=True, text=True, timeout=120,
                          env=full, stdin=subprocess.DEVNULL)


def test_cli_exit_codes_in_the_demo(tmp_path) -> None:
    ok = _cli("run", "--demo", "status", env={"HOME": str(tmp_path)})
    assert ok.returncode == 0 and "production (http://" in ok.stdout, ok.stderr
    usage = _cli("run", "--demo", "snapshots lsit", env={"HOME": str(tmp_path)})
    assert usage.returncode == 2 and "Did you mean" in usage.stderr and not usage.stdout
    failed = _cli("run", "--demo", "snapshots show nothing-here", env={"HOME": str(tmp_path)})
    assert failed.returncode == 1 and "does not exist" in failed.stderr and "does not exist" not in failed.stdout
    for result in (ok, usage, failed):
        assert TRACEBACK not in result.stdout + result.stderr


def test_cli_refuses_to_start_with_every_config_problem(tmp_path) -> None:
    bad = _cli("run", "status", env={"HOME": str(tmp_path), "CLOUDIFY_MANAGER_URL": "ftp://x",
                                     "BOT_GATE_TTL": "soon"})
    assert bad.returncode == 2 and "ftp://x" in bad.stderr and "BOT_GATE_TTL" in bad.stderr
    assert TRACEBACK not in bad.stderr


def test_check_reports_each_manager(tmp_path) -> None:
    down = _cli("check", env={"HOME": str(tmp_path), "CLOUDIFY_MANAGER_URL": "http://127.0.0.1:9",
                              "CLOUDIFY_PASSWORD": "x"})
    assert down.returncode == 1 and "unreachable" in down.stdout and "configuration OK" in down.stdout


# --- issue 16: stored text reaches the terminal without escape sequences or control characters -------------

HOSTILE = "\x1b]0;owned\x07\x1b[2J\x1b[31mred\x1b[0m \x9b1mcsi\r\x08\u202eevil\x00 ok"


def test_terminal_safe_strips_escapes_and_controls_but_keeps_lines() -> None:
    from bot.front.render import terminal_safe

    assert terminal_safe(HOSTILE) == "red csievil ok"
    assert terminal_safe("a\n\tb ✔ café") == "a\n\tb ✔ café"
    assert terminal_safe("\x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\") == "click"


def test_stored_incident_text_is_shown_without_escape_sequences(make_bot) -> None:
    bot = make_bot()
    code, out = bot.run("incident start disk full")
    assert code == 0, out
    incident = "inc-20261129-disk-full"
    assert incident in out, out
    # A note as stored by another transport (Slack lets any character through) or an older version.
    bot.store.append_audit("incident_note", actor="slack:UEVE", transport="slack", channel="COPS",
                           detail={"incident": incident, "text": HOSTILE})
    code, out = bot.run(f"incident close -i {incident} done")
    assert code == 0 and "noted: red csievil ok" in out, out
    for shown in (out, bot.run("audit -n 5")[1]):
        assert not any(c in shown for c in ("\x1b", "\x9b", "\x07", "\x00", "\r", "\x08", "\u202e")), repr(shown)


def test_progress_lines_are_terminal_safe() -> None:
    from datetime import UTC, datetime

    from bot.core import ProgressEvent
    from bot.front.render import progress_line

    line = progress_line(ProgressEvent("op-1", "step", HOSTILE, "danger", datetime(2026, 1, 1, tzinfo=UTC), {}),
                         color=True)
    assert "\x1b]" not in line and "\x1b[2J" not in line and "\x07" not in line and "red csievil ok" in line
    assert "\x1b[31m" in line  # the renderer's own colour is kept


# --- issue 16: bytes that are not UTF-8, lone surrogates and control characters are usage errors, audited ------


def test_a_non_utf8_terminal_argument_is_an_audited_usage_error(make_bot) -> None:
    bot = make_bot()
    text = b"snapshots show caf\xe9".decode("utf-8", "surrogateescape")  # what Python makes of such argv bytes
    code, out = bot.run(text)
    assert code == 2 and "character 19 of the command is the byte 0xE9, which is not UTF-8" in out
    rows = bot.store.query_audit(limit=2)
    assert [r["event"] for r in rows] == ["usage_error", "invoke"]
    assert rows[1]["detail"]["text"] == "snapshots show caf\\udce9"  # kept, visibly, as valid UTF-8
    assert bot.store.verify_audit().ok


def test_lone_surrogates_and_controls_anywhere_are_usage_errors_not_internal_errors(make_bot) -> None:
    bot = make_bot()
    for text, what in (("incident note \ud83d half", "U+D83D, half of a character"),
                       ("status \x1b[2J", "the control character U+001B"),
                       ("audit -u \x00", "the control character U+0000")):
        code, out = bot.run(text)
        assert code == 2 and what in out and "internal error" not in out, out
    assert bot.store.verify_audit().ok


def test_cli_with_non_utf8_argv_bytes_exits_2_without_a_traceback(tmp_path) -> None:
    env = {**os.environ, "PYTHONPATH": os.getcwd(), "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "bot.front.cli", "run", "--demo", b"snapshots show caf\xe9"],
                          env=env, cwd=tmp_path, capture_output=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert b"Traceback" not in done.stderr and b"is the byte 0xE9, which is not UTF-8" in done.stdout + done.stderr
