"""Snapshot endpoints: list, get, create, delete, status PATCH, restore, snapshot-status."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote

from simulator.auth import identify
from simulator.context import Ctx, not_found
from simulator.http import ApiError, Response, internal_error, json_response
from simulator.listing import apply_filters, as_bool, envelope, include_fields, project, query_bool
from simulator.models import (SNAPSHOT_FIELDS, db_config, execution_as_snapshot, new_snapshot, render_execution,
                              render_snapshot)
from simulator.state import ACTIVE

STATUSES = ("creating", "created", "failed", "uploaded")


def validate_id(sid: str, name: str = "snapshot_id") -> None:
    """The manager's id rules (`validate_inputs`)."""
    if not sid:
        raise ApiError(400, "bad_parameters_error", f"The `{name}` argument is empty")
    if len(sid) > 256:
        raise ApiError(400, "bad_parameters_error",
                       f"The `{name}` argument is too long. Maximum allowed length is 256 characters")
    if quote(sid, safe="") != sid:
        raise ApiError(400, "bad_parameters_error",
                       f'The `{name}` argument contains illegal characters. Only letters, digits and the '
                       'characters "-", "." and "_" are allowed')
    if not (sid[0].isascii() and sid[0].isalpha()):
        raise ApiError(400, "bad_parameters_error", f"The `{name}` argument must begin with a letter")


def lookup(ctx: Ctx, sid: str) -> dict[str, Any]:
    """The snapshot row in the request's tenant, or 404."""
    row = ctx.sim.state.snapshots.get(ctx.need_tenant(), {}).get(sid)
    if row is None or not (ctx.user.is_admin or row["created_by"] == ctx.user.username):
        raise not_found("Snapshot", sid)  # private: other users' snapshots are invisible to non-admins
    return row


def list_snapshots(ctx: Ctx) -> Response:
    """`GET /snapshots`."""
    tenant = ctx.need_tenant()
    ctx.permit("snapshot_list")
    state = ctx.sim.state
    tenants = state.tenants if query_bool(ctx.req, "_all_tenants") else [tenant]
    items = [render_snapshot(s) for t in tenants for s in state.snapshots.get(t, {}).values()]
    if not ctx.user.is_admin:
        items = [i for i in items if i["created_by"] == ctx.user.username]
    items = apply_filters(items, ctx.req, SNAPSHOT_FIELDS)
    return json_response(envelope(items, ctx.req, SNAPSHOT_FIELDS, search="id"))


def get_snapshot(ctx: Ctx) -> Response:
    """`GET /snapshots/<id>`."""
    ctx.permit("snapshot_get")
    include = include_fields(ctx.req, SNAPSHOT_FIELDS)
    return json_response(project(render_snapshot(lookup(ctx, ctx.params["id"])), include))


