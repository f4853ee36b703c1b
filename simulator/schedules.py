"""Execution schedules: rows bound to a deployment, and their next occurrences computed from the clock."""

from __future__ import annotations

import re
from typing import Any

from simulator.wire import iso, parse_iso

_UNITS = {"min": 60, "mins": 60, "minute": 60, "minutes": 60, "h": 3600, "hour": 3600, "hours": 3600,
          "d": 86400, "day": 86400, "days": 86400, "w": 604800, "week": 604800, "weeks": 604800,
          "mo": 2592000, "month": 2592000, "months": 2592000, "y": 31536000, "year": 31536000,
          "years": 31536000}
_RECURRENCE = re.compile(r"^\s*(\d+)\s*([a-z]+)\s*$")
MAX_LISTED = 10


def build_schedule(sched_id: str, tenant: str, deployment_id: str | None, workflow_id: str, since: str, *,
                   created_at: float, until: str | None = None, recurrence: str | None = None,
                   count: int | None = None, weekdays: list[str] | None = None,
                   parameters: dict[str, Any] | None = None,
                   execution_arguments: dict[str, Any] | None = None, slip: int = 0,
                   stop_on_fail: bool = False, enabled: bool = True,
                   created_by: str = "admin") -> dict[str, Any]:
    """An ExecutionSchedule row (`since`/`until` are ISO strings)."""
    return {
        "created_at": iso(created_at), "id": sched_id, "visibility": "tenant", "tenant_name": tenant,
        "created_by": created_by, "deployment_id": deployment_id, "workflow_id": workflow_id,
        "parameters": parameters or {}, "execution_arguments": execution_arguments or {},
        "since": since, "until": until, "stop_on_fail": stop_on_fail, "enabled": enabled,
        "rule": {"recurrence": recurrence, "count": count, "weekdays": weekdays},
        "slip": slip, "latest_execution_status": None,
    }


def step_seconds(recurrence: str | None) -> int | None:
    """'1 day' / '2h' / '30 min' -> seconds; None if there is no recurrence."""
    if not recurrence:
        return None
    match = _RECURRENCE.match(recurrence.lower())
    if not match or match.group(2) not in _UNITS:
        return None
    return int(match.group(1)) * _UNITS[match.group(2)]


def occurrences(row: dict[str, Any], now: float, limit: int = MAX_LISTED) -> list[float]:
    """The upcoming occurrence times (>= now) of a schedule."""
    if not row.get("enabled", True):
        return []
    since = parse_iso(row["since"])
    until = parse_iso(row["until"]) if row.get("until") else None
    rule = row.get("rule") or {}
    step, count = step_seconds(rule.get("recurrence")), rule.get("count")
    found: list[float] = []
    index, when = 0, since
    while len(found) < limit and (count is None or index < count) and (until is None or when <= until):
        if when >= now:
            found.append(when)
        if step is None:
            break
        index += 1
        when = since + index * step
        if count is None and when < now:  # jump ahead instead of walking years of history
            skipped = int((now - since) // step)
            index, when = skipped, since + skipped * step
    return found


def render_schedule(row: dict[str, Any], now: float) -> dict[str, Any]:
    """A schedule as the API returns it, with `next_occurrence` and `all_next_occurrences`."""
    upcoming = [iso(t) for t in occurrences(row, now)]
    out = dict(row)
    out["next_occurrence"] = upcoming[0] if upcoming else None
    out["all_next_occurrences"] = upcoming
    out["resource_availability"] = out["visibility"]
    out["private_resource"] = False
    return out
