"""The audit log: hash chain, tamper detection, secrets refusal, queries, streaming, concurrency."""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.clock import FakeClock
from bot.errors import BotError
from bot.store import Store
from bot.store.audit import ZERO_HASH, canonical_json
from test_store_ops import _together, race_two_processes

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _fill(store: Store, n: int = 10) -> list[dict]:
    return [store.append_audit("step", actor="slack:U1", command="restore", manager="prod",
                               detail={"i": i, "text": f"step {i}"}) for i in range(n)]


@contextmanager
def _raw(store: Store) -> Iterator[sqlite3.Connection]:
    """The intruder's connection: no store code, and the append-only triggers dropped first."""
    conn = sqlite3.connect(store.path, isolation_level=None)
    conn.execute("DROP TRIGGER IF EXISTS audit_no_update")
    conn.execute("DROP TRIGGER IF EXISTS audit_no_delete")
    try:
        yield conn
    finally:
        conn.close()


def _spec_hash(row: dict) -> str:
    """DESIGN: sha256 of the canonical JSON of every field but `hash`."""
    return hashlib.sha256(canonical_json({k: v for k, v in row.items() if k != "hash"}).encode()).hexdigest()


# --- the chain -------------------------------------------------------------------------------------


def test_append_links_rows_into_a_chain(store: Store) -> None:
    first = store.append_audit("invoke", actor="slack:U1", transport="slack", channel="C1", manager="prod",
                               command="restore", operation_id="op-1", detail={"text": "/cfy restore latest"})
    assert first["seq"] == 1 and first["prev_hash"] == ZERO_HASH
    assert first["at"] == "2026-11-18T11:06:40.000000Z" and first["detail"] == {"text": "/cfy restore latest"}
    second = store.append_audit("denied", actor="shell:bob")
    assert second["seq"] == 2 and second["prev_hash"] == first["hash"] and second["detail"] == {}
    assert [_spec_hash(r) for r in (first, second)] == [first["hash"], second["hash"]]
    assert store.verify_audit().ok


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(), detail=st.dictionaries(st.text(), st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(), lambda inner: st.lists(inner, max_size=3), max_leaves=5),
    max_size=4))
def test_hash_is_the_canonical_json_of_the_row(store: Store, text: str, detail: dict) -> None:
    row = store.append_audit(text or "event", actor=text, transport=text, channel=text, manager=text, command=text,
                             operation_id=text, execution_id=text, detail=detail)
    assert row["hash"] == _spec_hash(row)
    assert row["detail"] == detail


def test_verify_an_empty_and_a_long_log(store: Store) -> None:
    assert store.verify_audit().ok and store.verify_audit().rows == 0
    rows = _fill(store, 500)
    verdict = store.verify_audit()
    assert verdict.ok and verdict.rows == 500 and verdict.first_bad_seq is None
    assert verdict.last_hash == rows[-1]["hash"]


def test_audit_rows_cannot_be_changed_through_sqlite_either(store: Store) -> None:
    _fill(store, 3)
    conn = sqlite3.connect(store.path, isolation_level=None)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE audit SET actor = 'x' WHERE seq = 2")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM audit WHERE seq = 2")
    conn.close()


def test_no_code_updates_or_deletes_audit_rows() -> None:
    pattern = re.compile(r"\b(UPDATE|DELETE\s+FROM|REPLACE\s+INTO|INSERT\s+OR\s+REPLACE\s+INTO)\s+audit\b", re.I)
    for path in [*ROOT.glob("bot/**/*.py"), *ROOT.glob("commands/*.py")]:
        assert not pattern.search(path.read_text()), f"{path.name} changes audit rows"


# --- tampering (done in the test with a raw connection, as an intruder would) -----------------------


def test_edited_detail_is_named(store: Store) -> None:
    _fill(store)
    with _raw(store) as conn:
        conn.execute("""UPDATE audit SET detail = '{"i":4,"text":"nothing happened"}' WHERE seq = 5""")
    verdict = store.verify_audit()
    assert not verdict.ok and verdict.first_bad_seq == 5 and "altered" in verdict.reason
    assert verdict.rows == 4


def test_edited_row_with_recomputed_hash_breaks_the_next_link(store: Store) -> None:
    rows = _fill(store)
    row = {**rows[4], "actor": "slack:U666"}
    with _raw(store) as conn:
        conn.execute("UPDATE audit SET actor = ?, hash = ? WHERE seq = 5", (row["actor"], _spec_hash(row)))
    verdict = store.verify_audit()
    assert not verdict.ok and verdict.first_bad_seq == 6 and "prev_hash" in verdict.reason


