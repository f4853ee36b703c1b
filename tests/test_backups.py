"""`backups run | schedule | prune | summary` end to end through the terminal: real SQLite, the real client over
the WSGI seam to the simulator, the real archive folder, and the injected clock."""

from __future__ import annotations

import os
from datetime import UTC, datetime

from bot.schedule.runs import PROCESS
from sim_fixtures import daily

SID = f"{daily(0)}"  # the harness starts at 2026-11-29 09:00 UTC


def archive_ids(bot, manager: str = "production") -> list[str]:
    return sorted(c.snapshot_id for c in bot.store.list_copies(manager=manager))


def sim_ids(sim) -> list[str]:
    return sorted(sid for snaps in sim.state.snapshots.values() for sid in snaps)


def create_executions(sim) -> list[dict]:
    return [e for e in sim.state.executions.values()
            if e["workflow_id"] == "create_snapshot" and e["created_at"] >= "2026-11-29T09"]


def busy(sim, seconds: float = 600.0) -> None:
    """A long user workflow: it blocks legacy snapshot creates until it ends."""
    sim.durations["install"] = seconds
    with sim.lock:
        sim.engine.create("prod-apps", "admin", "install", {}, is_system_workflow=False, deployment_id="web-prod",
                          blueprint_id="web-app")


def test_run_creates_the_day_s_snapshot_copies_it_off_and_records_the_run(make_bot) -> None:
    bot = make_bot(seed=False)
    code, out = bot.run("backups run")
    assert code == 0, out
    assert f"creating snapshot {SID} on production in the legacy format" in out
    assert f"Daily backup {SID} of production created, copied off and verified." in out
    copy = bot.store.get_copy("production", SID)
    assert copy.verified and os.path.exists(copy.location)
    run = bot.store.get_run("production", "2026-11-29")
    assert run["state"] == "succeeded" and run["snapshot_id"] == SID and run["owner"].startswith(PROCESS + "/")
    assert create_executions(bot.sim)[0]["parameters"]["legacy"] is True
    finished = bot.store.query_audit(event="run_finished")[0]
    assert finished["actor"] == "shell:alice" and finished["detail"]["state"] == "succeeded"
    # once a day: a second run does nothing, names what was done, and exits 0 (what was asked is done)
    code, out = bot.run("backups run")
    assert code == 0 and f"is done: {SID} was copied off and verified" in out
    assert "Nothing to do" in out and "ALERT" not in out and "Failed" not in out
    assert len(create_executions(bot.sim)) == 1


def test_the_day_is_the_date_in_the_bot_s_time_zone(make_bot, clock) -> None:
    clock.set(datetime(2026, 11, 29, 20, 0, tzinfo=UTC))  # 05:00 on the 30th in Tokyo
    bot = make_bot(seed=False, env={"BOT_TIMEZONE": "Asia/Tokyo"})
    code, out = bot.run("backups run")
    assert code == 0, out
    assert archive_ids(bot) == [f"{daily(-1)}"]
    assert bot.store.get_run("production", "2026-11-30")["state"] == "succeeded"
    code, out = bot.run("backups run --day 2026-12-01")
    assert code == 1 and "is in the future (today is 2026-11-30 in Asia/Tokyo)" in out and "Usage error" not in out


def test_a_failed_run_can_be_run_again_under_a_new_id(make_bot) -> None:
    bot = make_bot(seed=False)
    bot.sim.faults.fail_next("create_snapshot", "pg_dump: connection refused")
    code, out = bot.run("backups run")
    assert code == 1 and f"Snapshot {daily(0)} failed on production: " in out and "connection refused" in out
    run = bot.store.get_run("production", "2026-11-29")
    assert run["state"] == "failed" and "pg_dump: connection refused" in run["error"]
    code, out = bot.run("backups run")
    assert code == 0, out
    assert bot.store.get_run("production", "2026-11-29~2")["state"] == "succeeded"
    assert archive_ids(bot) == [f"{daily(0)}-2"]  # the failed daily(0) keeps its id on the manager


def test_an_existing_snapshot_of_the_day_is_reused(make_bot) -> None:
    bot = make_bot(seed=False)
    assert bot.run(f"snapshots create {SID}")[0] == 0
    code, out = bot.run("backups run")
    assert code == 0, out
    assert f"production already has {SID} (created); using it" in out
    assert f"{SID} already has a verified archive copy" in out
    assert len(create_executions(bot.sim)) == 1


def test_a_busy_manager_is_retried_with_backoff(make_bot) -> None:
    bot = make_bot(seed=False)
    busy(bot.sim, seconds=600)
    code, out = bot.run("backups run")
    assert code == 0, out
    assert out.count("production is busy") >= 2 and "Trying again in 1m" in out and "Trying again in 2m" in out
    assert bot.store.get_copy("production", SID).verified


