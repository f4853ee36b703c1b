"""The `Simulator`: one Cloudify Manager (or cluster) with its clock, state, files, faults and WSGI entry points."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from simulator.app import NodeApp
from simulator.auth import hash_password
from simulator.cluster import Cluster
from simulator.engine import Engine
from simulator.faults import Faults
from simulator.state import State
from simulator.store import ArchiveStore
from simulator.wire import version_tuple

DEFAULT_DURATIONS = {"create_snapshot": 3.0, "restore_snapshot": 6.0, "default": 2.0}


class Simulator:
    """A faithful Cloudify Manager REST simulator; requests advance its executions lazily from `now()`."""

    def __init__(self, now: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep,
                 version: str = "7.0.5", edition: str = "community",
                 users: dict[str, str] | None = None, tenants: Iterable[str] = ("default_tenant",),
                 data_dir: str | None = None, durations: dict[str, float] | None = None) -> None:
        self.now, self.sleep = now, sleep
        self.version, self.vt, self.edition = version, version_tuple(version), edition
        self.lock = threading.RLock()
        self.state = State()
        self.faults = Faults(now)
        self.cluster = Cluster(version, edition, now, self.faults)
        self.data_dir = data_dir
        if data_dir:
            os.makedirs(data_dir, exist_ok=True)
        self.store = ArchiveStore(data_dir)
        self.engine = Engine(self)
        self.durations = {**DEFAULT_DURATIONS, **(durations or {})}
        self._state_path = os.path.join(data_dir, "state.json") if data_dir else None
        self._apps: dict[str | None, Any] = {}
        self.garbage_served = 0
        self.loaded_from_disk = bool(self._state_path and self.state.load(self._state_path))
        if not self.loaded_from_disk:
            for name, password in (users if users is not None else {"admin": "admin"}).items():
                self.add_user(name, password, role="sys_admin")
            for tenant in tenants:
                self.add_tenant(tenant)
        self.wsgi = self.node_wsgi(None)

    # ---- entry points --------------------------------------------------------------------------
    def node_wsgi(self, node: str | None) -> Any:
        """The WSGI callable answering as manager node `node` (None: the first manager node)."""
        if node not in self._apps:
            self._apps[node] = NodeApp(self, node)
        return self._apps[node]

    @property
    def nodes(self) -> list[str]:
        """Names of the manager nodes (`["mgr-1"]` until `set_cluster`)."""
        return self.cluster.manager_names()

    # ---- setup ---------------------------------------------------------------------------------
    def set_cluster(self, managers: list[str], db_nodes: list[str] | None = None,
                    brokers: list[str] | None = None) -> None:
        """Make an HA cluster of these manager nodes (db nodes and brokers: 3 each unless given)."""
        with self.lock:
            self.cluster.set_cluster(list(managers), db_nodes, brokers)

    def set_service(self, node: str, service: str, active: bool = False) -> None:
        """Stop (or start) one service of a node, by display name or systemd unit id."""
        with self.lock:
            self.cluster.set_service(node, service, active)

    def set_node_down(self, node: str, down: bool = True) -> None:
        """Take a node off the network (its API refuses connections; others report it failed)."""
        with self.lock:
            self.cluster.set_node_down(node, down)

    def set_password(self, user: str, password: str) -> None:
        """Change (or create, as sys_admin) a user's password."""
        with self.lock:
            row = self.state.users.setdefault(user, {"role": "sys_admin", "created_at": None})
            row["password_hash"] = hash_password(password)
            self.save()

    def add_user(self, name: str, password: str, role: str = "default") -> None:
        """Add a user; roles other than `sys_admin` may only read (constructor users are all sys_admin)."""
        with self.lock:
            self.state.users[name] = {"password_hash": hash_password(password), "role": role,
                                      "created_at": None}
            self.save()

    def add_tenant(self, name: str) -> None:
        """Create a tenant."""
        with self.lock:
            self.state.add_tenant(name)
            self.save()

    # ---- helpers used by the modules -----------------------------------------------------------
    def duration(self, workflow_id: str) -> float:
        """How long an execution of `workflow_id` runs, in simulated seconds."""
        return float(self.durations.get(workflow_id, self.durations.get("default", 2.0)))

    def new_id(self) -> str:
        """A fresh execution id."""
        return str(uuid.uuid4())

    def hash_password(self, password: str) -> str:
        """A password hash as stored in the users table."""
        return hash_password(password)

    def advance(self) -> None:
        """Apply every transition due by `now()` (requests do this themselves)."""
        with self.lock:
            self.engine.tick()

    def save(self) -> None:
        """Persist the state to `<data_dir>/state.json` (no-op without a data dir)."""
        if self._state_path:
            with self.lock:
                self.state.save(self._state_path)

    def close(self) -> None:
        """Save, and remove the private archive folder if one was made."""
        self.save()
        self.store.close()
