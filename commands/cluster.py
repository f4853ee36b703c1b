"""`cluster status` and `managers`: the cluster's health as every node sees it, and which managers the bot knows.

The bot asks every configured node URL itself (a client pinned to that node), never only the one it
talks to: a split brain (guide, "Failure Recovery") shows only as nodes that disagree, each reporting
itself healthy and the others failed, or listing different members.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from bot.engine.context import Ctx
from bot.core import Reply, Table, Tone
from bot.errors import BotError, ManagerError
from bot.spec.parser import Args
from bot.spec.registry import command
from commands.common import count

KINDS = ("manager", "db", "broker")
SPLIT_BRAIN_ADVICE = (
    "This is the split brain of the guide: while the managers cannot reach each other, each thinks the "
    "others are unhealthy and acts as the active one. When connectivity comes back only one stays active: "
    "the node with the NEWEST PostgreSQL database wins, every other node is synced from it and becomes a "
    "standby, and all data, installed deployments and plugins that exist only on the other side(s) are LOST. "
    "Before connectivity returns, take a snapshot of each side (on a node of that side) and copy it off; "
    "then follow the recovery procedure named below.")


@dataclass
class View:
    """What one node URL answered: its cluster status and member lists, or why it did not answer."""

    url: str
    node: str = ""  # the manager node's name, when the URL could be matched to one
    error: str = ""
    status: dict[str, Any] = field(default_factory=dict)
    members: dict[str, tuple[str, ...]] = field(default_factory=dict)  # kind -> names it lists
    manager_rows: list[dict[str, Any]] = field(default_factory=list)  # its `GET /managers` items

    @property
    def health(self) -> dict[str, dict[str, str]]:
        """kind -> node -> OK | Degraded | Fail, as this node reports it."""
        out: dict[str, dict[str, str]] = {}
        for kind, service in (self.status.get("services") or {}).items():
            out[kind] = {n: str(i.get("status", "?")) for n, i in (service.get("nodes") or {}).items()}
        return out

    def signature(self) -> tuple[Any, ...]:
        """What two nodes of one healthy cluster agree on: the members and the health of the managers."""
        managers = tuple(sorted(self.health.get("manager", {}).items()))
        return tuple(tuple(sorted(self.members.get(k, ()))) for k in KINDS) + (managers,)


@dataclass
class Verdict:
    """The overall judgement: a word, a tone, one line per finding, and the runbook that fits."""

    word: str  # OK | Degraded | Fail | DOWN | SPLIT BRAIN
    tone: Tone
    lines: list[str]
    runbook: str = ""
    sides: list[list[View]] = field(default_factory=list)


def ask_every_node(client: Any) -> list[View]:
    """One view per configured node URL of `client` (a Manager), each asked through a client pinned to it."""
    views = []
    for url in client.urls:
        view = View(url)
        node = client.for_node(url)
        try:
            view.status = node.cluster_status(summary=False)
            view.manager_rows = node.managers().items
            view.members = {"manager": tuple(m.get("hostname", "?") for m in view.manager_rows),
                            "db": tuple(d.get("name", "?") for d in node.db_nodes().items),
                            "broker": tuple(b.get("name", "?") for b in node.brokers().items)}
            # a node that lists itself as the only manager is that manager, whatever name its URL uses
            only = view.manager_rows[0].get("hostname") if len(view.manager_rows) == 1 else ""
            view.node = _node_name(url, view.manager_rows) or str(only or "")
        except BotError as exc:
            view.error = str(exc)
        views.append(view)
    known = [row for v in views for row in v.manager_rows]
    for view in views:
        view.node = view.node or _node_name(view.url, known)  # a silent node, named by the others' lists
    return views


def _node_name(url: str, managers: list[dict[str, Any]]) -> str:
    """The manager node a URL points at: by hostname, IP or first DNS label; '' when unknown."""
    host = (urlsplit(url).hostname or "").lower()
    for m in managers:
        names = {str(m.get(k) or "").lower() for k in ("hostname", "private_ip", "public_ip")}
        names |= {str(v).lower() for v in (m.get("networks") or {}).values()}
        if host in names - {""} or host.split(".")[0] == str(m.get("hostname") or "").lower().split(".")[0]:
            return str(m.get("hostname") or "")
    return ""


def judge(views: list[View], talking_to: str) -> Verdict:
    """The verdict over every node's view; `talking_to` is the URL the bot used before asking."""
    up = [v for v in views if not v.error]
    down = [v for v in views if v.error]
    if not up:
        return Verdict("DOWN", Tone.DANGER, [f"No node answers ({len(views)} asked). The whole cluster is down or "
                                          "unreachable from the bot."], "cluster-down")
    sides = _sides(up)
    if len(sides) > 1:
        lines = [f"SPLIT BRAIN: the {len(up)} nodes that answer disagree about the cluster."]
        lines += [f"Side {i}: {_side_text(side)}" for i, side in enumerate(sides, start=1)]
        return Verdict("SPLIT BRAIN", Tone.DANGER, lines + [SPLIT_BRAIN_ADVICE], "split-brain", sides)
    seen = up[0]
    overall = str(seen.status.get("status", "?"))
    failed = {k: [n for n, s in nodes.items() if s != "OK"] for k, nodes in seen.health.items()}
    lines, runbook = [], ""
    for view in down:
        lines.append(f"{_label(view)} does not answer: {view.error}")
    for kind, names in failed.items():
        if names:
            lines.append(f"{kind} nodes not OK: {', '.join(names)} (the {kind} service is "
                         f"{seen.status['services'][kind].get('status', '?')})")
    bad_managers = set(failed.get("manager", [])) | {v.node or v.url for v in down}
    # every manager node known: those the cluster lists and each configured URL (named when it maps to one)
    known_managers = set(seen.health.get("manager", {})) | {v.node or v.url for v in views}
    if bad_managers and bad_managers >= known_managers:
        runbook = "cluster-down"
    elif bad_managers:
        was = next((v for v in views if v.url == talking_to), None)
        runbook = "active-node-down" if was is not None and was.error else "node-down"
    if overall == "Fail" and not runbook:
        runbook = "cluster-down"
    tone = {"OK": Tone.GOOD, "Degraded": Tone.WARNING}.get(overall, Tone.DANGER)
    if down and overall == "OK":
        overall, tone = "Degraded", Tone.WARNING
    return Verdict(overall, tone, lines or ["Every node answers and reports every service healthy."], runbook)


