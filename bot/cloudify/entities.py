"""The listing calls a restore drill compares: tenants, users, and per tenant blueprints, deployments,
secrets (keys only: the list never carries values), plugins and sites."""

from __future__ import annotations

from typing import Any

from bot.cloudify.exchange import _Exchange
from bot.cloudify.wire import Page, _bypass, _Call

ENTITY_PATHS = {"blueprints": "/blueprints", "deployments": "/deployments", "secrets": "/secrets",
                "plugins": "/plugins", "sites": "/sites"}
PAGE = 1000


class _EntityCalls(_Exchange):
    """`GET /tenants`, `/users` and the tenant-scoped lists, all pages read."""

    def _all(self, name: str, path: str, tenant: str | None, bypass: bool) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        while True:
            call = _Call(name, "GET", path, params=[("_offset", str(len(items))), ("_size", str(PAGE))],
                         tenant=tenant, headers=_bypass(bypass))
            page: Page = self._page(call)
            items += page.items
            if not page.items or len(items) >= page.total:
                return items

    def list_tenants(self, *, bypass_maintenance: bool = False) -> list[str]:
        """`GET /tenants`: the tenant names."""
        return [str(t.get("name")) for t in self._all("list tenants", "/tenants", None, bypass_maintenance)]

    def list_users(self, *, bypass_maintenance: bool = False) -> list[dict[str, Any]]:
        """`GET /users`: every user of the manager."""
        return self._all("list users", "/users", None, bypass_maintenance)

    def list_entities(self, kind: str, tenant: str, *, bypass_maintenance: bool = False) -> list[dict[str, Any]]:
        """The `kind` entities (blueprints, deployments, secrets, plugins, sites) of `tenant`."""
        return self._all(f"list {kind} of tenant {tenant}", ENTITY_PATHS[kind], tenant, bypass_maintenance)
