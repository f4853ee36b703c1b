"""The audit trail end to end: what each flow writes, `/cfy audit`, `cfy-bot audit verify | export`."""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.front.audit import parse_since
from bot.front.cli import main
from bot.core import Actor, Invocation
from bot.store.audit import canonical_json, row_hash
from sim_fixtures import daily

ROW_FIELDS = ("actor", "transport", "channel", "manager", "command", "operation_id")


def slack(bot: Any, text: str, user: str = "UADMIN", channel: str = "COPS") -> Any:
    inv = Invocation(text=text, actor=Actor(f"slack:{user}", user.lower(), "slack"), channel=channel,
                     transport="slack", received_at=bot.clock.now())
    return bot.dispatcher.handle(inv)


def oldest_first(bot: Any, **filters: Any) -> list[dict]:
    return list(reversed(bot.store.query_audit(limit=1000, **filters)))


# --- what the flows write ---------------------------------------------------------------------------------


def test_a_guided_restore_leaves_a_complete_trail(make_bot) -> None:
    bot = make_bot(seed=False)  # no scheduled executions, so maintenance mode activates at once
    assert bot.run("snapshots create before-change")[0] == 0
    code, out = bot.run("restore before-change -f", yes=True, approver="bob")
    assert code == 0, out
    op = bot.store.list_operations(kinds="restore")[0]
    rows = oldest_first(bot, operation_id=op.id)
    events = [r["event"] for r in rows]
    for event in ("gate_shown", "gate_answered", "approved", "manager_call", "step", "outcome"):
        assert event in events, event
    assert events.count("gate_shown") == 2  # the confirmation, then the second admin's approval
    for r in rows:
        assert (r["transport"], r["channel"], r["manager"], r["command"], r["operation_id"]) == (
            "shell", "terminal", "production", "restore", op.id), r
    answered = next(r for r in rows if r["event"] == "gate_answered")
    approved = next(r for r in rows if r["event"] == "approved")
    assert answered["actor"] == "shell:alice" and approved["actor"] == "shell:bob"
    assert answered["at"] and approved["at"] >= answered["at"]
    calls = [(r["detail"]["method"], r["detail"]["path"], r["detail"]["status"]) for r in rows
             if r["event"] == "manager_call"]
    assert ("POST", "/maintenance/activate", 200) in calls
    assert ("POST", "/snapshots/before-change/restore", 200) in calls
    assert ("POST", "/maintenance/deactivate", 200) in calls
    restore_call = next(r for r in rows if r["event"] == "manager_call" and r["detail"]["path"].endswith("/restore"))
    assert restore_call["execution_id"] == op.execution_id != ""
    assert rows[-1]["event"] == "outcome" and rows[-1]["detail"]["state"] == "succeeded"
    assert rows[-1]["execution_id"] == op.execution_id  # rows after the execution started name it
    assert bot.store.verify_audit().ok


def test_invocations_usage_errors_and_denials_are_rows(make_bot) -> None:
    bot = make_bot(env={"BOT_ADMINS": "UADMIN"})
    slack(bot, "snapshots lst", user="UVIEW", channel="CGEN")
    slack(bot, "restore latest", user="UVIEW", channel="CGEN")
    rows = oldest_first(bot)
    assert [r["event"] for r in rows] == ["invoke", "usage_error", "invoke", "denied"]
    assert all((r["actor"], r["transport"], r["channel"]) == ("slack:UVIEW", "slack", "CGEN") for r in rows)
    assert rows[0]["detail"]["text"] == "snapshots lst"
    assert "snapshots lst" in rows[1]["detail"]["error"]
    assert (rows[0]["command"], rows[0]["manager"]) == ("", "")  # it never named a command
    assert [(r["command"], r["manager"]) for r in rows[2:]] == [("restore", "production")] * 2


# --- /cfy audit ---------------------------------------------------------------------------------------------


@pytest.fixture
def busy(make_bot) -> Any:
    """Two managers, an admin, an operator and a viewer who have done a few things an hour apart."""
    bot = make_bot(managers=("production", "staging"), env={"BOT_ADMINS": "UADMIN", "BOT_OPERATORS": "UOPER"})
    for user, text in (("UVIEW", "status -m production"), ("UOPER", "snapshots list -m staging"),
                       ("UVIEW", "restore latest -m staging"), ("UOPER", f"snapshot show {daily(1)} -m staging")):
        slack(bot, text, user=user)
        bot.clock.advance(3600)
    return bot


