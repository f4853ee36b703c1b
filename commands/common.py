"""Pieces several commands share: id rules, time formatting, parameters declared once."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

from bot.engine.context import Ctx
from bot.spec.registry import Param
from bot.core import age, count, parse_time

__all__ = ["SNAPSHOT_ID", "age", "check_snapshot_id", "clip", "count", "hint", "parse_time", "when"]


def check_snapshot_id(value: str) -> str | None:
    """The manager's snapshot id rules (checked before any request), or None when `value` is fine."""
    if not value:
        return "the snapshot id is empty"
    if len(value) > 256:
        return "the snapshot id is too long: at most 256 characters"
    if quote(value, safe="") != value:
        return (f"the snapshot id {value!r} contains illegal characters: only letters, digits and "
                "the characters - . _ ~ are allowed")
    if not ("a" <= value[0].lower() <= "z"):
        return f"the snapshot id {value!r} must begin with a letter"
    return None


SNAPSHOT_ID = Param("snapshot_id", metavar="SNAPSHOT_ID", required=True, check=check_snapshot_id,
                    help="the snapshot's id on the manager")


def when(text: str | None, now: datetime) -> str:
    """`2026-11-25 02:40 UTC (3h 5m ago)`: the one time format a person reads; blank for no time."""
    t = parse_time(text)
    if t is None:
        return ""
    delta = (now - t).total_seconds()
    rel = f"{age(delta)} ago" if delta >= 0 else f"in {age(-delta)}"
    return f"{t.astimezone(UTC).strftime('%Y-%m-%d %H:%M')} UTC ({rel})"


def hint(ctx: Ctx, command: str, tenant: str = "") -> str:
    """A command to type, as it runs: `-m NAME` when the manager is not the default one, `-t TENANT` when given."""
    default = ctx.settings.managers[0].name if ctx.settings.managers else ctx.manager_name
    text = command
    if tenant:
        text += f" -t {tenant}"
    if ctx.manager_name != default:
        text += f" -m {ctx.manager_name}"
    return f"`{text}`"


def clip(text: str, width: int) -> str:
    """`text` in at most `width` characters, cut at a word boundary with `…` (never mid-word)."""
    text = " ".join(text.split())
    if len(text) <= width:
        return text
    cut = text[:width - 1]
    space = len(cut) if text[width - 1] == " " else cut.rfind(" ")  # the last word that fits whole
    return (cut[:space] if space > width // 2 else cut).rstrip(" ,;:") + "…"


def last_line(error: str | None) -> str:
    """The last non-empty line of a traceback: where the message is."""
    lines = [ln.strip() for ln in (error or "").strip().splitlines() if ln.strip()]
    return lines[-1] if lines else ""
