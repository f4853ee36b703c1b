"""`restore SNAPSHOT_ID|latest`: the guide's "Applying snapshot" procedure as a guided, resumable operation.

Phases (DESIGN §5), each a thread reply and an audit row, each journaled before it acts so a restarted bot
resumes where it stopped: preflight (before the gate) → upload (if the manager lacks the snapshot) →
maintenance mode (activate, verify `activated`) → restore (the point of no return) → watch snapshot-status
through the outage → read the result (re-authenticating) → scheduled executions report → deactivate
(only through a gate after a failure) → summary with durations.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from bot.engine.context import Ctx
from bot.core import ArchiveCopy, Execution, Reply, Tone, age, person, size
from bot.errors import ArchiveError, BotError, ManagerNotFound, NotModified, UsageError
from bot.spec.parser import Args
from bot.spec.registry import Param, command
from commands.archive_copy import need_archive, transfer_progress
from commands.common import check_snapshot_id, count, hint, last_line, parse_time
from commands.executions import cancel_hints, describe
from commands.incidents import restore_incident
from commands.maintenance import TIMEOUT, MaintenanceTimeout, wait_until_activated
from commands.restore_snapshots import copy_off_first, snapshots_facts, snapshots_left, snapshots_line
from commands.restore_watch import (
    ACTIVE,
    await_reboot,
    deactivate_after,
    kill_stray_restores,
    report_cancelled,
    report_content,
    report_schedules,
    watch_restore,
)


def _check_target(value: str) -> str | None:
    return None if value == "latest" else check_snapshot_id(value)


RESTORE_PARAMS = [
    Param("force", ("-f", "--force"), "restore onto a manager that has data (cfy's --force; it deletes that data)",
          kind="bool", default=False),
    Param("restore_certificates", ("--restore-certificates",), "restore the snapshot's certificates (the manager "
          "reboots unless --no-reboot)", kind="bool", default=False),
    Param("no_reboot", ("--no-reboot",), "do not reboot after restoring certificates", kind="bool", default=False),
]


def preflight(ctx: Ctx, args: Args) -> dict[str, Any]:
    """Read-only checks before the gate: resolve the snapshot, refuse what cannot work, list what will be hit."""
    if args.no_reboot and not args.restore_certificates:
        raise UsageError("--no-reboot only applies with --restore-certificates")
    client, now = ctx.manager, ctx.now()
    target = _resolve(ctx, args.snapshot_id)
    version = client.version()
    if client.snapshot_status() == "running":
        raise BotError(f"a snapshot restore is already running on {ctx.manager_name} "
                       f"({hint(ctx, 'snapshots status')})")
    needs_upload = ""
    copy = _archive_copy(ctx, target)
    try:
        snap = client.get_snapshot(target)
        if snap.get("status") == "failed":
            raise BotError(f"snapshot {target} on {ctx.manager_name} failed and cannot be restored: "
                           f"{last_line(snap.get('error'))}. Pick another with {hint(ctx, 'snapshots list')}.")
        if snap.get("status") == "creating":
            raise BotError(f"snapshot {target} is still being created on {ctx.manager_name}; wait for it")
    except ManagerNotFound:
        if copy is None:
            raise BotError(f"snapshot {target} is neither on {ctx.manager_name} nor in the archive") from None
        needs_upload = copy.manager
    fmt = _refuse_what_cannot_work(ctx, args, target, copy, str(version.get("version") or "?"),
                                   on_manager=not needs_upload)
    # maintenance mode waits on all tenants; while it is activated executions are read past it (sys-admin)
    every: dict[str, Any] = {"include_system": True, "size": 500, "_all_tenants": True, "bypass_maintenance": True}
    active = client.list_executions(status=list(ACTIVE), **every).items
    scheduled = client.list_executions(status="scheduled", **every).items
    queued = client.list_executions(status="queued", **every).items
    maintenance = client.maintenance_status().get("status", "?")
    facts = {
        "snapshot_id": target, "requested": args.snapshot_id, "needs_upload": needs_upload,
        "server_version": version.get("version", "?"), "maintenance_before": maintenance,
        "active_before": [_record(e, "id", "workflow_id", "deployment_id", "status") for e in active],
        "scheduled_before": [_record(e, "id", "workflow_id", "deployment_id", "scheduled_for", "tenant_name",
                                     "status") for e in scheduled],
        "queued_before": [_record(e, "id", "workflow_id", "deployment_id", "tenant_name", "status") for e in queued],
        **fmt,
    }
    facts["effect"] = EFFECT.get(facts["layout"], EFFECT["unknown"])
    facts.update(snapshots_facts(ctx, target))
    facts["certificates"] = certificates_line(args, facts["layout"])
    facts["gate_detail"] = _gate_detail(ctx, facts, now)
    return facts


def _record(execution: Execution, *keys: str) -> dict[str, Any]:
    """Some of an execution's fields, in the manager's names, for the operation's facts (JSON in the store)."""
    wire = execution.wire()
    return {k: wire[k] for k in keys}


