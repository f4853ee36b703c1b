"""The bot's memory: one SQLite file for operations, the audit chain, the archive catalog and schedule marks.

The only modules that know SQLite are this one and bot/auditlog.py. Connections are pooled (a thread
borrows one per call, so short-lived threads leak nothing); every multi-statement change runs in
`BEGIN IMMEDIATE`, single statements are atomic on their own, so several threads and several bot
processes can share the file. Timestamps are ISO-8601 UTC strings (`2026-11-29T02:00:00.000000Z`).
"""

from __future__ import annotations

import json
import os
import secrets as _random
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from bot import auditlog
from bot.auditlog import AuditVerdict, canonical_json
from bot.clock import Clock
from bot.errors import BotError, NotFound, OperationError

__all__ = ["AuditVerdict", "Store", "STATES", "FINAL_STATES", "UNFINISHED_STATES", "iso"]

STATES = ("pending", "approved", "running", "succeeded", "failed", "cancelled", "expired")
FINAL_STATES = frozenset({"succeeded", "failed", "cancelled", "expired"})
UNFINISHED_STATES = ("pending", "approved", "running")
RUN_STATES = ("claimed", "succeeded", "failed", "skipped")
BUSY_TIMEOUT_S = 15.0
# Every commit writes each page it touched whole into the WAL: an audit append touches ~7 (row, 4 index
# leaves, head). 1 KB pages write ~13 KB per append instead of ~36 KB, which at a million rows is ~40%
# more appends per second (page size only applies when the file is created).
PAGE_SIZE = 1024
WAL_AUTOCHECKPOINT = 4000  # pages between checkpoints, the only fsyncs under synchronous=NORMAL
_POOL_SIZE = 8

# Column kinds drive creation, encoding and decoding: text | json (a dict) | bool | int | time.
_T, _J, _B, _I, _TM = "text", "json", "bool", "int", "time"
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
MARK_COLUMNS = {"key": _T, "value": _T, "set_at": _TM}
_UNFINISHED_SQL = "('pending', 'approved', 'running')"


def iso(value: datetime | str | float) -> str:
    """A timestamp as the store writes it: UTC, microseconds, `Z`; naive values are taken as UTC."""
    if isinstance(value, (int, float)):
        value = datetime.fromtimestamp(value, tz=UTC)
    elif isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"  # [:-6] drops "+00:00"


