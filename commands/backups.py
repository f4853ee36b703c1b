"""`backups verify`: re-check archive copies (sha256, size, zip, metadata) and record the verdicts."""

from __future__ import annotations

from bot.engine.context import Ctx
from bot.core import Reply, Table, Tone
from bot.errors import ArchiveError
from bot.spec.parser import Args
from bot.spec.registry import Param, command
from commands.archive_copy import stored_size_text
from commands.common import check_snapshot_id, count


@command("backups verify", summary="Re-check archive copies (sha256, size, zip, metadata) and update the catalog",
         group="backups", long_running=True,
         params=[Param("snapshot_id", metavar="SNAPSHOT_ID", check=check_snapshot_id,
                       help="one snapshot (default: every archive copy of the manager)")],
         description="A copy that fails is marked unverified, so `restore latest` no longer picks it; "
                     "`snapshots download ID` replaces it with a fresh verified copy.",
         examples=["backups verify", "backups verify daily-20261128", "backup verify -m staging"])
def backups_verify(ctx: Ctx, args: Args) -> Reply:
    """Answer `backups verify [ID]`."""
    archive = ctx.archive
    if archive is None:
        raise ArchiveError("no archive is configured (BOT_ARCHIVE_DIR or BOT_ARCHIVE_URL)")
    if args.snapshot_id:
        copies = [archive.find(args.snapshot_id, ctx.manager_name)]
    else:
        copies = ctx.catalog.list_copies(manager=ctx.manager_name)
    if not copies:
        return Reply(text=f"The archive holds no copies of {ctx.manager_name}'s snapshots yet.",
                     title="Nothing to verify")
    rows, bad = [], 0
    for copy in copies:
        stored = stored_size_text(archive, copy)
        ctx.step(f"checking {copy.snapshot_id} of {copy.manager} ({stored})")
        result = archive.verify(copy)
        ok = result.verified
        bad += not ok
        if not ok:
            ctx.step(f"{copy.snapshot_id}: {result.error}", Tone.DANGER)
        rows.append((copy.snapshot_id, copy.manager, stored,
                     copy.snapshot_version or "?", "ok" if ok else f"FAILED: {result.error}"))
    table = Table(("snapshot", "manager", "size", "snapshot version", "check"), tuple(rows))
    latest = ctx.catalog.latest_verified(ctx.manager_name)
    newest = f" The newest verified copy of {ctx.manager_name} is {latest.snapshot_id}." if latest else (
        f" {ctx.manager_name} has NO verified copy now.")
    if bad:
        return Reply(text=f"{bad} of {count(len(rows), 'archive copy', 'archive copies')} failed the check.{newest}",
                     title="Archive copies damaged", tone=Tone.DANGER, table=table, ok=False)
    checked = "The archive copy" if len(rows) == 1 else f"All {len(rows)} archive copies"
    return Reply(text=f"{checked} checked out.{newest}", title="Archive verified", tone=Tone.GOOD,
                 table=table)
