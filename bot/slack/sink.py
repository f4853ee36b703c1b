"""Progress of one operation in Slack: its card edited in place, one thread reply per step."""

from __future__ import annotations

import logging

from bot.core import Operation, ProgressEvent
from bot.slack import render
from bot.slack.display import SlackDisplay
from bot.slack.outbox import Msg

log = logging.getLogger("cfy_bot.slack")
TRANSFER_EDIT_S = 5.0  # Slack's chat.update is rate limited per channel: one edit of a transfer's card per 5 s


class SlackSink:
    """Progress of operations into Slack: the parent card edited in place, one thread reply per step."""

    def __init__(self, front: SlackDisplay, channel: str, parent: Msg | None = None) -> None:
        self.front, self.channel, self.parent = front, channel, parent
        self.started = False
        self._last_transfer_edit = float("-inf")

    def emit(self, event: ProgressEvent) -> None:
        """Show one event; a Slack problem never reaches the operation."""
        try:
            self._emit(event)
        except Exception:  # noqa: BLE001 - progress display must not break the operation
            log.exception("progress of %s not shown in Slack", event.op_id)

    def _emit(self, event: ProgressEvent) -> None:
        if event.kind == "gate":
            self._followup(event)  # the operation's own card is drawn from the outcome
            return
        op = self.front.services.store.get_operation(event.op_id)
        if op is None:
            return  # a quick command's progress: its reply says it all
        if event.kind == "transfer":
            self._transfer(op, event)
            return
        self.started |= event.kind == "started"
        step = event.text if event.kind in ("started", "step") else ""
        parent = self.parent or self.front.card_of(op)
        if parent is None:
            parent = self.front.post_card(op, step=step)
        else:
            self.front.edit_card(parent, op, step=step)
        self.parent = parent
        if event.kind in ("started", "step"):
            self.front.outbox.post(parent.channel, render.step_text(event), thread=parent.root or parent)

    def _transfer(self, op: Operation, event: ProgressEvent) -> None:
        """A transfer's bytes, rate and time left: an edit of the card at most every TRANSFER_EDIT_S seconds."""
        parent = self.parent or self.front.card_of(op)
        at = event.at.timestamp() if event.at else 0.0
        if parent is None or at - self._last_transfer_edit < TRANSFER_EDIT_S:
            return
        self._last_transfer_edit = at
        self.front.edit_card(parent, op, step=event.text)

    def _followup(self, event: ProgressEvent) -> None:
        """A running operation opened another one that waits at a gate: its card goes into this thread."""
        other = event.data.get("operation")
        if not other or other == event.op_id:
            return
        op = self.front.services.store.get_operation(other)
        if op is not None and self.front.card_of(op) is None:
            own = self.front.services.store.get_operation(event.op_id)
            parent = self.parent or (self.front.card_of(own) if own is not None else None)
            self.front.post_card(op, thread=(parent.root or parent) if parent else None)
