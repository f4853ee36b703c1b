"""The restore_snapshot workflow: rebuild the simulator's state from a snapshot zip (legacy or new format)."""

from __future__ import annotations

import copy
import uuid
from typing import TYPE_CHECKING, Any

from simulator.archive import Archive, ArchiveError, archive_tenants, new_format_docs, read_archive
from simulator.schedules import build_schedule
from simulator.state import RESOURCE_KINDS
from simulator.wire import iso, parse_iso, version_tuple

if TYPE_CHECKING:
    from simulator.sim import Simulator

NON_EMPTY = ("Snapshot restoration on a non-empty manager is not permitted. Pass the --force flag to "
             "force the restore and delete existing data from the manager")

ENTITY_KEY = {"secrets": "key", "plugins": "id", "sites": "name", "blueprints": "id", "deployments": "id",
              "users": "username"}
Outcome = tuple[str | None, str | None, bool]  # (failure message, admin password hash, legacy)


def run(sim: Simulator, record: dict[str, Any], at: float) -> Outcome:
    """Restore the snapshot named in the execution's parameters; report how it went."""
    sid, tenant = record["parameters"]["snapshot_id"], record["tenant_name"]
    path = sim.store.path(tenant, sid)
    try:
        if not sim.store.exists(tenant, sid):
            raise ArchiveError(f"Snapshot archive {sid}.zip was not found")
        arc = read_archive(path)
    except ArchiveError as exc:
        return str(exc), None, False
    if arc.legacy or sim.vt < (7, 0, 0):
        outcome = _legacy(sim, record, arc, at)
    else:
        outcome = _new(sim, record, arc, at), None, False
    if outcome[0] is None:
        _damage(sim)
    return outcome


def _damage(sim: Simulator) -> None:
    """The fault switches `drop_on_restore` / `corrupt_on_restore`: lose or alter one restored entity."""
    for kind, ident, corrupt in sim.faults.take_entity_damage():
        if kind == "users":
            if corrupt and ident in sim.state.users:
                sim.state.users[ident]["role"] = "corrupted"
            elif not corrupt:
                sim.state.users.pop(ident, None)
            continue
        key = ENTITY_KEY[kind]
        for tenant in sim.state.tenants:
            rows = getattr(sim.state, kind).get(tenant, [])
            for row in [r for r in rows if r.get(key) == ident]:
                if not corrupt:
                    rows.remove(row)
                elif kind == "deployments":
                    row["blueprint_id"] = f"{row.get('blueprint_id')}-corrupted"
                elif kind == "plugins":
                    row["package_version"] = "0.0.0-corrupted"
                elif kind == "sites":
                    row["location"] = "0.0, 0.0"
                else:  # blueprints, secrets: the restored row comes back under a damaged name
                    row[key] = f"{ident}-corrupted"


def _log(sim: Simulator, record: dict[str, Any], at: float, text: str, level: str = "info") -> None:
    sim.engine.event(record, at, text, level=level)


def _validate(sim: Simulator, record: dict[str, Any], arc: Archive) -> str | None:
    params = record["parameters"]
    if not arc.legacy:
        return "Snapshot metadata is missing the schema revisions of a legacy snapshot"
    snap_vt = version_tuple(arc.version)
    if snap_vt > sim.vt:
        return f"Cannot restore a newer manager's snapshot on this manager [{arc.version} > {sim.version}]"
    if snap_vt < (4, 0, 0):
        return f"Cannot restore a snapshot older than 4.0.0 [{arc.version}]"
    if not params.get("user_is_bootstrap_admin", True):
        return "Only the bootstrap admin is allowed to perform snapshot restore"
    has_data = any(sim.state.blueprints.get(t) for t in sim.state.tenants)
    if has_data and not params.get("force"):
        return NON_EMPTY
    return None