def _read_back(records: list[dict[str, Any]]) -> list[Execution]:
    """The executions `_record` wrote into the facts."""
    return [Execution.from_wire(record) for record in records]


EFFECT = {"legacy": "which replaces everything on the manager",
          "new": "which adds the snapshot's entities to what the manager has (it replaces none)",
          "unknown": "which replaces everything on the manager if it is a legacy-format snapshot"}
MIN_SNAPSHOT = (4, 0, 0)  # the legacy restore's own floor (reference §2.7)


def version_tuple(text: str) -> tuple[int, int, int]:
    """`7.0.5` -> (7, 0, 5); `6.4` -> (6, 4, 0); `7.0.5-ga` -> (7, 0, 5)."""
    nums = [int(n) for n in re.findall(r"\d+", text)[:3]]
    return (nums + [0, 0, 0])[0], (nums + [0, 0, 0])[1], (nums + [0, 0, 0])[2]


def _snapshot_format(ctx: Ctx, target: str, copy: ArchiveCopy | None,
                     on_manager: bool) -> tuple[str, str, str, str]:
    """(snapshot_version, layout, why unknown, where it was read) from metadata.json: the archive copy's, else
    the manager's own copy, of which only the first bytes are read (the manager's record does not say)."""
    why: list[str] = []
    if copy is not None:
        try:
            version, layout = need_archive(ctx).snapshot_format(copy)
            return version, layout, "", f"its archive copy of {copy.manager}"
        except ArchiveError as exc:
            why.append(f"its archive copy could not be read: {exc}")
    else:
        why.append("the bot has no archive copy of it")
    if on_manager:
        try:
            version, layout, read = need_archive(ctx).manager_snapshot_format(ctx.manager, target)
            return version, layout, "", f"the first {size(read)} of {ctx.manager_name}'s copy"
        except ArchiveError as exc:
            why.append(str(exc))
    return "", "unknown", "; ".join(why) + " (the manager's snapshot record does not say)", ""


def _refuse_what_cannot_work(ctx: Ctx, args: Args, target: str, copy: ArchiveCopy | None,
                             server: str, on_manager: bool) -> dict[str, Any]:
    """Refuse, touching nothing, what the manager would refuse only after maintenance mode and cancellations:
    a snapshot newer than the manager or older than 4.0; a legacy (or unknown) snapshot without -f on a manager
    that has blueprints. The facts it read, for the card."""
    version, layout, unknown, source = _snapshot_format(ctx, target, copy, on_manager)
    told = f"{target} was taken on Cloudify {version} (metadata.json in {source})" if version else ""
    if version and version_tuple(version) > version_tuple(server):
        why = ("a manager refuses to restore a newer manager's snapshot" if layout == "legacy" else
               "a new-format restore checks no version, so the manager would try it; the bot refuses it, as a "
               f"manager refuses a newer legacy snapshot. Restore it on a manager of {version} or later")
        raise BotError(f"{told}, newer than {ctx.manager_name}'s {server}: {why}. Nothing was changed.")
    if version and version_tuple(version) < MIN_SNAPSHOT:
        raise BotError(f"{told}: a manager restores snapshots of 4.0 and later only. Nothing was changed.")
    # read past maintenance mode: a retry after a failed restore finds it still on (reference §4)
    blueprints = ctx.manager.list_blueprints(all_tenants=True, size=1, bypass_maintenance=True).total
    deployments = ctx.manager.list_deployments(all_tenants=True, size=1, sort=None, bypass_maintenance=True).total
    if layout != "new" and blueprints and not args.force:
        has = f"{ctx.manager_name} has {count(blueprints, 'blueprint')} and {count(deployments, 'deployment')}"
        again = hint(ctx, f"{ctx.command.name} {args.snapshot_id} -f")
        if layout == "legacy":
            raise BotError(f"{target} is a legacy-format snapshot ({version}; metadata.json in {source}) and {has} "
                           "(all tenants counted): the "
                           "manager refuses a legacy restore onto a manager with blueprints unless it is forced, "
                           f"and forcing it deletes them. Nothing was changed. To replace them, run {again}.")
        copy_first = (f"Copy it first with {hint(ctx, f'snapshots download {target}')} so the bot can read its "
                      "format, or run" if on_manager else "Run")
        raise BotError(f"the bot cannot tell whether {target} is a legacy-format snapshot ({unknown}), and {has}: "
                       "a legacy snapshot would be refused only after maintenance mode was entered. Nothing was "
                       f"changed. {copy_first} {again} (a legacy restore then deletes them).")
    return {"snapshot_version": version, "layout": layout, "format_unknown": unknown, "format_source": source,
            "has_copy": copy is not None, "blueprints": blueprints, "deployments": deployments}