def test_deleted_middle_row_is_named(store: Store) -> None:
    _fill(store)
    with _raw(store) as conn:
        conn.execute("DELETE FROM audit WHERE seq = 5")
    verdict = store.verify_audit()
    assert not verdict.ok and verdict.first_bad_seq == 5 and "missing" in verdict.reason


def test_deleted_first_row_is_named(store: Store) -> None:
    _fill(store)
    with _raw(store) as conn:
        conn.execute("DELETE FROM audit WHERE seq = 1")
    assert store.verify_audit().first_bad_seq == 1


def test_deleted_last_row_is_caught_by_the_head_record(store: Store) -> None:
    _fill(store)
    with _raw(store) as conn:
        conn.execute("DELETE FROM audit WHERE seq = 10")
    verdict = store.verify_audit()
    assert not verdict.ok and verdict.first_bad_seq == 10 and "truncated" in verdict.reason
    assert verdict.rows == 9


def test_swapped_rows_are_named(store: Store) -> None:
    _fill(store)
    with _raw(store) as conn:  # exchange rows 3 and 7 by renumbering them
        conn.execute("UPDATE audit SET seq = -1 WHERE seq = 3")
        conn.execute("UPDATE audit SET seq = 3 WHERE seq = 7")
        conn.execute("UPDATE audit SET seq = 7 WHERE seq = -1")
    verdict = store.verify_audit()
    assert not verdict.ok and verdict.first_bad_seq == 3


def test_swapped_contents_are_named(store: Store) -> None:
    _fill(store)
    cols = "at, actor, transport, channel, manager, command, event, operation_id, execution_id, detail, prev_hash, hash"
    with _raw(store) as conn:
        a = conn.execute(f"SELECT {cols} FROM audit WHERE seq = 4").fetchone()
        b = conn.execute(f"SELECT {cols} FROM audit WHERE seq = 8").fetchone()
        sets = ", ".join(f"{c} = ?" for c in cols.split(", "))
        conn.execute(f"UPDATE audit SET {sets} WHERE seq = 4", b)
        conn.execute(f"UPDATE audit SET {sets} WHERE seq = 8", a)
    assert store.verify_audit().first_bad_seq == 4


def test_rows_added_outside_the_bot_and_a_missing_head(store: Store) -> None:
    _fill(store, 3)
    with _raw(store) as conn:
        conn.execute("INSERT INTO audit (seq, at, actor, event, prev_hash, hash) VALUES (4, '', 'x', 'x', '', '')")
    assert store.verify_audit().first_bad_seq == 4
    with pytest.raises(BotError, match="head record"):
        store.append_audit("invoke", actor="slack:U1")  # refuses to write past an altered tail
    with _raw(store) as conn:
        conn.execute("DELETE FROM audit WHERE seq = 4")
        conn.execute("DELETE FROM audit_head")
    verdict = store.verify_audit()
    assert not verdict.ok and "head record is missing" in verdict.reason
    with pytest.raises(BotError, match="head record is missing"):
        store.append_audit("invoke", actor="slack:U1")


def test_wrong_type_in_a_column_is_reported_not_raised(store: Store) -> None:
    _fill(store, 3)
    with _raw(store) as conn:
        conn.execute("UPDATE audit SET actor = 42 WHERE seq = 2")
    verdict = store.verify_audit()
    assert not verdict.ok and verdict.first_bad_seq == 2


# --- secrets ---------------------------------------------------------------------------------------


def test_configured_secrets_are_scrubbed_and_the_row_is_kept(store: Store, tmp_path) -> None:
    store.secrets = {"xoxb-1234-abcdefgh", 'pa"ss\\word-long', "admin"}
    details = ({"token": "xoxb-1234-abcdefgh"}, {"header": "Bearer xoxb-1234-abcdefgh"},
               {"nested": [{"deep": 'pa"ss\\word-long'}]}, {"password": "admin"}, {"admin": 1})
    for detail in details:
        store.append_audit("invoke", actor="slack:U1", detail=detail)
    store.append_audit("approved", actor="shell:bob", detail={"by": "admin"})  # an approver named like the password
    rows = store.query_audit(limit=10)[::-1]
    assert [r["detail"] for r in rows] == [
        {"token": "[redacted]"}, {"header": "Bearer [redacted]"}, {"nested": [{"deep": "[redacted]"}]},
        {"password": "[redacted]"}, {"[redacted]": 1}, {"by": "[redacted]"}]
    assert store.verify_audit().ok and store.verify_audit().rows == 6
    # a short secret is only replaced as a whole value, so "admin" does not touch "administrator"
    store.append_audit("invoke", actor="slack:U1", detail={"role": "administrator", "n": 7})
    assert store.query_audit(limit=1)[0]["detail"] == {"role": "administrator", "n": 7}
    raw = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert b"xoxb-1234-abcdefgh" not in raw and b"word-long" not in raw