def _legacy(sim: Simulator, record: dict[str, Any], arc: Archive, at: float) -> Outcome:
    sid = record["parameters"]["snapshot_id"]
    _log(sim, record, at, f"Validating snapshot `{sid}` (version {arc.version})")
    failure = _validate(sim, record, arc)
    if failure:
        return failure, None, True
    if any(sim.state.blueprints.get(t) for t in sim.state.tenants):
        _log(sim, record, at, "Restoring snapshot on a non-empty manager with --force: existing data "
             "will be deleted", "warning")
    _log(sim, record, at, "Restoring database")
    _replace_state(sim, record, arc.members.get("pg_data") or {})
    _scheduled_after_legacy(sim, record, at)
    _log(sim, record, at, "After restore, the following commands will run: set admin credentials, "
         "restart cloudify-restservice and cloudify-stage, remove the snapshot restoring flag")
    _log(sim, record, at, f"Successfully restored snapshot `{sid}`")
    if sim.vt >= (6, 3, 0):
        sim.store.remove(record["tenant_name"], sid)
    admin = arc.members.get("admin_account.json") or {}
    return None, admin.get("password"), True


def _restored_execution(sim: Simulator, item: dict[str, Any]) -> dict[str, Any]:
    record = copy.deepcopy(item)
    created = parse_iso(record["created_at"]) if record.get("created_at") else sim.now()
    record["_rt"] = {"created": created, "t0": None, "d": sim.duration(record["workflow_id"]),
                     "fail": None, "worker": record["status"] in ("queued", "scheduled"),
                     "cancel_at": None}
    return record


def _add_events(sim: Simulator, items: list[dict[str, Any]], tenant: str | None = None) -> None:
    for item in items:
        event = {k: v for k, v in item.items() if k not in ("_storage_id", "source", "source_id")}
        event["_tenant"] = tenant or item.get("_tenant")
        event["_ts"] = parse_iso(event["timestamp"]) if event.get("timestamp") else 0.0
        sim.state.add_event(event)


def _replace_state(sim: Simulator, record: dict[str, Any], data: dict[str, Any]) -> None:
    """Truncate everything but config tables and re-insert the dump; keep the running restore."""
    state = sim.state
    own_events = [e for e in state.events if e.get("execution_id") == record["id"]]
    current_admin = copy.deepcopy(state.users.get("admin"))
    state.tenants, state.snapshots = [], {}
    state.blueprints, state.deployments, state.schedules = {}, {}, {}
    state.secrets, state.plugins, state.sites = {}, {}, {}
    for tenant in data.get("tenants", []):
        state.add_tenant(tenant)
    state.add_tenant(record["tenant_name"])
    state.users = copy.deepcopy(data.get("users", {}))
    if current_admin is not None:  # the admin row keeps today's credentials until the post-restore job
        state.users["admin"] = current_admin
    state.tokens = copy.deepcopy(data.get("tokens", {}))
    for tenant in state.tenants:
        state.blueprints[tenant] = copy.deepcopy(data.get("blueprints", {}).get(tenant, []))
        state.deployments[tenant] = copy.deepcopy(data.get("deployments", {}).get(tenant, []))
        state.schedules[tenant] = {s["id"]: copy.deepcopy(s)
                                   for s in data.get("execution_schedules", {}).get(tenant, [])}
        for kind in RESOURCE_KINDS:
            getattr(state, kind)[tenant] = copy.deepcopy(data.get(kind, {}).get(tenant, []))
    state.executions = {item["id"]: _restored_execution(sim, item) for item in data.get("executions", [])}
    state.executions[record["id"]] = record
    state.events = []
    _add_events(sim, data.get("events", []))
    for event in own_events:
        state.events.append(event)


def _scheduled_after_legacy(sim: Simulator, record: dict[str, Any], at: float) -> None:
    """Handle restored `scheduled` executions the way this manager version does."""
    for ex in sim.state.executions_in(("scheduled",)):
        when = ex.get("scheduled_for") or ""
        future = bool(when) and parse_iso(when) > at
        if sim.vt < (6, 0, 0):
            if future:
                _log(sim, record, at, f"Restoring execution {ex['id']} (at {when})", "debug")
                continue
            _log(sim, record, at, f"Execution {ex['id']} scheduled for {when} is overdue. Marking as FAILED.",
                 "warning")
        else:
            if future:
                _schedule_from(sim, ex)
            _log(sim, record, at, f"Marking original execution {ex['id']} scheduled for {when} as FAILED.",
                 "warning")
        ex["status"], ex["error"], ex["ended_at"] = "failed", "", iso(at)
        ex["_rt"]["worker"] = False


