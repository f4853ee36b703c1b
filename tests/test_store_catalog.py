"""Archive catalog, scheduled runs (exactly once per manager and day) and marks."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.clock import FakeClock
from bot.errors import NotFound
from bot.store import Store
from test_store_ops import _together, race_two_processes


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _copy(store: Store, snapshot_id: str, created_at: str, manager: str = "prod", **fields) -> dict:
    return store.record_copy(manager=manager, snapshot_id=snapshot_id, location=f"{manager}/{snapshot_id}.zip",
                             sha256="ab" * 32, size=1234, manager_version="7.0.0", snapshot_version="7.0.0",
                             tenant="default_tenant", created_at=created_at, **fields)


def test_record_copy_inserts_then_updates(store: Store, clock: FakeClock) -> None:
    first = _copy(store, "s1", "2026-11-27T02:00:00.000Z")
    assert first.verified is False and first.size == 1234
    assert first.created_at == "2026-11-27T02:00:00.000000Z"
    assert first.stored_at == "2026-11-18T11:06:40.000000Z"
    clock.advance(60)
    again = store.record_copy(manager="prod", snapshot_id="s1", size=999)
    assert again.size == 999 and again.sha256 == "ab" * 32  # fields not given are kept
    assert again.stored_at > first.stored_at
    assert store.get_copy("prod", "s1") == again
    assert store.get_copy("prod", "nope") is None
    with pytest.raises(ValueError):
        store.record_copy(manager="prod")
    with pytest.raises(ValueError):
        store.record_copy(manager="prod", snapshot_id="s2", colour="red")


def test_list_verify_and_latest(store: Store) -> None:
    _copy(store, "old", "2026-11-25T02:00:00Z")
    _copy(store, "mid", "2026-11-26T02:00:00Z")
    _copy(store, "new", "2026-11-27T02:00:00Z")
    _copy(store, "other", "2026-11-28T02:00:00Z", manager="staging")
    assert [c.snapshot_id for c in store.list_copies()] == ["other", "new", "mid", "old"]
    assert store.latest_verified("prod") is None
    store.mark_verified("prod", "old", True)
    ok = store.mark_verified("prod", "mid", True)
    assert ok.verified is True and ok.verified_at and ok.error == ""
    bad = store.mark_verified("prod", "new", False, error="sha256 mismatch")
    assert bad.verified is False and bad.error == "sha256 mismatch"
    assert store.latest_verified("prod").snapshot_id == "mid"
    assert [c.snapshot_id for c in store.list_copies("prod", verified=True)] == ["mid", "old"]
    assert [c.snapshot_id for c in store.list_copies("prod", verified=False)] == ["new"]
    with pytest.raises(NotFound):
        store.mark_verified("prod", "ghost", True)
    assert store.delete_copy("prod", "mid") is True
    assert store.delete_copy("prod", "mid") is False
    assert store.latest_verified("prod").snapshot_id == "old"


def test_claim_run_has_one_winner_per_day(store: Store, clock: FakeClock) -> None:
    assert store.claim_run("prod", "2026-11-29", "pid-1") is True
    assert store.claim_run("prod", "2026-11-29", "pid-2") is False
    assert store.claim_run("staging", "2026-11-29", "pid-2") is True
    run = store.get_run("prod", "2026-11-29")
    assert run["state"] == "claimed" and run["owner"] == "pid-1" and run["finished_at"] == ""
    assert store.finish_run("prod", "2026-11-29", "succeeded", owner="pid-2") is None  # not the owner
    done = store.finish_run("prod", "2026-11-29", "succeeded", owner="pid-1", snapshot_id="s1")
    assert done["state"] == "succeeded" and done["snapshot_id"] == "s1" and done["finished_at"]
    assert store.finish_run("prod", "2026-11-29", "failed", error="late") is None  # already finished
    assert store.claim_run("prod", "2026-11-29", "pid-3", stale_after=0) is False  # finished runs stay done
    with pytest.raises(ValueError):
        store.finish_run("staging", "2026-11-29", "claimed")


def test_a_dead_claim_can_be_taken_over(store: Store, clock: FakeClock) -> None:
    assert store.claim_run("prod", "2026-11-29", "dead-pid")
    assert store.claim_run("prod", "2026-11-29", "pid-2", stale_after=3600) is False  # too recent
    clock.advance(3601)
    assert store.claim_run("prod", "2026-11-29", "pid-2", stale_after=3600) is True
    assert store.get_run("prod", "2026-11-29")["owner"] == "pid-2"
    assert store.claim_run("prod", "2026-11-29", "pid-3", stale_after=3600) is False


def test_claim_run_from_twenty_threads(store: Store) -> None:
    results = _together(20, lambda i: store.claim_run("prod", "2026-11-29", f"t{i}"))
    assert results.count(True) == 1
    assert store.get_run("prod", "2026-11-29")["owner"] == f"t{results.index(True)}"


def test_claim_run_from_two_processes(tmp_path: Path) -> None:
    Store(tmp_path / "bot.db").close()
    won = race_two_processes(tmp_path / "bot.db", "claim_run", 30)
    assert sorted(won[0] + won[1]) == list(range(30))
    store = Store(tmp_path / "bot.db")
    assert len(store.list_runs()) == 30
    store.close()


def test_list_runs_newest_first(store: Store) -> None:
    for day in ("2026-11-27", "2026-11-28", "2026-11-29"):
        store.claim_run("prod", day, "p")
    store.claim_run("staging", "2026-11-28", "p")
    assert [(r["manager"], r["day"]) for r in store.list_runs()] == [
        ("prod", "2026-11-29"), ("prod", "2026-11-28"), ("staging", "2026-11-28"), ("prod", "2026-11-27")]
    assert [r["day"] for r in store.list_runs("prod", since_day="2026-11-28")] == ["2026-11-29", "2026-11-28"]


def test_marks(store: Store) -> None:
    key = "summary posted for 2026-11-29 in C123"
    assert store.get_mark(key) is None
    assert store.claim_mark(key, "1732845600.000100") is True
    assert store.claim_mark(key, "other") is False
    assert store.get_mark(key) == "1732845600.000100"
    store.set_mark(key, "replaced")
    assert store.get_mark(key) == "replaced"
    results = _together(20, lambda i: store.claim_mark("race", str(i)))
    assert results.count(True) == 1 and store.get_mark("race") == str(results.index(True))
