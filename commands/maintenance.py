"""`maintenance-mode status | activate | deactivate`, and the wait for `activated` that restore shares."""

from __future__ import annotations

from typing import Any
from bot.engine.context import Ctx
from bot.core import Execution, Reply, Table, Tone
from bot.errors import BadRequest, BotError, ManagerError, NotModified, OperationError
from bot.spec.parser import Args
from bot.spec.registry import Param, command
from commands.common import when
from commands.executions import WAITING, cancel_hints, describe, hint


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
    remaining = [Execution.from_wire(e) for e in m.get("remaining_executions") or []]
    unread = ""
    if status != "activating":  # the manager names them only while activating; queued and scheduled ones matter
        remaining, unread = _waiting(ctx, status)
        if unread:
            fields.append(("queued or scheduled executions", unread))
    table = None
    if remaining:
        label = "remaining executions" if status == "activating" else "queued or scheduled executions"
        fields.append((label, str(len(remaining))))
        table = Table(("id", "deployment", "workflow", "status"), tuple(
            (e.id, e.deployment_id or "", e.workflow_id or "", e.status) for e in remaining))
    plural = "s" if len(remaining) != 1 else ""
    text = {"activated": f"{ctx.manager_name} is in maintenance mode.",
            "activating": f"{ctx.manager_name} is entering maintenance mode; waiting for {len(remaining)} "
                          f"execution{plural} to finish.",
            "deactivated": f"{ctx.manager_name} is not in maintenance mode."}.get(status, f"status {status}")
    stuck = [e for e in remaining if e.status in WAITING]
    if stuck:
        text += (f" {len(stuck)} execution{'s are' if len(stuck) != 1 else ' is'} queued or scheduled "
                 "(listed below): they never finish while maintenance mode is activating, so it "
                 f"{'cannot activate' if status == 'activating' else 'would not activate'} until they are "
                 f"cancelled: {cancel_hints(ctx, stuck)}.")
    tone = Tone.WARNING if status in ("activated", "activating") or stuck else Tone.INFO
    return Reply(text=text, title=f"Maintenance mode on {ctx.manager_name}", tone=tone, fields=tuple(fields),
                 table=table)


def _waiting(ctx: Ctx, status: str) -> tuple[list[Execution], str]:
    """Queued and scheduled executions of every tenant (maintenance mode waits on all of them), or why they could
    not be read. While activated the manager refuses executions calls, so they are read with the bypass header."""
    try:
        page = ctx.manager.list_executions(include_system=True, status=list(WAITING), size=100, _all_tenants=True,
                                           bypass_maintenance=status == "activated")
    except BotError as exc:
        return [], f"could not read the queued or scheduled executions: {exc}"
    return list(page.items), ""


def _remaining_text(remaining: list[Execution]) -> str:
    """`3 executions: install on web (started), ...` for a progress line."""
    if not remaining:
        return "no executions"
    shown = ", ".join(f"{e.workflow_id}{' on ' + e.deployment_id if e.deployment_id else ''} ({e.status})"
                      for e in remaining[:5])
    more = f" and {len(remaining) - 5} more" if len(remaining) > 5 else ""
    return f"{len(remaining)} executions: {shown}{more}"


def wait_until_activated(ctx: Ctx, timeout: float, cancellable: dict[str, str | None] | None = None) -> dict[str, Any]:
    """Poll maintenance mode until `activated`, showing what it waits for.

    `timeout` 0 waits without limit, as cfy's `--timeout 0` does. Queued and scheduled executions keep the
    manager `activating` forever (reference §4): those in `cancellable` (id -> tenant) are cancelled, any other makes
    this fail at once with MaintenanceBlocked. Cancel requests are honoured between polls.
    """
    began = ctx.clock.monotonic()
    shown: tuple[str, ...] = ()
    cancelled: set[str] = set()
    cancellable = cancellable or {}
    delay = 1.0
    while True:
        state: dict[str, Any] = ctx.manager.maintenance_status()
        if state.get("status") == "activated":
            return state
        if state.get("status") == "deactivated":
            raise OperationError(f"maintenance mode on {ctx.manager_name} was deactivated by someone else "
                                 "while the bot waited for it")
        remaining = [Execution.from_wire(e) for e in state.get("remaining_executions") or []]
        ids = tuple(sorted(e.id for e in remaining))
        if ids != shown:
            shown = ids
            ctx.step(f"maintenance mode is activating; waiting for {_remaining_text(remaining)}")
        _cancel_stuck(ctx, remaining, cancellable, cancelled)
        waited = ctx.clock.monotonic() - began
        if timeout and waited >= timeout:
            raise MaintenanceTimeout(
                f"timed out after {int(waited)}s while entering maintenance mode on {ctx.manager_name}: still "
                f"waiting for {len(remaining)} execution{'s' if len(remaining) != 1 else ''}: {describe(remaining)}. "
                "Maintenance mode stays requested (new executions are refused); let those executions finish or "
                f"cancel them ({cancel_hints(ctx, remaining)}), or run "
                f"{hint(ctx, 'maintenance-mode deactivate')}.", remaining)
        ctx.check_cancel()
        ctx.clock.sleep(delay)
        delay = min(delay * 1.5, 5.0)


