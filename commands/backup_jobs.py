"""The daily backup job: `backups run`.

`backups run` is what the scheduler (bot/schedule/scheduler.py) invokes as `system:scheduler` for each manager and
day, and what an operator types to run today's job now. It claims the (manager, day) run before it starts
(prepare), skips a manager in maintenance mode, creates `daily-YYYYMMDD` (the day in BOT_TIMEZONE) through
the `snapshots create` path (follow the execution, copy it off, verify), retries a busy manager with
backoff, applies retention, and records how the run ended. A restarted bot resumes it from its journal.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from bot.engine.context import Ctx
from bot.core import Operation, Reply, Tone, age, size
from bot.errors import BotError, ManagerNotFound, NothingToDo, OperationError
from bot.spec.parser import Args
from bot.spec.registry import Param, command
from commands.archive_copy import copy_off
from commands.pruning import prune_backups, retention_plan, retention_text
from commands.retention import Backup
from commands.snapshot_create import CREATE_TIMEOUT, snapshots_create
from commands.common import hint

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


def _claim(ctx: Ctx, args: Args) -> dict[str, Any]:
    """Before the operation exists: claim the day's run, so nobody else runs it (the scheduler never retries)."""
    schedule = ctx.backups.schedule()
    today = schedule.today(ctx.now())
    day = date.fromisoformat(args.day) if args.day else today
    if day > today:
        raise OperationError(f"--day {day} is in the future (today is {today} in {schedule.tz_name}): a backup "
                             "is taken on its day or later, never ahead of it")
    held = ctx.catalog.get_run(ctx.manager_name, ctx.backups.run_key(day))
    if day < today and (held is None or ctx.backups.is_failed(held.get("state"))):
        _refuse_a_day_retention_prunes(ctx, day)  # a done or running day is answered by the claim below
    owner = ctx.backups.owner_id(ctx.inv.id)
    retry = ctx.inv.actor.source != "system"
    claim = ctx.backups.claim_day(ctx.manager_name, day, owner, ctx.now(), retry=retry)
    if claim.key is None:
        holder = claim.holder or {}
        if holder.get("state") == "succeeded":
            raise NothingToDo(_held(ctx, holder))  # what was asked is done: exit 0
        op = ctx.backups.run_operation(ctx.manager_name, holder.get("day", ""))
        if op and ctx.inv.actor.source != "system":
            _follow(ctx, op)  # a person asked: wait for that run and answer with its result
        raise OperationError(_held(ctx, holder))
    if claim.took_over:
        ctx.audit("run_taken_over", run=claim.key, previous_owner=claim.took_over.get("owner"))
    return {"day": day.isoformat(), "run": claim.key, "owner": owner}


def _refuse_a_day_retention_prunes(ctx: Ctx, day: date) -> None:
    """A catch-up for a past day that retention would prune in the same run is refused before anything is made."""
    sid = f"daily-{day:%Y%m%d}"
    plan, _snaps, _copies = retention_plan(ctx, extra=Backup(sid, "created", archived=True, verified=True))
    if sid in plan.delete:
        raise OperationError(f"a daily backup for {day} would be pruned by retention ({retention_text(ctx)}) in "
                             f"the same run: {plan.delete[sid]}. Nothing was created. {hint(ctx, 'snapshots create')} "
                             "makes a snapshot that retention never prunes")


FOLLOW_LIMIT_S = 6 * 3600.0  # a daily run that takes longer is reported as still running


def _follow(ctx: Ctx, op: Operation) -> None:
    """Wait for another process's run of the same day to end; NothingToDo when it succeeded, else its failure."""
    ctx.step(f"the daily backup of {ctx.manager_name} is already running as operation {op.id}; following it")
    waited = 0.0
    current: Operation | None = op
    while current is not None and not current.final and waited < FOLLOW_LIMIT_S:
        ctx.clock.sleep(2.0)
        waited += 2.0
        current = ctx.catalog.get_operation(op.id)
    if current is not None and current.state == "succeeded":
        raise NothingToDo(f"the daily backup of {ctx.manager_name} ran as operation {op.id} and succeeded: "
                          f"{current.step or 'done'}")
    if current is not None and not current.final:
        raise OperationError(f"operation {op.id} is still running after {age(waited)}; `operations` shows it")
    state, error = (current.state, current.error) if current else ("gone", "")
    raise OperationError(f"the daily backup of {ctx.manager_name} ran as operation {op.id} and ended "
                         f"{state}: {error or 'no reason recorded'}")