class Store:
    """Operations, audit log, archive catalog and schedule runs in one SQLite file."""

    def __init__(self, path: str | Path, clock: Clock | None = None) -> None:
        self.path = str(path)
        self.clock = clock or Clock()
        self.secrets: set[str] = set()  # filled by the app at start-up; append_audit refuses them
        self._lock = threading.Lock()
        self._idle: list[sqlite_utils.Database] = []
        self._pid = os.getpid()
        self._closed = False
        with self._borrow() as db:
            _migrate(db)

    # --- connections ---------------------------------------------------------------------------

    def close(self) -> None:
        """Close every idle connection; connections in use close when they are given back."""
        with self._lock:
            self._closed, idle, self._idle = True, self._idle, []
        for db in idle:
            db.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _borrow(self) -> Iterator[sqlite_utils.Database]:
        """Lend this thread a connection for one call; translate SQLite errors into BotError."""
        with self._lock:
            if self._closed:
                raise BotError("the bot's database is closed")
            if self._pid != os.getpid():  # forked: never touch the parent's connections
                self._idle, self._pid = [], os.getpid()
            db = self._idle.pop() if self._idle else None
        try:
            db = db or _connect(self.path)
            yield db
        except sqlite3.Error as exc:
            raise _translated(exc, self.path) from exc
        finally:
            if db is not None:
                self._give_back(db)

    def _give_back(self, db: sqlite_utils.Database) -> None:
        try:
            if db.conn.in_transaction:
                db.conn.execute("ROLLBACK")
        except sqlite3.Error:
            db.conn.close()
            return
        with self._lock:
            if not self._closed and self._pid == os.getpid() and len(self._idle) < _POOL_SIZE:
                self._idle.append(db)
                return
        db.conn.close()

    def _now(self) -> str:
        return iso(self.clock.now())

    def _rows(self, sql: str, params: Iterable[Any], columns: dict[str, str]) -> list[dict]:
        with self._borrow() as db:
            return [_decode(row, columns) for row in db.query(sql, list(params))]

    def _write(self, sql: str, params: Iterable[Any], columns: dict[str, str]) -> list[dict]:
        """Run one write statement (`… RETURNING *`); it is atomic by itself."""
        with self._borrow() as db:
            cursor = db.conn.execute(sql, list(params))
            names = [d[0] for d in cursor.description or ()]
            # fetchall: a RETURNING statement only finishes, and commits, once it has been read to the end
            return [_decode(dict(zip(names, row, strict=True)), columns) for row in cursor.fetchall()]

    # --- operations --------------------------------------------------------------------------

    def create_operation(self, *, exclusive: bool = False, **fields: Any) -> dict:
        """Insert an operation (state pending unless given); `exclusive` ones are one per manager."""
        if not fields.get("kind"):
            raise ValueError("an operation needs a kind")
        now = self._now()
        row = {"state": "pending", **fields, "exclusive": exclusive, "created_at": now, "updated_at": now}
        _check_state(row["state"])
        for _attempt in range(5):
            row["id"] = fields.get("id") or f"op-{_random.token_hex(3)}"
            values = _encode(row, OPERATION_COLUMNS)
            sql = (f"INSERT INTO operations ({', '.join(values)}) VALUES ({', '.join('?' * len(values))}) "
                   "RETURNING *")
            try:
                return self._write(sql, values.values(), OPERATION_COLUMNS)[0]
            except BotError as exc:
                conflict = str(exc.__cause__ or "")
                if "operations.manager" in conflict:
                    self._raise_busy(row.get("manager", ""))  # returns if the holder just finished
                elif "operations.id" not in conflict or fields.get("id"):
                    raise
        raise OperationError("could not find a free operation id; try again")

    def get_operation(self, op_id: str) -> dict | None:
        """The operation, or None."""
        rows = self._rows("SELECT * FROM operations WHERE id = ?", [op_id], OPERATION_COLUMNS)
        return rows[0] if rows else None

    def transition(self, op_id: str, from_states: str | Iterable[str], to_state: str, *,
                   expect_gate: str | None = None, **fields: Any) -> dict | None:
        """Compare-and-set the state (and the gate, if `expect_gate`): the updated row, or None."""
        _check_state(to_state)
        states = _states(from_states)
        if FINAL_STATES.intersection(states):
            raise ValueError(f"an operation never leaves a final state ({', '.join(states)})")
        now = self._now()
        changes = {**fields, "state": to_state, "updated_at": now}
        if to_state in FINAL_STATES:
            changes.setdefault("finished_at", now)
        return self._cas(op_id, states, changes, expect_gate)

    def update_operation(self, op_id: str, expected_state: str | Iterable[str], *,
                         expect_gate: str | None = None, **fields: Any) -> dict | None:
        """Change fields (step, execution_id, slack_ts…) only while the state is `expected_state`."""
        if "state" in fields:
            raise ValueError("use transition() to change the state")
        return self._cas(op_id, _states(expected_state), {**fields, "updated_at": self._now()}, expect_gate)

    def _cas(self, op_id: str, states: tuple[str, ...], changes: dict[str, Any], gate: str | None = None
             ) -> dict | None:
        """One UPDATE … WHERE id = ? AND state IN (…) [AND gate = ?]: atomic without a transaction."""
        values = _encode(changes, OPERATION_COLUMNS, forbid=("id", "created_at"))
        sql = (f"UPDATE operations SET {', '.join(f'{k} = ?' for k in values)} "
               f"WHERE id = ? AND state IN ({', '.join('?' * len(states))})"
               + (" AND gate = ?" if gate is not None else "") + " RETURNING *")
        params = [*values.values(), op_id, *states, *([gate] if gate is not None else [])]
        try:
            rows = self._write(sql, params, OPERATION_COLUMNS)
        except BotError as exc:
            if "operations.manager" not in str(exc.__cause__ or ""):
                raise
            current = self.get_operation(op_id) or {}
            self._raise_busy(current.get("manager", ""))
            raise
        return rows[0] if rows else None

    def list_operations(self, states: str | Iterable[str] | None = None, manager: str | None = None,
                        kinds: str | Iterable[str] | None = None, limit: int | None = None) -> list[dict]:
        """Operations, newest first, filtered by state, manager and kind."""
        where, params = ["1"], []
        for column, wanted in (("state", states), ("kind", kinds)):
            if wanted is not None:
                wanted = _states(wanted) if column == "state" else _strings(wanted)
                where.append(f"{column} IN ({', '.join('?' * len(wanted))})")
                params += wanted
        if manager is not None:
            where.append("manager = ?")
            params.append(manager)
        sql = f"SELECT * FROM operations WHERE {' AND '.join(where)} ORDER BY created_at DESC, rowid DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return self._rows(sql, params, OPERATION_COLUMNS)

    def unfinished_operations(self) -> list[dict]:
        """Operations that are pending, approved or running (what start-up must reconcile)."""
        return self.list_operations(states=UNFINISHED_STATES)

    def manager_lock_holder(self, manager: str) -> dict | None:
        """The unfinished exclusive operation on `manager`, if any."""
        rows = self._rows(f"SELECT * FROM operations WHERE manager = ? AND exclusive = 1 AND state IN "
                          f"{_UNFINISHED_SQL} LIMIT 1", [manager], OPERATION_COLUMNS)
        return rows[0] if rows else None

    def claim_manager_lock(self, op_id: str) -> dict:
        """Make an unfinished operation exclusive on its manager; OperationError names the holder if busy."""
        row = self._cas(op_id, UNFINISHED_STATES, {"exclusive": True, "updated_at": self._now()})
        if row is None:
            current = self.get_operation(op_id)
            if current is None:
                raise NotFound(f"no operation {op_id}")
            raise OperationError(f"{op_id} is already {current['state']}")
        return row

    def _raise_busy(self, manager: str) -> None:
        """Raise OperationError naming the holder of `manager`'s lock; return if it was just released."""
        holder = self.manager_lock_holder(manager)
        if holder is None:
            return
        who = holder["requester_name"] or holder["requester"] or "someone"
        error = OperationError(
            f"{manager} is busy: {holder['kind']} {holder['id']}, started by {who}, is {holder['state']}. "
            "Only one restore or maintenance change runs on a manager at a time.")
        error.operation = holder  # type: ignore[attr-defined]  # for callers that want the details
        raise error

    def expire_gates(self, now: datetime | str | None = None) -> list[dict]:
        """Move pending operations whose gate expired to `expired` (one CAS statement); returns them."""
        when = iso(now) if now is not None else self._now()
        return self._write(
            "UPDATE operations SET state = 'expired', updated_at = ?, finished_at = ? "
            "WHERE state = 'pending' AND expires_at != '' AND expires_at <= ? RETURNING *",
            [when, when, when], OPERATION_COLUMNS)

    # --- audit log (bot/auditlog.py) -------------------------------------------------------------

    def append_audit(self, event: str, *, actor: str, transport: str = "", channel: str = "",
                     manager: str = "", command: str = "", operation_id: str = "", execution_id: str = "",
                     detail: dict[str, Any] | None = None) -> dict:
        """Append one hash-chained audit row, atomically across threads and processes."""
        fields = {"actor": actor, "transport": transport, "channel": channel, "manager": manager,
                  "command": command, "operation_id": operation_id, "execution_id": execution_id}
        with self._borrow() as db:
            return auditlog.append(db.conn, self._now, self.secrets, event, fields, detail)

    def verify_audit(self) -> AuditVerdict:
        """Check every row's hash and link, and the head record; streams, so memory stays flat."""
        with self._borrow() as db:
            return auditlog.verify(db.conn)

    def query_audit(self, user: str | None = None, command: str | None = None, manager: str | None = None,
                    since: datetime | str | None = None, until: datetime | str | None = None,
                    event: str | None = None, limit: int = 50, operation_id: str | None = None
                    ) -> list[dict]:
        """Audit rows newest first; `since` inclusive, `until` exclusive; a bare user id matches any source."""
        if operation_id and not since:
            # No index on operation_id: an operation's rows all come after its creation, so start there.
            op = self.get_operation(operation_id)
            since = op["created_at"] if op else None
        with self._borrow() as db:
            return auditlog.query(db, user=user, command=command, manager=manager,
                                  since=iso(since) if since else None, until=iso(until) if until else None,
                                  event=event, operation_id=operation_id, limit=limit)

    def iter_audit(self, since: datetime | str | None = None) -> Iterator[dict]:
        """Audit rows oldest first, streamed (for export); holds one connection until exhausted or closed."""
        start = iso(since) if since else None
        with self._borrow() as db:
            yield from auditlog.iterate(db.conn, start)

    # --- archive catalog -------------------------------------------------------------------------

    def record_copy(self, **fields: Any) -> dict:
        """Insert or update the archive copy of (manager, snapshot_id); fields not given are kept."""
        if not fields.get("manager") or not fields.get("snapshot_id"):
            raise ValueError("an archive copy needs a manager and a snapshot_id")
        values = _encode({"stored_at": self._now(), **fields}, COPY_COLUMNS)
        updates = ", ".join(f"{k} = excluded.{k}" for k in values if k not in ("manager", "snapshot_id"))
        sql = (f"INSERT INTO archive_copies ({', '.join(values)}) VALUES ({', '.join('?' * len(values))}) "
               f"ON CONFLICT(manager, snapshot_id) DO UPDATE SET {updates} RETURNING *")
        return self._write(sql, values.values(), COPY_COLUMNS)[0]

    def get_copy(self, manager: str, snapshot_id: str) -> dict | None:
        """The archive copy, or None."""
        rows = self._rows("SELECT * FROM archive_copies WHERE manager = ? AND snapshot_id = ?",
                          [manager, snapshot_id], COPY_COLUMNS)
        return rows[0] if rows else None

    def list_copies(self, manager: str | None = None, verified: bool | None = None) -> list[dict]:
        """Archive copies, newest snapshot first."""
        where, params = ["1"], []
        if manager is not None:
            where.append("manager = ?")
            params.append(manager)
        if verified is not None:
            where.append("verified = ?")
            params.append(int(verified))
        return self._rows(f"SELECT * FROM archive_copies WHERE {' AND '.join(where)} "
                          "ORDER BY created_at DESC, stored_at DESC", params, COPY_COLUMNS)

    def latest_verified(self, manager: str) -> dict | None:
        """The newest verified copy of `manager`'s snapshots (what `restore latest` means)."""
        rows = self.list_copies(manager, verified=True)
        return rows[0] if rows else None

    def mark_verified(self, manager: str, snapshot_id: str, ok: bool, error: str = "") -> dict:
        """Record the result of checking a copy; NotFound if there is no such copy."""
        rows = self._write("UPDATE archive_copies SET verified = ?, verified_at = ?, error = ? "
                           "WHERE manager = ? AND snapshot_id = ? RETURNING *",
                           [int(ok), self._now(), error, manager, snapshot_id], COPY_COLUMNS)
        if not rows:
            raise NotFound(f"no archive copy of snapshot {snapshot_id} of {manager}")
        return rows[0]

    def delete_copy(self, manager: str, snapshot_id: str) -> bool:
        """Forget an archive copy; False if there was none."""
        return bool(self._write("DELETE FROM archive_copies WHERE manager = ? AND snapshot_id = ? "
                                "RETURNING *", [manager, snapshot_id], COPY_COLUMNS))

    # --- scheduled runs and marks ----------------------------------------------------------------

    def claim_run(self, manager: str, day: str, owner: str, stale_after: float | None = None) -> bool:
        """True for the one caller that may run (manager, day); `stale_after` s lets a dead claim be taken."""
        now = self._now()
        if self._write("INSERT INTO schedule_runs (manager, day, state, owner, claimed_at) "
                       "VALUES (?, ?, 'claimed', ?, ?) ON CONFLICT(manager, day) DO NOTHING RETURNING *",
                       [manager, day, owner, now], RUN_COLUMNS):
            return True
        if stale_after is None:
            return False
        cutoff = iso(self.clock.time() - stale_after)
        return bool(self._write("UPDATE schedule_runs SET owner = ?, claimed_at = ? WHERE manager = ? "
                                "AND day = ? AND state = 'claimed' AND claimed_at < ? RETURNING *",
                                [owner, now, manager, day, cutoff], RUN_COLUMNS))

    def finish_run(self, manager: str, day: str, state: str, **fields: Any) -> dict | None:
        """Close a claimed run (succeeded | failed | skipped); None if it was not claimed (or not by `owner`)."""
        if state not in RUN_STATES[1:]:
            raise ValueError(f"a run finishes as succeeded, failed or skipped, not {state!r}")
        owner = fields.pop("owner", None)
        values = _encode({**fields, "state": state, "finished_at": self._now()}, RUN_COLUMNS,
                         forbid=("manager", "day", "claimed_at"))
        sql = (f"UPDATE schedule_runs SET {', '.join(f'{k} = ?' for k in values)} "
               "WHERE manager = ? AND day = ? AND state = 'claimed'"
               + (" AND owner = ?" if owner else "") + " RETURNING *")
        rows = self._write(sql, [*values.values(), manager, day, *([owner] if owner else [])], RUN_COLUMNS)
        return rows[0] if rows else None

    def get_run(self, manager: str, day: str) -> dict | None:
        """The run of (manager, day), or None."""
        rows = self._rows("SELECT * FROM schedule_runs WHERE manager = ? AND day = ?", [manager, day],
                          RUN_COLUMNS)
        return rows[0] if rows else None

    def list_runs(self, manager: str | None = None, since_day: str | None = None) -> list[dict]:
        """Runs, newest day first."""
        where, params = ["1"], []
        if manager is not None:
            where.append("manager = ?")
            params.append(manager)
        if since_day is not None:
            where.append("day >= ?")
            params.append(since_day)
        return self._rows(f"SELECT * FROM schedule_runs WHERE {' AND '.join(where)} "
                          "ORDER BY day DESC, manager", params, RUN_COLUMNS)

    def get_mark(self, key: str) -> str | None:
        """The value of a mark, or None."""
        rows = self._rows("SELECT * FROM marks WHERE key = ?", [key], MARK_COLUMNS)
        return rows[0]["value"] if rows else None

    def set_mark(self, key: str, value: str = "") -> None:
        """Set a mark, replacing any value."""
        self._write("INSERT INTO marks (key, value, set_at) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE "
                    "SET value = excluded.value, set_at = excluded.set_at RETURNING *",
                    [key, value, self._now()], MARK_COLUMNS)

    def claim_mark(self, key: str, value: str = "") -> bool:
        """Set a mark only if it is not set; True for the one caller that set it."""
        return bool(self._write("INSERT INTO marks (key, value, set_at) VALUES (?, ?, ?) "
                                "ON CONFLICT(key) DO NOTHING RETURNING *",
                                [key, value, self._now()], MARK_COLUMNS))


