"""The official `cfy` CLI 7.0.5, unmodified, against the simulator over real HTTP (issue 15).

The test installs the CLI itself, from tests/cfy-cli-requirements.txt into .cfy-cli/ (reused while that file is
unchanged), and skips with the reason when it cannot be installed here (no network, no package index).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulator import Simulator
from simulator.seed import seed_demo
from simulator.server import make_server

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "tests" / "cfy-cli-requirements.txt"
VENV = ROOT / ".cfy-cli"


def _install() -> Path:
    exe, marker = VENV / "bin" / "cfy", VENV / "installed-from.txt"
    wanted = REQUIREMENTS.read_text()
    if exe.exists() and marker.exists() and marker.read_text() == wanted:
        return exe
    try:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True, capture_output=True,
                       timeout=300)
        pip = subprocess.run([str(VENV / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
                              "-r", str(REQUIREMENTS)], capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"the official cfy CLI (cloudify==7.0.5) cannot be installed here: {exc}")
    if pip.returncode != 0 or not exe.exists():
        why = (pip.stderr.strip().splitlines() or ["pip failed"])[-1]
        pytest.skip(f"the official cfy CLI (cloudify==7.0.5) cannot be installed here: {why}")
    marker.write_text(wanted)
    return exe


@pytest.fixture(scope="module")
def cfy_exe() -> Path:
    return _install()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Simulator, int]]:
    sim = Simulator(data_dir=str(tmp_path / "sim"),
                    durations={"create_snapshot": 0.5, "restore_snapshot": 1.0, "default": 0.3})
    seed_demo(sim)
    server = make_server("127.0.0.1", 0, sim)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield sim, server.server_port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        sim.close()


def test_official_cfy_cli_flows(cfy_exe: Path, served: tuple[Simulator, int], tmp_path: Path) -> None:
    sim, port = served
    env = {**os.environ, "CFY_WORKDIR": str(tmp_path / "cfy-home")}

    def cfy(*words: str, ok: bool = True) -> str:
        done = subprocess.run([str(cfy_exe), *words], capture_output=True, text=True, timeout=120, env=env,
                              stdin=subprocess.DEVNULL)
        out = done.stdout + done.stderr
        assert (done.returncode == 0) == ok, f"cfy {' '.join(words)} -> {done.returncode}\n{out}"
        return out

    assert "Initialization completed successfully" in cfy(
        "profiles", "use", "127.0.0.1", "-u", "admin", "-p", "admin", "-t", "default_tenant", "--rest-port", str(port))
    assert "Active" in cfy("status")
    assert "Showing 7 of 7 snapshots" in cfy("snapshots", "list")
    assert "Successfully created snapshot cli-1." in cfy("snapshots", "create", "cli-1", "-w")
    target = tmp_path / "cli-1.zip"
    assert "Snapshot downloaded" in cfy("snapshots", "download", "cli-1", "-o", str(target))
    assert zipfile.is_zipfile(target)
    assert "The snapshot's id is cli-up" in cfy("snapshots", "upload", str(target), "-s", "cli-up")

    # a healthy manager: --wait ends at once (the default seed has no live queued or scheduled executions)
    assert "Manager is in maintenance mode." in cfy("maintenance-mode", "activate", "--wait", "--timeout", "30")
    assert "currently in maintenance mode" in cfy("maintenance-mode", "status")
    assert "rejected since Cloudify manager is currently in maintenance mode" in cfy("executions", "list", ok=False)
    assert "Showing 9 of 9 snapshots" in cfy("snapshots", "list")
    assert "Maintenance mode is off." in cfy("maintenance-mode", "deactivate")

    listed = cfy("executions", "list", "--include-system-workflows", "--descending")
    assert "create_snapshot" in listed and "Showing" in listed
    assert "prod-apps" in cfy("executions", "list", "-t", "prod-apps", "-d", "web-prod")
    with sim.lock:
        sim.durations["create_snapshot"] = 3600.0  # this one runs long enough to be cancelled
    started = cfy("snapshots", "create", "cli-2")
    eid = started.split("The execution's id is ")[1].split(".")[0]
    assert f"cfy executions get {eid}" in cfy("executions", "cancel", eid)
    assert "cancel" in cfy("executions", "get", eid)
    assert "Showing" in cfy("events", "list", eid, "--include-logs")

    assert "You can use `cfy snapshots status`" in cfy("snapshots", "restore", "cli-1", "-f")
    deadline, state = time.monotonic() + 60, ""
    while time.monotonic() < deadline and "No snapshot is currently being restored" not in state:
        state = cfy("snapshots", "status")  # each call takes a few tenths of a second
    assert "No snapshot is currently being restored" in state
    assert "Showing 0 of 0 snapshots" in cfy("snapshots", "list")  # a legacy restore empties the list
