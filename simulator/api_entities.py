"""Secrets (keys, never values in lists), plugins, sites, users and tenants: what a restore drill reads back."""

from __future__ import annotations

from typing import Any

from simulator.context import Ctx
from simulator.http import Response, json_response
from simulator.listing import apply_filters, envelope, query_bool
from simulator.state import public

SECRET_FIELDS = ("key", "created_at", "updated_at", "resource_availability", "visibility", "tenant_name",
                 "created_by", "is_hidden_value", "schema", "provider_name")
PLUGIN_FIELDS = ("id", "package_name", "archive_name", "package_source", "package_version", "supported_platform",
                 "distribution", "distribution_version", "distribution_release", "wheels", "excluded_wheels",
                 "supported_py_versions", "uploaded_at", "created_by", "visibility", "tenant_name", "title")
SITE_FIELDS = ("name", "location", "visibility", "tenant_name", "created_at", "created_by")
USER_FIELDS = ("username", "role", "active", "created_at", "last_login_at", "tenants", "group_system_roles")
TENANT_FIELDS = ("name", "users", "user_groups")


def _rows(ctx: Ctx, kind: str, fields: tuple[str, ...]) -> list[dict[str, Any]]:
    tenant = ctx.need_tenant()
    tenants = ctx.sim.state.tenants if query_bool(ctx.req, "_all_tenants") else [tenant]
    rows = [public(r) for t in tenants for r in ctx.sim.state.resources_of(t, kind)]
    return [{k: r.get(k) for k in fields} for r in rows]  # a secret's value never appears in a list


def list_secrets(ctx: Ctx) -> Response:
    """`GET /secrets`: keys and metadata, no values (as the manager lists them)."""
    ctx.permit("secret_list")
    items = apply_filters(_rows(ctx, "secrets", SECRET_FIELDS), ctx.req, SECRET_FIELDS)
    return json_response(envelope(items, ctx.req, SECRET_FIELDS, search="key"))


def list_plugins(ctx: Ctx) -> Response:
    """`GET /plugins`."""
    ctx.permit("plugin_list")
    items = apply_filters(_rows(ctx, "plugins", PLUGIN_FIELDS), ctx.req, PLUGIN_FIELDS)
    return json_response(envelope(items, ctx.req, PLUGIN_FIELDS, default_sort="uploaded_at", search="id"))


def list_sites(ctx: Ctx) -> Response:
    """`GET /sites`."""
    ctx.permit("site_list")
    items = apply_filters(_rows(ctx, "sites", SITE_FIELDS), ctx.req, SITE_FIELDS)
    return json_response(envelope(items, ctx.req, SITE_FIELDS, search="name"))


def list_users(ctx: Ctx) -> Response:
    """`GET /users`: every user of the manager (not tenant-scoped)."""
    ctx.permit("user_list")
    state = ctx.sim.state
    items = [{"username": name, "role": u.get("role", "default"), "active": u.get("active", True),
              "created_at": u.get("created_at"), "last_login_at": None, "tenants": {t: "user" for t in state.tenants},
              "group_system_roles": {}} for name, u in state.users.items()]
    items = apply_filters(items, ctx.req, USER_FIELDS)
    return json_response(envelope(items, ctx.req, USER_FIELDS, default_sort="username", search="username"))


def list_tenants(ctx: Ctx) -> Response:
    """`GET /tenants`."""
    ctx.permit("tenant_list")
    items = [{"name": t, "users": 0, "user_groups": 0} for t in ctx.sim.state.tenants]
    return json_response(envelope(items, ctx.req, TENANT_FIELDS, default_sort="name", search="name"))
