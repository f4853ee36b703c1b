"""bot/cloudify.py against the project's Cloudify Manager simulator, in-process over the real client.

The simulator reproduces the manager's bodies, status codes, quirks and faults (simulator/faults.py);
these tests check that the client's wire shape is accepted and every answer lands in the right error.
"""

from __future__ import annotations

import io
import tracemalloc
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bot import errors
from bot.clock import FakeClock
from bot.cloudify import Manager, wsgi_transport
from bot.settings import ManagerSettings
from simulator import Simulator

URL = "http://mgr-1.sim"
MiB = 1 << 20


class Counting:
    """WSGI middleware that counts the requests reaching one node."""

    def __init__(self, app: Callable) -> None:
        self.app, self.requests = app, []

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        self.requests.append((environ["REQUEST_METHOD"], environ["PATH_INFO"]))
        return self.app(environ, start_response)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_795_000_000.0)


@pytest.fixture
def make(clock: FakeClock) -> Iterator[Callable[..., tuple[Simulator, Manager, list[str]]]]:
    """`make(nodes=("mgr-1",), version="7.0.5", **settings)`: a simulator and a Manager over its nodes."""
    sims: list[Simulator] = []

    def build(nodes: tuple[str, ...] = ("mgr-1",), version: str = "7.0.5",
              **kw: Any) -> tuple[Simulator, Manager, list[str]]:
        sim = Simulator(now=clock.time, sleep=clock.sleep, version=version)
        sims.append(sim)
        if len(nodes) > 1:
            sim.set_cluster(list(nodes))
        apps = {f"{n}.sim": Counting(sim.node_wsgi(n)) for n in nodes}
        base: dict[str, Any] = dict(name="prod", urls=tuple(f"http://{n}.sim" for n in nodes), username="admin",
                                    password="admin")
        base.update(kw)
        notices: list[str] = []
        manager = Manager(ManagerSettings(**base), transport=wsgi_transport(apps), clock=clock,
                          on_notice=notices.append)
        manager.apps = apps  # type: ignore[attr-defined]
        return sim, manager, notices

    yield build
    for sim in sims:
        sim.close()


def created(manager: Manager, clock: FakeClock, sid: str = "s1", legacy: bool = False) -> dict:
    """Create a snapshot and let the simulated manager finish it."""
    execution = manager.create_snapshot(sid, legacy=legacy)
    clock.advance(30)
    assert manager.get_execution(execution.id).status == "terminated"
    return execution


def pieces(total: int, size: int = 256 * 1024) -> Iterator[bytes]:
    """`total` bytes in pieces of `size`, produced lazily (the manager does not inspect an upload)."""
    block = b"\0" * size
    sent = 0
    while sent < total:
        piece = block[: min(size, total - sent)]
        sent += len(piece)
        yield piece


# --- the wire shape is what the manager accepts --------------------------------------------------------


def test_daily_cycle_create_follow_download_upload(make: Callable, clock: FakeClock) -> None:
    sim, m, _ = make()
    execution = m.create_snapshot("daily-1", legacy=False)
    assert execution.workflow_id == "create_snapshot"
    assert execution.parameters["config"] == "[redacted]"
    clock.advance(30)
    done = m.get_execution(execution.id)
    assert done.status == "terminated" and done.parameters["config"] == "[redacted]"
    assert m.get_snapshot("daily-1")["status"] == "created"
    assert [s["id"] for s in m.list_snapshots().items] == ["daily-1"]
    events = m.list_events(execution.id)
    assert events.total == len(events.items) > 0
    with m.download_snapshot("daily-1") as download:
        data = b"".join(download.chunks)
    assert download.size == len(data) and download.filename == "daily-1.zip"
    assert "metadata.json" in zipfile.ZipFile(io.BytesIO(data)).namelist()
    uploaded = m.upload_snapshot("copy-1", iter([data[:1000], data[1000:]]))
    assert uploaded["status"] == "uploaded"
    with m.download_snapshot("copy-1") as download:
        assert b"".join(download.chunks) == data
    assert m.delete_snapshot("copy-1")["id"] == "copy-1"


def test_upload_asks_the_version_first(make: Callable) -> None:
    sim, m, _ = make()
    m.upload_snapshot("u1", iter([b"PK not really a zip"]))
    assert m.apps["mgr-1.sim"].requests[-2:] == [  # type: ignore[attr-defined]
        ("GET", "/api/version"), ("PUT", "/api/v3.1/snapshots/u1/archive")]


def test_restore_is_accepted_on_7x_and_5x(make: Callable, clock: FakeClock) -> None:
    for version in ("7.0.5", "5.2.7"):
        sim, m, _ = make(version=version)
        created(m, clock, legacy=True)
        restore = m.restore_snapshot("s1", force=True)
        assert restore.status in ("pending", "started")
        clock.advance(120)
        assert m.snapshot_status() == "not-running"


