"""Realistic demo data: tenants, blueprints, deployments, execution history, execution schedules, and a week of
daily snapshots with real zips (one failed), plus an older weekly snapshot.

Every time is relative to `sim.now()`. The default scenario is a healthy 7.0.5 manager: no live queued or scheduled
executions, so `maintenance-mode activate` reaches `activated` at once. The snapshots are legacy archives (what
`cfy snapshots create` 7.0.5 makes by default), so restoring one shows the full legacy behaviour: API outage, admin
credentials from the snapshot and an emptied snapshot list. The older weekly snapshot still holds `scheduled`
executions from old data (cancelled on the live manager since; reference §6), so restoring it also shows them marked
failed (and re-created as schedules when due in the future).
The `stuck-maintenance` scenario keeps four such `scheduled` rows live: they count as non-final (reference §4), so
`maintenance-mode activate` stays `activating` until they are cancelled.
"""
from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from simulator import archive
from simulator.models import db_config, new_event, new_execution, new_snapshot
from simulator.schedules import build_schedule
from simulator.sim import Simulator
from simulator.state import State
from simulator.wire import iso

DAY = 86400.0


class Scenario(StrEnum):
    """What state the seeded manager is in (`cfy-bot simulator --scenario`, `--demo --scenario`)."""

    HEALTHY = "healthy"  # a healthy 7.0.5 manager: nothing queued or scheduled, maintenance mode activates at once
    STUCK_MAINTENANCE = "stuck-maintenance"  # 4 live `scheduled` rows keep maintenance mode `activating`


TENANTS = ("default_tenant", "prod-apps", "staging-apps")
BLUEPRINTS = {"default_tenant": ["hello-world"], "prod-apps": ["web-app", "db-cluster"],
              "staging-apps": ["web-app"]}
DEPLOYMENTS = {"default_tenant": [("hello-world-1", "hello-world")],
               "prod-apps": [("web-prod", "web-app"), ("db-prod", "db-cluster")],
               "staging-apps": [("web-staging", "web-app")]}
FAILED_SNAPSHOT_ERROR = ("Error during dumping Postgres data, exception: pg_dump: error: connection to server at "
                         "\"localhost\" (127.0.0.1), port 5432 failed: FATAL: remaining connection slots are "
                         "reserved for non-replication superuser connections")


def _blueprint(bid: str, tenant: str, at: float) -> dict[str, Any]:
    return {"id": bid, "created_at": iso(at), "updated_at": iso(at), "main_file_name": "blueprint.yaml",
            "description": f"{bid} blueprint", "plan": {}, "state": "uploaded", "visibility": "tenant",
            "tenant_name": tenant, "created_by": "admin", "labels": []}


def _deployment(did: str, bid: str, tenant: str, at: float) -> dict[str, Any]:
    return {"id": did, "created_at": iso(at), "updated_at": iso(at), "blueprint_id": bid, "display_name": did,
            "description": None, "inputs": {}, "workflows": [{"name": w} for w in ("install", "uninstall", "scale",
                                                                                      "heal", "update")],
            "installation_status": "active", "deployment_status": "good", "visibility": "tenant",
            "tenant_name": tenant, "created_by": "admin", "labels": []}


def _ran(sim: Simulator, tenant: str, workflow: str, start: float, *, status: str = "terminated",
         error: str = "", deployment: tuple[str, str] | None = None, params: dict[str, Any] | None = None,
         system: bool = False, duration: float = 40.0) -> dict[str, Any]:
    """A finished execution with its lifecycle events, at past times."""
    fields: dict[str, Any] = {"is_system_workflow": system}
    if deployment:
        fields.update(deployment_id=deployment[0], blueprint_id=deployment[1])
    record = new_execution(sim.new_id(), tenant, "admin", workflow, params or {}, start, **fields)
    end = start + duration
    record.update(status=status, started_at=iso(start + 0.2), ended_at=iso(end), error=error)
    record["_rt"].update(worker=False, d=duration)
    sim.state.executions[record["id"]] = record
    sim.state.add_event(new_event(record, start + 0.2, f"Starting '{workflow}' workflow execution",
                                  event_type="workflow_started"))
    if status == "terminated":
        sim.state.add_event(new_event(record, end, f"'{workflow}' workflow execution succeeded",
                                      event_type="workflow_succeeded"))
    else:
        sim.state.add_event(new_event(record, end, f"'{workflow}' workflow execution failed: "
                                      f"{error.splitlines()[-1] if error else ''}", event_type="workflow_failed"))
    return record


