"""The manager's stored data (its "database"), JSON-serialisable, plus small queries over it.

Every record is a plain dict holding the public fields in the manager's field order. Executions
also carry a private `_rt` dict (runtime: when the worker picked it up, how long it runs, whether
it will fail); keys starting with `_` never leave the simulator. The caller holds `Simulator.lock`.
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
from typing import Any

ACTIVE = ("pending", "started", "cancelling", "force_cancelling", "kill_cancelling")
WAITING = ("queued", "scheduled")
FINAL = ("terminated", "failed", "cancelled")

_PERSISTED = ("tenants", "users", "tokens", "snapshots", "executions", "events", "blueprints",
              "deployments", "schedules", "maintenance", "restore", "post_restore", "next_event_id",
              "secrets", "plugins", "sites")
RESOURCE_KINDS = ("secrets", "plugins", "sites")  # tenant-scoped entities a drill compares besides blueprints


def public(record: dict[str, Any]) -> dict[str, Any]:
    """A copy of `record` without the simulator's private `_` keys."""
    return {k: v for k, v in record.items() if not k.startswith("_")}


def maintenance_off() -> dict[str, Any]:
    """The maintenance row when it was never activated."""
    return {"status": "deactivated", "activated_at": "", "activation_requested_at": "",
            "remaining_executions": None, "requested_by": ""}


class State:
    """Tenants, users, tokens, snapshots, executions, events, blueprints, deployments, schedules."""

    def __init__(self) -> None:
        self.tenants: list[str] = []
        self.users: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, dict[str, Any]] = {}
        self.snapshots: dict[str, dict[str, dict[str, Any]]] = {}
        self.executions: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.blueprints: dict[str, list[dict[str, Any]]] = {}
        self.deployments: dict[str, list[dict[str, Any]]] = {}
        self.schedules: dict[str, dict[str, dict[str, Any]]] = {}
        self.maintenance: dict[str, Any] = maintenance_off()
        self.restore: dict[str, Any] | None = None  # the snapshot_restoring flag file
        self.post_restore: dict[str, Any] | None = None  # pending post-restore credential switch
        self.next_event_id = 1
        self.secrets: dict[str, list[dict[str, Any]]] = {}  # per tenant: {"key", "value", ...}
        self.plugins: dict[str, list[dict[str, Any]]] = {}  # per tenant: {"id", "package_name", ...}
        self.sites: dict[str, list[dict[str, Any]]] = {}  # per tenant: {"name", "location", ...}

    # ---- tenants -------------------------------------------------------------------------------
    def add_tenant(self, name: str) -> None:
        """Create tenant `name` (idempotent)."""
        if name not in self.tenants:
            self.tenants.append(name)
        self.snapshots.setdefault(name, {})
        self.blueprints.setdefault(name, [])
        self.deployments.setdefault(name, [])
        self.schedules.setdefault(name, {})
        for kind in RESOURCE_KINDS:
            getattr(self, kind).setdefault(name, [])

    def resources_of(self, tenant: str, kind: str) -> list[dict[str, Any]]:
        """The secrets, plugins or sites of `tenant` (`kind` one of RESOURCE_KINDS); a live list."""
        rows: dict[str, list[dict[str, Any]]] = getattr(self, kind)
        return rows.setdefault(tenant, [])

    # ---- executions ----------------------------------------------------------------------------
    def executions_in(self, statuses: tuple[str, ...]) -> list[dict[str, Any]]:
        """Executions (all tenants) whose status is in `statuses`, oldest first."""
        found = [e for e in self.executions.values() if e["status"] in statuses]
        return sorted(found, key=lambda e: (e["_rt"].get("created", 0.0), e["id"]))

    def non_final(self) -> list[dict[str, Any]]:
        """Executions that keep maintenance mode `activating` (queued and scheduled included)."""
        return [e for e in self.executions_in(ACTIVE + WAITING)]

    # ---- events --------------------------------------------------------------------------------
    def add_event(self, event: dict[str, Any]) -> dict[str, Any]:
        """Store an event or log, giving it the next `_storage_id`."""
        stored = {"_storage_id": self.next_event_id, **event}
        self.next_event_id += 1
        self.events.append(stored)
        return stored

    # ---- persistence ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Everything, as JSON-ready data."""
        return {name: copy.deepcopy(getattr(self, name)) for name in _PERSISTED}

    def copy(self) -> State:
        """An independent copy; a JSON round trip, several times faster than deepcopy for this plain data."""
        other = State()
        for name, value in json.loads(json.dumps({n: getattr(self, n) for n in _PERSISTED})).items():
            setattr(other, name, value)
        return other

    def load_dict(self, data: dict[str, Any]) -> None:
        """Replace everything with `data` (from `to_dict`)."""
        for name in _PERSISTED:
            if name in data:
                setattr(self, name, copy.deepcopy(data[name]))

    def save(self, path: str) -> None:
        """Write the state to `path` atomically."""
        folder = os.path.dirname(path) or "."
        fd, tmp = tempfile.mkstemp(prefix=".state-", dir=folder)
        with os.fdopen(fd, "w") as handle:
            json.dump(self.to_dict(), handle)
        os.replace(tmp, path)

    def load(self, path: str) -> bool:
        """Read the state from `path`; False if there is no such file."""
        if not os.path.exists(path):
            return False
        with open(path) as handle:
            self.load_dict(json.load(handle))
        return True