def test_maintenance_cycle_with_the_real_quirks(make: Callable, clock: FakeClock) -> None:
    sim, m, _ = make()
    assert m.maintenance_status()["remaining_executions"] == []
    m.create_snapshot("busy", legacy=False)  # an execution keeps activation in `activating`
    activating = m.maintenance_activate()
    assert activating["status"] == "activating"
    assert [e["workflow_id"] for e in activating["remaining_executions"]] == ["create_snapshot"]
    with pytest.raises(errors.EnteringMaintenanceMode, match="entering maintenance mode"):
        m.create_snapshot("blocked", legacy=True)
    with pytest.raises(errors.NotModified, match="maintenance mode is already on"):
        m.maintenance_activate()
    clock.advance(30)
    assert m.maintenance_status()["status"] == "activated"
    assert m.list_snapshots().total == 1  # snapshots stay allowed while activated
    m.maintenance_deactivate()
    with pytest.raises(errors.NotModified, match="maintenance mode is already off"):
        m.maintenance_deactivate()


def test_cluster_endpoints_and_pinned_nodes(make: Callable) -> None:
    sim, m, _ = make(nodes=("mgr-1", "mgr-2"))
    assert m.managers().total == 2 and m.db_nodes().total >= 1
    assert all(b["password"] in (None, "[redacted]") for b in m.brokers().items)
    assert m.cluster_status()["status"] == "OK"
    for url in m.urls:
        assert m.for_node(url).cluster_status()["services"]
    assert m.status()["status"] in ("OK", "Fail") and m.ok() is True


# --- error answers, from the simulator's real bodies -----------------------------------------------------


def test_wrong_password_and_the_fallback_after_a_restore(make: Callable, clock: FakeClock) -> None:
    sim, m, _ = make(password="wrong-pw")
    with pytest.raises(errors.AuthenticationFailed) as info:
        m.list_snapshots()
    assert str(info.value).startswith(f"manager prod at {URL} rejected the credentials for user admin: ")
    assert "wrong-pw" not in str(info.value)
    assert m.with_password("admin").list_snapshots().total == 0


def test_unknown_tenant_and_missing_things(make: Callable) -> None:
    sim, m, _ = make(tenant="nope")
    with pytest.raises(errors.TenantNotFound, match="^tenant nope does not exist on manager prod$"):
        m.list_snapshots()
    sim, m, _ = make()
    with pytest.raises(errors.ManagerNotFound, match="^snapshot ghost does not exist on manager prod"):
        m.get_snapshot("ghost")
    with pytest.raises(errors.ManagerNotFound, match="^execution e-0 does not exist on manager prod"):
        m.get_execution("e-0")


def test_a_wrong_url_prefix_is_not_the_rest_api(make: Callable) -> None:
    sim, m, _ = make(urls=(URL + "/cloudify",))
    with pytest.raises(errors.ManagerNotFound, match=r"does not serve the Cloudify REST API at this path \(is the URL"):
        m.list_snapshots()


def test_conflict_bad_id_and_failed_snapshot(make: Callable, clock: FakeClock) -> None:
    sim, m, _ = make()
    created(m, clock)
    with pytest.raises(errors.Conflict, match="snapshot s1 already exists on manager prod"):
        m.create_snapshot("s1", legacy=False)
    with pytest.raises(errors.BadRequest, match="must begin with a letter"):
        m.create_snapshot("1bad", legacy=False)
    sim.faults.fail_next("create_snapshot", "disk full")
    m.create_snapshot("broken", legacy=False)
    clock.advance(30)
    assert m.get_snapshot("broken")["status"] == "failed"
    with pytest.raises(errors.SnapshotActionError, match="Failed snapshot cannot be downloaded"), \
            m.download_snapshot("broken"):
        pass
    with pytest.raises(errors.SnapshotActionError, match="Failed snapshot cannot be restored"):
        m.restore_snapshot("broken")


def test_executions_running_keeps_their_ids(make: Callable, clock: FakeClock) -> None:
    sim, m, _ = make()
    created(m, clock)
    running = m.create_snapshot("busy", legacy=False)
    with pytest.raises(errors.ExecutionsRunning) as info:
        m.restore_snapshot("s1")
    assert running.id in info.value.execution_ids  # type: ignore[attr-defined]
    assert "restore snapshot s1" in str(info.value)


@pytest.mark.parametrize("nodes", [("mgr-1",), ("mgr-1", "mgr-2")])
def test_maintenance_503_is_neither_retried_nor_failed_over(make: Callable, clock: FakeClock,
                                                            nodes: tuple[str, ...]) -> None:
    sim, m, notices = make(nodes=nodes)
    execution = created(m, clock)
    m.maintenance_activate()
    before = {name: len(app.requests) for name, app in m.apps.items()}  # type: ignore[attr-defined]
    with pytest.raises(errors.MaintenanceModeActive) as info:
        m.get_execution(execution.id)
    after = {name: len(app.requests) for name, app in m.apps.items()}  # type: ignore[attr-defined]
    assert sum(after.values()) - sum(before.values()) == 1 and notices == []
    assert info.value.status == 503 and info.value.error_code == "maintenance_mode_active"
    assert m.get_execution(execution.id, bypass_maintenance=True).status == "terminated"  # sys-admin may
    assert m.list_events(execution.id, bypass_maintenance=True).total > 0
    assert m.list_executions(workflow_id="create_snapshot", size=10, bypass_maintenance=True).total == 1


