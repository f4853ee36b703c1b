"""What a command handler sees: its arguments, its manager, progress and audit; no Slack, HTTP or SQL."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from bot.clock import Clock
from bot.core import Invocation, ProgressEvent
from bot.parser import Args
from bot.policy import Policy
from bot.registry import Command, Registry
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
    archive: Any = None  # bot.archive.Archive

    def audit(self, event: str, **fields: Any) -> None:
        """Append one audit row."""
        self.store.append_audit(event, **fields)


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

    def audit(self, event: str, **detail: Any) -> None:
        """Append an audit row about this command run."""
        self.services.audit(
            event, actor=self.inv.actor.id, transport=self.inv.transport, channel=self.inv.channel,
            manager=self.manager_name, command=self.command.name,
            operation_id=self.op["id"] if self.op else "", execution_id=detail.pop("execution_id", ""),
            detail=detail or None,
        )
