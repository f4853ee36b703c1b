"""`cluster status` and `managers`: the cluster's health, and which managers the bot knows."""

from __future__ import annotations

from bot.context import Ctx
from bot.core import Reply, Table
from bot.errors import ManagerError
from bot.parser import Args
from bot.registry import command


@command("cluster status", summary="Cluster nodes, their services and an overall verdict", group="cluster",
         examples=["cluster status", "cluster status -m production"])
def cluster_status(ctx: Ctx, args: Args) -> Reply:
    """Answer `cluster status` from the manager's cluster-status."""
    data = ctx.manager.cluster_status(summary=False)
    rows = []
    for kind, service in (data.get("services") or {}).items():
        nodes = service.get("nodes") or {}
        if service.get("is_external"):
            rows.append((kind, "(external)", "", service.get("status", "?"), ""))
        for node, info in nodes.items():
            failures = "; ".join(info.get("failures") or [])
            rows.append((kind, node, info.get("private_ip") or "", info.get("status", "?"), failures))
    verdict = data.get("status", "?")
    tone = {"OK": "good", "Degraded": "warning"}.get(verdict, "danger")
    return Reply(text=f"Cluster of {ctx.manager_name}: {verdict}", title=f"Cluster status of {ctx.manager_name}",
                 tone=tone, table=Table(("service", "node", "ip", "status", "failures"), tuple(rows)))


@command("managers", summary="The configured managers, their node URLs and whether they answer", group="cluster",
         examples=["managers"], manager_scoped=False)
def managers(ctx: Ctx, args: Args) -> Reply:
    """Answer `managers`."""
    rows = []
    for name, client in ctx.services.managers.items():
        try:
            version = client.version().get("version", "?")
            state = f"answering ({version})"
        except ManagerError as exc:
            state = f"unreachable: {exc}"
        default = " (default)" if name == next(iter(ctx.services.managers)) else ""
        rows.append((name + default, ", ".join(client.urls), client.settings.tenant, state))
    return Reply(text=f"{len(rows)} managers configured", title="Managers",
                 table=Table(("manager", "nodes", "tenant", "state"), tuple(rows)))
