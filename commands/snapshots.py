"""Read-only snapshot commands: `snapshots list`, `snapshots show`, `snapshots status`."""

from __future__ import annotations

from bot.engine.context import Ctx
from bot.core import ArchiveCopy, Reply, Table, Tone
from bot.spec.parser import Args
from bot.spec.registry import Param, command
from commands.common import SNAPSHOT_ID, clip, count, hint, last_line, when

SORT_FIELDS = ("created_at", "id", "status", "visibility", "tenant_name", "created_by", "error")


MAX_PAGE = 1000  # the manager's own cap on a page (reference: pagination)


def _check_size(value: int) -> str | None:
    return None if 1 <= value <= MAX_PAGE else f"-s/--pagination-size must be between 1 and {MAX_PAGE}, got {value}"


def _unverified(copy: ArchiveCopy) -> str:
    """A copy that failed its check is FAILED (damaged), not merely unverified."""
    return "FAILED check (damaged)" if copy.error else "unverified"


@command("snapshots list", summary="List the manager's snapshots and whether each has a verified archive copy",
         group="snapshots",
         params=[
             Param("sort_by", ("--sort-by",), "field to sort by (created_at)", default="created_at",
                   choices=SORT_FIELDS, metavar="FIELD"),
             Param("descending", ("--descending",), "newest first", kind="bool", default=False),
             Param("tenant", ("-t", "--tenant-name"), "another tenant than the manager's default", metavar="TENANT"),
             Param("all_tenants", ("-a", "--all-tenants"), "every tenant you can see", kind="bool", default=False,
                   excludes=("tenant",)),
             Param("search", ("--search",), "only ids containing this text", metavar="TEXT"),
             Param("offset", ("-o", "--pagination-offset"), "skip this many", kind="int", default=0, metavar="N"),
             Param("size", ("-s", "--pagination-size"), "at most this many (1000)", kind="int", default=1000,
                   metavar="N", check=_check_size),
         ],
         examples=["snapshots list", "snapshot list --descending -s 20", "snapshots list --search daily -m staging"])
def snapshots_list(ctx: Ctx, args: Args) -> Reply:
    """Answer `snapshots list`."""
    page = ctx.manager.list_snapshots(sort=args.sort_by, descending=args.descending, search=args.search,
                                      offset=args.offset, size=args.size, all_tenants=args.all_tenants,
                                      tenant=args.tenant)
    copies = {c.snapshot_id: c for c in ctx.catalog.list_copies(manager=ctx.manager_name)}
    now = ctx.now()
    rows = []
    for s in page.items:
        copy = copies.get(str(s.get("id")))
        archived = "verified" if copy and copy.verified else (_unverified(copy) if copy else "-")
        rows.append((s.get("id", ""), when(s.get("created_at"), now), s.get("status", ""),
                     clip(last_line(s.get("error")), 60), s.get("tenant_name", ""), s.get("created_by", ""), archived))
    table = Table(("id", "created", "status", "error", "tenant", "by", "archive copy"), tuple(rows))
    return Reply(text=_list_text(ctx, args, len(rows), page.total), title=f"Snapshots on {ctx.manager_name}",
                 table=table if rows else None)


def _list_text(ctx: Ctx, args: Args, shown: int, total: int) -> str:
    """What the page holds, and when it is empty, why: past the end, no match, or really none."""
    where = ctx.manager_name + (" (every tenant)" if args.all_tenants else
                                f" (tenant {args.tenant})" if args.tenant else "")
    matching = f" whose id contains {args.search!r}" if args.search else ""
    if shown:
        first = args.offset + 1
        part = f"{first}-{args.offset + shown} of {total}" if shown != total else str(total)
        return f"{part} {'snapshot' if total == 1 else 'snapshots'}{matching} on {where}"
    if total:
        return (f"No snapshots at offset {args.offset}: {where} has {count(total, 'snapshot')}{matching}, "
                f"so offsets 0 to {total - 1} hold them.")
    if args.search:
        every = ctx.manager.list_snapshots(size=1, all_tenants=args.all_tenants, tenant=args.tenant).total
        return f"No snapshot id on {where} contains {args.search!r}; {where} has {count(every, 'snapshot')} in all."
    return f"No snapshots on {where}.{'' if args.all_tenants else _elsewhere(ctx, args)}"


def _elsewhere(ctx: Ctx, args: Args) -> str:
    """For an empty tenant: what the other tenants the bot's user can see hold, and the command that lists it."""
    page = ctx.manager.list_snapshots(size=MAX_PAGE, all_tenants=True)
    mine = args.tenant or ctx.manager.settings.tenant
    by_tenant: dict[str, int] = {}
    for s in page.items:
        name = str(s.get("tenant_name") or "?")
        if name != mine:
            by_tenant[name] = by_tenant.get(name, 0) + 1
    if not by_tenant:
        return " No other tenant you can see has any either."
    listed = ", ".join(f"{name} {n}" for name, n in sorted(by_tenant.items()))
    more = " (at least)" if page.total > len(page.items) else ""
    return (f" Other tenants{more}: {listed}; {hint(ctx, 'snapshots list -a')} lists them all, "
            f"{hint(ctx, 'snapshots list', tenant=next(iter(sorted(by_tenant))))} one tenant.")


@command("snapshots show", summary="Show one snapshot, its archive copy and its last error", group="snapshots",
         params=[SNAPSHOT_ID, Param("tenant", ("-t", "--tenant-name"), "another tenant", metavar="TENANT")],
         examples=["snapshots show daily-20261128", "snapshot show manual-20261129-101500 -m staging"])
def snapshots_show(ctx: Ctx, args: Args) -> Reply:
    """Answer `snapshots show ID`."""
    s = ctx.manager.get_snapshot(args.snapshot_id, tenant=args.tenant)
    now = ctx.now()
    fields = [("id", s.get("id", "")), ("status", s.get("status", "")), ("created", when(s.get("created_at"), now)),
              ("tenant", s.get("tenant_name", "")), ("created by", s.get("created_by", "")),
              ("visibility", s.get("visibility", ""))]
    if s.get("error"):
        fields.append(("error", last_line(s["error"])))
    copy = ctx.catalog.get_copy(ctx.manager_name, args.snapshot_id)
    if copy:
        state = "verified" if copy.verified else f"NOT verified ({copy.error or 'not checked'})"
        fields += [("archive copy", f"{copy.location} ({state})"), ("sha256", copy.sha256 or ""),
                   ("size", str(copy.size or "")), ("snapshot version", copy.snapshot_version or "")]
    else:
        fields.append(("archive copy", f"none ({hint(ctx, f'snapshots download {args.snapshot_id}')} makes one)"))
    return Reply(text=f"Snapshot {s.get('id')} on {ctx.manager_name}: {s.get('status')}",
                 title=f"Snapshot {s.get('id')} on {ctx.manager_name}", fields=tuple(fields))


@command("snapshots status", summary="Is a snapshot restore running on the manager?", group="snapshots",
         examples=["snapshots status", "snapshot status -m production"])
def snapshots_status(ctx: Ctx, args: Args) -> Reply:
    """Answer `snapshots status` (the manager's unauthenticated snapshot-status)."""
    state = ctx.manager.snapshot_status()
    if state == "running":
        text = f"Snapshot restore in progress on {ctx.manager_name}. This may take a while."
        return Reply(text=text, title="Restore running", tone=Tone.WARNING)
    if state == "not-running":
        return Reply(text=f"No snapshot is currently being restored on {ctx.manager_name}.", title="No restore")
    return Reply(text=f"{ctx.manager_name} answered an unrecognized status: {state!r}", tone=Tone.WARNING)
