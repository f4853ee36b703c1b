"""The long-lived parts of a running bot, built once at start-up, and the `Ctx` each command run gets from them.

Front ends, the dispatcher and the operation engine hold `Services`; a command never does: `make_ctx` hands it
the typed ports of bot/engine/context.py instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot.clock import Clock
from bot.core import Invocation, Operation
from bot.engine.context import RUNNING, Ctx, Drills, Follower, NullSink, OperationEngine, Sink
from bot.engine.follow import ExecutionFollower
from bot.engine.policy import Policy
from bot.recovery.drills import DrillChecks
from bot.recovery.incidents import IncidentRecords
from bot.recovery.runbook import RunbookChecklists
from bot.schedule.runs import BackupRuns
from bot.settings import Settings
from bot.spec.parser import Args
from bot.spec.registry import Command, Registry

if TYPE_CHECKING:
    from bot.archive.base import Archive
    from bot.cloudify.client import Manager
    from bot.store import Store


@dataclass
class Services:
    """The long-lived parts of a running bot, built once at start-up."""

    settings: Settings
    clock: Clock
    store: Store
    managers: dict[str, Manager]  # name -> client
    registry: Registry
    policy: Policy
    archive: Archive | None = None
    chat: dict[str, Any] = field(default_factory=dict)  # transport -> bot.recovery.chatport.ChatPort, set by front ends
    # the stateless domain ports commands see through Ctx (a test may swap one for its own implementation); the
    # ports over the store and the settings are built by make_ctx, from what the services hold at that moment
    follower: Follower = field(default_factory=ExecutionFollower)
    drills: Drills = field(default_factory=DrillChecks)

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
        op = ctx.op
        self.audit("manager_call", actor=ctx.inv.actor.id, transport=ctx.inv.transport, channel=ctx.inv.channel,
                   manager=manager, command=ctx.command.name, operation_id=op.id if op else "",
                   execution_id=execution_id or (op.execution_id if op else ""), detail=detail)


def make_ctx(svc: Services, engine: OperationEngine, inv: Invocation, args: Args, command: Command,
             manager_name: str, sink: Sink | None = None, *, op: Operation | None = None,
             manager_named: bool = False) -> Ctx:
    """The context of one command run: the services seen through the typed ports, nothing more."""
    data_dir = svc.settings.data_dir
    return Ctx(inv=inv, args=args, command=command, manager_name=manager_name, settings=svc.settings,
               clock=svc.clock, managers=svc.managers, catalog=svc.store, audit_log=svc.store, engine=engine,
               registry=svc.registry, archive=svc.archive, chat=svc.chat, sink=sink or NullSink(), op=op,
               manager_named=manager_named,
               follower=svc.follower, backups=BackupRuns(svc.store, svc.settings),
               incidents=IncidentRecords(svc.store, data_dir), runbooks=RunbookChecklists(svc.store, data_dir),
               drills=svc.drills)
