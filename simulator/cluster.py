"""Cluster nodes (managers, db nodes, brokers), their health switches, and `/cluster-status` verdicts.

Default: one all-in-one node `mgr-1` (manager, db and broker on one host, one IP). `Simulator.set_cluster`
makes an HA cluster (3 db nodes `db-1..3` and 3 brokers `broker-1..3` unless given).
Health: `set_service(node, service, active)` (display name or unit id) and `set_node_down(node)`.

Split brain (`sim.faults.split_brain([["mgr-1"], ["mgr-2", "mgr-3"]])`): a node listed in a partition is
visible only from nodes of the same partition; nodes listed nowhere are visible from everywhere. Seen from
node V, an invisible node is reported failed (`"No services."`, `"No metrics"`) and left out of
`/managers`, `/brokers` and `/db-nodes`. So each side reports itself healthy, the other side failed, and a
different member list.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from simulator.faults import Faults
from simulator.wire import iso

SERVICES = {
    "manager": [("Cloudify Console", "cloudify-stage"), ("Webserver", "nginx"),
                ("Management Worker", "cloudify-mgmtworker"), ("Manager Rest-Service", "cloudify-restservice"),
                ("Cloudify API", "cloudify-api"), ("Cloudify Execution Scheduler", "cloudify-execution-scheduler"),
                ("AMQP-Postgres", "cloudify-amqp-postgres")],
    "db": [("PostgreSQL", "postgresql-14")],
    "broker": [("RabbitMQ", "cloudify-rabbitmq")],
}
ROLES = ("manager", "db", "broker")


@dataclass
class Node:
    """One host's role in the cluster, with per-service health."""

    name: str
    role: str
    private_ip: str
    public_ip: str
    active: dict[str, bool] = field(default_factory=dict)
    down: bool = False

    def __post_init__(self) -> None:
        self.active = self.active or {display: True for display, _ in SERVICES[self.role]}


