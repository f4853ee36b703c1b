"""How the audit log scales: append one by one, filtered queries, verify; against plain SQLite inserts.

    python benchmarks/audit_scale.py              # 1,000,000 rows (a few minutes)
    python benchmarks/audit_scale.py --rows 50000 # a quick look
    python benchmarks/audit_scale.py --no-baselines  # only the chain, plain sha256 and HMAC under BOT_AUDIT_KEY

The chain is measured twice, side by side: without BOT_AUDIT_KEY (plain sha256 per row) and with it
(HMAC-SHA256 per row); the targets are appends at >= 2,000 rows/s and verify of 1M rows under 30 s.

Everything runs in a temporary folder (or --dir) with the store's own settings (WAL, synchronous=NORMAL).
The baselines insert the same rows one statement (one transaction) at a time into a plain table: once
with no index, once with the audit table's indexes, so the cost of the chain itself is visible.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

from bot.clock import FakeClock
from bot.store import PAGE_SIZE, WAL_AUTOCHECKPOINT, Store, iso

EVENTS = ["invoke", "invoke", "invoke", "step", "step", "manager_call", "outcome", "denied", "gate_shown",
          "gate_answered", "approved", "schedule", "usage_error"]
COMMANDS = ["status", "help", "snapshots list", "snapshots show", "snapshots create", "snapshots delete",
            "snapshots download", "snapshots upload", "snapshots status", "snapshots restore", "restore",
            "maintenance-mode status", "maintenance-mode activate", "maintenance-mode deactivate", "backups summary",
            "backups prune", "backups verify", "cluster status", "managers", "audit"]
MANAGERS = ["prod", "staging", "dr"]
USERS = [f"U{n:05d}" for n in range(200)]
START = 1_764_000_000.0
STEP_S = 30.0  # one row every 30 s: a million rows span about a year


def rows(n: int, seed: int = 7) -> Iterator[dict]:
    """The same n varied audit rows on every call (seeded)."""
    rng = random.Random(seed)
    for i in range(n):
        user = rng.choice(USERS)
        source = "slack" if i % 10 else "shell"
        command = rng.choice(COMMANDS)
        yield {"event": rng.choice(EVENTS), "actor": f"{source}:{user}", "transport": source, "channel": "C0123ABC",
               "manager": rng.choice(MANAGERS), "command": command, "operation_id": f"op-{i % 65536:06x}",
               "execution_id": "", "detail": {"text": f"/cfy {command}", "n": i, "took_ms": rng.randint(1, 900)}}


def timed(label: str, n: int, work: Callable[[], None]) -> float:
    started = time.perf_counter()
    work()
    seconds = time.perf_counter() - started
    print(f"  {label:<44} {n / seconds:>10,.0f} rows/s  ({seconds:.1f} s)", flush=True)
    return n / seconds


KEY = b"benchmark-audit-key-0123456789abcdef"  # 36 bytes, like a BOT_AUDIT_KEY of token_hex(18)


def append_chained(path: Path, n: int, key: bytes | None = None) -> tuple[Store, float]:
    clock = FakeClock(START)
    store = Store(path, clock=clock)
    store.audit_key = key

    def work() -> None:
        for i, row in enumerate(rows(n)):
            clock.advance(STEP_S)
            store.append_audit(row.pop("event"), **row)
            if i and i % 200_000 == 0:
                print(f"    … {i:,} rows", flush=True)

    rate = timed("chained append_audit, " + ("HMAC (BOT_AUDIT_KEY)" if key else "plain sha256"), n, work)
    return store, rate


def append_plain(path: Path, n: int, indexed: bool) -> float:
    """The baseline: same rows and pragmas as the store, plain INSERT in autocommit (a transaction per row)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")  # the store's settings, so only the chain differs
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT}")
    conn.execute("CREATE TABLE audit (seq INTEGER PRIMARY KEY, at TEXT, actor TEXT, transport TEXT, channel TEXT, "
                 "manager TEXT, command TEXT, event TEXT, operation_id TEXT, execution_id TEXT, detail TEXT)")
    if indexed:
        for cols in ("at", "actor, at", "command, at", "manager, at"):
            conn.execute(f"CREATE INDEX [i {cols}] ON audit ({cols})")
    sql = ("INSERT INTO audit (at, actor, transport, channel, manager, command, event, operation_id, execution_id, "
           "detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")

    def work() -> None:
        t = START
        for row in rows(n):
            t += STEP_S
            conn.execute(sql, (iso(t), row["actor"], row["transport"], row["channel"], row["manager"], row["command"],
                               row["event"], row["operation_id"], row["execution_id"],
                               json.dumps(row["detail"], sort_keys=True, separators=(",", ":"))))

    label = "plain INSERT, same indexes" if indexed else "plain INSERT, no index"
    rate = timed(label, n, work)
    conn.close()
    return rate


