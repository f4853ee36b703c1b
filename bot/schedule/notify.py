"""Where the scheduler's messages go: the daily summary (`post`) and alerts (`alert`), by channel.

A front end gives the scheduler one `Notifier`. The Slack one posts to the channel ids of
`BOT_SUMMARY_CHANNEL` / `BOT_ALERT_CHANNEL`; `LogNotifier` writes to the log and, when given a stream,
prints to the terminal; `MemoryNotifier` keeps what it was given (tests, the demo). A notifier must not
raise: a message that cannot be delivered is logged, and the backups go on.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Protocol, TextIO

from bot.core import Reply
from bot.front.render import reply_text

log = logging.getLogger("cfy_bot.notify")


class Notifier(Protocol):
    """Delivers the scheduler's messages; `channel` is "" when none is configured."""

    def post(self, channel: str, reply: Reply) -> None:
        """Post a message (the daily summary) to `channel`."""

    def alert(self, channel: str, reply: Reply) -> None:
        """Post an alert (a failed, skipped or missed run) to `channel`, so that people notice at once."""


class LogNotifier:
    """Messages as log records (INFO for posts, ERROR for alerts), and printed when `out` is given."""

    def __init__(self, out: TextIO | None = None, logger: logging.Logger | None = None) -> None:
        self.out = out
        self.log = logger or log
        self._lock = threading.Lock()

    def post(self, channel: str, reply: Reply) -> None:
        """Log (and print) the message."""
        self._emit(logging.INFO, "post", channel, reply)

    def alert(self, channel: str, reply: Reply) -> None:
        """Log (and print) the alert."""
        self._emit(logging.ERROR, "ALERT", channel, reply)

    def _emit(self, level: int, kind: str, channel: str, reply: Reply) -> None:
        text = reply_text(reply)
        where = channel or "(no channel configured)"
        self.log.log(level, "%s to %s: %s", kind, where, text)
        if self.out is not None:
            with self._lock:
                print(f"[{kind} → {where}]\n{text}", file=self.out, flush=True)


@dataclass
class Message:
    """One delivered message."""

    kind: str  # post | alert
    channel: str
    reply: Reply


@dataclass
class MemoryNotifier:
    """Keeps every message in `messages` (thread-safe)."""

    messages: list[Message] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def post(self, channel: str, reply: Reply) -> None:
        """Keep the message."""
        with self._lock:
            self.messages.append(Message("post", channel, reply))

    def alert(self, channel: str, reply: Reply) -> None:
        """Keep the alert."""
        with self._lock:
            self.messages.append(Message("alert", channel, reply))

    def of(self, kind: str) -> list[Message]:
        """The messages of one kind, oldest first."""
        with self._lock:
            return [m for m in self.messages if m.kind == kind]
