"""The data that flows through the bot: frozen dataclasses shared by every front end."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Generic, TypeVar


class Tone(StrEnum):
    """How a reply or a progress line reads: plain, went well, needs attention, failed."""

    INFO = "info"
    GOOD = "good"
    WARNING = "warning"
    DANGER = "danger"


TONES = tuple(Tone)


class Role(StrEnum):
    """What a person may do, lowest first (DESIGN §5): each role may do everything the ones before it may."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        """0 for viewer, 1 for operator, 2 for admin."""
        return list(Role).index(self)


class OpState(StrEnum):
    """Where an operation stands (DESIGN §2); the last four are final."""

    PENDING = "pending"  # waiting at its gate
    APPROVED = "approved"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"

    @property
    def final(self) -> bool:
        """No further state follows this one."""
        return self in (OpState.SUCCEEDED, OpState.FAILED, OpState.CANCELLED, OpState.EXPIRED)


class Gate(StrEnum):
    """What a pending operation waits for: its requester's confirmation, or a second admin's approval."""

    CONFIRM = "confirm"
    APPROVE = "approve"


@dataclass(frozen=True)
class Operation:
    """One gated or long-running command as the store records it (DESIGN §2): built by the store from its row.

    Times are ISO strings as the store writes them ("" when not set); `gate` is None for an ungated one. Changes go
    through the store's compare-and-set calls, which return the new Operation; `dataclasses.replace` makes a copy.
    """

    id: str
    kind: str
    manager: str
    state: OpState
    args: Mapping[str, Any] = field(default_factory=dict, hash=False)
    requester: str = ""
    requester_name: str = ""
    channel: str = ""
    transport: str = ""
    step: str = ""
    gate: Gate | None = None
    confirmed_by: str = ""
    confirmed_at: str = ""
    approved_by: str = ""
    approved_at: str = ""
    decided_by: str = ""
    expires_at: str = ""
    point_of_no_return: bool = False
    exclusive: bool = False
    slack_channel: str = ""
    slack_ts: str = ""
    execution_id: str = ""
    result: Mapping[str, Any] = field(default_factory=dict, hash=False)  # its journal, and the reply's text
    error: str = ""
    cancel_requested: str = ""  # who asked to cancel it ("" when nobody did)
    created_at: str = ""
    updated_at: str = ""
    finished_at: str = ""

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Operation:
        """The operation of a decoded `operations` row (JSON columns as dicts, flags as bools)."""
        known = {f for f in cls.__dataclass_fields__}
        values: dict[str, Any] = {k: ("" if v is None else v) for k, v in row.items() if k in known}
        values["state"] = OpState(row["state"])
        values["gate"] = Gate(row["gate"]) if row.get("gate") else None
        values["args"] = dict(row.get("args") or {})
        values["result"] = dict(row.get("result") or {})
        values["point_of_no_return"] = bool(row.get("point_of_no_return"))
        values["exclusive"] = bool(row.get("exclusive"))
        return cls(**values)

    @property
    def journal(self) -> Mapping[str, Any]:
        """What the operation remembered (`Ctx.remember`): it survives a restart of the bot."""
        journal = self.result.get("journal")
        return journal if isinstance(journal, Mapping) else {}

    @property
    def final(self) -> bool:
        """It has ended: succeeded, failed, cancelled or expired."""
        return self.state.final

    @property
    def requester_shown(self) -> str:
        """Who asked, by name when the store has one."""
        return self.requester_name or self.requester


@dataclass(frozen=True)
class ArchiveCopy:
    """One snapshot copy kept off the manager, as the archive catalog records it (one per manager and snapshot)."""

    manager: str
    snapshot_id: str
    location: str = ""  # a path, or an s3:// URL
    sha256: str = ""
    size: int = 0
    manager_version: str = ""
    snapshot_version: str = ""
    tenant: str = ""
    created_at: str = ""  # when the manager created the snapshot (ISO, as the manager wrote it)
    stored_at: str = ""
    verified: bool = False
    verified_at: str = ""
    error: str = ""  # why the last check failed
    layout: str = ""  # new | legacy: known right after this process received it (not stored in the catalog)


@dataclass(frozen=True)
class Grant:
    """A role given to a Slack user or user group, optionally only in some channels or on some managers."""

    principal: str  # U… user id, S… user-group id, or shell:NAME
    role: Role
    channels: tuple[str, ...] = ()
    managers: tuple[str, ...] = ()


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


def person(actor_id: str, names: Mapping[str, str] | None = None) -> str:
    """A person as a reader sees them: the name recorded for `actor_id` (`names`: id -> name, as an operation keeps
    them), else the id without its namespace (`shell:carol` -> `carol`); never a raw namespaced id."""
    if not actor_id:
        return "someone"
    named = (names or {}).get(actor_id)
    return named or actor_id.split(":", 1)[-1]


@dataclass(frozen=True)
class Invocation:
    """One command text received from one actor through one transport."""

    text: str
    actor: Actor
    channel: str
    transport: str  # slack | shell | schedule
    received_at: datetime
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])


EXECUTION_FINAL = ("terminated", "failed", "cancelled")  # END_STATES (reference §5.1)


@dataclass(frozen=True)
class Execution:
    """One Cloudify execution as the manager reported it (reference §5.1), in the fields the bot reasons about.

    Built from the wire by `Execution.from_wire` (bot.cloudify does it for every execution it returns). A field the
    manager sent as null, or left out (a list asked with `_include`), is None; `tenant` is the wire's `tenant_name`.
    """

    id: str
    status: str = ""
    workflow_id: str | None = None
    deployment_id: str | None = None
    blueprint_id: str | None = None
    tenant: str | None = None
    created_by: str | None = None
    created_at: str | None = None
    started_at: str | None = None
    ended_at: str | None = None
    scheduled_for: str | None = None
    status_display: str | None = None
    error: str | None = None  # null until it fails (a traceback) or is cancelled ("")
    parameters: Mapping[str, Any] = field(default_factory=dict, hash=False)  # redacted by the client
    is_system_workflow: bool = False
    is_dry_run: bool = False

    @classmethod
    def from_wire(cls, raw: Mapping[str, Any]) -> Execution:
        """The execution of a manager's JSON object (`GET /executions/<id>`, one item of `GET /executions`, a
        journal record written by `wire()`)."""

        def text(key: str) -> str | None:
            value = raw.get(key)
            return None if value is None else str(value)

        params = raw.get("parameters")
        return cls(id=str(raw.get("id") or ""), status=str(raw.get("status") or ""),
                   workflow_id=text("workflow_id"), deployment_id=text("deployment_id"),
                   blueprint_id=text("blueprint_id"), tenant=text("tenant_name"), created_by=text("created_by"),
                   created_at=text("created_at"), started_at=text("started_at"), ended_at=text("ended_at"),
                   scheduled_for=text("scheduled_for"), status_display=text("status_display"), error=text("error"),
                   parameters=dict(params) if isinstance(params, Mapping) else {},
                   is_system_workflow=bool(raw.get("is_system_workflow")), is_dry_run=bool(raw.get("is_dry_run")))

    def wire(self) -> dict[str, Any]:
        """The execution in the manager's field names (for a journal record; `from_wire` reads it back)."""
        return {"id": self.id, "status": self.status, "workflow_id": self.workflow_id,
                "deployment_id": self.deployment_id, "blueprint_id": self.blueprint_id, "tenant_name": self.tenant,
                "created_by": self.created_by, "created_at": self.created_at, "started_at": self.started_at,
                "ended_at": self.ended_at, "scheduled_for": self.scheduled_for,
                "status_display": self.status_display, "error": self.error, "parameters": dict(self.parameters),
                "is_system_workflow": self.is_system_workflow, "is_dry_run": self.is_dry_run}

    @property
    def final(self) -> bool:
        """It has ended: terminated, failed or cancelled."""
        return self.status in EXECUTION_FINAL

    @property
    def shown_status(self) -> str:
        """The status as cfy prints it (`status_display`: `completed` for terminated), else the status."""
        return self.status_display or self.status


