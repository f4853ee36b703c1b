"""Snapshot archives: build real zips of the simulator's state (new and legacy layouts) and read them back.

New format (7.0+, `legacy=false`): `metadata.json` {"snapshot_version","execution_id"}, `mgmt/0000000N.json`
(tenants, permissions, user_groups, users), `tenants/<t>/0000000N.json` (blueprints, deployments,
executions, events, execution_schedules), `stage/configuration.json`.
Legacy format: `metadata.json` with the three schema revisions, `pg_data` (a JSON dump standing in for
pg_dump; the `snapshots` table is never in it, nor the create execution itself), `admin_account.json`
(the admin user row at snapshot time), `rest-security.conf`, `networks.json`, `agents.json`.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from typing import Any

from simulator.state import State, public

SCHEMA_REVISIONS = {"schema_revision": "a31cb9e704d3", "stage_schema_revision": "20230629100000-7_0_2",
                    "composer_schema_revision": "20230107103600-7_0_0"}
LEGACY_KEYS = tuple(SCHEMA_REVISIONS)
TENANT_TYPES = ("sites", "plugins", "secrets", "blueprints", "deployments", "executions", "events",
                "execution_schedules")
BATCH = 500


class ArchiveError(Exception):
    """The archive cannot be restored (its message is what the workflow reports)."""


@dataclass
class Archive:
    """A snapshot zip read back: its metadata and its JSON members."""

    metadata: dict[str, Any]
    members: dict[str, Any] = field(default_factory=dict)

    @property
    def legacy(self) -> bool:
        """The restore calls an archive legacy only when all three revision keys are present."""
        return all(key in self.metadata for key in LEGACY_KEYS)

    @property
    def version(self) -> str:
        """The `snapshot_version` of the metadata."""
        return str(self.metadata.get("snapshot_version", ""))


def _user_item(name: str, user: dict[str, Any], tenants: list[str]) -> dict[str, Any]:
    role = user.get("role", "sys_admin")
    return {"username": name, "tenant_roles": {"direct": {t: "user" for t in tenants}, "groups": {}},
            "role": role, "created_at": user.get("created_at"), "first_login_at": None,
            "last_login_at": None, "password_hash": user["password_hash"]}


def _batches(kind: str, items: list[Any]) -> list[dict[str, Any]]:
    chunks = [items[i:i + BATCH] for i in range(0, len(items), BATCH)] or [[]]
    return [{"type": kind, "items": chunk} for chunk in chunks]


def _tenant_entities(state: State, tenant: str, logs: bool, events: bool) -> dict[str, list[Any]]:
    execs = [public(e) for e in state.executions.values() if e["tenant_name"] == tenant]
    wanted = {"cloudify_log"} if logs else set()
    wanted |= {"cloudify_event"} if events else set()
    evs = [{**public(ev), "source": "executions", "source_id": ev["execution_id"]}
           for ev in state.events if ev.get("_tenant") == tenant and ev["type"] in wanted]
    return {
        "sites": [dict(x) for x in state.resources_of(tenant, "sites")],
        "plugins": [dict(x) for x in state.resources_of(tenant, "plugins")],
        "secrets": [dict(x) for x in state.resources_of(tenant, "secrets")],
        "blueprints": [dict(b) for b in state.blueprints.get(tenant, [])],
        "deployments": [dict(d) for d in state.deployments.get(tenant, [])],
        "executions": execs,
        "events": evs,
        "execution_schedules": [dict(s) for s in state.schedules.get(tenant, {}).values()],
    }


def dump_new(state: State, version: str, execution_id: str, logs: bool = True,
             events: bool = True) -> dict[str, Any]:
    """The members of a new-format archive, as JSON-ready data keyed by path."""
    members: dict[str, Any] = {"metadata.json": {"snapshot_version": version, "execution_id": execution_id}}
    mgmt = _batches("tenants", [{"name": t, "rabbitmq_password": f"rmq-{t}"} for t in state.tenants])
    mgmt += _batches("permissions", []) + _batches("user_groups", [])
    mgmt += _batches("users", [_user_item(n, u, state.tenants) for n, u in state.users.items()])
    for index, doc in enumerate(mgmt, start=1):
        members[f"mgmt/{index:08d}.json"] = doc
    for tenant in state.tenants:
        docs: list[dict[str, Any]] = []
        for kind, items in _tenant_entities(state, tenant, logs, events).items():
            docs += _batches(kind, items)
        for index, doc in enumerate(docs, start=1):
            members[f"tenants/{tenant}/{index:08d}.json"] = doc
    members["stage/configuration.json"] = {"type": "configuration", "items": {}}
    return members


def dump_legacy(state: State, version: str, execution_id: str, logs: bool = True,
                events: bool = True) -> dict[str, Any]:
    """The members of a legacy archive (pg_data is a JSON dump; no snapshots table, no own execution)."""
    data: dict[str, Any] = {"tenants": list(state.tenants), "users": {n: dict(u) for n, u in state.users.items()},
            "tokens": {k: dict(v) for k, v in state.tokens.items()}, "blueprints": {}, "deployments": {},
            "executions": [], "events": [], "execution_schedules": {}, "sites": {}, "plugins": {}, "secrets": {}}
    for tenant in state.tenants:
        ents = _tenant_entities(state, tenant, logs, events)
        data["blueprints"][tenant] = ents["blueprints"]
        data["deployments"][tenant] = ents["deployments"]
        data["execution_schedules"][tenant] = ents["execution_schedules"]
        for kind in ("sites", "plugins", "secrets"):
            data[kind][tenant] = ents[kind]
        data["executions"] += [e for e in ents["executions"] if e["id"] != execution_id]
        data["events"] += [{**e, "_tenant": tenant} for e in ents["events"] if e["execution_id"] != execution_id]
    admin = state.users.get("admin", {})
    return {
        "metadata.json": {"snapshot_version": version, **SCHEMA_REVISIONS},
        "pg_data": data,
        "admin_account.json": {"id": 0, "username": "admin", "password": admin.get("password_hash"),
                               "role": admin.get("role", "sys_admin"), "active": True},
        "rest-security.conf": {"secret_key": "sim-secret", "hash_salt": "sim-salt",
                               "encryption_key": "sim-encryption-key"},
        "networks.json": {"default": "127.0.0.1"},
        "agents.json": {},
        "stage_data": "-- stage database dump\n",
        "composer_data": "-- composer database dump\n",
    }


def write_zip(path: str, members: dict[str, Any]) -> None:
    """Write `members` (JSON data, or str for raw text) to a zip at `path`."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
        for name, content in members.items():
            raw = content if isinstance(content, str) else json.dumps(content, indent=1)
            zf.writestr(name, raw)


