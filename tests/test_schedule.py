"""The scheduler (bot/schedule/scheduler.py) with the injected clock: once a day, catch-up after downtime, time zones
and daylight-saving changes, clock jumps, failing and maintenance-mode managers, restarts, two processes racing
for the same run on one SQLite file, and the thread."""

from __future__ import annotations

import multiprocessing
import os
import threading
from datetime import UTC, date, datetime

import pytest
from sim_fixtures import eventually, daily

from bot.clock import FakeClock
from bot.schedule.runs import claim_day
from bot.schedule.notify import MemoryNotifier
from bot.schedule.scheduler import Scheduler, start_scheduler

ENV = {"BOT_TIMEZONE": "Europe/Berlin", "BOT_SUMMARY_CHANNEL": "C-SUMMARY", "BOT_ALERT_CHANNEL": "C-ALERT"}


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def scheduler(bot) -> tuple[Scheduler, MemoryNotifier]:
    notes = MemoryNotifier()
    return Scheduler(bot.services, notes, bot.dispatcher), notes


def runs(bot, manager: str = "production") -> dict[str, dict]:
    return {r["day"]: r for r in sorted(bot.store.list_runs(manager), key=lambda r: r["day"])}


def creates(sim) -> list[str]:
    return sorted(e["parameters"]["snapshot_id"] for e in sim.state.executions.values()
                  if e["workflow_id"] == "create_snapshot")


def tick_until(s: Scheduler, clock: FakeClock, end: datetime, step: float = 1800.0) -> None:
    while clock.now() < end:
        clock.advance(step)
        s.tick()


def test_once_a_day_at_the_scheduled_time(make_bot, clock) -> None:
    bot = make_bot(seed=False, env=ENV)
    s, notes = scheduler(bot)
    assert s.tick() == []  # 10:00 CET: today's 02:00 was before scheduling began, so it is not caught up
    assert s.tick() == []
    tick_until(s, clock, utc(2026, 12, 2, 12))
    assert {d: r["state"] for d, r in runs(bot).items()} == {
        "2026-11-30": "succeeded", "2026-12-01": "succeeded", "2026-12-02": "succeeded"}
    assert creates(bot.sim) == [f"{daily(-1)}", f"{daily(-2)}", f"{daily(-3)}"]
    # each ran at the first tick after 02:00 CET (01:00 UTC), not before
    assert [r["claimed_at"][:16] for r in runs(bot).values()] == ["2026-11-30T01:00", "2026-12-01T01:00",
                                                                  "2026-12-02T01:00"]
    posts = notes.of("post")
    assert [m.channel for m in posts] == ["C-SUMMARY"] * 3 and not notes.of("alert")
    assert "Backups are good" in posts[-1].reply.title and f"{daily(-3)}" in posts[-1].reply.text
    invoked = bot.store.query_audit(event="invoke", command="backups run", limit=10)
    assert {r["actor"] for r in invoked} == {"system:scheduler"} and {r["transport"] for r in invoked} == {"schedule"}
    summary = bot.store.query_audit(event="summary_posted", limit=10)
    assert [r["detail"]["day"] for r in summary] == ["2026-12-02", "2026-12-01", "2026-11-30"]


def test_a_run_missed_while_the_bot_was_down_is_caught_up_at_start_up(make_bot, clock) -> None:
    bot = make_bot(seed=False, env=ENV)
    scheduler(bot)[0].tick()  # scheduling begins on 2026-11-29
    clock.set(utc(2026, 12, 2, 9))  # the bot was down through three firings
    s, notes = scheduler(bot)  # a new process
    assert s.tick() == ["production"]
    assert {d: r["state"] for d, r in runs(bot).items()} == {
        "2026-11-30": "skipped", "2026-12-01": "skipped", "2026-12-02": "succeeded"}
    assert runs(bot)["2026-11-30"]["error"].startswith("missed: the bot was not running at 2026-11-30 02:00 CET")
    assert creates(bot.sim) == [f"{daily(-3)}"]  # one catch-up, not three
    [alert] = notes.of("alert")
    assert alert.channel == "C-ALERT" and alert.reply.title == "Daily backup of production did not run"
    assert "production: the daily backup of 2026-11-30 was skipped: missed" in alert.reply.text
    assert "2026-12-01 was skipped: missed" in alert.reply.text
    [catch_up] = bot.store.query_audit(event="schedule_catch_up")
    assert catch_up["actor"] == "system:scheduler" and catch_up["detail"]["late_s"] == 8 * 3600
    assert len(bot.store.query_audit(event="schedule_missed")) == 2
    assert len(notes.of("post")) == 1
    s.tick()
    assert len(notes.messages) == 2 and creates(bot.sim) == [f"{daily(-3)}"]


