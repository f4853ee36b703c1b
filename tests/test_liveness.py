"""Whose operation is it, and is that process alive? Heartbeats keep a quiet operation owned; a silent owner
on another host is given up on after OTHER_HOST_STALE, and one on this host as soon as its pid is gone."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from sim_fixtures import eventually

from bot.core import Actor, Invocation
from bot.engine.liveness import OTHER_HOST_STALE, RUNNING_HERE, heartbeat, owner, owner_alive
from bot.store import Store


@pytest.fixture
def store(tmp_path, clock) -> Any:
    s = Store(tmp_path / "bot.db", clock=clock)
    yield s
    s.close()


def beating(op_id: str) -> bool:
    """Is the heartbeat thread of `op_id` still alive?"""
    return any(t.name == f"heartbeat-{op_id}" and t.is_alive() for t in threading.enumerate())


def running(store: Store, who: str) -> dict:
    op = store.create_operation(kind="maintenance-mode activate", manager="prod", requester="shell:alice",
                                requester_name="alice", channel="terminal", transport="shell", gate="confirm")
    store.transition(op.id, "pending", "approved")
    return store.transition(op.id, "approved", "running", result={"journal": {"owner": who}})


def test_a_heartbeat_refreshes_a_quiet_running_operation_until_the_block_ends(store, clock) -> None:
    op = running(store, owner())
    with heartbeat(store, op.id, every=0.02):
        assert op.id in RUNNING_HERE
        clock.advance(60)
        assert eventually(lambda: store.get_operation(op.id).updated_at > op.updated_at)
    assert op.id not in RUNNING_HERE
    assert not beating(op.id)  # leaving the block ended the thread: no beats from here on


def test_a_heartbeat_stops_by_itself_once_the_operation_is_no_longer_running(store, clock) -> None:
    op = running(store, owner())
    with heartbeat(store, op.id, every=0.02):
        store.transition(op.id, "running", "failed", error="x")
        assert eventually(lambda: not beating(op.id))  # its next beat finds it no longer running
        assert store.get_operation(op.id).state == "failed"


def test_another_hosts_operation_is_alive_while_its_heartbeat_is_fresh(store, clock) -> None:
    op = running(store, "other-host.example:4242")
    assert owner_alive(op, clock.now() + timedelta(seconds=OTHER_HOST_STALE - 1))
    assert not owner_alive(op, clock.now() + timedelta(seconds=OTHER_HOST_STALE + 1))


def test_on_this_host_the_pid_decides(store, clock) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = running(store, f"{socket.gethostname()}:{gone.stdout.strip()}")
    assert not owner_alive(dead, clock.now())  # however recent its last update
    mine = running(store, owner())
    assert not owner_alive(mine, clock.now())  # this process, but not executing it (it died in a thread)
    RUNNING_HERE.add(mine.id)
    try:
        assert owner_alive(mine, clock.now() + timedelta(days=1))  # executing it here: alive however quiet
    finally:
        RUNNING_HERE.discard(mine.id)
    assert not owner_alive(replace(mine, result={}), clock.now())  # no owner recorded: nobody runs it


def test_reconcile_leaves_a_live_peers_operation_and_takes_over_a_silent_ones(make_bot) -> None:
    bot = make_bot()
    alice = Actor("shell:alice", "alice", "shell")
    bot.dispatcher.handle(Invocation("maintenance-mode activate", alice, "terminal", "shell", bot.clock.now()))
    op = bot.store.list_operations()[0]
    bot.store.transition(op.id, "pending", "approved")
    bot.store.transition(op.id, "approved", "running", step="maintenance mode requested",
                         result={"journal": {"owner": "other-host.example:4242"}})
    bot.clock.advance(OTHER_HOST_STALE / 2)
    assert bot.dispatcher.operations.reconcile() == []  # its heartbeat is recent: the peer is on it
    bot.clock.advance(OTHER_HOST_STALE)
    [settled] = bot.dispatcher.operations.reconcile()  # silent for longer than the margin: taken over
    assert settled.id == op.id and settled.state == "succeeded"
