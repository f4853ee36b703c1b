"""The daily backup runs and their claims: one `schedule_runs` row per (manager, day), claimed by one process.

A claim is what makes a day run once: whoever claims (manager, day) first runs it; a claim whose claimer died
(no operation works on it after a grace period) is taken over by exactly one process.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from bot.core import Operation, parse_time
from bot.schedule.timetable import Schedule
from bot.settings import Settings

if TYPE_CHECKING:  # the context names Claim, so it imports this module
    from bot.engine.context import Catalog

JOB = "backups run"
CLAIM_GRACE = 120.0  # s: a claim with no operation for this long belongs to a process that died
PROCESS = f"{socket.gethostname()}:{os.getpid()}"
FAILED = ("failed", "skipped")


def run_key(day: date, attempt: int = 1) -> str:
    """The schedule_runs key: `2026-11-29` for the day's run, `2026-11-29~2` for a later retry."""
    return day.isoformat() if attempt <= 1 else f"{day.isoformat()}~{attempt}"


def parse_key(key: str) -> tuple[date, int]:
    """(day, attempt) of a run key."""
    day, _, attempt = key.partition("~")
    return date.fromisoformat(day), int(attempt or 1)


def owner_id(tag: str) -> str:
    """Who holds a claim: host, process and the invocation."""
    return f"{PROCESS}/{tag}"


def run_operation(store: Any, manager: str, key: str) -> Operation | None:
    """The unfinished `backups run` operation working on run `key` of `manager`, if any."""
    ops: list[Operation] = store.list_operations(states=("pending", "approved", "running"), manager=manager,
                                                      kinds=JOB)
    for op in ops:
        if (op.args or {}).get("run") == key:
            return op
    return None


def is_dead(store: Any, row: dict[str, Any], now: datetime) -> bool:
    """A claimed run whose claimer is gone: no operation works on it, and it was claimed a while ago."""
    if row.get("state") != "claimed":
        return False
    claimed = parse_time(row.get("claimed_at"))
    if claimed is not None and (now - claimed).total_seconds() < CLAIM_GRACE:
        return False  # the claimer may be about to create its operation
    return run_operation(store, row["manager"], row["day"]) is None


@dataclass(frozen=True)
class Claim:
    """The outcome of claiming a day: the key now held, or the run that stands in the way."""

    key: str | None
    holder: dict[str, Any] | None = None
    took_over: dict[str, Any] | None = None


def claim_day(store: Any, manager: str, day: date, owner: str, now: datetime, *, retry: bool = False) -> Claim:
    """Claim (manager, day); with `retry`, a day whose run failed or was skipped gets a new attempt."""
    key = run_key(day)
    if store.claim_run(manager, key, owner):
        return Claim(key)
    row = store.get_run(manager, key)
    if row is None:
        return Claim(None, {"manager": manager, "day": key, "state": "claimed", "owner": "?"})
    if retry and row["state"] in FAILED:
        attempts = [r for r in store.list_runs(manager, since_day=key)
                    if r["day"] == key or r["day"].startswith(key + "~")]
        row = max(attempts, key=lambda r: parse_key(r["day"])[1])
        if row["state"] in FAILED:
            nxt = run_key(day, parse_key(row["day"])[1] + 1)
            if store.claim_run(manager, nxt, owner):
                return Claim(nxt)
            return Claim(None, store.get_run(manager, nxt))
    return _take_over(store, manager, row, owner, now)


def _take_over(store: Any, manager: str, row: dict[str, Any], owner: str, now: datetime) -> Claim:
    """Claim a run whose claimer died; only one process wins (a mark), then the row changes hands."""
    if not is_dead(store, row, now):
        return Claim(None, row)
    mark = f"schedule:takeover:{manager}:{row['day']}:{row['owner']}:{row['claimed_at']}"
    if store.claim_mark(mark, owner) and store.claim_run(manager, row["day"], owner, stale_after=CLAIM_GRACE):
        return Claim(row["day"], took_over=row)
    return Claim(None, store.get_run(manager, row["day"]) or row)


class BackupRuns:
    """The `Backups` port of bot.engine.context: the timetable and the run claims, over the catalog."""

    def __init__(self, catalog: Catalog, settings: Settings) -> None:
        self.catalog, self.settings = catalog, settings

    def schedule(self) -> Schedule:
        """BOT_BACKUP_SCHEDULE read in BOT_TIMEZONE; ConfigError when it cannot be read."""
        return Schedule.from_settings(self.settings)

    def run_key(self, day: date, attempt: int = 1) -> str:
        """The run key of a day (`2026-11-29`, `2026-11-29~2` for a retry)."""
        return run_key(day, attempt)

    def parse_key(self, key: str) -> tuple[date, int]:
        """(day, attempt) of a run key."""
        return parse_key(key)

    def is_failed(self, state: str | None) -> bool:
        """Whether a run in this state ended without a backup (failed or skipped)."""
        return state in FAILED

    def owner_id(self, tag: str) -> str:
        """Who holds a claim: this process and `tag`."""
        return owner_id(tag)

    def claim_day(self, manager: str, day: date, owner: str, now: datetime, *, retry: bool = False) -> Claim:
        """Claim the run of (manager, day); with `retry`, a failed or skipped day gets a new attempt."""
        return claim_day(self.catalog, manager, day, owner, now, retry=retry)

    def run_operation(self, manager: str, key: str) -> Operation | None:
        """The unfinished `backups run` operation working on run `key` of `manager`, if any."""
        return run_operation(self.catalog, manager, key)


__all__ = ["CLAIM_GRACE", "FAILED", "JOB", "PROCESS", "BackupRuns", "Claim", "claim_day", "is_dead", "owner_id",
           "parse_key", "run_key", "run_operation"]
