"""The audit log: an append-only, hash-chained record of who did what (the chain's format and its SQL).

Each row's `hash` is sha256 of the canonical JSON (sorted keys, no spaces, UTF-8) of every other field of
the row, `seq` and `prev_hash` included, with `detail` as a JSON object; the first row's `prev_hash` is 64
zeros. A one-row `audit_head` table (last seq and hash), written in the same transaction as each row, makes
a truncated tail visible, which the chain alone cannot show.

With `BOT_AUDIT_KEY` set, a row's hash is instead `hmac:` + HMAC-SHA256 under the key of the same text, so
someone who can write the file but does not know the key cannot recompute the chain after changing it. The
prefix says which kind each row is: rows written before the key was set stay plain and are still verified
(and reported as such); once a keyed row is written, every later row must be keyed too. Without the key,
verify checks plain rows and the links between all rows, and says that keyed rows need the key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from bot.errors import BotError
from bot.redact import redact_url_secrets
from bot.store.ddl import create_index, create_table

log = logging.getLogger("cfy_bot.audit")

ZERO_HASH = "0" * 64
KEYED = "hmac:"  # the prefix of a keyed row's hash
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
    plain_rows: int = 0  # rows hashed with plain sha256 (written without BOT_AUDIT_KEY)
    keyed_rows: int = 0  # rows whose hash is an HMAC under BOT_AUDIT_KEY
    unchecked_rows: int = 0  # keyed rows whose content could not be checked (no key given)
    expected_head: str = ""  # "SEQ:HASH" that was asked to be found, when given
    lost: bool = False  # rows are gone that the store shows existed (where in the chain is unknown)

    @property
    def mode(self) -> str:
        """Which kinds of rows the log holds, in words."""
        if self.keyed_rows and self.plain_rows:
            return (f"rows 1-{self.plain_rows} plain sha256 (written before BOT_AUDIT_KEY was set: a writer of the "
                    f"file could rewrite them unseen), rows {self.plain_rows + 1}-{self.rows} HMAC-SHA256 under "
                    "BOT_AUDIT_KEY")
        if self.keyed_rows:
            return "every row HMAC-SHA256 under BOT_AUDIT_KEY"
        if self.plain_rows:
            return ("every row plain sha256 (no BOT_AUDIT_KEY when written: a writer of the file could rewrite "
                    "them unseen)")
        return "empty"


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, UTF-8 text: the one serialisation that is hashed and stored."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False,
                      default=str)


def row_hash(seq: int, at: str, actor: str, transport: str, channel: str, manager: str, command: str,
             event: str, operation_id: str, execution_id: str, detail_json: str, prev_hash: str, *,
             key: bytes | None = None) -> str:
    """sha256 of canonical_json(row without hash), or `hmac:` + its HMAC-SHA256 under `key`.

    Spelled out because it runs a million times in verify.
    """
    text = (
        f'{{"actor":{_enc(actor)},"at":{_enc(at)},"channel":{_enc(channel)},"command":{_enc(command)},'
        f'"detail":{detail_json},"event":{_enc(event)},"execution_id":{_enc(execution_id)},'
        f'"manager":{_enc(manager)},"operation_id":{_enc(operation_id)},"prev_hash":{_enc(prev_hash)},'
        f'"seq":{int(seq)},"transport":{_enc(transport)}}}'
    ).encode()
    if key:
        return KEYED + hmac.digest(key, text, "sha256").hex()
    return hashlib.sha256(text).hexdigest()


def audit_key(text: str) -> bytes | None:
    """The HMAC key from BOT_AUDIT_KEY's text (None when unset)."""
    return text.encode("utf-8") if text else None


def parse_head(text: str) -> tuple[int, str]:
    """`SEQ:HASH` (as `audit verify` and the daily summary print it) → (seq, hash); ValueError otherwise."""
    seq, sep, digest = (text or "").strip().partition(":")
    plain = digest.removeprefix(KEYED)
    if not sep or not seq.isascii() or not seq.isdigit() or int(seq) < 1 or len(plain) != 64 \
            or any(c not in "0123456789abcdef" for c in plain):
        raise ValueError(f"--expect-head must be SEQ:HASH as `cfy-bot audit verify` prints it "
                         f"(such as 1234:hmac:3f2a…, 64 hex digits), got {text!r}")
    return int(seq), digest


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
        if not text.isascii():
            text = storable(text)
        unurled = redact_url_secrets(text)  # user:password@ and signed queries in a URL someone typed
        if unurled != text:
            changed, text = True, unurled
        for secret in inside:
            if secret in text:
                changed, text = True, text.replace(secret, REDACTED)
        return text

    return clean(value), changed


