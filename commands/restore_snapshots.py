"""What a restore does to the manager's own snapshots (reference §2.7 point 3, §10 point 9): a legacy restore
empties the snapshots table (every tenant) and, from 6.3 on, deletes the restored zip. The card counts them and
names those with no archive copy, the guided restore copies the one it restores off first, and the report reads
the list back."""

from __future__ import annotations

from typing import Any

from bot.core import Operation, Tone, size
from bot.engine.context import Ctx
from bot.errors import ArchiveError, BotError, ManagerError
from commands.common import count, hint

NAMED = 8  # snapshot ids named on a card or report line; the rest are counted


def _ids(client: Any) -> list[str]:
    """The ids of every snapshot on the manager, all tenants (its own cap: 1000 a page)."""
    page = client.list_snapshots(size=1000, all_tenants=True)
    return [str(s.get("id")) for s in page.items]


def _copied(ctx: Ctx) -> set[str]:
    """Ids with a verified archive copy of this manager."""
    return {c.snapshot_id for c in ctx.catalog.list_copies(manager=ctx.manager_name, verified=True)}


def _names(ids: list[str]) -> str:
    shown = ", ".join(ids[:NAMED])
    return shown + (f" and {len(ids) - NAMED} more" if len(ids) > NAMED else "")


def snapshots_facts(ctx: Ctx, target: str) -> dict[str, Any]:
    """Before the gate: the manager's snapshots, and which have no verified archive copy."""
    ids = _ids(ctx.manager)
    copied = _copied(ctx)
    return {"snapshots_before": ids, "snapshots_uncopied": [i for i in ids if i not in copied],
            "will_copy_off": target in ids and target not in copied and ctx.archive is not None}


def snapshots_line(ctx: Ctx, facts: dict[str, Any]) -> str:
    """The card's line on the manager's snapshots: what a legacy restore deletes, what has no copy, what the bot
    does about the one it restores."""
    layout, target = facts.get("layout"), facts["snapshot_id"]
    ids, uncopied = list(facts.get("snapshots_before") or []), list(facts.get("snapshots_uncopied") or [])
    if layout == "new" or not ids:
        return ""
    n = len(ids)
    lead = ("A legacy restore deletes" if layout == "legacy" else
            "If it is a legacy-format snapshot, the restore deletes")
    text = (f"{lead} every snapshot on {ctx.manager_name} ({n} now, all tenants: the snapshots table is not part "
            "of a legacy snapshot), and the restored zip too")
    if not uncopied:
        return text + f"; each has a verified archive copy, so {hint(ctx, 'snapshots upload ID')} brings one back."
    text += (f"; {len(uncopied)} of them {'has' if len(uncopied) == 1 else 'have'} no archive copy "
             f"({_names(uncopied)}).")
    others = [i for i in uncopied if i != target]
    if facts.get("will_copy_off"):
        text += (f" Before maintenance mode the bot copies {target} into the archive and verifies it (a step of "
                 "this operation; it stops, touching nothing on the manager, if that fails).")
    elif target in uncopied:
        text += (f" No archive is configured, so {target} is gone after the restore unless copied elsewhere first "
                 f"(cfy: `cfy snapshots download {target} -o FILE`).")
    if others:
        text += (f" {'That one is' if len(others) == 1 else 'Those are'} lost unless copied first: "
                 f"{hint(ctx, f'snapshots download {others[0]}')}" + (" and so on." if len(others) > 1 else "."))
    return text