def _schedule_from(sim: Simulator, ex: dict[str, Any]) -> None:
    """6.0+: a future scheduled execution comes back as a one-off execution schedule."""
    tenant = ex["tenant_name"]
    sched_id = f"{ex['workflow_id']}_restored_{uuid.uuid4().hex}"
    arguments = {"allow_custom_parameters": True, "dry_run": ex.get("is_dry_run", False)}
    sim.state.add_tenant(tenant)
    sim.state.schedules[tenant][sched_id] = build_schedule(
        sched_id, tenant, ex.get("deployment_id"), ex["workflow_id"], ex["scheduled_for"],
        parameters=ex.get("parameters") or {}, execution_arguments=arguments, count=1,
        created_at=sim.now())


def _new(sim: Simulator, record: dict[str, Any], arc: Archive, at: float) -> str | None:
    """New format: re-create entities beside what exists; conflicts are only logged as errors."""
    state = sim.state
    for doc in new_format_docs(arc, "mgmt/"):
        if doc["type"] == "tenants":
            for item in doc["items"]:
                state.add_tenant(item["name"])
        elif doc["type"] == "users":
            for item in doc["items"]:
                if item["username"] != "admin" and item["username"] not in state.users:
                    state.users[item["username"]] = {"password_hash": item.get("password_hash"),
                                                     "role": item.get("role", "default"),
                                                     "created_at": item.get("created_at")}
    for tenant in archive_tenants(arc):
        state.add_tenant(tenant)
        _log(sim, record, at, f"Restoring entities for {tenant}")
        for doc in new_format_docs(arc, f"tenants/{tenant}/"):
            _restore_docs(sim, record, at, tenant, doc)
    original = state.executions.get(str(arc.metadata.get("execution_id")))
    if original is not None:
        original["status"] = "terminated"
        original["ended_at"] = original.get("ended_at") or iso(at)
        original["_rt"]["worker"] = False
    _log(sim, record, at, f"Successfully restored snapshot `{record['parameters']['snapshot_id']}`")
    return None


def _restore_docs(sim: Simulator, record: dict[str, Any], at: float, tenant: str, doc: dict[str, Any]) -> None:
    state, kind = sim.state, doc["type"]
    if kind == "events":
        _add_events(sim, doc["items"], tenant)
        return
    for item in doc["items"]:
        if kind in ("blueprints", "deployments"):
            rows = getattr(state, kind)[tenant]
            exists = any(r["id"] == item["id"] for r in rows)
            if not exists:
                rows.append(copy.deepcopy(item))
        elif kind == "executions":
            exists = item["id"] in state.executions
            if not exists:
                state.executions[item["id"]] = _restored_execution(sim, item)
        elif kind in RESOURCE_KINDS:
            rows, key = state.resources_of(tenant, kind), ENTITY_KEY[kind]
            exists = any(r.get(key) == item.get(key) for r in rows)
            if not exists:
                rows.append(copy.deepcopy(item))
        elif kind == "execution_schedules":
            exists = item["id"] in state.schedules[tenant]
            if not exists:
                state.schedules[tenant][item["id"]] = copy.deepcopy(item)
        else:
            continue
        if exists:
            model = kind[:-1].replace("_", " ").title().replace(" ", "")
            ident = item.get(ENTITY_KEY.get(kind, "id"))
            _log(sim, record, at, f"Failed restoring {kind[:-1]} {ident}: <{model} id=`{ident}` "
                 f"tenant=`{tenant}`> already exists on <Tenant name=`{tenant}`>", "error")
