"""Simulator: what a restore does to the manager (reference §2.7, §3, §6; legacy and new formats)."""

from __future__ import annotations

import pytest

from sim_fixtures import Api, Clock, make_sim
from simulator.seed import Scenario, add_scheduled_execution, seed_demo

FORCE = {"force": True, "restore_certificates": False, "no_reboot": False, "ignore_plugin_failure": False}


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _snapshot(api: Api, clock: Clock, sid: str, **body) -> str:
    ex = api.put(f"/snapshots/{sid}", json_body=body).json()
    clock.advance(10)
    assert api.get(f"/snapshots/{sid}").json()["status"] == "created"
    return ex["id"]


def _status(api: Api) -> str:
    return api.get("/snapshot-status", auth=None, tenant=None).json()["status"]


def _logs(api: Api, eid: str, level: str | None = None, auth: tuple[str, str] = ("admin", "admin")) -> list[str]:
    query = {"execution_id": eid, "type": "cloudify_log", **({"level": level} if level else {})}
    return [e["message"] for e in api.get("/events", query=query, auth=auth).json()["items"]]


def test_legacy_restore_timeline_credentials_and_data(clock: Clock) -> None:
    api = Api(make_sim(clock))
    _snapshot(api, clock, "s1", legacy=True)
    _snapshot(api, clock, "s2", legacy=True)
    api.sim.set_password("admin", "changed-later")
    auth = ("admin", "changed-later")
    body = api.post("/snapshots/s1/restore", json_body=FORCE, auth=auth).json()
    assert _status(api) == "not-running"  # the workflow has not started yet
    clock.advance(0.6)
    assert _status(api) == "running"
    clock.advance(5.5)
    ex = api.get(f"/executions/{body['id']}", auth=auth).json()
    assert ex["status"] == "terminated"
    assert _status(api) == "running"  # the post-restore job sleeps 3 s before removing the flag file
    assert api.get("/snapshots", auth=auth).json()["items"] == []  # the snapshots table is never in a dump
    assert not api.sim.store.exists("default_tenant", "s1")  # 6.3+: the restored zip is deleted
    clock.advance(3.1)
    assert _status(api) == "not-running"
    assert api.get("/snapshots", auth=auth).status == 401  # the admin password is the snapshot's again
    assert api.get("/snapshots", auth=("admin", "admin")).status == 200
    assert "Successfully restored snapshot `s1`" in _logs(api, body["id"])
    assert "Restoring database" in _logs(api, body["id"])


def test_legacy_restore_scheduled_executions_7x(clock: Clock) -> None:
    sim = make_sim(clock)
    seed_demo(sim, Scenario.STUCK_MAINTENANCE)  # live scheduled rows, so the new snapshot s1 holds them
    api = Api(sim)
    scheduled = api.get("/executions", tenant="prod-apps", query={"status": "scheduled"}).json()["items"]
    _snapshot(api, clock, "s1", legacy=True)
    clock.advance(300)  # the row due in ~2 minutes is overdue by restore time
    eid = api.post("/snapshots/s1/restore", json_body=FORCE).json()["id"]
    clock.advance(10)
    assert api.get(f"/executions/{eid}").json()["status"] == "terminated"
    for row in scheduled:
        after = api.get(f"/executions/{row['id']}", tenant="prod-apps").json()
        assert (after["status"], after["error"]) == ("failed", "")  # 6.0+: every one of them
    warnings = _logs(api, eid, "warning")
    for row in scheduled:
        assert f"Marking original execution {row['id']} scheduled for {row['scheduled_for']} as FAILED." in warnings
    schedules = api.get("/execution-schedules", tenant="prod-apps").json()["items"]
    restored = [s for s in schedules if "_restored_" in s["id"]]
    assert [s["workflow_id"] for s in restored] == ["execute_operation"]  # the future one, as a one-off schedule
    assert restored[0]["rule"]["count"] == 1 and restored[0]["execution_arguments"]["allow_custom_parameters"]


