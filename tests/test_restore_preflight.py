"""The guided restore's preflight refuses, touching nothing, what the manager would refuse only after maintenance
mode and cancellations (issue 14, point 1), and its card says what will really happen by version (point 2)."""

from __future__ import annotations

import io
import json
import os
import zipfile
from typing import Any

import pytest

from sim_fixtures import daily
from test_archive import download, snapshot_zip

MUTATING = ("POST", "PUT", "PATCH", "DELETE")


def untouched(bot: Any) -> None:
    """No operation was created and no call that changes the manager was made (every such call is audited)."""
    assert bot.store.list_operations(limit=5) == []
    calls = bot.store.query_audit(event="manager_call", limit=50)
    assert [c["detail"]["method"] for c in calls if c["detail"]["method"] in MUTATING] == []
    assert bot.sim.state.maintenance["status"] == "deactivated"
    assert not [e for e in bot.sim.state.executions.values() if e["workflow_id"] == "restore_snapshot"]


def archived(bot: Any, sid: str, **zip_kw: Any) -> None:
    bot.services.archive.save("production", sid, download(snapshot_zip(**zip_kw)), manager_version="7.0.5")


def test_a_legacy_snapshot_without_force_on_a_manager_with_blueprints_is_refused_up_front(make_bot) -> None:
    bot = make_bot(scheduled=True)  # 4 live scheduled executions the old flow cancelled before the refusal
    snap = daily(1)
    assert bot.run(f"snapshots download {snap}")[0] == 0  # the archive copy tells the format: legacy
    before = {e["id"]: e["status"] for e in bot.sim.state.executions.values()}
    blueprints = sum(len(v) for v in bot.sim.state.blueprints.values())
    deployments = sum(len(v) for v in bot.sim.state.deployments.values())
    ops_before = len(bot.store.list_operations(limit=50))
    code, out = bot.run(f"restore {snap}", yes=True, approver="bob")
    assert code == 1, out
    assert f"{snap} is a legacy-format snapshot (7.0.5; metadata.json in its archive copy of production) and " \
           f"production has {blueprints} blueprints and {deployments} deployments (all tenants counted)" in out
    assert "Nothing was changed. To replace them, run `restore " in out and " -f`." in out
    assert len(bot.store.list_operations(limit=50)) == ops_before  # no restore operation at all
    assert {e["id"]: e["status"] for e in bot.sim.state.executions.values()} == before  # nothing cancelled
    assert bot.sim.state.maintenance["status"] == "deactivated"
    assert not [e for e in bot.sim.state.executions.values() if e["workflow_id"] == "restore_snapshot"]


def test_a_snapshot_newer_than_the_manager_is_refused_before_anything(make_bot) -> None:
    bot = make_bot()
    archived(bot, "future-1", layout="new", version="7.1.0")
    code, out = bot.run("restore future-1 -f", yes=True, approver="bob")
    assert code == 1, out
    assert ("future-1 was taken on Cloudify 7.1.0 (metadata.json in its archive copy of production), newer than "
            "production's 7.0.5: a new-format restore checks no version, so the manager would try it") in out
    assert "Nothing was changed." in out
    untouched(bot)


def test_a_snapshot_older_than_4_0_is_refused(make_bot) -> None:
    bot = make_bot()
    archived(bot, "ancient-1", layout="legacy", version="3.4.2")
    code, out = bot.run("restore ancient-1 -f", yes=True, approver="bob")
    assert code == 1 and "snapshots of 4.0 and later only. Nothing was changed." in out, out
    untouched(bot)


def test_a_snapshot_only_on_the_manager_is_known_from_the_first_bytes_of_the_manager_s_copy(make_bot) -> None:
    bot = make_bot()
    snap = daily(1)  # on the manager, no archive copy: the preflight reads metadata.json from the manager's copy
    code, out = bot.run(f"restore {snap}", yes=True, approver="bob")
    assert code == 1, out
    assert f"{snap} is a legacy-format snapshot (7.0.5; metadata.json in the first " in out
    assert " of production's copy) and production has 4 blueprints and 4 deployments" in out
    assert f"`restore {snap} -f`" in out and "Nothing was changed." in out
    untouched(bot)
    assert bot.store.get_copy("production", snap) is None  # read for the card, never stored


def _on_manager(bot: Any, sid: str, data: bytes) -> None:
    bot.services.managers["production"].upload_snapshot(sid, chunks=iter([data]))


