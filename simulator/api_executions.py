"""Execution and event endpoints."""

from __future__ import annotations

import re
from typing import Any

from simulator.context import Ctx, not_found
from simulator.http import ApiError, Response, json_response
from simulator.listing import apply_filters, envelope, include_fields, project, query_bool
from simulator.models import new_event, render_execution
from simulator.schedules import build_schedule
from simulator.state import public
from simulator.wire import parse_iso

EXECUTION_FIELDS = ("created_at", "visibility", "id", "ended_at", "error", "is_system_workflow", "parameters_p",
                    "parameters", "status", "workflow_id", "started_at", "scheduled_for", "is_dry_run", "resume",
                    "total_operations", "finished_operations", "allow_custom_parameters", "blueprint_id",
                    "deployment_display_name", "deployment_id", "status_display", "tenant_name", "created_by",
                    "resource_availability", "private_resource")
EVENT_FIELDS = ("_storage_id", "timestamp", "reported_timestamp", "blueprint_id", "deployment_id",
                "deployment_display_name", "execution_id", "execution_group_id", "workflow_id", "message",
                "error_causes", "event_type", "operation", "source_id", "target_id", "manager_name",
                "agent_name", "node_instance_id", "node_name", "logger", "level", "type")
STATUSES = ("terminated", "failed", "cancelled", "pending", "started", "cancelling", "force_cancelling",
            "kill_cancelling", "queued", "scheduled")


def ilike(pattern: str) -> re.Pattern[str]:
    """A SQL `ILIKE` pattern as a regex: `%` any run, `_` one character, `\\` escapes; no implicit wildcards."""
    out, chars = [], iter(pattern)
    for ch in chars:
        if ch == "\\":
            out.append(re.escape(next(chars, "\\")))
        elif ch == "%":
            out.append(".*")
        elif ch == "_":
            out.append(".")
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out), re.IGNORECASE | re.DOTALL)


def lookup(ctx: Ctx, eid: str) -> dict[str, Any]:
    """The execution in the request's tenant, or 404."""
    record = ctx.sim.state.executions.get(eid)
    if record is None or record["tenant_name"] != ctx.need_tenant():
        raise not_found("Execution", eid)
    return record


def get_execution(ctx: Ctx) -> Response:
    """`GET /executions/<id>`."""
    ctx.permit("execution_get")
    include = include_fields(ctx.req, EXECUTION_FIELDS)
    return json_response(project(render_execution(lookup(ctx, ctx.params["id"]), ctx.sim.vt), include))


def list_executions(ctx: Ctx) -> Response:
    """`GET /executions` (system workflows hidden unless `_include_system_workflows=true`)."""
    tenant = ctx.need_tenant()
    ctx.permit("execution_list")
    sim, req = ctx.sim, ctx.req
    system = query_bool(req, "_include_system_workflows")
    tenants = sim.state.tenants if query_bool(req, "_all_tenants") else [tenant]
    items = [render_execution(e, sim.vt) for e in sim.state.executions.values()
             if e["tenant_name"] in tenants and (system or not e["is_system_workflow"])]
    items = apply_filters(items, req, EXECUTION_FIELDS)
    return json_response(envelope(items, req, EXECUTION_FIELDS))


def execution_action(ctx: Ctx) -> Response:
    """`POST /executions/<id> {"action": ...}`: 200 with the execution."""
    ctx.permit("execution_cancel")
    body = ctx.json()
    record = lookup(ctx, ctx.params["id"])
    ctx.sim.engine.action(record, str(body.get("action")))
    return json_response(render_execution(record, ctx.sim.vt))


def patch_execution(ctx: Ctx) -> Response:
    """`PATCH /executions/<id> {"status", "error"?}` (admins and workers)."""
    ctx.permit("execution_status_update")
    body = ctx.json()
    record = lookup(ctx, ctx.params["id"])
    status = body.get("status")
    if status not in STATUSES:
        raise ApiError(400, "bad_parameters_error", f"Invalid execution status: {status}")
    ctx.sim.engine.patch_status(record, status, body.get("error"))
    return json_response(render_execution(record, ctx.sim.vt))


