"""Command declarations and the registry: each command is declared once, everything else derives from it."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from bot.core import Gate, Role

ROLES: tuple[Role, ...] = tuple(Role)  # lowest first
GATES = (None, *Gate)

# Words people type for the cfy names (DESIGN §3): `snapshot` = `snapshots`, `maintenance` = `maintenance-mode`.
WORD_ALIASES = {
    "snapshot": "snapshots",
    "maintenance": "maintenance-mode",
    "backup": "backups",
    "incidents": "incident",
    "runbooks": "runbook",
    "manager": "managers",
    "execution": "executions",
}


@dataclass(frozen=True)
class Param:
    """One positional argument (no flags) or option (flags such as `-f`, `--force`)."""

    name: str
    flags: tuple[str, ...] = ()
    help: str = ""
    kind: str = "str"  # str | int | float | bool
    default: Any = None
    required: bool = False
    choices: tuple[str, ...] = ()
    negatable: bool = False  # `--legacy/--no-legacy`
    rest: bool = False  # positional that takes every remaining word (a title, a note)
    metavar: str = ""
    check: Callable[[Any], str | None] | None = None  # returns an error text or None
    excludes: tuple[str, ...] = ()  # names of parameters it cannot be given with (cfy's mutually exclusive options)

    @property
    def positional(self) -> bool:
        """True for an argument given by position rather than by flag."""
        return not self.flags

    def label(self) -> str:
        """How the parameter appears in a usage line."""
        mv = self.metavar or self.name.upper()
        if self.positional:
            text = f"{mv}..." if self.rest else mv
            return text if self.required else f"[{text}]"
        if self.kind == "bool":
            long = self.flags[-1]
            flag = f"{long}/--no-{long[2:]}" if self.negatable else "/".join(self.flags)
            return f"[{flag}]"
        return f"[{'/'.join(self.flags)} {mv}]"


@dataclass(frozen=True)
class Command:
    """A declared command: path, parameters, summary, examples, permission, gate, long-running."""

    path: tuple[str, ...]
    handler: Callable[..., Any]
    summary: str
    group: str
    params: tuple[Param, ...] = ()
    examples: tuple[str, ...] = ()
    permission: Role = Role.VIEWER
    gate: str | None = None
    long_running: bool = False
    aliases: tuple[tuple[str, ...], ...] = ()
    manager_scoped: bool = True
    description: str = ""
    gate_text: str = ""  # what the gate card says; formatted with the args and `manager`
    exclusive: bool = False  # one such operation per manager at a time (restore, maintenance changes)
    prepare: Callable[..., Any] | None = None  # read-only checks before the gate: (ctx, args) -> facts dict
    resumable: bool = False  # the handler can pick up a running operation again after a restart

    @property
    def name(self) -> str:
        """The command's path as typed, e.g. `snapshots create`."""
        return " ".join(self.path)

    def usage(self) -> str:
        """The one-line usage derived from the declaration."""
        parts = [self.name] + [p.label() for p in self.params]
        if self.manager_scoped:
            parts.append("[-m/--manager NAME]")
        return " ".join(parts)


@dataclass
class Registry:
    """All commands, found by longest-prefix match on their words."""

    commands: dict[tuple[str, ...], Command] = field(default_factory=dict)
    alias_paths: dict[tuple[str, ...], tuple[str, ...]] = field(default_factory=dict)

    def add(self, cmd: Command) -> Command:
        """Register `cmd`; a path may be declared only once."""
        for path in (cmd.path, *cmd.aliases):
            if path in self.commands or path in self.alias_paths:
                raise ValueError(f"command path declared twice: {' '.join(path)}")
        if cmd.permission not in ROLES or cmd.gate not in GATES:
            raise ValueError(f"bad permission or gate on {cmd.name}")
        self.commands[cmd.path] = cmd
        for alias in cmd.aliases:
            self.alias_paths[alias] = cmd.path
        return cmd

    def all(self) -> list[Command]:
        """Every command in declaration order."""
        return list(self.commands.values())

    def groups(self) -> dict[str, list[Command]]:
        """Commands by group, in declaration order."""
        out: dict[str, list[Command]] = {}
        for cmd in self.commands.values():
            out.setdefault(cmd.group, []).append(cmd)
        return out

    def lookup(self, words: list[str]) -> tuple[Command | None, int]:
        """The command whose path is the longest prefix of `words`, and how many words it used."""
        norm = [WORD_ALIASES.get(w.lower(), w.lower()) for w in words]
        for n in range(min(len(norm), 4), 0, -1):
            key = tuple(norm[:n])
            path = self.alias_paths.get(key, key)
            if path in self.commands:
                return self.commands[path], n
        return None, 0

    def children(self, word: str) -> list[Command]:
        """Commands whose path starts with `word` (a group word such as `snapshots`)."""
        word = WORD_ALIASES.get(word.lower(), word.lower())
        return [c for c in self.commands.values() if c.path[0] == word and len(c.path) > 1]

    def suggest(self, words: Iterable[str]) -> list[str]:
        """Close matches for a mistyped command, best first."""
        typed = " ".join(WORD_ALIASES.get(w.lower(), w.lower()) for w in words)
        names = [c.name for c in self.commands.values()]
        names += [" ".join(a) for a in self.alias_paths]
        names += sorted({c.path[0] for c in self.commands.values()})
        n_words = len(typed.split())
        cut = [" ".join(n.split()[:n_words]) for n in names]
        found = difflib.get_close_matches(typed, list(dict.fromkeys(cut)), n=3, cutoff=0.6)
        return found


REGISTRY = Registry()


def command(
    path: str,
    *,
    summary: str,
    group: str,
    params: Iterable[Param] = (),
    examples: Iterable[str] = (),
    permission: str = "viewer",
    gate: str | None = None,
    long_running: bool = False,
    aliases: Iterable[str] = (),
    manager_scoped: bool = True,
    description: str = "",
    gate_text: str = "",
    exclusive: bool = False,
    prepare: Callable[..., Any] | None = None,
    resumable: bool = False,
    registry: Registry | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare a command; the decorated function is its handler `(ctx, args) -> Reply`."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        cmd = Command(path=tuple(path.split()), handler=fn, summary=summary, group=group, params=tuple(params),
                      examples=tuple(examples), permission=Role(permission), gate=gate, long_running=long_running,
                      aliases=tuple(tuple(a.split()) for a in aliases), manager_scoped=manager_scoped,
                      description=description, gate_text=gate_text, exclusive=exclusive, prepare=prepare,
                      resumable=resumable)
        (registry or REGISTRY).add(cmd)
        fn.command = cmd  # type: ignore[attr-defined]
        return fn

    return wrap
