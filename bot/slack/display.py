"""What the front end shows in Slack: operation cards, results in their threads, private replies."""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk import WebClient
from slack_sdk.webhook import WebhookClient

from bot.core import Operation, Reply, Tone
from bot.errors import BotError
from bot.slack import render
from bot.slack.client import error_text, retry_handlers
from bot.slack.outbox import Msg, Outbox

log = logging.getLogger("cfy_bot.slack")
ALL_STATES = ("pending", "approved", "running", "succeeded", "failed", "cancelled", "expired")


class SlackDisplay:
    """Operation cards and replies in Slack, through the outbox; the part of SlackFront that only shows things."""

    def __init__(self, services: Any, dispatcher: Any, client: WebClient, outbox: Outbox) -> None:
        self.services, self.dispatcher, self.client, self.outbox = services, dispatcher, client, outbox

    # the operation card
    def card_of(self, op: Operation) -> Msg | None:
        """The operation's parent message, when it was posted and stored."""
        if op.slack_channel and op.slack_ts:
            return self.outbox.message(op.slack_channel, op.slack_ts)
        return None

    def post_card(self, op: Operation, step: str = "", fallback_url: str = "", thread: Msg | None = None
                  ) -> Msg:
        """Post the operation's parent message (or a card in `thread`); its ts is stored with the operation."""
        text, blocks = render.card(op, self._gate_text(op), step)

        def posted(msg: Msg) -> None:
            if msg.ts:
                self._remember(op.id, msg)
            elif fallback_url:  # the bot may not post here (a DM, a private channel): show it privately
                self.respond_raw(fallback_url, text, blocks)

        thread = thread or self._incident_thread(op.channel)
        return self.outbox.post(thread.channel if thread else op.channel, text, blocks, thread=thread,
                                on_done=posted)

    def _incident_thread(self, channel: str) -> Msg | None:
        """The thread of the incident open in `channel` when it runs in a thread (no channels:manage)."""
        from bot.recovery import incidents as incident
        found = incident.open_in(self.services.store, channel)
        if found and found.get("mode") == "thread" and found.get("thread"):
            return self.outbox.message(channel, found["thread"])
        return None

    def edit_card(self, msg: Msg, op: Operation, step: str = "") -> None:
        """Redraw the operation's parent message for its current state."""
        text, blocks = render.card(op, self._gate_text(op), step)
        self.outbox.edit(msg, text, blocks, final=render.is_final(op))

    def _gate_text(self, op: Operation) -> str:
        if op.state != "pending":
            return ""
        try:
            return str(self.dispatcher.operations.gate_text(op))
        except (BotError, KeyError, ValueError, IndexError):
            return ""

    def _remember(self, op_id: str, msg: Msg) -> None:
        """Store where the parent message is, so a restart edits the same message."""
        store = self.services.store
        try:
            if hasattr(store, "annotate_operation"):
                store.annotate_operation(op_id, slack_channel=msg.channel, slack_ts=msg.ts)
            else:
                store.update_operation(op_id, ALL_STATES, slack_channel=msg.channel, slack_ts=msg.ts)
        except BotError as exc:
            log.warning("could not store the Slack message of %s: %s", op_id, exc)

    # replies: new messages, private answers, results in a thread
    def announce(self, channel: str, reply: Reply) -> Msg:
        """Post a reply as a new message in `channel` (throttled like everything else)."""
        text, blocks = render.reply_blocks(reply)
        return self.outbox.post(channel, text, blocks)

    def answer(self, request: dict[str, Any], reply: Reply) -> None:
        """Answer whoever made `request`: privately through its response URL, or, for a mention (no response
        URL), in the mention's thread."""
        url, thread = str(request.get("response_url") or ""), str(request.get("thread_ts") or "")
        if url or not thread:
            self.respond(url, reply)
            return
        text, blocks = render.reply_blocks(reply)
        channel = str(request.get("channel_id", ""))
        self.outbox.post(channel, text, blocks, thread=self.outbox.message(channel, thread))

    def respond(self, url: str, reply: Reply) -> None:
        """Answer through a response URL: ephemeral unless the reply is public."""
        text, blocks = render.reply_blocks(reply)
        self.respond_raw(url, text, blocks, response_type="in_channel" if reply.public else "ephemeral")

    def respond_raw(self, url: str, text: str, blocks: list[dict[str, Any]], **extra: Any) -> None:
        """POST a message to a response URL; failures are logged."""
        if not url:
            log.info("no response_url to answer on")
            return
        message = {"text": text, "blocks": blocks, "response_type": "ephemeral", "replace_original": False,
                   **extra}
        try:
            resp = WebhookClient(url, retry_handlers=retry_handlers()).send_dict(message)
            if resp.status_code != 200:
                log.warning("response_url answered %s: %s", resp.status_code, render.cut(resp.body or "", 200))
        except Exception as exc:  # noqa: BLE001 - a lost private reply is logged, never raised
            log.warning("response_url failed: %s", error_text(exc))

    def _broadcast(self, reply: Reply, parent: Msg, url: str) -> None:
        """The final result in the thread and in the channel; privately to the requester if that fails."""
        text, blocks = render.reply_blocks(reply)
        self.outbox.post(parent.channel, text, blocks, thread=parent.root or parent, broadcast=True,
                         on_done=lambda m: None if m.ts else self.respond(url, reply))


def expire_cards(services: Any, client: WebClient, outbox: Outbox | None = None, operations: Any = None) -> int:
    """Expire gates whose time is up and edit their cards to say so; returns how many expired. An expiry that
    leaves a manager in maintenance mode (also one another part of this process noticed, through `operations`)
    is alerted in the operation's thread and in BOT_ALERT_CHANNEL."""
    from bot.engine.operations import Operations

    operations = operations or Operations(services)
    expired = operations.expire_due()
    if outbox is not None:
        for op, text in operations.take_alerts():
            _alert(services, outbox, op, text)
    for op in expired:
        if not (op.slack_channel and op.slack_ts):
            continue
        text, blocks = render.card(op)
        if outbox is not None:
            outbox.edit(outbox.message(op.slack_channel, op.slack_ts), text, blocks, final=True)
            continue
        try:
            client.chat_update(channel=op.slack_channel, ts=op.slack_ts, text=text, blocks=blocks)
        except Exception as exc:  # noqa: BLE001 - logged; the operation is expired either way
            log.warning("could not mark the card of %s expired: %s", op.id, error_text(exc))
    return len(expired)


def _alert(services: Any, outbox: Outbox, op: Operation, text: str) -> None:
    """An expired gate's alert: in the operation's thread (where its card is) and in the alert channel."""
    reply = Reply(text=text, title=f"{op.manager} is left in maintenance mode", tone=Tone.DANGER, public=True)
    body, blocks = render.reply_blocks(reply)
    card = _thread_of(services, outbox, op)
    if card is not None:
        outbox.post(card.channel, body, blocks, thread=card)
    channel = services.settings.alert_channel
    if channel and (card is None or channel != card.channel):
        outbox.post(channel, body, blocks)


def _thread_of(services: Any, outbox: Outbox, op: Operation) -> Msg | None:
    """The thread `op`'s card is in: the restore's that opened it as a follow-up (its journal names it), else the
    card's own."""
    opened_by: list[Operation] = [
        o for o in services.store.list_operations(kinds=("restore",), manager=op.manager, limit=20)
        if o.journal.get("deactivate_op") == op.id]
    for parent in opened_by + [op]:
        if parent.slack_channel and parent.slack_ts:
            return outbox.message(parent.slack_channel, parent.slack_ts)
    return None
