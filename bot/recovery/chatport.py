"""What incidents need from the chat side, as a small protocol, and the terminal's implementation of it.

A front end that has channels (bot/slack/chat.py) registers its port in `Services.chat[transport]`; every other
transport gets `TerminalChat`, which has no channels, so an incident runs where it was started (the terminal).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from bot.core import Reply
from bot.errors import ChatError, MissingScope, NameTaken, NoChannels

__all__ = ["ChatError", "ChatPort", "MissingScope", "NameTaken", "NoChannels", "TerminalChat", "port_for"]


class ChatPort(Protocol):
    """Channels, invitations, pins and messages; ids and timestamps are the chat's own strings."""

    name: str

    def create_channel(self, name: str) -> str:
        """Create a channel, return its id; MissingScope, NameTaken, NoChannels or ChatError."""

    def invite(self, channel: str, user: str) -> None:
        """Invite a user (an actor id such as `slack:U123`) into the channel; already being there is fine."""

    def pin(self, channel: str, ts: str) -> None:
        """Pin a message; MissingScope when not allowed."""

    def post(self, channel: str, reply: Reply, thread: str = "") -> str:
        """Post a reply (in `thread` when given) and return its ts ('' when it could not be posted)."""

    def update(self, channel: str, ts: str, reply: Reply) -> None:
        """Redraw a posted message."""

    def say(self, channel: str, text: str, thread: str = "") -> None:
        """Post plain or preformatted text without waiting for it."""

    def link(self, channel: str, ts: str = "") -> str:
        """How to point people at the channel (or the thread of `ts`) in a message."""


class TerminalChat:
    """The terminal as chat: no channels, so an incident runs in the terminal itself and its replies say it all."""

    name = "terminal"

    def __init__(self) -> None:
        self.posted: list[tuple[str, str, str]] = []  # (channel, thread, text), for tests and the demo

    def create_channel(self, name: str) -> str:
        """There are no channels here."""
        raise NoChannels("the terminal has no channels")

    def invite(self, channel: str, user: str) -> None:
        """Nobody to invite."""

    def pin(self, channel: str, ts: str) -> None:
        """Nothing to pin: the card is in the reply."""

    def post(self, channel: str, reply: Reply, thread: str = "") -> str:
        """Kept, not printed: the command's own reply shows it."""
        self.posted.append((channel, thread, reply.text))
        return f"terminal-{len(self.posted)}"

    def update(self, channel: str, ts: str, reply: Reply) -> None:
        """Nothing to redraw."""

    def say(self, channel: str, text: str, thread: str = "") -> None:
        """Kept, not printed (the terminal already shows the operation's own progress)."""
        self.posted.append((channel, thread, text))

    def link(self, channel: str, ts: str = "") -> str:
        """The terminal is the room."""
        return "this terminal"


def port_for(ports: Mapping[str, ChatPort], transport: str) -> ChatPort:
    """The chat port of a transport: the one its front end registered, else the terminal's."""
    port = ports.get(transport)
    return port if port is not None else TerminalChat()
