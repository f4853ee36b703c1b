"""Following a Cloudify execution: poll its status, stream its events as progress, return how it ended.

Shared by `snapshots create`, the daily job and the restore flow. Polling starts at about one second and
backs off to a few seconds while nothing happens (and comes back to one second when something does); events
and logs are read incrementally (the offset only advances, nothing is read twice); a short loss of contact
with the manager is ridden out rather than failing an operation whose execution keeps running.

Each poll is a step boundary: a `cancel` of the operation (from any bot process) is seen within one poll interval
(at most MAX_INTERVAL seconds). Cancelled while following its own execution, the operation asks the manager to
cancel that execution (`POST /executions/<id> {"action": "cancel"}`, as `cfy executions cancel` does) and waits up
to CANCEL_WAIT for it to end, then says how it ended.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.errors import Cancelled, ManagerError, ManagerUnreachable, OperationError
from bot.redact import redact_text
from bot.core import Execution, Tone, age

if TYPE_CHECKING:  # the context names ExecutionTimeout, so it imports this module
    from bot.engine.context import Ctx

FINAL = ("terminated", "failed", "cancelled")
FIRST_INTERVAL = 1.0  # cfy polls every second
MAX_INTERVAL = 5.0  # "a few seconds" once nothing has happened for a while
BACKOFF = 1.5
EVENT_PAGE = 100  # what the cfy CLI asks for per events request
MAX_LINES_PER_POLL = 50  # more new lines than this in one poll are summed up, to spare the Slack thread
UNREACHABLE_GRACE = 300.0  # seconds of lost contact tolerated while following
SNAPSHOT_FINAL = ("created", "failed", "uploaded")
CANCEL_WAIT = 60.0  # seconds to wait for an execution the bot asked to cancel to end (the simulator's take 1 s)


class ExecutionTimeout(OperationError):
    """An execution did not end within the time the bot was willing to follow it (it keeps running)."""


def describe_failure(execution: Execution) -> str:
    """Why an execution did not succeed: the last line of its traceback, else its status."""
    lines = [ln.strip() for ln in (execution.error or "").strip().splitlines() if ln.strip()]
    if lines:
        return lines[-1]
    status = execution.status or "unknown"
    return f"the execution ended {status}" if status != "cancelled" else "the execution was cancelled"


def event_line(event: dict[str, Any]) -> tuple[str, Tone] | None:
    """One event or log as (text, tone); None for debug logs, which are not worth a thread reply."""
    message = event.get("message")
    if isinstance(message, dict):
        message = message.get("text")
    text = str(message or "").strip()
    if event.get("type") == "cloudify_log":
        level = str(event.get("level") or "info").lower()
        if level == "debug":
            return None
        tone = {"error": Tone.DANGER, "warning": Tone.WARNING}.get(level, Tone.INFO)
        return (f"{level}: {text}" if level != "info" else text), tone
    kind = str(event.get("event_type") or "")
    tone = {"workflow_failed": Tone.DANGER, "workflow_succeeded": Tone.GOOD,
            "workflow_cancelled": Tone.WARNING}.get(kind, Tone.INFO)
    return text, tone


def read_new_events(ctx: Ctx, execution_id: str, offset: int, *, include_logs: bool = True,
                    bypass_maintenance: bool = False) -> tuple[int, int]:
    """Report every event after `offset` as a step; (the new offset, how many new events there were)."""
    secrets = ctx.audit_log.secrets
    lines: list[tuple[str, Tone]] = []
    start = offset
    while True:
        page = ctx.manager.list_events(execution_id, offset=offset, size=EVENT_PAGE, include_logs=include_logs,
                                       bypass_maintenance=bypass_maintenance)
        for event in page.items:
            line = event_line(event)
            if line is not None:
                lines.append(line)
        offset += len(page.items)
        if len(page.items) < EVENT_PAGE or offset >= page.total:
            break
    for text, tone in lines[:MAX_LINES_PER_POLL]:
        ctx.step(redact_text(text, secrets), tone)
    if len(lines) > MAX_LINES_PER_POLL:
        ctx.step(f"… and {len(lines) - MAX_LINES_PER_POLL} more log lines of execution {execution_id}")
    return offset, offset - start


def follow_execution(ctx: Ctx, execution_id: str, *, timeout: float | None = None, include_logs: bool = True,
                     interval: float = FIRST_INTERVAL, max_interval: float = MAX_INTERVAL,
                     bypass_maintenance: bool = False) -> Execution:
    """Poll execution `execution_id` until it ends, reporting status changes and events; the final execution.
    `bypass_maintenance` reads past maintenance mode with X-BYPASS-MAINTENANCE (a sys-admin may)."""
    clock = ctx.clock
    began = clock.monotonic()
    offset, delay = 0, interval
    status: str | None = None
    lost_since: float | None = None
    while True:
        try:
            ctx.check_cancel()
        except Cancelled as exc:
            _cancel_execution(ctx, execution_id, exc)
        try:
            execution = ctx.manager.get_execution(execution_id, bypass_maintenance=bypass_maintenance)
            offset, new = read_new_events(ctx, execution_id, offset, include_logs=include_logs,
                                          bypass_maintenance=bypass_maintenance)
        except ManagerUnreachable as exc:
            lost_since = _lost_contact(ctx, exc, lost_since)
            delay = min(delay * BACKOFF, max_interval)
            clock.sleep(delay)
            continue
        if lost_since is not None:
            ctx.step(f"{ctx.manager_name} answers again")
            lost_since = None
        changed = execution.status != status
        status = execution.status
        if changed:
            _report_status(ctx, execution)
        if execution.final:
            return execution
        waited = clock.monotonic() - began
        if timeout is not None and waited >= timeout:
            raise ExecutionTimeout(
                f"gave up following execution {execution_id} ({execution.workflow_id}) on "
                f"{ctx.manager_name} after {age(waited)}: it is still {status} there and keeps running "
                "(the bot did not cancel it)")
        delay = interval if (changed or new) else min(delay * BACKOFF, max_interval)
        clock.sleep(delay)


def _cancel_execution(ctx: Ctx, execution_id: str, why: Cancelled) -> None:
    """The operation was cancelled while its execution runs: cancel the execution too, wait for its end (at most
    CANCEL_WAIT), and raise Cancelled saying how it ended."""
    where = ctx.manager_name
    ctx.step(f"{why}: asking {where} to cancel execution {execution_id}", Tone.WARNING)
    try:
        ctx.manager.execution_action(execution_id, "cancel")
    except ManagerError as exc:
        try:
            status = ctx.manager.get_execution(execution_id).status
        except ManagerError:
            status = "unknown"
        if status in FINAL:
            raise Cancelled(f"{why}; execution {execution_id} had already ended {status} on {where}") from None
        raise Cancelled(f"{why}; {where} refused to cancel execution {execution_id} ({exc}): it is {status} "
                        f"there; {_typed(ctx, f'executions cancel {execution_id}')} tries again") from None
    clock = ctx.clock
    began, delay = clock.monotonic(), FIRST_INTERVAL
    status = "cancelling"
    while clock.monotonic() - began < CANCEL_WAIT:
        clock.sleep(delay)
        delay = min(delay * BACKOFF, MAX_INTERVAL)
        try:
            status = ctx.manager.get_execution(execution_id).status
        except ManagerUnreachable:
            continue
        if status == "cancelled":
            raise Cancelled(f"{why}; execution {execution_id} was cancelled on {where}")
        if status in FINAL:
            raise Cancelled(f"{why}; execution {execution_id} ended {status} on {where} before the cancel took "
                            "effect")
    raise Cancelled(f"{why}; execution {execution_id} was asked to cancel on {where} and is still {status} after "
                    f"{age(CANCEL_WAIT)}; {_typed(ctx, f'executions get {execution_id}')} shows how it ends")


def _typed(ctx: Ctx, command: str) -> str:
    """`command` as it runs against this operation's manager: `-m NAME` when it is not the default one."""
    managers = ctx.settings.managers
    default = managers[0].name if managers else ctx.manager_name
    return f"`{command}`" if ctx.manager_name == default else f"`{command} -m {ctx.manager_name}`"


