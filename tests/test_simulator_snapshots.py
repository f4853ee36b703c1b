"""Simulator: snapshot create/list/delete/download/upload/restore request rules (reference §2)."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from sim_fixtures import Api, Clock, make_sim


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _created(api: Api, clock: Clock, sid: str, **body) -> dict:
    r = api.put(f"/snapshots/{sid}", json_body=body)
    assert r.status == 201, r.text
    clock.advance(10)
    assert api.get(f"/snapshots/{sid}").json()["status"] == "created"
    return r.json()


@pytest.mark.parametrize("sid,message", [
    ("1bad", "The `snapshot_id` argument must begin with a letter"),
    ("has space", 'The `snapshot_id` argument contains illegal characters. Only letters, digits and the '
                  'characters "-", "." and "_" are allowed'),
    ("a" * 257, "The `snapshot_id` argument is too long. Maximum allowed length is 256 characters"),
])
def test_id_validation(api: Api, sid: str, message: str) -> None:
    r = api.put(f"/snapshots/{sid.replace(' ', '%20')}", json_body={})
    assert r.status == 400 and r.json() == {"error_code": "bad_parameters_error", "message": message,
                                            "server_traceback": None}


def test_tilde_is_accepted(api: Api) -> None:
    assert api.put("/snapshots/a~b", json_body={}).status == 201


def test_create_lifecycle_with_injected_clock(api: Api, clock: Clock) -> None:
    r = api.put("/snapshots/s1", json_body={})
    ex = r.json()
    assert r.status == 201 and ex["workflow_id"] == "create_snapshot" and ex["status"] == "pending"
    assert ex["is_system_workflow"] is True and ex["error"] is None and ex["status_display"] == "pending"
    assert list(ex["parameters"]) == ["snapshot_id", "include_credentials", "include_logs", "include_events",
                                      "config", "tempdir_path", "legacy", "listener_timeout"]
    assert ex["parameters"]["legacy"] is False  # 7.0.1+ default
    assert api.get("/snapshots/s1").json()["status"] == "creating"
    clock.advance(0.5)
    assert api.get(f"/executions/{ex['id']}").json()["status"] == "started"
    assert api.get("/snapshots/s1/archive").status == 404  # nginx: no zip yet
    clock.advance(3)
    done = api.get(f"/executions/{ex['id']}").json()
    assert (done["status"], done["status_display"], done["error"]) == ("terminated", "completed", "")
    assert api.get("/snapshots/s1").json()["status"] == "created"
    events = api.get("/events", query={"execution_id": ex["id"], "type": "cloudify_event"}).json()
    assert [e["event_type"] for e in events["items"]] == ["workflow_started", "workflow_succeeded"]
    assert "filtered" not in events["metadata"]
    logs = api.get("/events", query={"execution_id": ex["id"], "type": "cloudify_log"}).json()["items"]
    assert [e["message"] for e in logs] == ["Creating snapshot `s1`", "Snapshot created successfully"]


def test_duplicate_id_is_409(api: Api, clock: Clock) -> None:
    _created(api, clock, "s1")
    r = api.put("/snapshots/s1", json_body={})
    assert r.status == 409 and r.json()["message"] == (
        "<Snapshot id=`s1` tenant=`default_tenant`> already exists on <Tenant name=`default_tenant`> or with global "
        "visibility")


def test_legacy_create_blocks_and_queue_queues(api: Api, clock: Clock) -> None:
    first = api.put("/snapshots/s1", json_body={"legacy": True}).json()
    r = api.put("/snapshots/s2", json_body={"legacy": True})
    assert r.status == 400 and r.json()["error_code"] == "existing_running_execution_error"
    assert r.json()["message"] == f"Cannot start execution because there are other executions running e.g.: " \
                                  f"{first['id']}"
    assert api.get("/snapshots/s2").status == 404  # no orphan row
    queued = api.put("/snapshots/s2", json_body={"legacy": True, "queue": True}).json()
    assert queued["status"] == "queued"
    clock.advance(3.0)
    assert api.get(f"/executions/{queued['id']}").json()["status"] == "pending"  # started when s1 ended
    clock.advance(3.0)
    assert api.get("/snapshots/s2").json()["status"] == "created"


def test_new_format_create_runs_alongside_on_704(api: Api) -> None:
    api.put("/snapshots/s1", json_body={"legacy": True})
    assert api.put("/snapshots/s2", json_body={"legacy": False}).json()["status"] == "pending"


def test_every_create_blocks_before_704(clock: Clock) -> None:
    api = Api(make_sim(clock, version="7.0.2"))
    api.put("/snapshots/s1", json_body={"legacy": False})
    r = api.put("/snapshots/s2", json_body={"legacy": False})
    assert r.status == 400
    old = Api(make_sim(clock, version="6.2.0"))
    old.put("/snapshots/s1", json_body={})
    assert old.put("/snapshots/s2", json_body={}).json()["message"].startswith(
        "You cannot start a system-wide execution if there are other executions running.")


def test_create_option_errors(api: Api) -> None:
    r = api.put("/snapshots/s1", json_body={"include_logs": "yes"})
    assert r.status == 400 and r.json()["message"] == "include_logs must be <true/false>, got yes"
    assert api.put("/snapshots/s1", json_body={"listener_timeout": "x"}).json()["message"] == \
        "listener_timeout must a valid floating point number"
    r = api.put("/snapshots/s1", json_body={"tempdir_path": "/proc/nowhere"})
    assert r.status == 403 and r.json()["message"].startswith("Temp dir cannot be created inside unwriteable")


def test_download_headers_and_a_valid_new_format_zip(api: Api, clock: Clock) -> None:
    ex = _created(api, clock, "s1")
    r = api.get("/snapshots/s1/archive")
    assert r.status == 200 and r.headers["content-type"] == "application/octet-stream"
    assert r.headers["content-disposition"] == 'attachment; filename="s1.zip"'
    assert int(r.headers["content-length"]) == len(r.body)
    zf = zipfile.ZipFile(io.BytesIO(r.body))
    assert json.loads(zf.read("metadata.json")) == {"snapshot_version": "7.0.5", "execution_id": ex["id"]}
    tenants = json.loads(zf.read("mgmt/00000001.json"))
    assert tenants["type"] == "tenants" and tenants["items"][0]["name"] == "default_tenant"
    kinds = {json.loads(zf.read(n))["type"] for n in zf.namelist() if n.startswith("tenants/default_tenant/")}
    assert {"blueprints", "deployments", "executions", "events", "execution_schedules"} <= kinds


def test_legacy_zip_layout(api: Api, clock: Clock) -> None:
    _created(api, clock, "s1", legacy=True)
    zf = zipfile.ZipFile(io.BytesIO(api.get("/snapshots/s1/archive").body))
    meta = json.loads(zf.read("metadata.json"))
    assert {"snapshot_version", "schema_revision", "stage_schema_revision", "composer_schema_revision"} <= set(meta)
    admin = json.loads(zf.read("admin_account.json"))
    assert admin["username"] == "admin" and admin["password"].startswith("$pbkdf2-sha256$")
    assert "pg_data" in zf.namelist()


def test_failed_snapshot_download_and_restore_refused(api: Api, clock: Clock) -> None:
    api.sim.faults.fail_next("create_snapshot", "disk full")
    ex = api.put("/snapshots/s1", json_body={}).json()
    clock.advance(10)
    snap = api.get("/snapshots/s1").json()
    assert (snap["status"], snap["error"]) == ("failed", "disk full")
    failed = api.get(f"/executions/{ex['id']}").json()
    assert failed["status"] == "failed" and failed["error"].splitlines()[-1].endswith("disk full")
    r = api.get("/snapshots/s1/archive")
    assert r.status == 400 and r.json()["message"] == "Failed snapshot cannot be downloaded"
    r = api.post("/snapshots/s1/restore", json_body={"force": True})
    assert r.status == 400 and r.json() == {"error_code": "snapshot_action_error",
                                            "message": "Failed snapshot cannot be restored", "server_traceback": None}


def test_delete(api: Api, clock: Clock) -> None:
    api.put("/snapshots/s1", json_body={})
    r = api.delete("/snapshots/s1")
    assert r.status == 400 and r.json()["message"] == \
        "Cannot delete snapshot `s1` which has an active `create_snapshot` execution"
    clock.advance(10)
    api.sim.advance()  # time moves executions only when something asks
    assert api.sim.store.exists("default_tenant", "s1")
    r = api.delete("/snapshots/s1")
    assert r.status == 200 and r.json()["id"] == "s1"
    assert not api.sim.store.exists("default_tenant", "s1")
    assert api.delete("/snapshots/s1").json()["message"] == "Requested `Snapshot` with ID `s1` was not found"


def test_upload_new_replace_and_rules(api: Api) -> None:
    r = api.put("/snapshots/1bad/archive", body=b"hello!", content_type="application/octet-stream")
    assert r.status == 201 and r.json()["status"] == "uploaded" and r.json()["visibility"] == "private"
    assert api.get("/snapshots/1bad/archive").body == b"hello!"  # no zip validation, served back as-is
    r = api.put("/snapshots/1bad/archive", body=b"second", chunked=True)
    assert r.status == 201 and set(r.json().values()) == {None}
    assert api.get("/snapshots/1bad/archive").body == b"second"
    both = api.put("/snapshots/x/archive", body=b"abc", query={"snapshot_archive_url": "http://127.0.0.1:1/x.zip"})
    assert both.status == 400 and both.json()["message"].startswith("Can pass snapshot as only one of")
    assert api.put("/snapshots/empty/archive").status == 500
    assert api.put("/snapshots/x/archive", query={"snapshot_archive_url": "file:///etc/passwd"}).status == 400


def test_upload_replace_was_409_in_700(clock: Clock) -> None:
    api = Api(make_sim(clock, version="7.0.0"))
    api.put("/snapshots/u/archive", body=b"one")
    assert api.put("/snapshots/u/archive", body=b"two").status == 409
    assert api.get("/snapshots/u/archive").body == b"two"  # the file had already been moved


@pytest.mark.parametrize("body,status,text", [
    ({}, 500, "Internal error occurred in manager REST server - KeyError: 'force'"),
    ({"force": "maybe"}, 400, "force must be <true/false>, got maybe"),
    ({"force": False, "no_reboot": True}, 400, "`no_reboot` is only relevant when `restore_certificates` is activated"),
    ({"force": False, "timeout": "soon"}, 400, "invalid parameter, should be int, got: soon"),
])
def test_restore_body_rules_7x(api: Api, clock: Clock, body: dict, status: int, text: str) -> None:
    _created(api, clock, "s1")
    r = api.post("/snapshots/s1/restore", json_body=body)
    assert (r.status, r.json()["message"]) == (status, text)


def test_restore_body_rules_5x(clock: Clock) -> None:
    api = Api(make_sim(clock, version="5.2.7"))
    _created(api, clock, "s1")
    r = api.post("/snapshots/s1/restore", json_body={"force": True})
    assert r.json()["message"] == "Missing recreate_deployments_envs in json request body"
    r = api.post("/snapshots/s1/restore", json_body={"force": True, "recreate_deployments_envs": True})
    assert r.status == 200


def test_restore_response_is_snapshot_shaped(api: Api, clock: Clock) -> None:
    _created(api, clock, "s1")
    r = api.post("/snapshots/s1/restore", json_body={"force": True, "restore_certificates": False,
                                                       "no_reboot": False, "ignore_plugin_failure": False})
    body = r.json()
    assert r.status == 200 and list(body) == ["created_at", "id", "visibility", "status", "error", "tenant_name",
                                              "created_by", "resource_availability", "private_resource"]
    assert body["status"] == "pending" and body["visibility"] == "tenant"
    full = api.get(f"/executions/{body['id']}").json()
    assert full["workflow_id"] == "restore_snapshot"
    assert {"snapshot_id", "config", "force", "timeout", "restore_certificates", "no_reboot", "premium_enabled",
            "user_is_bootstrap_admin"} <= set(full["parameters"])
    assert api.post("/snapshots/nope/restore", json_body={"force": True}).status == 404


def test_restore_refused_while_busy_leaves_a_stray_pending_execution(api: Api, clock: Clock) -> None:
    _created(api, clock, "s1")
    api.put("/snapshots/s2", json_body={})
    r = api.post("/snapshots/s1/restore", json_body={"force": True})
    assert r.status == 400 and r.json()["error_code"] == "existing_running_execution_error"
    clock.advance(10)
    strays = api.get("/executions", query={"_include_system_workflows": "true", "workflow_id": "restore_snapshot"})
    stray = strays.json()["items"][0]
    assert stray["status"] == "pending"  # nobody will ever run it
    assert api.delete("/snapshots/s1").json()["message"] == \
        "Cannot delete snapshot `s1` which has an active `restore_snapshot` execution"
    assert api.put("/snapshots/s3", json_body={"legacy": True}).status == 400  # it blocks legacy creates
    api.post(f"/executions/{stray['id']}", json_body={"action": "cancel"})
    clock.advance(60)
    assert api.get(f"/executions/{stray['id']}").json()["status"] == "cancelling"  # a cancel never finishes
    assert api.post(f"/executions/{stray['id']}", json_body={"action": "kill"}).json()["status"] == "kill_cancelling"
    clock.advance(1)
    assert api.get(f"/executions/{stray['id']}").json()["status"] == "cancelled"
    assert api.delete("/snapshots/s1").status == 200


def test_stray_cleared_by_admin_patch(api: Api, clock: Clock) -> None:
    _created(api, clock, "s1")
    api.put("/snapshots/s2", json_body={})
    api.post("/snapshots/s1/restore", json_body={"force": True})
    stray = api.sim.state.executions_in(("pending",))[-1]
    r = api.patch(f"/executions/{stray['id']}", json_body={"status": "cancelled"})
    assert r.status == 200 and r.json()["status"] == "cancelled" and r.json()["ended_at"]
    assert api.patch(f"/executions/{stray['id']}", json_body={"status": "started"}).status == 400


def test_patch_snapshot_status(api: Api) -> None:
    api.put("/snapshots/s1", json_body={})
    r = api.patch("/snapshots/s1", json_body={"status": "created"})
    assert r.status == 200 and r.body == b"null\n"
    assert api.patch("/snapshots/s1", json_body={"status": "bogus"}).json()["error_code"] == "storage_error"
