"""Copy off and upload back over real sockets: the simulator served on 127.0.0.1, the bot's real client."""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Iterator

import pytest

from bot.front.wiring import build_services
from bot.config import load_settings
from bot.engine.dispatch import Dispatcher
from bot.front.shell import Terminal, shell_actor
from simulator import Simulator
from simulator.seed import seed_demo
from simulator.server import make_server
from sim_fixtures import daily_name


@pytest.fixture
def served(tmp_path) -> Iterator[Simulator]:
    sim = Simulator(data_dir=str(tmp_path / "sim"))
    seed_demo(sim)
    server = make_server("127.0.0.1", 0, sim)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    sim.url = f"http://127.0.0.1:{server.server_port}"  # type: ignore[attr-defined]
    yield sim
    server.shutdown()
    server.server_close()
    sim.close()


def run(sim: Simulator, tmp_path, text: str, **env: str) -> tuple[int, str, object]:
    settings = load_settings({"CLOUDIFY_MANAGER_URL": sim.url, "CLOUDIFY_MANAGER_NAME": "production",
                              "CLOUDIFY_USERNAME": "admin", "CLOUDIFY_PASSWORD": "admin",
                              "BOT_DATA_DIR": str(tmp_path / "bot"), "BOT_SHELL_ROLE": "admin", **env})
    services = build_services(settings)
    out = io.StringIO()
    code = Terminal(Dispatcher(services), out=out, actor=shell_actor("alice")).run(text, yes=True)
    return code, out.getvalue(), services


def test_download_and_upload_back_over_http(served, tmp_path) -> None:
    snap = daily_name(served.now(), 1)
    code, out, services = run(served, tmp_path, f"snapshots download {snap}")
    assert code == 0, out
    copy = services.store.get_copy("production", snap)
    with open(copy.location, "rb") as fh, open(served.store.path("default_tenant", snap), "rb") as ref:
        original = ref.read()
        assert fh.read() == original
    code, out, _ = run(served, tmp_path, f"snapshots delete {snap}")
    assert code == 0, out
    code, out, _ = run(served, tmp_path, f"snapshots upload {snap}")
    assert code == 0, out
    with open(served.store.path("default_tenant", snap), "rb") as fh:
        assert fh.read() == original


def test_manager_gone_mid_way(served, tmp_path) -> None:
    served.faults.truncate_downloads(after_bytes=1000, count=1)  # the server closes the socket after 1000 bytes
    code, out, services = run(served, tmp_path, f"snapshots download {daily_name(served.now(), 2)}")
    assert code == 1, out
    assert "broke off the download" in out and "partial file was removed and the catalog is unchanged" in out
    assert services.store.list_copies() == []
    folder = os.path.join(str(tmp_path / "bot"), "archive", "production")
    assert os.listdir(folder) == []


def test_manager_refusing_connections(served, tmp_path) -> None:
    served.faults.refuse_connections()
    code, out, services = run(served, tmp_path, f"snapshots download {daily_name(served.now(), 2)}")
    assert code == 1 and "unreachable" in out and services.store.list_copies() == []