def _sides(up: list[View]) -> list[list[View]]:
    """Answering nodes grouped by what they report; more than one group is a split brain."""
    groups: dict[tuple[Any, ...], list[View]] = {}
    for view in up:
        groups.setdefault(view.signature(), []).append(view)
    sides = list(groups.values())
    if len(sides) == 1 and _self_healthy_others_failed(up):
        return [[v] for v in up]
    return sides


def _self_healthy_others_failed(up: list[View]) -> bool:
    """Some node reports itself OK while another answering node reports it failed."""
    named = {v.node: v for v in up if v.node}
    for viewer in up:
        for name, status in viewer.health.get("manager", {}).items():
            other = named.get(name)
            if other is not None and other is not viewer and status != "OK" \
                    and other.health.get("manager", {}).get(name) == "OK":
                return True
    return False


def _side_text(side: list[View]) -> str:
    first = side[0]
    healthy = [n for n, s in first.health.get("manager", {}).items() if s == "OK"]
    failed = [n for n, s in first.health.get("manager", {}).items() if s != "OK"]
    text = f"{', '.join(_label(v) for v in side)} list managers {', '.join(first.members.get('manager', ())) or '-'}"
    text += f"; healthy: {', '.join(healthy) or '-'}"
    return text + (f"; failed: {', '.join(failed)}" if failed else "")


def _label(view: View) -> str:
    return f"{view.node} ({view.url})" if view.node else view.url


def node_table(views: list[View], verdict: Verdict, answering: str) -> Table:
    """One row per cluster node: role, reachability, status and services, as the answering nodes see it."""
    if verdict.sides:
        rows = tuple((_label(v), ", ".join(v.members.get("manager", ())),
                      ", ".join(n for n, s in v.health.get("manager", {}).items() if s == "OK") or "-",
                      ", ".join(n for n, s in v.health.get("manager", {}).items() if s != "OK") or "-")
                     for side in verdict.sides for v in side)
        return Table(("asked node", "lists managers", "reports healthy", "reports failed"), rows,
                     note="Each side reports itself healthy and the other side failed.")
    seen = next((v for v in views if not v.error), None)
    by_node = {v.node: v for v in views if v.node}
    node_rows: list[tuple[str, ...]] = []
    for kind in KINDS:
        service = ((seen.status.get("services") or {}).get(kind) or {}) if seen else {}
        if service.get("is_external"):
            node_rows.append((kind, "(external)", "", "not asked", str(service.get("status", "?")), ""))
        for name, info in (service.get("nodes") or {}).items():
            node_rows.append((kind, name, info.get("private_ip") or "", _reach(kind, by_node.get(name), answering),
                         str(info.get("status", "?")), _services(info)))
    node_rows += [("manager", v.url, "", _reach("manager", v, answering), "unknown", "")
             for v in views if v.error and not v.node]
    return Table(("role", "node", "ip", "reachable", "status", "services"), tuple(node_rows))


