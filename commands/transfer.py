"""Snapshots that move: `create` (follow, then copy off and verify), `download`, `upload`, `delete`."""

from __future__ import annotations

from typing import Any

from bot.context import Ctx
from bot.core import Reply, Table
from bot.errors import (
    ArchiveError,
    BotError,
    Conflict,
    ExecutionsRunning,
    MaintenanceModeActive,
    ManagerError,
    ManagerNotFound,
    NotFound,
    UsageError,
)
from bot.flows import describe_failure, follow_execution, wait_for_snapshot
from bot.parser import Args
from bot.registry import Param, command
from bot.render import size
from commands.common import SNAPSHOT_ID, check_snapshot_id, last_line, when

CREATE_TIMEOUT = 6 * 3600.0  # a legacy snapshot of a big manager takes long; cfy itself waits forever
NEW_FORMAT_ALONGSIDE = (7, 0, 4)  # from this version a --no-legacy create runs alongside other executions
URL_SCHEMES = ("http://", "https://", "ftp://")


def _check_url(value: str) -> str | None:
    if not value.lower().startswith(URL_SCHEMES):
        return f"{value!r} is not a URL the manager can fetch (http://, https:// or ftp://)"
    return None


def _archive(ctx: Ctx) -> Any:
    if ctx.archive is None:
        raise ArchiveError("no archive is configured (BOT_ARCHIVE_DIR or BOT_ARCHIVE_URL)")
    return ctx.archive


def _short(sha: str | None) -> str:
    return (sha or "")[:12] + "…" if sha else "?"


# --- copying off the manager (create and download) ------------------------------------------------------


def _progress(ctx: Ctx, snapshot_id: str) -> Any:
    """A download progress callback that reports each quarter (or every 256 MiB when the size is unknown)."""
    marks = {"next": 1}

    def report(received: int, total: int | None) -> None:
        if total:
            quarter = received * 4 // total
            if 1 <= quarter < 4 and quarter >= marks["next"]:
                marks["next"] = quarter + 1
                ctx.step(f"{snapshot_id}: {quarter * 25}% ({size(received)} of {size(total)})")
        elif received >= marks["next"] * (256 << 20):
            marks["next"] += 1
            ctx.step(f"{snapshot_id}: {size(received)} so far")

    return report


def _manager_version(ctx: Ctx) -> str:
    try:
        return str(ctx.manager.version().get("version") or "")
    except ManagerError:
        return ""


def copy_off(ctx: Ctx, snapshot: dict[str, Any]) -> dict[str, Any]:
    """Stream a created snapshot into the archive, verified and recorded; the catalog row."""
    archive, sid = _archive(ctx), snapshot["id"]
    version = _manager_version(ctx)
    with ctx.manager.download_snapshot(sid) as download:
        ctx.step(f"copying {sid} ({size(download.size)}) off {ctx.manager_name} to the archive")
        row = archive.save(ctx.manager_name, sid, download, manager_version=version,
                           tenant=snapshot.get("tenant_name") or "", created_at=snapshot.get("created_at") or "",
                           progress=_progress(ctx, sid))
    ctx.audit("archived", snapshot_id=sid, location=row["location"], sha256=row["sha256"], size=row["size"])
    ctx.step(f"verified the copy of {sid}: {size(row['size'])}, sha256 {_short(row['sha256'])}, snapshot version "
             f"{row['snapshot_version']}", "good")
    return row


