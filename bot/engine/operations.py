"""The operation engine: gates, two-person approval, compare-and-set state changes, running, expiry."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from bot.engine.context import Ctx, NullSink as _NullSink, Sink, running
from bot.engine.services import Services, make_ctx
from bot.core import Actor, Invocation, Operation, ProgressEvent, Reply, Tone, person
from bot.engine.outcome import Outcome, error_reply, internal_error
from bot.errors import BotError, Cancelled, NotFound, OperationError
from bot.redact import REDACTED, redact_url_secrets, redact_url_values
from bot.engine.liveness import Runner, heartbeat, owner, owner_alive, recorded_owner, runner
from bot.spec.parser import Args
from bot.spec.registry import Command

log = logging.getLogger("cfy_bot.operations")
FINAL = ("succeeded", "failed", "cancelled", "expired")
EXECUTION_FINAL = ("terminated", "failed", "cancelled")  # a Cloudify execution's end states


def actor_of(op: Operation) -> Actor:
    """The requester of an operation as an Actor."""
    source = op.requester.split(":", 1)[0] if ":" in op.requester else "system"
    return Actor(op.requester, op.requester_name or op.requester, source)


def names_of(op: Operation) -> dict[str, str]:
    """The names of the people who decided on `op` (actor id -> name as they were shown), kept in its result."""
    names = op.result.get("names")
    return dict(names) if isinstance(names, dict) else {}


def _with_name(op: Operation, actor: Actor) -> dict[str, Any]:
    """`op`'s result with `actor`'s name recorded (so later messages name people, not their ids)."""
    result = dict(op.result)
    result["names"] = {**names_of(op), actor.id: actor.name}
    return result


def decider(op: Operation, actor_id: str) -> str:
    """Who decided, as people read it: their recorded name; nobody for the bot's own decisions."""
    if actor_id == "system:unanswered":
        return "nobody (the confirmation went unanswered)"
    return person(actor_id, {op.requester: op.requester_name or "", **names_of(op)})


def describe(op: Operation) -> str:
    """One line on where an operation stands, for a second click or a busy manager."""
    who = op.requester_name or person(op.requester)
    state = op.state
    if state == "pending":
        waiting = "a second admin's approval" if op.gate == "approve" else "confirmation"
        expires = f" (expires at {op.expires_at[11:16]} UTC)" if op.expires_at else ""
        return (f"operation {op.id} ({op.kind} on {op.manager}, requested by {who}) is waiting for "
                f"{waiting}{expires}")
    decided = op.decided_by or op.approved_by or op.confirmed_by or ""
    if state == "cancelled" and decided == "system:unanswered":
        return (f"operation {op.id} ({op.kind} on {op.manager}, requested by {who}) was not confirmed "
                "(nobody answered); nothing was changed")
    by = f" by {decider(op, decided)}" if decided and state in ("cancelled", "approved") else ""
    step = f", step: {op.step}" if op.step and state == "running" else ""
    return f"operation {op.id} ({op.kind} on {op.manager}, requested by {who}) is {state}{by}{step}"


LOST_SECRET = ("this operation's URL held a secret (user:password@ or a signed query), which is never stored: "
               "only the bot process that received the command knew it, and it stopped before running it. "
               "Nothing was changed; run the command again.")


def _lost_secret(args: Mapping[str, Any]) -> bool:
    """True when a stored argument had its URL secret redacted (so the value cannot be used as it is)."""
    return any(isinstance(v, str) and REDACTED in v and redact_url_secrets(v.replace(REDACTED, "x")) == v
               for v in args.values())


