"""Retention applied to one manager: the plan for its daily snapshots and archive copies, and pruning what goes."""

from __future__ import annotations

from typing import Any
from datetime import date

from bot.engine.context import Ctx
from bot.core import ArchiveCopy, Table, Tone
from bot.errors import BotError
from commands.common import count
from commands.restore_snapshots import kept_for_a_restore
from commands.retention import RULES, Backup, Plan, daily_day, select


def retention_plan(ctx: Ctx, extra: Backup | None = None) -> tuple[Plan, dict[str, dict[str, Any]],
                                                                    dict[str, ArchiveCopy]]:
    """The retention plan of this manager, with its daily snapshots on the manager and in the archive; `extra`
    is a backup that does not exist yet (what the plan would say if it did)."""
    snaps: dict[str, dict[str, Any]] = {}
    offset = 0
    while True:
        page = ctx.manager.list_snapshots(offset=offset, size=1000)
        snaps.update({s["id"]: s for s in page.items if s.get("id")})
        offset += len(page.items)
        if not page.items or offset >= page.total:
            break
    copies = {c.snapshot_id: c for c in ctx.catalog.list_copies(manager=ctx.manager_name)}
    backups = [Backup(sid, str((snaps.get(sid) or {}).get("status") or ""), sid in copies,
                      bool(sid in copies and copies[sid].verified)) for sid in set(snaps) | set(copies)]
    if extra is not None:
        backups = [b for b in backups if b.snapshot_id != extra.snapshot_id] + [extra]
    return select(backups, ctx.settings.retention), snaps, copies


def location_text(sid: str, snaps: dict[str, dict[str, Any]], copies: dict[str, ArchiveCopy]) -> str:
    """Where a snapshot is: on the manager (with its status), in the archive, or both."""
    places = []
    if sid in snaps:
        places.append(f"on the manager ({snaps[sid].get('status')})")
    if sid in copies:
        places.append("in the archive" + ("" if copies[sid].verified else " (NOT verified)"))
    return " and ".join(places)


def prune_backups(ctx: Ctx, allowed: set[str] | None, why: str) -> list[str]:
    """Delete what a fresh plan says goes (and `allowed` permits, when given), on the manager and in the archive."""
    plan, snaps, copies = retention_plan(ctx)
    notes, failed = [], []
    for sid in sorted(set(plan.delete) if allowed is None else set(plan.delete) & allowed):
        needed = kept_for_a_restore(ctx, sid)
        if needed:  # deleting it would make that restore fail after its approval
            ctx.step(f"kept {sid} although retention would prune it: {needed}", Tone.WARNING)
            continue
        try:
            if sid in snaps:
                ctx.manager.delete_snapshot(sid)
            if sid in copies and ctx.archive is not None:
                ctx.archive.delete(copies[sid])
        except BotError as exc:
            failed.append(f"{sid}: {exc}")
            ctx.step(f"could not prune {sid}: {exc}", Tone.WARNING)
            continue
        where = location_text(sid, snaps, copies)
        ctx.audit("pruned", snapshot_id=sid, reason=plan.delete[sid], where=where, by=why)
        ctx.step(f"pruned {sid} {where}: {plan.delete[sid]}")
        notes.append(sid)
    out = [f"Pruned {count(len(notes), 'old backup')}: {', '.join(notes)}."] if notes else []
    if failed:
        out.append("Could not prune: " + "; ".join(failed))
    return out


def retention_text(ctx: Ctx) -> str:
    """The configured retention as `daily=7,weekly=4,...`."""
    counts = dict(ctx.settings.retention)
    return ",".join(f"{r}={counts[r]}" for r in RULES if r in counts)


def plan_table(plan: Plan, snaps: dict[str, dict[str, Any]], copies: dict[str, ArchiveCopy]) -> Table:
    """The plan as a table, newest day first: each snapshot, its fate, where it is and why."""
    rows = [(sid, "delete", location_text(sid, snaps, copies), why) for sid, why in plan.delete.items()]
    rows += [(sid, "keep", location_text(sid, snaps, copies), "; ".join(why)) for sid, why in plan.keep.items()]
    rows.sort(key=lambda r: daily_day(r[0]) or (date.min, 0), reverse=True)
    return Table(("snapshot", "fate", "where", "why"), tuple(rows))