def read_archive(path: str) -> Archive:
    """Read a snapshot zip; ArchiveError with the restore workflow's message when it is unusable."""
    if not zipfile.is_zipfile(path):
        raise ArchiveError("File is not a zip file")
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        if "metadata.json" not in names:
            raise ArchiveError("No metadata found in snapshot.")
        members: dict[str, Any] = {}
        for name in names:
            if name.endswith(".json") or name == "pg_data":
                try:
                    members[name] = json.loads(zf.read(name))
                except ValueError as exc:
                    raise ArchiveError(f"Cannot parse {name} in snapshot: {exc}") from None
    metadata = members.get("metadata.json")
    if not isinstance(metadata, dict):
        raise ArchiveError("No metadata found in snapshot.")
    return Archive(metadata=metadata, members=members)


def new_format_docs(archive: Archive, prefix: str) -> list[dict[str, Any]]:
    """The `{"type","items"}` documents under `mgmt/` or `tenants/<t>/`, in file order."""
    docs = []
    for name in sorted(archive.members):
        doc = archive.members[name]
        direct = name.startswith(prefix) and "/" not in name[len(prefix):]
        if direct and isinstance(doc, dict) and "type" in doc and "items" in doc:
            docs.append(doc)
    return docs


def archive_tenants(archive: Archive) -> list[str]:
    """The tenant folders present in a new-format archive."""
    found = {name.split("/")[1] for name in archive.members if name.startswith("tenants/")}
    return sorted(found)
