"""The restore's later phases: watch through the outage, read the result, scheduled executions, deactivate."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from bot.engine.context import ContentUnreadable, Ctx, ManagerAPI
from bot.core import ArchiveCopy, Execution, Operation, ProgressEvent, Tone, age
from bot.errors import (
    AuthenticationFailed,
    BadResponse,
    BotError,
    ManagerError,
    ManagerNotFound,
    MaintenanceModeActive,
    ManagerUnreachable,
    NotModified,
    ServerError,
    ArchiveError,
)
from commands.archive_copy import need_archive
from commands.common import count, hint, parse_time

ACTIVE = ("pending", "started", "cancelling", "force_cancelling", "kill_cancelling")
FINAL = ("terminated", "failed", "cancelled")
OUTAGE = (ManagerUnreachable, ServerError, BadResponse, AuthenticationFailed)
WATCH_LIMIT = 6 * 3600.0  # a restore of a large manager takes long; past this the bot says so and stops
AUTH_GRACE = 180.0  # 401s are expected while services restart; only after this are credentials called changed


class CredentialsRejected(BotError):
    """The manager accepts neither the configured password nor the fallback (yet)."""


def watch_restore(ctx: Ctx, execution_id: str) -> tuple[ManagerAPI, Execution]:
    """Poll snapshot-status until the restore is over, tolerating the outage; returns (client, execution)."""
    client = ctx.manager
    began = ctx.clock.monotonic()
    outage_since: float | None = None
    rejected_since: float | None = None
    seen_running = False
    delay = 1.0
    while True:
        try:
            state = client.snapshot_status()
        except OUTAGE as exc:
            if outage_since is None:
                outage_since = ctx.clock.monotonic()
                ctx.step(f"the manager's API is unavailable ({_short(exc)}): expected while a restore restarts "
                         "its services; still watching", tone=Tone.WARNING)
            state = "unreachable"
        else:
            if outage_since is not None:
                down = ctx.clock.monotonic() - outage_since
                ctx.step(f"the manager's API is back after {age(down)}")
                outage_since = None
                back = ctx.now()  # journaled: the reboot check tells a reboot from the restore's own restarts
                ctx.remember(outages=[*(ctx.recall("outages") or []),
                                      [(back - timedelta(seconds=down)).isoformat(), back.isoformat()]])
            if state == "running" and not seen_running:
                seen_running = True
                ctx.step("the restore is running (snapshot-status: running)")
            if state == "not-running":
                client, execution, rejected_since = _read_when_idle(ctx, client, execution_id, rejected_since)
                if execution is not None and execution.final:
                    ctx.remember(final_status=execution.status)
                    return client, execution
        if ctx.clock.monotonic() - began > WATCH_LIMIT:
            raise BotError(f"the restore on {ctx.manager_name} has not finished after {age(WATCH_LIMIT)}; "
                           f"check {hint(ctx, 'snapshots status')} and execution {execution_id}; the manager is "
                           "still in "
                           "maintenance mode")
        ctx.clock.sleep(delay)
        delay = min(delay * 1.5, 5.0)


REBOOT_WAIT = 900.0  # how long the bot waits for the manager to answer again after the reboot
REBOOT_QUIET = 60.0  # answering this long after the restore ended, never seen down: no reboot seen


def await_reboot(ctx: Ctx, client: ManagerAPI, execution: Execution) -> str:
    """After a legacy restore with --restore-certificates and without --no-reboot the manager reboots a few
    seconds after the restore ends (reference §2.7). Whether it went down and answered again, read back: an
    outage the watch saw after the execution ended, or one seen here, then an authenticated read of its version.
    The report's line; BotError when it does not answer again within REBOOT_WAIT."""
    ended = parse_time(execution.ended_at) or ctx.now()
    went_down: datetime | None = None
    came_back: datetime | None = None
    for start, end in ctx.recall("outages") or []:
        began_at, back_at = parse_time(start), parse_time(end)
        if began_at is not None and began_at >= ended:
            went_down, came_back = went_down or began_at, back_at
    began, delay, last_error = ctx.clock.monotonic(), 1.0, ""
    while True:
        try:
            version = str(client.version().get("version") or "?")
        except OUTAGE as exc:
            last_error = _short(exc)
            if went_down is None or came_back is not None:  # a new outage
                went_down, came_back = ctx.now(), None
                ctx.step(f"{ctx.manager_name} does not answer after the restore ({last_error}): the reboot; "
                         "waiting for it to answer again", tone=Tone.WARNING)
        else:
            now = ctx.now()
            if went_down is not None:
                back = came_back or now
                return (f"{ctx.manager_name} stopped answering (first seen {_hms(went_down)} UTC, "
                        f"{age((went_down - ended).total_seconds())} after the restore ended: the reboot) and "
                        f"answered again {_hms(back)} UTC (version {version} read back {_hms(now)} UTC)")
            if (now - ended).total_seconds() >= REBOOT_QUIET:
                return (f"not seen: {ctx.manager_name} answered every read the bot made from the end of the restore to "
                        f"{_hms(now)} UTC ({age((now - ended).total_seconds())}; version {version}), so whether it "
                        "has rebooted is not known")
        if ctx.clock.monotonic() - began > REBOOT_WAIT:
            raise BotError(f"the restore ended terminated, but {ctx.manager_name} has not answered again after "
                           f"the reboot: not in the {age(REBOOT_WAIT)} the bot waited since it stopped answering "
                           f"(first seen {_hms(went_down or ended)} UTC; last: {last_error}). It is still in "
                           f"maintenance mode; check the VM, then run {hint(ctx, 'maintenance-mode deactivate')}")
        ctx.clock.sleep(delay)
        delay = min(delay * 1.5, 5.0)