def test_audit_is_for_admins(busy) -> None:
    out = slack(busy, "audit", user="UOPER")
    assert out.exit_code == 1 and "`audit` needs the admin role (you are operator)" in out.reply.text
    code, out = busy.run("audit")  # the terminal user is admin in this harness
    assert code == 0 and "audit rows, newest first" in out


def test_audit_shows_the_newest_rows_as_a_table(busy) -> None:
    out = slack(busy, "audit --limit 3")
    table = out.reply.table
    assert out.exit_code == 0 and len(table.rows) == 3
    assert table.columns == ("#", "time (UTC)", "actor", "event", "command", "manager", "operation", "detail")
    seqs = [int(r[0]) for r in table.rows]
    assert seqs == sorted(seqs, reverse=True)
    assert table.rows[0][3] == "invoke" and "text=audit --limit 3" in table.rows[0][7]


def test_audit_filters(busy) -> None:
    def shown(text: str) -> list[tuple[str, ...]]:
        out = slack(busy, text)
        assert out.exit_code == 0, out.reply.text
        return list(out.reply.table.rows) if out.reply.table else []

    assert {r[2] for r in shown("audit --user UOPER")} == {"slack:UOPER"}
    assert {r[2] for r in shown("audit --user <@UVIEW|vera>")} == {"slack:UVIEW"}
    assert {r[2] for r in shown("audit -u slack:UVIEW")} == {"slack:UVIEW"}
    assert [r[4] for r in shown("audit --command 'snapshot show'")] == ["snapshots show"]  # aliases are resolved
    denied = shown("audit --event denied")
    assert [(r[2], r[4], r[5]) for r in denied] == [("slack:UVIEW", "restore", "staging")]
    assert "needed=admin role" in denied[0][7]


def test_manager_is_a_filter_not_the_global_manager_flag(busy) -> None:
    staging = slack(busy, "audit -m staging").reply.table.rows
    assert {r[5] for r in staging} == {"staging"}
    assert [(r[3], r[4]) for r in staging] == [("invoke", "snapshots show"), ("denied", "restore"),
                                               ("invoke", "restore"), ("invoke", "snapshots list")]
    assert {r[5] for r in slack(busy, "audit --manager production").reply.table.rows} == {"production"}
    out = slack(busy, "audit -m nowhere")  # a filter on a name no longer configured is fine: no rows
    assert out.exit_code == 0 and "No audit rows match (manager nowhere)" in out.reply.text
    [row] = busy.store.query_audit(limit=1)
    assert row["manager"] == ""  # the audit query itself is about no manager


def test_audit_since_takes_a_duration_or_an_iso_time(busy) -> None:
    # rows were written at 09:00, 10:00, 11:00 and 12:00; it is now 13:00
    recent = slack(busy, "audit --since 90m --event invoke").reply.table.rows
    assert [r[1][11:16] for r in recent] == ["13:00", "12:00"]
    iso = slack(busy, "audit --since 2026-11-29T10:30Z --event invoke").reply.table.rows
    assert [r[1][11:16] for r in iso] == ["13:00", "13:00", "12:00", "11:00"]
    out = slack(busy, "audit --since last-tuesday")
    assert out.exit_code == 2 and "--since must be a duration such as 24h" in out.reply.text


def test_audit_limit_is_bounded(busy) -> None:
    for bad in ("0", "201", "many"):
        out = slack(busy, f"audit --limit {bad}")
        assert out.exit_code == 2, bad
    assert len(slack(busy, "audit -n 200").reply.table.rows) <= 200


def test_parse_since() -> None:
    now = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    assert parse_since("24h", now) == datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    assert parse_since("7d", now) == datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    assert parse_since("2026-11-01", now) == datetime(2026, 11, 1, tzinfo=UTC)
    assert parse_since("2026-11-01T08:00:00+02:00", now) == datetime(2026, 11, 1, 6, tzinfo=UTC)
    with pytest.raises(ValueError):
        parse_since("soon", now)


# --- cfy-bot audit verify | export ------------------------------------------------------------------------


@pytest.fixture
def cli(bot, monkeypatch, tmp_path) -> Any:
    """`cfy-bot …` against the harness's database; returns (exit code, stdout, stderr)."""
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name, value in {"CLOUDIFY_MANAGER_URL": "http://production.test", "CLOUDIFY_PASSWORD": "admin",
                        "BOT_DB_PATH": bot.settings.db_path, "BOT_DATA_DIR": str(tmp_path / "data")}.items():
        monkeypatch.setenv(name, value)

    def run(*argv: str, capsys: Any) -> tuple[int, str, str]:
        code = main(list(argv))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def _activity(bot: Any) -> int:
    bot.run("status")
    bot.run("snapshots lst")
    bot.clock.advance(7200)
    bot.run("snapshots list")
    return bot.store.verify_audit().rows


