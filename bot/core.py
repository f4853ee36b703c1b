"""The data that flows through the bot: frozen dataclasses shared by every front end."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

TONES = ("info", "good", "warning", "danger")


@dataclass(frozen=True)
class Actor:
    """Who asked: ids are namespaced (`slack:U123`, `shell:alice`, `system:scheduler`)."""

    id: str
    name: str
    source: str  # slack | shell | system

    @property
    def local_id(self) -> str:
        """The id without its namespace (`U123` for `slack:U123`)."""
        return self.id.split(":", 1)[-1]


@dataclass(frozen=True)
class Invocation:
    """One command text received from one actor through one transport."""

    text: str
    actor: Actor
    channel: str
    transport: str  # slack | shell | schedule
    received_at: datetime
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])


@dataclass(frozen=True)
class Table:
    """Rows under named columns; transports decide how to draw it."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    note: str = ""


@dataclass(frozen=True)
class Action:
    """A button under a reply: it runs `command` as whoever clicks it (in the terminal, the line to type)."""

    label: str
    command: str
    style: str = ""  # "" | primary | danger
    row: str = ""  # consecutive actions with the same row are drawn together


@dataclass(frozen=True)
class Reply:
    """The answer to a command. `text` is always a readable plain-text fallback."""

    text: str
    title: str = ""
    tone: str = "info"
    fields: tuple[tuple[str, str], ...] = ()
    table: Table | None = None
    public: bool = False
    ok: bool = True
    actions: tuple[Action, ...] = ()


@dataclass(frozen=True)
class ProgressEvent:
    """A change in a long operation: `kind` is started | step | gate | finished."""

    op_id: str
    kind: str
    text: str
    tone: str = "info"
    at: datetime | None = None
    data: dict[str, Any] = field(default_factory=dict)


class DrillVerdict(StrEnum):
    """How a restore drill ended."""

    PASSED = "passed"
    FAILED = "failed"


@dataclass(frozen=True)
class DrillResult:
    """One restore drill: which copy went onto which disposable manager, what the checks found, how long it took."""

    id: str
    source: str
    target: str
    snapshot_id: str
    verdict: DrillVerdict
    started_at: datetime
    finished_at: datetime
    reason: str = ""  # why it failed, in one line ("" when it passed)
    mismatches: tuple[str, ...] = ()  # every difference between the snapshot and the restored target, named
    recovery_seconds: float | None = None  # start of the upload until the target answered with restored data
    phases: tuple[tuple[str, float], ...] = ()  # (phase, seconds) in order
    requester: str = ""
    slot: str = ""  # the scheduled slot it ran for ("" when run by hand)

    @property
    def passed(self) -> bool:
        """Whether every check passed."""
        return self.verdict is DrillVerdict.PASSED
