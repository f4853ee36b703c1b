"""The daily backup job and its companions: `backups run`, `backups schedule`, `backups prune [--dry-run]`,
`backups summary`.

`backups run` is what the scheduler (bot/schedule.py) invokes as `system:scheduler` for each manager and
day, and what an operator types to run today's job now. It claims the (manager, day) run before it starts
(prepare), skips a manager in maintenance mode, creates `daily-YYYYMMDD` (the day in BOT_TIMEZONE) through
the `snapshots create` path (follow the execution, copy it off, verify), retries a busy manager with
backoff, applies retention, and records how the run ended. A restarted bot resumes it from its journal.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from bot.context import Ctx
from bot.core import Reply, Table
from bot.daily_runs import FAILED, claim_day, owner_id, parse_key, run_key, run_operation
from bot.errors import BotError, ManagerNotFound, OperationError, UsageError
from bot.flows import wait_for_snapshot
from bot.parser import Args
from bot.registry import Param, command
from bot.render import age, size
from bot.retention import RULES, Backup, Plan, daily_day, select
from bot.timetable import Schedule
from commands.archive_copy import copy_off
from commands.common import parse_time
from commands.snapshot_create import CREATE_TIMEOUT, snapshots_create

BUSY_FIRST = 60.0  # s before the first retry of a busy manager; doubles each time
BUSY_MAX = 15 * 60.0
BUSY_GIVE_UP = 3 * 3600.0  # a manager still busy after this long fails the day's run (and alerts)
GOOD = ("created", "uploaded")
CREATE_ARGS = {"exclude_credentials": False, "exclude_logs": False, "exclude_events": False, "queue": False,
               "legacy": True}  # cfy's own defaults: the format every manager version restores


def _check_day(value: str) -> str | None:
    try:
        date.fromisoformat(value)
    except ValueError:
        return f"--day must be a date such as 2026-11-29, got {value!r}"
    return None


# --- backups run ----------------------------------------------------------------------------------------


def _claim(ctx: Ctx, args: Args) -> dict[str, Any]:
    """Before the operation exists: claim the day's run, so nobody else runs it (the scheduler never retries)."""
    schedule = Schedule.from_settings(ctx.settings)
    today = schedule.today(ctx.now())
    day = date.fromisoformat(args.day) if args.day else today
    if day > today:
        raise UsageError(f"--day {day} is in the future (today is {today} in {schedule.tz_name})",
                         usage=ctx.command.usage())
    owner = owner_id(ctx.inv.id)
    retry = ctx.inv.actor.source != "system"
    claim = claim_day(ctx.store, ctx.manager_name, day, owner, ctx.now(), retry=retry)
    if claim.key is None:
        raise OperationError(_held(ctx, claim.holder or {}))
    if claim.took_over:
        ctx.audit("run_taken_over", run=claim.key, previous_owner=claim.took_over.get("owner"))
    return {"day": day.isoformat(), "run": claim.key, "owner": owner}


def _held(ctx: Ctx, row: dict[str, Any]) -> str:
    """Why the day cannot be claimed, naming what holds it."""
    what = f"the daily backup of {ctx.manager_name} for {row.get('day')}"
    if row.get("state") == "succeeded":
        return (f"{what} is done: {row.get('snapshot_id') or 'its snapshot'} was copied off and verified "
                f"(finished {row.get('finished_at', '')[:16].replace('T', ' ')} UTC). "
                "`snapshots create` makes an extra snapshot.")
    if row.get("state") in FAILED:
        return f"{what} ended {row['state']}: {row.get('error') or 'no reason recorded'}"
    op = run_operation(ctx.store, ctx.manager_name, row.get("day", ""))
    if op:
        who = op.get("requester_name") or op.get("requester")
        return f"{what} is already running: operation {op['id']}, started by {who}, step: {op.get('step') or '-'}"
    return f"{what} was just claimed by {row.get('owner')} and is starting"


