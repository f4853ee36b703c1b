"""`backups schedule` and `backups summary`: when the daily backups run next, and where each manager's backups stand.

The scheduler (bot/schedule/scheduler.py) posts `backups summary` to BOT_SUMMARY_CHANNEL after each day's runs.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bot.engine.context import Ctx, Fire, Schedule
from bot.core import ArchiveCopy, Reply, Table, Tone, age, size
from bot.spec.parser import Args
from bot.spec.registry import Param, command
from commands.common import count, parse_time
from commands.drills import drill_lines
from commands.pruning import retention_text


def _managers(ctx: Ctx) -> list[str]:
    return [ctx.manager_name] if ctx.manager_named else list(ctx.managers)


def _local(schedule: Schedule, when: datetime) -> str:
    return f"{schedule.local(when):%Y-%m-%d %H:%M %Z}"


def _next_fires(ctx: Ctx, schedule: Schedule, now: datetime, managers: list[str], n: int = 1) -> list[Fire]:
    """The next `n` firings that will run a job: a later firing on a day that every manager has run is not."""
    fires = schedule.next_runs(now, n + 1)
    if all(ctx.catalog.get_run(m, ctx.backups.run_key(fires[0].day)) for m in managers):
        return fires[1:]
    return fires[:n]


def _check_next(value: int) -> str | None:
    return None if 1 <= value <= 50 else f"-n/--next must be between 1 and 50, got {value}"


@command("backups schedule", summary="When the daily backups run next, and how the last runs went",
         group="backups", params=[Param("count", ("-n", "--next"), "how many next runs to show (5, at most 50)",
                                         kind="int", default=5, metavar="N", check=_check_next)],
         examples=["backups schedule", "backup schedule -n 10", "backups schedule -m staging"])
def backups_schedule(ctx: Ctx, args: Args) -> Reply:
    """Answer `backups schedule`."""
    schedule, now = ctx.backups.schedule(), ctx.now()
    fires = _next_fires(ctx, schedule, now, _managers(ctx), args.count)
    fields = [("schedule", f"{ctx.settings.backup_schedule} in {schedule.tz_name} (once a day per manager)"),
              ("retention", retention_text(ctx)), ("scheduler", _heartbeat(ctx, now))]
    fields += [("next run" if i == 0 else "then", f"{_local(schedule, f.at)} (in {age((f.at - now).total_seconds())})")
               for i, f in enumerate(fires)]
    since = (schedule.today(now) - timedelta(days=7)).isoformat()
    rows = []
    for name in _managers(ctx):
        rows += [(name, r["day"], r["state"], r.get("snapshot_id") or "", (r.get("error") or "")[:80])
                 for r in ctx.catalog.list_runs(name, since_day=since)]
    table = Table(("manager", "day", "run", "snapshot", "error"), tuple(rows)) if rows else None
    return Reply(text=f"Next daily backup: {_local(schedule, fires[0].at)}.", title="Backup schedule",
                 fields=tuple(fields), table=table)


def _heartbeat(ctx: Ctx, now: datetime) -> str:
    mark = ctx.catalog.get_mark("schedule:heartbeat")
    if not mark:
        return ("no scheduler has ticked on this database (it runs inside `cfy-bot http`, `socket` or "
                "`scheduler`)")
    at, _, where = mark.partition(" ")
    seen = parse_time(at)
    ago = f"{age((now - seen).total_seconds())} ago" if seen else at
    return f"last ticked {ago} ({where})"


def _check_hours(value: int) -> str | None:
    return None if 1 <= value <= 24 * 366 else f"--hours must be between 1 and {24 * 366}, got {value}"


@command("backups summary", summary="Each manager's newest verified backup and its age, what was created, failed "
         "and pruned lately, archive size, next run", group="backups",
         params=[Param("hours", ("--hours",), "the window to report on, in hours (24)", kind="int", default=24,
                       metavar="N", check=_check_hours)],
         description="The scheduler posts this to BOT_SUMMARY_CHANNEL after each day's runs. It raises an alarm "
                     "when a manager has no verified backup younger than BOT_MAX_BACKUP_AGE.",
         examples=["backups summary", "backup summary --hours 72", "backups summary -m production"])
def backups_summary(ctx: Ctx, args: Args) -> Reply:
    """Answer `backups summary [--hours N]`."""
    return summary_reply(ctx, _managers(ctx), float(args.hours))


def summary_reply(ctx: Ctx, managers: list[str], hours: float) -> Reply:
    """The summary of `managers` over the last `hours`."""
    schedule, now = ctx.backups.schedule(), ctx.now()
    since = now - timedelta(hours=hours)
    nxt = _next_fires(ctx, schedule, now, managers)[0]
    lines, rows, alarms, trouble, drill_alarms = [], [], 0, 0, 0
    for name in managers:
        s = _manager_summary(ctx, name, now, since)
        alarms += s["alarm"]
        trouble += bool(s["failed"])
        lines += s["lines"]
        drill, alarmed = drill_lines(ctx, name, now)
        lines += drill
        drill_alarms += alarmed
        rows.append((name, s["newest"], s["age"], ", ".join(s["created"]) or "-", str(len(s["failed"])),
                     ", ".join(s["pruned"]) or "-", s["archive"]))
    window = f"{hours:g}h"
    lines.append(f"Next run: {_local(schedule, nxt.at)} (in {age((nxt.at - now).total_seconds())}).")
    rows_written, head = ctx.audit_log.audit_head()
    # Posted daily, the head anchors the log outside its file: `cfy-bot audit verify --expect-head SEQ:HASH`.
    lines.append(f"Audit log: {count(rows_written, 'row')}, head {rows_written}:{head}.")
    if alarms:
        title, tone = f"{count(alarms, 'manager')} without a recent verified backup", Tone.DANGER
    elif drill_alarms:
        title, tone = f"restore drills of {count(drill_alarms, 'manager')} failed or are overdue", Tone.DANGER
    elif trouble:
        title, tone = f"Backups: failures in the last {window}", Tone.WARNING
    else:
        title, tone = "Backups are good", Tone.GOOD
    table = Table(("manager", "newest verified", "age", f"created ({window})", f"failed ({window})",
                   f"pruned ({window})", "archive"), tuple(rows))
    return Reply(text="\n".join(lines), title=title, tone=tone, table=table, public=True,
                 ok=not (alarms or drill_alarms))


def _manager_summary(ctx: Ctx, name: str, now: datetime, since: datetime) -> dict[str, Any]:
    limit = ctx.settings.max_backup_age
    newest = ctx.catalog.latest_verified(name)
    made = (parse_time(newest.created_at) or parse_time(newest.stored_at)) if newest else None
    old = (now - made).total_seconds() if made else None
    alarm = old is None or old > limit
    copies = ctx.catalog.list_copies(manager=name)
    created = [c.snapshot_id + ("" if c.verified else " (NOT verified)") for c in copies
               if _made(c) >= since]  # when the snapshot was created, not when the bot copied it
    failed = _failures(ctx, name, now, since)
    pruned = [r["detail"].get("snapshot_id", "?") for r in
              ctx.audit_log.query_audit(manager=name, event="pruned", since=since, limit=1000)]
    total = sum(c.size or 0 for c in copies)
    archive = f"{len(copies)} {'copy' if len(copies) == 1 else 'copies'}, {size(total)}"
    lines = []
    if alarm or newest is None:
        newest_text = (f"the newest is {newest.snapshot_id}, {age(old)} old" if newest and old is not None
                       else "there is none")
        lines.append(f"ALARM {name}: NO verified backup younger than {age(limit)} ({newest_text}).")
    else:
        lines.append(f"{name}: newest verified backup {newest.snapshot_id}, {age(old or 0.0)} old.")
    lines.append(f"  created: {', '.join(created) or 'none'}; failed: {'; '.join(failed) or 'none'}; "
                 f"pruned: {', '.join(pruned) or 'none'}; archive: {archive}.")
    return {"alarm": alarm, "newest": newest.snapshot_id if newest else "none",
            "age": age(old) if old is not None else "-", "created": created, "failed": failed, "pruned": pruned,
            "archive": archive, "lines": lines}


def _made(copy: ArchiveCopy) -> datetime:
    """When the snapshot of an archive copy was created on its manager (the copy time if that is unknown)."""
    return (parse_time(copy.created_at) or parse_time(copy.stored_at)
            or datetime.min.replace(tzinfo=UTC))


def _failures(ctx: Ctx, name: str, now: datetime, since: datetime) -> list[str]:
    """Runs that failed or were skipped, and `snapshots create` operations that failed, in the window."""
    out = []
    start = (since - timedelta(days=2)).date().isoformat()
    for r in ctx.catalog.list_runs(name, since_day=start):
        ended = parse_time(r.get("finished_at"))
        if ctx.backups.is_failed(r["state"]) and ended and ended >= since:
            out.append(f"{r['day']} {r['state']}: {_first_line(r.get('error'))}")
    for op in ctx.engine.list_operations(states="failed", manager=name, kinds="snapshots create", limit=50):
        ended = parse_time(op.finished_at)
        if ended and ended >= since:
            out.append(f"snapshots create ({op.id}): {_first_line(op.error)}")
    return out


def _first_line(text: str | None) -> str:
    return ((text or "").strip().splitlines() or ["no reason recorded"])[0][:200]
