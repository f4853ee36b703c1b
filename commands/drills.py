"""`backups drill` and `backups drills`: restore the newest verified copy onto a disposable manager and check it.

A drill runs the guided restore's steps (DESIGN §5) on a manager declared `drill_target = true`, with `--force`
and no approval gate (the target is disposable), each step audited and shown in the operation's thread. Then it
checks the execution, snapshot-status, maintenance mode, the credentials the snapshot restored and the restored
content against the snapshot's own entity files or dump, and keeps the result with its recovery time.

The operation is held on the TARGET manager (its exclusive lock), so a drill never runs while the same target is
being drilled or restored. Reused from the guided restore: `start_restore` (the restore call, stray pending
executions), `watch_restore` (snapshot-status through the outage, re-authentication with the fallback
password), `wait_until_activated` (maintenance mode), and the archive's streamed `upload_copy`.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.core import DrillResult, DrillVerdict, Reply, Table, Tone
from bot.engine.context import ContentUnreadable, Ctx
from bot.errors import BotError, Cancelled, ManagerNotFound, NotModified, UsageError
from bot.spec.parser import Args
from bot.spec.registry import Param, command
from commands.archive_copy import need_archive, transfer_progress
from commands.common import check_snapshot_id, count, hint, last_line, parse_time
from commands.maintenance import MaintenanceTimeout, wait_until_activated
from commands.restore import start_restore
from commands.restore_watch import watch_restore

TIMEOUT_S = 900


def _check_target(value: str) -> str | None:
    return None if value == "latest" else check_snapshot_id(value)


def _backup_running(ctx: Ctx, source: str) -> bool:
    """Whether the daily backup of `source` holds an open claim (it is running now)."""
    since = (ctx.now() - timedelta(days=2)).date().isoformat()
    return any(r["state"] == "claimed" for r in ctx.catalog.list_runs(source, since_day=since))


def pick_target(ctx: Ctx, source: str, wanted: str) -> str:
    """The drill target: the one named, else the first configured drill target that is not the source."""
    settings = ctx.settings
    if wanted:
        if wanted not in ctx.managers:
            raise UsageError(f"unknown manager {wanted!r}; `managers` lists them")
        if wanted == source:
            raise BotError(f"refused: {wanted} is the drill's source; a drill never restores onto the manager "
                           "it tests the backup of. Name a drill target with --target "
                           f"({', '.join(settings.drill_targets()) or 'none configured'}).")
        if not settings.manager(wanted).drill_target:
            raise BotError(f"refused: {wanted} is not a drill target, and a drill replaces everything on its "
                           f"target. Only managers with `drill_target = true` in BOT_CONFIG can be drilled onto "
                           f"({', '.join(settings.drill_targets()) or 'none configured'}).")
        return wanted
    targets = [t for t in settings.drill_targets() if t != source]
    if not targets:
        raise BotError(f"no drill target for {source}: declare a disposable manager with `drill_target = true` "
                       "in its [managers.NAME] table of BOT_CONFIG")
    return targets[0]


def drill_preflight(ctx: Ctx, args: Args) -> dict[str, Any]:
    """Read-only: resolve source, target and archive copy, refuse what must not run; nothing is touched."""
    source = ctx.manager_name
    if source in ctx.settings.drill_targets() and not ctx.manager_named:
        others = [m for m in ctx.managers if m not in ctx.settings.drill_targets()]
        source = others[0] if others else source
    target = pick_target(ctx, source, args.target or "")
    requested = args.snapshot_id or "latest"
    if requested == "latest":
        copy = ctx.catalog.latest_verified(source)
        if not copy:
            raise BotError(f"there is no verified archive copy of {source}, so there is nothing to drill; take one "
                           f"with `backups run -m {source}` or `snapshots download ID -m {source}`")
    else:
        copy = ctx.catalog.get_copy(source, requested)
        if not copy or not copy.verified:
            raise BotError(f"{source} has no verified archive copy of {requested}; `backups verify -m {source}` "
                           f"checks the copies, `snapshots list -m {source}` shows which exist")
    if _backup_running(ctx, source):
        raise BotError(f"the daily backup of {source} is running; a drill waits until it has ended")
    ctx.manager_name = target  # the operation holds the target's lock: no drill or restore runs beside it
    return {"source": source, "target": target, "snapshot_id": copy.snapshot_id, "requested": requested,
            "copy_manager": copy.manager, "slot": args.get("slot") or ""}


@dataclass
class _Run:
    """What one drill has found so far."""

    began: float
    phases: list[tuple[str, float]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    recovery: float | None = None
    reason: str = ""
    maintenance_asked: bool = False  # this drill asked the target for maintenance mode


@command("backups drill", summary="Restore drill: restore the newest verified copy onto a disposable drill "
         "target, check execution, credentials and content, measure the recovery time", group="backups",
         permission="operator", long_running=True, exclusive=True, prepare=drill_preflight,
         params=[Param("snapshot_id", metavar="SNAPSHOT_ID|latest", default="latest", check=_check_target,
                       help="the archive copy to drill (`latest`: the newest verified copy of the source)"),
                 Param("target", ("--target",), "the drill target (a manager with drill_target = true)",
                       metavar="NAME", default=""),
                 Param("slot", ("--slot",), "the scheduled slot this drill runs for (the scheduler sets it)",
                       metavar="TIME", default="")],
         examples=["backups drill latest", "backups drill latest -m production --target staging",
                   "backup drill daily-20261128 --target staging"])
def backups_drill(ctx: Ctx, args: Args) -> Reply:
    """Run one restore drill and keep its result."""
    started = ctx.now()
    run = _Run(began=ctx.clock.monotonic())
    ctx.step(f"drill: {args.snapshot_id} of {args.source} onto {args.target} (a drill target: restored with "
             "--force, no approval)")
    try:
        _phases(ctx, args, run)
    except Cancelled as exc:  # someone cancelled it (before the restore was sent): not a failed drill
        raise Cancelled(f"{exc}. {_undo_maintenance(ctx, args, run)}No drill result was recorded.") from None
    except BotError as exc:
        run.reason = run.reason or str(exc)
    verdict = DrillVerdict.PASSED if not (run.reason or run.problems or run.mismatches) else DrillVerdict.FAILED
    if verdict is DrillVerdict.FAILED and not run.reason:
        run.reason = "; ".join(run.problems) or f"{len(run.mismatches)} mismatches"
    result = ctx.catalog.record_drill(DrillResult(
        id=uuid.uuid4().hex[:12], source=args.source, target=args.target, snapshot_id=args.snapshot_id,
        verdict=verdict, started_at=started, finished_at=ctx.now(), reason=run.reason[:500],
        mismatches=tuple(run.mismatches), recovery_seconds=run.recovery, phases=tuple(run.phases),
        requester=ctx.inv.actor.id, slot=args.slot or ""))
    ctx.audit("drill", drill=result.id, verdict=verdict.value, mismatches=len(result.mismatches),
              recovery_s=result.recovery_seconds)
    return _reply(ctx, result)


def _undo_maintenance(ctx: Ctx, args: Args, run: _Run) -> str:
    """A cancelled drill turns off the maintenance mode it asked for; what it did, as a sentence (or "")."""
    if not run.maintenance_asked:
        return ""
    try:
        ctx.manager.maintenance_deactivate()
    except NotModified:
        return f"Maintenance mode was already off on {args.target}. "
    except BotError as exc:
        return (f"Maintenance mode could not be turned off on {args.target} ({exc}): "
                f"{hint(ctx, 'maintenance-mode deactivate')} does it. ")
    return f"The maintenance mode the drill asked for was turned off again on {args.target}. "


def _timed(ctx: Ctx, run: _Run, name: str, began: float) -> None:
    run.phases.append((name, ctx.clock.monotonic() - began))


def _phases(ctx: Ctx, args: Args, run: _Run) -> None:
    client = ctx.manager
    if client.snapshot_status() == "running":
        raise BotError(f"a snapshot restore is already running on {args.target}; the drill did not start")
    t0 = ctx.clock.monotonic()
    sid = _upload(ctx, args)
    _timed(ctx, run, "upload", t0)
    t = ctx.clock.monotonic()
    _maintenance_on(ctx, run)
    _timed(ctx, run, "maintenance", t)
    t = ctx.clock.monotonic()
    start_restore(ctx, Args(snapshot_id=sid, force=True, restore_certificates=False, no_reboot=False))
    try:
        client, execution = watch_restore(ctx, ctx.recall("execution_id"))
    except BotError as exc:
        run.reason = f"the target did not answer after the restore: {exc}"
        raise
    _timed(ctx, run, "restore", t)
    if execution.status != "terminated":
        run.reason = (f"the restore execution {execution.id} ended {execution.status}: "
                      f"{last_line(execution.error) or 'no error text'}")
    t = ctx.clock.monotonic()
    _maintenance_off(ctx, client)
    _timed(ctx, run, "deactivate", t)
    t = ctx.clock.monotonic()
    _check(ctx, args, client, run)
    run.recovery = ctx.clock.monotonic() - t0 if not run.reason else None
    _timed(ctx, run, "checks", t)
    _remove_upload(ctx, client, sid)


def drill_snapshot_id(source: str, snapshot_id: str) -> str:
    """The id a drill uploads `snapshot_id` of `source` under on its target: `drill-<source>-<id>`, never an id the
    target's own snapshots use (its dailies have the same names as the source's); hashed when that is too long or
    not a valid id."""
    candidate = f"drill-{source}-{snapshot_id}"
    if check_snapshot_id(candidate) is None:
        return candidate
    return "drill-" + hashlib.sha256(f"{source}\0{snapshot_id}".encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _upload(ctx: Ctx, args: Args) -> str:
    """Upload the source's archive copy to the target under the drill's own id; that id."""
    copy = ctx.catalog.get_copy(args.copy_manager, args.snapshot_id)
    if copy is None:
        raise BotError(f"the archive copy of {args.snapshot_id} disappeared before the drill's upload")
    sid = drill_snapshot_id(args.source, args.snapshot_id)
    try:
        ctx.manager.get_snapshot(sid)
    except ManagerNotFound:
        pass
    else:  # an earlier drill's upload (the target's own snapshots never have a drill- id of this source)
        ctx.manager.delete_snapshot(sid)
        ctx.step(f"deleted {sid}, which an earlier drill left on {args.target}")
    ctx.step(f"uploading {args.snapshot_id} to {args.target} as {sid} from the archive copy of {copy.manager} "
             f"({copy.size or '?'} bytes, streamed); {args.target}'s own snapshots are not touched")
    need_archive(ctx).upload_copy(copy, ctx.manager, sid, progress=transfer_progress(ctx, sid, "uploading"))
    ctx.step(f"uploaded {sid}; sha256 {copy.sha256[:12]}… verified before sending")
    return sid


def _remove_upload(ctx: Ctx, client: Any, sid: str) -> None:
    """After the checks: the drill's upload goes, so drills leave nothing behind on the target."""
    try:
        client.delete_snapshot(sid)
    except ManagerNotFound:
        return  # a legacy restore replaced the target's snapshot table: the upload is no longer listed
    except BotError as exc:
        ctx.step(f"the drill's upload {sid} could not be deleted from {ctx.manager_name}: {exc}", tone=Tone.WARNING)
        return
    ctx.step(f"deleted the drill's upload {sid} from {ctx.manager_name}")


