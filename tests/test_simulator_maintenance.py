"""Simulator: maintenance mode exactly as reference §4 (304s, [[...]], lazy flip, gate before auth, 503s)."""

from __future__ import annotations

import pytest

from sim_fixtures import Api, Clock

MESSAGE = "Your request was rejected since Cloudify manager is currently in maintenance mode"


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_off_body(api: Api) -> None:
    assert api.get("/maintenance").json() == {"status": "deactivated", "activated_at": "",
                                              "activation_requested_at": "", "remaining_executions": None,
                                              "requested_by": ""}


def test_activate_idle_manager_then_304s(api: Api) -> None:
    r = api.post("/maintenance/activate")
    body = r.json()
    assert r.status == 200 and body["status"] == "activated" and body["remaining_executions"] == [[]]
    assert body["activated_at"] == body["activation_requested_at"] and body["requested_by"] == "admin"
    again = api.post("/maintenance/activate")
    assert again.status == 304 and again.body == b"" and "content-length" not in again.headers
    assert api.get("/maintenance").json()["remaining_executions"] is None
    off = api.post("/maintenance/deactivate")
    assert off.status == 200 and off.json()["status"] == "deactivated" and off.json()["remaining_executions"] is None
    assert off.json()["requested_by"] == "admin"
    assert api.post("/maintenance/deactivate").status == 304
    assert api.get("/maintenance").json()["activated_at"] == ""


def test_invalid_action(api: Api) -> None:
    r = api.post("/maintenance/foo")
    assert r.status == 400
    assert r.json()["message"] == "Invalid action: foo, Valid action values are: ['activate', 'deactivate']"


def test_activating_until_executions_end_flipped_by_any_request(api: Api, clock: Clock) -> None:
    ex = api.put("/snapshots/s1", json_body={}).json()
    r = api.post("/maintenance/activate").json()
    assert r["status"] == "activating" and r["activated_at"] is None
    assert r["remaining_executions"] == [[{"id": ex["id"], "status": "pending", "deployment_id": None,
                                           "workflow_id": "create_snapshot"}]]
    assert api.get("/maintenance").json()["remaining_executions"][0]["id"] == ex["id"]  # flat list here
    blocked = api.put("/snapshots/s2", json_body={})
    assert blocked.status == 503 and blocked.json() == {"error_code": "entering_maintenance_mode", "message": MESSAGE,
                                                        "server_traceback": "NoneType: None\n"}
    assert api.post("/snapshots/s1/restore", json_body={"force": True}).status == 503
    assert api.get(f"/executions/{ex['id']}").status == 200  # reads pass while activating
    clock.advance(10)
    assert api.get("/snapshot-status", auth=None).status == 200  # any routed request flips it
    state = api.get("/maintenance").json()
    assert state["status"] == "activated" and state["activated_at"] == "2026-11-18T11:06:50.000Z"


def test_queued_and_scheduled_executions_keep_it_activating(api: Api, clock: Clock) -> None:
    api.put("/snapshots/s1", json_body={"legacy": True})
    queued = api.put("/snapshots/s2", json_body={"legacy": True, "queue": True}).json()
    api.post("/maintenance/activate")
    clock.advance(60)
    state = api.get("/maintenance").json()
    assert state["status"] == "activating" and [e["status"] for e in state["remaining_executions"]] == ["queued"]
    assert api.post(f"/executions/{queued['id']}", json_body={"action": "cancel"}).status == 200
    clock.advance(1)
    assert api.get("/maintenance").json()["status"] == "activated"


def test_allow_list_when_activated_and_gate_before_auth(api: Api, clock: Clock) -> None:
    ex = api.put("/snapshots/s1", json_body={}).json()
    clock.advance(10)
    api.post("/maintenance/activate")
    for path in ("/executions", f"/executions/{ex['id']}", "/events", "/tokens", "/blueprints", "/deployments"):
        r = api.get(path)
        assert (r.status, r.json()["error_code"]) == (503, "maintenance_mode_active"), path
        assert r.json()["server_traceback"] == "NoneType: None\n"
    assert api.get("/executions", auth=("admin", "wrong")).status == 503  # gate runs before auth
    for path in ("/snapshots", "/snapshots/s1", "/maintenance", "/status", "/version", "/cluster-status",
                 "/managers", "/brokers", "/db-nodes", "/snapshot-status"):
        assert api.get(path).status == 200, path
    assert api.get("/ok", auth=None).status == 200
    assert api.get("/api/version").status == 200
    assert api.put("/snapshots/s2", json_body={}).status == 201  # snapshot calls work while activated
    assert api.get("/snapshots/s1/archive").status == 200
    bypass = api.get(f"/executions/{ex['id']}", headers={"X-BYPASS-MAINTENANCE": "true"})
    assert bypass.status == 200
    wrong = api.get(f"/executions/{ex['id']}", headers={"X-BYPASS-MAINTENANCE": "true"}, auth=("admin", "nope"))
    assert wrong.status == 401 and "Wrong credentials" in wrong.json()["message"]  # the bypass authenticates first
    bad_token = api.get("/executions", auth=None, headers={"X-BYPASS-MAINTENANCE": "true",
                                                           "Authentication-Token": "ctok-abc-nope"})
    assert bad_token.status == 401 and bad_token.json()["message"] == "User unauthorized: Unauthorized"
    nobody = api.get("/executions", auth=None, headers={"X-BYPASS-MAINTENANCE": "true"})
    assert nobody.status == 503  # no credentials: no bypass, the gate's answer
    assert api.get("/snapshot-status", auth=("admin", "nope")).status == 401  # also while activated


def test_restore_is_allowed_while_activated(api: Api, clock: Clock) -> None:
    api.put("/snapshots/s1", json_body={})
    clock.advance(10)
    api.post("/maintenance/activate")
    assert api.post("/snapshots/s1/restore", json_body={"force": True}).status == 200


def test_deactivate_starts_queued_executions(api: Api, clock: Clock) -> None:
    api.post("/maintenance/activate")
    api.put("/snapshots/s1", json_body={"legacy": True})
    queued = api.put("/snapshots/s2", json_body={"legacy": True, "queue": True}).json()
    clock.advance(10)
    assert api.get("/snapshots/s2").json()["status"] == "creating"  # queued never start while maintenance is on
    api.post("/maintenance/deactivate")
    assert api.get(f"/executions/{queued['id']}").json()["status"] == "pending"
    clock.advance(10)
    assert api.get("/snapshots/s2").json()["status"] == "created"
