"""The chat port of incidents (bot/recovery/chatport.py) on Slack: rooms, invitations, pins and posts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.core import Reply
from bot.slack import render
from bot.slack.client import error_text
from bot.slack.outbox import Outbox


class SlackChat:
    """Incident rooms on the Web API: conversations.create/invite (channels:manage), pins.add (pins:write)."""

    name = "slack"
    SCOPES = {"conversations.create": "channels:manage", "conversations.invite": "channels:manage",
              "pins.add": "pins:write"}

    def __init__(self, client: WebClient, outbox: Outbox) -> None:
        self.client, self.outbox = client, outbox

    def _call(self, method: str, call: Callable[[], Any], name: str = "") -> Any:
        from bot.recovery.chatport import ChatError, MissingScope, NameTaken

        try:
            return call()
        except SlackApiError as exc:
            error = str(exc.response.get("error") or "")
            if error == "missing_scope":
                raise MissingScope(str(exc.response.get("needed") or self.SCOPES.get(method, "?")), method) from None
            if error == "name_taken":
                raise NameTaken(f"a channel named {name} exists") from None
            raise ChatError(f"Slack refused {method}: {error_text(exc)}") from None
        except OSError as exc:
            raise ChatError(f"Slack could not be reached for {method}: {error_text(exc)}") from None

    def create_channel(self, name: str) -> str:
        """A new public channel; the bot is its first member."""
        created = self._call("conversations.create",
                             lambda: self.client.conversations_create(name=name, is_private=False), name)
        return str(created["channel"]["id"])

    def invite(self, channel: str, user: str) -> None:
        """Invite a Slack user (`slack:U…`); being there already is fine."""
        from bot.recovery.chatport import ChatError

        if not user.startswith("slack:"):
            return
        try:
            self._call("conversations.invite",
                       lambda: self.client.conversations_invite(channel=channel, users=user.split(":", 1)[1]))
        except ChatError as exc:
            if not any(e in str(exc) for e in ("already_in_channel", "cant_invite_self")):
                raise

    def pin(self, channel: str, ts: str) -> None:
        """Pin a message."""
        self._call("pins.add", lambda: self.client.pins_add(channel=channel, timestamp=ts))

    def post(self, channel: str, reply: Reply, thread: str = "") -> str:
        """Post through the outbox and wait for its ts ('' if Slack refused it)."""
        text, blocks = render.reply_blocks(reply)
        msg = self.outbox.post(channel, text, blocks, thread=self.outbox.message(channel, thread) if thread else None)
        msg.done.wait(30)
        return msg.ts or ""

    def update(self, channel: str, ts: str, reply: Reply) -> None:
        """Redraw a message (coalesced with other edits of it)."""
        text, blocks = render.reply_blocks(reply)
        self.outbox.edit(self.outbox.message(channel, ts), text, blocks)

    def say(self, channel: str, text: str, thread: str = "") -> None:
        """Queue a plain message."""
        self.outbox.post(channel, render.cut(render.esc(text), 39_000),
                         thread=self.outbox.message(channel, thread) if thread else None)

    def link(self, channel: str, ts: str = "") -> str:
        """A channel mention (a thread is named by its channel)."""
        return f"<#{channel}>"