def add_scheduled_execution(sim: Simulator, tenant: str, workflow: str, dep: tuple[str, str], when: float,
                            created: float | None = None) -> dict[str, Any]:
    """A `scheduled` execution row (old data or `force_status`; 6.0+ managers no longer create them)."""
    created = sim.now() if created is None else created
    record = new_execution(sim.new_id(), tenant, "admin", workflow, {}, created, status="scheduled",
                           is_system_workflow=False, deployment_id=dep[0], blueprint_id=dep[1],
                           scheduled_for=iso(when))
    sim.state.executions[record["id"]] = record
    return record


def _scheduled_rows(sim: Simulator, now: float, created: float | None = None) -> list[dict[str, Any]]:
    """Due in ~2 minutes, already overdue, and hours ahead (created days ago, or at `created` and just before)."""
    web, db = ("web-prod", "web-app"), ("db-prod", "db-cluster")
    def made(days: float) -> float:
        return now - days * DAY if created is None else created - days * 600
    return [add_scheduled_execution(sim, "prod-apps", "scale", web, now + 120, made(2)),
            add_scheduled_execution(sim, "prod-apps", "heal", db, now - 3600, made(4)),
            add_scheduled_execution(sim, "prod-apps", "execute_operation", db, now + 3 * 3600, made(1)),
            add_scheduled_execution(sim, "staging-apps", "update", ("web-staging", "web-app"), now + 8 * 3600,
                                    made(1))]


def _weekly_with_old_scheduled_rows(sim: Simulator, now: float, at: float) -> None:
    """The older weekly snapshot holds `scheduled` rows from old data; on the live manager they were cancelled
    the day after it was taken (so maintenance mode can activate)."""
    rows = _scheduled_rows(sim, now, created=at - 3600)
    _snapshot(sim, f"weekly-{datetime.fromtimestamp(at, UTC):%Y%m%d}", at, legacy=True)
    for row in rows:
        row.update(status="cancelled", ended_at=iso(at + DAY), error="")


def _history(sim: Simulator, now: float) -> None:
    from simulator.workflows import traceback_text

    for tenant, deps in DEPLOYMENTS.items():
        for i, (did, bid) in enumerate(deps):
            _ran(sim, tenant, "install", now - 20 * DAY + i * 600, deployment=(did, bid), duration=180.0)
    _ran(sim, "prod-apps", "scale", now - 6 * DAY + 3 * 3600, deployment=("web-prod", "web-app"),
         params={"scalable_entity_name": "web", "delta": 1})
    _ran(sim, "prod-apps", "heal", now - 3 * DAY + 5 * 3600, deployment=("db-prod", "db-cluster"), status="failed",
         error=traceback_text("heal", "Task cloudify.interfaces.lifecycle.start on db_node_7x2k failed: "
                                      "replica did not join the cluster within 300 seconds"))
    _ran(sim, "staging-apps", "update", now - 1 * DAY + 4 * 3600, deployment=("web-staging", "web-app"))


def _structure(sim: Simulator, now: float) -> None:
    for tenant in TENANTS:
        sim.add_tenant(tenant)
        for bid in BLUEPRINTS[tenant]:
            sim.state.blueprints[tenant].append(_blueprint(bid, tenant, now - 21 * DAY))
        for did, bid in DEPLOYMENTS[tenant]:
            sim.state.deployments[tenant].append(_deployment(did, bid, tenant, now - 20 * DAY))
    daily = build_schedule("web-prod-healthcheck", "prod-apps", "web-prod", "execute_operation",
                           iso(now - 10 * DAY), created_at=now - 10 * DAY, recurrence="1 day",
                           parameters={"operation": "healthcheck.check"})
    weekly = build_schedule("web-staging-scale-down", "staging-apps", "web-staging", "scale",
                            iso(now - 14 * DAY + 2 * 3600), created_at=now - 14 * DAY, recurrence="1 week",
                            parameters={"scalable_entity_name": "web", "delta": -1})
    sim.state.schedules["prod-apps"][daily["id"]] = daily
    sim.state.schedules["staging-apps"][weekly["id"]] = weekly


SECRETS = {"default_tenant": ["hello-world-token"], "prod-apps": ["db-password", "aws-access-key", "tls-key"],
           "staging-apps": ["db-password"]}
PLUGINS = {"default_tenant": [("cloudify-utilities-plugin", "1.25.11")],
           "prod-apps": [("cloudify-aws-plugin", "3.1.6"), ("cloudify-ansible-plugin", "3.1.2")],
           "staging-apps": [("cloudify-aws-plugin", "3.1.6")]}
SITES = {"prod-apps": [("frankfurt", "50.11, 8.68"), ("dublin", "53.35, -6.26")], "staging-apps": [("lab", "")]}