@command("backups run", summary="Run today's daily backup now: create daily-YYYYMMDD, copy it off and verify it, "
         "then apply retention", group="backups", permission="operator", long_running=True, resumable=True,
         params=[Param("day", ("--day",), "the day the run is for (default: today in BOT_TIMEZONE); the scheduler "
                       "passes it when it catches up a missed day", metavar="YYYY-MM-DD", check=_check_day)],
         prepare=_claim,
         description="Each manager's daily backup runs once a day: this claims the day first, so the schedule "
                     "will not run it again. A day whose run failed or was skipped can be run again. A manager in "
                     "maintenance mode is skipped; a busy one is retried with backoff for up to "
                     f"{age(BUSY_GIVE_UP)}. The snapshot is made in the legacy format (cfy's default, which every "
                     "manager version restores); an existing daily-YYYYMMDD of that day is reused.",
         examples=["backups run", "backup run -m staging", "backups run --day 2026-11-28 -m production"])
def backups_run(ctx: Ctx, args: Args) -> Reply:
    """Run (or, after a restart, resume) the daily job of one manager."""
    row = ctx.store.get_run(ctx.manager_name, args.run)
    if not row or row.get("state") != "claimed" or row.get("owner") != args.owner:
        held = f"{row.get('state')} by {row.get('owner')}" if row else "gone"
        return Reply(text=f"run {args.run} of {ctx.manager_name} is no longer this operation's ({held}); stopping",
                     title="Run taken over", tone="warning", ok=False)
    try:
        state, reply = _daily(ctx, args)
    except BotError as exc:
        _finish(ctx, args, "failed", str(exc))
        raise
    except Exception:
        _finish(ctx, args, "failed", f"internal error (operation {(ctx.op or {}).get('id')}; see the bot's log)")
        raise
    _finish(ctx, args, state, "" if state == "succeeded" else reply.text)
    return reply


def _finish(ctx: Ctx, args: Args, state: str, error: str) -> None:
    ctx.store.finish_run(ctx.manager_name, args.run, state, owner=args.owner, error=error[:2000],
                         snapshot_id=ctx.recall("daily_id") or "")
    ctx.audit("run_finished", run=args.run, state=state, snapshot_id=ctx.recall("daily_id") or "",
              error=error[:500])


def _daily(ctx: Ctx, args: Args) -> tuple[str, Reply]:
    """The job: maintenance check, snapshot, copy off, retention; (run state, reply)."""
    day = date.fromisoformat(args.day)
    if not ctx.recall("daily_id"):
        status = _maintenance(ctx)
        if status != "deactivated":
            return "skipped", _skipped(ctx, day, status)
        sid, adopt = _choose_id(ctx, day, parse_key(args.run)[1])
        ctx.remember(daily_id=sid, adopt=adopt)
    sid = ctx.recall("daily_id")
    if not ctx.recall("archived"):
        outcome = _backup(ctx, sid, day, bool(ctx.recall("adopt")))
        if outcome is not None:
            return outcome
        ctx.remember(archived=True)
    notes = _prune(ctx, None, "the daily job")
    copy = ctx.store.get_copy(ctx.manager_name, sid) or {}
    text = f"Daily backup {sid} of {ctx.manager_name} created, copied off and verified."
    if notes:
        text += "\n" + "\n".join(notes)
    return "succeeded", Reply(text=text, title=f"Daily backup of {ctx.manager_name}", tone="good",
                              fields=(("snapshot", sid), ("archive copy", copy.get("location", "")),
                                      ("size", size(copy.get("size"))), ("sha256", copy.get("sha256", ""))))


def _maintenance(ctx: Ctx) -> str:
    return str(ctx.manager.maintenance_status().get("status") or "?")


def _skipped(ctx: Ctx, day: date, status: str) -> Reply:
    text = (f"{ctx.manager_name} is in maintenance mode ({status}), so the daily backup of {day} was skipped. "
            f"Run `backups run -m {ctx.manager_name}` once it is out of maintenance mode.")
    ctx.step(text, "warning")
    return Reply(text=text, title=f"Daily backup of {ctx.manager_name} skipped", tone="warning", ok=False)