def _copy_fields(row: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    return (("archive copy", row["location"]), ("size", f"{size(row['size'])} ({row['size']} bytes)"),
            ("sha256", row["sha256"]), ("snapshot version", row.get("snapshot_version") or "?"),
            ("manager version", row.get("manager_version") or "?"))


# --- create ---------------------------------------------------------------------------------------------


LEGACY = Param("legacy", ("--legacy",), "legacy (pg_dump) format, the default as in cfy 7.0.5: every manager "
               "version restores it, with credentials and certificates; --no-legacy takes the 7.0+ JSON format, "
               "which 7.0.4+ managers run alongside other executions", kind="bool", default=True, negatable=True)


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
                     "metadata.json, sha256); `snapshots list` shows which snapshots have a verified copy.",
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
    if final.get("status") != "terminated":
        return _create_failed(ctx, sid, final)
    snapshot = ctx.manager.get_snapshot(sid)
    if snapshot.get("status") != "created":
        return _create_failed(ctx, sid, {"status": snapshot.get("status"), "error": snapshot.get("error")})
    try:
        row = copy_off(ctx, snapshot)
    except (ArchiveError, ManagerError) as exc:
        reason = str(exc)
        return Reply(text=f"Snapshot {sid} was created on {ctx.manager_name}, but is not in the archive. "
                          f"{reason[:1].upper() + reason[1:]}\nTry again with `snapshots download {sid}`.",
                     title="Created, not archived", tone="danger", ok=False)
    return Reply(text=f"Snapshot {sid} created on {ctx.manager_name}, copied off and verified.",
                 title=f"Snapshot {sid}", tone="good", fields=(("execution", eid), *_copy_fields(row)))


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
    eid = str(execution.get("id") or "")
    ctx.remember(execution_id=eid)
    if ctx.op:
        ctx.op = ctx.store.update_operation(ctx.op["id"], "running", execution_id=eid) or ctx.op
    if execution.get("status") == "queued":
        ctx.step(f"snapshot {sid} is queued on {ctx.manager_name} (execution {eid}): it starts when the running "
                 "executions end; following it")
    else:
        ctx.step(f"creating snapshot {sid} on {ctx.manager_name} in the {fmt} format (execution {eid})")
    return eid


def _find_create_execution(ctx: Ctx, sid: str) -> dict[str, Any]:
    page = ctx.manager.list_executions(workflow_id="create_snapshot", sort="-created_at", size=100)
    for execution in page.items:
        if (execution.get("parameters") or {}).get("snapshot_id") == sid:
            return execution
    raise BotError(f"snapshot {sid} exists on {ctx.manager_name}, but its create_snapshot execution was not found")


def _follow(ctx: Ctx, sid: str, eid: str) -> dict[str, Any]:
    """Follow the create execution; in maintenance mode (executions unreadable) watch the snapshot instead."""
    try:
        return follow_execution(ctx, eid, timeout=CREATE_TIMEOUT)
    except MaintenanceModeActive:
        ctx.step(f"{ctx.manager_name} is in maintenance mode, where executions cannot be read; watching the "
                 "snapshot's status instead", "warning")
    snapshot = wait_for_snapshot(ctx, sid, timeout=CREATE_TIMEOUT)
    ok = snapshot.get("status") == "created"
    return {"id": eid, "status": "terminated" if ok else "failed", "error": snapshot.get("error") or ""}


def _create_failed(ctx: Ctx, sid: str, execution: dict[str, Any]) -> Reply:
    why = describe_failure(execution)
    return Reply(text=f"Snapshot {sid} failed on {ctx.manager_name}: {why}", title=f"Snapshot {sid} failed",
                 tone="danger", fields=(("execution", str(execution.get("id") or "")),
                                        ("status", str(execution.get("status") or ""))), ok=False)


def _busy(ctx: Ctx, sid: str, args: Args, exc: ExecutionsRunning) -> Reply:
    """What is running, and what to do about it."""
    ids = list(getattr(exc, "execution_ids", []) or [])
    found = _executions(ctx, ids[:10])
    rows = []
    for eid in ids[:10]:
        e = found.get(eid)
        rows.append((eid, str(e.get("workflow_id") or ""), str(e.get("deployment_id") or "-"),
                     str(e.get("status") or "")) if e else (eid, "?", "?", "(not visible to the bot's user)"))
    hint = "Run it again with --queue to start it as soon as they end"
    if args.legacy and _version(ctx) >= NEW_FORMAT_ALONGSIDE:
        hint += ", or with --no-legacy (this manager runs new-format snapshots alongside other executions)"
    what = f"{len(ids)} other executions are" if len(ids) != 1 else "another execution is"
    text = (f"{ctx.manager_name} is busy: snapshot {sid} was not created because {what} running. {hint}."
            if ids else f"{ctx.manager_name} is busy: {exc}. {hint}.")
    return Reply(text=text, title="Manager busy", tone="warning", ok=False,
                 table=Table(("execution", "workflow", "deployment", "status"), tuple(rows)) if rows else None)


def _executions(ctx: Ctx, ids: list[str]) -> dict[str, dict[str, Any]]:
    """The executions with these ids, in every tenant (the manager names running ones of any tenant)."""
    if not ids:
        return {}
    try:
        page = ctx.manager.list_executions(id=ids, _all_tenants=True, size=len(ids))
    except ManagerError:
        return {}
    return {e["id"]: e for e in page.items if e.get("id") in ids}


def _version(ctx: Ctx) -> tuple[int, ...]:
    try:
        return tuple(ctx.manager.server_version())
    except ManagerError:
        return ()


# --- download, upload ---------------------------------------------------------------------------------


@command("snapshots download", summary="Copy a snapshot off the manager into the archive, verified",
         group="snapshots", permission="operator", long_running=True, params=[SNAPSHOT_ID],
         description="Streams the archive to a temporary file, checks its size against Content-Length, that it "
                     "is a zip whose metadata.json names a snapshot version, records its sha256, then puts it in "
                     "place. A copy that already exists is replaced only by one that passes these checks.",
         examples=["snapshots download daily-20261128", "snapshot download manual-20261129-101500 -m staging"])
def snapshots_download(ctx: Ctx, args: Args) -> Reply:
    """Answer `snapshots download ID`."""
    snapshot = ctx.manager.get_snapshot(args.snapshot_id)
    status = snapshot.get("status")
    if status == "failed":
        return Reply(text=f"Snapshot {args.snapshot_id} failed on {ctx.manager_name}, so there is nothing to copy: "
                          f"{last_line(snapshot.get('error'))}", title="Failed snapshot", tone="warning", ok=False)
    if status == "creating":
        return Reply(text=f"Snapshot {args.snapshot_id} is still being created on {ctx.manager_name}; download it "
                          "when `snapshots show` says created.", title="Not ready", tone="warning", ok=False)
    row = copy_off(ctx, snapshot)
    return Reply(text=f"Snapshot {args.snapshot_id} of {ctx.manager_name} copied to the archive and verified.",
                 title=f"Snapshot {args.snapshot_id}", tone="good", fields=_copy_fields(row))


def _upload_usage(ctx: Ctx, args: Args) -> dict[str, Any]:
    """Before the operation starts: the source is the archive or a URL, not both."""
    if args.url and args.from_archive:
        raise UsageError("give either --from-archive or a URL, not both", usage=ctx.command.usage())
    return {}


@command("snapshots upload", summary="Upload a snapshot to the manager, streamed from the archive or fetched from "
         "a URL", group="snapshots", permission="admin", long_running=True,
         params=[SNAPSHOT_ID,
                 Param("url", metavar="URL", check=_check_url,
                       help="an http(s) or ftp URL the manager fetches itself (instead of the archive)"),
                 Param("from_archive", ("--from-archive",), "stream the archive copy (the default without a URL); "
                       "another manager's copy is used when this one has none", kind="bool", default=False)],
         description="The archive copy is re-checked (sha256, size, zip) before a byte is sent. The manager must "
                     "not already have a snapshot with this id: delete it first to replace it.",
         prepare=_upload_usage,
         examples=["snapshots upload daily-20261128", "snapshot upload daily-20261128 --from-archive -m staging",
                   "snapshots upload nightly-1 https://backups.example.com/nightly-1.zip"])
def snapshots_upload(ctx: Ctx, args: Args) -> Reply:
    """Answer `snapshots upload ID [--from-archive | URL]`."""
    sid = args.snapshot_id
    try:
        existing = ctx.manager.get_snapshot(sid)
    except ManagerNotFound:
        existing = None
    if existing:
        return Reply(text=f"{ctx.manager_name} already has a snapshot {sid} ({existing.get('status')}); uploading "
                          f"would replace its archive. Delete it first (`snapshots delete {sid}`) if that is what "
                          "you mean.", title="Already there", tone="warning", ok=False)
    if args.url:
        ctx.step(f"asking {ctx.manager_name} to fetch {args.url} as snapshot {sid}")
        snap = ctx.manager.upload_snapshot(sid, url=args.url)
        return Reply(text=f"{ctx.manager_name} fetched {args.url} as snapshot {sid} "
                          f"({snap.get('status') or 'uploaded'}).", title=f"Snapshot {sid} uploaded", tone="good")
    return _upload_from_archive(ctx, sid)


def _upload_from_archive(ctx: Ctx, sid: str) -> Reply:
    archive = _archive(ctx)
    copy = archive.find(sid, ctx.manager_name)
    source = copy["manager"]
    whose = "its own archive copy" if source == ctx.manager_name else f"the archive copy taken from {source}"
    ctx.step(f"checking {whose} of {sid} ({size(copy.get('size'))}) before sending it to {ctx.manager_name}")
    snap = archive.upload_copy(copy, ctx.manager, sid)
    ctx.step(f"uploaded {sid} to {ctx.manager_name}", "good")
    return Reply(text=f"Snapshot {sid} uploaded to {ctx.manager_name} from {whose} "
                      f"({snap.get('status') or 'uploaded'}).", title=f"Snapshot {sid} uploaded", tone="good",
                 fields=(("from", copy["location"]), ("source manager", source),
                         ("size", size(copy.get("size"))), ("sha256", copy.get("sha256") or "")))


# --- delete ---------------------------------------------------------------------------------------------


def _delete_facts(ctx: Ctx, args: Args) -> dict[str, Any]:
    """Before the gate: what exists where, so the confirmation says exactly what will go."""
    sid = args.snapshot_id
    try:
        snap: dict[str, Any] | None = ctx.manager.get_snapshot(sid)
    except ManagerNotFound:
        snap = None
    copy = ctx.store.get_copy(ctx.manager_name, sid)
    if snap is None and not copy:
        raise NotFound(f"snapshot {sid} is neither on {ctx.manager_name} nor in its archive")
    if snap is None and not args.archive:
        raise NotFound(f"snapshot {sid} is not on {ctx.manager_name}; only its archive copy is left, which this "
                       "keeps: add --archive to delete that copy")
    lines = []
    if snap is not None:
        lines.append(f"On {ctx.manager_name}: {snap.get('status')}, created {when(snap.get('created_at'), ctx.now())}"
                     " — will be deleted.")
    else:
        lines.append(f"{ctx.manager_name} no longer has it.")
    if copy:
        state = "verified" if copy.get("verified") else "NOT verified"
        fate = "will be deleted too" if args.archive else "is kept (add --archive to delete it too)"
        lines.append(f"Archive copy ({state}, {size(copy.get('size'))}, {copy['location']}) {fate}.")
        latest = ctx.store.latest_verified(ctx.manager_name)
        if args.archive and latest and latest["snapshot_id"] == sid:
            lines.append(f"It is the newest verified copy of {ctx.manager_name}: `restore latest` will then mean "
                         "an older one.")
    else:
        lines.append("There is no archive copy of it.")
    return {"on_manager": snap is not None, "gate_detail": "\n".join(lines)}


@command("snapshots delete", summary="Delete a snapshot from the manager; --archive deletes its archive copy too",
         group="snapshots", permission="admin", gate="confirm", params=[
             SNAPSHOT_ID,
             Param("archive", ("--archive",), "delete the archive copy as well (when the manager no longer has "
                   "the snapshot, only the archive copy)", kind="bool", default=False)],
         prepare=_delete_facts, gate_text="delete snapshot {snapshot_id} of {manager}",
         description="Without --archive the archive copy is kept, so the snapshot can still be uploaded back and "
                     "restored. The confirmation lists exactly what will be deleted.",
         examples=["snapshots delete daily-20261101", "snapshot delete daily-20261101 --archive -m staging"])
def snapshots_delete(ctx: Ctx, args: Args) -> Reply:
    """Answer `snapshots delete ID [--archive]` once confirmed."""
    sid, done = args.snapshot_id, []
    try:
        ctx.manager.delete_snapshot(sid)
        done.append(f"deleted snapshot {sid} from {ctx.manager_name}")
    except ManagerNotFound:
        if not args.archive:
            raise
        done.append(f"{ctx.manager_name} no longer had snapshot {sid}")
    copy = ctx.store.get_copy(ctx.manager_name, sid)
    if args.archive and copy:
        _archive(ctx).delete(copy)
        ctx.audit("archive_deleted", snapshot_id=sid, location=copy["location"])
        done.append(f"deleted its archive copy {copy['location']}")
    elif copy:
        done.append(f"kept its archive copy {copy['location']}")
    elif args.archive:
        done.append("there was no archive copy")
    return Reply(text="; ".join(done) + ".", title=f"Snapshot {sid} deleted", tone="good")
