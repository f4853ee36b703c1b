"""Simulator: fault switches, cluster-status verdicts, split brain."""

from __future__ import annotations

import io
import zipfile

import pytest

from sim_fixtures import Api, Clock, make_sim


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _zip(api: Api, clock: Clock, sid: str = "s1") -> None:
    api.put(f"/snapshots/{sid}", json_body={})
    clock.advance(10)


def test_refuse_connections_for_a_window(api: Api, clock: Clock) -> None:
    api.sim.faults.refuse_connections(5)
    with pytest.raises(ConnectionRefusedError):
        api.get("/status")
    clock.advance(5)
    assert api.get("/status").status == 200


def test_http_error_count_and_kinds(api: Api) -> None:
    api.sim.faults.http_error(502, count=2, path_prefix="/snapshots")
    assert api.get("/status").status == 200  # other paths untouched
    first = api.get("/snapshots")
    assert first.status == 502 and "<center>nginx</center>" in first.text
    assert api.get("/snapshots").status == 502
    assert api.get("/snapshots").status == 200
    api.sim.faults.http_error(500)
    assert api.get("/snapshots").json()["error_code"] == "internal_server_error"
    api.sim.faults.http_error(503)
    assert api.get("/snapshots").status == 503


def test_http_error_per_node(clock: Clock) -> None:
    sim = make_sim(clock)
    sim.set_cluster(["mgr-1", "mgr-2"])
    sim.faults.http_error(502, seconds=10, node="mgr-2")
    assert Api(sim, "mgr-1").get("/status").status == 200
    assert Api(sim, "mgr-2").get("/status").status == 502
    clock.advance(10)
    assert Api(sim, "mgr-2").get("/status").status == 200


def test_slow_and_hang(api: Api, clock: Clock) -> None:
    api.sim.faults.slow(2.5, count=1)
    before = clock()
    assert api.get("/status").status == 200
    assert clock() - before == 2.5
    api.sim.faults.hang(count=1)
    with pytest.raises(TimeoutError):
        api.get("/status")
    assert api.get("/status").status == 200


def test_truncated_download_keeps_full_content_length(api: Api, clock: Clock) -> None:
    _zip(api, clock)
    api.sim.faults.truncate_downloads(100, count=1)
    r = api.get("/snapshots/s1/archive")
    assert len(r.body) == 100 and int(r.headers["content-length"]) > 100
    whole = api.get("/snapshots/s1/archive")
    assert len(whole.body) == int(whole.headers["content-length"])


def test_corrupt_download_same_length_bad_zip(api: Api, clock: Clock) -> None:
    _zip(api, clock)
    api.sim.faults.corrupt_downloads(count=1)
    r = api.get("/snapshots/s1/archive")
    assert len(r.body) == int(r.headers["content-length"])
    assert not zipfile.is_zipfile(io.BytesIO(r.body))
    assert zipfile.is_zipfile(io.BytesIO(api.get("/snapshots/s1/archive").body))


def test_garbage_responses(api: Api) -> None:
    api.sim.faults.garbage_responses(count=2)
    bodies = [api.get("/snapshots") for _ in range(2)]
    assert all(r.status == 200 for r in bodies)
    assert bodies[0].text.startswith("<html>") and not bodies[1].text.startswith("{")


def test_fail_next_only_once(api: Api, clock: Clock) -> None:
    api.sim.faults.fail_next("create_snapshot", "boom")
    api.put("/snapshots/s1", json_body={})
    api.put("/snapshots/s2", json_body={})
    clock.advance(10)
    assert api.get("/snapshots/s1").json()["status"] == "failed"
    assert api.get("/snapshots/s2").json()["status"] == "created"


def test_clear(api: Api) -> None:
    api.sim.faults.refuse_connections()
    api.sim.faults.clear()
    assert api.get("/status").status == 200