def _reach(kind: str, view: View | None, answering: str) -> str:
    if kind != "manager" or view is None:
        return "-" if kind != "manager" else "not asked (no configured URL points at it)"
    if view.error:
        return "NO"
    return "yes, the bot talks to it" if view.url == answering else "yes"


def _services(info: dict[str, Any]) -> str:
    services = info.get("services") or {}
    inactive = [n for n, s in services.items() if s.get("status") != "Active"]
    if inactive:
        return "inactive: " + ", ".join(inactive)
    if not services:
        return "; ".join(info.get("failures") or []) or "none reported"
    return f"{len(services)}/{len(services)} active"


def settle_failover(ctx: Ctx, views: list[View]) -> str:
    """Make the bot's own client move off a node that stopped answering; the node it talks to now."""
    client = ctx.manager
    if any(v.url == client.current_url and v.error for v in views) and any(not v.error for v in views):
        try:
            client.ok()  # fails over to a node that answers, and leaves the dispatcher a notice saying so
        except ManagerError:
            pass
    return str(client.current_url)


def verdict_line(client: Any) -> str:
    """One line for status cards: the cluster verdict of a manager (every node asked)."""
    verdict = judge(ask_every_node(client), client.current_url)
    first = verdict.lines[0]
    return first if first.startswith(verdict.word) else f"{verdict.word}: {first}"


@command("cluster status", summary="Every node asked: roles, reachability, services, verdict, split brain",
         group="cluster", examples=["cluster status", "cluster status -m production"],
         description="Asks every configured node URL of the manager itself. When answering nodes disagree "
                     "(a split brain) it says so and what will be lost.")
def cluster_status(ctx: Ctx, args: Args) -> Reply:
    """Answer `cluster status`."""
    talking_to = ctx.manager.current_url
    views = ask_every_node(ctx.manager)
    verdict = judge(views, talking_to)
    answering = settle_failover(ctx, views)
    name = ctx.manager_name
    lines = [f"Cluster of {name}: {verdict.word}.", *verdict.lines]
    if answering != talking_to:
        lines.append(f"The bot was talking to {talking_to}; {answering} answers now.")
    if verdict.runbook:
        lines.append(f"Recovery procedure: `runbook {verdict.runbook} -m {name}`.")
    fields = (("manager", name), ("verdict", verdict.word),
              ("nodes answering", f"{sum(not v.error for v in views)} of {len(views)} configured"),
              ("bot talks to", answering))
    title = f"{'SPLIT BRAIN on ' if verdict.sides else 'Cluster status of '}{name}" + (
        "" if verdict.sides else f": {verdict.word}")
    return Reply(text="\n".join(lines), title=title, tone=verdict.tone, fields=fields,
                 table=node_table(views, verdict, answering), public=bool(verdict.sides),
                 ok=verdict.word in ("OK", "Degraded"))


@command("managers", summary="The configured managers, their node URLs and whether they answer", group="cluster",
         examples=["managers"], manager_scoped=False)
def managers(ctx: Ctx, args: Args) -> Reply:
    """Answer `managers`."""
    rows = []
    for name, client in ctx.managers.items():
        try:
            version = client.version().get("version", "?")
            state = f"answering ({version}) at {client.current_url}"
        except ManagerError as exc:
            state = f"unreachable: {exc}"
        default = " (default)" if name == next(iter(ctx.managers)) else ""
        drill = "yes (disposable)" if ctx.settings.manager(name).drill_target else "no"
        rows.append((name + default, ", ".join(client.urls), client.settings.tenant, drill, state))
    targets = ctx.settings.drill_targets()
    text = f"{count(len(rows), 'manager')} configured; restore drill targets: {', '.join(targets) or 'none'}"
    return Reply(text=text, title="Managers",
                 table=Table(("manager", "nodes", "tenant", "drill target", "state"), tuple(rows)))
