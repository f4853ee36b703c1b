"""Issue 6: a bot killed with SIGKILL at each step of a restore finishes it on the next start, exactly once."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from simulator import Simulator
from simulator.seed import seed_demo
from simulator.server import make_server
from sim_fixtures import daily_name

pytestmark = pytest.mark.slow


@pytest.fixture
def served(tmp_path):
    sim = Simulator(data_dir=str(tmp_path / "sim"), durations={"restore_snapshot": 2.0, "default": 0.3})
    seed_demo(sim)
    sim.faults.slow(0.05)  # every answer takes a little while, so each phase lasts long enough to be killed in
    server = make_server("127.0.0.1", 0, sim)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield sim, server.server_port
    server.shutdown()
    sim.close()


def _env(tmp_path: Path, port: int, user: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOT_", "CLOUDIFY_", "SLACK_"))}
    env.update(CLOUDIFY_MANAGER_URL=f"http://127.0.0.1:{port}", CLOUDIFY_MANAGER_NAME="production",
               CLOUDIFY_PASSWORD="admin", BOT_DATA_DIR=str(tmp_path / "data"), BOT_SHELL_ROLE="admin",
               USER=user, HOME=str(tmp_path))
    return env


def _bot(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bot.front.cli", *args], env=env, capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)


def _op(db: Path, op_id: str) -> dict:
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    try:
        row = con.execute("SELECT * FROM operations WHERE id = ?", (op_id,)).fetchone()
        return dict(row) if row else {}
    finally:
        con.close()


@pytest.mark.parametrize("marker", ["maintenance mode requested", "restoring daily",
                                    "restore of {snap} started", "the restore is running"])
def test_killed_at_each_step_then_started_again(served, tmp_path, marker: str) -> None:
    sim, port = served
    snap = daily_name(sim.now(), 1)  # seeded relative to the simulator's (real) clock
    marker = marker.format(snap=snap)
    db = tmp_path / "data" / "cfy-bot.db"
    first = _bot(["run", "--yes", f"restore {snap} -f"], _env(tmp_path, port, "alice"))
    assert first.returncode == 3, first.stdout + first.stderr  # waiting for the second admin
    op_id = re.search(r"operation (op-[0-9a-f]+)", first.stdout).group(1)
    runner = subprocess.Popen([sys.executable, "-m", "bot.front.cli", "run", f"approve {op_id}"],
                              env=_env(tmp_path, port, "bob"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    step = ""
    while time.monotonic() < deadline and runner.poll() is None:
        step = _op(db, op_id).get("step") or ""
        if marker in step:
            break
        time.sleep(0.02)
    assert runner.poll() is None, f"the bot finished before it reached {marker!r}: {step!r}"
    os.kill(runner.pid, signal.SIGKILL)
    runner.wait()
    assert _op(db, op_id)["state"] == "running"
    again = _bot(["run", "operations --all"], _env(tmp_path, port, "alice"))
    assert again.returncode == 0, again.stdout + again.stderr
    # the process that settles it says whose it is, and how it ended, on stdout (it succeeded: not a failure)
    assert f"after a restart: {op_id} (restore on production, requested by alice) is succeeded" in again.stdout
    final = _op(db, op_id)
    assert final["state"] == "succeeded", (final, again.stdout, again.stderr)
    restores = [e for e in sim.state.executions.values() if e["workflow_id"] == "restore_snapshot"]
    assert len(restores) == 1, "a restart must never post a second restore"
    # the resumed restore's report, every line read back from the simulator and the store, reaches this process
    summary = again.stdout.split(f"OK Restored {snap} on production (requested by alice, approved by bob).\n", 1)
    assert len(summary) == 2, again.stdout
    lines = dict(line.split(": ", 1) for line in summary[1].split("\nafter a restart:", 1)[0].splitlines())
    assert lines["snapshot"] == snap
    assert lines["execution"] == f"{restores[0]['id']} terminated" and restores[0]["status"] == "terminated"
    assert lines["scheduled executions"] == "none were scheduled"
    assert lines["cancelled by the bot"] == "none"
    left = sum(len(per_tenant) for per_tenant in sim.state.snapshots.values())
    assert lines["snapshots"].startswith(f"{left} snapshots on production now"), lines["snapshots"]
    assert lines["maintenance mode"] == "deactivated"
    assert re.fullmatch(r"copy off \d+s, maintenance \d+s, restore request \d+s, restore \d+s, deactivate \d+s; "
                        r"total \d+s \(wall clock, the time the bot was down included\)", lines["durations"])
    assert set(lines) == {"snapshot", "execution", "scheduled executions", "cancelled by the bot", "snapshots",
                          "maintenance mode", "durations"}, lines
    assert sim.state.maintenance["status"] == "deactivated"
    verify = _bot(["audit", "verify"], _env(tmp_path, port, "alice"))
    assert verify.returncode == 0, verify.stdout + verify.stderr