def test_cluster_status_all_in_one(api: Api) -> None:
    full = api.get("/cluster-status", query={"summary": "False"}).json()
    assert full["status"] == "OK" and list(full["services"]) == ["manager", "db", "broker"]
    node = full["services"]["manager"]["nodes"]["mgr-1"]
    assert node["status"] == "OK" and node["failures"] == [] and node["metrics"][0]["healthy"]
    assert api.get("/cluster-status", query={"summary": "true"}).json() == {"status": "OK", "services": {}}
    managers, brokers, dbs = (api.get(p).json()["items"] for p in ("/managers", "/brokers", "/db-nodes"))
    assert managers[0]["private_ip"] == brokers[0]["host"] == dbs[0]["host"]  # the CLI's all-in-one test


def test_cluster_status_verdicts_and_summary_500(clock: Clock) -> None:
    sim = make_sim(clock)
    sim.set_cluster(["mgr-1", "mgr-2", "mgr-3"])
    api = Api(sim)
    assert api.get("/cluster-status").json()["status"] == "OK"
    sim.set_node_down("db-1")
    body = api.get("/cluster-status").json()
    assert (body["status"], body["services"]["db"]["status"]) == ("Degraded", "Degraded")
    assert body["services"]["db"]["nodes"]["db-1"]["failures"] == ["No services.", "No metrics"]
    sim.set_service("db-2", "postgresql-14", active=False)
    body = api.get("/cluster-status").json()
    assert body["status"] == "Fail" and body["services"]["db"]["nodes"]["db-2"]["failures"] == [
        "Service PostgreSQL not active."]
    r = api.get("/cluster-status", query={"summary": "true"})
    assert r.status == 500 and r.json() == {"status": "Fail", "services": {}}
    sim.set_node_down("mgr-2")
    sim.set_node_down("mgr-3")
    assert api.get("/cluster-status").json()["services"]["manager"]["status"] == "Degraded"  # manager quorum is 1
    with pytest.raises(ConnectionRefusedError):
        Api(sim, "mgr-2").get("/status")


def test_rest_service_down_on_a_node_gives_nginx_502(clock: Clock) -> None:
    sim = make_sim(clock)
    sim.set_cluster(["mgr-1", "mgr-2"])
    sim.set_service("mgr-2", "cloudify-restservice", active=False)
    assert Api(sim, "mgr-2").get("/snapshots").status == 502
    assert Api(sim, "mgr-1").get("/cluster-status").json()["services"]["manager"]["status"] == "Degraded"
    assert Api(sim, "mgr-1").get("/ok", auth=None).status == 200


def test_split_brain_each_side_healthy_with_its_own_members(clock: Clock) -> None:
    sim = make_sim(clock)
    sim.set_cluster(["mgr-1", "mgr-2", "mgr-3"])
    sim.faults.split_brain([["mgr-1", "db-1"], ["mgr-2", "mgr-3", "db-2", "db-3"]])
    one, two = Api(sim, "mgr-1"), Api(sim, "mgr-2")
    view1 = one.get("/cluster-status").json()["services"]
    view2 = two.get("/cluster-status").json()["services"]
    assert view1["manager"]["nodes"]["mgr-1"]["status"] == "OK"
    assert view1["manager"]["nodes"]["mgr-2"]["status"] == "Fail"
    assert view2["manager"]["nodes"]["mgr-1"]["status"] == "Fail"
    assert view2["manager"]["nodes"]["mgr-2"]["status"] == "OK"
    assert (view1["db"]["status"], view2["db"]["status"]) == ("Fail", "Degraded")  # only one side has db quorum
    assert [m["hostname"] for m in one.get("/managers").json()["items"]] == ["mgr-1"]
    assert [m["hostname"] for m in two.get("/managers").json()["items"]] == ["mgr-2", "mgr-3"]
    assert [d["name"] for d in one.get("/db-nodes").json()["items"]] == ["db-1"]
    assert len(one.get("/brokers").json()["items"]) == 3  # unlisted nodes are seen from both sides
    sim.faults.clear()
    assert len(one.get("/managers").json()["items"]) == 3


def test_cluster_status_in_snapshot_restore_on_6x(clock: Clock) -> None:
    api = Api(make_sim(clock, version="6.4.2"))
    api.put("/snapshots/s1", json_body={})
    clock.advance(10)
    api.post("/snapshots/s1/restore", json_body={"force": True})
    clock.advance(1)
    r = api.get("/cluster-status")
    assert r.status == 503 and r.json()["error_code"] == "in_snapshot_restore_error"