def _resolve(ctx: Ctx, requested: str) -> str:
    """`latest` is the newest verified archive copy of this manager."""
    if requested != "latest":
        return requested
    copy = ctx.catalog.latest_verified(ctx.manager_name)
    if not copy:
        raise BotError(f"there is no verified archive copy for {ctx.manager_name}, so `latest` means nothing; "
                       f"take one with {hint(ctx, 'snapshots create')} or name a snapshot")
    return str(copy.snapshot_id)


def _archive_copy(ctx: Ctx, snapshot_id: str) -> ArchiveCopy | None:
    """A verified archive copy of `snapshot_id`: this manager's first, else another manager's."""
    own = ctx.catalog.get_copy(ctx.manager_name, snapshot_id)
    if own and own.verified:
        return own
    others = [c for c in ctx.catalog.list_copies(verified=True) if c.snapshot_id == snapshot_id]
    return others[0] if others else None


def _gate_detail(ctx: Ctx, facts: dict[str, Any], now: Any) -> str:
    lines = [f"Manager version {facts['server_version']}, maintenance mode now {facts['maintenance_before']}."]
    if facts["requested"] == "latest":
        lines.append(f"`latest` is {facts['snapshot_id']}, the newest verified archive copy.")
    if facts["needs_upload"]:
        lines.append(f"The manager lacks it: it will first be uploaded from the archive copy of "
                     f"{facts['needs_upload']}.")
    if facts["active_before"]:
        lines.append(f"{len(facts['active_before'])} executions are active; maintenance mode waits for them: "
                     f"{describe(_read_back(facts['active_before']))}.")
    lines.append(_format_line(facts))
    snapshots = snapshots_line(ctx, facts)
    if snapshots:
        lines.append(snapshots)
    waiting = _read_back(facts["scheduled_before"] + facts["queued_before"])
    if waiting:
        lines.append(f"{len(waiting)} queued or scheduled executions would keep maintenance mode from ever "
                     f"activating: {describe(waiting)}. The bot will cancel them, writing each one whole to this "
                     "operation's journal first; the restore does not bring them back unless the snapshot holds "
                     "them, and the report lists what would have to be re-created.")
    fate = schedule_fate(facts["server_version"], facts["layout"])
    if fate:
        lines.append(fate)
    if facts.get("certificates"):
        lines.append(facts["certificates"])
    return "\n".join(lines)


def certificates_line(args: Args, layout: str) -> str:
    """What --restore-certificates (and --no-reboot) will do, for the card both admins decide on (reference
    §2.7: the legacy restore's post-restore job moves the certificates and runs `sudo shutdown -r now`; a
    new-format restore ignores both flags)."""
    if not args.restore_certificates:
        return ""
    if layout == "new":
        return ("--restore-certificates has no effect here: a new-format restore ignores it (and --no-reboot), so "
                "no certificates are restored and the manager does not reboot.")
    what = ("the restore also puts the snapshot's certificates in place of the manager's (clients that trust only "
            "the current CA must be given the snapshot's)")
    then = ("; --no-reboot: the manager is not rebooted." if args.no_reboot else
            ", and the manager REBOOTS a few seconds after the restore ends (`sudo shutdown -r now`), answering "
            "nothing until it is up again; the bot waits for it to answer again and reports whether it did.")
    if layout == "legacy":
        return what[0].upper() + what[1:] + then
    return "--restore-certificates: if it is a legacy-format snapshot, " + what + then + \
        " If it is a new-format one, the manager ignores the flag."


def _format_line(facts: dict[str, Any]) -> str:
    """What the snapshot is, and what the manager checks for it."""
    sid, version = facts["snapshot_id"], facts["snapshot_version"]
    has = f"{count(facts['blueprints'], 'blueprint')} and {count(facts['deployments'], 'deployment')}"
    if facts["layout"] == "new":
        source = ("its archive copy" if facts.get("has_copy") else
                  "the archive copy the bot makes of it before maintenance mode")
        after = ("so afterwards the bot compares the tenants, blueprints, deployments, secrets and plugins the "
                 f"snapshot holds ({source}) with what the manager has"
                 if facts.get("has_copy") or facts.get("will_copy_off") else
                 "and the bot has no archive copy of it to compare the result with, so afterwards it can only show "
                 "the errors the restore logs")
        return (f"{sid} is a new-format snapshot ({version}; metadata.json in {facts['format_source']}): the "
                f"manager does no emptiness check and only logs per-entity conflicts (an entity it already has is "
                f"not replaced), {after} (the manager has {has} now).")
    if facts["layout"] == "legacy":
        return (f"{sid} is a legacy-format snapshot ({version}; metadata.json in {facts['format_source']}): it "
                "replaces the manager's database"
                + (f"; -f deletes the {has} the manager has now." if facts["blueprints"] else "."))
    server = facts.get("server_version") or "?"
    text = (f"{sid}: version and format unchecked ({facts['format_unknown']}). What that risks: a snapshot taken on "
            f"a Cloudify newer than {server} or older than 4.0 is refused by the manager only after maintenance mode "
            "was entered if it is a legacy one, and not refused at all if it is a new-format one (that restore "
            "checks no version); and whether it replaces the manager's database (legacy) or adds its entities "
            f"(new) is not known. The manager has {has} now.")
    if facts.get("will_copy_off"):
        text += (" Before maintenance mode the bot copies it into the archive, reads its metadata.json, and stops, "
                 "touching nothing, if it is newer than the manager or older than 4.0.")
    return text


