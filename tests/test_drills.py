"""Issue 17: restore drills onto a disposable manager, against the simulator, on a real store and the fake clock."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest

from bot.core import DrillResult, DrillVerdict
from bot.recovery.drills import drill_alarm, sparkline, summary_line
from sim_fixtures import daily

SNAP = daily(1)  # a legacy snapshot of the seed, the day before the injected clock starts
NEW = "pre-upgrade-20261121"  # the seed's new-format snapshot
TOML = '[managers.staging]\nurls = ["http://staging.test"]\ndrill_target = true\n'


def drill_bot(make_bot: Any, tmp_path: Any, managers: tuple[str, ...] = ("production", "staging"),
              copies: tuple[str, ...] = (SNAP,), env: dict[str, str] | None = None,
              manager: dict[str, Any] | None = None) -> Any:
    """production and staging (a drill target), with verified archive copies of production's snapshots."""
    config = tmp_path / "bot.toml"
    config.write_text(TOML)
    bot = make_bot(managers=managers, env={"BOT_CONFIG": str(config), **(env or {})}, scheduled=False,
                   manager=manager)
    for sid in copies:
        code, out = bot.run(f"snapshots download {sid} -m production")
        assert code == 0, out
    return bot


def drills(bot: Any) -> list[DrillResult]:
    return bot.store.list_drills()


def test_a_drill_restores_the_newest_copy_on_the_target_and_passes(make_bot, tmp_path) -> None:
    bot = drill_bot(make_bot, tmp_path)
    code, out = bot.run("backups drill latest")
    assert code == 0, out
    [d] = drills(bot)
    assert d.verdict is DrillVerdict.PASSED and (d.source, d.target, d.snapshot_id) == ("production", "staging", SNAP)
    assert not d.mismatches and d.recovery_seconds and d.recovery_seconds > 0
    assert [p for p, _ in d.phases] == ["upload", "maintenance", "restore", "deactivate", "checks"]
    assert f"uploading {SNAP} to staging as drill-production-{SNAP} from the archive copy of production" in out
    assert "verified: staging is in maintenance mode (activated)" in out and "Drill passed" in out
    staging = bot.sims["staging"]
    restores = [e for e in staging.state.executions.values() if e["workflow_id"] == "restore_snapshot"]
    assert [e["parameters"]["force"] for e in restores] == [True]
    assert staging.state.maintenance["status"] == "deactivated"
    assert not [e for e in bot.sims["production"].state.executions.values()
                if e["workflow_id"] == "restore_snapshot"]  # the source is never touched
    [op] = [o for o in bot.store.list_operations() if o.kind == "backups drill"]
    assert op.manager == "staging" and op.state == "succeeded" and op.exclusive
    events = {r["event"] for r in bot.store.query_audit(limit=1000) if r.get("operation_id") == op.id}
    assert {"step", "manager_call", "drill", "outcome"} <= events
    assert "secret" not in out.lower() or "value" not in out  # keys are compared, values never read


def test_a_new_format_snapshot_is_checked_from_its_entity_files(make_bot, tmp_path) -> None:
    bot = drill_bot(make_bot, tmp_path, copies=(NEW,))
    code, out = bot.run(f"backups drill {NEW} --target staging")
    assert code == 0, out
    assert "entity files" in out and drills(bot)[0].passed


def test_a_drill_never_touches_the_targets_own_snapshot_of_the_same_name(make_bot, tmp_path) -> None:
    """QA #35: the target's own snapshot with the source's id stays, with its own content; the drill uploads
    under its own id and removes that upload afterwards."""
    bot = drill_bot(make_bot, tmp_path, copies=(NEW,))
    staging = bot.sims["staging"]
    assert NEW in staging.state.snapshots["default_tenant"]  # the target has its own snapshot of that name
    with open(staging.store.path("default_tenant", NEW), "rb") as fh:
        own = fh.read()
    code, out = bot.run(f"snapshots download {NEW} -m staging")  # and its own archive copy, paired with it
    assert code == 0, out
    code, out = bot.run(f"backups drill {NEW} --target staging")
    assert code == 0 and drills(bot)[0].passed, out
    assert "already had" not in out and "staging's own snapshots are not touched" in out
    assert f"deleted the drill's upload drill-production-{NEW} from staging" in out, out
    assert set(staging.state.snapshots["default_tenant"]) >= {NEW}
    assert f"drill-production-{NEW}" not in staging.state.snapshots["default_tenant"]
    with open(staging.store.path("default_tenant", NEW), "rb") as fh:
        assert fh.read() == own
    restores = [e for e in staging.state.executions.values() if e["workflow_id"] == "restore_snapshot"]
    assert [e["parameters"]["snapshot_id"] for e in restores] == [f"drill-production-{NEW}"]
    code, out = bot.run(f"snapshots download {NEW} -m staging")  # the pairing holds: the same content again
    assert code == 0, out


