"""Copy a created snapshot off the manager into the archive, verified: `create`, `download` and `backups run` do it."""

from __future__ import annotations

from typing import Any

from bot.engine.context import ArchiveAPI, Ctx
from bot.errors import ArchiveError, ManagerError
from bot.core import size


def need_archive(ctx: Ctx) -> ArchiveAPI:
    """The configured archive; ArchiveError when there is none."""
    if ctx.archive is None:
        raise ArchiveError("no archive is configured (BOT_ARCHIVE_DIR or BOT_ARCHIVE_URL)")
    return ctx.archive


def _short(sha: str | None) -> str:
    return (sha or "")[:12] + "…" if sha else "?"


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
    archive, sid = need_archive(ctx), snapshot["id"]
    version = _manager_version(ctx)
    with ctx.manager.download_snapshot(sid) as download:
        ctx.step(f"copying {sid} ({size(download.size)}) off {ctx.manager_name} to the archive")
        row: dict[str, Any] = archive.save(ctx.manager_name, sid, download, manager_version=version,
                           tenant=snapshot.get("tenant_name") or "", created_at=snapshot.get("created_at") or "",
                           progress=_progress(ctx, sid))
    ctx.audit("archived", snapshot_id=sid, location=row["location"], sha256=row["sha256"], size=row["size"])
    ctx.step(f"verified the copy of {sid}: {size(row['size'])}, sha256 {_short(row['sha256'])}, snapshot version "
             f"{row['snapshot_version']}", "good")
    return row


def copy_fields(row: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """The reply fields that describe an archive copy."""
    return (("archive copy", row["location"]), ("size", f"{size(row['size'])} ({row['size']} bytes)"),
            ("sha256", row["sha256"]), ("snapshot version", row.get("snapshot_version") or "?"),
            ("manager version", row.get("manager_version") or "?"))

