"""Plain-text rendering of replies and progress for the terminal (and as Slack's fallback text)."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from bot.core import Action, ProgressEvent, Reply, Table, Tone, age, parse_time, size, transfer_text

__all__ = ["TONE_MARK", "actions_text", "age", "event_json", "parse_time", "progress_line", "reply_json", "reply_text",
           "size", "table_text", "tone_head", "transfer_text", "use_color"]

TONE_MARK = {Tone.INFO: "", Tone.GOOD: "OK ", Tone.WARNING: "WARNING ", Tone.DANGER: "ALERT "}
# On a terminal (not piped, NO_COLOR unset): a symbol and an ANSI colour per tone, the words kept.
TONE_COLOR = {Tone.GOOD: ("\x1b[32m", "✔ "), Tone.WARNING: ("\x1b[33m", "⚠ "), Tone.DANGER: ("\x1b[31m", "✖ ")}
RESET = "\x1b[0m"


# What stored or manager text must not bring to a terminal: escape sequences (CSI, OSC such as a hyperlink or
# window title, other ESC pairs), the remaining C0/C1 control characters but newline and tab, and the bidi
# overrides that reorder what is shown.
_ESCAPES = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_]?)|\x9b[0-?]*[ -/]*[@-~]")
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def terminal_safe(text: str) -> str:
    """`text` without escape sequences and control characters (newline and tab kept), for printing."""
    if text.isprintable():
        return text
    return _CONTROLS.sub("", _ESCAPES.sub("", text))


def _safe_reply(reply: Reply) -> Reply:
    """Every text of a reply made terminal-safe (before the renderer adds colours of its own)."""
    table = reply.table
    if table is not None:
        table = replace(table, columns=tuple(terminal_safe(str(c)) for c in table.columns),
                        rows=tuple(tuple(terminal_safe(str(c)) for c in row) for row in table.rows),
                        note=terminal_safe(table.note) if table.note else table.note)
    return replace(reply, text=terminal_safe(reply.text), title=terminal_safe(reply.title), table=table,
                   fields=tuple((terminal_safe(str(k)), terminal_safe(str(v))) for k, v in reply.fields),
                   actions=tuple(replace(a, label=terminal_safe(a.label), command=terminal_safe(a.command))
                                 for a in reply.actions))


def use_color(stream: Any, environ: dict[str, str]) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org) or TERM is dumb."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and not environ.get("NO_COLOR") and environ.get("TERM") != "dumb"


def tone_head(tone: Tone, text: str, color: bool = False) -> str:
    """`OK title` plain, or `✔ OK title` in the tone's colour on a terminal."""
    mark = TONE_MARK.get(tone, "")
    if not color or tone not in TONE_COLOR or not mark:
        return f"{mark}{text}"
    ansi, symbol = TONE_COLOR[tone]
    return f"{ansi}{symbol}{mark.strip()}{RESET} {text}"


def table_text(table: Table, max_rows: int | None = None) -> str:
    """Columns aligned with two spaces; rows past `max_rows` are cut with a note."""
    rows = list(table.rows)
    cut = 0
    if max_rows is not None and len(rows) > max_rows:
        cut, rows = len(rows) - max_rows, rows[:max_rows]
    cells = [list(table.columns)] + [[str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(table.columns))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    if cut:
        lines.append(f"... {cut} more rows not shown")
    if table.note:
        lines.append(table.note)
    return "\n".join(lines)


# Slack's *bold* around a word or phrase (not a lone `*`, as in a cron expression `0 2 * * *`)
_BOLD = re.compile(r"(?<![\w*])\*(?=[^\s*])([^*\n]*?[^\s*])\*(?![\w*])")


def plain(text: str) -> str:
    """Text written for Slack as a terminal shows it: `*production*` is `production`."""
    return _BOLD.sub(r"\1", text)


def reply_text(reply: Reply, color: bool = False, shown: str = "") -> str:
    """The whole reply as text; `shown` is a line the terminal already printed (not repeated)."""
    reply = _safe_reply(reply)
    reply = replace(reply, text=plain(reply.text), title=plain(reply.title))
    parts = []
    if reply.title and reply.text.startswith(reply.title) and reply.text not in shown:
        parts.append(tone_head(reply.tone, reply.text, color))  # the text says the title again: say it once
    else:
        restated = bool(shown) and reply.text in shown and reply.title.lower() in shown.lower()
        if reply.title and reply.title not in shown and not restated:  # a title the streamed line already says
            parts.append(tone_head(reply.tone, reply.title, color).strip())
        if reply.text and reply.text != reply.title and reply.text not in shown:
            parts.append(reply.text)
    if reply.fields:
        width = max(len(k) for k, _ in reply.fields)
        parts.append("\n".join(f"{k.ljust(width)}  {v}" for k, v in reply.fields))
    if reply.table is not None:
        parts.append(table_text(reply.table))
    if reply.actions:
        parts.append(actions_text(reply.actions))
    return "\n".join(parts)


def actions_text(actions: tuple[Action, ...]) -> str:
    """A reply's buttons as the lines to type, one line per row: `→ Done 1: runbook done rb-1 1`."""
    rows: list[list[Action]] = []
    for action in actions:
        if rows and action.row and rows[-1][0].row == action.row:
            rows[-1].append(action)
        else:
            rows.append([action])
    return "\n".join("→ " + "   ".join(f"{a.label}: {a.command}" for a in row) for row in rows)


def progress_line(event: ProgressEvent, color: bool = False) -> str:
    """One progress event as a terminal line, with the time it happened."""
    at = event.at or datetime.now(UTC)
    mark = {"started": "▶", "step": "·", "gate": "?", "finished": "■", "transfer": "↓"}.get(event.kind, "·")
    text = terminal_safe(event.text)
    return f"{at.strftime('%H:%M:%S')} {mark} [{event.op_id}] {tone_head(event.tone, text, color)}"


def reply_json(reply: Reply, exit_code: int, operation_id: str = "", gate: str = "") -> dict[str, Any]:
    """A reply as one JSON-ready object for `cfy-bot run --json` (scripts read this, not the text)."""
    table = None
    if reply.table is not None:
        table = {"columns": list(reply.table.columns),
                 "rows": [dict(zip(reply.table.columns, row, strict=False)) for row in reply.table.rows],
                 "note": reply.table.note}
    return {"type": "reply", "title": reply.title, "tone": reply.tone, "ok": reply.ok, "text": reply.text,
            "fields": {k: v for k, v in reply.fields}, "table": table, "operation_id": operation_id or None,
            "waiting_for": gate or None, "exit_status": exit_code}


def event_json(event: ProgressEvent) -> dict[str, Any]:
    """A progress event as one JSON-ready object (`type: progress`)."""
    at = event.at.isoformat().replace("+00:00", "Z") if event.at else None
    data = {k: v for k, v in event.data.items() if isinstance(v, str | int | float | bool) or v is None}
    return {"type": "progress", "operation_id": event.op_id, "kind": event.kind, "text": event.text,
            "tone": event.tone, "at": at, "data": data}