def test_a_clock_jump_never_runs_a_day_twice(make_bot, clock) -> None:
    bot = make_bot(seed=False, env=ENV)
    s, _ = scheduler(bot)
    s.tick()
    tick_until(s, clock, utc(2026, 12, 1, 12))
    clock.set(utc(2026, 11, 30, 12))  # NTP steps the clock back a day
    s.tick()
    clock.set(utc(2026, 12, 1, 1, 30))
    s.tick()
    assert creates(bot.sim) == [f"{daily(-1)}", f"{daily(-2)}"]


@pytest.mark.parametrize("start, end, expected", [
    # spring forward, 2026-03-29: 02:30 does not exist, so it runs at 03:00 CEST (01:00 UTC)
    (utc(2026, 3, 27, 12), utc(2026, 3, 31), {"2026-03-28": "2026-03-28T01:30", "2026-03-29": "2026-03-29T01:00",
                                               "2026-03-30": "2026-03-30T00:30"}),
    # fall back, 2026-10-25: 02:30 happens twice; it runs at the first (00:30 UTC), once
    (utc(2026, 10, 24, 12), utc(2026, 10, 27), {"2026-10-25": "2026-10-25T00:30", "2026-10-26": "2026-10-26T01:30"}),
])
def test_daylight_saving_changes_in_berlin(make_bot, clock, start, end, expected) -> None:
    clock.set(start)
    bot = make_bot(seed=False, env={**ENV, "BOT_BACKUP_SCHEDULE": "30 2 * * *"})
    s, notes = scheduler(bot)
    s.tick()
    tick_until(s, clock, end, step=900.0)
    assert {d: r["claimed_at"][:16] for d, r in runs(bot).items()} == expected
    assert creates(bot.sim) == [f"daily-{d.replace('-', '')}" for d in sorted(expected)]
    assert not notes.of("alert")


def test_a_failing_manager_alerts_at_once_naming_the_manager_and_the_error(make_bot, clock) -> None:
    bot = make_bot(seed=False, env=ENV)
    s, notes = scheduler(bot)
    s.tick()
    bot.sim.faults.fail_next("create_snapshot", "pg_dump: FATAL: remaining connection slots are reserved")
    clock.set(utc(2026, 11, 30, 1, 0))
    s.tick()
    [alert] = notes.of("alert")
    assert alert.channel == "C-ALERT" and alert.reply.title == "Daily backup of production failed"
    assert alert.reply.text.startswith(f"production: the daily backup of 2026-11-30 ({daily(-1)}) FAILED: "
                                       f"Snapshot {daily(-1)} failed on production: ")
    assert "remaining connection slots are reserved" in alert.reply.text
    [sent] = bot.store.query_audit(event="alert_sent")
    assert sent["actor"] == "system:scheduler" and sent["manager"] == "production" and sent["channel"] == "C-ALERT"
    [post] = notes.of("post")
    assert post.reply.tone == "danger" and "without a recent verified backup" in post.reply.title
    assert "2026-11-30 failed" in post.reply.text
    s.tick()  # alerted once, whatever the number of ticks
    assert len(notes.of("alert")) == 1


def test_a_manager_in_maintenance_mode_is_skipped_with_an_alert(make_bot, clock) -> None:
    bot = make_bot(managers=("production", "staging"), seed=False, env=ENV)
    s, notes = scheduler(bot)
    s.tick()
    bot.services.managers["staging"].maintenance_activate()
    clock.set(utc(2026, 11, 30, 1, 0))
    assert sorted(s.tick()) == ["production", "staging"]
    assert runs(bot)["2026-11-30"]["state"] == "succeeded"
    assert runs(bot, "staging")["2026-11-30"]["state"] == "skipped"
    assert not creates(bot.sims["staging"])
    [alert] = notes.of("alert")
    assert alert.reply.title == "Daily backup of staging did not run"
    assert "staging is in maintenance mode (activated)" in alert.reply.text
    [post] = notes.of("post")  # one summary of both managers, once both runs ended
    assert f"production: newest verified backup {daily(-1)}" in post.reply.text
    assert "ALARM staging" in post.reply.text


