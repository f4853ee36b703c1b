"""How a call is shaped on the wire and how plain answers are read: no httpx, no I/O.

Requests are shaped exactly as the official `cfy` 7.0.5 CLI sends them (see shared/reference/cfy-cli-wire.md).
The underscored names are internal to the `bot.cloudify` package.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote

from bot.core import Download, Page

__all__ = ["API", "CHUNK_SIZE", "EXECUTION_ACTIONS", "Download", "Page"]

API = "/api/v3.1"
CHUNK_SIZE = 1 << 20  # the most one download read holds, so an archive is never held in memory
EXECUTION_ACTIONS = ("cancel", "force-cancel", "kill")
# A request extension (the archive download: its body may be read straight from the socket) and the response
# extension holding the reader when the bot's own transport offers one (bot/cloudify/sockets.py).
DIRECT_BODY = "cfy_bot.direct_body"


@dataclass(frozen=True)
class _Call:
    """One REST call: what it is called in messages, how it is sent, and the status cfy expects."""

    name: str
    method: str
    path: str  # after /api/v3.1, or absolute when it starts with /api/
    expect: tuple[int, ...] = (200,)
    params: list[tuple[str, str]] | None = None
    body: Any = None  # bytes (JSON), a one-shot iterable of bytes (upload), or None
    auth: bool = True
    tenant: str | None = None
    subject: str = ""  # "snapshot daily-1": names the thing in 404/409 messages
    headers: Mapping[str, str] = field(default_factory=dict)
    direct: bool = False  # ask the transport for a body read straight from its socket (DIRECT_BODY)

    @property
    def full_path(self) -> str:
        return self.path if self.path.startswith("/api/") else API + self.path


class _DirectReader(Protocol):
    """What the transport offers as the DIRECT_BODY response extension (bot.cloudify.sockets.DirectBody)."""

    received: int

    def readinto(self, buffer: memoryview) -> int: ...


class _OneShot:
    """An upload body that can be sent once; remembers whether sending began (then no failover)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = chunks
        self.started = False

    def __iter__(self) -> Iterator[bytes]:
        self.started = True
        yield from self._chunks


# --- request shaping ---------------------------------------------------------------------------


def _py(value: bool) -> str:
    """Booleans in query strings as cfy spells them (Python's `True` / `False`)."""
    return "True" if value else "False"


def _filters(filters: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Equality filters; a list value repeats the key (OR), None is left out."""
    params: list[tuple[str, str]] = []
    for key, value in filters.items():
        values = value if isinstance(value, (list, tuple, set, frozenset)) else [value]
        params += [(key, _py(v) if isinstance(v, bool) else str(v)) for v in values if v is not None]
    return params


def _paging(offset: int | None, size: int | None, sort: str | None) -> list[tuple[str, str]]:
    """`_offset`, `_size`, `_sort` when given (an execution has no `size` field to filter on)."""
    pairs = (("_offset", offset), ("_size", size), ("_sort", sort))
    return [(key, str(value)) for key, value in pairs if value is not None]


def _bypass(bypass: bool) -> dict[str, str]:
    """`X-BYPASS-MAINTENANCE`: lets a sys-admin read executions and events while maintenance is activated."""
    return {"X-BYPASS-MAINTENANCE": "true"} if bypass else {}


def _seg(value: str) -> str:
    """One path segment: valid Cloudify ids pass unchanged; anything else cannot break out of it."""
    return quote(str(value), safe="")


def _dumps(body: dict[str, Any]) -> bytes:
    # json.dumps defaults (", " and ": "), exactly as cfy's client serialises; httpx's json= is compact.
    return json.dumps(body).encode()


# --- reading answers ---------------------------------------------------------------------------

_NOT_JSON = object()


def _loads(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return _NOT_JSON


def _looks_html(raw: bytes, content_type: str) -> bool:
    return "html" in content_type.lower() or raw.lstrip()[:1] == b"<"


def _parse_version(value: Any) -> tuple[int, ...] | None:
    """`"7.1.0.dev1"` -> `(7, 1, 0)`; None when there is no leading number."""
    match = re.match(r"\s*v?(\d+(?:\.\d+)*)", value) if isinstance(value, str) else None
    return tuple(int(p) for p in match.group(1).split(".")) if match else None


def _maintenance(data: dict[str, Any]) -> dict[str, Any]:
    """`remaining_executions` as a flat list: activate wraps it in `[[...]]`, an idle GET sends null."""
    remaining = data.get("remaining_executions")
    if remaining is None:
        remaining = []
    elif isinstance(remaining, list) and len(remaining) == 1 and isinstance(remaining[0], list):
        remaining = remaining[0]
    return {**data, "remaining_executions": remaining}


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _filename(disposition: str) -> str | None:
    """The file name of `attachment; filename="x.zip"` (quoted or not), without any folder part."""
    match = re.search(r"filename\*?=(?:UTF-8'')?\"?([^\";]+)\"?", disposition, re.IGNORECASE)
    name = match.group(1).strip().replace("\\", "/").rsplit("/", 1)[-1] if match else ""
    return name or None


def _of(size: int | None) -> str:
    return f" of {size}" if size is not None else ""
