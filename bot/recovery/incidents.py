"""Incidents: names, records (store marks), the room an incident runs in, and its timeline from the audit log.

An incident runs in a room: its own channel (`inc-YYYYMMDD-<slug>`), or, when the chat app may not create
channels, a thread of the channel it was started from, or the terminal. `incident:<id>` holds the record;
`incident-room:<channel>` points at the open incident of a channel. The timeline is read from the audit log
(who did what, when), never kept twice.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # only the port's annotation: the records are read and written through the catalog's marks
    from bot.engine.context import Catalog

MAX_NAME = 80  # Slack's limit for a channel name
SKIPPED_EVENTS = {"manager_call", "gate_shown", "usage_error", "schedule"}
# Commands that write their own timeline event: their `invoke` row would say the same thing twice.
SELF_DESCRIBED = {"incident start", "incident note", "incident close", "incident status", "runbook",
                  "runbook done", "runbook skip", "runbook show", "runbook do"}


def slug(title: str, limit: int = 60) -> str:
    """Lower-case words joined by hyphens, only `a-z 0-9 - _` (what Slack accepts in a channel name)."""
    text = re.sub(r"[^a-z0-9_]+", "-", title.lower()).strip("-_")
    text = re.sub(r"-{2,}", "-", text)[:limit].rstrip("-_")
    return text or "incident"


def channel_name(title: str, day: datetime, attempt: int = 1) -> str:
    """`inc-20261129-db-nodes-down`, with `-2`, `-3`… on later attempts; never longer than Slack allows."""
    suffix = "" if attempt == 1 else f"-{attempt}"
    head = f"inc-{day:%Y%m%d}-"
    return head + slug(title, MAX_NAME - len(head) - len(suffix)) + suffix


def stamp(when: datetime) -> str:
    """A time as the audit log writes it (UTC, microseconds, `Z`), so the two compare as strings."""
    return when.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def save(store: Any, incident: dict[str, Any], *, new: bool = False) -> bool:
    """Write the record; with `new`, only if no incident has that id (False then)."""
    key, value = f"incident:{incident['id']}", json.dumps(incident)
    if new:
        return bool(store.claim_mark(key, value))
    store.set_mark(key, value)
    return True


def get(store: Any, incident_id: str) -> dict[str, Any] | None:
    """An incident by id, or None."""
    raw = store.get_mark(f"incident:{incident_id}")
    return json.loads(raw) if raw else None


def set_room(store: Any, channel: str, incident_id: str) -> None:
    """Make `incident_id` the open incident of `channel` ('' clears it)."""
    store.set_mark(f"incident-room:{channel}", incident_id)


def open_in(store: Any, channel: str) -> dict[str, Any] | None:
    """The open incident whose room is `channel`, or None."""
    found = get(store, store.get_mark(f"incident-room:{channel}") or "") if channel else None
    return found if found and found.get("state") == "open" else None


# --- the timeline -------------------------------------------------------------------------------------------

def timeline(rows: Iterable[dict[str, Any]], incident: dict[str, Any]) -> list[dict[str, str]]:
    """Audit rows about the incident (its room, its own events, its operations), as (at, who, what) entries."""
    rooms = {incident.get("room"), incident.get("origin_channel") if incident.get("mode") == "thread" else None}
    rooms.discard(None)
    ops = {incident.get("operation_id")} - {None, ""}
    out = []
    for row in rows:
        detail = row.get("detail") or {}
        ours = detail.get("incident") == incident["id"] or row.get("channel") in rooms \
            or row.get("operation_id") in ops
        if not ours or row["event"] in SKIPPED_EVENTS or (
                row["event"] == "invoke" and row.get("command") in SELF_DESCRIBED):
            continue
        if row.get("operation_id"):
            ops.add(row["operation_id"])
        what = describe(row)
        if what:
            out.append({"at": row["at"], "who": who(row.get("actor", "")), "what": what})
        if incident.get("closed_at") and row["at"] > incident["closed_at"]:
            break
    return out


def who(actor: str) -> str:
    """An actor id without its namespace (`U123`, `alice`, `scheduler`)."""
    return actor.split(":", 1)[-1] if actor else "?"


def describe(row: dict[str, Any]) -> str:
    """One audit row as a short sentence."""
    d, event, op = row.get("detail") or {}, row["event"], row.get("operation_id") or ""
    on = f" on {row['manager']}" if row.get("manager") else ""
    texts = {
        "invoke": f"ran `{d.get('text', row.get('command', ''))}`" if d.get("text") else "",
        "denied": f"was refused `{row.get('command', '')}`: {d.get('reason', '')}",
        "gate_answered": f"answered {d.get('decision', '?')} on {op}",
        "approved": f"approved {op}",
        "step": f"{op}: {d.get('text', '')}",
        "incident_start": f"opened the incident ({d.get('mode', '')}): {d.get('title', '')}",
        "incident_note": f"noted: {d.get('text', '')}",
        "incident_close": f"closed the incident: {d.get('summary') or 'no summary'}",
        "runbook_start": f"started runbook {d.get('scenario', '')} ({d.get('run', '')})",
        "runbook_step": f"runbook {d.get('run', '')} step {d.get('step', '')} {d.get('state', '')}"
                        + (f": {d.get('note') or d.get('command') or ''}" if d.get("note") or d.get("command")
                           else ""),
    }
    if event == "outcome":
        state = d.get("state") or ("succeeded" if d.get("ok") else "failed")
        err = f": {d['error']}" if d.get("error") else ""
        return f"{row.get('command', '')}{' ' + op if op else ''}{on} ended {state}{err}"
    return texts.get(event, f"{event} {row.get('command', '')}".strip())


def markdown(incident: dict[str, Any], entries: list[dict[str, str]]) -> str:
    """The incident and its timeline as a Markdown document."""
    lines = [f"# Incident {incident['id']}: {incident['title']}", "",
             f"- Manager: {incident['manager']}",
             f"- Opened: {_t(incident['started_at'])} by {incident['started_by_name']}",
             f"- Room: {incident.get('room_label') or incident.get('room')}"]
    if incident.get("closed_at"):
        lines.append(f"- Closed: {_t(incident['closed_at'])} by {incident.get('closed_by_name', '?')}")
        lines.append(f"- Summary: {incident.get('summary') or '(none)'}")
    lines += ["", "## Timeline", "", "| time (UTC) | who | what |", "|---|---|---|"]
    lines += [f"| {_t(e['at'])} | {_cell(e['who'])} | {_cell(e['what'])} |" for e in entries]
    return "\n".join(lines) + "\n"


def _t(iso: str) -> str:
    return f"{iso[:10]} {iso[11:19]}" if len(iso) >= 19 else iso


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def write_export(data_dir: str, incident: dict[str, Any], text: str) -> str:
    """Save the Markdown export under `<data_dir>/incidents/`; returns its path."""
    folder = os.path.join(data_dir, "incidents")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{incident['id']}.md")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    return path


class IncidentRecords:
    """The `Incidents` port of bot.engine.context: the records in the catalog's marks, timeline and export."""

    def __init__(self, catalog: Catalog, data_dir: str) -> None:
        self.catalog, self.data_dir = catalog, data_dir

    def stamp(self, when: datetime) -> str:
        """A time as the audit log writes it, so the two compare as strings."""
        return stamp(when)

    def channel_name(self, title: str, day: datetime, attempt: int = 1) -> str:
        """`inc-20261129-db-nodes-down`, with `-2`, `-3`… on later attempts."""
        return channel_name(title, day, attempt)

    def who(self, actor: str) -> str:
        """An actor id without its namespace."""
        return who(actor)

    def get(self, incident_id: str) -> dict[str, Any] | None:
        """An incident by id, or None."""
        return get(self.catalog, incident_id)

    def save(self, incident: dict[str, Any], *, new: bool = False) -> bool:
        """Write the record; with `new`, only if no incident has that id (False then)."""
        return save(self.catalog, incident, new=new)

    def set_room(self, channel: str, incident_id: str) -> None:
        """Make `incident_id` the open incident of `channel` ('' clears it)."""
        set_room(self.catalog, channel, incident_id)

    def open_in(self, channel: str) -> dict[str, Any] | None:
        """The open incident whose room is `channel`, or None."""
        return open_in(self.catalog, channel)

    def timeline(self, rows: Iterable[dict[str, Any]], incident: dict[str, Any]) -> list[dict[str, str]]:
        """Audit rows about the incident, as (at, who, what) entries."""
        return timeline(rows, incident)

    def markdown(self, incident: dict[str, Any], entries: list[dict[str, str]]) -> str:
        """The incident and its timeline as a Markdown document."""
        return markdown(incident, entries)

    def write_export(self, incident: dict[str, Any], text: str) -> str:
        """Save the Markdown export under `<BOT_DATA_DIR>/incidents/`; returns its path."""
        return write_export(self.data_dir, incident, text)