def _hms(when: datetime) -> str:
    return when.strftime("%H:%M:%S")


def _read_when_idle(ctx: Ctx, client: ManagerAPI, execution_id: str,
                    rejected_since: float | None) -> tuple[ManagerAPI, Execution | None, float | None]:
    """Read the execution once no restore runs; rejected credentials give None (keep watching) until they have
    been rejected for AUTH_GRACE. Returns (client, execution, when the rejections began)."""
    try:
        client, execution = read_execution(ctx, client, execution_id)
    except CredentialsRejected:
        rejected_since = rejected_since if rejected_since is not None else ctx.clock.monotonic()
        if ctx.clock.monotonic() - rejected_since >= AUTH_GRACE:
            raise
        return client, None, rejected_since
    return client, execution, rejected_since


def _short(exc: BaseException) -> str:
    return str(exc).split(": ", 1)[-1][:120]


def read_execution(ctx: Ctx, client: ManagerAPI, execution_id: str) -> tuple[ManagerAPI, Execution]:
    """Read the execution (bypassing maintenance mode); after a credential reset, try the fallback password.

    The maintenance gate runs before authentication, so with credentials the manager no longer accepts, the
    bypass is refused with a 503 instead of a 401: both mean "try the fallback".
    """
    try:
        return client, client.get_execution(execution_id, bypass_maintenance=True)
    except (AuthenticationFailed, MaintenanceModeActive):
        pass
    fallback = ctx.settings.manager(ctx.manager_name).fallback_password
    if not fallback:
        raise CredentialsRejected(
            f"{ctx.manager_name} now rejects the configured password: a legacy restore brings back the admin "
            "credentials stored in the snapshot. Set CLOUDIFY_FALLBACK_PASSWORD (the snapshot's admin password) "
            f"or update CLOUDIFY_PASSWORD, then check {hint(ctx, 'snapshots status')} and execution {execution_id}. "
            "The manager is still in maintenance mode.")
    other = client.with_password(fallback)
    try:
        execution = other.get_execution(execution_id, bypass_maintenance=True)
    except (AuthenticationFailed, MaintenanceModeActive):
        raise CredentialsRejected(f"{ctx.manager_name} rejects both the configured password and "
                                  "CLOUDIFY_FALLBACK_PASSWORD after the restore; log in on the manager to reset "
                                  "the admin password") from None
    ctx.step(f"{ctx.manager_name} now accepts CLOUDIFY_FALLBACK_PASSWORD, not CLOUDIFY_PASSWORD: the restore "
             "brought back the admin credentials stored in the snapshot. Update CLOUDIFY_PASSWORD for this "
             "manager.", tone=Tone.WARNING)
    ctx.audit("credentials", change="the manager now accepts the fallback password")
    return other, execution


