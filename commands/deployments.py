"""`deployments list`: the manager's deployments, with the columns and values `cfy deployments list` prints.

Written against the seam only (bot.engine.context): one call on the manager port, `list_deployments`, and a table.
The columns are cfy 7's DEPLOYMENT_COLUMNS (cloudify-cli, cloudify_cli/commands/deployments.py); each value is
shaped as cfy's table shapes it (cloudify_cli/table.py): ISO times with `T`/`Z` turned into spaces, lists
joined by commas, labels as `key:value`, null and empty as blank, booleans kept.
"""

from __future__ import annotations

from typing import Any

from bot.core import Reply, Table
from bot.engine.context import Ctx
from bot.spec.parser import Args
from bot.spec.registry import Param, command

COLUMNS = ("id", "display_name", "blueprint_id", "created_at", "updated_at", "visibility", "tenant_name",
           "created_by", "site_name", "labels", "deployment_status", "installation_status")


def cell(value: Any) -> str:
    """One value as cfy's table prints it."""
    if isinstance(value, bool):
        return str(value)
    if not value:
        return ""
    if isinstance(value, list):
        return ",".join(_label(v) if isinstance(v, dict) else str(v) for v in value)
    text = str(value)
    if len(text) >= 10 and text[4:5] == "-" and text[7:8] == "-" and text[:4].isdigit():
        return text.replace("T", " ").replace("Z", " ").strip()
    return text


def _label(label: dict[str, Any]) -> str:
    return f"{label.get('key', '')}:{label.get('value', '')}"


@command("deployments list", summary="List the manager's deployments (as cfy deployments list prints them)",
         group="overview",
         params=[
             Param("tenant", ("-t", "--tenant-name"), "another tenant than the manager's default", metavar="TENANT"),
             Param("all_tenants", ("-a", "--all-tenants"), "every tenant you can see", kind="bool", default=False,
                   excludes=("tenant",)),
         ],
         examples=["deployments list", "deployments list -a", "deployments list -t prod-apps -m production"])
def deployments_list(ctx: Ctx, args: Args) -> Reply:
    """Answer `deployments list`."""
    page = ctx.manager.list_deployments(all_tenants=args.all_tenants, tenant=args.tenant)
    rows = tuple(tuple(cell(d.get(column)) for column in COLUMNS) for d in page.items)
    where = "all tenants" if args.all_tenants else f"tenant {args.tenant or ctx.manager.settings.tenant}"
    text = f"Showing {len(rows)} of {page.total} deployments on {ctx.manager_name} ({where})"
    return Reply(text=text, title=f"Deployments on {ctx.manager_name}",
                 table=Table(COLUMNS, rows) if rows else None)