def schedule_fate(server: str, layout: str) -> str:
    """What the restore does with `scheduled` executions in the snapshot's data, by manager version (§6)."""
    if layout == "new":
        return "A new-format restore re-creates the snapshot's execution schedules and marks no execution FAILED."
    if layout != "legacy":
        fate = schedule_fate(server, "legacy")
        return fate and "If it is a legacy-format snapshot: " + fate[0].lower() + fate[1:]
    if version_tuple(server) >= (6, 0, 0):
        return ("A legacy restore on Cloudify 6.0 or later marks every `scheduled` execution in the snapshot's "
                "data FAILED, and re-creates those due later as execution schedules (`<workflow>_restored_…`).")
    if version_tuple(server) >= (5, 1, 0):
        return ("A legacy restore on Cloudify 5.1-5.2 marks the snapshot's overdue `scheduled` executions FAILED "
                "and queues again those due later.")
    return ""


@command("restore", summary="Guided restore: preflight, confirm and approval, maintenance mode, restore, report",
         group="restore", permission="admin", gate="approve", exclusive=True, resumable=True, prepare=preflight,
         params=[Param("snapshot_id", metavar="SNAPSHOT_ID|latest", required=True, check=_check_target,
                       help="a snapshot id, or `latest` for the newest verified archive copy"),
                 *RESTORE_PARAMS, TIMEOUT,
                 Param("incident", ("--incident",), "run it in an incident room: a channel with a pinned status "
                       "card, the requester and approver invited, progress repeated there", kind="bool",
                       default=False)],
         gate_text="enter maintenance mode on {manager} and restore snapshot {snapshot_id}, {effect}",
         examples=["restore latest", "restore daily-20261128 -f -m production", "restore latest --timeout 600",
                   "restore latest --incident"])
def restore(ctx: Ctx, args: Args) -> Reply:
    """Run (or resume) the guided restore."""
    ctx.sink = restore_incident(ctx)  # with --incident: open its room (once) and report there too
    phases: dict[str, float] = dict(ctx.recall("phases") or {})
    if not ctx.recall("started_at"):  # wall clock: a total that spans a restart of the bot stays true
        ctx.remember(started_at=ctx.now().isoformat())
    began = parse_time(ctx.recall("started_at")) or ctx.now()

    def elapsed() -> float:
        return (ctx.now() - began).total_seconds()

    def timed(name: str, began: float) -> None:
        phases[name] = phases.get(name, 0.0) + ctx.clock.monotonic() - began
        ctx.remember(phases=phases)

    if not ctx.recall("maintenance_requested") and not ctx.recall("execution_id"):
        recheck(ctx, args)  # the manager may have changed since the card: read it again before changing it
        phases.update(ctx.recall("phases") or {})  # the copy-off step, when it ran
    t = ctx.clock.monotonic()
    if args.needs_upload and not ctx.recall("uploaded"):
        _upload(ctx, args)
        timed("upload", t)
    t = ctx.clock.monotonic()
    if not ctx.recall("execution_id"):
        _enter_maintenance(ctx, args)
        timed("maintenance", t)
        t = ctx.clock.monotonic()
        try:
            _start_restore(ctx, args)
        except RestoreRefused as exc:  # nothing was restored: report what the bot did, read back
            timed("restore request", t)
            t = ctx.clock.monotonic()
            left = _leave_unchanged(ctx, args)
            if left.startswith("turned off again"):
                timed("deactivate", t)
            return _refused(ctx, args, exc, report_cancelled(ctx, ctx.manager, restored=False), left, phases,
                            elapsed())
        timed("restore request", t)
    t = ctx.clock.monotonic()
    client, execution = watch_restore(ctx, ctx.recall("execution_id"))
    posted = parse_time(ctx.recall("restore_posted_at"))
    if ctx.recall("resumed") and "restore" not in phases and posted is not None:  # its start was in a gone process
        phases["restore"] = (ctx.now() - posted).total_seconds()
        ctx.remember(phases=phases)
    else:
        timed("restore", t)
    reboot = ""
    if _reboot_expected(args, execution):  # before anything else is read: the manager goes down a moment after
        reboot = await_reboot(ctx, client, execution)
    before = _read_back(args.scheduled_before or [])
    schedules = report_schedules(ctx, client, execution, before)
    cancelled = report_cancelled(ctx, client)
    ok = execution.status == "terminated"
    content, incomplete = "", False
    if ok and args.get("layout") == "new":  # the manager only logs per-entity conflicts: read the result back
        content, incomplete = report_content(ctx, client, execution, args.snapshot_id,
                                             _archive_copy(ctx, args.snapshot_id))
    t = ctx.clock.monotonic()
    deactivation = deactivate_after(ctx, client, ok, args.maintenance_before)
    if deactivation == "deactivated":
        timed("deactivate", t)  # a step that did not run has no duration, not 0s
    on_manager = snapshots_left(ctx, client, list(args.snapshots_before)) \
        if args.get("snapshots_before") is not None else None
    return _summary(ctx, args, execution, schedules, cancelled, deactivation, phases,
                    elapsed(), content, incomplete, on_manager, reboot)