def _legacy_with_metadata_last(dump: int) -> bytes:
    """A legacy archive as cfy's make_zip64_archive may write it: members in directory order, the database dump
    (`dump` bytes) before metadata.json."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("pg_data", os.urandom(dump))
        zf.writestr("metadata.json", json.dumps({"snapshot_version": "7.0.5", "schema_revision": "a",
                                                 "stage_schema_revision": "b", "composer_schema_revision": "c"}))
    return buf.getvalue()


def test_metadata_after_a_large_dump_is_not_read_and_the_format_stays_unknown(make_bot) -> None:
    bot = make_bot()
    _on_manager(bot, "big-1", _legacy_with_metadata_last(9 << 20))
    code, out = bot.run("restore big-1", yes=True, approver="bob")
    assert code == 1, out
    assert ("the bot cannot tell whether big-1 is a legacy-format snapshot (the bot has no archive copy of it; "
            "the manager's copy: its metadata.json is not in its first 8 MiB") in out
    assert "`snapshots download big-1`" in out and "`restore big-1 -f`" in out and "Nothing was changed." in out
    assert bot.store.list_operations(limit=5) == [] and bot.sim.state.maintenance["status"] == "deactivated"


def test_the_head_read_stops_at_metadata_json_or_at_its_limit() -> None:
    from bot.archive.verify import head_format
    from bot.errors import ArchiveError

    consumed: list[int] = []

    def chunks(data: bytes, size: int = 1 << 20):
        for at in range(0, len(data), size):
            consumed.append(size)
            yield data[at:at + size]

    new = snapshot_zip(layout="new", version="7.0.5", payload=os.urandom(20 << 20))  # metadata.json first
    version, layout, read = head_format(chunks(new))
    assert (version, layout) == ("7.0.5", "new") and read <= 64 * 1024 and sum(consumed) == 1 << 20
    consumed.clear()
    with pytest.raises(ArchiveError, match="not in its first 8 MiB"):
        head_format(chunks(_legacy_with_metadata_last(20 << 20)))
    assert sum(consumed) == 8 << 20  # it stopped there: 8 of the 20 MiB were asked for
    streamed = io.BytesIO()
    with zipfile.ZipFile(_Unseekable(streamed), "w") as zf:  # written to a pipe: sizes after each member's data
        zf.writestr("pg_data", b"x" * 100)
        zf.writestr("metadata.json", b"{}")
    with pytest.raises(ArchiveError, match="data descriptor"):
        head_format(iter([streamed.getvalue()]))
    with pytest.raises(ArchiveError, match="no metadata.json at its root"):
        head_format(iter([_zip_without_metadata()]))


class _Unseekable(io.RawIOBase):
    def __init__(self, sink: io.BytesIO) -> None:
        self.sink = sink

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        return self.sink.write(data)


def _zip_without_metadata() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("pg_data", "-- dump\n")
    return buf.getvalue()


def test_a_new_format_card_says_the_manager_checks_nothing_and_the_bot_checks_after(make_bot) -> None:
    bot = make_bot(seed=False)
    archived(bot, "fresh-1", layout="new", version="7.0.5")
    code, out = bot.run("restore fresh-1", yes=True)  # left waiting for the approval: exit 3
    assert code == 3, out
    assert ("fresh-1 is a new-format snapshot (7.0.5; metadata.json in its archive copy of production): the manager "
            "does no emptiness check and only logs per-entity conflicts (an entity it already has is not replaced), "
            "so afterwards the bot compares the tenants, "
            "blueprints, deployments, secrets and plugins the snapshot holds (its archive copy) with what the manager "
            "has") in out
    assert "marks no execution FAILED" in out
    assert ("restore snapshot fresh-1, which adds the snapshot's entities to what the manager has (it replaces "
            "none)") in out and "replaces everything" not in out


def test_a_legacy_card_on_7x_says_every_scheduled_execution_is_marked_failed(make_bot) -> None:
    bot = make_bot()
    snap = daily(1)
    assert bot.run(f"snapshots download {snap}")[0] == 0
    code, out = bot.run(f"restore {snap} -f", yes=True)
    assert code == 3, out
    assert "marks every `scheduled` execution in the snapshot's data FAILED, and re-creates those due later as " \
           "execution schedules" in out
    assert "-f deletes the" in out and "overdue scheduled ones are then marked FAILED, later ones kept" not in out


def test_each_execution_the_bot_cancels_is_journaled_whole_and_reported_after(make_bot) -> None:
    bot = make_bot(scheduled=True)  # 4 live scheduled executions keep maintenance mode activating
    live = {e["id"] for e in bot.sim.state.executions.values() if e["status"] == "scheduled"}
    assert len(live) == 4
    code, out = bot.run(f"restore {daily(1)} -f", yes=True, approver="bob")
    assert code == 0, out
    op = bot.store.list_operations(limit=1)[0]
    journaled = op.journal["cancelled"]
    assert {e["id"] for e in journaled} == live
    for e in journaled:
        assert e["workflow_id"] and e["deployment_id"] and e["tenant_name"] and e["scheduled_for"]
        assert "parameters" in e
    for eid in live:  # read back from the manager after the restore, never assumed
        assert f"execution {eid} (" in out and "cancelled by the bot before the restore: now " in out
    # a 6.0+ legacy restore marks them FAILED and re-creates the 3 due later as execution schedules: the report
    # says so for those, and says how to re-create only the overdue one (it agrees with the schedules line)
    assert out.count("re-created by the restore as execution schedule ") == 3
    assert "3 later ones marked FAILED and re-scheduled" in out
    assert "cancelled by the bot  4 cancelled by the bot; 1 not brought back by the restore" in out
    assert out.count("to re-create ") == 1


def test_a_failed_restore_reports_steps_that_did_not_run_as_not_run(make_bot) -> None:
    bot = make_bot()
    bot.sim.faults.fail_next("restore_snapshot", "pg_restore: could not connect")
    code, out = bot.run(f"restore {daily(1)} -f", yes=True, approver="bob")
    assert code == 1, out
    assert "deactivate not run" in out and "deactivate 0s" not in out
    assert "still ON after the failed restore" in out


def test_the_preflight_reads_past_maintenance_mode_left_on_by_a_failed_restore(make_bot) -> None:
    bot = make_bot()
    snap = daily(1)
    assert bot.run(f"snapshots download {snap}")[0] == 0
    bot.sim.state.maintenance["status"] = "activated"  # as a failed restore leaves it
    code, out = bot.run(f"restore {snap}", yes=True, approver="bob")
    assert code == 1 and "legacy-format snapshot" in out and "maintenance mode" not in out.split("Failed", 1)[1]
    assert bot.sim.state.maintenance["status"] == "activated"  # left as it was: nothing changed