def copy_off_first(ctx: Ctx, target: str) -> str:
    """A step of the guided restore before maintenance mode: stream the snapshot it restores into the archive,
    verified, when the bot has no copy (a legacy restore deletes the manager's). One progress line. Returns the
    snapshot version metadata.json names. Raises BotError, having changed nothing on the manager, when it fails."""
    archive = ctx.archive
    if archive is None:
        return ""
    try:
        snap = ctx.manager.get_snapshot(target)
        version = str(ctx.manager.version().get("version") or "")
        with ctx.manager.download_snapshot(target) as download:
            row = archive.save(ctx.manager_name, target, download, manager_version=version,
                               tenant=snap.get("tenant_name") or "", created_at=snap.get("created_at") or "",
                               progress=_progress(ctx, target))
    except (ArchiveError, ManagerError) as exc:
        raise BotError(f"the bot could not copy {target} off {ctx.manager_name} before the restore: {exc}. A "
                       "legacy restore deletes the manager's copy, so it stopped here: nothing was changed on "
                       f"{ctx.manager_name}. Fix the archive, then run the restore again.") from None
    ctx.audit("archived", snapshot_id=target, location=row.location, sha256=row.sha256, size=row.size)
    ctx.remember(copied_off=row.location)
    ctx.step(f"copied {target} off {ctx.manager_name} into the archive before the restore: {size(row.size)}, "
             f"sha256 {(row.sha256 or '')[:12]}…, verified, snapshot version {row.snapshot_version or '?'}",
             Tone.GOOD)
    return row.snapshot_version or ""


def _progress(ctx: Ctx, target: str) -> Any:
    from commands.archive_copy import transfer_progress

    return transfer_progress(ctx, target, "copying off")


def snapshots_left(ctx: Ctx, client: Any, before: list[str]) -> tuple[str, Tone]:
    """After the restore: `snapshots list` read back, against what the card counted; which of those gone have an
    archive copy (`snapshots upload` brings them back) and which are lost."""
    try:
        now = _ids(client)
    except BotError as exc:
        return f"could not read the snapshot list after the restore: {exc}", Tone.WARNING
    gone = [i for i in before if i not in now]
    text = f"{count(len(now), 'snapshot')} on {ctx.manager_name} now ({len(before)} before the restore)"
    if not gone:
        return text, Tone.INFO
    copied = _copied(ctx)
    kept, lost = [i for i in gone if i in copied], [i for i in gone if i not in copied]
    text += f"; {len(gone)} gone"
    if kept:
        text += (f": {len(kept)} with an archive copy ({_names(kept)}; "
                 f"{hint(ctx, f'snapshots upload {kept[0]}')} puts one back)")
    if lost:
        text += f"{';' if kept else ':'} {len(lost)} with no archive copy, lost: {_names(lost)}"
    return text, Tone.WARNING if lost else Tone.INFO


RESTORES = ("restore", "snapshots restore")


def restore_using(ctx: Ctx, sid: str) -> Operation | None:
    """The restore operation (waiting for a decision, approved or running) on this manager that will restore
    `sid`, or None."""
    ops = ctx.engine.list_operations(states=("pending", "approved", "running"), manager=ctx.manager_name,
                                     kinds=RESTORES)
    return next((op for op in ops if (op.args or {}).get("snapshot_id") == sid), None)


def _stands(op: Operation) -> str:
    waiting = "confirmation" if op.gate == "confirm" else "a second admin's approval"
    return {"pending": f"is waiting for {waiting}", "approved": "is approved and about to start",
            "running": f"is running ({op.step or '?'})"}.get(op.state, f"is {op.state}")


def refuse_if_a_restore_needs_it(ctx: Ctx, sid: str) -> None:
    """A restore waiting for its approval (or running) uses this snapshot: deleting it would make that restore
    fail after it was approved. Refuse, naming the operation and how to cancel it first."""
    op = restore_using(ctx, sid)
    if op is None:
        return
    cancel = (f" Cancel it first with `cancel {op.id}` if it is no longer wanted." if op.state != "running"
              else " Wait for it to end (`operations`).")
    raise BotError(f"snapshot {sid} is the one operation {op.id} ({op.kind} on {ctx.manager_name}, requested "
                   f"by {op.requester_name or op.requester}) will restore, and it {_stands(op)}: "
                   f"deleting it would make that restore fail. Nothing was deleted.{cancel}")


def kept_for_a_restore(ctx: Ctx, sid: str) -> str:
    """Why retention must not prune `sid` now ("" when nothing needs it): a restore operation will use it."""
    op = restore_using(ctx, sid)
    return "" if op is None else f"operation {op.id} ({op.kind}) {_stands(op)} and will restore it"