def _choose_id(ctx: Ctx, day: date, attempt: int) -> tuple[str, bool]:
    """`daily-YYYYMMDD`, reused when the manager already has it (created or being created); after a failed
    one, `daily-YYYYMMDD-N`. Returns (id, whether it already exists)."""
    base = f"daily-{day:%Y%m%d}"
    for n in range(1, 10):
        sid = base if n == 1 else f"{base}-{n}"
        try:
            snap = ctx.manager.get_snapshot(sid)
        except ManagerNotFound:
            return sid, False
        if snap.get("status") in (*GOOD, "creating"):
            ctx.step(f"{ctx.manager_name} already has {sid} ({snap.get('status')}); using it")
            return sid, True
    raise OperationError(f"{ctx.manager_name} already has failed snapshots {base} to {base}-9; delete some first")


def _backup(ctx: Ctx, sid: str, day: date, adopt: bool) -> tuple[str, Reply] | None:
    """Make sure `sid` exists, created, with a verified archive copy; None when it does, else the failure."""
    if adopt:
        snap = ctx.manager.get_snapshot(sid)
        if snap.get("status") == "creating":
            ctx.step(f"waiting for {sid} to be created on {ctx.manager_name}")
            snap = wait_for_snapshot(ctx, sid, timeout=CREATE_TIMEOUT)
        if snap.get("status") not in GOOD:
            why = (snap.get("error") or "").strip().splitlines()[-1:] or [str(snap.get("status"))]
            return "failed", _failed(ctx, f"snapshot {sid} failed on {ctx.manager_name}: {why[0]}")
        copy = ctx.store.get_copy(ctx.manager_name, sid)
        if copy and copy.get("verified"):
            ctx.step(f"{sid} already has a verified archive copy", "good")
        else:
            copy_off(ctx, snap)
        return None
    return _create(ctx, sid, day)


def _create(ctx: Ctx, sid: str, day: date) -> tuple[str, Reply] | None:
    """`snapshots create` (follow, copy off, verify), retried with backoff while the manager is busy."""
    began, delay = ctx.clock.monotonic(), BUSY_FIRST
    while True:
        reply = snapshots_create(ctx, Args({"snapshot_id": sid, **CREATE_ARGS}))
        if reply.ok:
            return None
        if ctx.recall("execution_id"):  # the create ran: it failed, or its copy did
            return "failed", _failed(ctx, reply.text)
        # Nothing was started: the manager refused because other executions run (the only such answer).
        waited = ctx.clock.monotonic() - began
        if waited + delay > BUSY_GIVE_UP:
            return "failed", _failed(ctx, f"{ctx.manager_name} was busy for {age(waited)}, so {sid} was not "
                                          f"created. {reply.text.splitlines()[0]}")
        ctx.step(f"{reply.text.splitlines()[0]} Trying again in {age(delay)}.", "warning")
        ctx.check_cancel()
        ctx.clock.sleep(delay)
        delay = min(delay * 2, BUSY_MAX)
        status = _maintenance(ctx)
        if status != "deactivated":
            return "skipped", _skipped(ctx, day, status)


def _failed(ctx: Ctx, text: str) -> Reply:
    return Reply(text=text, title=f"Daily backup of {ctx.manager_name} failed", tone="danger", ok=False)


# --- retention ---------------------------------------------------------------------------------------------


def _plan(ctx: Ctx) -> tuple[Plan, dict[str, dict], dict[str, dict]]:
    """The retention plan of this manager, with its daily snapshots on the manager and in the archive."""
    snaps: dict[str, dict] = {}
    offset = 0
    while True:
        page = ctx.manager.list_snapshots(offset=offset, size=1000)
        snaps.update({s["id"]: s for s in page.items if s.get("id")})
        offset += len(page.items)
        if not page.items or offset >= page.total:
            break
    copies = {c["snapshot_id"]: c for c in ctx.store.list_copies(manager=ctx.manager_name)}
    backups = [Backup(sid, str((snaps.get(sid) or {}).get("status") or ""), sid in copies,
                      bool((copies.get(sid) or {}).get("verified"))) for sid in set(snaps) | set(copies)]
    return select(backups, ctx.settings.retention), snaps, copies