def kill_stray_restores(ctx: Ctx, snapshot_id: str, adopt: bool) -> str:
    """Find this snapshot's restore executions: adopt ours after a restart, or kill the stray pending ones."""
    page = ctx.manager.list_executions(include_system=True, workflow_id="restore_snapshot", size=100,
                                       bypass_maintenance=True)
    since = parse_time(ctx.op.created_at if ctx.op else None)
    mine = [e for e in page.items if e.parameters.get("snapshot_id") == snapshot_id]
    if adopt:
        ours = [e for e in mine if since is None or (parse_time(e.created_at) or since) >= since]
        if ours:
            ctx.step(f"found the restore execution {ours[-1].id} started before the restart; following it")
            return ours[-1].id
        return ""
    killed = []
    for e in mine:
        if e.status == "pending":
            ctx.manager.execution_action(e.id, "kill", bypass_maintenance=True)
            ctx.step(f"killed the stray pending restore execution {e.id} the manager left behind")
            killed.append(e.id)
    return ", ".join(killed)


def report_schedules(ctx: Ctx, client: ManagerAPI, execution: Execution, before: list[Execution]) -> str:
    """Which scheduled executions the restore marked FAILED (overdue) and which it kept, with their times."""
    failed: list[Execution] = []
    kept: list[Execution] = []
    gone: list[Execution] = []
    status: dict[str, str] = {}
    if before:
        try:
            page = client.list_executions(include_system=True, id=[e.id for e in before], size=len(before),
                                          _all_tenants=True, bypass_maintenance=True)
            status = {e.id: e.status for e in page.items}
        except ManagerError as exc:
            ctx.step(f"could not read the scheduled executions after the restore: {exc}", tone=Tone.WARNING)
            return "unknown (could not read them)"
    for item in before:
        if item.id not in status:
            gone.append(item)
        else:
            (failed if status[item.id] == "failed" else kept).append(item)
    logged = _report_logs(ctx, client, execution)
    restored_at = parse_time(execution.started_at or execution.created_at) or ctx.now()
    overdue = [e for e in failed if (parse_time(e.scheduled_for) or restored_at) <= restored_at]
    later = [e for e in failed if e not in overdue]
    known = {e.id for e in before}
    restored = {eid: due for eid, due in logged.items() if eid not in known}  # rows from the snapshot's own data
    for label, items, tone in (("marked FAILED: it was overdue", overdue, Tone.WARNING),
                               ("marked FAILED although it was due later; the manager re-creates such runs as an "
                                "execution schedule (`<workflow>_restored_…`)", later, Tone.WARNING),
                               ("kept scheduled", kept, Tone.INFO), ("gone after the restore", gone, Tone.INFO)):
        lines = [f"scheduled execution {e.id} ({e.workflow_id} on {e.deployment_id}, due "
                 f"{e.scheduled_for}): {label}" for e in items]
        if lines:  # one thread message per group (issue 14's Slack budget), one line per execution
            ctx.step("\n".join(lines), tone=tone)
    parts = [f"{len(overdue)} overdue marked FAILED", f"{len(kept)} kept scheduled"]
    parts += [f"{len(later)} later ones marked FAILED and re-scheduled"] if later else []
    parts += [f"{len(gone)} gone"] if gone else []
    if restored:
        late = sum(1 for due in restored.values() if (parse_time(due) or restored_at) <= restored_at)
        from_snapshot = (f"{len(restored)} from the snapshot's data marked FAILED by the restore ({late} overdue, "
                         f"{len(restored) - late} due later)")
        return ", ".join(parts + [from_snapshot]) if before else f"none were scheduled before; {from_snapshot}"
    return ", ".join(parts) if before else "none were scheduled"