def _reboot_expected(args: Args, execution: Execution) -> bool:
    """A successful restore that is not known to be new-format, with --restore-certificates, without --no-reboot."""
    return (bool(args.restore_certificates) and not args.no_reboot and execution.status == "terminated"
            and args.get("layout") != "new")


def recheck(ctx: Ctx, args: Args) -> None:
    """The approved operation starts: the manager may have changed since the card (a blueprint uploaded, the
    snapshot deleted, an execution scheduled). Read it again, and refuse, touching nothing, what can no longer
    work, saying what changed since the card."""
    client, target, op = ctx.manager, args.snapshot_id, ctx.op
    card = f"the card of {op.id if op else 'this operation'} ({(op.created_at if op else '')[11:16]} UTC)"
    again = hint(ctx, f"{ctx.command.name} {target}" + (" -f" if args.force else ""))
    if client.snapshot_status() == "running":
        raise BotError(f"a snapshot restore has been running on {ctx.manager_name} since {card} was shown "
                       f"({hint(ctx, 'snapshots status')}). Nothing was changed.")
    try:
        snap: dict[str, Any] | None = client.get_snapshot(target)
    except ManagerNotFound:
        snap = None
    if snap is None and (not args.needs_upload or ctx.recall("uploaded")):
        copy = _archive_copy(ctx, target)
        then = (f"the bot has an archive copy of it: {again} uploads it first" if copy else
                f"the bot has no archive copy of it; {hint(ctx, 'snapshots list')} shows what is left")
        raise BotError(f"snapshot {target} was deleted from {ctx.manager_name} since {card} was shown. Nothing "
                       f"was changed; {then}.")
    if snap is not None and args.needs_upload and not ctx.recall("uploaded"):
        raise BotError(f"{ctx.manager_name} has a snapshot {target} now ({snap.get('status')}), which it did not "
                       f"have when {card} was shown; the bot does not replace it with the archive copy. Nothing was "
                       f"changed. Look at it with {hint(ctx, f'snapshots show {target}')}, then run {again} again.")
    if snap is not None and snap.get("status") == "failed":
        raise BotError(f"snapshot {target} on {ctx.manager_name} is failed now ({last_line(snap.get('error'))}), "
                       f"since {card} was shown. Nothing was changed.")
    if (ctx.command.name == "restore" and args.get("will_copy_off") and snap is not None
            and _archive_copy(ctx, target) is None):
        t = ctx.clock.monotonic()
        copy_off_first(ctx, target)  # read-only on the manager: its metadata.json now tells format and version
        ctx.remember(phases={**(ctx.recall("phases") or {}), "copy off": ctx.clock.monotonic() - t})
    server = str(client.version().get("version") or "?")
    changed = _changed_since_card(ctx, args, server)
    try:
        _refuse_what_cannot_work(ctx, args, target, _archive_copy(ctx, target), server,
                                 on_manager=snap is not None)
    except BotError as exc:
        if changed:
            why = f"since {card}, " + "; ".join(changed) + "."
        elif ctx.recall("copied_off"):
            why = "the copy the bot just made tells what the card could not:"
        else:
            why = f"the manager is as {card} said, but this check fails now:"
        raise BotError(f"stopped before changing anything: {why} {exc}") from None
    if ctx.command.name == "restore":  # only the guided restore asks for maintenance mode
        _refuse_new_waiting(ctx, args, card, again)
    if changed:  # -f was given, so the restore still works: say what it now replaces
        ctx.step(f"since {card}: " + "; ".join(changed), tone=Tone.WARNING)


