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