def test_a_drill_id_is_always_a_valid_snapshot_id() -> None:
    from commands.common import check_snapshot_id
    from commands.drills import drill_snapshot_id

    assert drill_snapshot_id("production", "daily-20261128") == "drill-production-daily-20261128"
    long_id = drill_snapshot_id("production", "a" * 256)
    assert check_snapshot_id(long_id) is None and long_id != drill_snapshot_id("staging", "a" * 256)


@pytest.mark.parametrize(("switch", "kind", "ident", "named"), [
    ("drop", "blueprints", "db-cluster", "tenant prod-apps: blueprint db-cluster: missing after the restore"),
    ("drop", "deployments", "web-prod", "tenant prod-apps: deployment web-prod: missing after the restore"),
    ("drop", "secrets", "aws-access-key", "tenant prod-apps: secret aws-access-key: missing after the restore"),
    ("drop", "plugins", "cloudify-aws-plugin-3-1-6", "tenant prod-apps: plugin cloudify-aws-plugin-3-1-6: missing"),
    ("drop", "sites", "dublin", "tenant prod-apps: site dublin: missing after the restore"),
    ("drop", "users", "operator", "user operator: missing after the restore"),
    ("corrupt", "deployments", "db-prod", "deployment db-prod: blueprint is db-cluster-corrupted after the restore, "
                                          "the snapshot has db-cluster"),
    ("corrupt", "secrets", "tls-key", "secret tls-key-corrupted: on the target but not in the snapshot"),
    ("corrupt", "plugins", "cloudify-ansible-plugin-3-1-2", "version is 0.0.0-corrupted after the restore"),
    ("corrupt", "sites", "frankfurt", "site frankfurt: location is 0.0, 0.0 after the restore, the snapshot has "
                                      "50.11, 8.68"),
    ("corrupt", "users", "operator", "user operator: role is corrupted after the restore, the snapshot has default"),
])
def test_each_kind_of_mismatch_is_named_and_fails_the_drill(make_bot, tmp_path, switch, kind, ident, named) -> None:
    bot = drill_bot(make_bot, tmp_path)
    faults = bot.sims["staging"].faults
    (faults.drop_on_restore if switch == "drop" else faults.corrupt_on_restore)(kind, ident)
    code, out = bot.run("backups drill latest")
    assert code == 1, out
    [d] = drills(bot)
    assert d.verdict is DrillVerdict.FAILED and any(named in m for m in d.mismatches), d.mismatches
    assert named.split(":")[0] in out and "Drill FAILED" in out


def test_a_failed_restore_fails_the_drill_with_its_error(make_bot, tmp_path) -> None:
    bot = drill_bot(make_bot, tmp_path)
    bot.sims["staging"].faults.fail_next("restore_snapshot", "psql: could not connect to the database")
    code, out = bot.run("backups drill latest")
    assert code == 1, out
    [d] = drills(bot)
    assert not d.passed and "ended failed" in d.reason and "could not connect to the database" in d.reason
    assert d.recovery_seconds is None


def test_a_target_unreachable_after_the_restore_fails_the_drill(make_bot, tmp_path) -> None:
    bot = drill_bot(make_bot, tmp_path)
    bot.sims["staging"].faults.unreachable_after_restore()
    code, out = bot.run("backups drill latest")
    assert code == 1, out
    [d] = drills(bot)
    assert not d.passed and "did not answer after the restore" in d.reason and d.recovery_seconds is None