def _maintenance_on(ctx: Ctx, run: _Run) -> None:
    every: dict[str, Any] = {"include_system": True, "size": 500, "_all_tenants": True}
    waiting = ctx.manager.list_executions(status=["queued", "scheduled"], **every).items
    try:
        ctx.manager.maintenance_activate()
        run.maintenance_asked = True
        ctx.step(f"maintenance mode requested on {ctx.manager_name}")
    except NotModified:
        ctx.step(f"maintenance mode was already on (or activating) on {ctx.manager_name}")
    try:  # the target is disposable: its queued and scheduled executions are cancelled, as the guided restore does
        wait_until_activated(ctx, TIMEOUT_S, {e.id: e.tenant for e in waiting})
    except MaintenanceTimeout as exc:
        raise BotError(f"{exc} The drill's restore was not started.") from None
    ctx.step(f"verified: {ctx.manager_name} is in maintenance mode (activated)", tone=Tone.GOOD)


def _maintenance_off(ctx: Ctx, client: Any) -> None:
    try:
        client.maintenance_deactivate()
        ctx.step(f"{ctx.manager_name} has left maintenance mode")
    except NotModified:
        pass


def _check(ctx: Ctx, args: Args, client: Any, run: _Run) -> None:
    """Execution, snapshot-status, maintenance mode, credentials, content: every failed check is named."""
    status = client.snapshot_status()
    if status != "not-running":
        run.problems.append(f"snapshot-status is {status}, not not-running")
    mode = client.maintenance_status().get("status")
    if mode != "deactivated":
        run.problems.append(f"maintenance mode is {mode}, not off")
    copy = ctx.catalog.get_copy(args.copy_manager, args.snapshot_id)
    if copy is None:
        raise BotError(f"the archive copy of {args.snapshot_id} disappeared before the drill's checks")
    try:
        with need_archive(ctx).local_copy(copy) as path:
            expected = ctx.drills.snapshot_content(path)
    except ContentUnreadable as exc:
        run.problems.append(str(exc))
        return
    actual = ctx.drills.manager_content(client, expected.tenants())  # answers with the credentials the restore left
    run.mismatches = ctx.drills.compare(expected, actual, client.list_tenants())
    counts = ", ".join(f"{n} {k}" for k, n in sorted(expected.counts().items()))
    ctx.step(f"{args.target} answers with the restored data ({counts} in the snapshot, "
             f"{'legacy dump' if expected.legacy else 'entity files'})")
    for m in run.mismatches[:50]:
        ctx.step(f"mismatch: {m}", tone=Tone.DANGER)
    for p in run.problems:
        ctx.step(f"check failed: {p}", tone=Tone.DANGER)


