"""Snapshots that move between the manager and the archive: `download`, `upload`, `delete`."""

from __future__ import annotations

from typing import Any

from bot.engine.context import Ctx
from bot.core import Reply, Tone, size
from bot.errors import ManagerNotFound, NotFound, UsageError
from bot.spec.parser import Args
from bot.spec.registry import Param, command
from commands.archive_copy import copy_fields, copy_off, need_archive, stored_size_text, transfer_progress
from commands.common import SNAPSHOT_ID, check_snapshot_id, hint, last_line, when
from commands.restore_snapshots import refuse_if_a_restore_needs_it

URL_SCHEMES = ("http://", "https://", "ftp://")


def _check_url(value: str) -> str | None:
    if not value.lower().startswith(URL_SCHEMES):
        return f"{value!r} is not a URL the manager can fetch (http://, https:// or ftp://)"
    return None


@command("snapshots download", summary="Copy a snapshot off the manager into the archive, verified",
         group="snapshots", permission="operator", long_running=True, params=[SNAPSHOT_ID],
         description="Streams the archive to a temporary file, checks its size against Content-Length, that it "
                     "is a zip whose metadata.json names a snapshot version, records its sha256, then puts it in "
                     "place. A verified copy the archive keeps is never replaced by other content (that is refused, "
                     "and both stay as they are); the same content again is the same copy.",
         examples=["snapshots download daily-20261128", "snapshot download manual-20261129-101500 -m staging"])
def snapshots_download(ctx: Ctx, args: Args) -> Reply:
    """Answer `snapshots download ID`."""
    snapshot = ctx.manager.get_snapshot(args.snapshot_id)
    status = snapshot.get("status")
    if status == "failed":
        return Reply(text=f"Snapshot {args.snapshot_id} failed on {ctx.manager_name}, so there is nothing to copy: "
                          f"{last_line(snapshot.get('error'))}", title="Failed snapshot", tone=Tone.WARNING, ok=False)
    if status == "creating":
        show = hint(ctx, f"snapshots show {args.snapshot_id}")
        return Reply(text=f"Snapshot {args.snapshot_id} is still being created on {ctx.manager_name}; download it "
                          f"when {show} says created.", title="Not ready", tone=Tone.WARNING, ok=False)
    row = copy_off(ctx, snapshot)
    return Reply(text=f"Snapshot {args.snapshot_id} of {ctx.manager_name} copied to the archive and verified.",
                 title=f"Snapshot {args.snapshot_id}", tone=Tone.GOOD, fields=copy_fields(row))


def _upload_usage(ctx: Ctx, args: Args) -> dict[str, Any]:
    """Before the operation starts: which snapshot id and which source (the archive, or a URL), from cfy's form
    `URL -s ID` or the bot's `ID [URL | --from-archive]`; anything ambiguous is refused."""
    def refuse(text: str) -> UsageError:
        return UsageError(text, usage=ctx.command.usage())

    source, sid, url = args.source or "", args.snapshot_id or "", args.url or ""
    if "://" in source:  # cfy's form: the URL first, the id after -s
        if problem := _check_url(source):
            raise refuse(problem)
        if url:
            raise refuse(f"after a URL the id goes after -s, as cfy spells it: `snapshots upload URL -s {url}`"
                         if not check_snapshot_id(url) else "give one URL")
        if not sid:
            raise refuse(f"name the snapshot id the manager keeps it as, as cfy does: `snapshots upload {source} "
                         "-s SNAPSHOT_ID`")
        url = source
    elif source:
        if "/" in source or source.lower().endswith(".zip"):
            raise refuse(f"{source!r} looks like a file path: the bot does not read files from its host. Give a URL "
                         "the manager can fetch (`snapshots upload URL -s SNAPSHOT_ID`) or upload the archive copy "
                         "(`snapshots upload SNAPSHOT_ID`)")
        if sid and sid != source:
            raise refuse(f"two snapshot ids ({source} and -s {sid}): give it once")
        if problem := check_snapshot_id(source):
            raise refuse(problem)
        if url and (problem := _check_url(url)):
            raise refuse(problem)
        sid = source
    elif not sid:
        raise refuse("name the snapshot: `snapshots upload SNAPSHOT_ID` (from the archive) or "
                     "`snapshots upload URL -s SNAPSHOT_ID`")
    if url and args.from_archive:
        raise refuse("give either --from-archive or a URL, not both")
    return {"snapshot_id": sid, "url": url}


@command("snapshots upload", summary="Upload a snapshot to the manager, streamed from the archive or fetched from "
         "a URL", group="snapshots", permission="admin", long_running=True,
         params=[Param("source", metavar="SNAPSHOT_ID|URL",
                       help="the snapshot id (its archive copy is uploaded), or, as cfy spells it, the URL the "
                            "manager fetches, with -s ID"),
                 Param("url", metavar="URL",
                       help="after a snapshot id: an http(s) or ftp URL the manager fetches itself"),
                 Param("snapshot_id", ("-s", "--snapshot-id"), "the id the manager keeps it as (cfy's form)",
                       metavar="SNAPSHOT_ID", check=check_snapshot_id),
                 Param("from_archive", ("--from-archive",), "stream the archive copy (the default without a URL); "
                       "another manager's copy is used when this one has none", kind="bool", default=False)],
         description="Two spellings: cfy's `snapshots upload URL -s SNAPSHOT_ID` (the manager fetches the URL), and "
                     "the bot's `snapshots upload SNAPSHOT_ID` (the archive copy, also with --from-archive) or "
                     "`snapshots upload SNAPSHOT_ID URL`. The bot reads no local file path: give a URL or use the "
                     "archive. The archive copy is re-checked (sha256, size, zip) before a byte is sent. The "
                     "manager must not already have a snapshot with this id: delete it first to replace it.",
         prepare=_upload_usage,
         examples=["snapshots upload daily-20261128", "snapshot upload daily-20261128 --from-archive -m staging",
                   "snapshots upload nightly-1 https://backups.example.com/nightly-1.zip",
                   "snapshots upload https://backups.example.com/nightly-1.zip -s nightly-1"])