def queries(store: Store, n_rows: int, count: int) -> None:
    rng = random.Random(11)
    span = n_rows * STEP_S
    plan: dict[str, list[dict]] = {
        "user (actor id)": [{"user": f"slack:{rng.choice(USERS)}"} for _ in range(count // 8)],
        "user (bare id, any source)": [{"user": rng.choice(USERS)} for _ in range(count // 8)],
        "command": [{"command": rng.choice(COMMANDS)} for _ in range(count // 4)],
        "manager": [{"manager": rng.choice(MANAGERS)} for _ in range(count // 4)],
        "since": [{"since": iso(START + rng.random() * span)} for _ in range(count // 4)],
    }
    everything = []
    print(f"  {'filter':<28} {'n':>4} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for kind, calls in plan.items():
        times = []
        for filters in calls:
            started = time.perf_counter()
            assert store.query_audit(**filters), filters
            times.append((time.perf_counter() - started) * 1000)
        everything += times
        print(f"  {kind:<28} {len(times):>4} {_p(times, 50):>8.2f} {_p(times, 95):>8.2f} {max(times):>8.2f}")
    print(f"  {'all':<28} {len(everything):>4} {_p(everything, 50):>8.2f} {_p(everything, 95):>8.2f} "
          f"{max(everything):>8.2f}")
    until = iso(START + span / 2)
    since = iso(START + span / 2 - timedelta(days=7).total_seconds())
    started = time.perf_counter()
    found = store.query_audit(user=f"slack:{USERS[0]}", command="restore", since=since, until=until, limit=50)
    print(f"  a week in the middle, one user and command: {len(found)} rows in "
          f"{(time.perf_counter() - started) * 1000:.1f} ms")


def _p(values: list[float], pct: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1] if len(values) > 1 else values[0]


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def verify(store: Store, label: str) -> float:
    rss = _rss_mb()
    started = time.perf_counter()
    verdict = store.verify_audit()
    seconds = time.perf_counter() - started
    print(f"  {label:<22} {verdict.rows:,} rows, ok={verdict.ok}, {seconds:.1f} s ({verdict.rows / seconds:,.0f} "
          f"rows/s); peak RSS {rss:,.0f} MB before, {_rss_mb():,.0f} MB after", flush=True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--no-baselines", action="store_true", help="skip the plain-INSERT baselines")
    parser.add_argument("--dir", help="folder for the database files (default: a temporary one, removed)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        tmp = Path(folder)
        print(f"audit log at scale: {args.rows:,} rows, SQLite {sqlite3.sqlite_version}, {os.cpu_count()} CPUs")
        print("appending, one row per transaction:")
        if not args.no_baselines:
            append_plain(tmp / "plain.db", args.rows, indexed=False)
            append_plain(tmp / "plain-indexed.db", args.rows, indexed=True)
        plain, plain_rate = append_chained(tmp / "bot.db", args.rows)
        keyed, keyed_rate = append_chained(tmp / "keyed.db", args.rows, KEY)
        size = sum(p.stat().st_size for p in tmp.glob("bot.db*")) / 1e6
        print(f"  database size: {size:,.0f} MB")
        print(f"{args.queries} filtered queries (newest first, limit 50):")
        queries(plain, args.rows, args.queries)
        print("verify_audit:")
        plain_s = verify(plain, "plain sha256")
        keyed_s = verify(keyed, "HMAC (BOT_AUDIT_KEY)")
        per_million = 1_000_000 / args.rows
        print("side by side (target: append >= 2,000 rows/s, verify of 1M rows < 30 s):")
        print(f"  {'':<22} {'append rows/s':>14} {'verify s per 1M rows':>22}")
        print(f"  {'plain sha256':<22} {plain_rate:>14,.0f} {plain_s * per_million:>22.1f}")
        print(f"  {'HMAC (BOT_AUDIT_KEY)':<22} {keyed_rate:>14,.0f} {keyed_s * per_million:>22.1f}")
        plain.close()
        keyed.close()


if __name__ == "__main__":
    main()
