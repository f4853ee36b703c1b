"""Plain-text rendering of replies and progress for the terminal (and as Slack's fallback text)."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.core import Action, ProgressEvent, Reply, Table, age, parse_time, size

__all__ = ["TONE_MARK", "actions_text", "age", "parse_time", "progress_line", "reply_text", "size", "table_text"]

TONE_MARK = {"info": "", "good": "OK ", "warning": "WARNING ", "danger": "ALERT "}


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


def reply_text(reply: Reply) -> str:
    """The whole reply as plain text."""
    parts = []
    head = f"{TONE_MARK.get(reply.tone, '')}{reply.title}".strip()
    if head:
        parts.append(head)
    if reply.text and reply.text != reply.title:
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


def progress_line(event: ProgressEvent) -> str:
    """One progress event as a terminal line, with the time it happened."""
    at = event.at or datetime.now(UTC)
    mark = {"started": "▶", "step": "·", "gate": "?", "finished": "■"}.get(event.kind, "·")
    tone = TONE_MARK.get(event.tone, "")
    return f"{at.strftime('%H:%M:%S')} {mark} [{event.op_id}] {tone}{event.text}"