def test_detail_must_be_a_dict(store: Store) -> None:
    with pytest.raises(TypeError):
        store.append_audit("invoke", actor="slack:U1", detail=["a"])  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        store.append_audit("", actor="slack:U1")


# --- reading ---------------------------------------------------------------------------------------


def _varied(store: Store, clock: FakeClock) -> None:
    rows = [("slack:U1", "restore", "prod", "invoke"), ("slack:U2", "snapshots create", "prod", "invoke"),
            ("shell:U1", "status", "staging", "invoke"), ("slack:U1", "restore", "prod", "approved"),
            ("system:scheduler", "snapshots create", "staging", "schedule"), ("slack:U2", "restore", "prod", "denied")]
    for actor, command, manager, event in rows:
        clock.advance(60)
        store.append_audit(event, actor=actor, command=command, manager=manager, transport="slack")


def test_query_filters_newest_first(store: Store, clock: FakeClock) -> None:
    start = clock.now()
    _varied(store, clock)
    assert [r["seq"] for r in store.query_audit()] == [6, 5, 4, 3, 2, 1]
    assert [r["seq"] for r in store.query_audit(user="slack:U1")] == [4, 1]
    assert [r["seq"] for r in store.query_audit(user="U1")] == [4, 3, 1]  # a bare id: any source
    assert [r["seq"] for r in store.query_audit(command="restore")] == [6, 4, 1]
    assert [r["seq"] for r in store.query_audit(manager="staging")] == [5, 3]
    assert [r["seq"] for r in store.query_audit(event="invoke", manager="prod")] == [2, 1]
    assert [r["seq"] for r in store.query_audit(since=start + timedelta(seconds=240))] == [6, 5, 4]
    assert [r["seq"] for r in store.query_audit(until=(start + timedelta(seconds=120)).isoformat())] == [1]
    assert [r["seq"] for r in store.query_audit(user="U2", command="restore", since=start)] == [6]
    assert [r["seq"] for r in store.query_audit(limit=2)] == [6, 5]
    assert store.query_audit(user="nobody") == []


def test_query_uses_an_index_for_each_filter(store: Store) -> None:
    conn = sqlite3.connect(store.path)
    for where in ("actor = 'a'", "command = 'c'", "manager = 'm'", "at >= '2026'", "event = 'e'"):
        plan = " ".join(str(r) for r in conn.execute(
            f"EXPLAIN QUERY PLAN SELECT * FROM audit WHERE {where} ORDER BY at DESC, seq DESC LIMIT 50"))
        assert "USING INDEX" in plan and "TEMP B-TREE" not in plan, (where, plan)
    conn.close()


def test_iter_audit_streams_oldest_first(store: Store, clock: FakeClock) -> None:
    start = clock.now()
    _varied(store, clock)
    assert [r["seq"] for r in store.iter_audit()] == [1, 2, 3, 4, 5, 6]
    assert [r["seq"] for r in store.iter_audit(since=start + timedelta(seconds=300))] == [5, 6]
    rows = store.iter_audit()
    assert next(rows)["seq"] == 1
    rows.close()  # an abandoned export leaves no open read on a pooled connection
    _together(4, lambda i: store.append_audit("step", actor="system:x"))
    assert store.verify_audit().rows == 10


# --- concurrency -----------------------------------------------------------------------------------


def test_threads_append_without_breaking_the_chain(store: Store) -> None:
    _together(8, lambda i: [store.append_audit("step", actor=f"t{i}", detail={"n": n}) for n in range(100)])
    verdict = store.verify_audit()
    assert verdict.ok and verdict.rows == 800


def test_two_processes_append_without_breaking_the_chain(tmp_path: Path) -> None:
    Store(tmp_path / "bot.db").close()
    race_two_processes(tmp_path / "bot.db", "audit", 200)
    store = Store(tmp_path / "bot.db")
    verdict = store.verify_audit()
    assert verdict.ok and verdict.rows == 400
    store.close()


def test_query_by_operation_starts_at_its_creation(store: Store, clock: FakeClock) -> None:
    _varied(store, clock)
    op = store.create_operation(kind="restore", manager="prod")
    for step in ("preflight", "restore", "done"):
        clock.advance(5)
        store.append_audit("step", actor="slack:U1", operation_id=op.id, detail={"step": step})
    store.append_audit("step", actor="slack:U1", operation_id="op-gone")
    assert [r["detail"]["step"] for r in store.query_audit(operation_id=op.id)] == ["done", "restore", "preflight"]
    assert len(store.query_audit(operation_id="op-gone")) == 1  # no operation row: the whole log is searched
