"""`operations`, and answering gates by typing: `confirm`, `approve`, `reject`, `cancel OPERATION_ID`."""

from __future__ import annotations

from bot.context import Ctx
from bot.core import Reply, Table
from bot.operations import Operations
from bot.parser import Args
from bot.registry import Param, command

OP_ID = Param("op_id", metavar="OPERATION_ID", required=True, help="the operation's id, e.g. op-7f3a2c")


@command("operations", summary="Operations waiting for a decision or running, and the last finished ones",
         group="overview", manager_scoped=False,
         params=[Param("all", ("-a", "--all"), "include finished ones (last 20)", kind="bool", default=False)],
         examples=["operations", "operations --all"])
def operations(ctx: Ctx, args: Args) -> Reply:
    """Answer `operations`."""
    Operations(ctx.services).expire_due()
    states = None if args.all else ("pending", "approved", "running")
    ops = ctx.store.list_operations(states=states, limit=20)
    rows = tuple((o["id"], o["kind"], o["manager"], o["state"] + (f" ({o['gate']})" if o.get("gate") else ""),
                  o.get("requester_name") or o["requester"], (o.get("step") or o.get("error") or "")[:60])
                 for o in ops)
    if not rows:
        return Reply(text="No operations are waiting or running.", title="Operations")
    return Reply(text=f"{len(rows)} operations", title="Operations",
                 table=Table(("id", "command", "manager", "state", "requested by", "step"), rows))


def _decide(ctx: Ctx, args: Args, action: str) -> Reply:
    from dataclasses import replace

    outcome = Operations(ctx.services).decide(args.op_id, ctx.inv.actor, action, ctx.sink, ctx.inv.channel,
                                              ctx.inv.transport)
    return replace(outcome.reply, ok=outcome.reply.ok and outcome.exit_code == 0)


@command("confirm", summary="Confirm an operation you requested", group="overview", manager_scoped=False,
         params=[OP_ID], examples=["confirm op-7f3a2c"])
def confirm(ctx: Ctx, args: Args) -> Reply:
    """Answer `confirm OPERATION_ID`."""
    return _decide(ctx, args, "confirm")


@command("approve", summary="Approve another admin's restore (two-person rule)", group="overview",
         manager_scoped=False, params=[OP_ID], examples=["approve op-7f3a2c"])
def approve(ctx: Ctx, args: Args) -> Reply:
    """Answer `approve OPERATION_ID`."""
    return _decide(ctx, args, "approve")


@command("reject", summary="Reject a waiting operation", group="overview", manager_scoped=False,
         params=[OP_ID], examples=["reject op-7f3a2c"])
def reject(ctx: Ctx, args: Args) -> Reply:
    """Answer `reject OPERATION_ID`."""
    return _decide(ctx, args, "reject")


@command("cancel", summary="Cancel an operation before its point of no return", group="overview",
         manager_scoped=False, params=[OP_ID], examples=["cancel op-7f3a2c"])
def cancel(ctx: Ctx, args: Args) -> Reply:
    """Answer `cancel OPERATION_ID`."""
    return _decide(ctx, args, "cancel")