def _create_options(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    vt = ctx.sim.vt
    opts: dict[str, Any] = {key: as_bool(key, body.get(key, "true")) for key in
            ("include_credentials", "include_logs", "include_events")}
    opts["queue"] = as_bool("queue", body.get("queue", "false"))
    if vt >= (6, 4, 0):
        opts["tempdir_path"] = body.get("tempdir_path")
        if opts["tempdir_path"] and not os.access(opts["tempdir_path"], os.W_OK):
            raise ApiError(403, "forbidden_error",
                           f"Temp dir cannot be created inside unwriteable location {opts['tempdir_path']}")
    if vt >= (7, 0, 0):
        opts["legacy"] = as_bool("legacy", body.get("legacy", vt < (7, 0, 1)))
    if vt >= (7, 0, 4):
        raw = body.get("listener_timeout")
        try:
            opts["listener_timeout"] = None if raw is None else float(raw)
        except (TypeError, ValueError):
            raise ApiError(400, "bad_parameters_error", "listener_timeout must a valid floating point number") \
                from None
    return opts


def create_snapshot(ctx: Ctx) -> Response:
    """`PUT /snapshots/<id>`: 201 and the create_snapshot Execution (pending or queued)."""
    sim, sid = ctx.sim, ctx.params["id"]
    ctx.permit("snapshot_create")
    validate_id(sid)
    opts = _create_options(ctx, ctx.json())
    tenant = ctx.tenant
    if tenant and sid in sim.state.snapshots.get(tenant, {}):
        raise ApiError(409, "conflict_error", f"<Snapshot id=`{sid}` tenant=`{tenant}`> already exists on "
                       f"<Tenant name=`{tenant}`> or with global visibility")
    if not tenant:
        raise _no_tenant_storage_error(sid, ctx.user.username)
    params = {"snapshot_id": sid, **{k: v for k, v in opts.items() if k != "queue"}}
    params["config"] = db_config()
    order = ("snapshot_id", "include_credentials", "include_logs", "include_events", "config", "tempdir_path",
             "legacy", "listener_timeout")
    params = {k: params[k] for k in order if k in params}
    status = "pending"
    probe = {"is_system_workflow": True, "workflow_id": "create_snapshot", "parameters": params}
    active = sim.engine.active()
    if active and sim.engine.is_blocking(probe):
        if not opts["queue"]:
            raise sim.engine.running_error(active)
        status = "queued"
    sim.state.snapshots[tenant][sid] = new_snapshot(sid, tenant, ctx.user.username, sim.now(), "creating")
    record = sim.engine.create(tenant, ctx.user.username, "create_snapshot", params, status=status)
    return json_response(render_execution(record, sim.vt), 201)


def _no_tenant_storage_error(sid: str, user: str) -> ApiError:
    return ApiError(409, "storage_error",
                    'SQL Storage error: (psycopg2.errors.NotNullViolation) null value in column "_tenant_id" of '
                    'relation "snapshots" violates not-null constraint\nDETAIL:  Failing row contains '
                    f"({sid}, private, creating, null, {user}).\n\n[SQL: INSERT INTO snapshots (id, "
                    "visibility, status, error, _tenant_id, _creator_id) VALUES (...)]")


def delete_snapshot(ctx: Ctx) -> Response:
    """`DELETE /snapshots/<id>`: 200 with the deleted row; 400 while a create/restore of it is active."""
    sim, sid = ctx.sim, ctx.params["id"]
    ctx.permit("snapshot_delete")
    row = lookup(ctx, sid)
    if sim.vt >= (6, 0, 0):
        for ex in sim.state.executions_in(ACTIVE):
            if ex["workflow_id"] in ("create_snapshot", "restore_snapshot") and \
                    ex["tenant_name"] == row["tenant_name"] and ex["parameters"].get("snapshot_id") == sid:
                raise ApiError(400, "snapshot_action_error",
                               f"Cannot delete snapshot `{sid}` which has an active `{ex['workflow_id']}` execution")
    del sim.state.snapshots[row["tenant_name"]][sid]
    sim.store.remove(row["tenant_name"], sid)
    return json_response(render_snapshot(row))


def patch_snapshot(ctx: Ctx) -> Response:
    """`PATCH /snapshots/<id> {"status","error"}` (what the worker calls): 200 with body null."""
    ctx.permit("snapshot_status_update")
    body = ctx.json()
    if "status" not in body:
        raise ApiError(400, "bad_parameters_error", "Missing status in json request body")
    row = lookup(ctx, ctx.params["id"])
    if body["status"] not in STATUSES:
        raise ApiError(409, "storage_error", "SQL Storage error: (psycopg2.errors.InvalidTextRepresentation) "
                       f'invalid input value for enum snapshot_status: "{body["status"]}"')
    row["status"], row["error"] = body["status"], body.get("error", "")
    return json_response(None)


def _restore_options(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    vt = ctx.sim.vt
    opts: dict[str, Any] = {}
    if vt < (6, 0, 0):
        if "recreate_deployments_envs" not in body:
            raise ApiError(400, "bad_parameters_error", "Missing recreate_deployments_envs in json request body")
        opts["recreate_deployments_envs"] = as_bool("recreate_deployments_envs", body["recreate_deployments_envs"])
    if "force" not in body:
        raise internal_error(KeyError("force"))
    opts["force"] = as_bool("force", body["force"])
    opts["restore_certificates"] = as_bool("restore_certificates", body.get("restore_certificates", "false"))
    opts["no_reboot"] = as_bool("no_reboot", body.get("no_reboot", "false"))
    if opts["no_reboot"] and not opts["restore_certificates"]:
        raise ApiError(400, "bad_parameters_error",
                       "`no_reboot` is only relevant when `restore_certificates` is activated")
    raw = body.get("timeout", 300)
    try:
        opts["timeout"] = int(raw)
    except (TypeError, ValueError):
        raise ApiError(400, "bad_parameters_error", f"invalid parameter, should be int, got: {raw}") from None
    return opts


def restore_snapshot(ctx: Ctx) -> Response:
    """`POST /snapshots/<id>/restore`: 200 and the new execution in the Snapshot field set."""
    sim, sid = ctx.sim, ctx.params["id"]
    ctx.permit("snapshot_restore")
    opts = _restore_options(ctx, ctx.json())
    row = lookup(ctx, sid)
    if row["status"] == "failed":
        raise ApiError(400, "snapshot_action_error", "Failed snapshot cannot be restored")
    params = {"snapshot_id": sid, "config": db_config(), **opts,
              "premium_enabled": sim.edition == "premium", "user_is_bootstrap_admin": ctx.user.username == "admin"}
    others = sim.engine.active()
    # 7.x commits the execution row before checking for running executions: on a 400 it stays behind.
    record = sim.engine.create(row["tenant_name"], ctx.user.username, "restore_snapshot", params,
                               worker=not others)
    if others:
        raise sim.engine.running_error(others)
    return json_response(execution_as_snapshot(record))


def snapshot_status(ctx: Ctx) -> Response:
    """`GET /snapshot-status` (no auth needed): running while the restore flag file exists.

    Credentials that are sent are still checked: a wrong password or a bad token is a 401 (reference §3).
    """
    identify(ctx.sim, ctx.req)
    return json_response({"status": "running" if ctx.sim.state.restore else "not-running"})