def test_verify_exits_0_with_the_row_count(bot, cli, capsys) -> None:
    n = _activity(bot)
    code, out, _err = cli("audit", "verify", capsys=capsys)
    assert code == 0 and f"audit log intact: {n} rows" in out


def test_verify_exits_1_naming_the_first_bad_row(bot, cli, capsys) -> None:
    _activity(bot)
    conn = sqlite3.connect(bot.settings.db_path, isolation_level=None)
    conn.execute("DROP TRIGGER audit_no_update")
    conn.execute("UPDATE audit SET actor = 'shell:mallory' WHERE seq = 3")
    conn.close()
    code, out, _err = cli("audit", "verify", capsys=capsys)
    assert code == 1 and "BROKEN at row 3" in out and "altered" in out


def test_verify_exits_1_when_the_tail_was_cut(bot, cli, capsys) -> None:
    n = _activity(bot)
    conn = sqlite3.connect(bot.settings.db_path, isolation_level=None)
    conn.execute("DROP TRIGGER audit_no_delete")
    conn.execute("DELETE FROM audit WHERE seq = ?", (n,))
    conn.close()
    code, out, _err = cli("audit", "verify", capsys=capsys)
    assert code == 1 and f"BROKEN at row {n}" in out


def test_verify_and_export_never_create_or_write_the_database(bot, cli, capsys, monkeypatch, tmp_path) -> None:
    n = _activity(bot)
    for args in (("audit", "verify"), ("audit", "export")):
        assert cli(*args, capsys=capsys)[0] == 0
    assert bot.store.verify_audit().rows == n  # neither command audited itself or changed a row
    missing = tmp_path / "nowhere" / "cfy-bot.db"
    monkeypatch.setenv("BOT_DB_PATH", str(missing))
    code, _out, err = cli("audit", "verify", capsys=capsys)
    assert code == 1 and "no database at" in err and not missing.exists() and not missing.parent.exists()


def test_export_jsonl_streams_every_field_and_the_chain_can_be_checked_from_it(bot, cli, capsys) -> None:
    n = _activity(bot)
    code, out, _err = cli("audit", "export", "--format", "jsonl", capsys=capsys)
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(rows) == n and [r["seq"] for r in rows] == list(range(1, n + 1))
    prev = "0" * 64
    for r in rows:  # an auditor needs nothing but the export to re-check the chain
        assert r["prev_hash"] == prev
        assert row_hash(r["seq"], r["at"], r["actor"], r["transport"], r["channel"], r["manager"], r["command"],
                        r["event"], r["operation_id"], r["execution_id"], canonical_json(r["detail"]),
                        r["prev_hash"]) == r["hash"]
        prev = r["hash"]


def test_export_csv_since(bot, cli, capsys) -> None:
    _activity(bot)  # the last command ran two hours after the first ones
    code, out, _err = cli("audit", "export", "--format", "csv", "--since", "2026-11-29T10:00:00Z", capsys=capsys)
    table = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and table and all(r["at"] >= "2026-11-29T10:00" for r in table)
    assert list(table[0]) == ["seq", "at", "actor", "transport", "channel", "manager", "command", "event",
                              "operation_id", "execution_id", "detail", "prev_hash", "hash"]
    assert json.loads(table[0]["detail"])["text"] == "snapshots list"
    earlier = cli("audit", "export", "--format", "csv", "--since", "2026-11-29T08:00Z", capsys=capsys)[1]
    assert len(list(csv.DictReader(io.StringIO(earlier)))) > len(table)
    code, _out, err = cli("audit", "export", "--since", "whenever", capsys=capsys)
    assert code == 2 and "--since must be" in err


def test_export_duration_since_is_relative_to_now(bot, cli, capsys) -> None:
    _activity(bot)  # the harness's clock is in 2026-11-29; a wall-clock "24h" may or may not reach it
    code, out, _err = cli("audit", "export", "--since", "24h", capsys=capsys)
    cutoff = datetime.now(UTC).timestamp() - 86400
    for line in out.splitlines():
        at = json.loads(line)["at"]
        assert datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp() >= cutoff
    assert code == 0