def _reply(ctx: Ctx, d: DrillResult) -> Reply:
    fields = [("snapshot", d.snapshot_id), ("source → target", f"{d.source} → {d.target}"),
              ("recovery time", ctx.drills.duration(d.recovery_seconds) + " (upload start → target answered with the "
                                                                 "restored data)" if d.recovery_seconds else "-"),
              ("phases", ctx.drills.phases_text(d.phases) or "-")]
    if d.mismatches:
        fields.append(("mismatches", "\n".join(d.mismatches[:20]) + (f"\n… and {len(d.mismatches) - 20} more"
                                                                      if len(d.mismatches) > 20 else "")))
    if d.passed:
        text = (f"Drill passed: {d.snapshot_id} of {d.source} restored on {d.target} and matched the snapshot; "
                f"recovered in {ctx.drills.duration(d.recovery_seconds)}.")
        return Reply(text=text, title=f"Restore drill of {d.source} passed", tone=Tone.GOOD, fields=tuple(fields),
                     public=True)
    fields.insert(0, ("why", d.reason))
    text = f"Drill FAILED: {d.snapshot_id} of {d.source} on {d.target}: {d.reason}"
    return Reply(text=text, title=f"Restore drill of {d.source} failed", tone=Tone.DANGER, fields=tuple(fields),
                 public=True, ok=False)