class Cluster:
    """The nodes of one manager cluster and what each node reports about them."""

    def __init__(self, version: str, edition: str, now: Callable[[], float], faults: Faults) -> None:
        self.version, self.edition, self._now, self._faults = version, edition, now, faults
        self.nodes: list[Node] = []
        self.set_all_in_one("mgr-1")

    def set_all_in_one(self, name: str) -> None:
        """One host holding the manager, the database and the broker."""
        self.nodes = [Node(name, role, "10.0.0.11", "203.0.113.11") for role in ROLES]

    def set_cluster(self, managers: list[str], db_nodes: list[str] | None = None,
                    brokers: list[str] | None = None) -> None:
        """An HA cluster: these managers, plus db nodes and brokers (3 each by default)."""
        if len(managers) == 1 and db_nodes is None and brokers is None:
            self.set_all_in_one(managers[0])
            return
        db_nodes = db_nodes or ["db-1", "db-2", "db-3"]
        brokers = brokers or ["broker-1", "broker-2", "broker-3"]
        self.nodes = []
        for base, role, names in ((10, "manager", managers), (20, "db", db_nodes), (30, "broker", brokers)):
            for i, name in enumerate(names, start=1):
                self.nodes.append(Node(name, role, f"10.0.0.{base + i}", f"203.0.113.{base + i}"))

    def manager_names(self) -> list[str]:
        """Names of the manager nodes."""
        return [n.name for n in self.nodes if n.role == "manager"]

    def _find(self, name: str) -> list[Node]:
        found = [n for n in self.nodes if n.name == name]
        if not found:
            raise KeyError(f"no such node: {name}")
        return found

    def set_service(self, node: str, service: str, active: bool) -> None:
        """Switch one service of a node on or off (display name or systemd unit id)."""
        for item in self._find(node):
            for display, unit in SERVICES[item.role]:
                if service in (display, unit):
                    item.active[display] = active

    def set_node_down(self, node: str, down: bool = True) -> None:
        """Take a whole node off the network (its own API refuses connections)."""
        for item in self._find(node):
            item.down = down

    def is_down(self, node: str) -> bool:
        """Whether that node is unreachable."""
        return any(n.down for n in self.nodes if n.name == node)

    def serves_api(self, node: str) -> bool:
        """Whether the node's REST service is up (nginx answers 502 otherwise)."""
        return all(n.active.get("Manager Rest-Service", True) for n in self.nodes
                   if n.name == node and n.role == "manager")

    def visible(self, viewer: str, node: Node) -> bool:
        """Whether `viewer` can reach `node` (down nodes and, in a split brain, the other side cannot)."""
        return not node.down and self._listed(viewer, node)

    # ---- list endpoints ------------------------------------------------------------------------
    def managers(self, viewer: str) -> list[dict[str, Any]]:
        """`GET /managers` items as seen from `viewer`."""
        rows = [n for n in self.nodes if n.role == "manager" and self._listed(viewer, n)]
        return [{"id": i, "hostname": n.name, "private_ip": n.private_ip, "public_ip": n.public_ip,
                 "version": self.version, "edition": self.edition, "distribution": "rhel",
                 "distro_release": "8", "fs_sync_node_id": None, "networks": {"default": n.private_ip},
                 "last_seen": iso(self._now()), "status_report_frequency": 0,
                 "ca_cert_content": "-----BEGIN CERTIFICATE-----\nMIIBsimulated\n-----END CERTIFICATE-----"}
                for i, n in enumerate(rows, start=2)]

    def brokers(self, viewer: str) -> list[dict[str, Any]]:
        """`GET /brokers` items."""
        return [{"name": n.name, "host": n.private_ip, "management_host": n.private_ip, "port": 5671,
                 "username": None, "password": None, "params": None, "networks": {"default": n.private_ip},
                 "is_external": False, "ca_cert_content": None}
                for n in self.nodes if n.role == "broker" and self._listed(viewer, n)]

    def db_nodes(self, viewer: str) -> list[dict[str, Any]]:
        """`GET /db-nodes` items."""
        return [{"name": n.name, "host": n.private_ip, "is_external": False}
                for n in self.nodes if n.role == "db" and self._listed(viewer, n)]

    def _listed(self, viewer: str, node: Node) -> bool:
        parts = self._faults.partitions
        if parts is None or not any(node.name in p for p in parts):
            return True
        return node.name in (self._faults.partition_of(viewer) or [])

    # ---- status --------------------------------------------------------------------------------
    def _node_report(self, viewer: str, node: Node) -> dict[str, Any]:
        if not self.visible(viewer, node):
            return {"private_ip": node.private_ip, "public_ip": node.public_ip, "version": self.version,
                    "services": {}, "metrics": [], "failures": ["No services.", "No metrics"], "status": "Fail"}
        services, failures = {}, []
        for display, unit in SERVICES[node.role]:
            up = node.active[display]
            instance = {"Description": display, "state": "running" if up else "dead", "Id": unit}
            services[display] = {"status": "Active" if up else "Inactive", "extra_info": {"systemd": {
                "instances": [instance], "display_name": display, "unit_id": unit}}}
            if not up:
                failures.append(f"Service {display} not active.")
        metric = {"last_check": iso(self._now()), "healthy": not failures, "metric_type": "http",
                  "metric_name": f"http endpoints ({node.role}) on {node.private_ip}"}
        return {"private_ip": node.private_ip, "public_ip": node.public_ip, "version": self.version,
                "services": services, "metrics": [metric], "failures": failures,
                "status": "Fail" if failures else "OK"}

    def cluster_status(self, viewer: str, summary: bool) -> tuple[dict[str, Any], int]:
        """The `/cluster-status` body as seen from `viewer`, and its HTTP status."""
        services: dict[str, Any] = {}
        for role in ROLES:
            nodes = {n.name: self._node_report(viewer, n) for n in self.nodes if n.role == role}
            services[role] = {"is_external": False, "status": _verdict(role, nodes), "nodes": nodes}
        statuses = [s["status"] for s in services.values()]
        overall = "Fail" if "Fail" in statuses else "Degraded" if "Degraded" in statuses else "OK"
        if summary:
            return {"status": overall, "services": {}}, 500 if overall == "Fail" else 200
        return {"status": overall, "services": services}, 200

    def local_status(self, viewer: str, summary: bool) -> dict[str, Any]:
        """`GET /status` of node `viewer`: its manager services plus the broker and the database."""
        services: dict[str, Any] = {}
        own = [n for n in self.nodes if n.name == viewer and n.role == "manager"]
        others = [next(n for n in self.nodes if n.role == role) for role in ("broker", "db")]
        for node in own + others:
            for display, _unit in SERVICES[node.role]:
                up = node.active[display] and self.visible(viewer, node)
                extra = {"connection_check": "OK" if up else "Failed"} if node.role == "broker" else {}
                services[display] = {"status": "Active" if up else "Inactive", "is_remote": node.name != viewer,
                                     "extra_info": extra}
        status = "OK" if all(s["status"] == "Active" for s in services.values()) else "Fail"
        return {"status": status, "services": {} if summary else services}


def _verdict(role: str, nodes: dict[str, dict[str, Any]]) -> str:
    """OK if every node is OK; Degraded if healthy nodes reach quorum; else Fail."""
    if not nodes:
        return "OK"
    healthy = sum(1 for n in nodes.values() if n["status"] == "OK")
    quorum = 1 if role == "manager" else len(nodes) // 2 + 1
    if healthy == len(nodes):
        return "OK"
    return "Degraded" if healthy >= quorum else "Fail"