def _changed_since_card(ctx: Ctx, args: Args, server: str) -> list[str]:
    """What the card counted that is no longer so: the manager's version, its blueprints and deployments, the
    snapshot's archive copy."""
    changed = []
    if args.server_version and server != str(args.server_version):
        changed.append(f"{ctx.manager_name}'s version was {args.server_version} then and is {server} now")
    if args.blueprints is not None and args.deployments is not None:
        every: dict[str, Any] = {"all_tenants": True, "size": 1, "bypass_maintenance": True}
        blueprints = ctx.manager.list_blueprints(**every).total
        deployments = ctx.manager.list_deployments(sort=None, **every).total
        if (blueprints, deployments) != (int(args.blueprints), int(args.deployments)):
            changed.append(f"{ctx.manager_name} had {count(int(args.blueprints), 'blueprint')} and "
                           f"{count(int(args.deployments), 'deployment')} then and has {blueprints} and "
                           f"{deployments} now")
    if args.get("has_copy") and _archive_copy(ctx, args.snapshot_id) is None and not args.needs_upload:
        changed.append(f"the archive copy of {args.snapshot_id} that told its format is gone")
    return changed


def _refuse_new_waiting(ctx: Ctx, args: Args, card: str, again: str) -> None:
    """Queued or scheduled executions the card did not name keep maintenance mode activating: the bot cancels only
    those the card named, so refuse before asking for maintenance mode."""
    every: dict[str, Any] = {"include_system": True, "size": 500, "_all_tenants": True, "bypass_maintenance": True}
    known = {e.id for e in _read_back((args.scheduled_before or []) + (args.queued_before or []))}
    waiting = [e for status in ("scheduled", "queued")
               for e in ctx.manager.list_executions(status=status, **every).items if e.id not in known]
    if not waiting:
        return
    n = len(waiting)
    raise BotError(f"{count(n, 'execution')} {'was' if n == 1 else 'were'} queued or scheduled since {card} was "
                   f"shown: {describe(waiting)}. The card did not name {'it' if n == 1 else 'them'}, so the bot does "
                   f"not cancel {'it' if n == 1 else 'them'}, and maintenance mode cannot activate while "
                   f"{'it waits' if n == 1 else 'they wait'}. Nothing was changed. Cancel "
                   f"{'it' if n == 1 else 'them'} ({cancel_hints(ctx, waiting)}), or run {again} again for a card "
                   f"that names {'it' if n == 1 else 'them'}.")


def _upload(ctx: Ctx, args: Args) -> None:
    copy = _archive_copy(ctx, args.snapshot_id)
    if copy is None:
        raise BotError(f"the archive copy of {args.snapshot_id} disappeared before the upload")
    ctx.step(f"uploading {args.snapshot_id} to {ctx.manager_name} from the archive copy of {copy.manager} "
             f"({copy.size or '?'} bytes)")
    need_archive(ctx).upload_copy(copy, ctx.manager, args.snapshot_id,
                                  progress=transfer_progress(ctx, args.snapshot_id, "uploading"))
    ctx.remember(uploaded=True)
    ctx.step(f"uploaded {args.snapshot_id}; sha256 {copy.sha256[:12]}… verified before sending")


def _enter_maintenance(ctx: Ctx, args: Args) -> None:
    ctx.check_cancel()
    if not ctx.recall("maintenance_requested"):
        _still_there(ctx, args)
        ctx.remember(maintenance_requested=True)
        try:
            ctx.manager.maintenance_activate()
            ctx.step(f"maintenance mode requested on {ctx.manager_name}")
        except NotModified:
            ctx.step(f"maintenance mode was already on (or activating) on {ctx.manager_name}")
    cancellable = {e.id: e.tenant for e in _read_back((args.scheduled_before or []) + (args.queued_before or []))}
    try:
        wait_until_activated(ctx, args.timeout, cancellable)
        ctx.check_cancel()  # a cancel that came while it activated: leave maintenance mode as it was
    except MaintenanceTimeout as exc:
        _leave_unchanged(ctx, args)
        raise BotError(f"{exc} The restore was not started.") from None
    except BotError:
        _leave_unchanged(ctx, args)
        raise
    ctx.step(f"verified: {ctx.manager_name} is in maintenance mode (activated)", tone=Tone.GOOD)


def _still_there(ctx: Ctx, args: Args) -> None:
    """Read the snapshot back just before maintenance mode is requested: a restore of a snapshot that is gone
    would be refused only after it."""
    try:
        ctx.manager.get_snapshot(args.snapshot_id)
    except ManagerNotFound:
        raise BotError(f"snapshot {args.snapshot_id} is no longer on {ctx.manager_name} (read back just before "
                       "maintenance mode): someone deleted it. Maintenance mode was not requested and nothing else "
                       "was changed.") from None


def _leave_unchanged(ctx: Ctx, args: Args) -> str:
    """Nothing was restored: undo the maintenance mode this operation turned on; what became of it."""
    if args.maintenance_before != "deactivated":
        return f"left {args.maintenance_before} (it was {args.maintenance_before} before)"
    try:
        ctx.manager.maintenance_deactivate()
        ctx.step(f"nothing was restored, so maintenance mode was turned off again on {ctx.manager_name}")
        return "turned off again (it was off before, and nothing was restored)"
    except NotModified:
        return "already off"
    except BotError as exc:
        ctx.step(f"could not turn maintenance mode off again: {exc}", tone=Tone.DANGER)
        return f"still ON: turning it off failed ({exc}); run {hint(ctx, 'maintenance-mode deactivate')}"


