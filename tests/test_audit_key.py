"""BOT_AUDIT_KEY: an audit log that a writer of its file cannot rewrite unseen (issue 16)."""

from __future__ import annotations

import hashlib
import sqlite3
from typing import Any

import pytest

from bot.clock import FakeClock
from bot.errors import ConfigError
from bot.front.audit import verify as print_verify
from bot.store import Store
from bot.store.audit import KEYED, ZERO_HASH, audit_key, parse_head

KEY = "k" * 16 + "e" * 16 + "y"  # 33 bytes
OTHER = "o" * 40


def _store(path: Any, key: str = "", clock: FakeClock | None = None) -> Store:
    store = Store(path, clock=clock or FakeClock())
    store.audit_key = audit_key(key)
    return store


def _fill(store: Store, n: int, who: str = "slack:UALICE") -> None:
    for i in range(n):
        store.append_audit("invoke", actor=who, command="restore", manager="prod", detail={"i": i})


def _rewrite_everything(path: Any, key: bytes | None = None) -> None:
    """The intruder: drop the triggers, delete row 2, re-attribute the rest to mallory, recompute every hash
    (plain sha256, or HMAC under a key of their own) and the head record."""
    from bot.store.audit import row_hash

    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("DROP TRIGGER IF EXISTS audit_no_update")
    conn.execute("DROP TRIGGER IF EXISTS audit_no_delete")
    rows = conn.execute("SELECT seq, at, actor, transport, channel, manager, command, event, operation_id, "
                        "execution_id, detail FROM audit ORDER BY seq").fetchall()
    conn.execute("DELETE FROM audit")
    prev = ZERO_HASH
    kept = [r for r in rows if r[0] != 2]
    for seq, r in enumerate(kept, start=1):
        values = (seq, r[1], "slack:UMALLORY", *r[3:11], prev)
        digest = row_hash(*values, key=key)
        conn.execute("INSERT INTO audit VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", (*values, digest))
        prev = digest
    conn.execute("UPDATE audit_head SET seq = ?, hash = ?", (len(kept), prev))
    conn.close()


def test_without_a_key_a_full_rewrite_passes_verify_and_the_mode_says_so(tmp_path) -> None:
    store = _store(tmp_path / "a.db")
    _fill(store, 5)
    _rewrite_everything(store.path)
    verdict = store.verify_audit()
    assert verdict.ok and verdict.rows == 4  # the limit of an unkeyed chain, stated by its mode
    assert "plain sha256" in verdict.mode and "could rewrite them unseen" in verdict.mode


def test_with_the_key_rows_are_hmacs_and_verify_passes(tmp_path) -> None:
    store = _store(tmp_path / "a.db", KEY)
    _fill(store, 5)
    verdict = store.verify_audit()
    assert verdict.ok and verdict.rows == 5 and verdict.keyed_rows == 5 and verdict.last_hash.startswith(KEYED)
    assert verdict.mode == "every row HMAC-SHA256 under BOT_AUDIT_KEY"


@pytest.mark.parametrize("intruder_key", [None, OTHER.encode()])
def test_a_rewrite_without_the_key_fails_verify(tmp_path, intruder_key: bytes | None) -> None:
    store = _store(tmp_path / "a.db", KEY)
    _fill(store, 5)
    _rewrite_everything(store.path, intruder_key)
    verdict = store.verify_audit()
    assert not verdict.ok
    if intruder_key is None:  # a downgrade to plain rows
        assert "no row is keyed under it" in verdict.reason
    else:
        assert verdict.first_bad_seq == 1 and "HMAC does not match" in verdict.reason


def test_a_plain_row_after_keyed_rows_is_named(tmp_path) -> None:
    store = _store(tmp_path / "a.db", KEY)
    _fill(store, 3)
    store.audit_key = None
    with pytest.raises(Exception, match="BOT_AUDIT_KEY, which is not set here"):
        _fill(store, 1)  # the bot itself never writes a plain row after keyed ones
    from bot.store.audit import row_hash

    conn = sqlite3.connect(store.path, isolation_level=None)
    seq, prev = conn.execute("SELECT seq, hash FROM audit_head").fetchone()
    values = (seq + 1, "2026-11-29T09:00:00+00:00", "slack:UMALLORY", "", "", "", "", "invoke", "", "", "{}", prev)
    conn.execute("INSERT INTO audit VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", (*values, row_hash(*values)))
    conn.execute("UPDATE audit_head SET seq = ?, hash = ?", (seq + 1, row_hash(*values)))
    conn.close()
    store.audit_key = audit_key(KEY)
    verdict = store.verify_audit()
    assert not verdict.ok and verdict.first_bad_seq == 4 and "not keyed though the rows before it are" in verdict.reason


