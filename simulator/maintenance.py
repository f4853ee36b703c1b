"""Maintenance mode: the request gate (before authentication), the lazy flip to `activated`, the endpoints."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from simulator.auth import identify
from simulator.http import ApiError, Request, Response, empty_response, json_response
from simulator.models import remaining_entry
from simulator.state import maintenance_off
from simulator.wire import iso

if TYPE_CHECKING:
    from simulator.sim import Simulator

ALLOWED = frozenset({"brokers", "managers", "db-nodes", "cluster", "config", "status", "version", "license",
                     "maintenance", "cluster-status", "file-server-auth", "ok", "snapshots", "snapshot-status"})
MESSAGE = "Your request was rejected since Cloudify manager is currently in maintenance mode"
WRITES = ("POST", "PUT", "PATCH")


def _rejected(code: str) -> ApiError:
    return ApiError(503, code, MESSAGE, traceback="NoneType: None\n")


def refresh(sim: Simulator) -> None:
    """On any routed request: `activating` becomes `activated` once no non-final execution remains."""
    row = sim.state.maintenance
    if row["status"] == "activating" and not sim.state.non_final():
        row["status"] = "activated"
        row["activated_at"] = iso(sim.now())


def _blocked_while_activating(method: str, segments: list[str]) -> bool:
    first, count = segments[0], len(segments)
    if first == "snapshots" and count == 3 and segments[2] == "restore":
        return True
    if method not in WRITES:
        return False
    if first == "snapshots" and count == 2:
        return True
    if first == "executions" and count == 1:
        return True
    return (first == "deployments" and count == 2) or first == "deployment-modifications"


def _bypass(sim: Simulator, req: Request) -> bool:
    """With `X-BYPASS-MAINTENANCE` the gate authenticates first: wrong credentials are a 401, not the 503."""
    if not req.header("x-bypass-maintenance"):
        return False
    who = identify(sim, req)
    return who is not None and who.is_admin


def gate(sim: Simulator, req: Request, segments: list[str]) -> None:
    """503 when maintenance mode refuses this request (runs before authentication)."""
    status = sim.state.maintenance["status"]
    if status == "deactivated" or _bypass(sim, req):
        return
    if status == "activating" and _blocked_while_activating(req.method, segments):
        raise _rejected("entering_maintenance_mode")
    if status == "activated" and segments[0] not in ALLOWED:
        raise _rejected("maintenance_mode_active")


def _remaining(sim: Simulator) -> list[dict[str, Any]]:
    return [remaining_entry(e) for e in sim.state.non_final()]


def body(sim: Simulator) -> dict[str, Any]:
    """`GET /maintenance`: the row, with the remaining executions while `activating`."""
    row = dict(sim.state.maintenance)
    row["remaining_executions"] = _remaining(sim) if row["status"] == "activating" else None
    return row


def activate(sim: Simulator, username: str) -> Response:
    """`POST /maintenance/activate`: 304 if already on; the `[[...]]` quirk in the answer."""
    if sim.state.maintenance["status"] != "deactivated":
        return empty_response(304)
    now = iso(sim.now())
    remaining = _remaining(sim)
    status = "activating" if remaining else "activated"
    sim.state.maintenance = {"status": status, "activated_at": None if remaining else now,
                             "activation_requested_at": now, "remaining_executions": None,
                             "requested_by": username}
    answer = dict(sim.state.maintenance)
    answer["remaining_executions"] = [remaining]
    return json_response(answer)


def deactivate(sim: Simulator) -> Response:
    """`POST /maintenance/deactivate`: 304 if already off; queued executions start afterwards."""
    if sim.state.maintenance["status"] == "deactivated":
        return empty_response(304)
    answer = dict(sim.state.maintenance)
    answer.update(status="deactivated", remaining_executions=None)
    sim.state.maintenance = maintenance_off()
    sim.engine.start_queued(sim.now())
    return json_response(answer)
