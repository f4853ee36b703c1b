"""`executions list | get | cancel`, as cfy 7.0.5 has them, and the execution hints other commands print.

Wire calls (reference §5.2, `cloudify_rest_client/executions.py`): list is `GET /executions` with
`_include_system_workflows`, `deployment_id`, `_all_tenants`, `_offset`, `_size`, `_sort` and cfy's `_include`
columns; get is `GET /executions/<id>`; cancel is `POST /executions/<id> {"action": "cancel" | "force-cancel" |
"kill"}`. While maintenance mode is activated the manager refuses executions calls (503); the bot then reads them
again with `X-BYPASS-MAINTENANCE`, which a sys-admin may send, and says so.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from bot.core import Execution, Reply, Table, Tone
from bot.engine.context import Ctx
from bot.errors import ManagerError, ManagerNotFound, MaintenanceModeActive, NotFound, UsageError
from bot.spec.parser import Args
from bot.spec.registry import Param, command
from commands.common import count, last_line, when

FINAL = ("terminated", "failed", "cancelled")
WAITING = ("queued", "scheduled")  # non-final, but never start while maintenance mode is activating (reference §4)
CANCELLING = ("cancelling", "force_cancelling", "kill_cancelling")
# cfy's MINIMAL_EXECUTION_COLUMNS, the `_include` of `cfy executions list`
LIST_COLUMNS = ("id", "workflow_id", "status_display", "is_dry_run", "deployment_id", "created_at", "started_at",
                "scheduled_for", "visibility", "tenant_name", "created_by")
SORT_FIELDS = ("created_at", "id", "workflow_id", "status", "deployment_id", "started_at", "ended_at",
               "scheduled_for", "tenant_name", "created_by")
CANCELLING_NOTE = ('Executions in a "cancelling" or "force-cancelling" status may take a while to change into '
                   '"cancelled".')
T = TypeVar("T")


def _not_negative(value: int) -> str | None:
    return "must be 0 or more" if value < 0 else None


MAX_PAGE = 1000  # the manager's own cap on a page (reference: pagination)


def _check_size(value: int) -> str | None:
    """A page of 0 would show nothing: refused, as `snapshots list` refuses it."""
    return None if 1 <= value <= MAX_PAGE else f"-s/--pagination-size must be between 1 and {MAX_PAGE}, got {value}"


def _tenant_param(what: str) -> Param:
    return Param("tenant", ("-t", "--tenant-name"), f"the tenant of the {what} (the manager's tenant)",
                 metavar="TENANT")


def hint(ctx: Ctx, text: str, tenant: str | None = None) -> str:
    """`text` as a command that runs as printed here: with `-t TENANT` when `tenant` is not the manager's own and
    `-m NAME` when this is not the session's default manager."""
    words = [text]
    if tenant and tenant != ctx.manager.settings.tenant:
        words.append(f"-t {tenant}")
    if ctx.manager_name != next(iter(ctx.managers)):
        words.append(f"-m {ctx.manager_name}")
    return "`" + " ".join(words) + "`"


def tenants_of(ctx: Ctx, ids: Iterable[str]) -> dict[str, str]:
    """The tenant of each execution id (maintenance mode's list of remaining executions does not say)."""
    wanted = sorted({i for i in ids if i})
    if not wanted:
        return {}
    try:
        page = read_past_maintenance(lambda bypass: ctx.manager.list_executions(
            include_system=True, id=wanted, size=len(wanted), _all_tenants=True, bypass_maintenance=bypass))
    except ManagerError:
        return {}
    return {e.id: e.tenant or "" for e in page.items}


def cancel_hints(ctx: Ctx, executions: Iterable[Execution]) -> str:
    """`executions cancel ID ...` for each execution, runnable as printed (tenants looked up when unknown)."""
    items = list(executions)
    known = {e.id: e.tenant for e in items if e.tenant}
    missing = [e.id for e in items if e.id not in known]
    known.update(tenants_of(ctx, missing))
    return ", ".join(hint(ctx, f"executions cancel {e.id}", known.get(e.id)) for e in items)