def _where(sid: str, snaps: dict[str, dict], copies: dict[str, dict]) -> str:
    places = []
    if sid in snaps:
        places.append(f"on the manager ({snaps[sid].get('status')})")
    if sid in copies:
        places.append("in the archive" + ("" if copies[sid].get("verified") else " (NOT verified)"))
    return " and ".join(places)


def _prune(ctx: Ctx, allowed: set[str] | None, why: str) -> list[str]:
    """Delete what a fresh plan says goes (and `allowed` permits, when given), on the manager and in the archive."""
    plan, snaps, copies = _plan(ctx)
    notes, failed = [], []
    for sid in sorted(set(plan.delete) if allowed is None else set(plan.delete) & allowed):
        try:
            if sid in snaps:
                ctx.manager.delete_snapshot(sid)
            if sid in copies and ctx.archive is not None:
                ctx.archive.delete(copies[sid])
        except BotError as exc:
            failed.append(f"{sid}: {exc}")
            ctx.step(f"could not prune {sid}: {exc}", "warning")
            continue
        where = _where(sid, snaps, copies)
        ctx.audit("pruned", snapshot_id=sid, reason=plan.delete[sid], where=where, by=why)
        ctx.step(f"pruned {sid} {where}: {plan.delete[sid]}")
        notes.append(sid)
    out = [f"Pruned {len(notes)} old backups: {', '.join(notes)}."] if notes else []
    if failed:
        out.append("Could not prune: " + "; ".join(failed))
    return out


def _retention_text(ctx: Ctx) -> str:
    counts = dict(ctx.settings.retention)
    return ",".join(f"{r}={counts[r]}" for r in RULES if r in counts)


def _plan_table(plan: Plan, snaps: dict[str, dict], copies: dict[str, dict]) -> Table:
    rows = [(sid, "delete", _where(sid, snaps, copies), why) for sid, why in plan.delete.items()]
    rows += [(sid, "keep", _where(sid, snaps, copies), "; ".join(why)) for sid, why in plan.keep.items()]
    rows.sort(key=lambda r: daily_day(r[0]) or (date.min, 0), reverse=True)
    return Table(("snapshot", "fate", "where", "why"), tuple(rows))


@command("backups prune --dry-run", summary="Show which daily backups retention would delete, and why (changes "
         "nothing)", group="backups", permission="admin",
         description="Only daily-YYYYMMDD snapshots are ever pruned; manual and other snapshots are never touched. "
                     "The newest verified archive copy always stays.",
         examples=["backups prune --dry-run", "backup prune --dry-run -m staging"])
def backups_prune_dry_run(ctx: Ctx, args: Args) -> Reply:
    """Answer `backups prune --dry-run`."""
    plan, snaps, copies = _plan(ctx)
    head = (f"Retention ({_retention_text(ctx)}) on {ctx.manager_name}: {len(plan.delete)} daily backups would be "
            f"deleted, {len(plan.keep)} kept.")
    if plan.ignored:
        head += f" {len(plan.ignored)} other snapshots are not daily backups and are never pruned."
    return Reply(text=head + (" Nothing was changed." if plan.delete else ""), title="Retention (dry run)",
                 table=_plan_table(plan, snaps, copies) if plan.delete or plan.keep else None)


def _prune_facts(ctx: Ctx, args: Args) -> dict[str, Any]:
    """Before the gate: the plan, so the card lists exactly what goes and why."""
    if args.dry_run:
        raise UsageError(f"--dry-run goes right after `backups prune`: `backups prune --dry-run -m {ctx.manager_name}`"
                         " (nothing was changed)", usage=ctx.command.usage())
    plan, snaps, copies = _plan(ctx)
    if not plan.delete:
        raise OperationError(f"nothing to prune on {ctx.manager_name}: its {len(plan.keep)} daily backups are all "
                             f"within the retention ({_retention_text(ctx)})")
    lines = [f"{sid} {_where(sid, snaps, copies)}: {why}" for sid, why in sorted(plan.delete.items())]
    return {"planned": sorted(plan.delete), "count": len(plan.delete), "retention": _retention_text(ctx),
            "gate_detail": "\n".join(lines)}


