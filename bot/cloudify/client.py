"""The Cloudify Manager REST client: one `Manager` per configured manager, with failover across its nodes.

Each call accepts only the status cfy expects (see shared/reference/cfy-cli-wire.md). The exchange under the
calls (failover, httpx errors) is in `exchange.py`, error answers -> `bot.errors` in `answers.py`, the
snapshot calls in `snapshots.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import httpx

from bot import errors
from bot.clock import Clock
from bot.core import Execution, Listing
from bot.cloudify.entities import _EntityCalls
from bot.cloudify.exchange import _make_client, _Shared
from bot.cloudify.nodes import _Nodes
from bot.cloudify.snapshots import _SnapshotCalls
from bot.cloudify.wire import (
    EXECUTION_ACTIONS,
    Page,
    _bypass,
    _Call,
    _dumps,
    _filters,
    _loads,
    _maintenance,
    _paging,
    _py,
    _seg,
)
from bot.redact import redact
from bot.settings import ManagerSettings


class Manager(_SnapshotCalls, _EntityCalls):
    """A client for one Cloudify manager (one or more node URLs of the same cluster); thread-safe."""

    def __init__(
        self,
        settings: ManagerSettings,
        *,
        transport: httpx.BaseTransport | None = None,
        clock: Clock | None = None,
        on_notice: Callable[[str], None] | None = None,
        on_call: Callable[[str, str, int, str, str, str], None] | None = None,
    ) -> None:
        """`on_call(method, path, status, node, what, execution_id)` hears of every non-GET call that got an
        answer, whatever its status (the audit)."""
        if not settings.urls:
            raise errors.ConfigError([f"manager {settings.name}: no node URL is configured"])
        self.settings = settings
        self._clock = clock or Clock()
        self._nodes = _Nodes(settings.urls)
        self._shared = _Shared(_make_client(settings, transport), on_notice, on_call)

    def _derive(self, settings: ManagerSettings, nodes: _Nodes) -> Manager:
        other = object.__new__(Manager)
        other.settings, other._clock, other._nodes, other._shared = settings, self._clock, nodes, self._shared
        return other

    def __repr__(self) -> str:
        return f"Manager({self.name!r}, urls={self.urls!r})"

    # --- identity, notices, derived clients --------------------------------------------------

    # `name` and `urls` come from _Exchange: its messages need them too.

    @property
    def current_url(self) -> str:
        """The node that answered last (requests go there first)."""
        return self._nodes.urls[self._nodes.start()]

    def take_notices(self) -> list[str]:
        """The failover notices recorded since the last call (then forgotten)."""
        with self._shared.lock:
            notices, self._shared.notices = self._shared.notices, []
        return notices

    def for_node(self, url: str) -> Manager:
        """The same manager pinned to one node URL (no failover): cluster status asks every node itself."""
        return self._derive(replace(self.settings, urls=(url,)), _Nodes((url,)))

    def with_password(self, password: str) -> Manager:
        """The same manager and nodes with another password (Basic auth, no token): the post-restore fallback."""
        return self._derive(replace(self.settings, password=password, token=""), self._nodes)

    def close(self) -> None:
        """Close the connection pool (shared with the derived managers)."""
        self._shared.client.close()

    def __enter__(self) -> Manager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- status (version() and server_version() are in _Exchange: restore and upload need them) ----

    def status(self) -> dict[str, Any]:
        """`GET /status`: overall status and services."""
        return self._object(_Call("read the status", "GET", "/status"))

    def ok(self) -> bool:
        """`GET /ok` (no auth): True when the manager says OK, False when it says FAIL (HTTP 500)."""
        response, _ = self._send(_Call("check its health", "GET", "/ok", expect=(200, 500), auth=False))
        return response.status_code == 200 and response.text.strip().strip('"') == "OK"

    def snapshot_status(self) -> str:
        """`GET /snapshot-status` without credentials: "running" or "not-running" (anything else as sent)."""
        call = _Call("read the snapshot restore status", "GET", "/snapshot-status", auth=False)
        response, url = self._send(call)
        data = self._json(call, response, url)
        if not isinstance(data, dict) or not isinstance(data.get("status"), str):
            raise self._bad(call, url, f"no `status` field ({self._excerpt(response.content)})")
        return str(data["status"])

    # --- maintenance mode ----------------------------------------------------------------------

    def maintenance_status(self) -> dict[str, Any]:
        """`GET /maintenance`, with `remaining_executions` always a flat list."""
        return _maintenance(self._object(_Call("read the maintenance mode", "GET", "/maintenance")))

    def maintenance_activate(self) -> dict[str, Any]:
        """`POST /maintenance/activate` (no body); 304 means it was already on (NotModified)."""
        return self._maintenance_action("activate", "on")

    def maintenance_deactivate(self) -> dict[str, Any]:
        """`POST /maintenance/deactivate` (no body); 304 means it was already off (NotModified)."""
        return self._maintenance_action("deactivate", "off")

    def _maintenance_action(self, action: str, state: str) -> dict[str, Any]:
        call = _Call(f"{action} maintenance mode", "POST", f"/maintenance/{action}", expect=(200,))
        try:
            return _maintenance(self._object(call))
        except errors.NotModified as exc:
            raise errors.NotModified(f"manager {self.name}: maintenance mode is already {state}",
                                     manager=self.name, status=304, error_code="not_modified") from exc

    # --- deployments ---------------------------------------------------------------------------

    def list_deployments(self, *, sort: str | None = "created_at", descending: bool = False, offset: int = 0,
                         size: int = 1000, all_tenants: bool = False, tenant: str | None = None,
                         bypass_maintenance: bool = False) -> Page:
        """`GET /deployments` as `cfy deployments list` asks it (`_all_tenants, _offset, _size, _sort`)."""
        params = [("_all_tenants", _py(all_tenants)), ("_offset", str(offset)), ("_size", str(size))]
        if sort:
            params.append(("_sort", ("-" if descending else "") + sort))
        return self._page(_Call("list deployments", "GET", "/deployments", params=params, tenant=tenant,
                                headers=_bypass(bypass_maintenance)))

    def list_blueprints(self, *, offset: int = 0, size: int = 1000, all_tenants: bool = False,
                        tenant: str | None = None, bypass_maintenance: bool = False) -> Page:
        """`GET /blueprints` (`_all_tenants, _offset, _size`); the page's total counts every match."""
        params = [("_all_tenants", _py(all_tenants)), ("_offset", str(offset)), ("_size", str(size))]
        return self._page(_Call("list blueprints", "GET", "/blueprints", params=params, tenant=tenant,
                                headers=_bypass(bypass_maintenance)))

    # --- executions, events, schedules ---------------------------------------------------------

    def get_execution(self, execution_id: str, *, bypass_maintenance: bool = False,
                      tenant: str | None = None) -> Execution:
        """`GET /executions/<id>`, redacted (its `parameters.config` holds the database password)."""
        call = _Call(f"read execution {execution_id}", "GET", f"/executions/{_seg(execution_id)}",
                     subject=f"execution {execution_id}", headers=_bypass(bypass_maintenance), tenant=tenant)
        return Execution.from_wire(self._object(call))

    def list_executions(
        self,
        *,
        include_system: bool = True,
        offset: int | None = None,
        size: int | None = None,
        sort: str | None = None,
        bypass_maintenance: bool = False,
        tenant: str | None = None,
        **filters: Any,
    ) -> Listing[Execution]:
        """`GET /executions`; a list value (e.g. `status=[...]`) repeats the key; items redacted.

        `tenant` replaces the `Tenant` header, as cfy's `-t` does; `_all_tenants=True` lists every tenant's.
        """
        params = [("_include_system_workflows", _py(include_system))] + _paging(offset, size, sort) + _filters(filters)
        page = self._page(_Call("list executions", "GET", "/executions", params=params,
                                headers=_bypass(bypass_maintenance), tenant=tenant))
        return Listing([Execution.from_wire(e) for e in page.items], page.total, page.offset, page.size)

    def execution_action(self, execution_id: str, action: str, *, bypass_maintenance: bool = False,
                         tenant: str | None = None) -> Execution:
        """`POST /executions/<id> {"action": ...}` with cancel, force-cancel or kill; the redacted execution.

        Executions are tenant-scoped: `tenant` names the execution's tenant when it is not the manager's own.
        """
        if action not in EXECUTION_ACTIONS:
            raise ValueError(f"execution action must be one of {', '.join(EXECUTION_ACTIONS)}, not {action!r}")
        call = _Call(f"{action} execution {execution_id}", "POST", f"/executions/{_seg(execution_id)}",
                     body=_dumps({"action": action}), subject=f"execution {execution_id}",
                     headers=_bypass(bypass_maintenance), tenant=tenant)
        return Execution.from_wire(self._object(call))

    def list_events(
        self,
        execution_id: str,
        *,
        offset: int = 0,
        size: int = 100,
        include_logs: bool = True,
        bypass_maintenance: bool = False,
        **filters: Any,
    ) -> Page:
        """`GET /events` as the CLI polls it (events, and logs unless `include_logs=False`)."""
        params = [("_offset", str(offset)), ("_size", str(size)), ("execution_id", execution_id),
                  ("type", "cloudify_event")]
        if include_logs:
            params.append(("type", "cloudify_log"))
        params += [("_sort", "reported_timestamp")] + _filters(filters)
        return self._page(_Call(f"list the events of execution {execution_id}", "GET", "/events", params=params,
                                headers=_bypass(bypass_maintenance)))

    def list_execution_schedules(
        self, *, offset: int | None = None, size: int | None = None, sort: str | None = None,
        bypass_maintenance: bool = False, **filters: Any
    ) -> Page:
        """`GET /execution-schedules`."""
        return self._page(_Call("list execution schedules", "GET", "/execution-schedules",
                                params=_paging(offset, size, sort) + _filters(filters),
                                headers=_bypass(bypass_maintenance)))

    # --- cluster -------------------------------------------------------------------------------

    def managers(self) -> Page:
        """`GET /managers`: the manager nodes."""
        return self._page(_Call("list the manager nodes", "GET", "/managers"))

    def brokers(self) -> Page:
        """`GET /brokers`: the broker nodes (credentials redacted)."""
        return self._page(_Call("list the broker nodes", "GET", "/brokers"))

    def db_nodes(self) -> Page:
        """`GET /db-nodes`: the database nodes."""
        return self._page(_Call("list the database nodes", "GET", "/db-nodes"))

    def cluster_status(self, summary: bool = False) -> dict[str, Any]:
        """`GET /cluster-status?summary=False` as cfy asks it (with `summary`, a `Fail` comes as HTTP 500)."""
        call = _Call("read the cluster status", "GET", "/cluster-status", params=[("summary", _py(summary))],
                     expect=(200, 500) if summary else (200,))
        response, url = self._send(call)
        if response.status_code == 500:  # with summary, a cluster in `Fail` is reported as HTTP 500
            data = _loads(response.content)
            if not (isinstance(data, dict) and isinstance(data.get("services"), dict)):
                self._raise_for(call, response, url)
            failing: dict[str, Any] = redact(data)
            return failing
        data = self._json(call, response, url)
        if not isinstance(data, dict) or not isinstance(data.get("services"), dict):
            raise self._bad(call, url, f"a cluster status without `services` ({self._excerpt(response.content)})")
        return data

