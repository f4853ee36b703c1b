"""`snapshots create`: start the create (or say why the manager is busy), follow it, then copy it off and verify it."""

from __future__ import annotations

from typing import Any

from bot.engine.context import Ctx
from bot.core import Execution, Reply, Table, Tone
from bot.errors import (ArchiveError, BotError, Cancelled, Conflict, CopyKept, ExecutionsRunning,
                        MaintenanceModeActive, ManagerError, ManagerNotFound)
from bot.spec.parser import Args
from bot.spec.registry import Param, command
from commands.archive_copy import copy_fields, copy_off
from commands.common import check_snapshot_id, hint

CREATE_TIMEOUT = 6 * 3600.0  # a legacy snapshot of a big manager takes long; cfy itself waits forever
NEW_FORMAT_ALONGSIDE = (7, 0, 4)  # from this version a --no-legacy create runs alongside other executions


LEGACY = Param("legacy", ("--legacy",), "legacy (pg_dump) format, the default as in cfy 7.0.5: every manager "
               "version restores it, with credentials and certificates; --no-legacy takes the 7.0+ JSON format, "
               "which 7.0.4+ managers run alongside other executions", kind="bool", default=True, negatable=True)


def kept_copy_refusal(ctx: Ctx, sid: str) -> CopyKept | None:
    """Why a new snapshot may not take the id `sid`: the archive keeps a copy under it (a verified copy is never
    overwritten by other content); None when the id is free in the archive."""
    kept = ctx.catalog.get_copy(ctx.manager_name, sid)
    if kept is None:
        return None
    try:
        ctx.manager.get_snapshot(sid)
    except ManagerNotFound:
        pass
    else:
        return None  # the manager has it too: the create is refused by the manager itself ("already exists")
    state = "verified" if kept.verified else "NOT verified"
    taken = f"taken {str(kept.created_at)[:16].replace('T', ' ')} UTC, " if kept.created_at else ""
    return CopyKept(f"the archive keeps a copy of snapshot {sid} of {ctx.manager_name} ({state}, {taken}"
                    f"{kept.location}), and a new snapshot {sid} would have other content: it was not created. "
                    f"Choose another id, or delete that copy first with "
                    f"{hint(ctx, f'snapshots delete {sid} --archive')}.")


def _refuse_a_kept_id(ctx: Ctx, args: Args) -> dict[str, Any]:
    """Before the operation exists: a new snapshot never takes the id of a kept archive copy."""
    if args.snapshot_id and (refusal := kept_copy_refusal(ctx, args.snapshot_id)):
        raise refusal
    return {}


@command("snapshots create", summary="Create a snapshot, follow it, then copy it off the manager and verify it",
         group="snapshots", permission="operator", long_running=True, resumable=True,
         params=[
             Param("snapshot_id", metavar="SNAPSHOT_ID", check=check_snapshot_id,
                   help="the new snapshot's id (default manual-YYYYMMDD-HHMMSS, UTC)"),
             Param("exclude_credentials", ("--exclude-credentials",), "leave the credentials out (legacy format; "
                   "they are included by default)", kind="bool", default=False),
             Param("exclude_logs", ("--exclude-logs",), "leave the logs out", kind="bool", default=False),
             Param("exclude_events", ("--exclude-events",), "leave the events out", kind="bool", default=False),
             Param("queue", ("--queue",), "if other executions are running, queue it instead of failing",
                   kind="bool", default=False),
             LEGACY,
         ],
         description="`legacy` is always sent to the manager explicitly, because its default changed between "
                     "releases. The snapshot is then streamed to the archive and checked (size, zip, "
                     "metadata.json, sha256); `snapshots list` shows which snapshots have a verified copy. An id "
                     "the archive keeps a copy under is refused: a kept copy is never overwritten.",
         prepare=_refuse_a_kept_id,
         examples=["snapshots create", "snapshot create daily-20261129 --queue",
                   "snapshots create --no-legacy --exclude-logs -m staging"])
