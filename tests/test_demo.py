"""The demo (`--demo`) and `cfy-bot simulator` start as a healthy 7.0.5 manager a week into using the bot."""

from __future__ import annotations

import hashlib
import os
import re

import pytest

from bot.front.cli import SCENARIOS, main
from conftest import BotHarness
from simulator.seed import Scenario
from sim_fixtures import daily


@pytest.fixture
def demo(clock):
    from bot.front.demo import make_demo

    made = make_demo({"BOT_ARCHIVE_DIR": "/nonexistent/should-not-be-used"}, clock=clock)
    yield made
    made.close()


def harness(demo, clock) -> BotHarness:
    from bot.engine.dispatch import Dispatcher
    from bot.front.wiring import build_services

    services = build_services(demo.settings, clock=clock, transport=demo.transport)
    return BotHarness(Dispatcher(services), services, demo.simulators, clock, demo.settings)


def test_a_fresh_demo_has_verified_archive_copies_of_the_daily_snapshots(demo, clock) -> None:
    bot = harness(demo, clock)
    assert demo.settings.archive_dir.startswith(demo.folder)  # the environment cannot point it elsewhere
    for name, sim in demo.simulators.items():
        created = sorted(s for s, row in sim.state.snapshots["default_tenant"].items()
                         if s.startswith("daily-") and row["status"] == "created")
        copies = bot.store.list_copies(manager=name)
        assert sorted(c.snapshot_id for c in copies) == created and len(created) == 5  # with today's (09:00)
        for copy in copies:
            assert copy.verified and os.path.isfile(copy.location)
            with open(copy.location, "rb") as fh:
                assert hashlib.sha256(fh.read()).hexdigest() == copy.sha256
            assert bot.services.archive.verify(copy).verified  # the real check agrees
            day = copy.snapshot_id.removeprefix("daily-")
            made = f"{day[:4]}-{day[4:6]}-{day[6:]}T02:00:00.000000Z"
            stored = f"{day[:4]}-{day[4:6]}-{day[6:]}T02:03:00.000000Z"  # as the daily job would have, 3 min later
            assert (copy.created_at, copy.stored_at, copy.verified_at) == (made, stored, stored)


def test_restore_latest_works_the_first_time_and_maintenance_activates(demo, clock) -> None:
    bot = harness(demo, clock)
    code, out = bot.run("maintenance-mode activate", yes=True)
    assert code == 0 and "is in maintenance mode" in out, out
    code, out = bot.run("maintenance-mode deactivate", yes=True)
    assert code == 0, out
    code, out = bot.run("restore latest -f", yes=True, approver="bob")
    assert code == 0 and "Restore of production succeeded" in out, out
    assert f"latest` is {daily(0)}" in out  # today's 02:00 daily: the clock says 09:00


def test_a_fresh_demo_after_two_has_todays_backup_and_no_alarm(demo, clock) -> None:
    bot = harness(demo, clock)
    code, out = bot.run("backups summary")
    assert code == 0 and "ALARM" not in out.split("last drill")[0], out
    assert f"newest verified backup {daily(0)}, 7h 0m old" in out


def test_stuck_maintenance_scenario_brings_the_blocking_rows_back(clock) -> None:
    from bot.front.demo import make_demo

    demo = make_demo({}, clock=clock, scenario="stuck-maintenance")
    try:
        bot = harness(demo, clock)
        code, out = bot.run("maintenance-mode activate", yes=True)
        assert code == 1 and "queued or scheduled" in out
    finally:
        demo.close()


def test_the_command_line_offers_exactly_the_simulator_scenarios(capsys) -> None:
    assert tuple(Scenario) == SCENARIOS
    with pytest.raises(SystemExit) as exc:
        main(["run", "--scenario", "stuck-maintenance", "status"])
    assert exc.value.code == 2 and "--scenario goes with --demo" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["simulator", "--scenario", "nope"])


def test_the_demo_s_schedule_shows_the_week_its_archive_copies_tell(demo, clock) -> None:
    """QA #39: a run record for each daily the demo holds: succeeded with its verified copy, or failed."""
    bot = harness(demo, clock)
    code, out = bot.run("backups schedule")
    assert code == 0, out
    for name, sim in demo.simulators.items():
        runs = {r["day"]: r for r in bot.store.list_runs(name)}
        for sid, row in sim.state.snapshots["default_tenant"].items():
            if not sid.startswith("daily-"):
                continue
            day = f"{sid[6:10]}-{sid[10:12]}-{sid[12:14]}"
            run = runs.pop(day)
            assert run["snapshot_id"] == sid
            assert run["state"] == ("succeeded" if row["status"] == "created" else "failed")
            if run["state"] == "succeeded":
                assert bot.store.get_copy(name, sid).verified
            else:
                assert f"Snapshot {sid} failed on {name}: " in run["error"]
            assert re.search(rf"{name}\s+{day}\s+{run['state']}\s+{sid}", out), out
        assert not runs  # no run without its daily
    assert "has not run on this database yet" not in out
    code, out = bot.run("backups run")  # today's daily ran at 02:00: done, and its copy is there
    assert code == 0 and f"is done: {daily(0)} was copied off and verified" in out, out