def test_export_to_a_reader_that_stops_early(bot, tmp_path) -> None:
    from bot.front.audit import export

    _activity(bot)

    class Closed(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError

    rows = bot.store.iter_audit()
    with pytest.raises(BrokenPipeError):
        export(rows, "jsonl", Closed())
    assert bot.store.verify_audit().ok  # the store's connection was given back
    assert Path(bot.settings.db_path).exists() and os.path.getsize(bot.settings.db_path) > 0


def test_a_snapshot_delete_is_audited_as_a_manager_call(bot) -> None:
    code, out = bot.run(f"snapshots delete {daily(5)}", yes=True)
    assert code == 0, out
    [call] = bot.store.query_audit(event="manager_call", command="snapshots delete", limit=5)
    assert (call["detail"]["method"], call["detail"]["path"]) == ("DELETE", f"/snapshots/{daily(5)}")
    assert call["detail"]["status"] in (200, 204) and call["operation_id"] and call["actor"] == "shell:alice"


def test_verify_prints_a_head_that_expect_head_checks_later(bot, cli, capsys, monkeypatch) -> None:
    _activity(bot)
    code, out, _err = cli("audit", "verify", capsys=capsys)
    head = out.split("head ", 1)[1].split()[0].rstrip(";")
    assert code == 0 and "mode: every row plain sha256" in out
    _activity(bot)
    code, out, _err = cli("audit", "verify", "--expect-head", head, capsys=capsys)
    assert code == 0 and f"is the one seen before ({head})" in out
    seq = int(head.split(":")[0])
    conn = sqlite3.connect(bot.settings.db_path, isolation_level=None)
    conn.execute("DROP TRIGGER audit_no_delete")
    conn.execute("DELETE FROM audit WHERE seq >= ?", (seq,))  # the tail cut, head record rewritten to match
    prev = conn.execute("SELECT hash FROM audit WHERE seq = ?", (seq - 1,)).fetchone()[0]
    conn.execute("UPDATE audit_head SET seq = ?, hash = ?", (seq - 1, prev))
    conn.close()
    assert cli("audit", "verify", capsys=capsys)[0] == 0  # consistent on its own
    code, out, _err = cli("audit", "verify", "--expect-head", head, capsys=capsys)
    assert code == 1 and f"row {seq} (the head seen before) is missing" in out


def test_expect_head_that_is_not_seq_hash_is_a_usage_error(bot, cli, capsys) -> None:
    _activity(bot)
    code, _out, err = cli("audit", "verify", "--expect-head", "yesterday", capsys=capsys)
    assert code == 2 and "--expect-head must be SEQ:HASH" in err and "Traceback" not in err


def test_verify_uses_bot_audit_key_from_the_environment(make_bot, tmp_path, monkeypatch, capsys) -> None:
    key = "0123456789abcdef" * 3
    keyed = make_bot(env={"BOT_AUDIT_KEY": key})
    keyed.run("status")
    monkeypatch.chdir(tmp_path)
    for name, value in {"CLOUDIFY_MANAGER_URL": "http://production.test", "CLOUDIFY_PASSWORD": "admin",
                        "BOT_DB_PATH": keyed.settings.db_path}.items():
        monkeypatch.setenv(name, value)
    assert main(["audit", "verify"]) == 1
    assert "NOT VERIFIED" in capsys.readouterr().out
    monkeypatch.setenv("BOT_AUDIT_KEY", key)
    assert main(["audit", "verify"]) == 0
    assert "every row HMAC-SHA256 under BOT_AUDIT_KEY" in capsys.readouterr().out


def test_verify_needs_only_the_database_and_the_key(make_bot, tmp_path, monkeypatch, capsys) -> None:
    """QA #34: an auditor's machine with a copy of the database and BOT_AUDIT_KEY, and no manager configured."""
    key = "0123456789abcdef" * 3
    keyed = make_bot(env={"BOT_AUDIT_KEY": key})
    keyed.run("status")
    monkeypatch.chdir(tmp_path)
    for name in ("CLOUDIFY_MANAGER_URL", "CLOUDIFY_PASSWORD", "CLOUDIFY_USERNAME", "BOT_CONFIG", "BOT_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BOT_DB_PATH", keyed.settings.db_path)
    monkeypatch.setenv("BOT_AUDIT_KEY", key)
    assert main(["audit", "verify"]) == 0
    assert "every row HMAC-SHA256 under BOT_AUDIT_KEY" in capsys.readouterr().out
    assert main(["audit", "export", "--format", "jsonl"]) == 0 and '"event"' in capsys.readouterr().out
    monkeypatch.setenv("BOT_AUDIT_KEY", "short")  # a bad key is still a configuration problem, said as one
    assert main(["audit", "verify"]) == 2
    assert "BOT_AUDIT_KEY must be at least" in capsys.readouterr().err
