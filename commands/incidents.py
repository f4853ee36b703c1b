"""`incident start|note|status|close`: one room per incident, a pinned status card, a timeline from the audit log.

The room is a new channel `inc-YYYYMMDD-<slug>` (the requester invited, the card pinned, a link posted back
where it was started). Without the permission to create channels the bot says which scope is missing and
runs the incident in a thread of the current channel; in the terminal, the terminal is the room. Commands
typed in the room (operations included) report there. `restore … --incident` opens one for a restore.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from bot.engine.context import ChatPort, Ctx, Sink
from bot.core import ProgressEvent, Reply, Tone, age
from bot.errors import (BotError, ChatError, MissingScope, NameTaken, NoChannels, NothingToDo, NotFound,
                        OperationError)
from bot.spec.parser import Args
from bot.spec.registry import Param, command
from commands.cluster import verdict_line

INCIDENT = Param("incident", ("-i", "--incident"), "the incident's id (default: the one open in this channel)",
                 metavar="INCIDENT_ID")
UNFINISHED = ("pending", "approved", "running")


def _port(ctx: Ctx) -> ChatPort:
    return ctx.chat_port()


def status_card(ctx: Ctx, record: dict[str, Any]) -> Reply:
    """The incident's status card: manager, cluster verdict, newest verified backup, running operations."""
    name = record["manager"]
    client = ctx.managers.get(name)
    try:
        cluster = verdict_line(client) if client is not None else "unknown manager"
    except BotError as exc:
        cluster = f"could not be read: {exc}"
    copy = ctx.catalog.latest_verified(name)
    if copy:
        created = str(copy.created_at or copy.stored_at or "")
        old = _age_of(ctx, created)
        backup = f"{copy.snapshot_id} ({old} old)" if old else copy.snapshot_id
    else:
        backup = "NONE: there is no verified archive copy of this manager"
    ops = ctx.engine.list_operations(states=UNFINISHED, manager=name, limit=10)
    running = "; ".join(f"{o.id} {o.kind} {o.state}" + (f" ({o.step})" if o.step else "")
                        for o in ops) or "none"
    state = "open" if record.get("state") == "open" else f"closed {_hm(record.get('closed_at', ''))}"
    fields = (("manager", name), ("cluster", cluster), ("newest verified backup", backup),
              ("running operations", running),
              ("opened", f"by {record['started_by_name']}, {_hm(record['started_at'])}"), ("state", state))
    tone = Tone.GOOD if record.get("state") != "open" else Tone.WARNING
    return Reply(text=f"Status of {name}, updated {_hm(ctx.incidents.stamp(ctx.now()))}.",
                 title=f"Incident {record['id']}: {record['title']}", tone=tone, fields=fields, public=True)


def _age_of(ctx: Ctx, iso: str) -> str:
    from commands.common import parse_time

    t = parse_time(iso)
    return age((ctx.now() - t).total_seconds()) if t else ""


def _hm(iso: str) -> str:
    return f"{iso[:10]} {iso[11:16]} UTC" if len(iso) >= 16 else iso


def open_incident(ctx: Ctx, title: str, manager: str, kind: str = "incident") -> tuple[dict[str, Any], str]:
    """Create the room, invite the requester, post and pin the card; the record and what to tell people."""
    port, now = _port(ctx), ctx.now()
    mode, room, problem, name = _create_room(ctx, port, title, now)
    actor = ctx.inv.actor
    record = {"id": name, "title": title, "manager": manager, "kind": kind, "mode": mode, "room": room,
              "room_label": f"#{name}" if mode == "channel" else ("the terminal" if mode == "terminal"
                                                                   else f"a thread in {ctx.inv.channel}"),
              "thread": "", "card_ts": "", "origin_channel": ctx.inv.channel, "started_by": actor.id,
              "started_by_name": actor.name, "started_at": ctx.incidents.stamp(now), "state": "open",
              "operation_id": "", "problem": problem}
    if not ctx.incidents.save(record, new=True):
        raise BotError(f"incident {name} exists already; try another title")
    notes = [problem] if problem else []
    if mode == "channel":
        notes += _invite(ctx, port, room, [actor.id])
    ts = port.post(room, status_card(ctx, record))
    record.update(card_ts=ts, thread=ts if mode == "thread" else "")
    if ts and mode != "terminal":
        try:
            port.pin(room, ts)
        except ChatError as exc:
            notes.append(f"The status card is not pinned: {exc}.")
    ctx.incidents.set_room(room, name)
    ctx.incidents.save(record)
    ctx.audit_log.append_audit("incident_start", actor=actor.id, transport=ctx.inv.transport, channel=ctx.inv.channel,
                       manager=manager, command=ctx.command.name,
                       detail={"incident": name, "title": title, "mode": mode, "room": room, "problem": problem})
    return record, "\n".join(notes)


