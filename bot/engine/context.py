"""What a command handler sees: its arguments, its manager, progress and audit; no Slack, HTTP or SQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from bot.clock import Clock
from bot.core import Invocation, ProgressEvent
from bot.errors import Cancelled
from bot.spec.parser import Args
from bot.engine.policy import Policy
from bot.spec.registry import Command, Registry
from bot.settings import Settings


class Sink(Protocol):
    """Where progress events go (terminal lines, a Slack thread, nowhere)."""

    def emit(self, event: ProgressEvent) -> None:
        """Deliver one event."""


class NullSink:
    """Drops progress; for callers that only want the final reply."""

    def emit(self, event: ProgressEvent) -> None:
        """Drop the event."""


@dataclass
class Services:
    """The long-lived parts of a running bot, built once at start-up."""

    settings: Settings
    clock: Clock
    store: Any  # bot.store.Store
    managers: dict[str, Any]  # name -> bot.cloudify.Manager
    registry: Registry
    policy: Policy
    archive: Any = None  # bot.archive.folder.Archive
    chat: dict[str, Any] = field(default_factory=dict)  # transport -> bot.recovery.chatport.ChatPort, set by front ends

    def audit(self, event: str, **fields: Any) -> None:
        """Append one audit row."""
        self.store.append_audit(event, **fields)

    def record_call(self, manager: str, method: str, path: str, status: int, node: str, what: str,
                    execution_id: str = "") -> None:
        """Audit one call that changes something on a manager (the client reports each), for whoever runs now."""
        detail = {"method": method, "path": path, "status": status, "node": node, "what": what}
        ctx = RUNNING.get()
        if ctx is None:
            self.audit("manager_call", actor="system:bot", manager=manager, execution_id=execution_id, detail=detail)
            return
        op = ctx.op or {}
        self.audit("manager_call", actor=ctx.inv.actor.id, transport=ctx.inv.transport, channel=ctx.inv.channel,
                   manager=manager, command=ctx.command.name, operation_id=op.get("id", ""),
                   execution_id=execution_id or op.get("execution_id") or "", detail=detail)


RUNNING: ContextVar[Ctx | None] = ContextVar("cfy_bot_running_ctx", default=None)


@contextmanager
def running(ctx: Ctx) -> Iterator[Ctx]:
    """While a command's handler runs: the manager calls it makes are audited under its name and actor."""
    token = RUNNING.set(ctx)
    try:
        yield ctx
    finally:
        RUNNING.reset(token)


@dataclass
class Ctx:
    """One command run: invocation, parsed args, the manager it is about, progress and audit."""

    inv: Invocation
    args: Args
    command: Command
    services: Services
    manager_name: str
    sink: Sink = field(default_factory=NullSink)
    op: dict[str, Any] | None = None
    manager_named: bool = False  # the user chose the manager with -m/--manager

    @property
    def manager(self) -> Any:
        """The Cloudify client of the manager this command is about."""
        return self.services.managers[self.manager_name]

    @property
    def settings(self) -> Settings:
        return self.services.settings

    @property
    def clock(self) -> Clock:
        return self.services.clock

    @property
    def store(self) -> Any:
        return self.services.store

    @property
    def archive(self) -> Any:
        return self.services.archive

    def now(self) -> datetime:
        """The current time (the injected clock)."""
        return self.services.clock.now()

    def step(self, text: str, tone: str = "info", kind: str = "step", **data: Any) -> None:
        """Report progress: one event to the sink, and an audit row when this is an operation."""
        op_id = self.op["id"] if self.op else self.inv.id
        self.sink.emit(ProgressEvent(op_id, kind, text, tone, self.now(), dict(data)))
        if self.op and kind == "step":
            self.audit("step", text=text, tone=tone)
            updated = self.store.update_operation(self.op["id"], "running", step=text[:200])
            if updated is not None:
                self.op = updated

    def recall(self, key: str, default: Any = None) -> Any:
        """A value this operation remembered earlier (survives a restart of the bot)."""
        journal = ((self.op or {}).get("result") or {}).get("journal") or {}
        return journal.get(key, default)

    def remember(self, **values: Any) -> None:
        """Persist values in the operation's journal before acting on them, so a restart can resume."""
        if not self.op:
            return
        result = dict(self.op.get("result") or {})
        result["journal"] = {**(result.get("journal") or {}), **values}
        updated = self.store.update_operation(self.op["id"], "running", result=result)
        if updated is not None:
            self.op = updated

    def check_cancel(self) -> None:
        """Stop here (raise Cancelled) when someone asked to cancel this operation."""
        if not self.op:
            return
        current = self.store.get_operation(self.op["id"]) or {}
        if current.get("cancel_requested"):
            raise Cancelled(f"cancelled by {current['cancel_requested']} before the point of no return")

    def point_of_no_return(self, what: str) -> None:
        """From here on the operation cannot be cancelled; recorded before the irreversible call."""
        self.check_cancel()
        if self.op:
            updated = self.store.update_operation(self.op["id"], "running", point_of_no_return=True, step=what)
            if updated is not None:
                self.op = updated

    def audit(self, event: str, **detail: Any) -> None:
        """Append an audit row about this command run."""
        self.services.audit(
            event, actor=self.inv.actor.id, transport=self.inv.transport, channel=self.inv.channel,
            manager=self.manager_name, command=self.command.name,
            operation_id=self.op["id"] if self.op else "",
            # once the operation has a Cloudify execution, every later row names it (steps, outcome)
            execution_id=detail.pop("execution_id", "") or (self.op or {}).get("execution_id") or "",
            detail=detail or None,
        )
