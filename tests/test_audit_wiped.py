"""With BOT_AUDIT_KEY set, a wiped or tail-truncated audit log is not "intact" when the store shows operations
whose rows are gone (QA s13 #5)."""

from __future__ import annotations

import io
import sqlite3

from bot.front.audit import verify

KEY = "k" * 64


def _sql(bot, *statements: str) -> None:
    db = sqlite3.connect(bot.settings.db_path)
    try:
        for statement in statements:
            db.execute(statement)
        db.commit()
    finally:
        db.close()


def _verify(bot) -> tuple[int, str]:
    out = io.StringIO()
    return verify(bot.store, out), out.getvalue()


def test_an_intact_keyed_log_with_operations_verifies(make_bot) -> None:
    bot = make_bot(seed=False, env={"BOT_AUDIT_KEY": KEY})
    assert bot.run("snapshots create qa1", yes=True)[0] == 0
    code, out = _verify(bot)
    assert code == 0 and "audit log intact" in out, out


def test_a_wiped_keyed_log_is_broken_and_stays_broken_after_new_rows(make_bot) -> None:
    bot = make_bot(seed=False, env={"BOT_AUDIT_KEY": KEY})
    assert bot.run("snapshots create qa1", yes=True)[0] == 0
    assert bot.run("snapshots create qa2", yes=True)[0] == 0
    _sql(bot, "DROP TRIGGER audit_no_delete", "DELETE FROM audit", "DELETE FROM audit_head")
    code, out = _verify(bot)
    assert code == 1 and "audit log BROKEN: the store holds 2 operations that no audit row names" in out, out
    assert "intact: 0 rows" not in out
    bot.run("status")  # the next command starts a fresh keyed chain
    code, out = _verify(bot)
    assert code == 1 and "the store holds 2 operations that no audit row names" in out, out


def test_a_truncated_tail_with_a_fitted_head_is_broken(make_bot) -> None:
    bot = make_bot(seed=False, env={"BOT_AUDIT_KEY": KEY})
    assert bot.run("snapshots create qa1", yes=True)[0] == 0
    keep = bot.store.audit_head()[0]
    assert bot.run("snapshots create qa2", yes=True)[0] == 0
    _sql(bot, "DROP TRIGGER audit_no_delete", f"DELETE FROM audit WHERE seq > {keep}",
         f"UPDATE audit_head SET seq = {keep}, hash = (SELECT hash FROM audit WHERE seq = {keep})")
    code, out = _verify(bot)
    assert code == 1 and "the store holds 1 operation that no audit row names" in out, out
