"""Who may run what: the one place permission is decided.

Roles are `viewer < operator < admin`. A role comes from grants (a Slack user id, a Slack user-group id, or
`shell:NAME`), each optionally limited to some channels and some managers; the terminal user also holds
`BOT_SHELL_ROLE`, the bot's own jobs (`system:…`) are admins. Anyone without a grant is a viewer, unless
`BOT_VIEWERS` is set: then only people with some grant (a viewer, operator or admin anywhere) may use it.
Commands from Slack are refused outside `BOT_CHANNELS` when it is set.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from bot.core import Actor, Operation
from bot.spec.registry import ROLES, Command
from bot.settings import Settings


@dataclass(frozen=True)
class Decision:
    """The outcome of a permission check, with the reason a person can read."""

    allowed: bool
    role: str | None
    reason: str = ""
    needed: str = ""  # the role the command needs (blank when the channel, not the role, is the problem)


class Policy:
    """Roles from grants by user, user group, channel and manager; every allow or deny is decided here."""

    def __init__(self, settings: Settings, groups_of: Callable[[str], Iterable[str]] | None = None) -> None:
        self.settings = settings
        self.groups_of = groups_of or (lambda _user: ())

    def principals(self, actor: Actor) -> set[str]:
        """The names grants can give `actor` a role by: its Slack id and user groups, or `shell:NAME`."""
        if actor.source == "slack":
            # Only Slack ids and groups: a terminal user who calls itself `U123` must not match a Slack grant.
            return {actor.local_id, *self.groups_of(actor.local_id)}
        return {actor.id}

    def role(self, actor: Actor, channel: str = "", manager: str = "") -> str | None:
        """The highest role `actor` holds here, or None when it may not use the bot at all."""
        if actor.source == "system":
            return "admin"
        principals = self.principals(actor)
        best, granted = -1, False
        for g in self.settings.grants:
            if g.principal in principals and _applies(g.channels, channel):
                granted = True  # a grant on some manager makes its holder a user of the bot, so a viewer at least
                if _applies(g.managers, manager):
                    best = max(best, ROLES.index(g.role))
        if actor.source == "shell":
            best = max(best, ROLES.index(self.settings.shell_role))
        elif best < 0 and (granted or not self.settings.viewers_restricted):
            best = 0
        return ROLES[best] if best >= 0 else None

    def channel_refusal(self, actor: Actor, channel: str) -> str:
        """Why commands are refused in `channel`, or '' when they are allowed there."""
        if actor.source != "slack" or not self.settings.channels or channel in self.settings.channels:
            return ""
        where = ", ".join(f"<#{c}>" for c in self.settings.channels)
        return f"commands are not allowed in this channel; use {where} (access: {self.settings.access_contact})"

    def check(self, actor: Actor, cmd: Command, channel: str = "", manager: str = "") -> Decision:
        """May `actor` run `cmd` in `channel` on `manager`?"""
        refusal = self.channel_refusal(actor, channel)
        if refusal:
            return Decision(False, None, refusal)
        role = self.role(actor, channel, manager)
        if _at_least(role, cmd.permission):
            return Decision(True, role, needed=cmd.permission)
        return Decision(False, role, self._why_not(actor, cmd, channel, manager, role), cmd.permission)

    def _why_not(self, actor: Actor, cmd: Command, channel: str, manager: str, role: str | None) -> str:
        have = f"you are {role}" if role else "you have no role"
        where = f" on {manager}" if manager else ""
        elsewhere = [m.name for m in self.settings.managers
                     if m.name != manager and _at_least(self.role(actor, channel, m.name), cmd.permission)]
        hint = f"; you may run it on {', '.join(elsewhere)} with -m" if manager and elsewhere else ""
        return (f"`{cmd.name}` needs the {cmd.permission} role ({have}{where}{hint}); "
                f"ask {self.settings.access_contact}")

    def help_refusal(self, actor: Actor, channel: str = "") -> Decision | None:
        """Why `actor` gets no help here (a refused channel, no role at all), or None when it does."""
        refusal = self.channel_refusal(actor, channel)
        if refusal:
            return Decision(False, None, refusal)
        if self.role(actor, channel) is None:
            return Decision(False, None, f"you have no role in cfy-bot; ask {self.settings.access_contact}",
                            "viewer")
        return None

    def may_run(self, actor: Actor, channel: str = "", manager: str | None = None) -> Callable[[Command], bool]:
        """A predicate for help: could this actor run the command here (on `manager`, or on any manager)?"""
        if self.channel_refusal(actor, channel):
            return lambda _cmd: False
        if manager is not None:
            places = [manager]
        else:
            places = [m.name for m in self.settings.managers] or [""]
        roles = {m: self.role(actor, channel, m) for m in places}
        unscoped = self.role(actor, channel, "")
        return lambda cmd: (any(_at_least(r, cmd.permission) for r in roles.values()) if cmd.manager_scoped
                            else _at_least(unscoped, cmd.permission))

    def may_decide(self, actor: Actor, op: Operation, action: str, cmd: Command, channel: str = ""
                   ) -> Decision:
        """May `actor` confirm, approve, reject or cancel operation `op` (authorized again on every click)?"""
        channel = channel or op.channel
        manager = op.manager
        refusal = self.channel_refusal(actor, channel)
        if refusal:
            return Decision(False, None, refusal)
        role = self.role(actor, channel, manager)
        contact = self.settings.access_contact
        requester = op.requester_name or op.requester
        if action in ("reject", "cancel"):
            if actor.id == op.requester or role == "admin":
                return Decision(True, role, needed="admin")
            return Decision(False, role, f"only the requester ({requester}) or an admin of {manager} can "
                            f"{action} {op.id}; ask {contact}", "admin")
        if action == "confirm" and actor.id != op.requester:
            return Decision(False, role, f"only the requester ({requester}) can confirm {op.id}",
                            cmd.permission)
        decision = self.check(actor, cmd, channel, manager)
        if not decision.allowed or action != "approve":
            return decision
        if actor.id in (op.requester, op.confirmed_by):
            return Decision(False, role, "you requested this operation: a second admin must approve it", "admin")
        if role != "admin":
            have = f"you are {role}" if role else "you have no role"
            return Decision(False, role, f"approving `{cmd.name}` needs the admin role ({have} on {manager}); "
                            f"ask {contact}", "admin")
        return Decision(True, role, needed="admin")


def _at_least(role: str | None, needed: str) -> bool:
    return role is not None and ROLES.index(role) >= ROLES.index(needed)


def _applies(scope: tuple[str, ...], value: str) -> bool:
    return not scope or value in scope