def _start_restore(ctx: Ctx, args: Args) -> None:
    """The guided restore's point of no return; RestoreRefused when the manager refuses (the caller then turns
    maintenance mode off again and reports)."""
    start_restore(ctx, args)
    if args.restore_certificates and not args.no_reboot:
        ctx.step("--restore-certificates without --no-reboot: the manager reboots a few seconds after the "
                 "restore; the bot keeps watching", tone=Tone.WARNING)


def start_restore(ctx: Ctx, args: Args, on_refused: Callable[[], None] = lambda: None) -> None:
    """POST the restore once (force always sent) and journal its execution id.

    Resumable: after a restart between journaling `posting` and the answer, the execution the manager already
    made is adopted instead of posting again. A refusal kills the stray pending execution the manager leaves.
    """
    if ctx.recall("execution_id"):
        return
    if ctx.recall("posting"):
        found = kill_stray_restores(ctx, args.snapshot_id, adopt=True)
        if found:
            ctx.remember(execution_id=found)
            return
    ctx.point_of_no_return(f"restoring {args.snapshot_id}")
    ctx.remember(posting=True)
    try:
        execution = ctx.manager.restore_snapshot(args.snapshot_id, force=args.force,
                                                 restore_certificates=args.restore_certificates,
                                                 no_reboot=args.no_reboot)
    except BotError as exc:
        killed = kill_stray_restores(ctx, args.snapshot_id, adopt=False)
        extra = f" The manager left a stray pending restore execution ({killed}); the bot killed it." if killed else ""
        on_refused()
        raise RestoreRefused(f"{exc}.{extra}") from None
    ctx.remember(execution_id=execution.id, restore_posted_at=ctx.now().isoformat())
    if ctx.op is not None:  # always: restore runs as an operation
        ctx.engine.update_operation(ctx.op.id, "running", execution_id=execution.id)
    ctx.step(f"restore of {args.snapshot_id} started: execution {execution.id}")


class RestoreRefused(BotError):
    """The manager refused the restore call: no restore ran."""


PHASES = ("copy off", "upload", "maintenance", "restore request", "restore", "deactivate")


def _durations(ctx: Ctx, args: Args, phases: dict[str, float], total: float) -> str:
    optional = {"upload": args.needs_upload, "copy off": args.get("will_copy_off")}
    shown = [p for p in PHASES if optional.get(p, True)]
    done = ", ".join(f"{p} {age(phases[p])}" if p in phases else f"{p} not run" for p in shown)
    restarted = " (wall clock, the time the bot was down included)" if ctx.recall("resumed") else ""
    return f"{done}; total {age(total)}{restarted}"


def _refused(ctx: Ctx, args: Args, exc: RestoreRefused, cancelled: str, maintenance: str,
             phases: dict[str, float], total: float) -> Reply:
    """The summary when the manager refused the restore call: nothing was restored; what the bot did is read back."""
    who = _who(ctx)
    fields = (("snapshot", args.snapshot_id), ("execution", f"none started: {exc}"),
              ("cancelled by the bot", cancelled), ("maintenance mode", maintenance),
              ("durations", _durations(ctx, args, phases, total)))
    return Reply(text=f"The restore of {args.snapshot_id} on {ctx.manager_name} did not start: the manager refused "
                      f"it, and nothing was restored ({who}).", title=f"Restore of {ctx.manager_name} refused",
                 tone=Tone.DANGER, fields=fields, public=True, ok=False)


def _summary(ctx: Ctx, args: Args, execution: Execution, schedules: str, cancelled: str, deactivation: str,
             phases: dict[str, float], total: float, content: str = "", incomplete: bool = False,
             left: tuple[str, Tone] | None = None, reboot: str = "") -> Reply:
    ok = execution.status == "terminated"
    fields = [("snapshot", args.snapshot_id), ("execution", f"{execution.id} {execution.status}"),
              ("scheduled executions", schedules), ("cancelled by the bot", cancelled),
              ("maintenance mode", deactivation), ("durations", _durations(ctx, args, phases, total))]
    if content:
        fields.insert(4, ("content", content))
    if left is not None:  # read back after the restore: a legacy restore empties the snapshots table
        fields.insert(-2, ("snapshots", left[0]))
    if not ok:
        fields.insert(2, ("error", last_line(execution.error) or "no error text"))
    if reboot:  # read back after --restore-certificates without --no-reboot
        fields.insert(2, ("reboot", reboot))
    who = _who(ctx)
    if ok and incomplete:
        text = (f"The restore of {args.snapshot_id} on {ctx.manager_name} ended terminated, but the manager does not "
                f"have all the snapshot holds ({who}).")
        return Reply(text=text, title=f"Restore of {ctx.manager_name} incomplete", tone=Tone.DANGER,
                     fields=tuple(fields), public=True, ok=False)
    if ok:
        text = f"Restored {args.snapshot_id} on {ctx.manager_name} ({who})."
        return Reply(text=text, title=f"Restore of {ctx.manager_name} succeeded", tone=Tone.GOOD,
                     fields=tuple(fields), public=True)
    text = f"The restore of {args.snapshot_id} on {ctx.manager_name} FAILED ({who})."
    return Reply(text=text, title=f"Restore of {ctx.manager_name} failed", tone=Tone.DANGER, fields=tuple(fields),
                 public=True, ok=False)