def report_cancelled(ctx: Ctx, client: ManagerAPI, restored: bool = True) -> str:
    """What became of each execution the bot cancelled before the restore (read back from the manager), and
    what it takes to re-create those the restore did not bring back (from the journal)."""
    journaled = [Execution.from_wire(record) for record in ctx.recall("cancelled") or []]
    if not journaled:
        return "none"
    lost: list[str] = []
    lines: list[str] = []
    worst = Tone.INFO
    again = _restored_schedules(ctx, client)
    for e in journaled:
        what = (f"{e.workflow_id}" + (f" on {e.deployment_id}" if e.deployment_id else "")
                + f", tenant {e.tenant or '?'}")
        try:
            now = client.get_execution(e.id, tenant=e.tenant or None, bypass_maintenance=True)
            state = now.status or "?"
        except ManagerNotFound:
            state = "gone (not in the restored data)"
        except ManagerError as exc:
            state = f"unknown (could not read it: {exc})"
        schedule = again.get((str(e.workflow_id), e.deployment_id or "", str(parse_time(e.scheduled_for) or "")))
        if schedule:  # 6.0+ legacy restore: marked FAILED, and re-created as a one-off execution schedule
            state += f"; re-created by the restore as execution schedule {schedule}"
        lines.append(f"execution {e.id} ({what}), cancelled by the bot before the restore: now {state}")
        worst = worst if state in ("scheduled", "queued") or schedule else Tone.WARNING
        if state not in ("scheduled", "queued", "pending", "started") and not schedule:
            due = f", due {e.scheduled_for}" if e.scheduled_for else ""
            params = dict(e.parameters)
            lines.append(f"to re-create {e.id}: run workflow {e.workflow_id}"
                         + (f" on deployment {e.deployment_id}" if e.deployment_id else "")
                         + f" in tenant {e.tenant or '?'}{due}"
                         + (f" with parameters {params}" if params else " (no parameters)"))
            lost.append(e.id)
    ctx.step("\n".join(lines), tone=worst)  # one thread message for all of them (issue 14's Slack budget)
    n = len(journaled)
    if not lost:
        return f"{n} cancelled by the bot, all back (scheduled again, or re-created as execution schedules)"
    if not restored:
        return f"{n} cancelled by the bot; {len(lost)} still gone, as nothing was restored ({', '.join(lost)}; " \
               f"{listed(ctx)})"
    return f"{n} cancelled by the bot; {len(lost)} not brought back by the restore ({', '.join(lost)}; {listed(ctx)})"


def listed(ctx: Ctx) -> str:
    """Where the report's details are, for the transport the command came through: the operation's thread in
    Slack, the lines printed above the report in the terminal (which has no thread)."""
    return "in the thread" if ctx.inv.transport == "slack" else "listed above"


def report_content(ctx: Ctx, client: ManagerAPI, execution: Execution, snapshot_id: str,
                   copy: ArchiveCopy | None) -> tuple[str, bool]:
    """A new-format restore only logs per-entity conflicts, so its result is read back: the tenants, blueprints,
    deployments, secrets and plugins the snapshot holds (its archive copy's dumps) against what the manager now
    lists (all tenants, read past maintenance mode). (the report's line, whether anything is missing)."""
    errors = _logged_errors(ctx, client, execution)
    if copy is None:
        return (f"not compared: the bot has no archive copy of {snapshot_id}, so it cannot read what the snapshot "
                f"holds; only the restore's own log ({listed(ctx)}) names entities it could not restore"), False
    try:
        with need_archive(ctx).local_copy(copy) as path:
            expected = ctx.drills.snapshot_content(path)
    except (ContentUnreadable, ArchiveError) as exc:
        return f"not compared: {exc}", False
    try:
        actual = ctx.drills.manager_content(client, None, bypass_maintenance=True)
    except ManagerError as exc:
        return f"not compared: the bot could not list what {ctx.manager_name} has ({exc})", False
    check = ctx.drills.restore_check(expected, actual, ctx.manager_name)
    problems = list(check.missing)
    lines = list(check.tenant_lines) + problems[:20] + (
        [f"… and {len(problems) - 20} more missing or different"] if len(problems) > 20 else [])
    if lines:  # one thread message (issue 14's Slack budget)
        ctx.step("\n".join(lines), tone=Tone.DANGER if problems else Tone.INFO)
    held = (f"the snapshot holds {ctx.drills.counts_text(check.snapshot)}; {ctx.manager_name} has "
            f"{ctx.drills.counts_text(check.manager)}")
    extra = f"; {count(check.extra, 'entity', 'entities')} on {ctx.manager_name} not in the snapshot" \
        if check.extra else ""
    if problems:
        return (f"{held}: {count(len(problems), 'entity', 'entities')} of the snapshot missing or different after "
                f"the restore ({listed(ctx)}){extra}"), True
    if errors:  # reference §2.7: an entity that was already there is not replaced; the restore logs an error
        return (f"{held}: each of the snapshot's is there by name, but the restore logged "
                f"{count(errors, 'error')} ({listed(ctx)}): an entity that was already on {ctx.manager_name} keeps "
                f"its own content, not the snapshot's{extra}"), False
    if errors is None:
        return (f"{held}: each of the snapshot's is there by name (the restore's log could not be read, so "
                f"whether some were already there and kept their own content is not known){extra}"), False
    return f"{held}: each of the snapshot's is there, and the restore logged no error{extra}", False