def test_restored_credentials_are_tried_with_the_fallback_password(make_bot, tmp_path) -> None:
    bot = drill_bot(make_bot, tmp_path, manager={"fallback_password": "from-the-snapshot"})
    bot.sims["staging"].faults.change_admin_password_after_restore("from-the-snapshot")
    code, out = bot.run("backups drill latest")
    assert code == 0, out
    assert "staging now accepts CLOUDIFY_FALLBACK_PASSWORD" in out and drills(bot)[0].passed


def test_restored_credentials_that_nothing_opens_fail_the_drill(make_bot, tmp_path) -> None:
    bot = drill_bot(make_bot, tmp_path)
    bot.sims["staging"].faults.change_admin_password_after_restore("nobody-knows")
    code, out = bot.run("backups drill latest")
    assert code == 1, out
    [d] = drills(bot)
    assert not d.passed and "rejects the configured password" in d.reason


def test_a_manager_that_is_not_a_drill_target_is_refused_and_nothing_is_touched(make_bot, tmp_path) -> None:
    bot = drill_bot(make_bot, tmp_path, managers=("production", "staging", "qa"))
    code, out = bot.run("backups drill latest --target qa")
    assert code == 1 and "refused: qa is not a drill target" in out, out
    qa = bot.sims["qa"]
    assert qa.state.maintenance["status"] == "deactivated"
    assert not [e for e in qa.state.executions.values() if e["workflow_id"] == "restore_snapshot"]
    assert not drills(bot) and not [o for o in bot.store.list_operations() if o.kind == "backups drill"]


def test_the_source_itself_is_refused_as_target(make_bot, tmp_path) -> None:
    bot = drill_bot(make_bot, tmp_path)
    code, out = bot.run("backups drill latest -m staging --target staging")
    assert code == 1 and "refused: staging is the drill's source" in out, out
    assert not drills(bot) and not [o for o in bot.store.list_operations() if o.kind == "backups drill"]


def test_no_verified_copy_means_no_drill(make_bot, tmp_path) -> None:
    bot = drill_bot(make_bot, tmp_path, copies=())
    code, out = bot.run("backups drill latest")
    assert code == 1 and "no verified archive copy of production" in out


def test_drill_target_must_be_a_toml_boolean(tmp_path) -> None:
    from bot.config import load_settings
    from bot.errors import ConfigError
    from bot.settings import ManagerSettings

    config = tmp_path / "bot.toml"
    config.write_text('[managers.staging]\nurls = ["http://s"]\ndrill_target = "yes"\n')
    with pytest.raises(ConfigError) as err:
        load_settings({"BOT_CONFIG": str(config), "BOT_DRILL_SCHEDULE": "61 4 * * 0", "BOT_MAX_DRILL_AGE": "soon"},
                      managers=(ManagerSettings("staging", ("http://s",), password="x"),))
    text = str(err.value)
    assert "drill_target must be true or false" in text and "BOT_DRILL_SCHEDULE" in text
    assert "BOT_MAX_DRILL_AGE" in text


def test_managers_shows_the_drill_targets(make_bot, tmp_path) -> None:
    bot = drill_bot(make_bot, tmp_path, copies=())
    code, out = bot.run("managers")
    assert code == 0 and "restore drill targets: staging" in out and "yes (disposable)" in out


# --- results: list, sparkline, summary line, alarm ------------------------------------------------

def result(clock: Any, days_ago: float, recovery: float | None, passed: bool = True, n: int = 0) -> DrillResult:
    at = clock.now() - timedelta(days=days_ago)
    return DrillResult(id=f"d{n}-{days_ago}", source="production", target="staging", snapshot_id=daily(9),
                       verdict=DrillVerdict.PASSED if passed else DrillVerdict.FAILED, started_at=at,
                       finished_at=at, reason="" if passed else "the restore execution ended failed: boom",
                       recovery_seconds=recovery)


def test_sparkline_scales_from_fastest_to_slowest() -> None:
    assert sparkline([60.0, 120.0, 180.0, 240.0]) == "▁▃▆█"
    assert sparkline([100.0, None, 100.0]) == "▁·▁"
    assert sparkline([]) == ""


