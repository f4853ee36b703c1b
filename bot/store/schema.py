"""The store's tables: their columns, the operation states, and the migrations that create them."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

from bot.core import OpState
from bot.errors import BotError
from bot.store import audit
from bot.store.codec import _B, _I, _J, _T, _TM, iso
from bot.store.ddl import create_index, create_table

STATES: tuple[OpState, ...] = tuple(OpState)
FINAL_STATES = frozenset(s for s in OpState if s.final)
UNFINISHED_STATES = tuple(s for s in OpState if not s.final)
RUN_STATES = ("claimed", "succeeded", "failed", "skipped")

OPERATION_COLUMNS = {
    "id": _T, "kind": _T, "args": _J, "manager": _T, "requester": _T, "requester_name": _T, "channel": _T,
    "transport": _T, "state": _T, "step": _T, "gate": _T, "confirmed_by": _T, "confirmed_at": _TM,
    "approved_by": _T, "approved_at": _TM, "decided_by": _T, "expires_at": _TM, "point_of_no_return": _B,
    "exclusive": _B, "slack_channel": _T, "slack_ts": _T, "execution_id": _T, "result": _J, "error": _T,
    "cancel_requested": _T, "created_at": _TM, "updated_at": _TM, "finished_at": _TM,
}
COPY_COLUMNS = {
    "manager": _T, "snapshot_id": _T, "location": _T, "sha256": _T, "size": _I, "manager_version": _T,
    "snapshot_version": _T, "tenant": _T, "created_at": _TM, "stored_at": _TM, "verified": _B,
    "verified_at": _TM, "error": _T,
}
RUN_COLUMNS = {"manager": _T, "day": _T, "state": _T, "owner": _T, "claimed_at": _TM, "finished_at": _TM,
               "snapshot_id": _T, "error": _T}
DRILL_COLUMNS = {"id": _T, "source": _T, "target": _T, "snapshot_id": _T, "verdict": _T, "started_at": _TM,
                 "finished_at": _TM, "reason": _T, "details": _J, "recovery_ms": _I, "requester": _T, "slot": _T}
MARK_COLUMNS = {"key": _T, "value": _T, "set_at": _TM}
_UNFINISHED_SQL = "('pending', 'approved', 'running')"


def _create_v1(db: sqlite3.Connection) -> None:
    def table(name: str, columns: dict[str, str], pk: str | tuple[str, ...]) -> None:
        types: dict[str, type[int] | type[str]] = {c: int if k in (_B, _I) else str for c, k in columns.items()}
        fill: dict[str, int | str] = {_J: "{}", _B: 0, _I: 0}
        defaults = {c: fill.get(k, "") for c, k in columns.items()}
        create_table(db, name, types, pk, defaults)

    table("operations", OPERATION_COLUMNS, "id")
    create_index(db, "operations", ["state"], "operations_state")
    # The manager lock: at most one unfinished exclusive operation per manager, enforced by SQLite itself.
    db.execute("CREATE UNIQUE INDEX IF NOT EXISTS operations_one_exclusive_per_manager ON operations "
               f"(manager) WHERE exclusive = 1 AND state IN {_UNFINISHED_SQL}")
    table("archive_copies", COPY_COLUMNS, ("manager", "snapshot_id"))
    table("schedule_runs", RUN_COLUMNS, ("manager", "day"))
    table("marks", MARK_COLUMNS, "key")
    audit.create_schema(db)


def _add_drills(db: sqlite3.Connection) -> None:
    """v2: restore drill results (one row per drill; `details` holds mismatches and phase durations)."""
    types: dict[str, type[int] | type[str]] = {c: int if k in (_B, _I) else str for c, k in DRILL_COLUMNS.items()}
    fill: dict[str, int | str] = {_J: "{}", _B: 0, _I: 0}
    create_table(db, "drills", types, "id", {c: fill.get(k, "") for c, k in DRILL_COLUMNS.items()})
    create_index(db, "drills", ["source", "finished_at"], "drills_source")


_MIGRATIONS = (_create_v1, _add_drills)  # append a function per schema change; never edit a released one


def _migrate(db: sqlite3.Connection) -> None:
    """Bring the schema up to date in one BEGIN IMMEDIATE (two processes may open the file at once)."""
    db.execute("BEGIN IMMEDIATE")
    db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_at TEXT)")
    current = db.execute("SELECT max(version) FROM schema_version").fetchone()[0] or 0
    if current > len(_MIGRATIONS):
        raise BotError(f"the bot's database has schema version {current}, newer than this cfy-bot "
                       f"understands ({len(_MIGRATIONS)}); upgrade cfy-bot")
    for version in range(current + 1, len(_MIGRATIONS) + 1):
        _MIGRATIONS[version - 1](db)
        db.execute("INSERT INTO schema_version VALUES (?, ?)", (version, iso(datetime.now(UTC))))
    db.execute("COMMIT")