def test_a_restart_in_the_middle_resumes_the_run_and_never_starts_a_second(make_bot, clock, monkeypatch) -> None:
    from bot.engine.follow import ExecutionFollower

    class Crash(BaseException):
        pass

    class Crashing(ExecutionFollower):  # the process dies while following the create
        def follow_execution(self, ctx, execution_id, *, timeout=None):
            raise Crash

    bot = make_bot(seed=False, env=ENV)
    s, notes = scheduler(bot)
    s.tick()
    clock.set(utc(2026, 11, 30, 1, 0))
    monkeypatch.setattr(bot.services, "follower", Crashing())
    with pytest.raises(Crash):
        s.tick()  # the process dies while following the create
    monkeypatch.undo()
    assert runs(bot)["2026-11-30"]["state"] == "claimed"
    clock.advance(600)
    s2, notes = scheduler(bot)  # the restarted process ticks before reconciling: the run is someone's, left alone
    assert s2.tick() == []
    bot.dispatcher.operations.reconcile()
    assert runs(bot)["2026-11-30"]["state"] == "succeeded"
    assert creates(bot.sim) == [f"{daily(-1)}"]
    s2.tick()
    assert [m.kind for m in notes.messages] == ["post"]


def test_a_claim_whose_process_died_before_its_operation_is_taken_over(make_bot, clock) -> None:
    bot = make_bot(seed=False, env=ENV)
    s, _ = scheduler(bot)
    s.tick()
    clock.set(utc(2026, 11, 30, 1, 0))
    assert bot.store.claim_run("production", "2026-11-30", "ghost:1/abc")  # then it died
    clock.advance(30)
    assert s.tick() == []  # too fresh: its operation may be on its way
    clock.advance(300)
    assert s.tick() == ["production"]
    assert runs(bot)["2026-11-30"]["state"] == "succeeded"
    [taken] = bot.store.query_audit(event="run_taken_over")
    assert taken["detail"]["previous_owner"] == "ghost:1/abc"


def test_the_scheduler_thread_catches_up_at_once_ticks_and_stops(make_bot, clock) -> None:
    bot = make_bot(seed=False, env=ENV)
    bot.store.claim_mark("schedule:since:production", "2026-11-28T12:00:00+00:00")
    stop, notes = threading.Event(), MemoryNotifier()
    thread = start_scheduler(bot.services, notes, stop, dispatcher=bot.dispatcher, poll=0.01)
    try:
        assert eventually(lambda: (runs(bot).get("2026-11-29") or {}).get("state") == "succeeded", 20)  # catch-up
        clock.set(utc(2026, 11, 30, 1, 0, 5))
        assert eventually(lambda: (runs(bot).get("2026-11-30") or {}).get("state") == "succeeded", 20)
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    assert creates(bot.sim) == [f"{daily(0)}", f"{daily(-1)}"]
    assert len(notes.of("post")) == 2


def test_a_bad_schedule_refuses_to_start(make_bot) -> None:
    from bot.errors import ConfigError

    from dataclasses import replace

    with pytest.raises(ConfigError, match="hour: 25 is out of range"):  # listed with the other config problems
        make_bot(seed=False, env={"BOT_BACKUP_SCHEDULE": "0 25 * * *"})
    bot = make_bot(seed=False)
    bot.services.settings = replace(bot.services.settings, backup_schedule="0 25 * * *")
    with pytest.raises(ConfigError, match="hour: 25 is out of range"):  # and the scheduler checks it again
        start_scheduler(bot.services, MemoryNotifier(), threading.Event())


def test_a_notifier_that_fails_does_not_stop_the_backups(make_bot, clock) -> None:
    class Broken:
        def post(self, channel, reply):
            raise RuntimeError("Slack is down")

        alert = post

    bot = make_bot(seed=False, env=ENV)
    s = Scheduler(bot.services, Broken(), bot.dispatcher)
    s.tick()
    clock.set(utc(2026, 11, 30, 1, 0))
    assert s.tick() == ["production"]
    assert runs(bot)["2026-11-30"]["state"] == "succeeded"