def _logged_errors(ctx: Ctx, client: ManagerAPI, execution: Execution) -> int | None:
    """How many errors the restore logged (where a new-format restore reports each entity it could not restore);
    None when its log cannot be read."""
    try:
        return int(client.list_events(execution.id, size=1, level="error", bypass_maintenance=True).total)
    except ManagerError:
        return None


def _restored_schedules(ctx: Ctx, client: ManagerAPI) -> dict[tuple[str, str, str], str]:
    """The `<workflow>_restored_<hex>` execution schedules a 6.0+ legacy restore made, by (workflow, deployment,
    due time): those scheduled executions are back, as schedules."""
    try:
        page = client.list_execution_schedules(size=1000, _all_tenants=True, bypass_maintenance=True)
    except ManagerError as exc:
        ctx.step(f"could not read the execution schedules after the restore: {exc}", tone=Tone.WARNING)
        return {}
    found: dict[tuple[str, str, str], str] = {}
    for s in page.items:
        sid, workflow = str(s.get("id") or ""), str(s.get("workflow_id") or "")
        if sid.startswith(f"{workflow}_restored_"):
            found[(workflow, str(s.get("deployment_id") or ""), str(parse_time(s.get("since")) or ""))] = sid
    return found


# The legacy restore's warning for each `scheduled` execution it marks failed (reference §6): 6.0+, then 5.1-5.2.
MARKED_FAILED = re.compile(r"(?:Marking original execution|Execution) (?P<id>\S+) scheduled for (?P<due>\S+?)"
                           r"(?: is overdue\.)? (?:as FAILED|Marking as FAILED)\.")


def _report_logs(ctx: Ctx, client: ManagerAPI, execution: Execution) -> dict[str, str]:
    """Warnings and errors the restore logged (per-entity failures appear only there); the scheduled executions
    it says it marked FAILED (id -> when each was due)."""
    try:
        page = client.list_events(execution.id, size=1000, bypass_maintenance=True)
    except ManagerError as exc:
        ctx.step(f"could not read the restore's log: {exc}", tone=Tone.WARNING)
        return {}
    problems = [ev for ev in page.items if ev.get("level") in ("warning", "error")]
    if problems:  # one thread message for the restore's log (issue 14's Slack budget), a line per entry
        shown = [f"restore log {ev.get('level')}: {str(ev.get('message'))[:300]}" for ev in problems[:20]]
        extra = len(problems) - len(shown)
        more = [f"… and {extra} more warnings or errors in the restore's log"] if extra else []
        ctx.step("\n".join(shown + more),
                 tone=Tone.DANGER if any(ev.get("level") == "error" for ev in problems) else Tone.WARNING)
    marked = (MARKED_FAILED.search(str(ev.get("message") or "")) for ev in problems)
    return {m["id"]: m["due"] for m in marked if m}


def deactivate_after(ctx: Ctx, client: ManagerAPI, ok: bool, before: str) -> str:
    """Leave maintenance mode after success; after a failure only through a gate (a follow-up operation)."""
    if before != "deactivated":
        ctx.step(f"maintenance mode was already {before} before the restore; it is left on")
        return f"left on (it was {before} before)"
    if ok:
        try:
            client.maintenance_deactivate()
        except NotModified:
            return "was already off"
        ctx.step(f"{ctx.manager_name} has left maintenance mode", tone=Tone.GOOD)
        return "deactivated"
    if ctx.recall("deactivate_op"):
        return f"still ON; deactivation waits for confirmation ({ctx.recall('deactivate_op')})"
    op = open_followup_gate(ctx, "maintenance-mode deactivate")
    ctx.remember(deactivate_op=op.id)
    return f"still ON after the failed restore; deactivation waits for confirmation ({op.id})"


def open_followup_gate(ctx: Ctx, kind: str) -> Operation:
    """Create a gated operation for the same requester and show its card in this operation's thread."""
    op = ctx.engine.open_gate(ctx, kind)
    text = (f"The restore failed, so maintenance mode stays ON on {ctx.manager_name}. Confirm to take it out of "
            f"maintenance mode (operation {op.id}), or investigate first.")
    ctx.audit("gate_shown", gate="confirm", text=text, followup=op.id)
    ctx.sink.emit(ProgressEvent(ctx.op.id if ctx.op else op.id, "gate", text, Tone.WARNING, ctx.now(),
                                {"gate": "confirm", "operation": op.id}))
    return op