T = TypeVar("T")


@dataclass(frozen=True)
class Listing(Generic[T]):
    """One page of a manager's list endpoint: its items and the server's pagination."""

    items: list[T]
    total: int
    offset: int
    size: int


Page = Listing[dict[str, Any]]  # a page of the manager's JSON objects, as the wire has them


@dataclass
class Download:
    """A streamed snapshot archive: `size` from Content-Length, `filename` from Content-Disposition.

    Read it one way: `chunks`, or (when the client offers it) `readinto`, which fills the caller's buffer with
    the next bytes straight from the socket and returns how many (0 at the end): no copies on the way."""

    size: int | None
    filename: str | None
    chunks: Iterator[bytes]
    readinto: Callable[[memoryview], int] | None = None


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
    tone: Tone = Tone.INFO
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
    tone: Tone = Tone.INFO
    at: datetime | None = None
    data: dict[str, Any] = field(default_factory=dict)


# -- the units commands and front ends write in: times, ages, sizes, durations ---------------------------------------

DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$", re.ASCII)  # ASCII digits only


def parse_duration(text: str) -> float:
    """`26h`, `90m`, `600` (seconds) → seconds; ValueError otherwise."""
    m = DURATION.match(text)
    if not m:
        raise ValueError(text)
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def parse_since(text: str, now: datetime) -> datetime:
    """`24h`, `90m`, `7d`, `600` (seconds ago) or an ISO time (`2026-11-29`, `2026-11-29T08:00Z`) → UTC time.

    A time without a zone is UTC. ValueError, with a message a person can act on, for anything else.
    """
    raw = (text or "").strip()
    try:
        return now - timedelta(seconds=parse_duration(raw))
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"--since must be a duration such as 24h, 90m or 7d, or an ISO time such as "
                         f"2026-11-29T08:00Z; got {text!r}") from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def parse_time(text: str | None) -> datetime | None:
    """An ISO-8601 time as the manager and the store write it (`2026-11-25T02:40:51.214Z`), or None."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def count(n: int, word: str, plural: str = "") -> str:
    """`1 operation`, `2 operations`, `0 copies` (with `plural` for irregular words)."""
    return f"{n} {word if n == 1 else plural or word + 's'}"


def age(seconds: float) -> str:
    """A short human age: `45s`, `12m`, `5h 3m`, `3d 4h`."""
    s = int(max(seconds, 0))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


def size(n: int | None) -> str:
    """Bytes as a short human size."""
    if n is None:
        return "?"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def file_size(n: int) -> str:
    """A file's size as a person reads it: `0 bytes`, `1 byte`, `900 bytes`, `5.8 KiB`."""
    return count(n, "byte") if n < 1024 else size(n)


def size_problem(actual: int, expected: int) -> str:
    """`it is 0 bytes, 5.8 KiB expected: truncated`: a stored file whose size is not the recorded one."""
    why = "truncated" if actual < expected else "it grew, so the file changed"
    return f"it is {file_size(actual)}, {file_size(expected)} expected: {why}"


def transfer_text(done: int, total: int | None, elapsed: float) -> str:
    """`37.5 MiB of 1.0 GiB (4%), 52.1 MiB/s, 19s left` — bytes, rate and time left of a transfer."""
    rate = done / elapsed if elapsed > 0 else 0.0
    text = f"{size(done)} of {size(total)} ({done * 100 // total}%)" if total else f"{size(done)} so far"
    text += f", {size(int(rate))}/s"
    if total and rate > 0:
        text += f", {age((total - done) / rate)} left"
    return text


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
