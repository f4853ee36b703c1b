"""Help, per-group help, per-command help and the README command table, all derived from declarations."""

from __future__ import annotations

from collections.abc import Callable

from bot.core import Reply, Table
from bot.errors import UsageError
from bot.spec.registry import Command, Registry

GROUP_TITLES = {
    "overview": "Overview",
    "snapshots": "Snapshots",
    "maintenance-mode": "Maintenance mode",
    "executions": "Executions",
    "restore": "Guided restore",
    "backups": "Daily backups",
    "cluster": "Managers and clusters",
    "incidents": "Incidents and runbooks",
    "audit": "Audit",
}


def _gate_note(cmd: Command) -> str:
    return {"confirm": "asks for confirmation", "approve": "needs confirmation and a second admin"}.get(
        cmd.gate or "", ""
    )


def overview(registry: Registry, may_run: Callable[[Command], bool]) -> Reply:
    """`help`: every group and the commands the asking user may run."""
    rows = [(cmd.name, cmd.summary) for cmd in registry.all() if may_run(cmd)]
    hidden = sum(1 for c in registry.all() if not may_run(c))
    note = f"{hidden} more commands need a higher role." if hidden else ""
    text = "Commands you can run (`help GROUP` or `COMMAND --help` for details):"
    return Reply(text=text, title="cfy-bot help", table=Table(("command", "what it does"), tuple(rows), note))


def group_help(registry: Registry, group: str, may_run: Callable[[Command], bool]) -> Reply:
    """`help snapshots`: the group's commands with their usage lines."""
    cmds = [c for c in registry.all() if group in (c.group, c.path[0])]
    lines = [f"{c.usage()}\n    {c.summary}" for c in cmds if may_run(c)]
    if not lines:
        return Reply(text=f"You may not run any command in `{group}`.", title=GROUP_TITLES.get(group, group))
    return Reply(text="\n".join(lines), title=GROUP_TITLES.get(group, group))


def command_help(cmd: Command) -> Reply:
    """`COMMAND --help`: usage, options, permission and examples."""
    lines = [f"Usage: {cmd.usage()}", "", cmd.summary]
    if cmd.description:
        lines += ["", cmd.description]
    opts = [p for p in cmd.params if p.help]
    if opts:
        lines.append("")
        width = max(len(p.label()) for p in opts)
        lines += [f"  {p.label().ljust(width)}  {p.help}" for p in opts]
    extra = [f"role: {cmd.permission}"]
    if note := _gate_note(cmd):
        extra.append(note)
    if cmd.long_running:
        extra.append("progress in a thread")
    lines += ["", "; ".join(extra)]
    if cmd.examples:
        lines += ["", "Examples:"] + [f"  {e}" for e in cmd.examples]
    return Reply(text="\n".join(lines), title=cmd.name)


def help_reply(registry: Registry, topic: tuple[str, ...], may_run: Callable[[Command], bool]) -> Reply:
    """Answer `help [TOPIC...]`."""
    if not topic:
        return overview(registry, may_run)
    cmd, used = registry.lookup(list(topic))
    if cmd is not None and used == len(topic):
        return command_help(cmd)
    groups = {c.group for c in registry.all()}
    children = registry.children(topic[0])
    if len(topic) == 1 and children:
        return group_help(registry, children[0].path[0], may_run)
    if len(topic) == 1 and topic[0].lower() in groups:
        return group_help(registry, topic[0].lower(), may_run)
    hits = registry.suggest(topic)
    raise UsageError(f"no help topic `{' '.join(topic)}`", suggestion=hits[0] if hits else "")


def docs_table(registry: Registry) -> str:
    """The Markdown command table for README.md (`cfy-bot docs`)."""
    lines = ["| command | what it does | role | gate |", "|---|---|---|---|"]
    for cmd in registry.all():
        usage = cmd.usage().replace("|", "\\|")
        lines.append(f"| `{usage}` | {cmd.summary} | {cmd.permission} | {_gate_note(cmd) or '-'} |")
    return "\n".join(lines)