def test_500_is_a_server_error_without_the_traceback(make: Callable) -> None:
    sim, m, _ = make()
    sim.faults.http_error(500)
    with pytest.raises(errors.ServerError) as info:
        m.list_snapshots()
    assert str(info.value).startswith(f"manager prod at {URL} failed to list snapshots: HTTP 500")
    assert "Traceback" not in str(info.value) and "\n" not in str(info.value)


def test_garbage_answers_are_bad_responses(make: Callable) -> None:
    sim, m, _ = make()
    sim.faults.garbage_responses(count=2)
    with pytest.raises(errors.BadResponse, match="answered with HTML, not JSON: is this a Cloudify manager?"):
        m.list_snapshots()
    with pytest.raises(errors.BadResponse, match="not JSON"):
        m.list_snapshots()
    assert m.list_snapshots().total == 0


# --- failover and timeouts ------------------------------------------------------------------------------


def test_refused_node_fails_over_with_a_notice(make: Callable) -> None:
    sim, m, notices = make(nodes=("mgr-1", "mgr-2"))
    sim.faults.refuse_connections(node="mgr-1")
    assert m.list_snapshots().total == 0
    assert notices == ["manager prod: node http://mgr-1.sim refused the connection; now talking to http://mgr-2.sim"]
    assert m.current_url == "http://mgr-2.sim"


def test_502_node_fails_over_and_all_down_is_unreachable(make: Callable) -> None:
    sim, m, notices = make(nodes=("mgr-1", "mgr-2"))
    sim.faults.http_error(502, count=1, node="mgr-1")
    m.version()
    assert notices == ["manager prod: node http://mgr-1.sim answered 502 Bad Gateway; now talking to "
                       "http://mgr-2.sim"]
    sim.faults.refuse_connections(node="mgr-2")
    sim.faults.http_error(502, count=1, node="mgr-1")
    with pytest.raises(errors.ManagerUnreachable) as info:
        m.snapshot_status()
    assert str(info.value) == ("manager prod is unreachable: http://mgr-2.sim connection refused; "
                               "http://mgr-1.sim 502 Bad Gateway")


def test_a_node_taken_off_the_network(make: Callable) -> None:
    sim, m, notices = make(nodes=("mgr-1", "mgr-2"))
    sim.set_node_down("mgr-1")
    assert m.snapshot_status() == "not-running"
    assert len(notices) == 1 and m.current_url == "http://mgr-2.sim"


def test_hang_times_out_a_mutation_without_failover(make: Callable, clock: FakeClock) -> None:
    sim, m, notices = make(nodes=("mgr-1", "mgr-2"))
    sim.faults.hang(node="mgr-1", path_prefix="/snapshots")
    with pytest.raises(errors.ManagerTimeout, match="may still have been applied"):
        m.create_snapshot("s1", legacy=False)
    assert all(r[0] != "PUT" for r in m.apps["mgr-2.sim"].requests)  # type: ignore[attr-defined]
    assert m.list_snapshots().total == 0  # a GET moves on to mgr-2
    assert len(notices) == 1


def test_restore_outage_refused_then_502(make: Callable, clock: FakeClock) -> None:
    sim, m, _ = make()
    created(m, clock, legacy=True)
    sim.faults.api_outage_during_restore(30)
    m.restore_snapshot("s1", force=True)
    clock.advance(1)
    with pytest.raises(errors.ManagerUnreachable, match="connection refused"):
        m.snapshot_status()
    clock.advance(10)
    with pytest.raises(errors.ManagerUnreachable, match="502 Bad Gateway"):
        m.snapshot_status()


# --- streaming ---------------------------------------------------------------------------------------------


def test_big_archive_round_trip_in_flat_memory(make: Callable) -> None:
    sim, m, _ = make()
    total = 48 * MiB
    tracemalloc.start()
    try:
        m.upload_snapshot("big", pieces(total))
        _, upload_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        received = 0
        with m.download_snapshot("big") as download:
            for chunk in download.chunks:
                received += len(chunk)
        _, download_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert received == download.size == total
    assert upload_peak < 8 * MiB and download_peak < 8 * MiB, (upload_peak / MiB, download_peak / MiB)


def test_truncated_download_is_an_error(make: Callable, clock: FakeClock) -> None:
    sim, m, _ = make()
    m.upload_snapshot("t1", iter([b"x" * (3 * MiB)]))
    sim.faults.truncate_downloads(after_bytes=MiB + 5, count=1)
    with pytest.raises(errors.ManagerUnreachable, match="snapshot t1 .* of 3145728 bytes"), \
            m.download_snapshot("t1") as download:
        for _ in download.chunks:
            pass