def _who(ctx: Ctx) -> str:
    """`requested by R, approved by A`, both as the people were named when they decided (display names in Slack,
    logins in the terminal, "(simulated second admin)" with --demo), never a raw id."""
    op = ctx.op
    if op is None:
        return f"requested by {ctx.inv.actor.name}"
    names = {op.requester: op.requester_name, **(op.result.get("names") or {})}
    requester = person(op.requester, names) if op.requester else ctx.inv.actor.name
    approved = person(op.approved_by, names) if op.approved_by else ""
    return f"requested by {requester}" + (f", approved by {approved}" if approved else "")


def plain_preflight(ctx: Ctx, args: Args) -> dict[str, Any]:
    """The plain call's checks before its gates: the same refusals as the guided restore's (a newer or pre-4.0
    snapshot, a legacy one without -f on a manager with blueprints), so two admins are not asked to approve what
    the bot knows the manager will refuse."""
    if args.no_reboot and not args.restore_certificates:
        raise UsageError("--no-reboot only applies with --restore-certificates")
    client, sid = ctx.manager, args.snapshot_id
    if client.snapshot_status() == "running":
        raise BotError(f"a snapshot restore is already running on {ctx.manager_name} "
                       f"({hint(ctx, 'snapshots status')})")
    copy = _archive_copy(ctx, sid)
    try:
        snap = client.get_snapshot(sid)
    except ManagerNotFound:
        upload = (f"{hint(ctx, f'snapshots upload {sid}')} puts the archive copy there, or the guided "
                  f"{hint(ctx, f'restore {sid}')} does it itself" if copy else
                  f"{hint(ctx, 'snapshots list')} shows which snapshots it has")
        raise BotError(f"snapshot {sid} is not on {ctx.manager_name}: {upload}") from None
    if snap.get("status") == "failed":
        raise BotError(f"snapshot {sid} on {ctx.manager_name} failed and cannot be restored: "
                       f"{last_line(snap.get('error'))}")
    server = str(client.version().get("version") or "?")
    facts: dict[str, Any] = {"snapshot_id": sid, "server_version": server, "needs_upload": "",
                             **_refuse_what_cannot_work(ctx, args, sid, copy, server, on_manager=True)}
    facts["gate_detail"] = "\n".join(filter(None, (_format_line(facts), certificates_line(args, facts["layout"]))))
    return facts


@command("snapshots restore", summary="The plain cfy restore call (no maintenance mode), then follow it",
         group="snapshots", permission="admin", gate="approve", exclusive=True, resumable=True,
         prepare=plain_preflight,
         params=[Param("snapshot_id", metavar="SNAPSHOT_ID", required=True, check=check_snapshot_id,
                       help="the snapshot's id on the manager"), *RESTORE_PARAMS],
         gate_text="restore snapshot {snapshot_id} on {manager} WITHOUT maintenance mode (the plain cfy call); "
                   "it replaces everything on the manager. The guided `restore` is safer.",
         examples=["snapshots restore daily-20261128", "snapshot restore daily-20261128 --force -m staging"])
def snapshots_restore(ctx: Ctx, args: Args) -> Reply:
    """Run `snapshots restore ID` as cfy does, then follow it to the end."""
    if not ctx.recall("execution_id") and not ctx.recall("posting"):
        recheck(ctx, args)  # the manager may have changed since the card
    start_restore(ctx, args)
    client, execution = watch_restore(ctx, ctx.recall("execution_id"))
    ok = execution.status == "terminated"
    reboot = f" Reboot: {await_reboot(ctx, client, execution)}." if _reboot_expected(args, execution) else ""
    text = (f"Restored {args.snapshot_id} on {ctx.manager_name}.{reboot}" if ok else
            f"The restore of {args.snapshot_id} on {ctx.manager_name} ended {execution.status}: "
            f"{last_line(execution.error)}")
    return Reply(text=text, title="Restore " + ("succeeded" if ok else "failed"), tone=Tone.GOOD if ok else Tone.DANGER,
                 public=True, ok=ok)
