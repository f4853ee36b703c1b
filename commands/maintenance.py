"""Read-only maintenance-mode command: `maintenance-mode status`."""

from __future__ import annotations

from bot.context import Ctx
from bot.core import Reply, Table
from bot.parser import Args
from bot.registry import command
from commands.common import when


@command("maintenance-mode status", summary="Show maintenance mode and the executions it waits for",
         group="maintenance-mode", examples=["maintenance-mode status", "maintenance status -m production"])
def maintenance_status(ctx: Ctx, args: Args) -> Reply:
    """Answer `maintenance-mode status`."""
    m = ctx.manager.maintenance_status()
    status = m.get("status", "?")
    now = ctx.now()
    fields = [("status", status)]
    for key, label in (("activation_requested_at", "requested at"), ("activated_at", "activated at")):
        if m.get(key):
            fields.append((label, when(m[key], now)))
    if m.get("requested_by"):
        fields.append(("requested by", m["requested_by"]))
    remaining = m.get("remaining_executions") or []
    table = None
    if remaining:
        fields.append(("remaining executions", str(len(remaining))))
        table = Table(("id", "deployment", "workflow", "status"), tuple(
            (e.get("id", ""), e.get("deployment_id") or "", e.get("workflow_id", ""), e.get("status", ""))
            for e in remaining))
    text = {"activated": f"{ctx.manager_name} is in maintenance mode.",
            "activating": f"{ctx.manager_name} is entering maintenance mode; waiting for {len(remaining)} "
                          "executions to finish.",
            "deactivated": f"{ctx.manager_name} is not in maintenance mode."}.get(status, f"status {status}")
    tone = {"activated": "warning", "activating": "warning"}.get(status, "info")
    return Reply(text=text, title=f"Maintenance mode on {ctx.manager_name}", tone=tone, fields=tuple(fields),
                 table=table)
