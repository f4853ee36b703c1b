"""How values are stored: column kinds, ISO-8601 UTC timestamps, and encoding rows in and out of SQLite."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from bot.store.audit import canonical_json

# Column kinds drive creation, encoding and decoding: text | json (a dict) | bool | int | time.
_T, _J, _B, _I, _TM = "text", "json", "bool", "int", "time"


def iso(value: datetime | str | float) -> str:
    """A timestamp as the store writes it: UTC, microseconds, `Z`; naive values are taken as UTC."""
    if isinstance(value, (int, float)):
        value = datetime.fromtimestamp(value, tz=UTC)
    elif isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"  # [:-6] drops "+00:00"


def _encode(fields: dict[str, Any], columns: dict[str, str], forbid: Iterable[str] = ()) -> dict[str, Any]:
    """Values as stored: dicts as canonical JSON, bools as 0/1, times as ISO UTC, None as ''."""
    out: dict[str, Any] = {}
    for name, value in fields.items():
        kind = columns.get(name)
        if kind is None or name in forbid:
            raise ValueError(f"{name!r} is not a field that can be set here")
        if kind == _J:
            if value is not None and not isinstance(value, dict):
                raise TypeError(f"{name} must be a dict, not {type(value).__name__}")
            out[name] = canonical_json(value or {})
        elif kind in (_B, _I):
            out[name] = int(value or 0)
        elif kind == _TM:
            out[name] = iso(value) if value else ""
        else:
            out[name] = "" if value is None else str(value)
    return out


def _decode(row: dict[str, Any], columns: dict[str, str]) -> dict[str, Any]:
    for name, kind in columns.items():
        if kind == _J and name in row:
            row[name] = json.loads(row[name]) if row[name] else {}
        elif kind == _B and name in row:
            row[name] = bool(row[name])
    return row