def _since(ctx: Ctx, sid: str, row: dict[str, Any]) -> str:
    """What became of a finished run's snapshot since (checked now): "" while its verified copy is there."""
    copy = ctx.catalog.get_copy(ctx.manager_name, sid) if sid else None
    if copy is not None:
        return "" if copy.verified else f"; its archive copy has since failed its check: {copy.error or '?'}"
    began = row.get("claimed_at") or row.get("finished_at") or None  # the run's own retention step counts
    pruned = ctx.audit_log.query_audit(manager=ctx.manager_name, event="pruned", since=began, limit=1000)
    why = next(((r.get("detail") or {}) for r in pruned if (r.get("detail") or {}).get("snapshot_id") == sid), None)
    if why is not None:
        return f", then pruned by retention ({why.get('reason') or 'no reason recorded'})"
    return (f"; the archive no longer has {sid} (it was deleted since; {hint(ctx, 'snapshots list')} shows what "
            "exists)")


def _held(ctx: Ctx, row: dict[str, Any]) -> str:
    """Why the day cannot be claimed, naming what holds it."""
    what = f"the daily backup of {ctx.manager_name} for {row.get('day')}"
    if row.get("state") == "succeeded":
        sid = row.get("snapshot_id") or ""
        return (f"{what} is done: {sid or 'its snapshot'} was copied off and verified "
                f"(finished {row.get('finished_at', '')[:16].replace('T', ' ')} UTC){_since(ctx, sid, row)}. "
                f"{hint(ctx, 'snapshots create')} makes an extra snapshot.")
    if ctx.backups.is_failed(row.get("state")):
        return f"{what} ended {row['state']}: {row.get('error') or 'no reason recorded'}"
    op = ctx.backups.run_operation(ctx.manager_name, row.get("day", ""))
    if op:
        who = op.requester_name or op.requester
        return f"{what} is already running: operation {op.id}, started by {who}, step: {op.step or '-'}"
    return f"{what} was just claimed by {row.get('owner')} and is starting"


@command("backups run", summary="Run today's daily backup now: create daily-YYYYMMDD, copy it off and verify it, "
         "then apply retention", group="backups", permission="operator", long_running=True, resumable=True,
         params=[Param("day", ("--day",), "the day the run is for (default: today in BOT_TIMEZONE); the scheduler "
                       "passes it when it catches up a missed day. A snapshot taken now is named by today "
                       "(it holds today's data); one made on a past day is reused", metavar="YYYY-MM-DD",
                       check=_check_day)],
         prepare=_claim,
         description="Each manager's daily backup runs once a day: this claims the day first, so the schedule "
                     "will not run it again. A day whose run failed or was skipped can be run again; a past day "
                     "whose backup retention would prune in the same run is refused before anything is made. A "
                     "manager in "
                     "maintenance mode is skipped; a busy one is retried with backoff for up to "
                     f"{age(BUSY_GIVE_UP)}. The snapshot is made in the legacy format (cfy's default, which every "
                     "manager version restores); an existing daily-YYYYMMDD of that day is reused.",
         examples=["backups run", "backup run -m staging", "backups run --day 2026-11-28 -m production"])
def backups_run(ctx: Ctx, args: Args) -> Reply:
    """Run (or, after a restart, resume) the daily job of one manager."""
    row = ctx.catalog.get_run(ctx.manager_name, args.run)
    if not row or row.get("state") != "claimed" or row.get("owner") != args.owner:
        held = f"{row.get('state')} by {row.get('owner')}" if row else "gone"
        return Reply(text=f"run {args.run} of {ctx.manager_name} is no longer this operation's ({held}); stopping",
                     title="Run taken over", tone=Tone.WARNING, ok=False)
    try:
        state, reply = _daily(ctx, args)
    except BotError as exc:
        _finish(ctx, args, "failed", str(exc))
        raise
    except Exception:
        _finish(ctx, args, "failed", f"internal error (operation {ctx.op.id if ctx.op else None}; see the bot's log)")
        raise
    _finish(ctx, args, state, "" if state == "succeeded" else reply.text)
    return reply