def test_a_manager_busy_for_too_long_fails_the_run(make_bot) -> None:
    bot = make_bot(seed=False)
    busy(bot.sim, seconds=5 * 3600)
    code, out = bot.run("backups run")
    assert code == 1 and "production was busy for" in out
    assert bot.store.get_run("production", "2026-11-29")["state"] == "failed"


def test_maintenance_mode_skips_the_run(make_bot) -> None:
    bot = make_bot(seed=False)
    bot.services.managers["production"].maintenance_activate()
    code, out = bot.run("backups run")
    assert code == 1 and "production is in maintenance mode (activated), so the daily backup of 2026-11-29 was " \
                          "skipped" in out
    assert bot.store.get_run("production", "2026-11-29")["state"] == "skipped"
    assert not create_executions(bot.sim)


def test_viewers_cannot_run_or_prune(make_bot) -> None:
    bot = make_bot(seed=False, env={"BOT_SHELL_ROLE": "viewer"})
    assert bot.run("backups run")[0] == 1
    assert bot.run("backups prune --dry-run")[0] == 1
    assert bot.run("backups summary")[0] == 1  # allowed, but it raises the alarm: no verified backup
    assert bot.run("backups schedule")[0] == 0


# --- retention -----------------------------------------------------------------------------------------------


def test_prune_dry_run_shows_what_would_go_and_why_and_changes_nothing(make_bot) -> None:
    bot = make_bot(env={"BOT_RETENTION": "daily=2"})  # seed: daily(5)..daily(1), daily(3) failed
    before = sim_ids(bot.sim)
    code, out = bot.run("backups prune --dry-run")
    assert code == 0, out
    assert "Retention (daily=2) on production: 3 daily backups would be deleted, 2 kept." in out
    assert "2 other snapshots are not daily backups and are never pruned" in out
    assert f"{daily(4)}  delete  on the manager (created)  not among the newest 2 daily" in out
    assert f"{daily(3)}  delete  on the manager (failed)   failed on the manager (failed), and older" in out
    assert f"{daily(1)}  keep" in out
    assert sim_ids(bot.sim) == before
    code, out = bot.run("backups prune -m production --dry-run")
    assert code == 2 and "backups prune --dry-run -m production" in out


def test_prune_asks_first_then_deletes_on_the_manager_and_in_the_archive(make_bot) -> None:
    bot = make_bot(env={"BOT_RETENTION": "daily=1"})
    for sid in (f"{daily(2)}", f"{daily(1)}"):
        assert bot.run(f"snapshots download {sid}")[0] == 0
    code, out = bot.run("backups prune", ask=lambda _q: "no")
    assert "delete 4 daily backups of production (retention daily=1)" in out
    assert f"{daily(2)} on the manager (created) and in the archive: not among the newest 1 daily" in out
    assert f"{daily(1)}" in sim_ids(bot.sim) and archive_ids(bot) == [f"{daily(2)}", f"{daily(1)}"]
    code, out = bot.run("backups prune", yes=True)
    assert code == 0, out
    # daily(1) is the newest daily; the newest verified copy is the same one
    assert [s for s in sim_ids(bot.sim) if s.startswith("daily-")] == [f"{daily(1)}"]
    assert archive_ids(bot) == [f"{daily(1)}"]
    assert any(s.startswith("pre-upgrade-") for s in sim_ids(bot.sim))  # never touched
    pruned = bot.store.query_audit(event="pruned", limit=10)
    assert {r["detail"]["snapshot_id"] for r in pruned} == {f"{daily(5)}", f"{daily(4)}", f"{daily(3)}",
                                                           f"{daily(2)}"}
    code, out = bot.run("backups prune", yes=True)
    assert code == 0 and "Nothing to prune on production" in out and "ALERT" not in out


def test_the_newest_verified_copy_survives_any_retention(make_bot) -> None:
    # daily=0 alone is refused at start-up (it keeps nothing); weekly=1 keeps only the newest week's copy.
    bot = make_bot(env={"BOT_RETENTION": "daily=0,weekly=1"})
    assert bot.run(f"snapshots download {daily(4)}")[0] == 0
    code, out = bot.run("backups prune", yes=True)
    assert code == 0, out
    assert archive_ids(bot) == [daily(4)]
    assert [s for s in sim_ids(bot.sim) if s.startswith("daily-")] == [daily(4), daily(1)]


def test_the_daily_job_applies_retention(make_bot) -> None:
    bot = make_bot(env={"BOT_RETENTION": "daily=3"})
    code, out = bot.run("backups run")
    assert code == 0, out
    assert f"Pruned 3 old backups: {daily(5)}, {daily(4)}, {daily(3)}." in out
    assert [s for s in sim_ids(bot.sim) if s.startswith("daily-")] == [f"{daily(2)}", f"{daily(1)}", SID]


# --- schedule and summary ------------------------------------------------------------------------------------


