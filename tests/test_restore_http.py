"""Issue 14 over real sockets: the guided restore's preflight, its re-check at approval and its report, with the
simulator served on 127.0.0.1, the real client (its own transport, the direct download path) and two logins.

The in-process cases are in test_restore_preflight.py, test_restore_recheck.py and test_restore_summary.py; these
check that the same answers come back when every manager call crosses HTTP."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sim_fixtures import daily, served, served_settings

from bot.engine.dispatch import Dispatcher
from bot.front.shell import Terminal, shell_actor
from bot.front.wiring import build_services
from simulator import Simulator
from simulator.seed import seed_demo


@pytest.fixture
def http_bot(tmp_path: Path, clock: Any) -> Iterator[tuple[Simulator, Dispatcher]]:
    sim = Simulator(now=clock.time, sleep=clock.sleep, data_dir=str(tmp_path / "sim"))
    seed_demo(sim, "healthy")
    with served(sim) as url:
        settings = served_settings(url, str(tmp_path / "bot"))
        dispatcher = Dispatcher(build_services(settings, clock=clock))
        try:
            yield sim, dispatcher
        finally:
            dispatcher.services.store.close()


def _run(dispatcher: Dispatcher, user: str, text: str, yes: bool = False) -> tuple[int, str]:
    out = io.StringIO()
    code = Terminal(dispatcher, out=out, actor=shell_actor(user)).run(text, yes=yes)
    return code, out.getvalue()


def _restores(sim: Simulator) -> list[dict[str, Any]]:
    return [e for e in sim.state.executions.values() if e["workflow_id"] == "restore_snapshot"]


def _mutating_calls(dispatcher: Dispatcher) -> list[dict[str, Any]]:
    rows = dispatcher.services.store.query_audit(event="manager_call", limit=500)
    return [r for r in rows if (r.get("detail") or {}).get("method") not in (None, "GET", "HEAD")]


def test_refused_up_front_over_http_touches_nothing(http_bot) -> None:
    sim, dispatcher = http_bot
    snap = daily(1)
    code, out = _run(dispatcher, "alice", f"restore {snap}", yes=True)
    assert code == 1, out
    assert f"{snap} is a legacy-format snapshot" in out and "Nothing was changed" in out, out
    assert f"run `restore {snap} -f`" in out, out
    assert sim.state.maintenance["status"] == "deactivated"
    assert _restores(sim) == []
    assert dispatcher.services.store.list_operations(kinds="restore") == []
    assert _mutating_calls(dispatcher) == []


def test_success_over_http_with_a_second_login(http_bot) -> None:
    sim, dispatcher = http_bot
    snap = daily(1)
    code, out = _run(dispatcher, "alice", f"restore {snap} -f", yes=True)
    assert code == 3, out  # waiting for another person
    [op] = dispatcher.services.store.list_operations(kinds="restore")
    code, mine = _run(dispatcher, "alice", f"approve {op.id}")
    assert code == 1 and "second admin" in mine, mine  # the requester cannot approve her own restore
    code, out = _run(dispatcher, "bob", f"approve {op.id}")
    assert code == 0, out
    [execution] = _restores(sim)
    assert execution["status"] == "terminated"
    assert "copy off" in out, out  # the manager's copy was taken off first, over HTTP (the direct download path)
    assert f"OK Restored {snap} on production (requested by alice, approved by bob)." in out, out
    assert f"execution             {execution['id']} terminated" in out, out
    assert "maintenance mode      deactivated" in out, out
    assert sim.state.maintenance["status"] == "deactivated"
    final = dispatcher.services.store.get_operation(op.id)
    assert final is not None and final.state == "succeeded"
    assert dispatcher.services.store.get_copy("production", snap) is not None
    assert {c["detail"]["method"] for c in _mutating_calls(dispatcher)} >= {"POST"}  # the audit sees what changes


def test_snapshot_deleted_while_waiting_is_refused_at_approval_over_http(http_bot) -> None:
    sim, dispatcher = http_bot
    snap = daily(1)
    code, out = _run(dispatcher, "alice", f"restore {snap} -f", yes=True)
    assert code == 3, out
    [op] = dispatcher.services.store.list_operations(kinds="restore")
    del sim.state.snapshots["default_tenant"][snap]  # gone behind the bot's back (cfy, another admin)
    before = len(_mutating_calls(dispatcher))
    code, out = _run(dispatcher, "bob", f"approve {op.id}")
    assert code == 1, out
    assert f"snapshot {snap} was deleted from production since the card of {op.id}" in out, out
    assert "Nothing was changed" in out, out
    assert sim.state.maintenance["status"] == "deactivated"
    assert _restores(sim) == []
    assert len(_mutating_calls(dispatcher)) == before
