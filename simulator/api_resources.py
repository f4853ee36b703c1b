"""Blueprints, deployments (minimal) and execution schedules."""

from __future__ import annotations

from typing import Any

from simulator.api_snapshots import validate_id
from simulator.context import Ctx, not_found
from simulator.http import ApiError, Response, empty_response, json_response
from simulator.listing import apply_filters, envelope, include_fields, project, query_bool
from simulator.schedules import build_schedule, render_schedule
from simulator.wire import iso, parse_iso

BLUEPRINT_FIELDS = ("id", "created_at", "updated_at", "main_file_name", "description", "plan", "state",
                    "visibility", "tenant_name", "created_by", "labels")
DEPLOYMENT_FIELDS = ("id", "created_at", "updated_at", "blueprint_id", "display_name", "description", "inputs",
                     "workflows", "installation_status", "deployment_status", "visibility", "tenant_name",
                     "created_by", "labels")
SCHEDULE_FIELDS = ("created_at", "id", "visibility", "tenant_name", "created_by", "deployment_id", "workflow_id",
                   "parameters", "execution_arguments", "since", "until", "stop_on_fail", "enabled", "rule",
                   "slip", "latest_execution_status", "next_occurrence", "all_next_occurrences",
                   "resource_availability", "private_resource")


def _rows(ctx: Ctx, kind: str) -> list[dict[str, Any]]:
    tenant = ctx.need_tenant()
    tenants = ctx.sim.state.tenants if query_bool(ctx.req, "_all_tenants") else [tenant]
    return [dict(r) for t in tenants for r in getattr(ctx.sim.state, kind).get(t, [])]


def list_blueprints(ctx: Ctx) -> Response:
    """`GET /blueprints`."""
    ctx.permit("blueprint_list")
    items = apply_filters(_rows(ctx, "blueprints"), ctx.req, BLUEPRINT_FIELDS)
    return json_response(envelope(items, ctx.req, BLUEPRINT_FIELDS, search="id"))


def list_deployments(ctx: Ctx) -> Response:
    """`GET /deployments`."""
    ctx.permit("deployment_list")
    items = apply_filters(_rows(ctx, "deployments"), ctx.req, DEPLOYMENT_FIELDS)
    return json_response(envelope(items, ctx.req, DEPLOYMENT_FIELDS, search="id"))


def get_blueprint(ctx: Ctx) -> Response:
    """`GET /blueprints/<id>`."""
    ctx.permit("blueprint_get")
    return _get_one(ctx, "blueprints", "Blueprint", BLUEPRINT_FIELDS)


def get_deployment(ctx: Ctx) -> Response:
    """`GET /deployments/<id>`."""
    ctx.permit("deployment_get")
    return _get_one(ctx, "deployments", "Deployment", DEPLOYMENT_FIELDS)


def _get_one(ctx: Ctx, kind: str, model: str, fields: tuple[str, ...]) -> Response:
    ident = ctx.params["id"]
    row = next((r for r in getattr(ctx.sim.state, kind).get(ctx.need_tenant(), []) if r["id"] == ident), None)
    if row is None:
        raise not_found(model, ident)
    return json_response(project(row, include_fields(ctx.req, fields)))


def list_schedules(ctx: Ctx) -> Response:
    """`GET /execution-schedules[?deployment_id=...]`."""
    tenant = ctx.need_tenant()
    ctx.permit("execution_schedule_list")
    state, now = ctx.sim.state, ctx.sim.now()
    tenants = state.tenants if query_bool(ctx.req, "_all_tenants") else [tenant]
    items = [render_schedule(s, now) for t in tenants for s in state.schedules.get(t, {}).values()]
    items = apply_filters(items, ctx.req, SCHEDULE_FIELDS)
    return json_response(envelope(items, ctx.req, SCHEDULE_FIELDS, search="id"))


def _schedule_row(ctx: Ctx) -> dict[str, Any]:
    tenant, ident = ctx.need_tenant(), ctx.params["id"]
    dep = ctx.req.arg("deployment_id")
    row = ctx.sim.state.schedules.get(tenant, {}).get(ident)
    if not dep:
        raise ApiError(400, "bad_parameters_error", "Missing deployment_id in query parameters")
    if row is None or row["deployment_id"] != dep:
        raise not_found("ExecutionSchedule", ident)
    return row


def get_schedule(ctx: Ctx) -> Response:
    """`GET /execution-schedules/<id>?deployment_id=...`."""
    ctx.permit("execution_schedule_get")
    return json_response(render_schedule(_schedule_row(ctx), ctx.sim.now()))


def delete_schedule(ctx: Ctx) -> Response:
    """`DELETE /execution-schedules/<id>?deployment_id=...`: 204."""
    ctx.permit("execution_schedule_delete")
    row = _schedule_row(ctx)
    del ctx.sim.state.schedules[row["tenant_name"]][row["id"]]
    return empty_response(204)


def put_schedule(ctx: Ctx) -> Response:
    """`PUT /execution-schedules/<id>?deployment_id=...`: 201."""
    tenant, ident = ctx.need_tenant(), ctx.params["id"]
    ctx.permit("execution_schedule_create")
    validate_id(ident, "schedule_id")
    dep = ctx.req.arg("deployment_id")
    body = ctx.json()
    if not dep:
        raise ApiError(400, "bad_parameters_error", "Missing deployment_id in query parameters")
    if not any(d["id"] == dep for d in ctx.sim.state.deployments.get(tenant, [])):
        raise not_found("Deployment", dep)
    for key in ("workflow_id", "since"):
        if key not in body:
            raise ApiError(400, "bad_parameters_error", f"Missing {key} in json request body")
    try:
        since = iso(parse_iso(str(body["since"])))
    except ValueError:
        raise ApiError(400, "bad_parameters_error", f"Invalid since: {body['since']}") from None
    row = build_schedule(ident, tenant, dep, body["workflow_id"], since or "", created_at=ctx.sim.now(),
                         until=body.get("until"), recurrence=body.get("recurrence"), count=body.get("count"),
                         weekdays=body.get("weekdays"), parameters=body.get("parameters"),
                         execution_arguments=body.get("execution_arguments"), slip=body.get("slip", 0),
                         stop_on_fail=bool(body.get("stop_on_fail", False)),
                         enabled=bool(body.get("enabled", True)), created_by=ctx.user.username)
    ctx.sim.state.schedules[tenant][ident] = row
    return json_response(render_schedule(row, ctx.sim.now()), 201)