# --- helpers -------------------------------------------------------------------------------------


def _connect(path: str) -> sqlite_utils.Database:
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        conn.execute("PRAGMA synchronous = NORMAL")  # with WAL: durable at checkpoints, never corrupt
        conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT}")  # fewer fsyncs: +45% appends
        conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")  # a no-op unless the file is new
        if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
        return sqlite_utils.Database(conn, execute_plugins=False)
    except BaseException:
        conn.close()
        raise


def _create_v1(db: sqlite_utils.Database) -> None:
    def table(name: str, columns: dict[str, str], pk: str | tuple[str, ...]) -> None:
        types = {c: int if k in (_B, _I) else str for c, k in columns.items()}
        defaults = {c: {_J: "{}", _B: 0, _I: 0}.get(k, "") for c, k in columns.items()}
        db[name].create(types, pk=pk, not_null=set(columns), defaults=defaults, if_not_exists=True)

    table("operations", OPERATION_COLUMNS, "id")
    db["operations"].create_index(["state"], index_name="operations_state", if_not_exists=True)
    # The manager lock: at most one unfinished exclusive operation per manager, enforced by SQLite itself.
    db.execute("CREATE UNIQUE INDEX IF NOT EXISTS operations_one_exclusive_per_manager ON operations "
               f"(manager) WHERE exclusive = 1 AND state IN {_UNFINISHED_SQL}")
    table("archive_copies", COPY_COLUMNS, ("manager", "snapshot_id"))
    table("schedule_runs", RUN_COLUMNS, ("manager", "day"))
    table("marks", MARK_COLUMNS, "key")
    auditlog.create_schema(db)


