"""`backups run` that finds today's run in progress in another process follows it to its end and exits with its
result (issue 14 point 5): 0 when the followed run succeeded, 1 when it failed. The other process is its rows in
the shared SQLite store (the claim and its running operation), which it changes while this one waits; the wait
is on the injected clock, so nothing sleeps for real."""

from __future__ import annotations

from typing import Any

from sim_fixtures import daily

DAY = "2026-11-29"  # the harness starts at 2026-11-29 09:00 UTC
OTHER = "otherhost:4242/op-other"


def _other_run_in_progress(bot) -> dict[str, Any]:
    """Another process claimed today's run and works on it: its claim and its running `backups run` operation."""
    assert bot.store.claim_run("production", DAY, OTHER)
    return bot.store.create_operation(kind="backups run", manager="production", requester="system:scheduler",
                                      requester_name="scheduler", state="running", step="copying off",
                                      args={"day": DAY, "run": DAY, "owner": OTHER})


def _ends_after(bot, op: dict[str, Any], sleeps: int, state: str, error: str = "") -> list[float]:
    """After `sleeps` of the follower's sleeps, the other process ends its run as `state`; the sleeps seen."""
    seen: list[float] = []
    real_sleep = bot.clock.sleep

    def sleep(seconds: float) -> None:
        seen.append(seconds)
        real_sleep(seconds)
        if len(seen) == sleeps:
            bot.store.finish_run("production", DAY, state, owner=OTHER, error=error,
                                 snapshot_id=daily(0) if state == "succeeded" else "")
            bot.store.transition(op.id, "running", state, step="done" if state == "succeeded" else "failed",
                                 error=error or None)

    bot.clock.sleep = sleep  # type: ignore[method-assign]
    return seen


def test_a_run_already_in_progress_is_followed_and_its_success_exits_0(make_bot) -> None:
    bot = make_bot(seed=False)
    op = _other_run_in_progress(bot)
    seen = _ends_after(bot, op, 3, "succeeded")
    code, out = bot.run("backups run")
    assert code == 0, out
    assert f"the daily backup of production is already running as operation {op.id}; following it" in out
    assert f"The daily backup of production ran as operation {op.id} and succeeded: done" in out
    assert "ALERT" not in out and "Failed" not in out
    assert seen == [2.0, 2.0, 2.0]  # it polled the store every 2 s on the injected clock until the run ended
    assert bot.sim.state.executions == {} or all(e["workflow_id"] != "create_snapshot"
                                                 for e in bot.sim.state.executions.values())  # it made nothing
    assert bot.store.get_run("production", DAY)["owner"] == OTHER


def test_a_followed_run_that_fails_exits_1_with_its_reason(make_bot) -> None:
    bot = make_bot(seed=False)
    op = _other_run_in_progress(bot)
    _ends_after(bot, op, 2, "failed", error="the archive folder is full")
    code, out = bot.run("backups run")
    assert code == 1, out
    assert (f"the daily backup of production ran as operation {op.id} and ended failed: the archive folder is "
            "full") in out
    assert all(e["workflow_id"] != "create_snapshot" for e in bot.sim.state.executions.values())


def test_a_followed_run_still_running_after_the_limit_exits_1_and_names_it(make_bot) -> None:
    from commands.backup_jobs import FOLLOW_LIMIT_S

    bot = make_bot(seed=False)
    op = _other_run_in_progress(bot)
    seen = _ends_after(bot, op, 10 ** 9, "succeeded")  # never ends
    code, out = bot.run("backups run")
    assert code == 1, out
    assert f"operation {op.id} is still running after 6h 0m; `operations` shows it" in out
    assert sum(seen) == FOLLOW_LIMIT_S
