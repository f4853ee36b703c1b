"""The one path every command takes: parse → authorize → gate? → run → audit."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from bot.engine.context import Ctx, NullSink, Sink, running
from bot.engine.services import Services, make_ctx
from bot.engine.operations import Operations
from bot.engine.outcome import Outcome, error_reply, internal_error, usage_reply
from bot.core import Invocation, Reply, Tone
from bot.errors import BotError, UsageError
from bot.spec.help import help_reply
from bot.spec.parser import Args, parse

log = logging.getLogger("cfy_bot.dispatch")


class Dispatcher:
    """Runs invocations from any transport against the services."""

    def __init__(self, services: Services, operations: Operations | None = None) -> None:
        self.services = services
        self.operations = operations if operations is not None else Operations(services)
        self.operations.handler = self

    def handle(self, inv: Invocation, sink: Sink | None = None) -> Outcome:
        """Handle one invocation; never raises."""
        try:
            return self._handle(inv, sink or NullSink())
        except Exception:  # noqa: BLE001 - the one place a bare Exception is caught (DESIGN §2)
            return internal_error(inv)

    def decline(self, op_id: str, why: str, sink: Sink | None = None, transport: str = "") -> Outcome:
        """End an operation whose confirmation nobody could answer; never raises."""
        try:
            return self.operations.decline(op_id, why, sink or NullSink(), transport)
        except BotError as exc:
            return Outcome(error_reply(exc), 1)

    def decide(self, op_id: str, actor: Any, action: str, sink: Sink | None = None,
               channel: str = "", transport: str = "") -> Outcome:
        """Answer a gate (confirm, approve, reject) or cancel an operation; never raises."""
        try:
            return self.operations.decide(op_id, actor, action, sink or NullSink(), channel, transport)
        except BotError as exc:
            return Outcome(error_reply(exc), 1)
        except Exception:  # noqa: BLE001 - see handle()
            inv = Invocation(text=f"{action} {op_id}", actor=actor, channel=channel, transport=transport,
                             received_at=self.services.clock.now())
            return internal_error(inv)

    def _handle(self, inv: Invocation, sink: Sink) -> Outcome:
        svc = self.services
        base = {"actor": inv.actor.id, "transport": inv.transport, "channel": inv.channel}
        said = {"text": inv.text[:500], "invocation": inv.id}
        try:
            parsed = parse(inv.text, svc.registry)
            cmd = parsed.command if parsed.help_topic is None else None
            manager = self._manager_name(parsed.manager) if cmd is not None and cmd.manager_scoped else ""
        except UsageError as exc:
            svc.audit("invoke", **base, detail=said)
            svc.audit("usage_error", **base, detail={"error": str(exc), "invocation": inv.id})
            return Outcome(usage_reply(exc), 2)
        # Written once the command and its manager are known, so `audit --command/--manager` finds every run.
        svc.audit("invoke", **base, command=cmd.name if cmd else "help", manager=manager, detail=said)
        if cmd is None:
            return self._help(inv, parsed.help_topic or (), base)
        decision = svc.policy.check(inv.actor, cmd, inv.channel, manager)
        if not decision.allowed:
            return _denied(svc, base, cmd.name, manager, decision)
        ctx = make_ctx(svc, self.operations.engine, inv, parsed.args, cmd, manager, sink,
                       manager_named=bool(parsed.manager))
        if cmd.gate or cmd.long_running:
            return self.operations.start(ctx)
        return self.run_quick(ctx)

    def _help(self, inv: Invocation, topic: tuple[str, ...], base: dict[str, str]) -> Outcome:
        """`help`, an empty text or `COMMAND --help`: what this user may run here."""
        svc = self.services
        refused = svc.policy.help_refusal(inv.actor, inv.channel)
        if refused is not None:
            return _denied(svc, base, "help", "", refused)
        try:
            return Outcome(help_reply(svc.registry, topic, svc.policy.may_run(inv.actor, inv.channel)))
        except UsageError as exc:
            svc.audit("usage_error", **base, command="help", detail={"error": str(exc), "invocation": inv.id})
            return Outcome(usage_reply(exc), 2)

    def _manager_name(self, name: str | None) -> str:
        names = list(self.services.managers)
        if not name:
            return names[0]
        if name not in self.services.managers:
            raise UsageError(f"unknown manager {name!r}; configured managers: {', '.join(names)}")
        return name

    def run_quick(self, ctx: Ctx) -> Outcome:
        """Run a command that needs no operation and answer at once."""
        try:
            with running(ctx):
                reply = ctx.command.handler(ctx, ctx.args)
        except UsageError as exc:
            ctx.audit("usage_error", error=str(exc))
            return Outcome(usage_reply(exc), 2)
        except BotError as exc:
            ctx.audit("outcome", ok=False, error=str(exc))
            return Outcome(_with_notices(ctx, error_reply(exc, ctx.manager_name)), exc.exit_code)
        return Outcome(_with_notices(ctx, reply), 0 if reply.ok else 1)


def _denied(svc: Services, base: dict[str, str], command: str, manager: str, decision: Any) -> Outcome:
    """Refuse: audit the denial and say which role is needed and who grants it."""
    # "admin role", not "admin": a bare role name would equal a short configured password such as the demo's.
    svc.audit("denied", **base, manager=manager, command=command,
              detail={"reason": decision.reason, "needed": f"{decision.needed} role" if decision.needed else ""})
    return Outcome(Reply(text=decision.reason, title="Not allowed", tone=Tone.WARNING, ok=False), 1)


def _with_notices(ctx: Ctx, reply: Reply) -> Reply:
    """Add what the client noticed on the way (a node failover) to the reply."""
    if not ctx.manager_name:
        return reply
    client = ctx.managers.get(ctx.manager_name)
    notices = client.take_notices() if client is not None and hasattr(client, "take_notices") else []
    if not notices:
        return reply
    return replace(reply, text=reply.text + "\n" + "\n".join(f"Note: {n}" for n in notices))


__all__ = ["Args", "Dispatcher", "Outcome", "error_reply", "usage_reply"]
