"""The bot's memory: one SQLite file for operations, the audit chain, the archive catalog and schedule marks.

This package is the only part of the bot that knows SQLite. Connections are pooled (a thread borrows one
per call, so short-lived threads leak nothing); every multi-statement change runs in `BEGIN IMMEDIATE`,
single statements are atomic on their own, so several threads and several bot processes can share the file.
Timestamps are ISO-8601 UTC strings (`2026-11-29T02:00:00.000000Z`).

    base.py        _StoreBase: the connection pool, SQLite's settings and errors, the row helpers
    schema.py      the tables' columns, the operation states, and the migrations run at open
    codec.py       iso() and how values are encoded into rows and decoded out of them
    operations.py  operations: create, compare-and-set transitions, the manager lock, gate expiry
    catalog.py     the archive catalog: snapshot copies stored off the manager and their verification
    drills.py      restore drill results
    runs.py        scheduled runs (one claim per manager and day) and marks
    auditing.py    the audit methods of Store, each a call into audit.py
    audit.py       the audit log's hash chain: its format, append, verify, query and export

`Store` is assembled from the groups of methods above and is the one entry point.
"""

from bot.store.audit import AuditVerdict
from bot.store.auditing import _AuditCalls
from bot.store.base import PAGE_SIZE, WAL_AUTOCHECKPOINT
from bot.store.catalog import _CatalogCalls
from bot.store.drills import _DrillCalls
from bot.store.codec import iso
from bot.store.operations import _OperationCalls
from bot.store.runs import _RunCalls
from bot.store.schema import FINAL_STATES, STATES, UNFINISHED_STATES

__all__ = [
    "AuditVerdict", "Store", "STATES", "FINAL_STATES", "UNFINISHED_STATES", "iso", "PAGE_SIZE", "WAL_AUTOCHECKPOINT",
]


class Store(_OperationCalls, _CatalogCalls, _RunCalls, _AuditCalls, _DrillCalls):
    """Operations, audit log, archive catalog and schedule runs in one SQLite file."""
