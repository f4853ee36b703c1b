"""Who may run what: the one place permission is decided."""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Callable, Iterable

from bot.core import Actor
from bot.registry import ROLES, Command
from bot.settings import Settings


@dataclass(frozen=True)
class Decision:
    """The outcome of a permission check, with the reason a person can read."""

    allowed: bool
    role: str | None
    reason: str = ""


class Policy:
    """Roles `viewer < operator < admin` from grants by user, user group, channel and manager."""

    def __init__(self, settings: Settings, groups_of: Callable[[str], Iterable[str]] | None = None) -> None:
        self.settings = settings
        self.groups_of = groups_of or (lambda _user: ())

    def role(self, actor: Actor, channel: str = "", manager: str = "") -> str | None:
        """The highest role `actor` holds here, or None when it may not use the bot at all."""
        if actor.source == "system":
            return "admin"
        principals = {actor.local_id, actor.id}
        if actor.source == "slack":
            principals |= set(self.groups_of(actor.local_id))
        best = -1
        for g in self.settings.grants:
            if g.principal in principals and _applies(g.channels, channel) and _applies(g.managers, manager):
                best = max(best, ROLES.index(g.role))
        if actor.source == "shell":
            best = max(best, ROLES.index(self.settings.shell_role))
        elif best < 0 and not self.settings.viewers_restricted:
            best = 0
        return ROLES[best] if best >= 0 else None

    def check(self, actor: Actor, cmd: Command, channel: str = "", manager: str = "") -> Decision:
        """May `actor` run `cmd` in `channel` on `manager`?"""
        if actor.source == "slack" and self.settings.channels and channel not in self.settings.channels:
            return Decision(False, None, "commands are not allowed in this channel; use one of "
                            + ", ".join(f"<#{c}>" for c in self.settings.channels))
        role = self.role(actor, channel, manager)
        if role is not None and ROLES.index(role) >= ROLES.index(cmd.permission):
            return Decision(True, role)
        have = f"you are {role}" if role else "you have no role"
        return Decision(False, role, f"`{cmd.name}` needs the {cmd.permission} role ({have}"
                        f"{' on ' + manager if manager else ''}); ask {self.settings.access_contact}")

    def may_run(self, actor: Actor, channel: str = "") -> Callable[[Command], bool]:
        """A predicate for help: the commands this actor could run here."""
        role = self.role(actor, channel)
        level = ROLES.index(role) if role else -1
        return lambda cmd: level >= ROLES.index(cmd.permission)


def _applies(scope: tuple[str, ...], value: str) -> bool:
    return not scope or value in scope