@command("backups prune", summary="Delete the daily backups that retention does not keep, on the manager and in "
         "the archive", group="backups", permission="admin", gate="confirm",
         params=[Param("dry_run", ("--dry-run",), "only show what would go (write it right after `backups prune`)",
                       kind="bool", default=False)],
         prepare=_prune_facts, gate_text="delete {count} daily backups of {manager} (retention {retention})",
         description="The confirmation lists each backup that goes and why. Only what was confirmed, and what "
                     "retention still says goes when it runs, is deleted.",
         examples=["backups prune", "backup prune -m staging"])
def backups_prune(ctx: Ctx, args: Args) -> Reply:
    """Answer `backups prune` once confirmed."""
    notes = _prune(ctx, set(args.planned or ()), "backups prune")
    if not notes:
        return Reply(text=f"Nothing was pruned on {ctx.manager_name}: retention keeps them now.", title="Pruned")
    ok = not any(n.startswith("Could not") for n in notes)
    return Reply(text="\n".join(notes), title=f"Pruned on {ctx.manager_name}", tone="good" if ok else "warning",
                 ok=ok)


# --- schedule and summary ----------------------------------------------------------------------------------


def _managers(ctx: Ctx) -> list[str]:
    return [ctx.manager_name] if ctx.manager_named else list(ctx.services.managers)


def _local(schedule: Schedule, when: datetime) -> str:
    return f"{schedule.local(when):%Y-%m-%d %H:%M %Z}"


def _next_fires(ctx: Ctx, schedule: Schedule, now: datetime, managers: list[str], n: int = 1) -> list[Any]:
    """The next `n` firings that will run a job: a later firing on a day that every manager has run is not."""
    fires = schedule.next_runs(now, n + 1)
    if all(ctx.store.get_run(m, run_key(fires[0].day)) for m in managers):
        return fires[1:]
    return fires[:n]


@command("backups schedule", summary="When the daily backups run next, and how the last runs went",
         group="backups", params=[Param("count", ("-n", "--next"), "how many next runs to show (5)", kind="int",
                                         default=5, metavar="N")],
         examples=["backups schedule", "backup schedule -n 10", "backups schedule -m staging"])
def backups_schedule(ctx: Ctx, args: Args) -> Reply:
    """Answer `backups schedule`."""
    schedule, now = Schedule.from_settings(ctx.settings), ctx.now()
    fires = _next_fires(ctx, schedule, now, _managers(ctx), max(1, min(args.count, 50)))
    fields = [("schedule", f"{ctx.settings.backup_schedule} in {schedule.tz_name} (once a day per manager)"),
              ("retention", _retention_text(ctx)), ("scheduler", _heartbeat(ctx, now))]
    fields += [("next run" if i == 0 else "then", f"{_local(schedule, f.at)} (in {age((f.at - now).total_seconds())})")
               for i, f in enumerate(fires)]
    since = (schedule.today(now) - timedelta(days=7)).isoformat()
    rows = []
    for name in _managers(ctx):
        rows += [(name, r["day"], r["state"], r.get("snapshot_id") or "", (r.get("error") or "")[:80])
                 for r in ctx.store.list_runs(name, since_day=since)]
    table = Table(("manager", "day", "run", "snapshot", "error"), tuple(rows)) if rows else None
    return Reply(text=f"Next daily backup: {_local(schedule, fires[0].at)}.", title="Backup schedule",
                 fields=tuple(fields), table=table)