def _create_room(ctx: Ctx, port: ChatPort, title: str, now: datetime) -> tuple[str, str, str, str]:
    """A new channel under the first free name; else a thread of this channel, or the terminal.
    Returns (mode, room, problem, name)."""
    mode, room, problem, name = "thread", ctx.inv.channel, "", ""
    for attempt in range(1, 6):
        name = ctx.incidents.channel_name(title, now, attempt)
        if ctx.incidents.get(name) is not None:
            continue
        try:
            room, mode = port.create_channel(name), "channel"
        except NameTaken:
            continue
        except MissingScope as exc:
            problem = f"{str(exc)[:1].upper()}{str(exc)[1:]}. So the incident runs in a thread of this channel instead."
        except NoChannels:
            mode = "terminal"
        except ChatError as exc:
            problem = f"could not create channel #{name} ({exc}); the incident runs in a thread of this channel"
        break
    return mode, room, problem, name


def _invite(ctx: Ctx, port: ChatPort, room: str, users: list[str]) -> list[str]:
    notes = []
    for user in dict.fromkeys(u for u in users if u):
        try:
            port.invite(room, user)
        except ChatError as exc:
            notes.append(f"Could not invite {ctx.incidents.who(user)}: {exc}.")
    return notes


def _find(ctx: Ctx, incident_id: str | None) -> dict[str, Any]:
    if incident_id:
        found = ctx.incidents.get(incident_id)
        if found is None:
            raise NotFound(f"there is no incident {incident_id!r}")
        return found
    found = ctx.incidents.open_in(ctx.inv.channel)
    if found is None:
        if ctx.inv.transport == "slack":
            raise NotFound("no incident is open in this channel; run this in the incident's channel, or name it "
                             "with `-i INCIDENT_ID`")
        raise NotFound("no incident is open in the terminal; name one with `-i INCIDENT_ID` "
                         "(`incident status -i INCIDENT_ID`), or start one with `incident start TITLE`")
    return found


def _refresh(ctx: Ctx, record: dict[str, Any]) -> None:
    if record.get("card_ts"):
        _port(ctx).update(record["room"], record["card_ts"], status_card(ctx, record))


def _audit(ctx: Ctx, record: dict[str, Any], event: str, **detail: Any) -> None:
    ctx.audit_log.append_audit(event, actor=ctx.inv.actor.id, transport=ctx.inv.transport, channel=ctx.inv.channel,
                       manager=record["manager"], command=ctx.command.name,
                       detail={"incident": record["id"], **detail})


@command("incident start", summary="Open an incident room: channel, pinned status card, link back here",
         group="incidents", permission="operator",
         params=[Param("title", metavar="TITLE", rest=True, required=True, help="what is wrong, in a few words")],
         examples=["incident start db nodes down", "incident start restore after failed upgrade -m production"])
def incident_start(ctx: Ctx, args: Args) -> Reply:
    """Answer `incident start TITLE`."""
    here = ctx.incidents.open_in(ctx.inv.channel)
    if here is not None:
        where = "this channel" if ctx.inv.transport == "slack" else "the terminal"
        raise OperationError(f"incident {here['id']} is open in {where}; close it first "
                             f"(`incident close -i {here['id']}`)")
    record, notes = open_incident(ctx, args.title, ctx.manager_name)
    port = _port(ctx)
    if record["mode"] == "channel":
        text = (f"{ctx.inv.actor.name} opened incident “{record['title']}” on {record['manager']}: "
                f"{port.link(record['room'])}. Work on it there: commands typed there report there.")
        return Reply(text="\n".join(filter(None, [text, notes])), title=f"Incident on {record['manager']}",
                     tone=Tone.WARNING, public=True)
    if record["mode"] == "thread":  # the card is in the channel already: say only why there is no channel
        text = f"Incident {record['id']} on {record['manager']} runs in the thread of its status card in this channel."
        return Reply(text="\n".join(filter(None, [text, notes])), title=f"Incident on {record['manager']}",
                     tone=Tone.WARNING)
    card = status_card(ctx, record)
    text = f"Incident {record['id']} on {record['manager']} runs here: this terminal is the room.\n{notes}".rstrip()
    return replace(card, text=text + "\n" + card.text, public=True)


@command("incident note", summary="Add an entry to the incident's timeline", group="incidents",
         permission="operator", manager_scoped=False,
         params=[Param("text", metavar="TEXT", rest=True, required=True, help="what happened or was decided"),
                 INCIDENT],
         examples=["incident note db-2 disk full, cleaning up", "incident note -i inc-20261129-db-down vendor called"])