def _entities(sim: Simulator, now: float) -> None:
    """Secrets, plugins, sites and a second user: what a snapshot also holds and a restore drill compares."""
    at = iso(now - 21 * DAY)
    for tenant in TENANTS:
        for key in SECRETS.get(tenant, []):
            sim.state.resources_of(tenant, "secrets").append(
                {"key": key, "value": f"enc:{key}-value", "created_at": at, "updated_at": at, "visibility": "tenant",
                 "tenant_name": tenant, "created_by": "admin", "is_hidden_value": True,
                 "resource_availability": "tenant", "schema": None, "provider_name": None})
        for name, version in PLUGINS.get(tenant, []):
            sim.state.resources_of(tenant, "plugins").append(
                {"id": f"{name}-{version}".replace(".", "-"), "package_name": name, "package_version": version,
                 "archive_name": f"{name}-{version}.wgn", "supported_platform": "linux_x86_64",
                 "distribution": "rhel", "uploaded_at": at, "created_by": "admin", "visibility": "tenant",
                 "tenant_name": tenant, "title": name})
        for name, location in SITES.get(tenant, []):
            sim.state.resources_of(tenant, "sites").append(
                {"name": name, "location": location, "visibility": "tenant", "tenant_name": tenant,
                 "created_at": at, "created_by": "admin"})
    if "operator" not in sim.state.users:
        sim.state.users["operator"] = {"password_hash": sim.hash_password("operator-pw"), "role": "default",
                                       "created_at": at}


def _state_at(sim: Simulator, when: float) -> State:
    """The state as it was at `when`: executions created later are left out (scheduled rows stay)."""
    past = sim.state.copy()
    keep = {eid for eid, e in past.executions.items()
            if e["status"] == "scheduled" or e["_rt"]["created"] <= when}
    past.executions = {eid: e for eid, e in past.executions.items() if eid in keep}
    past.events = [e for e in past.events if e.get("execution_id") in keep]
    return past


def _snapshot(sim: Simulator, sid: str, at: float, *, legacy: bool, error: str = "") -> None:
    tenant = "default_tenant"
    params = {"snapshot_id": sid, "include_credentials": True, "include_logs": True, "include_events": True,
              "config": db_config(), "tempdir_path": None, "legacy": legacy, "listener_timeout": None}
    status = "failed" if error else "terminated"
    from simulator.workflows import traceback_text

    record = _ran(sim, tenant, "create_snapshot", at, status=status, params=params, system=True, duration=95.0,
                  error=traceback_text("create_snapshot", error) if error else "")
    sim.state.add_event(new_event(record, at + 0.3, f"Creating snapshot `{sid}`", level="info"))
    row = new_snapshot(sid, tenant, "admin", at, "failed" if error else "created")
    row["error"] = error
    sim.state.snapshots[tenant][sid] = row
    if error:
        return
    past = _state_at(sim, at)
    past.executions[record["id"]] = dict(copy.deepcopy(record), status="started", ended_at=None)
    dump = archive.dump_legacy if legacy else archive.dump_new
    tmp = sim.store.temp_path(tenant, sid)
    archive.write_zip(tmp, dump(past, sim.version, record["id"]))
    sim.store.commit(tenant, sid, tmp)


def seed_demo(sim: Simulator, scenario: Scenario | str = Scenario.HEALTHY, today: bool = False) -> None:
    """Fill `sim` with realistic demo data in `scenario` (idempotent: a simulator with snapshots is left alone).

    The daily snapshots are the 5 days before today; with `today`, also today's when its 02:00 run is over (the
    demo: a bot that has run for a week has today's backup after 02:00)."""
    scenario = Scenario(scenario)
    with sim.lock:
        if any(sim.state.snapshots.values()):
            return
        now = sim.now()
        _structure(sim, now)
        _entities(sim, now)
        _history(sim, now)
        midnight = datetime.fromtimestamp(now, UTC).replace(hour=2, minute=0, second=0, microsecond=0)
        _weekly_with_old_scheduled_rows(sim, now, (midnight - timedelta(days=10)).timestamp())
        if scenario is Scenario.STUCK_MAINTENANCE:
            _scheduled_rows(sim, now)
        ran_today = today and now >= (midnight + timedelta(minutes=5)).timestamp()
        for days_ago in (5, 4, 3, 2, 1, *((0,) if ran_today else ())):
            at = (midnight - timedelta(days=days_ago)).timestamp()
            sid = f"daily-{datetime.fromtimestamp(at, UTC):%Y%m%d}"
            _snapshot(sim, sid, at, legacy=True, error=FAILED_SNAPSHOT_ERROR if days_ago == 3 else "")
        _snapshot(sim, f"pre-upgrade-{midnight - timedelta(days=8):%Y%m%d}",
                  (midnight - timedelta(days=8, hours=-13)).timestamp(), legacy=False)
        sim.save()
