"""Simulator: routing, authentication, error bodies, list conventions, status endpoints (reference §1, §7)."""

from __future__ import annotations

import json

import pytest

from sim_fixtures import Api, Clock, call, make_sim
from simulator.models import DB_PASSWORD


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_unknown_route_is_werkzeug_html_404(api: Api) -> None:
    r = api.get("/nope")
    assert r.status == 404 and r.headers["content-type"].startswith("text/html")
    assert "<title>404 Not Found</title>" in r.text
    assert api.get("/api/v9/snapshots").status == 404


def test_wrong_method_is_html_405(api: Api) -> None:
    r = api.post("/snapshots")
    assert r.status == 405 and "<title>405 Method Not Allowed</title>" in r.text


def test_snapshot_status_exists_only_under_v31(api: Api) -> None:
    assert api.get("/api/v3.1/snapshot-status", auth=None).json() == {"status": "not-running"}
    assert api.get("/api/v3/snapshot-status").status == 404
    assert api.get("/api/v2/snapshots").status == 200
    assert api.get("/api/v1/snapshots").status == 404
    assert api.get("/api/v2/maintenance").status == 404
    assert api.get("/api/v2.1/maintenance").status == 200


def test_snapshot_status_checks_credentials_that_are_sent(api: Api) -> None:
    """No auth needed, but a wrong password or a bad token is a 401; none at all, or an unknown user, is a 200."""
    wrong = api.get("/snapshot-status", auth=("admin", "wrong"))
    assert wrong.status == 401 and wrong.json() == {
        "error_code": "unauthorized_error", "server_traceback": None,
        "message": "User unauthorized: Authentication failed for <User username=`admin`>. Wrong credentials or "
                   "locked account"}
    shape = api.get("/snapshot-status", auth=None, headers={"Authentication-Token": "not-a-token-at-all"})
    assert shape.status == 401 and shape.json()["message"] == "User unauthorized: Invalid token structure"
    unknown = api.get("/snapshot-status", auth=None, headers={"Authentication-Token": "ctok-abcdefghij-nope"})
    assert unknown.status == 401 and unknown.json()["message"] == "User unauthorized: Unauthorized"
    for auth in (None, ("nobody", "x"), ("admin", "admin")):
        assert api.get("/snapshot-status", auth=auth).json() == {"status": "not-running"}, auth


def test_wrong_password_401_body_is_compact_sorted(api: Api) -> None:
    r = api.get("/snapshots", auth=("admin", "wrong"))
    assert r.status == 401
    assert r.body == (b'{"error_code":"unauthorized_error","message":"User unauthorized: Authentication failed for '
                      b'<User username=`admin`>. Wrong credentials or locked account","server_traceback":null}\n')


@pytest.mark.parametrize("auth", [None, ("nobody", "x"), ("1admin", "admin")])
def test_no_or_unknown_credentials(api: Api, auth) -> None:
    r = api.get("/snapshots", auth=auth)
    assert r.status == 401
    assert r.json()["message"] == "User unauthorized: No authentication info provided"


def test_wrong_basic_password_wins_over_a_valid_token(api: Api) -> None:
    token = api.post("/tokens", json_body={"description": "bot"}).json()["value"]
    r = api.get("/snapshots", auth=("admin", "wrong"), headers={"Authentication-Token": token})
    assert r.status == 401 and "Wrong credentials" in r.json()["message"]


def test_tokens_mint_use_mask_expire(api: Api, clock: Clock) -> None:
    minted = api.post("/tokens", json_body={"description": "bot", "expiration_date": "+1h"})
    assert minted.status == 200
    body = minted.json()
    assert body["value"].startswith(f"ctok-{body['id']}-") and body["username"] == "admin"
    ok = api.get("/snapshots", auth=None, headers={"Authentication-Token": body["value"]})
    assert ok.status == 200 and ok.headers["x-cloudify-audit-auth-method"] == "token"
    listed = api.get("/tokens").json()["items"]
    assert listed[0]["value"] == f"ctok-{body['id']}-********"
    bad = api.get("/snapshots", auth=None, headers={"Authentication-Token": f"ctok-{body['id']}-nope"})
    assert bad.json()["message"] == "User unauthorized: Unauthorized"
    shape = api.get("/snapshots", auth=None, headers={"Authentication-Token": "garbage"})
    assert shape.json()["message"] == "User unauthorized: Invalid token structure"
    clock.advance(3601)
    expired = api.get("/snapshots", auth=None, headers={"Authentication-Token": body["value"]})
    assert expired.status == 401 and expired.json()["message"] == "User unauthorized: Token is expired"


def test_tenant_errors(api: Api) -> None:
    r = api.get("/snapshots", tenant="nope")
    assert r.status == 403
    assert r.json()["message"] == "Authorization failed: Tried to authenticate with invalid tenant name: nope"
    r = api.get("/snapshots", tenant=None)
    assert (r.status, r.json()["message"]) == (403, "Authorization failed: tenant not provided")
    r = api.put("/snapshots/s1", json_body={}, tenant=None)
    assert r.status == 409 and r.json()["error_code"] == "storage_error" and "_tenant_id" in r.json()["message"]


