"""Slack text and Block Kit for replies, progress and gate cards: pure functions, no Slack library, no I/O."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from bot.core import Action, Operation, ProgressEvent, Reply, Table, Tone
from bot.front.render import reply_text, table_text

SECTION_MAX = 3000  # a section's text (Slack's limit)
BLOCKS_BUDGET = 11_000  # all block text of one message: Slack refuses ~13 k (msg_blocks_too_long)
MAX_BLOCKS = 50
FALLBACK_MAX = 3000  # the notification text sent beside blocks
HEADER_MAX = 150
TONE_EMOJI = {Tone.INFO: ":information_source:", Tone.GOOD: ":white_check_mark:", Tone.WARNING: ":warning:",
              Tone.DANGER: ":x:"}
ACTIONS = ("confirm", "cancel", "approve", "reject")

_TOKEN = re.compile(r"<([^<>]*)>")
_SAFE_CHANNEL = re.compile(r"&lt;#([CG][A-Z0-9]{2,})&gt;")
_BROADCAST = re.compile(r"@(channel|here|everyone)\b", re.IGNORECASE)
_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2018": "'", "\u2019": "'",
                         "\u201a": "'", "\u00ab": '"', "\u00bb": '"'})
_ACTOR = re.compile(r"slack:([UW][A-Z0-9]+)")


# -- what Slack sends us -------------------------------------------------------------------------

def unescape_command(text: str) -> str:
    """Command text as the user typed it: Slack's `<…>` tokens unwrapped, `&amp; &lt; &gt;` and curly quotes undone."""
    text = _TOKEN.sub(_unwrap, text or "")
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return text.translate(_QUOTES).replace("\u00a0", " ").strip()


def _unwrap(m: re.Match[str]) -> str:
    """`<@U1|al>` → `U1`, `<#C1|ops>` → `C1`, `<https://x|x>` → `https://x`, `<!here>` → `@here`."""
    target, _, label = m.group(1).partition("|")
    if target[:1] in "@#":
        return target[1:]
    if target.startswith("!"):
        return "@" + (label or target[1:].split("^")[0])
    if target.startswith("mailto:"):
        return label or target[7:]
    return target


# -- what we send --------------------------------------------------------------------------------

def esc(text: Any) -> str:
    """Text from users or a manager made inert: no mentions of @channel/@here/@everyone, no forged links."""
    out = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    out = _BROADCAST.sub(lambda m: "@\u2060" + m.group(1), out)  # a word joiner keeps it from linking
    return _SAFE_CHANNEL.sub(r"<#\1>", out)  # the bot's own channel references stay clickable


def plain(text: Any) -> str:
    """Text for plain_text objects (headers, dialogs): shown as is, but never a special mention."""
    return _BROADCAST.sub(lambda m: "@\u2060" + m.group(1), str(text)).replace("<!", "<\u2060!")


def who(actor_id: str, name: str = "") -> str:
    """A person as Slack shows them: `<@U1>` for Slack ids, the escaped name otherwise."""
    m = _ACTOR.fullmatch(actor_id or "")
    return f"<@{m.group(1)}>" if m else esc(name or actor_id or "someone")


def when(iso: str, fallback_only: bool = False) -> str:
    """A stored ISO time as a Slack date token (each reader's own time zone), with a UTC fallback."""
    if not iso:
        return ""
    try:
        t = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return esc(iso)
    fallback = t.strftime("%Y-%m-%d %H:%M UTC")
    return fallback if fallback_only else f"<!date^{int(t.timestamp())}^{{date_short}} {{time}}|{fallback}>"


def cut(text: str, limit: int, note: str = "… (cut)") -> str:
    """`text` no longer than `limit`, with a note when something was cut."""
    return text if len(text) <= limit else text[: max(0, limit - len(note))] + note


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": cut(text, SECTION_MAX)}]}


def _header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": cut(plain(text), HEADER_MAX, "…"), "emoji": True}}


def text_sections(text: str, limit: int = SECTION_MAX) -> list[dict[str, Any]]:
    """Escaped text split on line ends into sections of at most `limit` characters."""
    chunks, current = [], ""
    for line in esc(text).split("\n"):
        while len(line) > limit:
            if current:
                chunks.append(current)
                current = ""
            chunks.append(line[:limit])
            line = line[limit:]
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            chunks.append(current)
            candidate = line
        current = candidate
    if current.strip():
        chunks.append(current)
    return [_section(c) for c in chunks if c.strip()]


