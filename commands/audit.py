"""`audit`: the newest audit rows, filtered by user, command, manager, event, operation and time."""

from __future__ import annotations

import re
from typing import Any

from bot.core import Reply, Table, parse_since
from bot.engine.context import Ctx
from bot.errors import UsageError
from bot.spec.parser import Args
from bot.spec.registry import Param, command
from commands.common import count

MAX_LIMIT = 200
_MENTION = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")  # how Slack escapes an @mention: <@U123|alice>
_QUIET = ("invocation",)  # detail keys that repeat what the row already says


def _check_limit(value: int) -> str | None:
    return None if 1 <= value <= MAX_LIMIT else f"--limit must be between 1 and {MAX_LIMIT}"


@command("audit", summary="Recent audit rows: who did what, where and when, newest first", group="audit",
         permission="admin", manager_scoped=False,
         params=[
             Param("user", ("-u", "--user"), "a Slack user id (U…), an @mention, or shell:NAME", metavar="USER"),
             Param("command", ("-c", "--command"), "a command, e.g. \"snapshots create\" (quote it)",
                   metavar="COMMAND"),
             Param("manager", ("-m", "--manager"), "only rows about this manager", metavar="NAME"),
             Param("event", ("-e", "--event"), "invoke, denied, gate_shown, approved, manager_call, step, "
                   "outcome…", metavar="EVENT"),
             Param("operation", ("--operation",), "one operation's rows, e.g. op-7f3a2c", metavar="OPERATION_ID"),
             Param("since", ("--since",), "a duration such as 24h or 7d, or an ISO time", metavar="T"),
             Param("limit", ("-n", "--limit"), f"at most this many rows (20, at most {MAX_LIMIT})", kind="int",
                   default=20, metavar="N", check=_check_limit),
         ],
         examples=["audit", "audit --user U012AB3CD --since 24h", "audit --command restore --manager production",
                   "audit --event denied --limit 50", "audit --operation op-7f3a2c"])
def audit(ctx: Ctx, args: Args) -> Reply:
    """Answer `audit [filters]`."""
    filters = _filters(ctx, args)
    rows = ctx.audit_log.query_audit(**filters, limit=args.limit)
    described = ", ".join(f"{k} {_shown(k, v)}" for k, v in filters.items() if v) or "no filter"
    if not rows:
        return Reply(text=f"No audit rows match ({described}).", title="Audit log")
    table = Table(("#", "time (UTC)", "actor", "event", "command", "manager", "operation", "detail"),
                  tuple(_row(r) for r in rows),
                  note="newest first; `cfy-bot audit export` gives every field, `cfy-bot audit verify` checks "
                       "the chain")
    return Reply(text=f"{count(len(rows), 'audit row')}, newest first ({described})", title="Audit log", table=table)


def _filters(ctx: Ctx, args: Args) -> dict[str, Any]:
    since = None
    if args.since:
        try:
            since = parse_since(args.since, ctx.now())
        except ValueError as exc:
            raise UsageError(str(exc), usage=ctx.command.usage()) from None
    return {"user": _user(args.user), "command": _command(ctx, args.command), "manager": args.manager or None,
            "event": args.event or None, "operation_id": args.operation or None, "since": since}


def _user(text: str | None) -> str | None:
    """`<@U123|alice>` → `U123`; `slack:U123`, `shell:alice`, `U123` and `alice` are kept as typed."""
    if not text:
        return None
    m = _MENTION.match(text.strip())
    return m.group(1) if m else text.strip().lstrip("@")


def _command(ctx: Ctx, text: str | None) -> str | None:
    """The declared name of a command typed with aliases (`snapshot create` → `snapshots create`)."""
    if not text:
        return None
    words = text.split()
    cmd, used = ctx.registry.lookup(words)
    return cmd.name if cmd is not None and used == len(words) else " ".join(words)


def _shown(key: str, value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if key == "since" else str(value)


def _row(r: dict[str, Any]) -> tuple[str, ...]:
    op = r.get("operation_id") or ""
    if r.get("execution_id"):
        op = f"{op} exec {r['execution_id'][:8]}".strip()
    return (str(r["seq"]), r["at"][:19].replace("T", " "), r["actor"], r["event"], r["command"], r["manager"], op,
            _detail(r.get("detail") or {}))


def _detail(detail: dict[str, Any], width: int = 90) -> str:
    """The detail as `key=value; …`, cut to one line."""
    parts = [f"{k}={_flat(v)}" for k, v in detail.items() if k not in _QUIET and v not in (None, "", [], {})]
    text = "; ".join(parts)
    return text if len(text) <= width else text[: width - 1] + "…"


def _flat(value: Any) -> str:
    return " ".join(str(value).split())