def test_drills_lists_results_with_the_recovery_trend(make_bot, tmp_path, clock) -> None:
    bot = drill_bot(make_bot, tmp_path, copies=())
    for n, (days, rec) in enumerate(((21, 240.0), (14, 252.0), (7, None), (1, 300.0))):
        bot.store.record_drill(result(clock, days, rec, passed=rec is not None, n=n))
    code, out = bot.run("backups drills -m production")
    assert code == 0, out
    assert "4 restore drills of production: 3 passed, 1 failed." in out
    assert "▁▂·█" in out and "4m12s" in out and "5m00s" in out


def test_summary_line_and_age_alarm(make_bot, tmp_path, clock) -> None:
    bot = drill_bot(make_bot, tmp_path, copies=(SNAP,), env={"BOT_MAX_DRILL_AGE": "8d", "BOT_MAX_BACKUP_AGE": "30d"})
    bot.store.record_drill(result(clock, 2, 252.0))
    code, out = bot.run("backups summary -m production")
    assert f"last drill: {daily(9)} on staging, passed, recovered in 4m12s, 2 days ago" in out, out
    assert "restore drill" not in out.split("last drill")[0]  # no alarm yet
    assert code == 0, out
    clock.advance(7 * 86400)  # now 9 days since the last pass
    code, out = bot.run("backups summary -m production")
    assert code == 1 and "ALARM production: the last passing restore drill of production is 9 days old, older than " \
                         "BOT_MAX_DRILL_AGE (8d)" in out, out
    bot.store.record_drill(result(clock, 0, None, passed=False, n=9))
    code, out = bot.run("backups summary -m production")
    assert code == 1 and "the last restore drill of production FAILED" in out


def test_summary_line_reads_naturally(clock) -> None:
    line = summary_line("production", result(clock, 2, 252.0), clock.now())
    assert line == f"last drill: {daily(9)} on staging, passed, recovered in 4m12s, 2 days ago"
    assert drill_alarm("production", None, None, clock.now(), 8 * 86400, True).startswith("production has no")


# --- the schedule ---------------------------------------------------------------------------------

def _services(bot: Any) -> Any:
    from bot.cloudify import wsgi_transport
    from bot.engine.dispatch import Dispatcher
    from bot.front.wiring import build_services

    apps = {f"{name}.test": sim.wsgi for name, sim in bot.sims.items()}
    services = build_services(bot.settings, clock=bot.clock, transport=wsgi_transport(apps))
    return services, Dispatcher(services)


