"""Simulator: executions, events, execution schedules, and the demo seed (reference §5, §6)."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from sim_fixtures import Api, Clock, make_sim
from simulator.seed import Scenario, seed_demo


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def seeded(clock: Clock) -> Api:
    sim = make_sim(clock)
    seed_demo(sim)
    return Api(sim)


def test_cancel_a_running_create(api: Api, clock: Clock) -> None:
    ex = api.put("/snapshots/s1", json_body={}).json()
    clock.advance(1)
    r = api.post(f"/executions/{ex['id']}", json_body={"action": "cancel"})
    assert r.status == 200 and r.json()["status"] == "cancelling"
    again = api.post(f"/executions/{ex['id']}", json_body={"action": "cancel"})
    assert again.status == 400 and again.json() == {
        "error_code": "illegal_action_error", "server_traceback": None,
        "message": f"Can't cancel execution {ex['id']} because it's in status cancelling"}
    assert api.post(f"/executions/{ex['id']}", json_body={"action": "force-cancel"}).json()["status"] == \
        "force_cancelling"
    clock.advance(1)
    done = api.get(f"/executions/{ex['id']}").json()
    assert (done["status"], done["error"]) == ("cancelled", "") and done["ended_at"]
    assert api.get("/snapshots/s1").json()["status"] == "failed"


def test_invalid_action_and_requeue(api: Api) -> None:
    ex = api.put("/snapshots/s1", json_body={}).json()
    r = api.post(f"/executions/{ex['id']}", json_body={"action": "explode"})
    assert r.status == 400 and r.json()["message"].startswith("Invalid action: explode, Valid action values are:")
    assert api.post(f"/executions/{ex['id']}", json_body={"action": "requeue"}).json()["status"] == "cancelling"


def test_resume_a_failed_execution(api: Api, clock: Clock) -> None:
    api.sim.faults.fail_next("create_snapshot", "boom")
    ex = api.put("/snapshots/s1", json_body={}).json()
    clock.advance(10)
    assert api.get(f"/executions/{ex['id']}").json()["status"] == "failed"
    assert api.post(f"/executions/{ex['id']}", json_body={"action": "resume"}).json()["status"] == "pending"


def test_list_hides_system_workflows_by_default(seeded: Api) -> None:
    plain = seeded.get("/executions").json()["items"]
    assert all(not e["is_system_workflow"] for e in plain)
    system = seeded.get("/executions", query={"_include_system_workflows": "True",
                                              "workflow_id": "create_snapshot"}).json()["items"]
    assert len(system) == 7 and {e["status"] for e in system} == {"terminated", "failed"}
    r = seeded.get("/executions", query={"_include_system_workflows": "maybe"})
    assert r.status == 400 and r.json()["message"] == "_include_system_workflows must be <true/false>, got maybe"
    either = seeded.get("/executions", tenant="prod-apps", query={"status": ["failed", "cancelled"]}).json()
    assert {e["status"] for e in either["items"]} == {"failed", "cancelled"}
    assert seeded.get("/executions/nope").json()["message"] == "Requested `Execution` with ID `nope` was not found"


def test_events_filters_paging_and_post(api: Api, clock: Clock) -> None:
    ex = api.put("/snapshots/s1", json_body={}).json()
    clock.advance(10)
    r = api.post("/events", json_body={"execution_id": ex["id"], "events": [],
                                       "logs": [{"logger": "ctx", "level": "error", "message": {"text": "oops"},
                                                 "context": {}}]})
    assert r.status == 201 and r.body == b"null\n"
    errors = api.get("/events", query={"execution_id": ex["id"], "level": "error"}).json()["items"]
    assert [e["message"] for e in errors] == ["oops"] and errors[0]["type"] == "cloudify_log"
    page = api.get("/events", query={"execution_id": ex["id"], "_offset": "1", "_size": "2",
                                     "_sort": "-reported_timestamp"}).json()
    assert page["metadata"] == {"pagination": {"total": 5, "size": 2, "offset": 1}}
    assert len(page["items"]) == 2 and "_storage_id" in page["items"][0]
    def matching(pattern: str) -> list[str]:
        items = api.get("/events", query={"execution_id": ex["id"], "message.text": pattern}).json()["items"]
        return [e["message"] for e in items]

    assert matching("oops") == matching("OOPS") == ["oops"]  # ILIKE: case-insensitive, the whole message
    assert matching("oop") == [] and matching("oop_") == ["oops"] and matching("%OP%") == ["oops"]
    assert matching("creating snapshot `s1`") == ["Creating snapshot `s1`"]
    assert matching("creating%") == ["Creating snapshot `s1`"] and matching("snapshot") == []
    assert matching("100\\%") == []  # an escaped % is a literal percent sign
    bad = api.get("/events", query={"_sort": "nope"})
    assert bad.status == 400 and bad.json()["message"] == "Unknown field to sort by: nope"
    assert api.get("/events", query={"_size": "-1"}).status == 400


def test_execution_schedules_need_deployment_id(seeded: Api) -> None:
    items = seeded.get("/execution-schedules", tenant="prod-apps").json()["items"]
    assert [s["id"] for s in items] == ["web-prod-healthcheck"] and items[0]["next_occurrence"]
    assert seeded.get("/execution-schedules/web-prod-healthcheck", tenant="prod-apps").status == 400
    one = seeded.get("/execution-schedules/web-prod-healthcheck", tenant="prod-apps",
                     query={"deployment_id": "web-prod"})
    assert one.status == 200 and one.json()["rule"]["recurrence"] == "1 day"
    made = seeded.put("/execution-schedules/nightly", tenant="prod-apps", query={"deployment_id": "db-prod"},
                      json_body={"workflow_id": "heal", "since": "2030-01-01T02:00:00Z", "recurrence": "1d"})
    assert made.status == 201 and made.json()["next_occurrence"] == "2030-01-01T02:00:00.000Z"
    assert seeded.delete("/execution-schedules/nightly", tenant="prod-apps",
                         query={"deployment_id": "db-prod"}).status == 204


def test_seed_is_realistic(seeded: Api, clock: Clock) -> None:
    assert set(seeded.sim.state.tenants) == {"default_tenant", "prod-apps", "staging-apps"}
    snaps = seeded.get("/snapshots").json()["items"]
    assert len(snaps) == 7 and [s["status"] for s in snaps].count("failed") == 1
    failed = next(s for s in snaps if s["status"] == "failed")
    assert failed["error"] and failed["id"].startswith("daily-")
    for snap in snaps:
        if snap["status"] == "created":
            data = seeded.get(f"/snapshots/{snap['id']}/archive").body
            meta = json.loads(zipfile.ZipFile(io.BytesIO(data)).read("metadata.json"))
            assert meta["snapshot_version"] == "7.0.5"
    # a healthy 7.0.5 manager: nothing live is queued or scheduled; the old scheduled rows were cancelled
    waiting = seeded.get("/executions", query={"status": ["queued", "scheduled"], "_all_tenants": "true"}).json()
    assert waiting["items"] == []
    old = seeded.get("/executions", tenant="prod-apps", query={"status": "cancelled"}).json()["items"]
    assert len(old) == 3 and all(e["scheduled_for"] for e in old)
    # ... but the older weekly snapshot still holds them as `scheduled` (legacy format)
    weekly = next(s["id"] for s in snaps if s["id"].startswith("weekly-"))
    data = seeded.get(f"/snapshots/{weekly}/archive").body
    pg_data = json.loads(zipfile.ZipFile(io.BytesIO(data)).read("pg_data"))
    assert weekly == "weekly-20261108" and "snapshots" not in pg_data
    assert [e["status"] for e in pg_data["executions"]].count("scheduled") == 4
    assert len(seeded.get("/blueprints", tenant="prod-apps").json()["items"]) == 2
    seed_demo(seeded.sim)  # idempotent
    assert len(seeded.get("/snapshots").json()["items"]) == 7


def test_seed_default_lets_maintenance_activate_and_stuck_maintenance_does_not(clock: Clock) -> None:
    sim = make_sim(clock)
    seed_demo(sim)
    assert Api(sim).post("/maintenance/activate").json()["status"] == "activated"
    stuck = make_sim(clock)
    seed_demo(stuck, Scenario.STUCK_MAINTENANCE)
    answer = Api(stuck).post("/maintenance/activate").json()
    assert answer["status"] == "activating" and len(answer["remaining_executions"][0]) == 4
    assert {e["status"] for e in answer["remaining_executions"][0]} == {"scheduled"}
    with pytest.raises(ValueError):
        seed_demo(make_sim(clock), "nope")


def test_killing_a_finished_create_leaves_its_snapshot_alone(api: Api, clock: Clock) -> None:
    ex = api.put("/snapshots/s1", json_body={}).json()
    clock.advance(10)
    assert api.post(f"/executions/{ex['id']}", json_body={"action": "kill"}).json()["status"] == "kill_cancelling"
    clock.advance(1)
    assert api.get("/snapshots/s1").json()["status"] == "created"
    assert api.get("/snapshots/s1/archive").status == 200
