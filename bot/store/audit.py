"""The audit log: an append-only, hash-chained record of who did what (the chain's format and its SQL).

Each row's `hash` is sha256 of the canonical JSON (sorted keys, no spaces, UTF-8) of every other field of
the row, `seq` and `prev_hash` included, with `detail` as a JSON object; the first row's `prev_hash` is 64
zeros. A one-row `audit_head` table (last seq and hash), written in the same transaction as each row, makes
a truncated tail visible, which the chain alone cannot show.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from bot.errors import BotError
from bot.store.ddl import create_index, create_table

log = logging.getLogger("cfy_bot.audit")

ZERO_HASH = "0" * 64
EVENTS = (
    "invoke", "usage_error", "denied", "gate_shown", "gate_answered", "approved",
    "manager_call", "step", "outcome", "schedule",
)  # the usual events; others are accepted
FIELDS = (
    "seq", "at", "actor", "transport", "channel", "manager", "command", "event",
    "operation_id", "execution_id", "detail", "prev_hash", "hash",
)
_COLUMNS = ", ".join(FIELDS)
_INSERT = f"INSERT INTO audit ({_COLUMNS}) VALUES ({', '.join('?' * len(FIELDS))})"
_HEAD = "SELECT seq, hash FROM audit_head WHERE id = 1"
_SET_HEAD = (
    "INSERT INTO audit_head (id, seq, hash) VALUES (1, ?, ?) "
    "ON CONFLICT(id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash"
)
_NAMESPACES = ("slack", "shell", "system")
_MIN_SUBSTRING_SECRET = 8  # shorter secrets (a password like "admin") are scrubbed only as whole values
_enc = json.encoder.encode_basestring  # the C escaper json.dumps(ensure_ascii=False) uses for a str


@dataclass(frozen=True)
class AuditVerdict:
    """The result of checking the chain: `first_bad_seq` names the first row that is wrong or missing.

    `rows` counts the rows found good before the first problem (all rows when `ok`).
    """

    ok: bool
    rows: int
    first_bad_seq: int | None = None
    reason: str = ""
    last_hash: str = ""  # worth copying somewhere else: it anchors everything written so far


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, UTF-8 text: the one serialisation that is hashed and stored."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False,
                      default=str)


def row_hash(seq: int, at: str, actor: str, transport: str, channel: str, manager: str, command: str,
             event: str, operation_id: str, execution_id: str, detail_json: str, prev_hash: str) -> str:
    """sha256 of canonical_json(row without hash); spelled out because it runs a million times in verify."""
    text = (
        f'{{"actor":{_enc(actor)},"at":{_enc(at)},"channel":{_enc(channel)},"command":{_enc(command)},'
        f'"detail":{detail_json},"event":{_enc(event)},"execution_id":{_enc(execution_id)},'
        f'"manager":{_enc(manager)},"operation_id":{_enc(operation_id)},"prev_hash":{_enc(prev_hash)},'
        f'"seq":{int(seq)},"transport":{_enc(transport)}}}'
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def create_schema(db: sqlite3.Connection) -> None:
    """Create the audit tables, indexes and append-only triggers."""
    create_table(db, "audit", {name: int if name == "seq" else str for name in FIELDS}, pk="seq",
                 defaults={n: "" for n in FIELDS if n != "seq"})
    # Newest-first queries order by (at, seq); every index ends in `at` and implicitly in rowid = seq.
    # Each index costs a page write per append (a third of the throughput for the first few), so only
    # the filters people use get one; event and operation_id are filtered while walking the `at` index.
    for columns in (["at"], ["actor", "at"], ["command", "at"], ["manager", "at"]):
        create_index(db, "audit", columns, "audit_" + "_".join(columns))
    create_table(db, "audit_head", {"id": int, "seq": int, "hash": str}, pk="id", not_null=False)
    for verb in ("UPDATE", "DELETE"):
        db.execute(f"CREATE TRIGGER IF NOT EXISTS audit_no_{verb.lower()} BEFORE {verb} ON audit "
                   "BEGIN SELECT RAISE(ABORT, 'audit rows are append-only'); END")


REDACTED = "[redacted]"


def scrub_secrets(value: Any, secrets: Iterable[str]) -> tuple[Any, bool]:
    """`value` with every configured secret replaced by "[redacted]", and whether anything was replaced.

    A secret is replaced wherever it is a whole value or key; a long one also inside longer text. Scrubbing
    rather than refusing keeps the row: an audit log that drops an approval because the approver's name equals
    a short password would lose exactly what it is for.
    """
    whole = {s for s in secrets if s}
    inside = sorted((s for s in whole if len(s) >= _MIN_SUBSTRING_SECRET), key=len, reverse=True)
    changed = False

    def clean(item: Any) -> Any:
        nonlocal changed
        if isinstance(item, dict):
            return {clean(str(k)): clean(v) for k, v in item.items()}
        if isinstance(item, (list, tuple, set)):
            return [clean(v) for v in item]
        if item is None or isinstance(item, bool):
            return item
        text = str(item)
        if text in whole:
            changed = True
            return REDACTED
        if not isinstance(item, str):
            return item
        for secret in inside:
            if secret in text:
                changed, text = True, text.replace(secret, REDACTED)
        return text

    return clean(value), changed


def append(conn: sqlite3.Connection, now: Callable[[], str], secrets: Iterable[str], event: str,
           fields: dict[str, str], detail: dict[str, Any] | None) -> dict[str, Any]:
    """Append one row in its own BEGIN IMMEDIATE transaction; returns the row as stored."""
    if not event:
        raise ValueError("an audit row needs an event")
    if detail is not None and not isinstance(detail, dict):
        raise TypeError(f"audit detail must be a dict, not {type(detail).__name__}")
    fields = {name: "" if value is None else str(value) for name, value in fields.items()}
    if secrets:
        fields, scrubbed_fields = scrub_secrets(fields, secrets)
        detail, scrubbed_detail = scrub_secrets(detail, secrets)
        if scrubbed_fields or scrubbed_detail:
            log.warning("a configured secret was scrubbed from an audit %s row before it was written", event)
    detail_json = canonical_json(detail or {})
    conn.execute("BEGIN IMMEDIATE")
    try:
        head = conn.execute(_HEAD).fetchone()
        if head is None and conn.execute("SELECT 1 FROM audit LIMIT 1").fetchone():
            raise BotError("the audit log's head record is missing (the file was altered); run the audit verify")
        seq, prev = (head[0] + 1, head[1]) if head else (1, ZERO_HASH)
        values = (seq, now(), fields["actor"], fields["transport"], fields["channel"], fields["manager"],
                  fields["command"], event, fields["operation_id"], fields["execution_id"], detail_json, prev)
        digest = row_hash(*values)
        try:
            conn.execute(_INSERT, (*values, digest))
        except sqlite3.IntegrityError as exc:
            raise BotError(f"the audit log has rows after its head record {seq - 1} (the file was altered "
                           "outside the bot); run the audit verify") from exc
        conn.execute(_SET_HEAD, (seq, digest))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    row = dict(zip(FIELDS, (*values, digest), strict=True))
    row["detail"] = json.loads(detail_json)
    return row


def verify(conn: sqlite3.Connection) -> AuditVerdict:
    """Walk the chain oldest first in one read snapshot, then compare its end with the head record."""
    conn.execute("BEGIN")  # rows and head from the same snapshot, even while others append
    cursor = None
    try:
        head = conn.execute(_HEAD).fetchone()
        rows, prev = 0, ZERO_HASH
        cursor = conn.execute(f"SELECT {_COLUMNS} FROM audit ORDER BY seq")
        for row in cursor:
            bad = _check_row(row, rows + 1, prev)
            if bad:
                return AuditVerdict(False, rows, bad[0], bad[1], prev)
            rows, prev = rows + 1, row[12]
        return _check_head(head, rows, prev)
    finally:
        if cursor is not None:
            cursor.close()
        conn.execute("COMMIT")


def _check_row(row: tuple[Any, ...], expected: int, prev: str) -> tuple[int, str] | None:
    seq = row[0]
    if seq != expected:
        return expected, f"row {expected} is missing (the next row is {seq})"
    if row[11] != prev:
        return seq, f"row {seq}'s prev_hash does not match row {seq - 1}'s hash (one of them was altered)"
    try:
        digest = row_hash(*row[:12])
    except (TypeError, ValueError):
        return seq, f"row {seq} holds a value of the wrong type"
    if digest != row[12]:
        return seq, f"row {seq} was altered: its hash does not match its content"
    return None


def _check_head(head: tuple[Any, ...] | None, rows: int, last_hash: str) -> AuditVerdict:
    if head is None:
        if rows:
            return AuditVerdict(False, rows, rows, "the head record is missing: the end of the log cannot be "
                                "vouched for", last_hash)
        return AuditVerdict(True, 0, None, "empty", last_hash)
    head_seq, head_hash = head
    if head_seq > rows:
        return AuditVerdict(False, rows, rows + 1,
                            f"rows {rows + 1}..{head_seq} are missing from the end (truncated)", last_hash)
    if head_seq < rows:
        return AuditVerdict(False, rows, head_seq + 1,
                            f"rows after {head_seq} were added outside the bot", last_hash)
    if head_hash != last_hash:
        return AuditVerdict(False, rows, rows, f"row {rows} does not match the head record", last_hash)
    return AuditVerdict(True, rows, None, f"{rows} rows, chain intact", last_hash)


def query(db: sqlite3.Connection, *, user: str | None, command: str | None, manager: str | None, since: str | None,
          until: str | None, event: str | None, operation_id: str | None, limit: int) -> list[dict[str, Any]]:
    """Filtered rows, newest first (since/until already ISO strings)."""
    where, params = [], []
    if user:
        # A bare id ("U123", "alice") matches it in every actor namespace.
        ids = [user] if ":" in user else [user, *(f"{ns}:{user}" for ns in _NAMESPACES)]
        where.append(f"actor IN ({', '.join('?' * len(ids))})")
        params += ids
    for column, value in (("command", command), ("manager", manager), ("event", event),
                          ("operation_id", operation_id)):
        if value:
            where.append(f"{column} = ?")
            params.append(value)
    if since:
        where.append("at >= ?")
        params.append(since)
    if until:
        where.append("at < ?")
        params.append(until)
    sql = f"SELECT {_COLUMNS} FROM audit {'WHERE ' + ' AND '.join(where) if where else ''} "
    sql += "ORDER BY at DESC, seq DESC LIMIT ?"
    cursor = db.execute(sql, [*params, int(limit)])
    names = [d[0] for d in cursor.description or ()]
    return [_decoded(dict(zip(names, row, strict=True))) for row in cursor]


def iterate(conn: sqlite3.Connection, since: str | None) -> Iterator[dict[str, Any]]:
    """Rows oldest first, streamed from a cursor (the caller owns `conn` for the iterator's life)."""
    # With `since`, walk the `at` index (rows come in time order, without a sort of the whole table).
    sql = f"SELECT {_COLUMNS} FROM audit " + ("WHERE at >= ? ORDER BY at, seq" if since else "ORDER BY seq")
    cursor = conn.execute(sql, (since,) if since else ())
    try:
        for row in cursor:
            yield _decoded(dict(zip(FIELDS, row, strict=True)))
    finally:
        cursor.close()  # an abandoned export must not leave a read snapshot open on a pooled connection


def _decoded(row: dict[str, Any]) -> dict[str, Any]:
    row["detail"] = json.loads(row["detail"]) if row["detail"] else {}
    return row