def test_the_log_notifier_prints_and_logs(caplog) -> None:
    import io

    from bot.core import Reply
    from bot.schedule.notify import LogNotifier

    out = io.StringIO()
    notifier = LogNotifier(out)
    with caplog.at_level("INFO", logger="cfy_bot.notify"):
        notifier.post("C-SUMMARY", Reply(text="all good", title="Backups are good", tone="good"))
        notifier.alert("", Reply(text="production: FAILED", title="Daily backup of production failed", tone="danger"))
    assert "[post → C-SUMMARY]\nOK Backups are good\nall good" in out.getvalue()
    assert "[ALERT → (no channel configured)]\nALERT Daily backup of production failed" in out.getvalue()
    assert [r.levelname for r in caplog.records] == ["INFO", "ERROR"]


# --- two processes, one SQLite file ------------------------------------------------------------------------


def _services(data_dir: str, clock: FakeClock, sim_dir: str, env: dict[str, str]):
    from bot.front.wiring import build_services
    from bot.cloudify import wsgi_transport
    from bot.config import load_settings
    from bot.settings import ManagerSettings
    from simulator import Simulator

    sim = Simulator(now=clock.time, sleep=clock.sleep, data_dir=sim_dir)
    manager = ManagerSettings(name="production", urls=("http://production.test",), username="admin",
                              password="admin")
    settings = load_settings({"BOT_DATA_DIR": data_dir, **env}, managers=(manager,))
    return build_services(settings, clock=clock, transport=wsgi_transport({"production.test": sim.wsgi})), sim


def _race_tick(data_dir: str, sim_dir: str, at: float, barrier, results) -> None:
    """One bot process: its own simulated manager, the shared database; ticks when every process is ready."""
    from bot.engine.dispatch import Dispatcher

    clock = FakeClock(at)
    services, sim = _services(data_dir, clock, sim_dir, ENV)
    notes = MemoryNotifier()
    s = Scheduler(services, notes, Dispatcher(services))
    barrier.wait()
    started = s.tick()
    results.put((started, creates(sim), [m.kind for m in notes.messages]))


def _race_claim(db: str, at: float, barrier, results) -> None:
    from bot.store import Store

    store = Store(db, clock=FakeClock(at))
    barrier.wait()
    results.put(claim_day(store, "production", date(2026, 11, 30), f"p{multiprocessing.current_process().pid}",
                          datetime.fromtimestamp(at, UTC)).key)


def _race(target, args, n: int) -> list:
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args(i), barrier, results)) for i in range(n)]
    for p in procs:
        p.start()
    out = [results.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    return out


def test_processes_racing_for_the_same_run_run_it_once(tmp_path) -> None:
    from bot.store import Store

    data = str(tmp_path / "data")
    os.makedirs(data)
    with Store(f"{data}/cfy-bot.db") as store:
        store.claim_mark("schedule:since:production", "2026-11-29T12:00:00+00:00")
    at = utc(2026, 11, 30, 1, 0, 3).timestamp()
    out = _race(_race_tick, lambda i: (data, str(tmp_path / f"sim-{i}"), at), 3)
    assert sorted(len(started) for started, _, _ in out) == [0, 0, 1]
    assert sorted(c for _, created, _ in out for c in created) == [f"{daily(-1)}"]
    assert sorted(k for _, _, kinds in out for k in kinds) == ["post"]  # the summary, posted once
    with Store(f"{data}/cfy-bot.db") as store:
        [row] = store.list_runs("production")
        assert row["state"] == "succeeded" and store.get_copy("production", f"{daily(-1)}").verified


def test_processes_racing_to_claim_or_take_over_a_day_get_it_once(tmp_path) -> None:
    from bot.store import Store

    db = str(tmp_path / "race.db")
    at = utc(2026, 11, 30, 1).timestamp()
    Store(db, clock=FakeClock(at)).close()
    keys = _race(_race_claim, lambda i: (db, at), 4)
    assert sorted(keys, key=str) == ["2026-11-30", None, None, None]
    # a claim left by a process that died: every process sees it dead, one takes it over
    later = at + 3600
    keys = _race(_race_claim, lambda i: (db, later), 4)
    assert sorted(keys, key=str) == ["2026-11-30", None, None, None]
    with Store(db) as store:
        assert store.get_run("production", "2026-11-30")["claimed_at"].startswith("2026-11-30T02:00")