def incident_note(ctx: Ctx, args: Args) -> Reply:
    """Answer `incident note TEXT`."""
    record = _find(ctx, args.incident)
    if record.get("state") != "open":
        raise OperationError(f"incident {record['id']} is closed; notes go to an open incident")
    _audit(ctx, record, "incident_note", text=args.text)
    port = _port(ctx)
    port.say(record["room"], f"Note by {ctx.inv.actor.name}: {args.text}", record.get("thread", ""))
    _refresh(ctx, record)
    return Reply(text=f"Noted in incident {record['id']} ({record['manager']}): {args.text}", title="Noted")


@command("incident status", summary="The incident's status card, brought up to date", group="incidents",
         manager_scoped=False, params=[INCIDENT], examples=["incident status"])
def incident_status(ctx: Ctx, args: Args) -> Reply:
    """Answer `incident status`."""
    record = _find(ctx, args.incident)
    _refresh(ctx, record)
    return status_card(ctx, record)


@command("incident close", summary="Close the incident: post its timeline and a Markdown export",
         group="incidents", permission="operator", manager_scoped=False,
         params=[Param("summary", metavar="SUMMARY", rest=True, help="how it ended"), INCIDENT],
         examples=["incident close restored from daily-20261128, all nodes healthy", "incident close"])
def incident_close(ctx: Ctx, args: Args) -> Reply:
    """Answer `incident close [SUMMARY]`."""
    record = _find(ctx, args.incident)
    if not ctx.catalog.claim_mark(f"incident-closed:{record['id']}", ctx.inv.actor.id):
        raise NothingToDo(f"incident {record['id']} is closed already")
    _audit(ctx, record, "incident_close", summary=args.summary or "")
    record.update(state="closed", closed_at=ctx.incidents.stamp(ctx.now()), closed_by=ctx.inv.actor.id,
                  closed_by_name=ctx.inv.actor.name, summary=args.summary or "")
    ctx.incidents.save(record)
    ctx.incidents.set_room(record["room"], "")
    entries = ctx.incidents.timeline(list(ctx.audit_log.iter_audit(since=record["started_at"])), record)
    markdown = ctx.incidents.markdown(record, entries)
    path = ctx.incidents.write_export(record, markdown)
    lines = [f"{e['at'][11:19]} {e['who']}: {e['what']}" for e in entries]
    timeline = Reply(text="\n".join(lines) or "(nothing recorded)", title=f"Timeline of incident {record['id']}",
                     public=True)
    port = _port(ctx)
    port.post(record["room"], timeline, record.get("thread", ""))
    port.say(record["room"], f"Markdown export ({path}):\n```\n{markdown}```", record.get("thread", ""))
    _refresh(ctx, record)
    if record["mode"] == "channel" and record["origin_channel"] != ctx.inv.channel:
        port.say(record["origin_channel"], f"Incident {record['id']} on {record['manager']} was closed by "
                                           f"{ctx.inv.actor.name}: {args.summary or 'no summary'}")
    text = (f"Incident {record['id']} on {record['manager']} closed by {ctx.inv.actor.name}: "
            f"{args.summary or 'no summary'}.\nTimeline ({len(entries)} entries):\n" + "\n".join(lines)
            + f"\nMarkdown export: {path}")
    return Reply(text=text, title=f"Incident {record['id']} closed", tone=Tone.GOOD, public=True)


# --- `restore … --incident` ------------------------------------------------------------------------------

class IncidentSink:
    """Progress of an operation shown where it ran, and also in its incident's room (card kept current)."""

    def __init__(self, inner: Sink, ctx: Ctx, record: dict[str, Any]) -> None:
        self.inner, self.ctx, self.record = inner, ctx, record

    def emit(self, event: ProgressEvent) -> None:
        """Pass the event on, then repeat it in the room; a chat failure never stops the operation."""
        self.inner.emit(event)
        if event.kind not in ("started", "step", "finished"):
            return
        try:
            _port(self.ctx).say(self.record["room"], f"{event.op_id}: {event.text}", self.record.get("thread", ""))
            if event.kind == "finished":
                _refresh(self.ctx, self.record)
        except ChatError:
            pass


def restore_incident(ctx: Ctx) -> Sink:
    """For a restore run with `--incident`: open (once) its incident and return a sink that reports there."""
    if not ctx.args.get("incident"):
        return ctx.sink
    record = ctx.incidents.get(ctx.recall("incident_id") or "")
    if record is None:
        title = f"restore {ctx.args.snapshot_id} on {ctx.manager_name}"
        record, notes = open_incident(ctx, title, ctx.manager_name, kind="restore")
        record["operation_id"] = ctx.op.id if ctx.op else ""
        ctx.incidents.save(record)
        ctx.remember(incident_id=record["id"])
        if record["mode"] == "channel":
            op = ctx.op
            _invite(ctx, _port(ctx), record["room"], [op.confirmed_by, op.approved_by] if op else [])
        ctx.step(f"incident {record['id']} opened: {_port(ctx).link(record['room'], record.get('thread', ''))}"
                 + (f" ({notes})" if notes else ""))
    return IncidentSink(ctx.sink, ctx, record)
