"""`backups prune --dry-run` and `backups prune`: show, then delete, the daily backups retention does not keep."""

from __future__ import annotations

from typing import Any

from bot.engine.context import Ctx
from bot.core import Reply, Tone
from bot.errors import NothingToDo, UsageError
from bot.spec.parser import Args
from bot.spec.registry import Param, command
from commands.common import count
from commands.pruning import location_text, plan_table, prune_backups, retention_plan, retention_text


@command("backups prune --dry-run", summary="Show which daily backups retention would delete, and why (changes "
         "nothing)", group="backups", permission="admin",
         description="Only daily-YYYYMMDD snapshots are ever pruned; manual and other snapshots are never touched. "
                     "The newest verified archive copy always stays.",
         examples=["backups prune --dry-run", "backup prune --dry-run -m staging"])
def backups_prune_dry_run(ctx: Ctx, args: Args) -> Reply:
    """Answer `backups prune --dry-run`."""
    plan, snaps, copies = retention_plan(ctx)
    head = (f"Retention ({retention_text(ctx)}) on {ctx.manager_name}: {count(len(plan.delete), 'daily backup')} "
            f"would be deleted, {len(plan.keep)} kept.")
    if plan.ignored:
        head += (f" {count(len(plan.ignored), 'other snapshot')} {'is' if len(plan.ignored) == 1 else 'are'} not "
                 "daily backups and are never pruned.")
    return Reply(text=head + (" Nothing was changed." if plan.delete else ""), title="Retention (dry run)",
                 table=plan_table(plan, snaps, copies) if plan.delete or plan.keep else None)


def _prune_facts(ctx: Ctx, args: Args) -> dict[str, Any]:
    """Before the gate: the plan, so the card lists exactly what goes and why."""
    if args.dry_run:
        raise UsageError(f"--dry-run goes right after `backups prune`: `backups prune --dry-run -m {ctx.manager_name}`"
                         " (nothing was changed)", usage=ctx.command.usage())
    plan, snaps, copies = retention_plan(ctx)
    if not plan.delete:
        raise NothingToDo(f"nothing to prune on {ctx.manager_name}: {_kept(len(plan.keep))} within the "
                          f"retention ({retention_text(ctx)})")
    lines = [f"{sid} {location_text(sid, snaps, copies)}: {why}" for sid, why in sorted(plan.delete.items())]
    return {"planned": sorted(plan.delete), "count": len(plan.delete),
            "backups": count(len(plan.delete), "daily backup"), "retention": retention_text(ctx),
            "gate_detail": "\n".join(lines)}


def _kept(n: int) -> str:
    """`its daily backup is`, `its 3 daily backups are all`: what retention keeps, counted."""
    return "its one daily backup is" if n == 1 else f"its {count(n, 'daily backup')} are all"


@command("backups prune", summary="Delete the daily backups that retention does not keep, on the manager and in "
         "the archive", group="backups", permission="admin", gate="confirm",
         params=[Param("dry_run", ("--dry-run",), "only show what would go (write it right after `backups prune`)",
                       kind="bool", default=False)],
         prepare=_prune_facts, gate_text="delete {backups} of {manager} (retention {retention})",
         description="The confirmation lists each backup that goes and why. Only what was confirmed, and what "
                     "retention still says goes when it runs, is deleted.",
         examples=["backups prune", "backup prune -m staging"])
def backups_prune(ctx: Ctx, args: Args) -> Reply:
    """Answer `backups prune` once confirmed."""
    notes = prune_backups(ctx, set(args.planned or ()), "backups prune")
    if not notes:
        return Reply(text=f"Nothing was pruned on {ctx.manager_name}: retention keeps them now.", title="Pruned")
    ok = not any(n.startswith("Could not") for n in notes)
    return Reply(text="\n".join(notes), title=f"Pruned on {ctx.manager_name}", tone=Tone.GOOD if ok else Tone.WARNING,
                 ok=ok)
