"""Operations in the store: compare-and-set, the per-manager lock, expiry; threads and two processes."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from bot.clock import FakeClock
from bot.core import Operation
from bot.errors import BotError, NotFound, OperationError
from bot.store import Store


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _restore(store: Store, manager: str = "prod", **fields) -> dict:
    base = dict(kind="restore", manager=manager, requester="slack:U1", requester_name="Alice", channel="C1",
                transport="slack", gate="confirm", exclusive=True)
    return store.create_operation(**{**base, **fields})


def _together(n: int, work) -> list:
    """Run work(i) in n threads released at the same instant; results in thread order."""
    barrier, results = threading.Barrier(n), [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except BotError as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


# --- basics ----------------------------------------------------------------------------------------


def test_schema_is_created_once_and_versioned(tmp_path: Path) -> None:
    Store(tmp_path / "bot.db").close()
    Store(tmp_path / "bot.db").close()
    conn = sqlite3.connect(tmp_path / "bot.db")
    assert conn.execute("SELECT version FROM schema_version").fetchall() == [(1,), (2,)]  # v2: drills
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.execute("INSERT INTO schema_version VALUES (99, '')")
    conn.commit()
    conn.close()
    with pytest.raises(BotError, match="newer than this cfy-bot"):
        Store(tmp_path / "bot.db")


def test_create_and_read_back_an_operation(store: Store, clock: FakeClock) -> None:
    op = store.create_operation(kind="snapshots create", manager="prod", requester="shell:bob",
                                args={"snapshot_id": "s1", "flags": ["-f"]}, point_of_no_return=False)
    assert op.id.startswith("op-") and len(op.id) == 9
    assert op.state == "pending" and op.args == {"snapshot_id": "s1", "flags": ["-f"]}
    assert op.result == {} and op.point_of_no_return is False and op.exclusive is False
    assert op.created_at == op.updated_at == "2026-11-18T11:06:40.000000Z"
    assert store.get_operation(op.id) == op
    assert store.get_operation("op-nope") is None
    assert store.create_operation(kind="x", state="approved").state == "approved"


def test_bad_fields_and_states_are_programming_errors(store: Store) -> None:
    op = _restore(store)
    with pytest.raises(ValueError):
        store.create_operation(manager="prod")  # no kind
    with pytest.raises(ValueError):
        store.transition(op.id, "pending", "done")
    with pytest.raises(ValueError):
        store.transition(op.id, "succeeded", "running")  # final states are final
    with pytest.raises(ValueError):
        store.update_operation(op.id, "pending", colour="red")
    with pytest.raises(ValueError):
        store.update_operation(op.id, "pending", state="running")
    with pytest.raises(TypeError):
        store.update_operation(op.id, "pending", result=["not", "a", "dict"])


def test_transition_is_compare_and_set(store: Store, clock: FakeClock) -> None:
    op = _restore(store)
    clock.advance(5)
    approved = store.transition(op.id, "pending", "approved", approved_by="slack:U2",
                                approved_at=clock.now())
    assert approved.state == "approved" and approved.approved_by == "slack:U2"
    assert approved.updated_at > op.updated_at and approved.finished_at == ""
    assert store.transition(op.id, "pending", "approved") is None  # second click: nothing changes
    running = store.transition(op.id, ("approved", "pending"), "running", step="preflight")
    assert running.step == "preflight"
    done = store.transition(op.id, "running", "succeeded", result={"restored": "s1"})
    assert done.finished_at == done.updated_at and done.result == {"restored": "s1"}
    assert store.transition("op-unknown", "pending", "approved") is None


def test_gate_is_part_of_the_compare_and_set(store: Store) -> None:
    op = _restore(store)
    assert store.transition(op.id, "pending", "pending", expect_gate="approve", gate="") is None
    new = store.transition(op.id, "pending", "pending", expect_gate="confirm", gate="approve",
                           confirmed_by="slack:U1")
    assert new.gate == "approve" and new.confirmed_by == "slack:U1"
    assert store.transition(op.id, "pending", "approved", expect_gate="confirm") is None


def test_update_operation_only_in_the_expected_state(store: Store) -> None:
    op = _restore(store, state="running")
    updated = store.update_operation(op.id, "running", step="restoring", execution_id="e1", slack_ts="1.2",
                                     point_of_no_return=True, cancel_requested="slack:U3")
    assert updated.step == "restoring" and updated.point_of_no_return is True
    assert updated.state == "running" and updated.cancel_requested == "slack:U3"
    assert store.update_operation(op.id, "pending", step="nope") is None
    assert store.get_operation(op.id).step == "restoring"


def test_twenty_threads_one_winner(store: Store) -> None:
    for _round in range(5):
        op = store.create_operation(kind="snapshots delete", manager="prod")
        results = _together(20, lambda i, op=op: store.transition(op.id, "pending", "approved",
                                                                   approved_by=f"slack:U{i}"))
        winners = [r for r in results if r is not None]
        assert len(winners) == 1
        assert store.get_operation(op.id).approved_by == winners[0].approved_by


def test_list_and_unfinished_operations(store: Store, clock: FakeClock) -> None:
    ids = []
    for state, manager, kind in [("pending", "prod", "restore"), ("running", "prod", "snapshots create"),
                                 ("succeeded", "prod", "restore"), ("approved", "staging", "restore")]:
        clock.advance(1)
        ids.append(store.create_operation(kind=kind, manager=manager, state=state).id)
    assert [o.id for o in store.list_operations()] == ids[::-1]  # newest first
    assert [o.id for o in store.unfinished_operations()] == [ids[3], ids[1], ids[0]]
    assert [o.id for o in store.list_operations(manager="prod", kinds=["restore"])] == [ids[2], ids[0]]
    assert [o.id for o in store.list_operations(states="running")] == [ids[1]]
    assert [o.id for o in store.list_operations(kinds="restore", states=["approved"])] == [ids[3]]
    assert len(store.list_operations(limit=2)) == 2


# --- the manager lock ------------------------------------------------------------------------------


def test_one_exclusive_operation_per_manager(store: Store) -> None:
    first = _restore(store)
    with pytest.raises(OperationError) as caught:
        store.create_operation(kind="maintenance-mode activate", manager="prod", requester="slack:U9",
                               exclusive=True)
    message = str(caught.value)
    assert first.id in message and "restore" in message and "Alice" in message
    assert caught.value.operation.id == first.id
    assert store.manager_lock_holder("prod").id == first.id
    # other managers and non-exclusive work are not blocked
    _restore(store, manager="staging")
    store.create_operation(kind="snapshots list", manager="prod")
    # the lock goes with the operation's end
    store.transition(first.id, "pending", "cancelled", decided_by="slack:U1")
    assert store.manager_lock_holder("prod") is None
    assert _restore(store).state == "pending"


def test_claim_manager_lock_on_an_existing_operation(store: Store) -> None:
    holder = _restore(store)
    other = store.create_operation(kind="maintenance-mode activate", manager="prod")
    with pytest.raises(OperationError, match=holder.id):
        store.claim_manager_lock(other.id)
    assert store.get_operation(other.id).exclusive is False
    store.transition(holder.id, "pending", "expired")
    assert store.claim_manager_lock(other.id).exclusive is True
    with pytest.raises(NotFound):
        store.claim_manager_lock("op-000000")
    store.transition(other.id, "pending", "cancelled")
    with pytest.raises(OperationError, match="already cancelled"):
        store.claim_manager_lock(other.id)


def test_exclusive_create_from_twenty_threads(store: Store) -> None:
    results = _together(20, lambda i: _restore(store, requester=f"slack:U{i}", requester_name=f"user{i}"))
    winners = [r for r in results if isinstance(r, Operation)]
    losers = [r for r in results if isinstance(r, OperationError)]
    assert len(winners) == 1 and len(losers) == 19
    assert all(winners[0].id in str(e) for e in losers)
    assert len(store.list_operations()) == 1


def _race_worker(path: str, task: str, rounds: int, barrier, results) -> None:
    """One of two bot processes: each round, try to win the same thing as the other process."""
    store = Store(path)
    won = []
    for i in range(rounds):
        barrier.wait()
        if task == "exclusive":
            try:
                store.create_operation(kind="restore", manager=f"m{i}", requester="proc", exclusive=True)
                won.append(i)
            except OperationError:
                pass
        elif task == "claim_run":
            if store.claim_run("prod", f"2026-11-{i + 1:02d}", owner=str(multiprocessing.current_process().pid)):
                won.append(i)
        elif task == "audit":
            store.append_audit("step", actor="system:scheduler", detail={"i": i})
    store.close()
    results.put(won)


def race_two_processes(path: Path, task: str, rounds: int) -> list[list[int]]:
    """Run _race_worker in two spawned processes (a real second bot) and return what each won."""
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_race_worker, args=(str(path), task, rounds, barrier, results)) for _ in range(2)]
    for p in procs:
        p.start()
    won = [results.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    return won


def test_two_processes_race_for_the_manager_lock(tmp_path: Path) -> None:
    Store(tmp_path / "bot.db").close()
    won = race_two_processes(tmp_path / "bot.db", "exclusive", 40)
    assert sorted(won[0] + won[1]) == list(range(40))  # every manager: exactly one winner
    store = Store(tmp_path / "bot.db")
    assert len(store.list_operations()) == 40
    store.close()


# --- expiry ----------------------------------------------------------------------------------------


def test_expire_gates(store: Store, clock: FakeClock) -> None:
    now = clock.now()
    due = _restore(store, expires_at=now + timedelta(seconds=600))
    later = _restore(store, manager="staging", expires_at=now + timedelta(seconds=900))
    running = store.create_operation(kind="x", state="running", expires_at=now)
    no_expiry = store.create_operation(kind="y")
    assert store.expire_gates() == []
    clock.advance(600)
    expired = store.expire_gates()
    assert [o.id for o in expired] == [due.id]
    assert expired[0].state == "expired" and expired[0].finished_at == expired[0].updated_at
    assert store.expire_gates() == []  # already done: nothing twice
    assert [o.id for o in store.expire_gates((now + timedelta(seconds=901)).isoformat())] == [later.id]
    assert store.get_operation(running.id).state == "running"
    assert store.get_operation(no_expiry.id).state == "pending"
    assert store.manager_lock_holder("prod") is None  # an expired gate frees the manager


def test_concurrent_expiry_reports_each_operation_once(store: Store, clock: FakeClock) -> None:
    for i in range(30):
        store.create_operation(kind="x", expires_at=clock.now() + timedelta(seconds=i))
    clock.advance(60)
    results = _together(8, lambda i: store.expire_gates())
    ids = [o.id for batch in results for o in batch]
    assert len(ids) == len(set(ids)) == 30


# --- failures --------------------------------------------------------------------------------------


def test_sqlite_errors_become_bot_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "junk.db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(BotError, match="not a SQLite file"):
        Store(tmp_path / "junk.db")
    with pytest.raises(BotError, match="cannot use"):
        Store(tmp_path)  # a directory
    monkeypatch.setattr("bot.store.base.BUSY_TIMEOUT_S", 0.2)
    store = Store(tmp_path / "bot.db")
    other = sqlite3.connect(tmp_path / "bot.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    with pytest.raises(BotError, match="busy"):
        store.create_operation(kind="x")
    other.execute("ROLLBACK")
    other.close()
    assert store.create_operation(kind="x").state == "pending"
    store.close()
    with pytest.raises(BotError, match="closed"):
        store.get_operation("op-1")


def test_many_short_lived_threads_share_a_small_pool(store: Store) -> None:
    threads = [threading.Thread(target=store.create_operation, kwargs={"kind": "x"}) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store.list_operations()) == 50
    assert len(store._idle) <= 8  # no connection per dead thread


def test_forget_marks_takes_the_prefix_literally(tmp_path, clock) -> None:
    from bot.store import Store

    store = Store(tmp_path / "bot.db", clock=clock)
    try:
        for key in ("a_b:1", "axb:1", "a%b:1", "a_b:2"):
            store.set_mark(key, "v")
        clock.advance(10)
        assert store.forget_marks("a_b:", clock.now()) == 2  # `_` and `%` are not wildcards here
        assert [store.get_mark(k) for k in ("a_b:1", "axb:1", "a%b:1", "a_b:2")] == [None, "v", "v", None]
        assert store.forget_marks("a%", clock.now()) == 1
    finally:
        store.close()