def start_execution(ctx: Ctx) -> Response:
    """`POST /executions {"deployment_id","workflow_id",...}`: 201 (6.0+: a schedule if `scheduled_time`)."""
    tenant = ctx.need_tenant()
    ctx.permit("execution_start")
    sim, body = ctx.sim, ctx.json()
    dep_id, workflow = body.get("deployment_id"), body.get("workflow_id")
    deployment = next((d for d in sim.state.deployments.get(tenant, []) if d["id"] == dep_id), None)
    if deployment is None:
        raise not_found("Deployment", str(dep_id))
    fields: dict[str, Any] = {"is_system_workflow": False, "deployment_id": dep_id,
                              "blueprint_id": deployment.get("blueprint_id")}
    params = body.get("parameters") or {}
    if body.get("scheduled_time"):
        return _scheduled(ctx, tenant, str(workflow), params, body["scheduled_time"], fields)
    active = [e for e in sim.engine.active() if sim.engine.is_blocking(e)]
    status = "pending"
    if active:
        if not body.get("queue"):
            raise sim.engine.running_error(active)
        status = "queued"
    record = sim.engine.create(tenant, ctx.user.username, str(workflow), params, status=status, **fields)
    return json_response(render_execution(record, sim.vt), 201)


def _scheduled(ctx: Ctx, tenant: str, workflow: str, params: dict[str, Any], when: str,
               fields: dict[str, Any]) -> Response:
    sim = ctx.sim
    if sim.vt < (6, 0, 0):
        record = sim.engine.create(tenant, ctx.user.username, workflow, params, status="scheduled",
                                   scheduled_for=when, **fields)
        return json_response(render_execution(record, sim.vt), 201)
    sched_id = f"{workflow}_{sim.new_id().replace('-', '')}"
    sim.state.schedules[tenant][sched_id] = build_schedule(
        sched_id, tenant, fields["deployment_id"], workflow, when, created_at=sim.now(), count=1,
        parameters=params, created_by=ctx.user.username)
    placeholder: dict[str, Any] = {name: None for name in EXECUTION_FIELDS}
    placeholder["status"] = "scheduled"
    return json_response(placeholder, 201)


def list_events(ctx: Ctx) -> Response:
    """`GET /events`: both types unless `type=` is given; sorted by `_sort`; no `filtered` key."""
    tenant = ctx.need_tenant()
    ctx.permit("event_list")
    req = ctx.req
    items = [{"_storage_id": e["_storage_id"], **public(e)} for e in ctx.sim.state.events
             if e.get("_tenant") == tenant]
    for key in ("execution_id", "type", "level", "event_type", "deployment_id", "blueprint_id", "workflow_id"):
        wanted = req.query.get(key)
        if wanted:
            items = [e for e in items if str(e.get(key)) in wanted]
    text = req.arg("message.text")
    if text:
        pattern = ilike(text)
        items = [e for e in items if pattern.fullmatch(str(e.get("message", "")))]
    sorts = req.query.get("_sort") or []
    for spec in sorts:
        if spec.lstrip("+-@") not in EVENT_FIELDS:
            raise ApiError(400, "bad_parameters_error", f"Unknown field to sort by: {spec.lstrip('+-@')}")
    listing = envelope(items, req, EVENT_FIELDS, default_sort="_storage_id", default_size=10000, filtered=False)
    return json_response(listing)


def post_events(ctx: Ctx) -> Response:
    """`POST /events {"execution_id","events":[...],"logs":[...]}`: 201 with body null."""
    ctx.permit("event_create")
    body = ctx.json()
    record = lookup(ctx, str(body.get("execution_id")))
    now = ctx.sim.now()
    for item in body.get("events") or []:
        ts = _when(item, now)
        ctx.sim.state.add_event(new_event(record, ts, _text(item), event_type=item.get("event_type")))
    for item in body.get("logs") or []:
        ts = _when(item, now)
        ctx.sim.state.add_event(new_event(record, ts, _text(item), level=item.get("level", "info"),
                                          logger=item.get("logger", "ctx")))
    return json_response(None, 201)


def _text(item: dict[str, Any]) -> str:
    message = item.get("message")
    return str(message.get("text", "")) if isinstance(message, dict) else str(message or "")


def _when(item: dict[str, Any], now: float) -> float:
    raw = item.get("timestamp") or item.get("reported_timestamp")
    try:
        return parse_iso(raw) if raw else now
    except ValueError:
        return now