def table_sections(table: Table, budget: int) -> list[dict[str, Any]]:
    """A table as code blocks of at most SECTION_MAX characters each; rows past `budget` are cut with a note."""
    clean = Table(table.columns, tuple(tuple(str(c).replace("```", "'''") for c in r) for r in table.rows))
    lines = esc(table_text(clean)).split("\n")
    head, rows = lines[:2], lines[2:]
    blocks, used, shown = [], 0, 0
    page: list[str] = []
    for row in rows:
        size = sum(len(x) + 1 for x in head + page) + len(row) + 8
        if size > SECTION_MAX and page:
            blocks.append(_section("```" + "\n".join(head + page) + "```"))
            used += size
            page = []
        if used + size > budget:
            break
        page.append(row)
        shown += 1
    if page:
        blocks.append(_section("```" + "\n".join(head + page) + "```"))
    hidden = len(table.rows) - shown
    notes = [f"{hidden} more rows not shown; narrow the list (e.g. `--search`, `-s N`, `-o N`)."] if hidden else []
    if table.note:
        notes.append(esc(table.note))
    if notes:
        blocks.append(_context(" ".join(notes)))
    return blocks


def reply_blocks(reply: Reply) -> tuple[str, list[dict[str, Any]]]:
    """A reply as (fallback text, blocks) inside Slack's limits."""
    blocks: list[dict[str, Any]] = []
    title = reply.title or ""
    if title:
        blocks.append(_header(f"{TONE_EMOJI.get(reply.tone, '')} {title}".strip()))
    if reply.text and reply.text != title:
        blocks += text_sections(reply.text)
    for i in range(0, len(reply.fields), 10):  # Slack: at most 10 fields per section
        blocks.append({"type": "section", "fields": [
            {"type": "mrkdwn", "text": cut(f"*{esc(k)}*\n{esc(v)}", 2000)} for k, v in reply.fields[i:i + 10]]})
    buttons = action_blocks(reply.actions)
    if reply.table is not None:
        used = sum(_size(b) for b in blocks + buttons)
        blocks += table_sections(reply.table, max(BLOCKS_BUDGET - used, 1000))
    return fallback(reply), _fit(blocks + buttons)


def action_blocks(actions: tuple[Action, ...]) -> list[dict[str, Any]]:
    """A reply's buttons: one actions block per row (at most 5 buttons each); the value is the command text."""
    blocks: list[dict[str, Any]] = []
    last_row = None
    for i, action in enumerate(actions[:40]):
        button: dict[str, Any] = {"type": "button", "action_id": f"cfy_run_{i}", "value": action.command[:2000],
                                  "text": {"type": "plain_text", "text": cut(plain(action.label), 75, "…")}}
        if action.style in ("primary", "danger"):
            button["style"] = action.style
        if blocks and action.row and action.row == last_row and len(blocks[-1]["elements"]) < 5:
            blocks[-1]["elements"].append(button)
        else:
            blocks.append({"type": "actions", "elements": [button]})
        last_row = action.row
    return blocks


def fallback(reply: Reply) -> str:
    """The escaped plain text beside the blocks (notifications, old clients)."""
    return cut(esc(reply_text(reply)), FALLBACK_MAX)


def _size(block: dict[str, Any]) -> int:
    return len(str(block))


