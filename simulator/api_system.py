"""Manager-wide endpoints: status, ok, version, provider context, nodes, cluster status, tokens, maintenance."""

from __future__ import annotations

from typing import Any
from simulator import maintenance
from simulator.auth import mint_token, render_token
from simulator.context import Ctx
from simulator.http import ApiError, Response, empty_response, json_response
from simulator.listing import as_bool

PREMIUM_ONLY = ("This feature exists only in the premium edition of Cloudify.\n"
                "Please contact sales for additional info.")


def _summary(ctx: Ctx) -> bool:
    raw = ctx.req.arg("summary")
    return False if raw is None else as_bool("summary", raw)


def status(ctx: Ctx) -> Response:
    """`GET /status[?summary=true]`: always 200."""
    ctx.permit("status_get")
    return json_response(ctx.sim.cluster.local_status(ctx.node, _summary(ctx)))


def ok(ctx: Ctx) -> Response:
    """`GET /ok` (no auth): "OK" or "FAIL" with 500."""
    healthy = ctx.sim.cluster.local_status(ctx.node, False)["status"] == "OK"
    return json_response("OK" if healthy else "FAIL", 200 if healthy else 500)


def version(ctx: Ctx) -> Response:
    """`GET /version` and `GET /api/version`."""
    ctx.permit("version_get")
    sim = ctx.sim
    return json_response({"edition": sim.edition, "version": sim.version, "build": None, "date": None,
                          "commit": None, "distribution": "debian", "distro_release": "bookworm"})


def provider_context(ctx: Ctx) -> Response:
    """`GET /provider/context` (read by `cfy profiles use`)."""
    ctx.permit("provider_context_get")
    return json_response({"name": "provider", "context": {"cloudify": {
        "cloudify_agent": {"broker_port": 5671, "min_workers": 0, "max_workers": 5},
        "workflows": {"task_retries": 60, "task_retry_interval": 15}}}})


def _items(items: list[dict[str, Any]]) -> Response:
    pagination = {"total": len(items), "size": 1000, "offset": 0}
    return json_response({"metadata": {"pagination": pagination, "filtered": None}, "items": items})


def managers(ctx: Ctx) -> Response:
    """`GET /managers[?hostname=h]`."""
    ctx.permit("manager_get")
    items = ctx.sim.cluster.managers(ctx.node)
    hostname = ctx.req.arg("hostname")
    return _items([i for i in items if hostname in (None, i["hostname"])])


def premium_only(ctx: Ctx) -> Response:
    """Cluster membership changes exist only in the premium edition."""
    if ctx.sim.edition != "premium":
        raise ApiError(404, "missing_premium_package_error", PREMIUM_ONLY)
    raise ApiError(400, "bad_parameters_error", "Cluster membership changes are not simulated")


def brokers(ctx: Ctx) -> Response:
    """`GET /brokers`."""
    ctx.permit("broker_get")
    return _items(ctx.sim.cluster.brokers(ctx.node))


def db_nodes(ctx: Ctx) -> Response:
    """`GET /db-nodes`."""
    ctx.permit("db_nodes_get")
    return _items(ctx.sim.cluster.db_nodes(ctx.node))


def cluster_status(ctx: Ctx) -> Response:
    """`GET /cluster-status[?summary=true]`: 500 on a summary that says Fail."""
    ctx.permit("cluster_status_get")
    sim = ctx.sim
    if (5, 0, 5) <= sim.vt < (7, 0, 0) and sim.state.restore:
        raise ApiError(503, "in_snapshot_restore_error", "")
    body, code = sim.cluster.cluster_status(ctx.node, _summary(ctx))
    return json_response(body, code)


def license_check(ctx: Ctx) -> Response:
    """`GET /license-check` (premium only): 200 with an empty body."""
    if ctx.sim.edition != "premium":
        raise ApiError(404, "missing_premium_package_error", PREMIUM_ONLY)
    ctx.permit("license_check")
    return json_response(None)


def list_tokens(ctx: Ctx) -> Response:
    """`GET /tokens`: the caller's tokens with their secrets masked."""
    ctx.permit("token_list")
    rows = [render_token(r) for r in ctx.sim.state.tokens.values()
            if ctx.user.is_admin or r["username"] == ctx.user.username]
    return _items(rows)


def create_token(ctx: Ctx) -> Response:
    """`POST /tokens`: 200 with the new `ctok-...` value (shown once)."""
    ctx.permit("token_create")
    return json_response(mint_token(ctx.sim, ctx.user, ctx.json()))


def get_token(ctx: Ctx) -> Response:
    """`GET /tokens/<id>`."""
    ctx.permit("token_get")
    row = ctx.sim.state.tokens.get(ctx.params["id"])
    if row is None or not (ctx.user.is_admin or row["username"] == ctx.user.username):
        raise ApiError(404, "not_found_error", f"Requested `Token` with ID `{ctx.params['id']}` was not found")
    return json_response(render_token(row))


def delete_token(ctx: Ctx) -> Response:
    """`DELETE /tokens/<id>`: 204."""
    ctx.permit("token_delete")
    if ctx.sim.state.tokens.pop(ctx.params["id"], None) is None:
        raise ApiError(404, "not_found_error", f"Requested `Token` with ID `{ctx.params['id']}` was not found")
    return empty_response(204)


def get_maintenance(ctx: Ctx) -> Response:
    """`GET /maintenance`."""
    ctx.permit("maintenance_mode_get")
    return json_response(maintenance.body(ctx.sim))


def maintenance_action(ctx: Ctx) -> Response:
    """`POST /maintenance/<activate|deactivate>`."""
    ctx.permit("maintenance_mode_set")
    action = ctx.params["action"]
    if action == "activate":
        return maintenance.activate(ctx.sim, ctx.user.username)
    if action == "deactivate":
        return maintenance.deactivate(ctx.sim)
    raise ApiError(400, "bad_parameters_error",
                   f"Invalid action: {action}, Valid action values are: ['activate', 'deactivate']")
