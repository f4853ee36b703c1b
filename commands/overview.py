"""`help` and `status`: what the bot can do, and how each manager is doing."""

from __future__ import annotations

from typing import Any

from bot.engine.context import Ctx, ManagerAPI
from bot.core import Reply, Tone, age
from bot.errors import BotError, ManagerError
from bot.spec.help import help_reply
from bot.spec.parser import Args
from bot.spec.registry import Param, command
from commands.common import parse_time, when
from commands.executions import describe, read_past_maintenance

ACTIVE = ("pending", "started", "cancelling", "force_cancelling", "kill_cancelling")
WAITING = ("queued", "scheduled")  # they keep maintenance mode activating until cancelled (reference §4)


@command("help", summary="List the commands you can run, or explain one", group="overview",
         params=[Param("topic", metavar="TOPIC", rest=True, help="a group or a command")],
         examples=["help", "help snapshots", "help snapshots create"], manager_scoped=False)
def help_cmd(ctx: Ctx, args: Args) -> Reply:
    """Answer `help [TOPIC]`."""
    topic = tuple((args.topic or "").split())
    return help_reply(ctx.registry, topic, ctx.engine.may_run(ctx.inv.actor, ctx.inv.channel))


@command("status", summary="Each manager: reachable, version, maintenance, snapshots, last good backup",
         group="overview", examples=["status", "status -m production"])
def status(ctx: Ctx, args: Args) -> Reply:
    """Answer `status` for the chosen manager, or for every manager when none is named."""
    names = [ctx.manager_name] if ctx.manager_named or len(ctx.managers) == 1 else list(ctx.managers)
    sections, ok = [], True
    for name in names:
        lines, good = _manager_status(ctx, name)
        ok &= good
        sections.append("\n".join(lines))
    title = "Status" if len(names) > 1 else f"Status of {names[0]}"
    return Reply(text="\n\n".join(sections), title=title, tone=Tone.GOOD if ok else Tone.WARNING)


def _manager_status(ctx: Ctx, name: str) -> tuple[list[str], bool]:
    client = ctx.managers[name]
    now = ctx.now()
    lines = [f"*{name}* ({client.current_url})"]
    try:
        version = client.version()
    except ManagerError as exc:
        return lines + [f"  unreachable: {exc}"], False
    lines.append(f"  version {version.get('version')} {version.get('edition', '')}".rstrip())
    good = True
    for label, probe in (("maintenance", _maintenance), ("snapshot restore", _restore_state),
                         ("executions", _executions), ("newest snapshot", _newest_snapshot)):
        try:
            text, fine = probe(client, now)
        except BotError as exc:
            text, fine = f"could not read: {exc}", False
        good &= fine
        lines.append(f"  {label}: {text}")
    backup = _last_backup(ctx, name, now)
    good &= ctx.catalog.latest_verified(name) is not None  # no verified backup is never OK
    lines.append(f"  last verified backup: {backup}")
    running = ctx.engine.list_operations(states=("pending", "approved", "running"), manager=name)
    if running:
        lines.append("  bot operations: " + "; ".join(f"{o.id} {o.kind} {o.state}" for o in running))
    notices = client.take_notices()
    lines += [f"  note: {n}" for n in notices]
    return lines, good


def _maintenance(client: Any, now: Any) -> tuple[str, bool]:
    m = client.maintenance_status()
    status = m.get("status", "?")
    if status == "activating":
        return f"activating, waiting for {len(m.get('remaining_executions') or [])} executions", False
    return status, status == "deactivated"


def _restore_state(client: Any, now: Any) -> tuple[str, bool]:
    state = client.snapshot_status()
    return ("a snapshot restore is running" if state == "running" else "none running"), state != "running"


def _executions(client: ManagerAPI, now: Any) -> tuple[str, bool]:
    """Active executions, and queued or scheduled ones (a problem: maintenance mode cannot activate past them)."""
    page = read_past_maintenance(lambda bypass: client.list_executions(
        include_system=True, status=list(ACTIVE + WAITING), size=50, _all_tenants=True, bypass_maintenance=bypass))
    if not page.total:
        return "none active, queued or scheduled", True
    active = [e for e in page.items if e.status in ACTIVE]
    waiting = [e for e in page.items if e.status in WAITING]
    parts = []
    if active:
        parts.append(f"{len(active)} active ({describe(active, 5)})")
    if waiting:
        parts.append(f"{len(waiting)} queued or scheduled, which keep maintenance mode from activating "
                     f"({describe(waiting, 5)})")
    more = f"; {page.total - len(page.items)} more not shown" if page.total > len(page.items) else ""
    return "; ".join(parts) + more, not waiting


def _newest_snapshot(client: Any, now: Any) -> tuple[str, bool]:
    page = client.list_snapshots(sort="created_at", descending=True, size=1)
    if not page.items:
        return "none", False
    s = page.items[0]
    return f"{s['id']} {s.get('status')} {when(s.get('created_at'), now)}", s.get("status") in ("created", "uploaded")


def _last_backup(ctx: Ctx, name: str, now: Any) -> str:
    copy = ctx.catalog.latest_verified(name)
    if not copy:
        return "none in the archive"
    created = parse_time(copy.created_at) or parse_time(copy.stored_at)
    old = f", {age((now - created).total_seconds())} old" if created else ""
    return f"{copy.snapshot_id}{old}"
