"""What a transport shows for one invocation or decision, and the replies for errors (no Slack, no HTTP)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.core import Invocation, Operation, Reply, Tone
from bot.errors import BotError, NothingToDo, UsageError

log = logging.getLogger("cfy_bot.dispatch")


@dataclass(frozen=True)
class Outcome:
    """What a transport shows: a reply, an exit code, and the operation when one was created."""

    reply: Reply
    exit_code: int = 0
    operation: Operation | None = None
    gate: str | None = None  # "confirm" | "approve" while the operation waits for a decision


def usage_reply(exc: UsageError) -> Reply:
    """A usage error as a reply: what was wrong, the usage line, and a suggestion."""
    lines = [str(exc)]
    if exc.suggestion:
        lines.append(f"Did you mean `{exc.suggestion}`?")
    if exc.usage:
        lines.append(f"Usage: {exc.usage}")
    lines.append("Type `help` for the list of commands.")
    return Reply(text="\n".join(lines), title="Usage error", tone=Tone.WARNING, ok=False)


def error_reply(exc: BotError, manager: str = "") -> Reply:
    """A bot error as a reply that names the manager it is about."""
    text = str(exc)
    if manager and manager not in text:
        text = f"[{manager}] {text}"
    if isinstance(exc, NothingToDo):
        return Reply(text=text[:1].upper() + text[1:], title="Nothing to do", tone=Tone.INFO)
    return Reply(text=text, title="Failed", tone=Tone.DANGER, ok=False)


def internal_error(inv: Invocation) -> Outcome:
    """The only answer to an unexpected exception: a reference, never a traceback."""
    log.exception("internal error handling invocation %s", inv.id)
    return Outcome(Reply(text=f"internal error, ref `{inv.id}` (the details are in the bot's log)",
                         title="Internal error", tone=Tone.DANGER, ok=False), 1)