_MIGRATIONS = (_create_v1,)  # append a function per schema change; never edit a released one


def _migrate(db: sqlite_utils.Database) -> None:
    """Bring the schema up to date in one BEGIN IMMEDIATE (two processes may open the file at once)."""
    db.conn.execute("BEGIN IMMEDIATE")
    db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_at TEXT)")
    current = db.conn.execute("SELECT max(version) FROM schema_version").fetchone()[0] or 0
    if current > len(_MIGRATIONS):
        raise BotError(f"the bot's database has schema version {current}, newer than this cfy-bot "
                       f"understands ({len(_MIGRATIONS)}); upgrade cfy-bot")
    for version in range(current + 1, len(_MIGRATIONS) + 1):
        _MIGRATIONS[version - 1](db)
        db.conn.execute("INSERT INTO schema_version VALUES (?, ?)", (version, iso(datetime.now(UTC))))
    db.conn.execute("COMMIT")


def _strings(values: str | Iterable[str]) -> tuple[str, ...]:
    return (values,) if isinstance(values, str) else tuple(values)


def _states(states: str | Iterable[str]) -> tuple[str, ...]:
    result = _strings(states)
    for state in result:
        _check_state(state)
    return result


def _check_state(state: str) -> None:
    if state not in STATES:
        raise ValueError(f"unknown operation state {state!r}")


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


def _translated(exc: sqlite3.Error, path: str) -> BotError:
    """One SQLite error as a BotError a person can act on."""
    text = str(exc)
    if "locked" in text or "busy" in text:
        return BotError(f"the bot's database {path} is busy: another process held it for more than "
                        f"{BUSY_TIMEOUT_S:.0f} s; try again")
    if isinstance(exc, sqlite3.IntegrityError):
        return BotError(f"the bot's database refused a change: {text}")
    if "not a database" in text or "malformed" in text:
        return BotError(f"the bot's database {path} is damaged or is not a SQLite file: {text}")
    return BotError(f"cannot use the bot's database {path}: {text}")
