"""The store's connections: a small pool (a thread borrows one per call), SQLite's settings, and its errors.

Every multi-statement change runs in `BEGIN IMMEDIATE`, single statements are atomic on their own, so several
threads and several bot processes can share the file. A forked process never touches its parent's connections.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

from bot.clock import Clock
from bot.errors import BotError
from bot.store.codec import _decode, iso
from bot.store.schema import _migrate

BUSY_TIMEOUT_S = 15.0
# Every commit writes each page it touched whole into the WAL: an audit append touches ~7 (row, 4 index
# leaves, head). 1 KB pages write ~13 KB per append instead of ~36 KB, which at a million rows is ~40%
# more appends per second (page size only applies when the file is created).
PAGE_SIZE = 1024
WAL_AUTOCHECKPOINT = 4000  # pages between checkpoints, the only fsyncs under synchronous=NORMAL
_POOL_SIZE = 8


class _StoreBase:
    """One SQLite file, its connection pool, and the row helpers every group of tables uses."""

    def __init__(self, path: str | Path, clock: Clock | None = None) -> None:
        self.path = str(path)
        self.clock = clock or Clock()
        self.secrets: set[str] = set()  # filled by the app at start-up; append_audit refuses them
        self.audit_key: bytes | None = None  # BOT_AUDIT_KEY, set by the app: audit rows are HMAC-keyed under it
        self._lock = threading.Lock()
        self._idle: list[sqlite3.Connection] = []
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
            db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _borrow(self) -> Iterator[sqlite3.Connection]:
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

    def _give_back(self, db: sqlite3.Connection) -> None:
        try:
            if db.in_transaction:
                db.execute("ROLLBACK")
        except sqlite3.Error:
            db.close()
            return
        with self._lock:
            if not self._closed and self._pid == os.getpid() and len(self._idle) < _POOL_SIZE:
                self._idle.append(db)
                return
        db.close()

    def _now(self) -> str:
        return iso(self.clock.now())

    def _rows(self, sql: str, params: Iterable[Any], columns: dict[str, str]) -> list[dict[str, Any]]:
        with self._borrow() as db:
            return [_decode(row, columns) for row in rows_of(db.execute(sql, list(params)))]

    def _write(self, sql: str, params: Iterable[Any], columns: dict[str, str]) -> list[dict[str, Any]]:
        """Run one write statement (`… RETURNING *`); it is atomic by itself."""
        with self._borrow() as db:
            cursor = db.execute(sql, list(params))
            names = [d[0] for d in cursor.description or ()]
            # fetchall: a RETURNING statement only finishes, and commits, once it has been read to the end
            return [_decode(dict(zip(names, row, strict=True)), columns) for row in cursor.fetchall()]


# --- helpers -------------------------------------------------------------------------------------


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        conn.execute("PRAGMA synchronous = NORMAL")  # with WAL: durable at checkpoints, never corrupt
        conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT}")  # fewer fsyncs: +45% appends
        conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")  # a no-op unless the file is new
        if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
        return conn
    except BaseException:
        conn.close()
        raise


def rows_of(cursor: sqlite3.Cursor) -> Iterator[dict[str, Any]]:
    """A query's rows as dicts of column name to value."""
    names = [d[0] for d in cursor.description or ()]
    for row in cursor:
        yield dict(zip(names, row, strict=True))


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
