"""Record builders and renderers: Snapshot, Execution, Event, in the manager's field order."""

from __future__ import annotations

from typing import Any

from simulator.state import public
from simulator.wire import iso

# The fake database password every `parameters.config` carries; clients must never show it.
DB_PASSWORD = "sim-db-Pa55w0rd-9f3c1e"

SNAPSHOT_FIELDS = ("created_at", "id", "visibility", "status", "error", "tenant_name", "created_by",
                   "resource_availability", "private_resource")

_V5_DROPPED = ("resume", "total_operations", "finished_operations", "deployment_display_name",
               "parameters_p")


def db_config(tenant: str = "default_tenant") -> dict[str, Any]:
    """The `parameters.config` the REST service hands to snapshot workflows (holds DB credentials)."""
    return {
        "file_server_root": "/opt/manager/resources",
        "created_status": "created",
        "failed_status": "failed",
        "postgresql_bin_path": "/usr/bin",
        "postgresql_username": "cloudify",
        "postgresql_password": DB_PASSWORD,
        "postgresql_db_name": "cloudify_db",
        "db_host": "localhost",
        "default_tenant_name": tenant,
        "snapshot_restore_threads": 15,
    }


def new_snapshot(sid: str, tenant: str, user: str, now: float, status: str) -> dict[str, Any]:
    """A Snapshot row."""
    return {"created_at": iso(now), "id": sid, "visibility": "private", "status": status, "error": "",
            "tenant_name": tenant, "created_by": user}


def render_snapshot(record: dict[str, Any]) -> dict[str, Any]:
    """A Snapshot as the API returns it (with the deprecated visibility mirrors)."""
    out = {k: record.get(k) for k in SNAPSHOT_FIELDS[:7]}
    out["resource_availability"] = record.get("visibility")
    out["private_resource"] = record.get("visibility") == "private"
    return out


def null_snapshot() -> dict[str, Any]:
    """The all-null Snapshot body of an upload that replaced an existing archive."""
    return {name: None for name in SNAPSHOT_FIELDS}


def new_execution(eid: str, tenant: str, user: str, workflow_id: str, params: dict[str, Any],
                  now: float, **fields: Any) -> dict[str, Any]:
    """An Execution row; `fields` overrides defaults (status, is_system_workflow, deployment_id, ...)."""
    record: dict[str, Any] = {
        "created_at": iso(now), "visibility": "tenant", "id": eid, "ended_at": None, "error": None,
        "is_system_workflow": True, "parameters_p": None, "parameters": params, "status": "pending",
        "workflow_id": workflow_id, "started_at": None, "scheduled_for": None, "is_dry_run": False,
        "resume": False, "total_operations": 0, "finished_operations": 0, "allow_custom_parameters": True,
        "blueprint_id": None, "deployment_display_name": None, "deployment_id": None,
        "tenant_name": tenant, "created_by": user,
    }
    record.update({k: v for k, v in fields.items() if k in record})
    if record["deployment_id"] and not record["deployment_display_name"]:
        record["deployment_display_name"] = record["deployment_id"]
    record["_rt"] = {"created": now, "t0": None, "d": 0.0, "fail": None, "worker": True,
                     "cancel_at": None}
    return record


def render_execution(record: dict[str, Any], vt: tuple[int, int, int]) -> dict[str, Any]:
    """An Execution as the API returns it (`status_display`, visibility mirrors, 5.x field set)."""
    out = public(record)
    tail = {k: out.pop(k) for k in ("tenant_name", "created_by")}
    out["status_display"] = "completed" if out["status"] == "terminated" else out["status"]
    out.update(tail)
    out["resource_availability"] = out["visibility"]
    out["private_resource"] = out["visibility"] == "private"
    if vt < (6, 0, 0):
        for key in _V5_DROPPED:
            out.pop(key, None)
    return out


def execution_as_snapshot(record: dict[str, Any]) -> dict[str, Any]:
    """The restore response quirk: an Execution marshalled with the Snapshot field set."""
    return render_snapshot(record)


def remaining_entry(record: dict[str, Any]) -> dict[str, Any]:
    """An execution as listed in maintenance mode's `remaining_executions`."""
    return {"id": record["id"], "status": record["status"], "deployment_id": record["deployment_id"],
            "workflow_id": record["workflow_id"]}


def new_event(record: dict[str, Any], ts: float, message: str, *, event_type: str | None = None,
              level: str | None = None, logger: str = "ctx") -> dict[str, Any]:
    """A cloudify_event (with `event_type`) or cloudify_log (with `level`) of execution `record`."""
    event: dict[str, Any] = {
        "timestamp": iso(ts), "reported_timestamp": iso(ts), "blueprint_id": record.get("blueprint_id"),
        "deployment_id": record.get("deployment_id"),
        "deployment_display_name": record.get("deployment_display_name"),
        "execution_id": record["id"], "execution_group_id": None, "workflow_id": record["workflow_id"],
        "message": message, "error_causes": None,
    }
    if level is None:
        event["event_type"] = event_type
    event.update({"operation": None, "source_id": None, "target_id": None, "manager_name": None,
                  "agent_name": None, "node_instance_id": None, "node_name": None})
    if level is not None:
        event.update({"logger": logger, "level": level})
    event["type"] = "cloudify_log" if level is not None else "cloudify_event"
    event["_tenant"] = record["tenant_name"]
    event["_ts"] = ts
    return event