def _lost_contact(ctx: Ctx, exc: ManagerUnreachable, since: float | None) -> float:
    now = ctx.clock.monotonic()
    if since is None:
        ctx.step(f"lost contact with {ctx.manager_name} while following the execution ({exc}); still trying",
                 Tone.WARNING)
        return now
    if now - since > UNREACHABLE_GRACE:
        raise ManagerUnreachable(f"{exc} (no answer for {age(now - since)} while following the execution; it may "
                                 "still be running on the manager)", manager=exc.manager, status=exc.status)
    return since


def _report_status(ctx: Ctx, execution: Execution) -> None:
    status = execution.status
    eid, workflow = execution.id, execution.workflow_id
    text = {
        "queued": f"execution {eid} ({workflow}) is queued: it starts when the running executions end "
                  "(and maintenance mode is off)",
        "pending": f"execution {eid} ({workflow}) is pending: waiting for the management worker",
        "started": f"execution {eid} ({workflow}) started",
        "terminated": f"execution {eid} ({workflow}) finished",
        "failed": f"execution {eid} ({workflow}) failed: {describe_failure(execution)}",
        "cancelled": f"execution {eid} ({workflow}) was cancelled",
    }.get(str(status), f"execution {eid} ({workflow}) is {status}")
    tone = {"terminated": Tone.GOOD, "failed": Tone.DANGER, "cancelled": Tone.WARNING}.get(str(status), Tone.INFO)
    ctx.step(text, tone)