class Operations:
    """Creates, decides and runs operations; every state change is a compare-and-set in the store."""

    def __init__(self, services: Services) -> None:
        self.svc = services
        self.handler: Handler | None = None  # the dispatcher, for commands that run another command
        self.engine = EnginePort(self)
        # Arguments holding URL secrets (`https://u:pw@…`, `?X-Amz-Signature=…`) are stored redacted; the whole
        # value lives only here, in the memory of the process that received the command, until the run starts.
        self._kept_args: dict[str, dict[str, Any]] = {}
        # (operation, alert text) for expired gates that leave a manager in maintenance mode; front ends take them
        # (the terminal prints them, Slack posts them in the thread and the alert channel)
        self.alerts: list[tuple[Operation, str]] = []

    # -- starting -----------------------------------------------------------------------------
    def start(self, ctx: Ctx) -> Outcome:
        """Create the operation for a gated or long-running command, then gate it or run it."""
        cmd, inv = ctx.command, ctx.inv
        gated = cmd.gate is not None
        if cmd.prepare is not None:
            try:
                ctx.args.update(cmd.prepare(ctx, ctx.args) or {})
            except BotError as exc:
                ctx.audit("outcome", ok=False, error=str(exc), phase="preflight")
                return Outcome(error_reply(exc, ctx.manager_name), exc.exit_code)
        expires = ctx.now() + timedelta(seconds=self.svc.settings.gate_ttl) if gated else None
        stored = redact_url_values(dict(ctx.args))
        try:
            op = self.svc.store.create_operation(
                kind=cmd.name, args=stored, manager=ctx.manager_name, requester=inv.actor.id,
                requester_name=inv.actor.name, channel=inv.channel, transport=inv.transport,
                state="pending" if gated else "approved", gate="confirm" if gated else "",
                expires_at=expires.isoformat() if expires else None, exclusive=cmd.exclusive,
            )
        except OperationError as exc:
            ctx.audit("refused", reason=str(exc))
            return Outcome(Reply(text=str(exc), title="Busy", tone=Tone.WARNING, ok=False), 1)
        ctx.op = op
        if stored != dict(ctx.args):
            self._kept_args[op.id] = dict(ctx.args)
        if not gated:
            return self.run(op, ctx.sink)
        text = self.gate_text(op)
        ctx.audit("gate_shown", gate="confirm", text=text)
        ctx.sink.emit(ProgressEvent(op.id, "gate", text, Tone.WARNING, ctx.now(), {"gate": "confirm"}))
        return Outcome(Reply(text=text, title="Confirm", tone=Tone.WARNING), 0, op, "confirm")

    def gate_text(self, op: Operation) -> str:
        """What the confirmation card says."""
        cmd = self.svc.registry.commands[tuple(op.kind.split())]
        args = {k: ("" if v is None else v) for k, v in op.args.items()}
        what = cmd.gate_text.format(manager=op.manager, **args) if cmd.gate_text else (
            f"run `{op.kind}` on manager {op.manager}")
        if args.get("gate_detail"):
            what += "\n" + str(args["gate_detail"])
        approval = " A second admin must then approve." if self._needs_approval(op) else ""
        return f"{what}{approval} (operation {op.id}, expires at {op.expires_at[11:16]} UTC)"

    def _needs_approval(self, op: Operation) -> bool:
        cmd = self.svc.registry.commands[tuple(op.kind.split())]
        return cmd.gate == "approve" and self.svc.settings.require_approval

    # -- deciding -----------------------------------------------------------------------------
    def decide(self, op_id: str, actor: Actor, action: str, sink: Sink, channel: str = "",
               transport: str = "") -> Outcome:
        """Confirm, approve, reject or cancel; a stale or repeated decision starts nothing."""
        self.expire_due()  # first, so a late click finds its operation expired
        op = self._get(op_id)
        audit = {"actor": actor.id, "transport": transport or actor.source, "channel": channel,
                 "manager": op.manager, "command": op.kind, "operation_id": op_id}
        if action not in ("confirm", "approve", "reject", "cancel"):
            raise OperationError(f"unknown decision {action!r}")
        if action in ("confirm", "approve") and (op.state != "pending" or op.gate != action):
            self.svc.audit("refused", **audit, detail={"decision": action, "reason": describe(op)})
            return Outcome(Reply(text=describe(op), title="Nothing to do", tone=Tone.INFO), 1, op)
        cmd = self.svc.registry.commands[tuple(op.kind.split())]
        decision = self.svc.policy.may_decide(actor, op, action, cmd, channel)  # authorized again, server side
        if not decision.allowed:
            self.svc.audit("denied", **audit, detail={"decision": action, "reason": decision.reason,
                                                      "needed": f"{decision.needed} role"})
            return Outcome(Reply(text=decision.reason, title="Not allowed", tone=Tone.WARNING, ok=False), 1, op)
        if action in ("reject", "cancel"):
            return self._cancel(op, actor, audit, sink)
        return self._record_decision(op, actor, action, audit, sink)

    def _record_decision(self, op: Operation, actor: Actor, gate: str, audit: dict[str, Any],
                         sink: Sink) -> Outcome:
        now = self.svc.clock.now().isoformat()
        named = _with_name(op, actor)
        if gate == "confirm" and self._needs_approval(op):
            new = self.svc.store.transition(op.id, "pending", "pending", expect_gate="confirm",
                                            gate="approve", confirmed_by=actor.id, confirmed_at=now, result=named)
        elif gate == "confirm":
            new = self.svc.store.transition(op.id, "pending", "approved", expect_gate="confirm",
                                            gate="", confirmed_by=actor.id, confirmed_at=now, result=named)
        else:
            new = self.svc.store.transition(op.id, "pending", "approved", expect_gate="approve",
                                            gate="", approved_by=actor.id, approved_at=now, result=named)
        if new is None:  # somebody else decided first
            current = self._get(op.id)
            self.svc.audit("refused", **audit, detail={"decision": gate, "reason": describe(current)})
            return Outcome(Reply(text=describe(current), title="Nothing to do"), 1)
        self.svc.audit("gate_answered" if gate == "confirm" else "approved", **audit,
                       detail={"decision": gate, "by": actor.name})
        if new.state == "pending":
            text = f"{actor.name} confirmed. {self.gate_text(new)}"
            self.svc.audit("gate_shown", **audit, detail={"gate": "approve", "text": text})
            sink.emit(ProgressEvent(new.id, "gate", text, Tone.WARNING, self.svc.clock.now(), {"gate": "approve"}))
            return Outcome(Reply(text=text, title="Waiting for approval", tone=Tone.WARNING), 0, new, "approve")
        return self.run(new, sink)

    def _cancel(self, op: Operation, actor: Actor, audit: dict[str, Any], sink: Sink) -> Outcome:
        if op.state == "running":
            return self.request_cancel(op, actor, audit)
        new = self.svc.store.transition(op.id, ("pending", "approved"), "cancelled", decided_by=actor.id,
                                        result=_with_name(op, actor))
        if new is None:
            current = self._get(op.id)
            self.svc.audit("refused", **audit, detail={"decision": "cancel", "reason": describe(current)})
            return Outcome(Reply(text=describe(current), title="Nothing to do"), 1)
        self.svc.audit("gate_answered", **audit, detail={"decision": "cancel", "by": actor.name})
        text = f"cancelled by {actor.name}; nothing was changed on {op.manager}"
        sink.emit(ProgressEvent(op.id, "finished", text, Tone.INFO, self.svc.clock.now(), {"state": "cancelled"}))
        return Outcome(Reply(text=text, title="Cancelled"), 0, new)

    def decline(self, op_id: str, why: str, sink: Sink, transport: str = "") -> Outcome:
        """Nobody could answer a confirmation (no terminal, no --yes): the operation ends, in nobody's name."""
        op = self._get(op_id)
        new = self.svc.store.transition(op_id, "pending", "cancelled", expect_gate="confirm",
                                        decided_by="system:unanswered")
        if new is None:
            return Outcome(Reply(text=describe(self._get(op_id)), title="Nothing to do"), 1)
        self.svc.audit("gate_unanswered", actor="system:unanswered", transport=transport, manager=op.manager,
                       command=op.kind, operation_id=op_id, detail={"why": why})
        text = f"not confirmed ({why}); nothing was changed on {op.manager}"
        sink.emit(ProgressEvent(op_id, "finished", text, Tone.WARNING, self.svc.clock.now(), {"state": "cancelled"}))
        return Outcome(Reply(text=text, title="Not confirmed", tone=Tone.WARNING, ok=False), 1, new)

    def request_cancel(self, op: Operation, actor: Actor, audit: dict[str, Any]) -> Outcome:
        """Ask a running operation to stop at its next step; refused after the point of no return."""
        if op.point_of_no_return:
            return Outcome(Reply(text=f"{op.id} is past the point of no return ({op.step}); "
                                 "it cannot be cancelled now", title="Cannot cancel", tone=Tone.WARNING, ok=False),
                           1, op)
        if op.cancel_requested:
            return Outcome(Reply(text=f"cancel of {op.id} was already requested by "
                                 f"{decider(op, op.cancel_requested)}; "
                                 f"it stops at its next step. `operations` shows when it has.", title="Cancelling"),
                           0, op)
        new = self.svc.store.update_operation(op.id, "running", cancel_requested=actor.id)
        if new is None:
            return Outcome(Reply(text=describe(self._get(op.id)), title="Nothing to do"), 1)
        self.svc.audit("gate_answered", **audit, detail={"decision": "cancel", "by": actor.name})
        if not owner_alive(new, self.svc.clock.now()):
            who = recorded_owner(new) or "a bot process"
            return Outcome(Reply(text=f"cancel of {op.id} recorded, but the process that ran it ({who}) is gone: "
                                 "the next start of cfy-bot on this data folder settles it as cancelled (and asks the "
                                 "manager to cancel its execution if that still runs).",
                                 title="Cancel recorded", tone=Tone.WARNING), 0, new)
        return Outcome(Reply(text=f"cancel requested by {actor.name}: {op.id} stops at its next step boundary "
                             f"(while it waits for the manager or a transfer it checks every few seconds); "
                             f"`operations` shows when it has stopped.", title="Cancelling"), 0, new)

    # -- running --------------------------------------------------------------------------------
    def run(self, op: Operation, sink: Sink) -> Outcome:
        """Move an approved operation to running and run its handler to a final state."""
        running = self.svc.store.transition(op.id, "approved", "running", step="started",
                                            result={**(op.result or {}), "journal": {"owner": owner()}})
        if running is None:
            return Outcome(Reply(text=describe(self._get(op.id)), title="Nothing to do"), 1)
        cmd = self.svc.registry.commands[tuple(op.kind.split())]
        actor = actor_of(running)
        inv = Invocation(text=op.kind, actor=actor, channel=running.channel,
                         transport=running.transport, received_at=self.svc.clock.now())
        args = self._kept_args.pop(op.id, None)
        ctx = make_ctx(self.svc, self.engine, inv, Args(args or running.args), cmd, running.manager, sink,
                       op=running)
        ctx.step(f"{op.kind} on {op.manager} started by {actor.name}", kind="started")
        if args is None and _lost_secret(running.args):
            return self._finish(ctx, "failed", Reply(text=LOST_SECRET, ok=False), LOST_SECRET)
        return self._execute(ctx)

    def _execute(self, ctx: Ctx) -> Outcome:
        """Run the handler of a running operation and record how it ended."""
        inv = ctx.inv
        with heartbeat(self.svc.store, ctx.op.id if ctx.op else ""):
            return self._handle_result(ctx, inv)

    def _handle_result(self, ctx: Ctx, inv: Invocation) -> Outcome:
        try:
            with running(ctx):
                reply = ctx.command.handler(ctx, ctx.args)
        except Cancelled as exc:
            return self._finish(ctx, "cancelled", Reply(text=str(exc), title="Cancelled"), str(exc))
        except BotError as exc:
            return self._finish(ctx, "failed", error_reply(exc, ctx.manager_name), str(exc))
        except Exception:  # noqa: BLE001 - the operation must end in a known state, then report it
            self._finish(ctx, "failed", Reply(text="internal error", ok=False), f"internal error, ref {inv.id}")
            return internal_error(inv)
        return self._finish(ctx, "succeeded" if reply.ok else "failed", reply, "" if reply.ok else reply.text)

    def _finish(self, ctx: Ctx, state: str, reply: Reply, error: str) -> Outcome:
        reply = replace(reply, text=redact_url_secrets(reply.text),
                        fields=tuple((k, redact_url_secrets(str(v))) for k, v in reply.fields))
        error = redact_url_secrets(error)
        op_id = ctx.op.id if ctx.op else ""
        current = self.svc.store.get_operation(op_id) or ctx.op
        result = {**(current.result if current else {}), "text": reply.text[:4000],
                  "fields": [[k, v[:2000]] for k, v in reply.fields]}  # the summary, kept with the operation
        done = self.svc.store.transition(op_id, "running", state, error=error, result=result)
        ctx.audit("outcome", state=state, error=error)
        tone = {"succeeded": Tone.GOOD, "cancelled": Tone.INFO}.get(state, Tone.DANGER)
        text = reply.text
        if ctx.recall("resumed") and reply.fields:  # nobody waits on a resumed operation: its summary goes out here
            text += "\n" + "\n".join(f"{k}: {v}" for k, v in reply.fields)
        ctx.step(text, tone=tone, kind="finished", state=state)
        return Outcome(reply if state == "succeeded" else _failed(reply), 0 if state == "succeeded" else 1, done)

    # -- restarts -------------------------------------------------------------------------------
    def reconcile(self, sink_for: Any = None) -> list[Operation]:
        """After a restart: resume or settle every unfinished operation, so none is left saying running."""
        self.expire_due()
        settled = []
        for op in self.svc.store.unfinished_operations():
            if op.state == "pending":
                continue  # its gate card is still valid until it expires
            if op.state == "running" and owner_alive(op, self.svc.clock.now()):
                continue  # a live bot process is still running it
            if not self.svc.store.claim_mark(f"reconcile:{op.id}:{op.updated_at}"):
                continue  # another bot process is already on it
            sink = sink_for(op) if sink_for else None
            settled.append(self._reconcile_one(op, sink or _NullSink()))
        return settled

    def _reconcile_one(self, op: Operation, sink: Sink) -> Operation:
        cmd = self.svc.registry.commands.get(tuple(op.kind.split()))
        # the steps after a restart are the bot's, not the requester's (who may not be anywhere near): audited as
        # system:reconcile; the operation keeps its requester (the summary and a follow-up gate name them)
        actor = Actor("system:reconcile", "cfy-bot (resuming after a restart)", actor_of(op).source)
        inv = Invocation(text=op.kind, actor=actor, channel=op.channel, transport=op.transport,
                         received_at=self.svc.clock.now())
        if op.state == "approved":
            new = self.svc.store.transition(op.id, "approved", "failed",
                                            error="the bot stopped before starting it; nothing was changed")
            self.svc.audit("outcome", actor="system:reconcile", manager=op.manager, command=op.kind,
                           operation_id=op.id, detail={"state": "failed", "reason": "restart before start"})
            return new or op
        if op.cancel_requested:
            return self._settle_cancelled(op, sink)
        if cmd is None or not cmd.resumable:
            return self._settle_unresumable(op, sink)
        ctx = make_ctx(self.svc, self.engine, inv, Args(op.args), cmd, op.manager, sink, op=op)
        if _lost_secret(op.args):
            self._finish(ctx, "failed", Reply(text=LOST_SECRET, ok=False), LOST_SECRET)
            return self.svc.store.get_operation(op.id) or op
        ctx.remember(owner=owner(), resumed=True)
        ctx.step(f"the bot restarted; resuming {op.kind} on {op.manager} at: {op.step}")
        self._execute(ctx)
        return self.svc.store.get_operation(op.id) or op

    def _settle_cancelled(self, op: Operation, sink: Sink) -> Operation:
        """A cancel was requested, then the process running the operation went away: end it cancelled, and cancel
        its Cloudify execution if that still runs (what the live process would have done at its next step)."""
        what = (f"cancelled by {decider(op, op.cancel_requested)} before the point of no return; the process "
                f"running it "
                f"({recorded_owner(op) or 'unknown'}) had stopped")
        client = self.svc.managers.get(op.manager)
        eid = op.execution_id or ""
        if eid and client is not None:
            try:
                status = client.get_execution(eid).status
                if status not in EXECUTION_FINAL:
                    client.execution_action(eid, "cancel")
                    what += f"; execution {eid} was {status}: the bot asked {op.manager} to cancel it"
                else:
                    what += f"; execution {eid} had ended {status}"
            except BotError as exc:
                what += f"; execution {eid} could not be read or cancelled: {exc}"
        new = self.svc.store.transition(op.id, "running", "cancelled", error=what)
        self.svc.audit("outcome", actor="system:reconcile", manager=op.manager, command=op.kind,
                       operation_id=op.id, execution_id=eid, detail={"state": "cancelled", "reason": what})
        sink.emit(ProgressEvent(op.id, "finished", what, Tone.INFO, self.svc.clock.now(), {"state": "cancelled"}))
        return new or op

    def _settle_unresumable(self, op: Operation, sink: Sink) -> Operation:
        """Mark an operation that cannot be resumed with what became of its execution."""
        what = "the bot restarted while it ran"
        client = self.svc.managers.get(op.manager)
        if op.execution_id and client is not None:
            try:
                execution = client.get_execution(op.execution_id)
                what += f"; execution {op.execution_id} is now {execution.status}"
            except BotError as exc:
                what += f"; execution {op.execution_id} could not be read: {exc}"
        new = self.svc.store.transition(op.id, "running", "failed", error=what)
        self.svc.audit("outcome", actor="system:reconcile", manager=op.manager, command=op.kind,
                       operation_id=op.id, execution_id=op.execution_id or "",
                       detail={"state": "failed", "reason": what})
        sink.emit(ProgressEvent(op.id, "finished", what, Tone.WARNING, self.svc.clock.now(), {"state": "failed"}))
        return new or op

    # -- housekeeping ---------------------------------------------------------------------------
    def expire_due(self) -> list[Operation]:
        """Expire every gate whose time is up; each is audited."""
        expired: list[Operation] = self.svc.store.expire_gates(self.svc.clock.now().isoformat())
        for op in expired:
            self.svc.audit("outcome", actor="system:gates", manager=op.manager, command=op.kind,
                           operation_id=op.id, detail={"state": "expired"})
            alert = self._left_in_maintenance(op)
            if alert:
                self.svc.store.update_operation(op.id, "expired", error=alert)
                self.svc.audit("alert", actor="system:gates", manager=op.manager, command=op.kind,
                               operation_id=op.id, detail={"text": alert})
                self.alerts.append((replace(op, error=alert), alert))
        return expired

    def take_alerts(self) -> list[tuple[Operation, str]]:
        """The alerts of expired gates not yet shown (each is shown once, by whoever takes it)."""
        taken = list(self.alerts)
        del self.alerts[:len(taken)]
        return taken

    def _left_in_maintenance(self, op: Operation) -> str:
        """An unanswered `maintenance-mode deactivate` gate (the follow-up after a failed restore) leaves the
        manager in maintenance mode, where backups and changes wait: the alert, read from the manager, or ""."""
        if op.kind != "maintenance-mode deactivate":
            return ""
        manager = op.manager
        flag = "" if manager == next(iter(self.svc.managers), manager) else f" -m {manager}"
        ends = f"`maintenance-mode deactivate{flag}` ends it"
        lapsed = (f"{op.id} (maintenance-mode deactivate) expired at {str(op.expires_at)[11:16]} UTC "
                  "unanswered")
        client = self.svc.managers.get(manager)
        try:
            status = str((client.maintenance_status() if client is not None else {}).get("status") or "unknown")
        except BotError as exc:
            return (f"{lapsed}, and whether {manager} is still in maintenance mode could not be read ({exc}); "
                    f"`maintenance-mode status{flag}` tells; {ends}.")
        if status == "deactivated":
            return ""
        return (f"{lapsed}: {manager} is still in maintenance mode ({status}), so its backups and changes wait; "
                f"{ends}.")

    def _get(self, op_id: str) -> Operation:
        op = self.svc.store.get_operation(op_id)
        if op is None:
            raise NotFound(f"no operation {op_id!r}")
        return op