def _heartbeat(ctx: Ctx, now: datetime) -> str:
    mark = ctx.store.get_mark("schedule:heartbeat")
    if not mark:
        return "has not run on this database yet"
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
    schedule, now = Schedule.from_settings(ctx.settings), ctx.now()
    since = now - timedelta(hours=hours)
    nxt = _next_fires(ctx, schedule, now, managers)[0]
    lines, rows, alarms, trouble = [], [], 0, 0
    for name in managers:
        s = _manager_summary(ctx, name, now, since)
        alarms += s["alarm"]
        trouble += bool(s["failed"])
        lines += s["lines"]
        rows.append((name, s["newest"], s["age"], ", ".join(s["created"]) or "-", str(len(s["failed"])),
                     ", ".join(s["pruned"]) or "-", s["archive"]))
    window = f"{hours:g}h"
    lines.append(f"Next run: {_local(schedule, nxt.at)} (in {age((nxt.at - now).total_seconds())}).")
    if alarms:
        title, tone = f"ALARM: {alarms} manager(s) without a recent verified backup", "danger"
    elif trouble:
        title, tone = f"Backups: failures in the last {window}", "warning"
    else:
        title, tone = "Backups are good", "good"
    table = Table(("manager", "newest verified", "age", f"created ({window})", f"failed ({window})",
                   f"pruned ({window})", "archive"), tuple(rows))
    return Reply(text="\n".join(lines), title=title, tone=tone, table=table, public=True, ok=not alarms)


def _manager_summary(ctx: Ctx, name: str, now: datetime, since: datetime) -> dict[str, Any]:
    limit = ctx.settings.max_backup_age
    newest = ctx.store.latest_verified(name)
    made = parse_time((newest or {}).get("created_at")) or parse_time((newest or {}).get("stored_at"))
    old = (now - made).total_seconds() if made else None
    alarm = old is None or old > limit
    copies = ctx.store.list_copies(manager=name)
    created = [c["snapshot_id"] + ("" if c.get("verified") else " (NOT verified)") for c in copies
               if (parse_time(c.get("stored_at")) or datetime.min.replace(tzinfo=now.tzinfo)) >= since]
    failed = _failures(ctx, name, now, since)
    pruned = [r["detail"].get("snapshot_id", "?") for r in
              ctx.store.query_audit(manager=name, event="pruned", since=since, limit=1000)]
    total = sum(c.get("size") or 0 for c in copies)
    archive = f"{len(copies)} {'copy' if len(copies) == 1 else 'copies'}, {size(total)}"
    lines = []
    if alarm:
        newest_text = (f"the newest is {newest['snapshot_id']}, {age(old)} old" if newest and old is not None
                       else "there is none")
        lines.append(f"ALARM {name}: NO verified backup younger than {age(limit)} ({newest_text}).")
    else:
        lines.append(f"{name}: newest verified backup {newest['snapshot_id']}, {age(old)} old.")
    lines.append(f"  created: {', '.join(created) or 'none'}; failed: {'; '.join(failed) or 'none'}; "
                 f"pruned: {', '.join(pruned) or 'none'}; archive: {archive}.")
    return {"alarm": alarm, "newest": (newest or {}).get("snapshot_id", "none"),
            "age": age(old) if old is not None else "-", "created": created, "failed": failed, "pruned": pruned,
            "archive": archive, "lines": lines}


def _failures(ctx: Ctx, name: str, now: datetime, since: datetime) -> list[str]:
    """Runs that failed or were skipped, and `snapshots create` operations that failed, in the window."""
    out = []
    start = (since - timedelta(days=2)).date().isoformat()
    for r in ctx.store.list_runs(name, since_day=start):
        ended = parse_time(r.get("finished_at"))
        if r["state"] in FAILED and ended and ended >= since:
            out.append(f"{r['day']} {r['state']}: {_first_line(r.get('error'))}")
    for op in ctx.store.list_operations(states="failed", manager=name, kinds="snapshots create", limit=50):
        ended = parse_time(op.get("finished_at"))
        if ended and ended >= since:
            out.append(f"snapshots create ({op['id']}): {_first_line(op.get('error'))}")
    return out


def _first_line(text: str | None) -> str:
    return ((text or "").strip().splitlines() or ["no reason recorded"])[0][:200]


__all__ = ["backups_prune", "backups_prune_dry_run", "backups_run", "backups_schedule", "backups_summary",
           "run_key", "summary_reply"]
