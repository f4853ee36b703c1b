"""`cfy-bot audit verify | export`: check the audit chain, stream its rows; and the `--since T` rule.

Both only read: the store is opened on an existing file (never created here), verify walks the chain in one
read snapshot, export streams rows oldest first from a cursor, so memory stays flat for any size of log.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, TextIO

from bot.core import count, parse_since

# The columns of an export, in the chain's own order (bot/store/audit.py FIELDS); `detail` is canonical JSON.
COLUMNS = ("seq", "at", "actor", "transport", "channel", "manager", "command", "event", "operation_id",
           "execution_id", "detail", "prev_hash", "hash")


def run_audit(args: argparse.Namespace, settings: Any, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """`cfy-bot audit verify|export`: 0 when good, 1 when the chain is broken or missing, 2 for bad input."""
    out, err = out or sys.stdout, err or sys.stderr
    path = settings.db_path
    if not os.path.isfile(path):
        print(f"cfy-bot audit: no database at {path} (set BOT_DB_PATH or BOT_DATA_DIR)", file=err)
        return 1
    if args.audit_cmd == "export":
        try:
            since = parse_since(args.since, datetime.now(UTC)) if args.since else None
        except ValueError as exc:
            print(f"cfy-bot audit export: {exc}", file=err)
            return 2
        try:
            return _with_store(path, lambda store: export(store.iter_audit(since), args.format, out))
        except BrokenPipeError:  # the reader stopped early (`| head`): not an error
            if out is sys.stdout:
                _quiet_stdout()
            return 0
    expect = None
    if getattr(args, "expect_head", None):
        from bot.store.audit import parse_head

        try:
            expect = parse_head(args.expect_head)
        except ValueError as exc:
            print(f"cfy-bot audit verify: {exc}", file=err)
            return 2
    key = getattr(settings, "audit_key", "")
    return _with_store(path, lambda store: verify(store, out, expect), key)


def _with_store(path: str, work: Any, key: str = "") -> int:
    from bot.store import Store
    from bot.store.audit import audit_key

    store = Store(path)
    store.audit_key = audit_key(key)
    try:
        return int(work(store))
    finally:
        store.close()


def verify(store: Any, out: TextIO, expect: tuple[int, str] | None = None) -> int:
    """Print the verdict; 0, the row count and the head when the chain is intact, 1 naming the first bad row.

    The head (`SEQ:HASH`) is worth keeping elsewhere: `--expect-head` later shows whether it is still there.
    """
    verdict = store.verify_audit(expect)
    if verdict.ok:
        print(f"audit log intact: {count(verdict.rows, 'row')}; head {verdict.rows}:{verdict.last_hash}", file=out)
        print(f"mode: {verdict.mode}", file=out)
        if expect:
            print(f"row {expect[0]} is the one seen before ({expect[0]}:{expect[1]})", file=out)
        return 0
    if verdict.lost:  # the chain that is left holds, but the store shows rows that are gone
        print(f"audit log BROKEN: {verdict.reason} ({count(verdict.rows, 'row')} left, chain intact)", file=out)
        return 1
    if verdict.first_bad_seq is None:  # the links hold, but keyed rows were not checked
        print(f"audit log NOT VERIFIED: {verdict.reason} ({count(verdict.rows, 'row')})", file=out)
        return 1
    print(f"audit log BROKEN at row {verdict.first_bad_seq}: {verdict.reason} "
          f"({count(verdict.rows, 'row')} before it {'is' if verdict.rows == 1 else 'are'} intact)", file=out)
    return 1


def export(rows: Iterable[dict[str, Any]], fmt: str, out: TextIO) -> int:
    """Stream rows as JSON lines or CSV; the rows' cursor is closed even when the reader goes away."""
    try:
        for line in (_jsonl(rows) if fmt == "jsonl" else _csv(rows)):
            out.write(line)
        out.flush()
    finally:
        close = getattr(rows, "close", None)
        if close is not None:
            close()  # gives the store's connection back even when the reader went away
    return 0


def _jsonl(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    for row in rows:
        yield json.dumps({k: row[k] for k in COLUMNS}, ensure_ascii=False, separators=(",", ":")) + "\n"


class _Line:
    """A file-like target for csv.writer that hands back each written line."""

    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> None:
        self.text = text


def _csv(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    line = _Line()
    writer = csv.writer(line, lineterminator="\n")
    writer.writerow(COLUMNS)
    yield line.text
    for row in rows:
        writer.writerow([_cell(row[k]) for k in COLUMNS])
        yield line.text


def _cell(value: Any) -> Any:
    if isinstance(value, dict):  # the detail, exactly as it was hashed
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return value


def _quiet_stdout() -> None:
    """After a broken pipe on the real stdout, point it at devnull so Python's exit flush does not complain."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