def test_legacy_restore_scheduled_executions_5x(clock: Clock) -> None:
    sim = make_sim(clock, version="5.2.7")
    sim.add_tenant("prod-apps")
    sim.state.deployments["prod-apps"].append({"id": "web", "blueprint_id": "web-app"})
    overdue = add_scheduled_execution(sim, "prod-apps", "scale", ("web", "web-app"), clock() + 60)
    future = add_scheduled_execution(sim, "prod-apps", "heal", ("web", "web-app"), clock() + 7200)
    api = Api(sim)
    _snapshot(api, clock, "s1")
    clock.advance(300)
    body = {"force": True, "recreate_deployments_envs": True}
    eid = api.post("/snapshots/s1/restore", json_body=body).json()["id"]
    clock.advance(10)
    assert api.get(f"/executions/{overdue['id']}", tenant="prod-apps").json()["status"] == "failed"
    assert api.get(f"/executions/{future['id']}", tenant="prod-apps").json()["status"] == "scheduled"
    assert (f"Execution {overdue['id']} scheduled for {overdue['scheduled_for']} is overdue. Marking as FAILED."
            in _logs(api, eid, "warning"))
    assert f"Restoring execution {future['id']} (at {future['scheduled_for']})" in _logs(api, eid, "debug")
    assert api.sim.store.exists("default_tenant", "s1")  # before 6.3 the restored zip stays


def test_failed_restore_has_a_traceback_and_a_workflow_failed_event(clock: Clock) -> None:
    sim = make_sim(clock)
    seed_demo(sim)  # blueprints exist: a legacy restore without force refuses
    api = Api(sim)
    _snapshot(api, clock, "s1", legacy=True)
    eid = api.post("/snapshots/s1/restore", json_body={**FORCE, "force": False}).json()["id"]
    clock.advance(0.7)
    assert _status(api) == "running"
    clock.advance(10)
    ex = api.get(f"/executions/{eid}").json()
    assert ex["status"] == "failed" and ex["error"].startswith("Traceback (most recent call last):")
    assert ex["error"].splitlines()[-1].endswith("Pass the --force flag to force the restore and delete existing "
                                                 "data from the manager")
    events = api.get("/events", query={"execution_id": eid, "type": "cloudify_event"}).json()["items"]
    assert events[-1]["event_type"] == "workflow_failed"
    assert events[-1]["message"].startswith("'restore_snapshot' workflow execution failed: Snapshot restoration on a")
    assert _status(api) == "not-running"
    assert api.get("/snapshots/s1").status == 200  # nothing was replaced


def test_new_format_restore_recreates_entities_and_keeps_snapshots(clock: Clock) -> None:
    sim = make_sim(clock)
    seed_demo(sim)
    api = Api(sim)
    create_id = _snapshot(api, clock, "s1", legacy=False)
    sim.state.blueprints["prod-apps"].clear()
    sim.set_password("admin", "kept")
    eid = api.post("/snapshots/s1/restore", json_body=FORCE, auth=("admin", "kept")).json()["id"]
    clock.advance(10)
    auth = ("admin", "kept")  # the admin user is skipped by a new-format restore
    assert api.get(f"/executions/{eid}", auth=auth).json()["status"] == "terminated"
    assert _status(api) == "not-running"
    assert len(api.get("/blueprints", tenant="prod-apps", auth=auth).json()["items"]) == 2
    assert api.get("/snapshots/s1", auth=auth).status == 200  # kept, zip too
    assert api.get(f"/executions/{create_id}", auth=auth).json()["status"] == "terminated"
    errors = _logs(api, eid, "error", auth)
    assert errors and all("already exists" in e for e in errors)  # conflicts are only logged


def test_restore_of_a_zip_that_is_not_a_snapshot_fails(clock: Clock) -> None:
    api = Api(make_sim(clock))
    api.put("/snapshots/junk/archive", body=b"not a zip")
    eid = api.post("/snapshots/junk/restore", json_body=FORCE).json()["id"]
    clock.advance(10)
    ex = api.get(f"/executions/{eid}").json()
    assert ex["status"] == "failed" and ex["error"].splitlines()[-1].endswith("File is not a zip file")


def test_api_outage_and_password_change_during_restore(clock: Clock) -> None:
    api = Api(make_sim(clock))
    _snapshot(api, clock, "s1", legacy=True)
    api.sim.faults.api_outage_during_restore(9.0)
    api.sim.faults.change_admin_password_after_restore("rotated")
    api.post("/snapshots/s1/restore", json_body=FORCE)
    clock.advance(1.0)  # started at +0.6: refused until +3.6
    with pytest.raises(ConnectionRefusedError):
        api.get("/snapshot-status", auth=None)
    clock.advance(3.0)
    assert api.get("/snapshot-status", auth=None).status == 502
    clock.advance(3.0)
    assert api.get("/snapshot-status", auth=None).json() == {"status": "running"}  # no auth: unaffected
    assert api.get("/maintenance").status == 401
    clock.advance(6.0)
    assert _status(api) == "not-running"
    assert api.get("/maintenance").status == 401
    assert api.get("/maintenance", auth=("admin", "rotated")).status == 200