def test_schedule_shows_the_next_runs_in_the_time_zone(make_bot) -> None:
    bot = make_bot(seed=False, env={"BOT_TIMEZONE": "Europe/Berlin", "BOT_BACKUP_SCHEDULE": "30 2 * * *"})
    code, out = bot.run("backups schedule -n 2")
    assert code == 0, out
    assert "30 2 * * * in Europe/Berlin (once a day per manager)" in out
    assert "next run   2026-11-30 02:30 CET (in 16h 30m)" in out
    assert "then       2026-12-01 02:30 CET (in 1d 16h)" in out
    assert "no scheduler has ticked on this database (it runs inside `cfy-bot http`, `socket` or `scheduler`)" in out


def test_summary_alarms_without_a_recent_verified_backup(make_bot, clock) -> None:
    bot = make_bot(seed=False, env={"BOT_TIMEZONE": "Europe/Berlin"})
    code, out = bot.run("backups summary")
    assert code == 1 and "ALERT 1 manager without a recent verified backup" in out and "ALARM:" not in out
    assert "ALARM production: NO verified backup younger than 1d 2h (there is none)." in out
    assert bot.run("backups run")[0] == 0
    code, out = bot.run("backups summary")
    assert code == 0 and "Backups are good" in out
    assert f"production: newest verified backup {SID}" in out and f"created: {SID}; failed: none" in out
    assert "Next run: 2026-11-30 02:00 CET" in out
    clock.advance(27 * 3600)
    code, out = bot.run("backups summary --hours 48")
    assert code == 1 and f"(the newest is {SID}, 1d 3h old)" in out
    assert f"created: {SID};" in out  # still within 48 h
    code, out = bot.run("backups summary")
    assert "created: none" in out


def test_summary_lists_failures_and_prunes_per_manager(make_bot) -> None:
    bot = make_bot(managers=("production", "staging"), env={"BOT_RETENTION": "daily=4"})
    bot.sims["staging"].faults.fail_next("create_snapshot", "disk full on the manager")
    assert bot.run("backups run -m production")[0] == 0
    assert bot.run("backups run -m staging")[0] == 1
    code, out = bot.run("backups summary")
    assert code == 1, out
    assert f"production: newest verified backup {daily(0)}" in out and f"pruned: {daily(5)};" in out
    assert "ALARM staging" in out and f"2026-11-29 failed: Snapshot {daily(0)} failed on staging" in out
    code, out = bot.run("backups summary -m production")
    assert code == 0 and "staging" not in out


def test_summary_shows_the_audit_head_that_verify_can_expect_later(make_bot) -> None:
    from bot.store.audit import parse_head

    bot = make_bot(env={"BOT_AUDIT_KEY": "s" * 32})
    code, out = bot.run("backups summary")
    line = next(x for x in out.splitlines() if x.startswith("Audit log: "))
    seq, digest = parse_head(line.split("head ", 1)[1].rstrip("."))
    assert line.startswith(f"Audit log: {seq} row{'' if seq == 1 else 's'}, head {seq}:hmac:")
    bot.run("status")
    assert bot.store.verify_audit((seq, digest)).ok


# --- catch-up days and retention (QA #30) -------------------------------------------------------------------


def test_a_past_day_retention_would_prune_at_once_is_refused_before_anything_is_made(make_bot) -> None:
    bot = make_bot(env={"BOT_RETENTION": "daily=2"})  # seed: daily(5)..daily(1), daily(1) and daily(2) kept
    assert bot.run(f"snapshots download {daily(1)}")[0] == 0  # a newer verified copy than the day asked for
    before = sim_ids(bot.sim)
    code, out = bot.run("backups run --day 2026-11-20")
    assert code == 1, out
    assert "a daily backup for 2026-11-20 would be pruned by retention (daily=2) in the same run: not among the " \
           "newest 2 daily. Nothing was created." in out and "`snapshots create`" in out, out
    assert sim_ids(bot.sim) == before and not create_executions(bot.sim)
    assert bot.store.get_run("production", "2026-11-20") is None  # not claimed: nothing ran
    code, out = bot.run(f"backups run --day {daily(1)[6:10]}-{daily(1)[10:12]}-{daily(1)[12:14]}")
    assert code == 0, out  # yesterday is within the window: made (or, here, its existing daily(1) reused)


def test_a_done_day_whose_backup_retention_pruned_says_so(make_bot, clock) -> None:
    bot = make_bot(seed=False, env={"BOT_RETENTION": "daily=1"})
    code, out = bot.run("backups run")
    assert code == 0, out
    clock.advance(86400)
    code, out = bot.run("backups run")  # the next day: retention keeps one daily, so yesterday's goes
    assert code == 0 and f"pruned {SID}" in out, out
    code, out = bot.run("backups run --day 2026-11-29")
    assert code == 0, out
    assert (f"The daily backup of production for 2026-11-29 is done: {SID} was copied off and verified (finished "
            "2026-11-29 09:00 UTC), then pruned by retention (not among the newest 1 daily)") in out, out
    code, out = bot.run("backups run --day 2026-11-30")  # still there: said as before
    assert code == 0 and "was copied off and verified (finished 2026-11-30 09:00 UTC). `snapshots create`" in out, out
