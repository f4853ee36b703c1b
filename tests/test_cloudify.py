"""bot/cloudify.py against small WSGI managers that answer with the reference's exact bodies.

The real `Manager` and the real `wsgi_transport` are used throughout; only the server is small.
Wire expectations come from shared/reference/cfy-cli-wire.md (cfy 7.0.5) and cloudify-manager-api.md.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import pytest

from bot import errors
from bot.cloudify import Manager, Page, wsgi_transport
from bot.settings import ManagerSettings

A, B = "http://a.sim", "http://b.sim"


@dataclass
class Seen:
    """One request as the server received it."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    @property
    def params(self) -> list[tuple[str, str]]:
        return parse_qsl(self.query, keep_blank_values=True)


Answer = tuple[int, bytes, list[tuple[str, str]]]


def flask_json(status: int, obj: Any) -> Answer:
    """An error body as the manager renders it (jsonify: compact, sorted keys)."""
    return status, json.dumps(obj, separators=(",", ":"), sort_keys=True).encode(), [
        ("Content-Type", "application/json")]


def ok_json(obj: Any, status: int = 200) -> Answer:
    """A success body as flask-restful renders it."""
    return status, json.dumps(obj).encode(), [("Content-Type", "application/json")]


def html(status: int, text: str = "<html><title>404 Not Found</title><body>nginx</body></html>") -> Answer:
    return status, text.encode(), [("Content-Type", "text/html")]


def err(status: int, code: str, message: str, traceback: Any = None) -> Answer:
    return flask_json(status, {"error_code": code, "message": message, "server_traceback": traceback})


def page(items: list[dict]) -> Answer:
    return ok_json({"metadata": {"pagination": {"total": len(items), "size": 1000, "offset": 0}, "filtered": None},
                    "items": items})