def wait_for_snapshot(ctx: Ctx, snapshot_id: str, *, timeout: float | None = None,
                      interval: float = FIRST_INTERVAL, max_interval: float = MAX_INTERVAL) -> dict[str, Any]:
    """Poll a snapshot until it is created or failed (for when executions cannot be read, e.g. maintenance)."""
    clock = ctx.clock
    began, delay = clock.monotonic(), interval
    while True:
        snapshot: dict[str, Any] = ctx.manager.get_snapshot(snapshot_id)
        if snapshot.get("status") in SNAPSHOT_FINAL:
            return snapshot
        try:
            ctx.check_cancel()
        except Cancelled as exc:
            raise Cancelled(f"{exc}; snapshot {snapshot_id} is still {snapshot.get('status')} on {ctx.manager_name}: "
                            "the bot stopped waiting for it and did not cancel its creation there") from None
        waited = clock.monotonic() - began
        if timeout is not None and waited >= timeout:
            raise ExecutionTimeout(f"gave up waiting for snapshot {snapshot_id} on {ctx.manager_name} after "
                                   f"{age(waited)}: it is still {snapshot.get('status')}")
        delay = min(delay * BACKOFF, max_interval)
        clock.sleep(delay)


class ExecutionFollower:
    """The `Follower` port of bot.engine.context: what commands may call of this module."""

    def follow_execution(self, ctx: Ctx, execution_id: str, *, timeout: float | None = None,
                         bypass_maintenance: bool = False) -> Execution:
        """Poll the execution until it ends, reporting status changes and events; the final execution."""
        return follow_execution(ctx, execution_id, timeout=timeout, bypass_maintenance=bypass_maintenance)

    def wait_for_snapshot(self, ctx: Ctx, snapshot_id: str, *, timeout: float | None = None) -> dict[str, Any]:
        """Poll a snapshot until it is created or failed; ExecutionTimeout after `timeout` seconds."""
        return wait_for_snapshot(ctx, snapshot_id, timeout=timeout)

    def describe_failure(self, execution: Execution) -> str:
        """Why an execution did not succeed, in one line."""
        return describe_failure(execution)