def _check_count(value: int) -> str | None:
    return None if 1 <= value <= 200 else f"-n must be between 1 and 200, got {value}"


@command("backups drills", summary="Past restore drills: snapshot, target, result, mismatches, recovery time "
         "and its trend", group="backups",
         params=[Param("count", ("-n",), "how many drills to show (10, at most 200)", kind="int", default=10,
                       metavar="N", check=_check_count)],
         examples=["backups drills", "backups drills -m production -n 20"])
def backups_drills(ctx: Ctx, args: Args) -> Reply:
    """Answer `backups drills`."""
    source = ctx.manager_name if ctx.manager_named else None
    found = ctx.catalog.list_drills(source, limit=args.count)
    where = f" of {source}" if source else ""
    if not found:
        return Reply(text=f"No restore drills{where} yet; {hint(ctx, 'backups drill latest')} runs one.",
                     title="Restore drills")
    rows = tuple((f"{d.finished_at:%Y-%m-%d %H:%M}", d.source, d.snapshot_id, d.target, d.verdict.value,
                  str(len(d.mismatches)), ctx.drills.duration(d.recovery_seconds)) for d in found)
    trend = ctx.drills.sparkline([d.recovery_seconds for d in reversed(found)])
    passed = sum(d.passed for d in found)
    text = f"{count(len(found), 'restore drill')}{where}: {passed} passed, {len(found) - passed} failed."
    fields = (("recovery time trend (oldest → newest)", trend or "no recovery time yet"),)
    return Reply(text=text, title="Restore drills", fields=fields,
                 table=Table(("finished", "source", "snapshot", "target", "result", "mismatches", "recovery"), rows))


def drill_lines(ctx: Ctx, source: str, now: datetime) -> tuple[list[str], int]:
    """The daily summary's drill line for `source` and its alarm (1 when raised); nothing for a drill target."""
    targets = ctx.settings.drill_targets()
    if source in targets or not targets:
        return [], 0
    last, last_pass = ctx.catalog.last_drill(source), ctx.catalog.last_drill(source, passed=True)
    lines = [f"  {ctx.drills.summary_line(source, last, now)}"]
    began = parse_time(ctx.catalog.get_mark("drill:since"))  # set when the scheduler first considered drills
    if last is None and (began is None or (now - began).total_seconds() <= ctx.settings.max_drill_age):
        # as the scheduler's overdue alert: no drill can be overdue before one was ever due
        lines[0] += (f" (drills run on BOT_DRILL_SCHEDULE `{ctx.settings.drill_schedule}`; "
                     f"{hint(ctx, f'backups drill latest -m {source}')} runs one now)")
        return lines, 0
    alarm = ctx.drills.drill_alarm(source, last, last_pass, now, ctx.settings.max_drill_age, bool(targets))
    if alarm:
        lines.append(f"ALARM {source}: {alarm}.")
    return lines, int(bool(alarm))