def test_without_the_key_keyed_rows_are_not_called_intact(tmp_path) -> None:
    store = _store(tmp_path / "a.db", KEY)
    _fill(store, 3)
    store.audit_key = None
    verdict = store.verify_audit()
    assert not verdict.ok and verdict.first_bad_seq is None and verdict.unchecked_rows == 3
    assert "set here" in verdict.reason


def test_an_old_plain_log_is_sealed_by_the_first_keyed_row_and_both_modes_are_reported(make_bot) -> None:
    bot = make_bot()
    bot.run("status")
    plain = bot.store.verify_audit()
    assert plain.ok and plain.keyed_rows == 0
    bot.store.close()
    keyed_bot = make_bot(env={"BOT_AUDIT_KEY": KEY})  # the same data folder, now with the key
    first = keyed_bot.store.query_audit(event="audit_keyed")
    assert first and first[0]["detail"]["plain_head"] == f"{plain.rows}:{plain.last_hash}"
    verdict = keyed_bot.store.verify_audit()
    assert verdict.ok and verdict.plain_rows == plain.rows and verdict.keyed_rows == 1
    assert f"rows 1-{plain.rows} plain sha256" in verdict.mode and "HMAC-SHA256 under BOT_AUDIT_KEY" in verdict.mode


def test_start_up_refuses_a_missing_or_wrong_key_for_a_keyed_log(make_bot) -> None:
    bot = make_bot(env={"BOT_AUDIT_KEY": KEY})
    bot.run("status")
    bot.store.close()
    with pytest.raises(ConfigError, match="set BOT_AUDIT_KEY to the key they were written with"):
        make_bot()
    with pytest.raises(ConfigError, match="BOT_AUDIT_KEY is not the key the audit log was written with"):
        make_bot(env={"BOT_AUDIT_KEY": OTHER})


def test_expect_head_checks_a_head_seen_before(tmp_path) -> None:
    store = _store(tmp_path / "a.db", KEY)
    _fill(store, 5)
    seen = store.verify_audit()
    head = (seen.rows, seen.last_hash)
    _fill(store, 3)
    assert store.verify_audit(head).ok  # later rows do not matter
    assert store.verify_audit((3, store.query_audit(limit=100)[-3]["hash"])).ok
    missing = store.verify_audit((20, seen.last_hash))
    assert not missing.ok and "row 20 (the head seen before) is missing: the log has 8 rows" in missing.reason


def test_expect_head_catches_a_rewrite_that_a_plain_chain_cannot(tmp_path) -> None:
    store = _store(tmp_path / "a.db")
    _fill(store, 5)
    seen = store.verify_audit()
    _rewrite_everything(store.path)  # intact as a chain, but not the history seen before
    verdict = store.verify_audit((seen.rows, seen.last_hash))
    assert not verdict.ok and "missing" in verdict.reason
    verdict = store.verify_audit((2, store.verify_audit().last_hash))
    assert not verdict.ok and verdict.first_bad_seq == 2 and "not the one seen before" in verdict.reason


@pytest.mark.parametrize("text", ["5", "x:" + "a" * 64, "5:" + "a" * 10, "5:" + "g" * 64, "0:" + "a" * 64])
def test_parse_head_refuses_what_verify_never_prints(text: str) -> None:
    with pytest.raises(ValueError, match="SEQ:HASH"):
        parse_head(text)


def test_parse_head_takes_what_verify_prints() -> None:
    digest = hashlib.sha256(b"x").hexdigest()
    assert parse_head(f"12:{digest}") == (12, digest)
    assert parse_head(f"12:hmac:{digest}") == (12, f"hmac:{digest}")


def test_verify_prints_the_head_and_the_mode(tmp_path) -> None:
    import io

    store = _store(tmp_path / "a.db", KEY)
    _fill(store, 2)
    out = io.StringIO()
    assert print_verify(store, out) == 0
    verdict = store.verify_audit()
    assert f"audit log intact: 2 rows; head 2:{verdict.last_hash}\nmode: every row HMAC-SHA256" in out.getvalue()