def snapshots_create(ctx: Ctx, args: Args) -> Reply:
    """Run (or, after a restart, resume) `snapshots create`."""
    sid = ctx.recall("snapshot_id") or args.snapshot_id or ctx.now().strftime("manual-%Y%m%d-%H%M%S")
    eid = ctx.recall("execution_id")
    if not eid:
        resumed = bool(ctx.recall("create_sent"))  # a restarted bot may have sent the PUT already
        ctx.remember(snapshot_id=sid, create_sent=True)
        started = _start_create(ctx, args, sid, resumed)
        if isinstance(started, Reply):
            return started
        eid = started
    final = _follow(ctx, sid, eid)
    if final.status != "terminated":
        return _create_failed(ctx, sid, final)
    snapshot = ctx.manager.get_snapshot(sid)
    if snapshot.get("status") != "created":
        return _create_failed(ctx, sid, Execution("", status=str(snapshot.get("status") or ""),
                                                  error=snapshot.get("error")))
    try:
        row = copy_off(ctx, snapshot)
    except Cancelled as exc:
        raise Cancelled(f"{exc}. Snapshot {sid} was created on {ctx.manager_name}; its copy to the archive was "
                        f"stopped and nothing of it was kept there ({hint(ctx, f'snapshots download {sid}')} copies "
                        "it later).") from None
    except CopyKept as exc:
        return Reply(text=f"Snapshot {sid} was created on {ctx.manager_name}, but is not in the archive: {exc}.",
                     title="Created, not archived", tone=Tone.DANGER, ok=False)
    except (ArchiveError, ManagerError) as exc:
        reason = str(exc)
        again = hint(ctx, f"snapshots download {sid}")
        return Reply(text=f"Snapshot {sid} was created on {ctx.manager_name}, but is not in the archive. "
                          f"{reason[:1].upper() + reason[1:]}\nTry again with {again}.",
                     title="Created, not archived", tone=Tone.DANGER, ok=False)
    return Reply(text=f"Snapshot {sid} created on {ctx.manager_name}, copied off and verified.",
                 title=f"Snapshot {sid}", tone=Tone.GOOD, fields=(("execution", eid), *copy_fields(row)))


def _start_create(ctx: Ctx, args: Args, sid: str, resumed: bool) -> str | Reply:
    """PUT the snapshot; the execution id, or a reply when the manager is busy."""
    fmt = "legacy" if args.legacy else "new (7.0+)"
    try:
        execution = ctx.manager.create_snapshot(
            sid, legacy=bool(args.legacy), include_credentials=not args.exclude_credentials,
            include_logs=not args.exclude_logs, include_events=not args.exclude_events, queue=bool(args.queue))
    except ExecutionsRunning as exc:
        return _busy(ctx, sid, args, exc)
    except Conflict:
        if not resumed:
            raise
        execution = _find_create_execution(ctx, sid)  # the PUT before the restart did go through
    eid = execution.id
    ctx.remember(execution_id=eid)
    ctx.record_execution(eid)
    if execution.status == "queued":
        ctx.step(f"snapshot {sid} is queued on {ctx.manager_name} (execution {eid}): it starts when the running "
                 "executions end; following it")
    else:
        ctx.step(f"creating snapshot {sid} on {ctx.manager_name} in the {fmt} format (execution {eid})")
    return eid


def _find_create_execution(ctx: Ctx, sid: str) -> Execution:
    page = ctx.manager.list_executions(workflow_id="create_snapshot", sort="-created_at", size=100)
    for execution in page.items:
        if execution.parameters.get("snapshot_id") == sid:
            return execution
    raise BotError(f"snapshot {sid} exists on {ctx.manager_name}, but its create_snapshot execution was not found")