def _cancel_stuck(ctx: Ctx, remaining: list[Execution], cancellable: dict[str, str | None],
                  cancelled: set[str]) -> None:
    """When only queued or scheduled executions are left (they never finish while maintenance mode is activating),
    cancel them if all are `cancellable`, else raise MaintenanceBlocked; adds what it cancels to `cancelled`."""
    stuck = [e for e in remaining if e.status in WAITING and e.id not in cancelled]
    if not stuck or len(stuck) != len([e for e in remaining if e.id not in cancelled]):
        return
    if not all(e.id in cancellable for e in stuck):
        raise MaintenanceBlocked(
            f"maintenance mode cannot activate on {ctx.manager_name}: {len(stuck)} execution"
            f"{'s are' if len(stuck) != 1 else ' is'} queued or scheduled ({describe(stuck)}), and such "
            "executions never finish while maintenance mode is activating. Cancel them first: "
            f"{cancel_hints(ctx, stuck)}; or use the guided `restore`, which cancels them itself.", stuck)
    done: list[str] = []
    try:
        for e in stuck:
            journal_whole(ctx, e, cancellable.get(e.id))
            done.append(cancel_execution(ctx, e, cancellable.get(e.id)))
            cancelled.add(e.id)
    finally:  # one thread message for all of them (issue 14's Slack budget), one line each, even after a failure
        if done:
            ctx.step("\n".join(done))


JOURNALED = ("id", "workflow_id", "deployment_id", "tenant_name", "scheduled_for", "status", "parameters",
             "created_by", "is_dry_run")


def journal_whole(ctx: Ctx, execution: Execution, tenant: str | None) -> None:
    """Before cancelling: the execution as the manager has it (parameters included, redacted by the client),
    in the operation's journal (in the manager's field names: `Execution.from_wire` reads it back), so the report
    can say what to re-create."""
    try:
        full = ctx.manager.get_execution(execution.id, tenant=tenant)
    except ManagerError:
        full = execution  # what the list said: still journaled before the cancel
    wire = full.wire()
    record = {k: wire[k] for k in JOURNALED}
    record["tenant_name"] = record.get("tenant_name") or tenant or ""
    ctx.remember(cancelled=[*(ctx.recall("cancelled") or []), record])


def cancel_execution(ctx: Ctx, execution: Execution, tenant: str | None = None) -> str:
    """Cancel one execution of `tenant` (kill when a plain cancel is refused); the line that says so (the caller
    reports them together)."""
    action = "cancelled"
    try:
        ctx.manager.execution_action(execution.id, "cancel", tenant=tenant)
    except BadRequest:
        ctx.manager.execution_action(execution.id, "kill", tenant=tenant)
        action = "killed (a cancel was refused)"
    return (f"{action} {execution.status} execution {execution.id} ({execution.workflow_id}"
            f"{' on ' + execution.deployment_id if execution.deployment_id else ''})")


class MaintenanceBlocked(OperationError):
    """Maintenance mode waits for queued or scheduled executions, which never end by themselves."""

    def __init__(self, message: str, remaining: list[Execution]) -> None:
        super().__init__(message)
        self.remaining = remaining


class MaintenanceTimeout(OperationError):
    """Maintenance mode did not reach `activated` in time."""

    def __init__(self, message: str, remaining: list[Execution]) -> None:
        super().__init__(message)
        self.remaining = remaining


TIMEOUT = Param("timeout", ("--timeout",), "seconds to wait for `activated` (900; 0 waits without limit)",
                kind="int", default=900, metavar="SECONDS")


@command("maintenance-mode activate", summary="Enter maintenance mode and wait until it is activated",
         group="maintenance-mode", permission="admin", gate="confirm", exclusive=True, resumable=True,
         params=[Param("wait", ("--wait",), "accepted for cfy compatibility: the bot always waits", kind="bool",
                       default=True), TIMEOUT],
         gate_text="put manager {manager} into maintenance mode: new executions and most API calls will be "
                   "refused until it is deactivated",
         examples=["maintenance-mode activate", "maintenance activate --timeout 300 -m production"])
def maintenance_activate(ctx: Ctx, args: Args) -> Reply:
    """Answer `maintenance-mode activate`: activate, then wait for `activated`."""
    if not ctx.recall("requested"):
        ctx.remember(requested=True)
        try:
            first = ctx.manager.maintenance_activate()
            ctx.remember(was_off=True)
            ctx.step(f"maintenance mode requested on {ctx.manager_name}: {first.get('status')}")
        except NotModified:
            ctx.step(f"maintenance mode was already on (or activating) on {ctx.manager_name}")
    try:
        state = wait_until_activated(ctx, args.timeout)
    except MaintenanceBlocked as exc:
        if ctx.recall("was_off"):
            try:
                ctx.manager.maintenance_deactivate()
            except NotModified:
                pass
            raise OperationError(f"{exc} The bot took maintenance mode off again so the manager is not left "
                                 "refusing new executions.") from None
        raise
    since = when(state.get("activated_at"), ctx.now())
    return Reply(text=f"{ctx.manager_name} is in maintenance mode (activated {since}).",
                 title=f"Maintenance mode activated on {ctx.manager_name}", tone=Tone.WARNING, public=True)


@command("maintenance-mode deactivate", summary="Leave maintenance mode", group="maintenance-mode",
         permission="admin", gate="confirm", exclusive=True,
         gate_text="take manager {manager} out of maintenance mode: queued executions will start",
         examples=["maintenance-mode deactivate", "maintenance deactivate -m production"])
def maintenance_deactivate(ctx: Ctx, args: Args) -> Reply:
    """Answer `maintenance-mode deactivate`; a 304 is reported as 'already off', not as an error."""
    try:
        ctx.manager.maintenance_deactivate()
    except NotModified:
        return Reply(text=f"{ctx.manager_name} was not in maintenance mode: nothing to do.",
                     title="Already off", public=True)
    return Reply(text=f"{ctx.manager_name} has left maintenance mode.", title="Maintenance mode off",
                 tone=Tone.GOOD, public=True)