def storable(text: str) -> str:
    """`text` as valid UTF-8: a lone surrogate (a byte that was not UTF-8) is kept visibly as `\\udce9`."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def append(conn: sqlite3.Connection, now: Callable[[], str], secrets: Iterable[str], event: str,
           fields: dict[str, str], detail: dict[str, Any] | None, key: bytes | None = None) -> dict[str, Any]:
    """Append one row in its own BEGIN IMMEDIATE transaction (keyed when `key`); returns the row as stored."""
    if not event:
        raise ValueError("an audit row needs an event")
    if detail is not None and not isinstance(detail, dict):
        raise TypeError(f"audit detail must be a dict, not {type(detail).__name__}")
    fields = {name: "" if value is None else str(value) for name, value in fields.items()}
    fields, scrubbed_fields = scrub_secrets(fields, secrets)
    detail, scrubbed_detail = scrub_secrets(detail, secrets)
    if scrubbed_fields or scrubbed_detail:
        log.warning("a secret was scrubbed from an audit %s row before it was written", event)
    detail_json = canonical_json(detail or {})
    conn.execute("BEGIN IMMEDIATE")
    try:
        head = conn.execute(_HEAD).fetchone()
        if head is None and conn.execute("SELECT 1 FROM audit LIMIT 1").fetchone():
            raise BotError("the audit log's head record is missing (the file was altered); run the audit verify")
        seq, prev = (head[0] + 1, head[1]) if head else (1, ZERO_HASH)
        values = (seq, now(), fields["actor"], fields["transport"], fields["channel"], fields["manager"],
                  fields["command"], event, fields["operation_id"], fields["execution_id"], detail_json, prev)
        if key is None and prev.startswith(KEYED):
            raise BotError("the audit log's rows are keyed with BOT_AUDIT_KEY, which is not set here: set it to "
                           "write to this log")
        digest = row_hash(*values, key=key)
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


def verify(conn: sqlite3.Connection, key: bytes | None = None,
           expect: tuple[int, str] | None = None) -> AuditVerdict:
    """Walk the chain oldest first in one read snapshot, then compare its end with the head record.

    `key` checks keyed rows (without it their content cannot be checked, only their links); `expect` is a
    head seen before (seq, hash) that must still be in the log, unchanged.
    """
    conn.execute("BEGIN")  # rows and head from the same snapshot, even while others append
    cursor = None
    walk = _Walk(key, expect)
    try:
        head = conn.execute(_HEAD).fetchone()
        cursor = conn.execute(f"SELECT {_COLUMNS} FROM audit ORDER BY seq")
        for row in cursor:
            bad = walk.check(row)
            if bad:
                return walk.verdict(False, bad[0], bad[1])
        return walk.finish(head)
    finally:
        if cursor is not None:
            cursor.close()
        conn.execute("COMMIT")


class _Walk:
    """The state of one walk down the chain: counts of each kind of row, the last hash, the expected head."""

    def __init__(self, key: bytes | None, expect: tuple[int, str] | None) -> None:
        self.key, self.expect = key, expect
        self.rows, self.prev = 0, ZERO_HASH
        self.plain = self.keyed = self.unchecked = 0
        self.expect_seen = False

    def verdict(self, ok: bool, first_bad: int | None, reason: str) -> AuditVerdict:
        shown = f"{self.expect[0]}:{self.expect[1]}" if self.expect else ""
        return AuditVerdict(ok, self.rows, first_bad, reason, self.prev, self.plain, self.keyed, self.unchecked,
                            shown)

    def check(self, row: tuple[Any, ...]) -> tuple[int, str] | None:
        expected, seq, digest = self.rows + 1, row[0], row[12]
        if seq != expected:
            return expected, f"row {expected} is missing (the next row is {seq})"
        if row[11] != self.prev:
            return seq, f"row {seq}'s prev_hash does not match row {seq - 1}'s hash (one of them was altered)"
        keyed = isinstance(digest, str) and digest.startswith(KEYED)
        if self.keyed and not keyed:
            return seq, (f"row {seq} is not keyed though the rows before it are (a row written without "
                         "BOT_AUDIT_KEY, or one rewritten by someone who does not know it)")
        if keyed and self.key is None:
            self.unchecked += 1
        else:
            try:
                computed = row_hash(*row[:12], key=self.key if keyed else None)
            except (TypeError, ValueError):
                return seq, f"row {seq} holds a value of the wrong type"
            if computed != digest:
                if keyed:
                    return seq, (f"row {seq} was altered: its HMAC does not match its content under BOT_AUDIT_KEY "
                                 "(or BOT_AUDIT_KEY is not the key it was written with)")
                return seq, f"row {seq} was altered: its hash does not match its content"
        if keyed:
            self.keyed += 1
        else:
            self.plain += 1
        if self.expect and seq == self.expect[0]:
            if digest != self.expect[1]:
                return seq, f"row {seq} is not the one seen before: its hash is now {digest}, not {self.expect[1]}"
            self.expect_seen = True
        self.rows, self.prev = seq, digest
        return None

    def finish(self, head: tuple[Any, ...] | None) -> AuditVerdict:
        rows, last_hash = self.rows, self.prev
        if head is None:
            if rows:
                return self.verdict(False, rows, "the head record is missing: the end of the log cannot be "
                                    "vouched for")
            bad = self._expected_missing()
            return bad or self.verdict(True, None, "empty")
        head_seq, head_hash = head
        if head_seq > rows:
            return self.verdict(False, rows + 1, f"rows {rows + 1}..{head_seq} are missing from the end (truncated)")
        if head_seq < rows:
            return self.verdict(False, head_seq + 1, f"rows after {head_seq} were added outside the bot")
        if head_hash != last_hash:
            return self.verdict(False, rows, f"row {rows} does not match the head record")
        bad = self._expected_missing()
        if bad:
            return bad
        if self.key is not None and rows and not self.keyed:
            return self.verdict(False, None, "BOT_AUDIT_KEY is set but no row is keyed under it: the log was written "
                                "without the key, or rewritten by someone who does not know it (the bot keys the "
                                "log when it starts with the key)")
        if self.unchecked:
            return self.verdict(False, None, f"{self.unchecked} rows are keyed with BOT_AUDIT_KEY, which is not "
                                "set here: their links are intact but their content cannot be checked without it")
        return self.verdict(True, None, f"{rows} rows, chain intact")

    def _expected_missing(self) -> AuditVerdict | None:
        if self.expect and not self.expect_seen:
            return self.verdict(False, self.expect[0], f"row {self.expect[0]} (the head seen before) is missing: "
                                f"the log has {self.rows} rows")
        return None


def unaudited_operations(conn: sqlite3.Connection) -> tuple[int, str]:
    """How many of the store's operations no audit row names, and the oldest one: every operation is audited
    from its creation, so with a keyed log (which cannot be rewritten to name them) their rows were deleted."""
    try:
        row = conn.execute(
            "SELECT COUNT(*), MIN(id || ' of ' || created_at) FROM operations WHERE id NOT IN "
            "(SELECT operation_id FROM audit WHERE operation_id != '')").fetchone()
    except sqlite3.OperationalError:  # a store without operations (an audit-only file)
        return 0, ""
    return int(row[0]), str(row[1] or "")


def key_problem(conn: sqlite3.Connection, key: bytes | None) -> str:
    """Start-up check of BOT_AUDIT_KEY against the newest row: "" when it fits, else what is wrong."""
    row = conn.execute(f"SELECT {_COLUMNS} FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    if row is None or not str(row[12]).startswith(KEYED):
        return ""
    if key is None:
        return ("the audit log's rows are HMAC-keyed: set BOT_AUDIT_KEY to the key they were written with "
                "(without it the bot cannot add rows that `audit verify` accepts)")
    try:
        fits = row_hash(*row[:12], key=key) == row[12]
    except (TypeError, ValueError):
        fits = False
    if not fits:
        return (f"BOT_AUDIT_KEY is not the key the audit log was written with (row {row[0]} does not match "
                "under it), or that row was altered; run `cfy-bot audit verify`")
    return ""


def head(conn: sqlite3.Connection) -> tuple[int, str]:
    """The head record as written (seq of the last row, its hash); (0, zeros) for an empty log. Not verified."""
    row = conn.execute(_HEAD).fetchone()
    return (int(row[0]), str(row[1])) if row else (0, ZERO_HASH)


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