@dataclass
class FakeManager:
    """A WSGI app: answers from a route table keyed by (METHOD, path) and records every request."""

    routes: dict[tuple[str, str], Answer | Callable[[Seen], Answer]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    fault: type[BaseException] | None = None  # raised instead of answering (the simulator's convention)

    def __call__(self, environ: dict, start_response: Callable) -> list[bytes]:
        body = environ["wsgi.input"].read()
        headers = {k[5:].replace("_", "-").title(): v for k, v in environ.items() if k.startswith("HTTP_")}
        for k in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if k in environ:
                headers[k.replace("_", "-").title()] = environ[k]
        req = Seen(environ["REQUEST_METHOD"], environ["PATH_INFO"], environ["QUERY_STRING"], headers, body)
        self.seen.append(req)
        if self.fault is not None:
            raise self.fault()
        answer = self.routes.get((req.method, req.path), html(404))
        status, data, extra = answer(req) if callable(answer) else answer
        start_response(f"{status} X", [*extra, ("Content-Length", str(len(data)))])
        return [data]


VERSION_7 = ok_json({"edition": "community", "version": "7.0.4", "build": None, "date": None, "commit": None,
                     "distribution": "rhel", "distro_release": "8"})
EXECUTION = {"id": "e1", "workflow_id": "create_snapshot", "status": "pending", "error": None,
             "parameters": {"snapshot_id": "s1", "config": {"postgresql_password": "db-secret"}, "legacy": True}}


def settings(*urls: str, **kw: Any) -> ManagerSettings:
    base: dict[str, Any] = dict(name="prod", urls=urls or (A,), username="admin", password="admin")
    base.update(kw)
    return ManagerSettings(**base)


def manager(app: Any, *urls: str, **kw: Any) -> Manager:
    notices: list[str] = kw.pop("notices", [])
    return Manager(settings(*urls, **kw), transport=wsgi_transport(app), on_notice=notices.append)


# --- request wire shape -------------------------------------------------------------------------


def test_every_request_carries_basic_auth_tenant_and_json_content_type() -> None:
    app = FakeManager({("GET", "/api/v3.1/snapshots/s1"): ok_json({"id": "s1"})})
    assert manager(app).get_snapshot("s1") == {"id": "s1"}
    (req,) = app.seen
    assert req.headers["Authorization"] == "Basic YWRtaW46YWRtaW4="
    assert req.headers["Tenant"] == "default_tenant"
    assert req.headers["Content-Type"] == "application/json"
    assert "Content-Length" not in req.headers  # a GET has none, as with cfy


def test_a_token_wins_and_no_authorization_header_is_sent() -> None:
    app = FakeManager({("GET", "/api/v3.1/status"): ok_json({"status": "OK", "services": {}})})
    manager(app, token="ctok-abc-def", tenant="t2").status()
    (req,) = app.seen
    assert req.headers["Authentication-Token"] == "ctok-abc-def"
    assert "Authorization" not in req.headers
    assert req.headers["Tenant"] == "t2"


def test_create_snapshot_sends_cfys_exact_body_expects_201_and_redacts_the_execution() -> None:
    app = FakeManager({("PUT", "/api/v3.1/snapshots/s1"): ok_json(EXECUTION, 201)})
    execution = manager(app).create_snapshot("s1", legacy=True)
    assert app.seen[0].body == (b'{"include_credentials": true, "include_logs": true, "include_events": true, '
                                b'"queue": false, "tempdir_path": null, "legacy": true, "listener_timeout": null}')
    assert execution.parameters["config"] == "[redacted]"
    assert execution.id == "e1"


def test_create_snapshot_flags_and_no_legacy() -> None:
    app = FakeManager({("PUT", "/api/v3.1/snapshots/s2"): ok_json(EXECUTION, 201)})
    manager(app).create_snapshot("s2", legacy=False, include_credentials=False, include_logs=False,
                                 include_events=False, queue=True, tempdir_path="/tmp", listener_timeout=30)
    assert json.loads(app.seen[0].body) == {"include_credentials": False, "include_logs": False,
                                            "include_events": False, "queue": True, "tempdir_path": "/tmp",
                                            "legacy": False, "listener_timeout": 30.0}
    assert b'"listener_timeout": 30.0' in app.seen[0].body


def test_listener_timeout_with_legacy_is_refused_before_any_request() -> None:
    app = FakeManager()
    with pytest.raises(errors.UsageError):
        manager(app).create_snapshot("s1", legacy=True, listener_timeout=5)
    assert app.seen == []


def test_create_snapshot_answered_200_is_an_error_naming_the_call_without_secrets() -> None:
    app = FakeManager({("PUT", "/api/v3.1/snapshots/s1"): ok_json(EXECUTION, 200)})
    with pytest.raises(errors.ServerError) as info:
        manager(app).create_snapshot("s1", legacy=True)
    msg = str(info.value)
    assert "create snapshot s1" in msg and "HTTP 200" in msg and "expects 201" in msg and A in msg
    assert "db-secret" not in msg and info.value.status == 200


def test_list_snapshots_query_in_cfys_order() -> None:
    app = FakeManager({("GET", "/api/v3.1/snapshots"): page([{"id": "s1"}])})
    m = manager(app)
    result = m.list_snapshots()
    assert result == Page(items=[{"id": "s1"}], total=1, offset=0, size=1000)
    assert app.seen[0].query == "_all_tenants=False&_offset=0&_size=1000&_sort=created_at"
    m.list_snapshots(all_tenants=True, search="snap", size=50, descending=True, tenant="other", status="created")
    assert app.seen[1].query == "_all_tenants=True&_search=snap&_offset=0&_size=50&_sort=-created_at&status=created"
    assert app.seen[1].headers["Tenant"] == "other"


def test_list_without_pagination_total_is_a_bad_response() -> None:
    app = FakeManager({("GET", "/api/v3.1/snapshots"): ok_json({"items": [], "metadata": {"pagination": {}}})})
    with pytest.raises(errors.BadResponse, match="metadata.pagination.total"):
        manager(app).list_snapshots()


def test_restore_body_on_6_and_later_force_always_sent_expects_200() -> None:
    app = FakeManager({("GET", "/api/version"): VERSION_7,
                       ("POST", "/api/v3.1/snapshots/s1/restore"): ok_json({"id": "r1", "status": "pending"})})
    m = manager(app)
    assert m.restore_snapshot("s1").id == "r1"
    m.restore_snapshot("s1", force=True, restore_certificates=True, no_reboot=True, timeout=600)
    posts = [r for r in app.seen if r.method == "POST"]
    assert posts[0].body == b'{"force": false, "restore_certificates": false, "no_reboot": false, ' \
                            b'"ignore_plugin_failure": false}'
    assert json.loads(posts[1].body) == {"force": True, "restore_certificates": True, "no_reboot": True,
                                         "ignore_plugin_failure": False, "timeout": 600}
    assert [r.path for r in app.seen].count("/api/version") == 1  # the version is cached


def test_restore_body_on_5x_adds_recreate_deployments_envs() -> None:
    app = FakeManager({("GET", "/api/version"): ok_json({"edition": "premium", "version": "5.2.7"}),
                       ("POST", "/api/v3.1/snapshots/s1/restore"): ok_json({"id": "r1"})})
    m = manager(app)
    m.restore_snapshot("s1")
    assert m.server_version() == (5, 2, 7)
    assert app.seen[-1].body == (b'{"recreate_deployments_envs": true, "force": false, "restore_certificates": '
                                 b'false, "no_reboot": false, "ignore_plugin_failure": false}')


def test_restore_answered_201_is_an_error() -> None:
    app = FakeManager({("GET", "/api/version"): VERSION_7,
                       ("POST", "/api/v3.1/snapshots/s1/restore"): ok_json({"id": "r1"}, 201)})
    with pytest.raises(errors.ServerError, match="expects 200"):
        manager(app).restore_snapshot("s1")


def test_server_version_parses_dev_versions() -> None:
    app = FakeManager({("GET", "/api/version"): ok_json({"version": "7.1.0.dev1"})})
    assert manager(app).server_version() == (7, 1, 0)


def test_unusable_version_is_a_bad_response() -> None:
    app = FakeManager({("GET", "/api/version"): ok_json({"version": None})})
    with pytest.raises(errors.BadResponse, match="version"):
        manager(app).server_version()


def test_delete_accepts_200_and_204_only_and_sends_content_length_zero() -> None:
    app = FakeManager({("DELETE", "/api/v3.1/snapshots/s1"): ok_json({"id": "s1"}),
                       ("DELETE", "/api/v3.1/snapshots/s2"): (204, b"", []),
                       ("DELETE", "/api/v3.1/snapshots/s3"): ok_json({}, 202)})
    m = manager(app)
    assert m.delete_snapshot("s1") == {"id": "s1"}
    assert m.delete_snapshot("s2") is None
    with pytest.raises(errors.ServerError, match="HTTP 202"):
        m.delete_snapshot("s3")
    assert app.seen[0].headers["Content-Length"] == "0" and app.seen[0].body == b""


def test_snapshot_status_sends_no_credentials() -> None:
    app = FakeManager({("GET", "/api/v3.1/snapshot-status"): ok_json({"status": "not-running"})})
    assert manager(app, token="ctok-a-b").snapshot_status() == "not-running"
    assert "Authorization" not in app.seen[0].headers
    assert "Authentication-Token" not in app.seen[0].headers


def test_ok_is_true_for_ok_and_false_for_fail() -> None:
    app = FakeManager({("GET", "/api/v3.1/ok"): ok_json("OK")})
    assert manager(app).ok() is True
    app.routes[("GET", "/api/v3.1/ok")] = ok_json("FAIL", 500)
    assert manager(app).ok() is False
    assert "Authorization" not in app.seen[0].headers


def test_maintenance_paths_bodies_and_normalised_remaining_executions() -> None:
    off = {"status": "deactivated", "activated_at": "", "activation_requested_at": "", "remaining_executions": None,
           "requested_by": ""}
    remaining = [{"id": "e9", "status": "started", "deployment_id": None, "workflow_id": "create_snapshot"}]
    activating = {**off, "status": "activating", "remaining_executions": [remaining], "requested_by": "admin"}
    app = FakeManager({("GET", "/api/v3.1/maintenance"): ok_json(off),
                       ("POST", "/api/v3.1/maintenance/activate"): ok_json(activating),
                       ("POST", "/api/v3.1/maintenance/deactivate"): ok_json(off)})
    m = manager(app)
    assert m.maintenance_status()["remaining_executions"] == []
    assert m.maintenance_activate()["remaining_executions"] == remaining
    assert m.maintenance_deactivate()["status"] == "deactivated"
    post = app.seen[1]
    assert post.headers["Content-Length"] == "0" and post.body == b""
    assert post.headers["Content-Type"] == "application/json"
    app.routes[("POST", "/api/v3.1/maintenance/activate")] = ok_json({**activating, "remaining_executions": [[]]})
    assert m.maintenance_activate()["remaining_executions"] == []


def test_maintenance_304_is_not_modified() -> None:
    app = FakeManager({("POST", "/api/v3.1/maintenance/activate"): (304, b"", []),
                       ("POST", "/api/v3.1/maintenance/deactivate"): (304, b"", [])})
    m = manager(app)
    with pytest.raises(errors.NotModified, match="maintenance mode is already on") as info:
        m.maintenance_activate()
    assert info.value.status == 304 and "prod" in str(info.value)
    with pytest.raises(errors.NotModified, match="maintenance mode is already off"):
        m.maintenance_deactivate()


def test_activate_answered_201_is_an_error() -> None:
    app = FakeManager({("POST", "/api/v3.1/maintenance/activate"): ok_json({"status": "activated"}, 201)})
    with pytest.raises(errors.ServerError):
        manager(app).maintenance_activate()


def test_events_query_as_the_cli_polls() -> None:
    app = FakeManager({("GET", "/api/v3.1/events"): ok_json({"metadata": {"pagination": {"size": 100, "offset": 0,
                                                                                         "total": 0}}, "items": []})})
    m = manager(app)
    assert m.list_events("e1").total == 0
    m.list_events("e1", offset=7, include_logs=False)
    assert app.seen[0].query == ("_offset=0&_size=100&execution_id=e1&type=cloudify_event&type=cloudify_log"
                                 "&_sort=reported_timestamp")
    assert app.seen[1].query == "_offset=7&_size=100&execution_id=e1&type=cloudify_event&_sort=reported_timestamp"


def test_executions_are_redacted_and_status_lists_repeat_the_key() -> None:
    app = FakeManager({("GET", "/api/v3.1/executions"): page([EXECUTION]),
                       ("GET", "/api/v3.1/executions/e1"): ok_json(EXECUTION),
                       ("POST", "/api/v3.1/executions/e1"): ok_json({**EXECUTION, "status": "kill_cancelling"})})
    m = manager(app)
    listed = m.list_executions(status=["failed", "terminated"], workflow_id="restore_snapshot")
    assert app.seen[0].query == ("_include_system_workflows=True&status=failed&status=terminated"
                                 "&workflow_id=restore_snapshot")
    assert listed.items[0].parameters["config"] == "[redacted]"
    assert m.get_execution("e1").parameters["config"] == "[redacted]"
    killed = m.execution_action("e1", "kill")
    assert app.seen[-1].body == b'{"action": "kill"}' and killed.parameters["config"] == "[redacted]"
    with pytest.raises(ValueError):
        m.execution_action("e1", "resume")


def test_execution_paging_and_the_maintenance_bypass_header() -> None:
    app = FakeManager({("GET", "/api/v3.1/executions"): page([]), ("GET", "/api/v3.1/executions/e1"): ok_json({}),
                       ("POST", "/api/v3.1/executions/e1"): ok_json({}),
                       ("GET", "/api/v3.1/events"): page([]),
                       ("GET", "/api/v3.1/execution-schedules"): page([])})
    m = manager(app)
    m.list_executions(status="started", size=50, offset=10, sort="-created_at", bypass_maintenance=True)
    assert app.seen[0].query == "_include_system_workflows=True&_offset=10&_size=50&_sort=-created_at&status=started"
    m.get_execution("e1", bypass_maintenance=True)
    m.execution_action("e1", "cancel", bypass_maintenance=True)
    m.list_events("e1", bypass_maintenance=True)
    assert [r.headers.get("X-Bypass-Maintenance") for r in app.seen] == ["true"] * 4
    m.get_execution("e1")
    assert "X-Bypass-Maintenance" not in app.seen[-1].headers
    m.list_execution_schedules(size=5, deployment_id="d1")
    assert app.seen[-1].query == "_size=5&deployment_id=d1"


def test_schedules_and_cluster_endpoints() -> None:
    broker = {"name": "b1", "host": "10.0.0.1", "username": "rabbit", "password": "rabbit-pw", "ca_cert_content": "C"}
    app = FakeManager({("GET", "/api/v3.1/execution-schedules"): page([{"id": "sch1"}]),
                       ("GET", "/api/v3.1/managers"): page([{"hostname": "mgr-1", "ca_cert_content": "C"}]),
                       ("GET", "/api/v3.1/brokers"): page([broker]),
                       ("GET", "/api/v3.1/db-nodes"): page([{"name": "db1", "host": "10.0.0.1"}]),
                       ("GET", "/api/v3.1/cluster-status"): ok_json({"status": "OK", "services": {}})})
    m = manager(app)
    assert m.list_execution_schedules(deployment_id="d1").items == [{"id": "sch1"}]
    assert app.seen[0].query == "deployment_id=d1"
    assert m.managers().items[0]["ca_cert_content"] == "C"
    assert m.brokers().items[0]["password"] == "[redacted]"
    assert m.db_nodes().total == 1
    assert m.cluster_status() == {"status": "OK", "services": {}}
    assert app.seen[-1].query == "summary=False"


def test_cluster_status_without_services_is_a_bad_response() -> None:
    app = FakeManager({("GET", "/api/v3.1/cluster-status"): ok_json({"status": "OK"})})
    with pytest.raises(errors.BadResponse, match="services"):
        manager(app).cluster_status()


def test_cluster_status_summary_fail_comes_as_500_and_is_an_answer() -> None:
    app = FakeManager({("GET", "/api/v3.1/cluster-status"): ok_json({"status": "Fail", "services": {}}, 500)})
    assert manager(app).cluster_status(summary=True)["status"] == "Fail"
    with pytest.raises(errors.ServerError):
        manager(app).cluster_status()


# --- error answers and their messages ------------------------------------------------------------


def test_401_names_manager_url_and_user_never_the_password() -> None:
    app = FakeManager({("GET", "/api/v3.1/snapshots"): err(
        401, "unauthorized_error",
        "User unauthorized: Authentication failed for <User username=`admin`>. Wrong credentials or locked account")})
    with pytest.raises(errors.AuthenticationFailed) as info:
        manager(app, password="pw-Sekrit-9").list_snapshots()
    msg = str(info.value)
    assert msg.startswith(f"manager prod at {A} rejected the credentials for user admin: User unauthorized")
    assert "pw-Sekrit-9" not in msg and info.value.status == 401 and info.value.error_code == "unauthorized_error"


def test_401_with_a_token_says_token() -> None:
    app = FakeManager({("GET", "/api/v3.1/snapshots"): err(401, "unauthorized_error",
                                                           "User unauthorized: Token is expired")})
    with pytest.raises(errors.AuthenticationFailed, match="rejected the API token: User unauthorized: Token is"):
        manager(app, token="ctok-x-y").list_snapshots()


def test_403_unknown_tenant_is_tenant_not_found() -> None:
    app = FakeManager({("GET", "/api/v3.1/snapshots"): err(
        403, "forbidden_error", "Authorization failed: Tried to authenticate with invalid tenant name: nope")})
    with pytest.raises(errors.TenantNotFound, match="^tenant nope does not exist on manager prod$"):
        manager(app, tenant="nope").list_snapshots()


def test_403_permission_is_forbidden_not_tenant() -> None:
    app = FakeManager({("PUT", "/api/v3.1/snapshots/s1"): err(
        403, "forbidden_error", "User `u` is not permitted to perform the action snapshot_create in the tenant `t`")})
    with pytest.raises(errors.Forbidden) as info:
        manager(app).create_snapshot("s1", legacy=False)
    assert not isinstance(info.value, errors.TenantNotFound)
    assert "not permitted to perform the action snapshot_create" in str(info.value)


def test_404_of_the_api_names_the_thing() -> None:
    app = FakeManager({("GET", "/api/v3.1/snapshots/gone"): err(
        404, "not_found_error", "Requested `Snapshot` with ID `gone` was not found")})
    with pytest.raises(errors.ManagerNotFound, match="^snapshot gone does not exist on manager prod"):
        manager(app).get_snapshot("gone")


def test_html_404_says_the_url_is_not_the_rest_api() -> None:
    app = FakeManager()  # every path: an nginx HTML 404
    with pytest.raises(errors.ManagerNotFound) as info:
        manager(app).snapshot_status()
    assert (f"manager prod at {A} does not serve the Cloudify REST API at this path (is the URL right?)"
            in str(info.value))


def test_409_conflict() -> None:
    app = FakeManager({("PUT", "/api/v3.1/snapshots/s1"): err(
        409, "conflict_error",
        "<Snapshot id=`s1` tenant=`default_tenant`> already exists on <Tenant name=`default_tenant`> or with global "
        "visibility")})
    with pytest.raises(errors.Conflict, match="snapshot s1 already exists on manager prod"):
        manager(app).create_snapshot("s1", legacy=True)


@pytest.mark.parametrize("message", [
    "Cannot start execution because there are other executions running e.g.: 1f0e-aa, 2b7c-bb",
    "You cannot start a system-wide execution if there are other executions running. "
    "Currently running executions: ['1f0e-aa', '2b7c-bb']",
])
def test_400_existing_running_execution_keeps_the_ids(message: str) -> None:
    app = FakeManager({("GET", "/api/version"): VERSION_7,
                       ("POST", "/api/v3.1/snapshots/s1/restore"): err(400, "existing_running_execution_error",
                                                                       message)})
    with pytest.raises(errors.ExecutionsRunning) as info:
        manager(app).restore_snapshot("s1")
    assert info.value.execution_ids == ["1f0e-aa", "2b7c-bb"]  # type: ignore[attr-defined]
    assert "restore snapshot s1" in str(info.value) and "1f0e-aa, 2b7c-bb" in str(info.value)


def test_400_snapshot_action_error_and_other_400() -> None:
    app = FakeManager({("GET", "/api/v3.1/snapshots/s1/archive"): err(400, "snapshot_action_error",
                                                                      "Failed snapshot cannot be downloaded"),
                       ("PUT", "/api/v3.1/snapshots/1bad"): err(
                           400, "bad_parameters_error", "The `snapshot_id` argument must begin with a letter")})
    m = manager(app)
    with pytest.raises(errors.SnapshotActionError, match="Failed snapshot cannot be downloaded"), \
            m.download_snapshot("s1"):
        pass
    with pytest.raises(errors.BadRequest) as info:
        m.create_snapshot("1bad", legacy=True)
    assert type(info.value) is errors.BadRequest and "must begin with a letter" in str(info.value)


@pytest.mark.parametrize(("code", "cls"), [("maintenance_mode_active", errors.MaintenanceModeActive),
                                           ("entering_maintenance_mode", errors.EnteringMaintenanceMode)])
def test_maintenance_503_is_never_retried_nor_failed_over(code: str, cls: type) -> None:
    body = err(503, code, "Your request was rejected since Cloudify manager is currently in maintenance mode",
               "NoneType: None\n")
    a, b = FakeManager({("GET", "/api/v3.1/executions/e1"): body}), FakeManager()
    m = manager({"a.sim": a, "b.sim": b}, A, B)
    with pytest.raises(cls) as info:
        m.get_execution("e1")
    assert len(a.seen) == 1 and b.seen == []
    assert "manager prod" in str(info.value) and "maintenance mode" in str(info.value)


def test_500_keeps_the_first_line_and_drops_the_traceback() -> None:
    app = FakeManager({("GET", "/api/version"): VERSION_7,
                       ("POST", "/api/v3.1/snapshots/s1/restore"): err(
                           500, "internal_server_error",
                           "Internal error occurred in manager REST server - KeyError: 'force'\nmore",
                           "Traceback (most recent call last):\n  File x")})
    with pytest.raises(errors.ServerError) as info:
        manager(app).restore_snapshot("s1")
    msg = str(info.value)
    assert "KeyError: 'force'" in msg and "Traceback" not in msg and "more" not in msg
    assert msg.startswith(f"manager prod at {A} failed to restore snapshot s1: HTTP 500 internal_server_error")


def test_html_where_json_is_expected_is_a_bad_response() -> None:
    app = FakeManager({("GET", "/api/v3.1/snapshots"): html(200, "<html><body>Welcome to nginx</body></html>")})
    with pytest.raises(errors.BadResponse,
                       match=f"manager prod at {A} answered with HTML, not JSON: is this a Cloudify manager?"):
        manager(app).list_snapshots()


def test_garbage_where_json_is_expected_is_a_bad_response() -> None:
    app = FakeManager({("GET", "/api/v3.1/maintenance"): (200, b"\x00\x13garbage{", [])})
    with pytest.raises(errors.BadResponse, match="not JSON"):
        manager(app).maintenance_status()


def test_415_is_a_server_error_naming_call_and_status() -> None:
    app = FakeManager({("PUT", "/api/v3.1/snapshots/s1"): err(415, "unsupported_content_type_error",
                                                              "Content type must be application/json")})
    with pytest.raises(errors.ServerError, match="HTTP 415 to PUT /api/v3.1/snapshots/s1"):
        manager(app).create_snapshot("s1", legacy=True)


# --- logging --------------------------------------------------------------------------------------


def test_logs_method_path_status_never_bodies_or_credentials(caplog: pytest.LogCaptureFixture) -> None:
    app = FakeManager({("PUT", "/api/v3.1/snapshots/s1"): ok_json(EXECUTION, 201),
                       ("GET", "/api/v3.1/snapshots"): page([])})
    caplog.set_level(logging.DEBUG, logger="cfy_bot.cloudify")
    m = manager(app, password="pw-Sekrit-9")
    m.create_snapshot("s1", legacy=True)
    m.list_snapshots(search="needle")
    text = caplog.text
    assert "PUT /api/v3.1/snapshots/s1 201" in text and "GET /api/v3.1/snapshots 200" in text
    basic = base64.b64encode(b"admin:pw-Sekrit-9").decode()
    for secret in ("pw-Sekrit-9", basic, "db-secret", "include_credentials", "needle"):
        assert secret not in text
    assert {r.name for r in caplog.records} == {"cfy_bot.cloudify"}
