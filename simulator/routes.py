"""The route table (`M:mr/rest/endpoint_mapper.py`): paths after `/api/<ver>`, methods, first API version."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from simulator import api_archive as archive
from simulator import api_entities as entities
from simulator import api_executions as executions
from simulator import api_resources as resources
from simulator import api_snapshots as snapshots
from simulator import api_system as system
from simulator.context import Ctx
from simulator.http import HtmlError, Response

Handler = Callable[[Ctx], Response]
API_VERSIONS = ("v1", "v2", "v2.1", "v3", "v3.1")
_PREFIX = re.compile(r"^/api/(v1|v2|v2\.1|v3|v3\.1)(/.*)$")


@dataclass(frozen=True)
class Route:
    """One resource: its path template, handlers by method, and the first API version that has it."""

    template: str
    methods: dict[str, Handler]
    since: str = "v1"
    auth: bool = True
    unlocked: frozenset[str] = field(default_factory=frozenset)  # handlers that take the lock themselves

    @property
    def regex(self) -> re.Pattern[str]:
        """The template as a regular expression with named groups."""
        return re.compile("^" + re.sub(r"<(\w+)>", r"(?P<\1>[^/]+)", self.template) + "$")


ROUTES: tuple[Route, ...] = (
    Route("/snapshots", {"GET": snapshots.list_snapshots}, "v2"),
    Route("/snapshots/<id>", {"GET": snapshots.get_snapshot, "PUT": snapshots.create_snapshot,
                              "DELETE": snapshots.delete_snapshot, "PATCH": snapshots.patch_snapshot}, "v2"),
    Route("/snapshots/<id>/archive", {"GET": archive.download, "PUT": archive.upload}, "v2",
          unlocked=frozenset({"PUT"})),
    Route("/snapshots/<id>/restore", {"POST": snapshots.restore_snapshot}, "v2"),
    Route("/snapshot-status", {"GET": snapshots.snapshot_status}, "v3.1", auth=False),
    Route("/maintenance", {"GET": system.get_maintenance}, "v2.1"),
    Route("/maintenance/<action>", {"POST": system.maintenance_action}, "v2.1"),
    Route("/executions", {"GET": executions.list_executions, "POST": executions.start_execution}),
    Route("/executions/<id>", {"GET": executions.get_execution, "POST": executions.execution_action,
                               "PATCH": executions.patch_execution}),
    Route("/events", {"GET": executions.list_events, "POST": executions.post_events}),
    Route("/execution-schedules", {"GET": resources.list_schedules}, "v3.1"),
    Route("/execution-schedules/<id>", {"GET": resources.get_schedule, "PUT": resources.put_schedule,
                                        "DELETE": resources.delete_schedule}, "v3.1"),
    Route("/blueprints", {"GET": resources.list_blueprints}),
    Route("/blueprints/<id>", {"GET": resources.get_blueprint}),
    Route("/deployments", {"GET": resources.list_deployments}),
    Route("/deployments/<id>", {"GET": resources.get_deployment}),
    Route("/secrets", {"GET": entities.list_secrets}, "v3"),
    Route("/plugins", {"GET": entities.list_plugins}, "v2.1"),
    Route("/sites", {"GET": entities.list_sites}, "v3.1"),
    Route("/users", {"GET": entities.list_users}, "v3"),
    Route("/tenants", {"GET": entities.list_tenants}, "v3"),
    Route("/status", {"GET": system.status}),
    Route("/ok", {"GET": system.ok}, "v3.1", auth=False),
    Route("/version", {"GET": system.version}),
    Route("/provider/context", {"GET": system.provider_context}),
    Route("/cluster-status", {"GET": system.cluster_status}, "v3.1"),
    Route("/managers", {"GET": system.managers, "POST": system.premium_only}, "v3.1"),
    Route("/managers/<name>", {"PUT": system.premium_only, "DELETE": system.premium_only}, "v3.1"),
    Route("/brokers", {"GET": system.brokers}, "v3.1"),
    Route("/db-nodes", {"GET": system.db_nodes}, "v3.1"),
    Route("/license-check", {"GET": system.license_check}, "v3.1"),
    Route("/tokens", {"GET": system.list_tokens, "POST": system.create_token}, "v3.1"),
    Route("/tokens/<id>", {"GET": system.get_token, "DELETE": system.delete_token}, "v3.1"),
)
VERSION_ROUTE = Route("/version", {"GET": system.version})


@dataclass(frozen=True)
class Match:
    """A routed request."""

    route: Route
    params: dict[str, str]
    segments: list[str]  # the path after `/api/<ver>`, split; `["version"]` for `/api/version`
    method: str = "GET"  # the handler's method (HEAD is answered by GET, as Flask does)

    @property
    def handler(self) -> Handler:
        """The handler for this request."""
        return self.route.methods[self.method]


def match(method: str, path: str) -> Match:
    """Find the route for a request, or raise the werkzeug HTML 404/405."""
    if path == "/api/version":
        return _check_method(VERSION_ROUTE, method, {}, ["version"])
    found = _PREFIX.match(path)
    if not found:
        raise HtmlError(404)
    level = API_VERSIONS.index(found.group(1))
    rest = found.group(2)
    for route in ROUTES:
        hit = route.regex.match(rest)
        if hit and API_VERSIONS.index(route.since) <= level:
            return _check_method(route, method, hit.groupdict(), rest.strip("/").split("/"))
    raise HtmlError(404)


def _check_method(route: Route, method: str, params: dict[str, str], segments: list[str]) -> Match:
    if method not in route.methods and not (method == "HEAD" and "GET" in route.methods):
        raise HtmlError(405)
    return Match(route, params, segments, "GET" if method == "HEAD" else method)


def versionless(path: str) -> str:
    """The path after `/api/<ver>` (for fault `path_prefix` matching)."""
    found = _PREFIX.match(path)
    return found.group(2) if found else path