def _follow(ctx: Ctx, sid: str, eid: str) -> Execution:
    """Follow the create execution; in maintenance mode (which refuses executions calls) read it with
    X-BYPASS-MAINTENANCE, as a sys-admin may; when even that is refused, watch the snapshot's status instead."""
    try:
        return ctx.follower.follow_execution(ctx, eid, timeout=CREATE_TIMEOUT)
    except Cancelled as exc:
        raise Cancelled(f"{exc}. {_left_behind(ctx, sid)}") from None
    except MaintenanceModeActive:
        ctx.step(f"{ctx.manager_name} is in maintenance mode, which refuses executions calls; reading the create "
                 "execution with X-BYPASS-MAINTENANCE (sys-admin)")
    try:
        return ctx.follower.follow_execution(ctx, eid, timeout=CREATE_TIMEOUT, bypass_maintenance=True)
    except Cancelled as exc:
        raise Cancelled(f"{exc}. {_left_behind(ctx, sid)}") from None
    except MaintenanceModeActive:
        ctx.step(f"{ctx.manager_name} refused X-BYPASS-MAINTENANCE too (the bot's user is not a sys-admin), so "
                 "the create execution cannot be read; watching the snapshot's status instead", Tone.WARNING)
    snapshot = ctx.follower.wait_for_snapshot(ctx, sid, timeout=CREATE_TIMEOUT)
    ok = snapshot.get("status") == "created"
    return Execution(eid, status="terminated" if ok else "failed", error=str(snapshot.get("error") or ""))


def _left_behind(ctx: Ctx, sid: str) -> str:
    """What a cancelled create left on the manager, as the manager says."""
    try:
        status = ctx.manager.get_snapshot(sid).get("status")
    except ManagerNotFound:
        return f"{ctx.manager_name} has no snapshot {sid}."
    except ManagerError as exc:
        return f"Snapshot {sid} could not be read on {ctx.manager_name}: {exc}"
    if status == "failed":
        return f"Snapshot {sid} is failed on {ctx.manager_name}; {hint(ctx, f'snapshots delete {sid}')} removes it."
    return f"Snapshot {sid} is {status} on {ctx.manager_name}; it was not copied to the archive."


def _create_failed(ctx: Ctx, sid: str, execution: Execution) -> Reply:
    why = ctx.follower.describe_failure(execution)
    return Reply(text=f"Snapshot {sid} failed on {ctx.manager_name}: {why}", title=f"Snapshot {sid} failed",
                 tone=Tone.DANGER, fields=(("execution", execution.id), ("status", execution.status)), ok=False)


def _busy(ctx: Ctx, sid: str, args: Args, exc: ExecutionsRunning) -> Reply:
    """What is running, and what to do about it."""
    ids = list(getattr(exc, "execution_ids", []) or [])
    found = _executions(ctx, ids[:10])
    rows = []
    for eid in ids[:10]:
        e = found.get(eid)
        rows.append((eid, e.workflow_id or "", e.deployment_id or "-", e.status) if e else
                    (eid, "?", "?", "(not visible to the bot's user)"))
    hint = "Run it again with --queue to start it as soon as they end"
    if args.legacy and _version(ctx) >= NEW_FORMAT_ALONGSIDE:
        hint += ", or with --no-legacy (this manager runs new-format snapshots alongside other executions)"
    what = f"{len(ids)} other executions are" if len(ids) != 1 else "another execution is"
    listed = ", ".join(ids[:10]) + (f" and {len(ids) - 10} more" if len(ids) > 10 else "")
    text = (f"{ctx.manager_name} is busy: snapshot {sid} was not created because {what} running ({listed}). "
            f"{hint}." if ids else f"{ctx.manager_name} is busy: {exc}. {hint}.")
    return Reply(text=text, title="Manager busy", tone=Tone.WARNING, ok=False,
                 table=Table(("execution", "workflow", "deployment", "status"), tuple(rows)) if rows else None)


def _executions(ctx: Ctx, ids: list[str]) -> dict[str, Execution]:
    """The executions with these ids, in every tenant (the manager names running ones of any tenant)."""
    if not ids:
        return {}
    try:
        page = ctx.manager.list_executions(id=ids, _all_tenants=True, size=len(ids))
    except ManagerError:
        return {}
    return {e.id: e for e in page.items if e.id in ids}


def _version(ctx: Ctx) -> tuple[int, ...]:
    try:
        return tuple(ctx.manager.server_version())
    except ManagerError:
        return ()