def test_viewer_role_may_read_but_not_create(clock: Clock) -> None:
    sim = make_sim(clock)
    sim.add_user("viewer", "pw", role="default")
    api = Api(sim)
    assert api.put("/snapshots/mine", json_body={}).status == 201
    assert api.get("/snapshots", auth=("viewer", "pw")).json()["items"] == []  # private to their creator
    assert api.get("/snapshots/mine", auth=("viewer", "pw")).status == 404
    r = api.put("/snapshots/s1", json_body={}, auth=("viewer", "pw"))
    assert r.status == 403
    assert r.json()["message"] == ("User `viewer` is not permitted to perform the action snapshot_create in the "
                                   "tenant `default_tenant`")


def test_415_without_json_content_type(api: Api) -> None:
    r = api.put("/snapshots/s1", body=b"{}", content_type="text/plain")
    assert r.status == 415
    assert r.json() == {"error_code": "unsupported_content_type_error",
                        "message": "Content type must be application/json", "server_traceback": None}


def test_body_that_is_not_json_is_html_400(api: Api) -> None:
    r = api.put("/snapshots/s1", body=b"{nope")
    assert r.status == 400 and r.headers["content-type"].startswith("text/html")
    assert "Failed to decode JSON object" in r.text


def test_seed_guide_upload_path_is_a_create_call(api: Api) -> None:
    r = api.put("/snapshots/archive?snapshot_archive_url=http://x/y.zip", body=b"PK", content_type="application/zip")
    assert r.status == 415


def test_audit_headers(api: Api) -> None:
    r = api.get("/snapshots")
    assert r.headers["x-cloudify-audit-auth-method"] == "http_basic"
    assert r.headers["x-cloudify-audit-tenant"] == "default_tenant"
    assert r.headers["x-cloudify-audit-username"] == "admin"


def test_version_needs_auth_and_has_its_fields(api: Api) -> None:
    assert api.get("/api/version", auth=None).status == 401
    body = api.get("/api/version").json()
    assert body == {"edition": "community", "version": "7.0.5", "build": None, "date": None, "commit": None,
                    "distribution": "debian", "distro_release": "bookworm"}
    assert api.get("/version").json() == body


def test_status_ok_provider_context(api: Api) -> None:
    status = api.get("/status").json()
    assert status["status"] == "OK" and status["services"]["RabbitMQ"]["extra_info"] == {"connection_check": "OK"}
    assert api.get("/status", query={"summary": "true"}).json() == {"status": "OK", "services": {}}
    assert api.get("/ok", auth=None).json() == "OK"
    assert "context" in api.get("/provider/context").json()


def test_list_envelope_pagination_sort_include(api: Api) -> None:
    for sid in ("b1", "a1", "c1"):
        assert api.put(f"/snapshots/{sid}", json_body={"legacy": False}).status == 201
    r = api.get("/snapshots", query={"_size": "2", "_offset": "1", "_sort": "-id", "_include": "id,status"})
    assert r.json() == {"metadata": {"pagination": {"total": 3, "size": 2, "offset": 1}, "filtered": None},
                        "items": [{"id": "b1", "status": "creating"}, {"id": "a1", "status": "creating"}]}
    assert api.get("/snapshots", query={"_size": "0"}).json()["metadata"]["pagination"]["total"] == 3
    assert [i["id"] for i in api.get("/snapshots", query={"_search": "1", "id": ["a1", "c1"]}).json()["items"]] == \
        ["a1", "c1"]


def test_list_validation_errors(api: Api) -> None:
    r = api.get("/snapshots", query={"_size": "-1"})
    assert r.status == 400 and "server_traceback" not in r.json() and r.json()["error_code"] == "bad_parameters_error"
    assert "server_traceback" not in api.get("/snapshots", query={"_offset": "x"}).json()
    r = api.get("/snapshots", query={"foo": "1"})
    assert r.status == 400 and r.json()["message"].startswith("Filter keys '['foo']' do not exist. Allowed keys are")
    r = api.get("/snapshots", query={"_include": "id,nope"})
    assert r.status == 400 and r.json()["error_code"] == "no_such_include_field_error"
    assert api.get("/snapshots", query={"_sort": "nope"}).status == 400
    assert api.get("/snapshots", query={"_all_tenants": "True"}).status == 200


def test_execution_bodies_carry_the_db_password_in_config(api: Api) -> None:
    r = api.put("/snapshots/s1", json_body={})
    assert r.json()["parameters"]["config"]["postgresql_password"] == DB_PASSWORD


def test_unhandled_error_is_500_with_traceback(api: Api) -> None:
    r = api.put("/snapshots/s1", body=json.dumps([1]).encode())
    assert r.status == 500 and r.json()["error_code"] == "internal_server_error"
    assert r.json()["server_traceback"].startswith("Traceback")


def test_older_versions_have_no_audit_headers(clock: Clock) -> None:
    sim = make_sim(clock, version="5.2.7")
    r = call(sim.wsgi, "GET", "/api/v3.1/snapshots")
    assert r.status == 200 and "x-cloudify-audit-username" not in r.headers


def test_head_is_answered_like_get(api: Api) -> None:
    assert api("HEAD", "/snapshots").status == 200
    assert api("HEAD", "/maintenance/activate").status == 405
