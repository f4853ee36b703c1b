"""Copy a created snapshot off the manager into the archive, verified: `create`, `download` and `backups run` do it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.engine.context import ArchiveAPI, Ctx
from bot.errors import ArchiveError, ManagerError
from bot.core import ArchiveCopy, Tone, file_size, size, transfer_text


def need_archive(ctx: Ctx) -> ArchiveAPI:
    """The configured archive; ArchiveError when there is none."""
    if ctx.archive is None:
        raise ArchiveError("no archive is configured (BOT_ARCHIVE_DIR or BOT_ARCHIVE_URL)")
    return ctx.archive


def _short(sha: str | None) -> str:
    return (sha or "")[:12] + "…" if sha else "?"


def transfer_progress(ctx: Ctx, snapshot_id: str, verb: str) -> Callable[[int, int | None], None]:
    """A progress callback for a download or upload: after the first 2 s, at most one `transfer` event a second.

    A transfer event only updates a state (bytes, rate, time left): the terminal rewrites one line with it and
    Slack edits the operation's card with it (throttled); neither adds a line to the record.
    """
    start = ctx.clock.monotonic()
    marks = {"last": start}

    def report(done: int, total: int | None) -> None:
        now = ctx.clock.monotonic()
        if now - start < 2.0 or now - marks["last"] < 1.0:
            return
        marks["last"] = now
        ctx.check_cancel()  # a step boundary: a cancel stops the transfer here (its temp file is removed)
        ctx.step(f"{verb} {snapshot_id}: {transfer_text(done, total, now - start)}", kind="transfer",
                 done=done, total=total, elapsed=round(now - start, 3))

    return report


def _manager_version(ctx: Ctx) -> str:
    try:
        return str(ctx.manager.version().get("version") or "")
    except ManagerError:
        return ""


def copy_off(ctx: Ctx, snapshot: dict[str, Any]) -> ArchiveCopy:
    """Stream a created snapshot into the archive, verified and recorded; the catalog row."""
    archive, sid = need_archive(ctx), snapshot["id"]
    version = _manager_version(ctx)
    with ctx.manager.download_snapshot(sid) as download:
        ctx.step(f"copying {sid} ({size(download.size)}) off {ctx.manager_name} to the archive")
        row = archive.save(ctx.manager_name, sid, download, manager_version=version,
                           tenant=snapshot.get("tenant_name") or "", created_at=snapshot.get("created_at") or "",
                           progress=transfer_progress(ctx, sid, "downloading"))
    ctx.audit("archived", snapshot_id=sid, location=row.location, sha256=row.sha256, size=row.size)
    ctx.step(f"verified the copy of {sid}: {size(row.size)}, sha256 {_short(row.sha256)}, snapshot version "
             f"{row.snapshot_version}", Tone.GOOD)
    return row


def copy_fields(row: ArchiveCopy) -> tuple[tuple[str, str], ...]:
    """The reply fields that describe an archive copy."""
    return (("archive copy", row.location), ("size", f"{size(row.size)} ({row.size} bytes)"),
            ("sha256", row.sha256), ("snapshot version", row.snapshot_version or "?"),
            ("manager version", row.manager_version or "?"))



def stored_size_text(archive: ArchiveAPI, copy: ArchiveCopy) -> str:
    """The copy's file size as it is now, with the recorded one when they differ: `0 bytes, 5.8 KiB expected`."""
    actual = archive.stored_size(copy)
    if actual is None:
        return "its file is missing"
    if copy.size and actual != copy.size:
        return f"{file_size(actual)}, {file_size(copy.size)} expected"
    return file_size(actual)
