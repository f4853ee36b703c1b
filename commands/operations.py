"""`operations`, and answering gates by typing: `confirm`, `approve`, `reject`, `cancel OPERATION_ID`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from bot.engine.context import Ctx
from bot.core import Operation, Reply, Table, age, person
from bot.spec.parser import Args
from bot.spec.registry import Param, command
from commands.common import clip, count, when

OP_ID = Param("op_id", metavar="OPERATION_ID", required=True, help="the operation's id, e.g. op-7f3a2c")


@command("operations", summary="Operations waiting for a decision or running, and the last finished ones",
         group="overview", manager_scoped=False,
         params=[Param("all", ("-a", "--all"), "include finished ones (last 20)", kind="bool", default=False)],
         examples=["operations", "operations --all"])
def operations(ctx: Ctx, args: Args) -> Reply:
    """Answer `operations`."""
    ctx.engine.expire_due()
    states = None if args.all else ("pending", "approved", "running")
    ops = ctx.engine.list_operations(states=states, limit=20)
    rows = tuple((o.id, o.kind, o.manager, _state(o), o.requester_name or person(o.requester),
                  _runs_in(o, ctx), clip(_now_or_end(o, ctx), 60))
                 for o in ops)
    if not rows:
        return Reply(text="No operations are waiting or running.", title="Operations")
    return Reply(text=count(len(rows), "operation"), title="Operations",
                 table=Table(("id", "command", "manager", "state", "requested by", "runs in (last heard)",
                              "step, or how it ended"), rows))


def _state(op: Operation) -> str:
    """The state, with the gate it waits at while it waits (a finished operation waits for nothing)."""
    state = str(op.state)
    return f"{state} ({op.gate})" if state == "pending" and op.gate else state


def _runs_in(op: Operation, ctx: Ctx) -> str:
    """For a running operation: the process that runs it (host:pid; "this shell" when it is this one) and how long
    since its last heartbeat or step; a process that is gone is said to be gone."""
    if op.state != "running":
        return ""
    who = ctx.engine.runner(op)
    heard = f"{age(who.seen_s)} ago" if who.seen_s is not None else "never"
    if who.here:
        place = "this shell" if ctx.inv.transport == "shell" else "this bot process"
        return f"{place} ({who.owner}), {heard}"
    if not who.alive:
        return f"{who.owner or 'unknown process'}: gone (last heard {heard}); settled at the next start"
    return f"{who.owner}, {heard}"


def _now_or_end(op: Operation, ctx: Ctx) -> str:
    """What a live operation is doing, or how a finished one ended (never its last step as if still on it)."""
    state = str(op.state)
    if state in ("pending", "approved", "running"):
        cancel = f" (cancel requested by {person(str(op.cancel_requested))})" if op.cancel_requested else ""
        return str(op.step or "") + cancel
    ended = when(str(op.finished_at or op.updated_at or ""), ctx.now())
    reason = str(op.error or "")
    return f"{state} {ended}" + (f": {reason}" if reason else "")


REFUSED = ("Not allowed", "Nothing to do", "Cannot cancel")  # a decision that changed nothing
DECISIONS = (
    ("confirm", "Confirm an operation you requested"),
    ("approve", "Approve another admin's restore (two-person rule)"),
    ("reject", "Reject a waiting operation"),
    ("cancel", "Cancel an operation before its point of no return"),
)


def _decision(action: str) -> Callable[[Ctx, Args], Reply]:
    """The handler of `ACTION OPERATION_ID`: the same decision a card's button makes, typed."""

    def decide(ctx: Ctx, args: Args) -> Reply:
        outcome = ctx.engine.decide(args.op_id, ctx.inv.actor, action, ctx.sink, ctx.inv.channel,
                                    ctx.inv.transport)
        if outcome.exit_code != 0 and outcome.reply.title in REFUSED:
            # refused (not allowed, nothing to do): on record as this command's outcome, with the reason
            ctx.audit("outcome", ok=False, operation=args.op_id, refused=outcome.reply.title,
                      error=outcome.reply.text[:500])
        return replace(outcome.reply, ok=outcome.reply.ok and outcome.exit_code == 0)

    decide.__doc__ = f"Answer `{action} OPERATION_ID`."
    return decide


for _action, _summary in DECISIONS:
    command(_action, summary=_summary, group="overview", manager_scoped=False, params=[OP_ID],
            examples=[f"{_action} op-7f3a2c"])(_decision(_action))