def test_three_racing_schedulers_drill_a_slot_exactly_once(make_bot, tmp_path, clock) -> None:
    from bot.schedule.drills import DrillScheduler, claim_key
    from bot.schedule.notify import MemoryNotifier

    bot = drill_bot(make_bot, tmp_path)
    bot.store.claim_mark("drill:since", (clock.now() - timedelta(days=30)).isoformat())
    schedulers = []
    for _ in range(3):
        services, dispatcher = _services(bot)
        schedulers.append(DrillScheduler(services, dispatcher, MemoryNotifier()))
    barrier, ran = threading.Barrier(3), []
    now = clock.now()

    def go(s: Any) -> None:
        barrier.wait()
        ran.append(s.tick(now))

    threads = [threading.Thread(target=go, args=(s,)) for s in schedulers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(len(r) for r in ran) == [0, 0, 1]
    [d] = drills(bot)
    assert d.passed and d.slot == "2026-11-29T04:00:00+00:00"  # Sunday 04:00 UTC, the default weekly slot
    [row] = bot.store.list_runs(claim_key("production", "staging"))
    assert row["state"] == "succeeded"
    assert schedulers[0].tick(clock.now()) == []  # the slot is done; nothing runs again


def test_a_slot_missed_while_down_is_caught_up_and_waits_for_a_busy_target(make_bot, tmp_path, clock) -> None:
    from bot.schedule.drills import DrillScheduler
    from bot.schedule.notify import MemoryNotifier

    bot = drill_bot(make_bot, tmp_path)
    bot.store.claim_mark("drill:since", (clock.now() - timedelta(days=30)).isoformat())
    notes = MemoryNotifier()
    sched = DrillScheduler(bot.services, bot.dispatcher, notes)
    busy = bot.store.create_operation(kind="restore", args={}, manager="staging", requester="shell:bob",
                                      requester_name="bob", channel="", transport="shell", state="running",
                                      gate="", exclusive=True)
    assert sched.tick(clock.now()) == [] and not drills(bot)  # the target is being restored: wait
    bot.store.transition(busy.id, "running", "failed", error="test: it ended")
    assert sched.tick(clock.now()) == ["drill:production>staging"]  # the bot was down at 04:00: caught up at 09:00
    assert drills(bot)[0].slot == "2026-11-29T04:00:00+00:00"


def test_a_failed_scheduled_drill_is_alerted(make_bot, tmp_path, clock) -> None:
    from bot.schedule.drills import DrillScheduler
    from bot.schedule.notify import MemoryNotifier

    bot = drill_bot(make_bot, tmp_path, env={"BOT_ALERT_CHANNEL": "C-ALERT"})
    bot.store.claim_mark("drill:since", (clock.now() - timedelta(days=30)).isoformat())
    bot.sims["staging"].faults.fail_next("restore_snapshot", "disk full")
    notes = MemoryNotifier()
    DrillScheduler(bot.services, bot.dispatcher, notes).tick(clock.now())
    [alert] = [m for m in notes.messages if m.kind == "alert"]
    assert alert.channel == "C-ALERT" and "disk full" in alert.reply.text


# --- Slack: a drill's progress thread -------------------------------------------------------------

def test_a_drill_in_slack_reports_in_one_thread_and_broadcasts_the_result(make_bot, tmp_path, fake) -> None:
    from slack_fake_server import OPERATOR, SECRET, slack_front

    env = {"SLACK_BOT_TOKEN": "xoxb-test", "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": fake.api_url,
           "BOT_OPERATORS": OPERATOR}
    bot = drill_bot(make_bot, tmp_path, env=env)
    slack = slack_front(bot.services, bot.dispatcher, fake)
    try:
        slack.command("backups drill latest --target staging", user=OPERATOR)
        slack.settle(timeout=60.0)
        parent, *replies = fake.calls_to("chat.postMessage")
        [op] = [o for o in bot.store.list_operations() if o.kind == "backups drill"]
        assert op.state == "succeeded" and op.slack_ts
        assert replies and all(r.params["thread_ts"] == op.slack_ts for r in replies)
        texts = [r.params["text"] for r in replies]
        joined = "\n".join(texts)
        for line in (f"drill: {SNAP} of production onto staging", f"uploading {SNAP} to staging",
                     "verified: staging is in maintenance mode (activated)",
                     f"restore of drill-production-{SNAP} started",
                     "staging answers with the restored data"):
            assert line in joined, joined
        final = replies[-1].params
        assert final["reply_broadcast"] is True and "Drill passed" in final["text"]
        assert "enc:" not in joined  # a secret's (stand-in) value never reaches Slack
        (tmp_path / "slack-thread.txt").write_text("\n".join(texts))
        print("\n--- Slack thread ---\n" + "\n".join(f"[{i}] {t}" for i, t in enumerate(texts)))
    finally:
        slack.close()


def test_no_drill_yet_is_an_alarm_only_once_one_was_due_long_enough(make_bot, tmp_path, clock) -> None:
    bot = drill_bot(make_bot, tmp_path, copies=(SNAP,), env={"BOT_MAX_DRILL_AGE": "8d", "BOT_MAX_BACKUP_AGE": "30d"})
    code, out = bot.run("backups summary -m production")
    assert code == 0 and "last drill of production: none yet (drills run on BOT_DRILL_SCHEDULE" in out, out
    assert "`backups drill latest -m production` runs one now" in out and "ALARM" not in out
    bot.store.set_mark("drill:since", (clock.now() - timedelta(days=9)).isoformat())  # scheduled for 9 days
    code, out = bot.run("backups summary -m production")
    assert code == 1 and "ALARM production: production has no passing restore drill yet" in out, out