def _finish(ctx: Ctx, args: Args, state: str, error: str) -> None:
    ctx.catalog.finish_run(ctx.manager_name, args.run, state, owner=args.owner, error=error[:2000],
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
        sid, adopt = _choose_id(ctx, _name_day(ctx, day), ctx.backups.parse_key(args.run)[1])
        ctx.remember(daily_id=sid, adopt=adopt)
    sid = ctx.recall("daily_id")
    if not ctx.recall("archived"):
        outcome = _backup(ctx, sid, day, bool(ctx.recall("adopt")))
        if outcome is not None:
            return outcome
        ctx.remember(archived=True)
    notes = prune_backups(ctx, None, "the daily job")
    copy = ctx.catalog.get_copy(ctx.manager_name, sid)
    text = f"Daily backup {sid} of {ctx.manager_name} created, copied off and verified."
    if not sid.startswith(f"daily-{day:%Y%m%d}"):
        text = (f"Daily backup {sid} of {ctx.manager_name} created, copied off and verified, for the run of {day} "
                f"(taken later, so named by the day it was taken).")
    text += "\n" + ("\n".join(notes) if notes else f"Retention ({retention_text(ctx)}): nothing to prune.")
    return "succeeded", Reply(text=text, title=f"Daily backup of {ctx.manager_name}", tone=Tone.GOOD,
                              fields=(("snapshot", sid), ("archive copy", copy.location if copy else ""),
                                      ("size", size(copy.size if copy else None)),
                                      ("sha256", copy.sha256 if copy else "")))


def _maintenance(ctx: Ctx) -> str:
    return str(ctx.manager.maintenance_status().get("status") or "?")


def _skipped(ctx: Ctx, day: date, status: str) -> Reply:
    text = (f"{ctx.manager_name} is in maintenance mode ({status}), so the daily backup of {day} was skipped. "
            f"Run `backups run -m {ctx.manager_name}` once it is out of maintenance mode.")
    ctx.step(text, Tone.WARNING)
    return Reply(text=text, title=f"Daily backup of {ctx.manager_name} skipped", tone=Tone.WARNING, ok=False)


def _name_day(ctx: Ctx, day: date) -> date:
    """The day a daily backup is named by: the day its data is from. A past day's snapshot made on that day is
    adopted; one taken now holds today's data, so it is named by today (retention, `restore latest` and the
    monthly/yearly slots read the day from the name), and the run of `day` records which snapshot filled it."""
    today = ctx.backups.schedule().today(ctx.now())
    if day >= today:
        return day
    try:
        made = ctx.manager.get_snapshot(f"daily-{day:%Y%m%d}").get("status") in (*GOOD, "creating")
    except ManagerNotFound:
        made = False
    if made:
        return day
    ctx.step(f"the backup for {day} is taken now, on {today}: it holds {today}'s data, so it is named "
             f"daily-{today:%Y%m%d}, not after {day}")
    return today


def _choose_id(ctx: Ctx, day: date, attempt: int) -> tuple[str, bool]:
    """`daily-YYYYMMDD`, reused when the manager already has it (created or being created); after a failed
    one, or when only the archive keeps a copy under that id (never overwritten), `daily-YYYYMMDD-N`. Returns
    (id, whether it already exists)."""
    base = f"daily-{day:%Y%m%d}"
    for n in range(1, 10):
        sid = base if n == 1 else f"{base}-{n}"
        try:
            snap = ctx.manager.get_snapshot(sid)
        except ManagerNotFound:
            if ctx.catalog.get_copy(ctx.manager_name, sid) is None:
                return sid, False
            ctx.step(f"the archive keeps a copy of {sid} that {ctx.manager_name} no longer has; a kept copy is "
                     "never overwritten, so this run takes the next id")
            continue
        if snap.get("status") in (*GOOD, "creating"):
            ctx.step(f"{ctx.manager_name} already has {sid} ({snap.get('status')}); using it")
            return sid, True
    raise OperationError(f"{ctx.manager_name} or its archive already has snapshots {base} to {base}-9 (failed on "
                         "the manager, or kept only in the archive); delete some first")


def _backup(ctx: Ctx, sid: str, day: date, adopt: bool) -> tuple[str, Reply] | None:
    """Make sure `sid` exists, created, with a verified archive copy; None when it does, else the failure."""
    if adopt:
        snap = ctx.manager.get_snapshot(sid)
        if snap.get("status") == "creating":
            ctx.step(f"waiting for {sid} to be created on {ctx.manager_name}")
            snap = ctx.follower.wait_for_snapshot(ctx, sid, timeout=CREATE_TIMEOUT)
        if snap.get("status") not in GOOD:
            why = (snap.get("error") or "").strip().splitlines()[-1:] or [str(snap.get("status"))]
            return "failed", _failed(ctx, f"snapshot {sid} failed on {ctx.manager_name}: {why[0]}")
        copy = ctx.catalog.get_copy(ctx.manager_name, sid)
        if copy and copy.verified:
            ctx.step(f"{sid} already has a verified archive copy", Tone.GOOD)
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
        ctx.step(f"{reply.text.splitlines()[0]} Trying again in {age(delay)}.", Tone.WARNING)
        ctx.check_cancel()
        ctx.clock.sleep(delay)
        delay = min(delay * 2, BUSY_MAX)
        status = _maintenance(ctx)
        if status != "deactivated":
            return "skipped", _skipped(ctx, day, status)


def _failed(ctx: Ctx, text: str) -> Reply:
    return Reply(text=text, title=f"Daily backup of {ctx.manager_name} failed", tone=Tone.DANGER, ok=False)