def _failed(reply: Reply) -> Reply:
    return Reply(text=reply.text, title=reply.title or "Failed", tone=Tone.DANGER, fields=reply.fields,
                 table=reply.table, public=reply.public, ok=False)


class Handler(Protocol):
    """What runs an invocation from start to end (bot.engine.dispatch.Dispatcher)."""

    def handle(self, inv: Invocation, sink: Sink | None = None) -> Outcome: ...


class EnginePort:
    """The operation engine as commands see it (bot.engine.context.OperationEngine)."""

    def __init__(self, operations: Operations) -> None:
        self._ops = operations
        self._svc = operations.svc

    def list_operations(self, states: str | Iterable[str] | None = None, manager: str | None = None,
             kinds: str | Iterable[str] | None = None, limit: int | None = None) -> list[Operation]:
        """Operations, newest first, filtered by state, manager and kind."""
        return self._svc.store.list_operations(states=states, manager=manager, kinds=kinds, limit=limit)

    def get_operation(self, op_id: str) -> Operation | None:
        """One operation, or None."""
        return self._svc.store.get_operation(op_id)

    def runner(self, op: Operation) -> Runner:
        """Who runs `op` (host:pid, this process or not, alive or gone) and when it was last heard from."""
        return runner(op, self._svc.clock.now())

    def update_operation(self, op_id: str, expected_state: str | Iterable[str], **fields: Any) -> Operation | None:
        """Change fields of an operation still in `expected_state` (compare-and-set); None when it is not."""
        return self._svc.store.update_operation(op_id, expected_state, **fields)

    def open_gate(self, ctx: Ctx, kind: str, args: dict[str, Any] | None = None) -> Operation:
        """A new gated operation `kind` on ctx's manager for the same requester, waiting for confirmation."""
        expires = ctx.now() + timedelta(seconds=self._svc.settings.gate_ttl)
        op = ctx.op  # the running operation's requester, also when the bot resumed it after a restart
        return self._svc.store.create_operation(
            kind=kind, args=dict(args or {}), manager=ctx.manager_name,
            requester=(op.requester if op else "") or ctx.inv.actor.id,
            requester_name=(op.requester_name if op else "") or ctx.inv.actor.name, channel=ctx.inv.channel,
            transport=ctx.inv.transport, state="pending", gate="confirm", expires_at=expires.isoformat())

    def expire_due(self) -> list[Operation]:
        """Expire every gate whose time is up."""
        return self._ops.expire_due()

    def decide(self, op_id: str, actor: Actor, action: str, sink: Sink, channel: str = "",
               transport: str = "") -> Outcome:
        """Confirm, approve, reject or cancel an operation, as its card's buttons do."""
        return self._ops.decide(op_id, actor, action, sink, channel, transport)

    def handle(self, inv: Invocation, sink: Sink) -> Outcome:
        """Run another command as if it was typed: parse, authorize, gate, audit."""
        if self._ops.handler is None:
            raise RuntimeError("this operation engine has no dispatcher to run commands with")
        return self._ops.handler.handle(inv, sink)

    def may_run(self, actor: Actor, channel: str = "") -> Callable[[Command], bool]:
        """Could `actor` run a command here (for help)?"""
        return self._svc.policy.may_run(actor, channel)