def describe(executions: Iterable[Execution], limit: int = 10) -> str:
    """`abc-1 (scale on web-prod, scheduled), ...`: ids first, so a person can act on them."""
    items = list(executions)
    shown = ", ".join(f"{e.id} ({e.workflow_id}{' on ' + e.deployment_id if e.deployment_id else ''}, {e.status})"
                      for e in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def read_past_maintenance(call: Callable[[bool], T]) -> T:
    """Call without, then (maintenance mode activated: 503) with `X-BYPASS-MAINTENANCE` (sys-admins may read so)."""
    try:
        return call(False)
    except MaintenanceModeActive:
        return call(True)


def _read(ctx: Ctx, call: Callable[[bool], T]) -> tuple[T, str]:
    """The answer, and a note when it was read past maintenance mode."""
    used: list[bool] = []

    def tracked(bypass: bool) -> T:
        used.append(bypass)
        return call(bypass)

    result = read_past_maintenance(tracked)
    note = (f"{ctx.manager_name} is in maintenance mode, which refuses executions calls; the bot read them with "
            "X-BYPASS-MAINTENANCE (sys-admin).") if used[-1] else ""
    return result, note


@command("executions list", summary="List executions (of a deployment), as cfy does", group="executions",
         params=[
             Param("deployment_id", ("-d", "--deployment-id"), "only this deployment's executions",
                   metavar="DEPLOYMENT"),
             Param("include_system_workflows", ("--include-system-workflows",),
                   "include system workflows (snapshot create and restore)", kind="bool", default=False),
             Param("sort_by", ("--sort-by",), "field to sort by (created_at)", default="created_at",
                   choices=SORT_FIELDS, metavar="FIELD"),
             Param("descending", ("--descending",), "newest first", kind="bool", default=False),
             _tenant_param("executions"),
             Param("all_tenants", ("-a", "--all-tenants"), "every tenant you can see", kind="bool", default=False,
                   excludes=("tenant",)),
             Param("offset", ("-o", "--pagination-offset"), "skip this many", kind="int", default=0, metavar="N",
                   check=_not_negative),
             Param("size", ("-s", "--pagination-size"), "at most this many (1000)", kind="int", default=1000,
                   metavar="N", check=_check_size),
         ],
         examples=["executions list", "executions list -d web-prod -t prod-apps",
                   "executions list -a --include-system-workflows --descending -s 20"])
def executions_list(ctx: Ctx, args: Args) -> Reply:
    """Answer `executions list`."""
    sort = f"-{args.sort_by}" if args.descending else args.sort_by
    filters: dict[str, Any] = {"deployment_id": args.deployment_id or None, "_all_tenants": args.all_tenants,
                               "_include": ",".join(LIST_COLUMNS)}
    page, note = _read(ctx, lambda bypass: ctx.manager.list_executions(
        include_system=args.include_system_workflows, offset=args.offset, size=args.size, sort=sort,
        tenant=args.tenant, bypass_maintenance=bypass, **filters))
    now = ctx.now()
    scope = _scope(ctx, args)
    rows: list[tuple[str, ...]] = [
        (e.id, e.workflow_id or "", e.shown_status, e.deployment_id or "", when(e.created_at, now),
         when(e.scheduled_for, now), e.tenant or "", e.created_by or "")
        for e in page.items]
    notes = [note] if note else []
    if any(e.status in CANCELLING for e in page.items):
        notes.append(CANCELLING_NOTE)
    title = f"Executions on {ctx.manager_name}"
    if not rows:
        text = _nothing_shown(args, page.total, scope)
        return Reply(text=" ".join([text, *notes]), title=title)
    shown = f"Showing {len(rows)} of {count(page.total, 'execution')}" if page.total != len(rows) else \
        count(page.total, "execution")
    header: tuple[str, ...] = ("id", "workflow", "status", "deployment", "created", "scheduled for", "tenant", "by")
    if not any(e.scheduled_for for e in page.items):
        header, rows = header[:5] + header[6:], [row[:5] + row[6:] for row in rows]
    return Reply(text=" ".join([f"{shown} {scope}.", *notes]), title=title, table=Table(header, tuple(rows)))


def _scope(ctx: Ctx, args: Args) -> str:
    where = "in every tenant" if args.all_tenants else f"in tenant {args.tenant or ctx.manager.settings.tenant}"
    of = f" of deployment {args.deployment_id}" if args.deployment_id else ""
    system = "" if args.include_system_workflows else ", system workflows hidden"
    return f"{of} on {ctx.manager_name} {where}{system}".lstrip()


def _nothing_shown(args: Args, total: int, scope: str) -> str:
    if total:
        return f"No executions at offset {args.offset}: there {'is' if total == 1 else 'are'} {total} {scope}."
    more = "" if args.include_system_workflows else " (--include-system-workflows adds snapshot create and restore)"
    return f"No executions {scope}{more}."


@command("executions get", summary="Show one execution: workflow, status, times, error, parameters",
         group="executions", params=[Param("execution_id", metavar="EXECUTION_ID", required=True,
                                           help="the execution's id"), _tenant_param("execution")],
         examples=["executions get 2f1c0d6e-…", "executions get ID -t prod-apps -m staging"])
def executions_get(ctx: Ctx, args: Args) -> Reply:
    """Answer `executions get ID`."""
    e, note = _get(ctx, args.execution_id, args.tenant)
    now = ctx.now()
    status = e.shown_status
    fields = [("id", e.id), ("workflow", e.workflow_id or ""), ("status", status)]
    for value, label in ((e.deployment_id, "deployment"), (e.blueprint_id, "blueprint")):
        if value:
            fields.append((label, value))
    for value, label in ((e.created_at, "created"), (e.started_at, "started"), (e.ended_at, "ended"),
                         (e.scheduled_for, "scheduled for")):
        if value:
            fields.append((label, when(value, now)))
    fields += [("tenant", e.tenant or ""), ("created by", e.created_by or ""),
               ("dry run", "yes" if e.is_dry_run else "no")]
    if e.error:
        fields.append(("error", last_line(e.error)))
    for name, value in sorted(e.parameters.items()):
        fields.append((f"parameter {name}", value if isinstance(value, str) else json.dumps(value, sort_keys=True)))
    notes = [note] if note else []
    if e.status in CANCELLING:
        notes.append(CANCELLING_NOTE)
    elif e.status in WAITING:
        cancel = hint(ctx, f"executions cancel {e.id}", e.tenant or "")
        notes.append(f"It is {e.status}: it keeps maintenance mode from activating until it is cancelled "
                     f"({cancel}).")
    text = " ".join([f"Execution {e.id} on {ctx.manager_name}: {e.workflow_id} {status}.", *notes])
    tone = {"failed": Tone.DANGER, "terminated": Tone.GOOD}.get(e.status, Tone.INFO)
    return Reply(text=text, title=f"Execution {e.id}", tone=tone, fields=tuple(fields))


def _get(ctx: Ctx, execution_id: str, tenant: str | None, again: str = "") -> tuple[Execution, str]:
    """The execution, read past maintenance mode; NotFound naming its tenant, with `again` (the command to run
    there, `executions get ID` by default) when it is in another one."""
    again = again or f"executions get {execution_id}"
    try:
        return _read(ctx, lambda bypass: ctx.manager.get_execution(execution_id, tenant=tenant,
                                                                   bypass_maintenance=bypass))
    except ManagerNotFound:
        found = tenants_of(ctx, [execution_id]).get(execution_id)
        where = f"tenant {tenant or ctx.manager.settings.tenant}"
        if found:
            raise NotFound(f"execution {execution_id} is not in {where} on {ctx.manager_name}; it is in tenant "
                           f"{found}: {hint(ctx, again, found)}") from None
        raise NotFound(f"execution {execution_id} does not exist on {ctx.manager_name} (looked in every tenant "
                       "you can see)") from None


def _cancel_facts(ctx: Ctx, args: Args) -> dict[str, Any]:
    """Before the gate: the execution exists and can be cancelled; what the confirmation shows."""
    if args.force and args.kill:
        raise UsageError("give either -f/--force or -k/--kill, not both", usage=ctx.command.usage())
    flag = " --kill" if args.kill else " --force" if args.force else ""
    e, _ = _get(ctx, args.execution_id, args.tenant, f"executions cancel {args.execution_id}{flag}")
    status = e.status
    if status in FINAL:
        raise NotFound(f"execution {e.id} on {ctx.manager_name} has already ended ({status}): there is "
                       "nothing to cancel")
    if status in CANCELLING and not (args.force or args.kill):
        kill = hint(ctx, f"executions cancel {e.id} --kill", e.tenant or "")
        raise UsageError(f"execution {e.id} is already {status}; {kill} stops it abruptly",
                         usage=ctx.command.usage())
    how = ("kill it (stop its workflow and operation processes)" if args.kill else
           "force-cancel it (stop at once, without waiting for its workflow)" if args.force else
           "ask it to cancel (its workflow stops at the next safe point)")
    detail = (f"Execution {e.id}: {e.workflow_id}"
              f"{' on deployment ' + e.deployment_id if e.deployment_id else ''}, {status}, created "
              f"{when(e.created_at, ctx.now())}, tenant {e.tenant}. The bot will {how}.")
    return {"gate_detail": detail, "tenant": args.tenant or e.tenant or None}


@command("executions cancel", summary="Cancel an execution (-f force-cancel, -k kill)", group="executions",
         permission="operator", gate="confirm", prepare=_cancel_facts,
         params=[Param("execution_id", metavar="EXECUTION_ID", required=True, help="the execution to cancel"),
                 Param("force", ("-f", "--force"), "terminate it abruptly rather than request an orderly end",
                       kind="bool", default=False),
                 Param("kill", ("-k", "--kill"), "terminate it abruptly and also stop its running operations",
                       kind="bool", default=False),
                 _tenant_param("execution")],
         gate_text="cancel execution {execution_id} on manager {manager}",
         examples=["executions cancel 2f1c0d6e-…", "executions cancel ID --kill -t prod-apps -m staging"])
def executions_cancel(ctx: Ctx, args: Args) -> Reply:
    """Answer `executions cancel ID [-f | -k]` once confirmed."""
    action = "kill" if args.kill else "force-cancel" if args.force else "cancel"
    e, note = _read(ctx, lambda bypass: ctx.manager.execution_action(args.execution_id, action, tenant=args.tenant,
                                                                     bypass_maintenance=bypass))
    status = e.status
    ctx.audit("execution_cancel", execution_id=args.execution_id, action=action, status=status)
    track = hint(ctx, f"executions get {args.execution_id}", args.tenant)
    text = (f"A {action} request for execution {args.execution_id} on {ctx.manager_name} was accepted; it is now "
            f"{status}. Track it with {track}.")
    return Reply(text=" ".join([text, note] if note else [text]), title=f"Execution {args.execution_id}: {status}",
                 tone=Tone.WARNING, public=True,
                 fields=(("workflow", e.workflow_id or ""), ("status", status),
                         ("tenant", e.tenant or args.tenant or "")))