def snapshots_upload(ctx: Ctx, args: Args) -> Reply:
    """Answer `snapshots upload ID [--from-archive | URL]`."""
    sid = args.snapshot_id
    try:
        existing = ctx.manager.get_snapshot(sid)
    except ManagerNotFound:
        existing = None
    if existing:
        delete = hint(ctx, f"snapshots delete {sid}")
        return Reply(text=f"{ctx.manager_name} already has a snapshot {sid} ({existing.get('status')}); uploading "
                          f"would replace its archive. Delete it first ({delete}) if that is what you mean.",
                     title="Already there", tone=Tone.WARNING, ok=False)
    if args.url:
        ctx.step(f"asking {ctx.manager_name} to fetch {args.url} as snapshot {sid}")
        snap = ctx.manager.upload_snapshot(sid, url=args.url)
        return Reply(text=f"{ctx.manager_name} fetched {args.url} as snapshot {sid} "
                          f"({snap.get('status') or 'uploaded'}).", title=f"Snapshot {sid} uploaded", tone=Tone.GOOD)
    return _upload_from_archive(ctx, sid)


def _upload_from_archive(ctx: Ctx, sid: str) -> Reply:
    archive = need_archive(ctx)
    copy = archive.find(sid, ctx.manager_name)
    source = copy.manager
    whose = "its own archive copy" if source == ctx.manager_name else f"the archive copy taken from {source}"
    ctx.step(f"checking {whose} of {sid} ({stored_size_text(archive, copy)}) before sending it to "
             f"{ctx.manager_name}")
    snap = archive.upload_copy(copy, ctx.manager, sid, progress=transfer_progress(ctx, sid, "uploading"))
    ctx.step(f"uploaded {sid} to {ctx.manager_name}", Tone.GOOD)
    return Reply(text=f"Snapshot {sid} uploaded to {ctx.manager_name} from {whose} "
                      f"({snap.get('status') or 'uploaded'}).", title=f"Snapshot {sid} uploaded", tone=Tone.GOOD,
                 fields=(("from", copy.location), ("source manager", source),
                         ("size", size(copy.size)), ("sha256", copy.sha256 or "")))


# --- delete ---------------------------------------------------------------------------------------------


def _delete_facts(ctx: Ctx, args: Args) -> dict[str, Any]:
    """Before the gate: what exists where, so the confirmation says exactly what will go."""
    sid = args.snapshot_id
    refuse_if_a_restore_needs_it(ctx, sid)
    try:
        snap: dict[str, Any] | None = ctx.manager.get_snapshot(sid)
    except ManagerNotFound:
        snap = None
    copy = ctx.catalog.get_copy(ctx.manager_name, sid)
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
        state = "verified" if copy.verified else "NOT verified"
        fate = "will be deleted too" if args.archive else "is kept (add --archive to delete it too)"
        lines.append(f"Archive copy ({state}, {size(copy.size)}, {copy.location}) {fate}.")
        latest = ctx.catalog.latest_verified(ctx.manager_name)
        if args.archive and latest and latest.snapshot_id == sid:
            lines.append(_latest_after(ctx, sid))
    else:
        lines.append("There is no archive copy of it.")
    return {"on_manager": snap is not None, "gate_detail": "\n".join(lines)}


def _latest_after(ctx: Ctx, sid: str) -> str:
    """What `restore latest` means once `sid`, the newest verified copy, is gone: the next one, or nothing."""
    others = [c for c in ctx.catalog.list_copies(manager=ctx.manager_name, verified=True) if c.snapshot_id != sid]
    latest = hint(ctx, "restore latest")
    if not others:
        return (f"It is the only verified copy of {ctx.manager_name}: {latest} will then refuse, as there is no "
                "other verified backup to restore.")
    return f"It is the newest verified copy of {ctx.manager_name}: {latest} will then mean {others[0].snapshot_id}."


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
    refuse_if_a_restore_needs_it(ctx, sid)  # again: a restore may have been requested since this card
    try:
        ctx.manager.delete_snapshot(sid)
        done.append(f"deleted snapshot {sid} from {ctx.manager_name}")
    except ManagerNotFound:
        if not args.archive:
            raise
        done.append(f"{ctx.manager_name} no longer had snapshot {sid}")
    copy = ctx.catalog.get_copy(ctx.manager_name, sid)
    if args.archive and copy:
        need_archive(ctx).delete(copy)
        ctx.audit("archive_deleted", snapshot_id=sid, location=copy.location)
        done.append(f"deleted its archive copy {copy.location}")
    elif copy:
        done.append(f"kept its archive copy {copy.location}")
    elif args.archive:
        done.append("there was no archive copy")
    return Reply(text="; ".join(done) + ".", title=f"Snapshot {sid} deleted", tone=Tone.GOOD)