def _fit(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """At most MAX_BLOCKS blocks within BLOCKS_BUDGET characters; the rest replaced by a note."""
    out: list[dict[str, Any]] = []
    used = 0
    for i, block in enumerate(blocks):
        size = _size(block)
        if len(out) == MAX_BLOCKS - 1 or used + size > BLOCKS_BUDGET:
            out.append(_context(f"… {len(blocks) - i} more parts not shown (Slack's message size limit)."))
            break
        out.append(block)
        used += size
    return out


def step_text(event: ProgressEvent) -> str:
    """One thread reply for a progress event."""
    mark = {"started": ":arrow_forward:", "step": ":small_blue_diamond:", "finished": ":checkered_flag:"}
    return cut(f"{mark.get(event.kind, ':small_blue_diamond:')} {esc(event.text)}", SECTION_MAX)


# -- the operation card (the parent message of an operation) -----------------------------------

STATE_LOOK = {
    "approved": (":hourglass_flowing_sand:", "starting"),
    "running": (":arrows_counterclockwise:", "running"),
    "succeeded": (":white_check_mark:", "succeeded"),
    "failed": (":x:", "failed"),
    "cancelled": (":no_entry_sign:", "cancelled"),
    "expired": (":hourglass:", "expired"),
}


def _button(action: str, label: str, op_id: str, style: str = "", confirm: dict[str, Any] | None = None
            ) -> dict[str, Any]:
    """A button whose value is only the operation id; the server decides everything else."""
    button: dict[str, Any] = {"type": "button", "action_id": f"cfy_{action}", "value": op_id,
                              "text": {"type": "plain_text", "text": label}}
    if style:
        button["style"] = style
    if confirm:
        button["confirm"] = confirm
    return button


def _dialog(title: str, text: str, yes: str) -> dict[str, Any]:
    return {"title": {"type": "plain_text", "text": cut(plain(title), 100, "…")},
            "text": {"type": "plain_text", "text": cut(plain(text), 300, "…")},
            "confirm": {"type": "plain_text", "text": cut(yes, 30, "…")},
            "deny": {"type": "plain_text", "text": "Go back"}, "style": "danger"}


def decisions(op: Operation) -> str:
    """Who asked, confirmed, approved or cancelled, and when."""
    parts = [f"requested by {who(op.requester, op.requester_name)}"
             f" {when(op.created_at)}".rstrip()]
    if op.confirmed_by:
        parts.append(f"confirmed by {who(op.confirmed_by)} {when(op.confirmed_at)}".rstrip())
    if op.approved_by:
        parts.append(f"approved by {who(op.approved_by)} {when(op.approved_at)}".rstrip())
    if op.state == "cancelled":
        by = f" by {who(op.decided_by)}" if op.decided_by else ""
        parts.append(f"cancelled{by} {when(op.finished_at or op.updated_at)}".rstrip())
    if op.state == "expired":
        parts.append(f"expired {when(op.finished_at or op.expires_at)}".rstrip())
    return " · ".join(parts) + f" · `{esc(op.id)}`"


def card(op: Operation, gate_text: str = "", step: str = "") -> tuple[str, list[dict[str, Any]]]:
    """The operation's parent message for its current state: gate buttons, progress, or the outcome."""
    what = f"{op.kind or '?'} on {op.manager or 'the bot'}"
    state, gate, op_id = str(op.state), op.gate or "", op.id
    blocks: list[dict[str, Any]] = []
    if state == "pending" and gate == "approve":
        head = f"Approval needed: {what}"
        blocks += [_header(f":raised_hand: {head}"), *text_sections(gate_text or what)[:3],
                   _section("A second admin (not the requester) must approve.")]
        buttons = [_button("approve", "Approve", op_id, "danger",
                           _dialog("Approve?", f"Approve {what}? It starts at once.", "Approve")),
                   _button("reject", "Reject", op_id)]
    elif state == "pending":
        head = f"Confirm: {what}"
        requester = who(op.requester, op.requester_name)
        blocks += [_header(f":warning: {head}"), *text_sections(gate_text or what)[:3],
                   _section(f"Only {requester}, who requested it, can confirm; an admin can cancel it.")]
        buttons = [_button("confirm", "Confirm", op_id, "danger",
                           _dialog("Are you sure?", gate_text or what, "Yes, go ahead")),
                   _button("cancel", "Cancel", op_id)]
    else:
        emoji, label = STATE_LOOK.get(state, (":grey_question:", state or "unknown"))
        head = f"{what}: {label}"
        blocks.append(_header(f"{emoji} {head}"))
        blocks += _state_body(op, state, step)
        running = state in ("approved", "running") and not op.point_of_no_return
        buttons = [_button("cancel", "Cancel", op_id)] if running and not op.cancel_requested else []
    blocks.append(_context(decisions(op)))
    if buttons:
        blocks.append({"type": "actions", "block_id": f"op:{op_id}", "elements": buttons})
    return cut(esc(head), FALLBACK_MAX), _fit(blocks)


def _state_body(op: Operation, state: str, step: str) -> list[dict[str, Any]]:
    if state in ("approved", "running"):
        now = step or op.step or "starting"
        extra = "\nCancel requested; it stops before its next step." if op.cancel_requested else ""
        return [_section(cut(f"*Current step:* {esc(now)}{extra}", SECTION_MAX))]
    if state == "expired":
        return [_section("Nobody answered in time, so nothing was changed. Run the command again if it is "
                         "still needed.")]
    if state == "cancelled":
        return [_section("Cancelled; nothing more will be done.")]
    result = str(op.result.get("text", ""))
    body = op.error if state == "failed" and op.error else result
    return text_sections(cut(body, 2 * SECTION_MAX))[:2] if body else []


def is_final(op: Operation) -> bool:
    """True when the operation can change no more."""
    return op.final
