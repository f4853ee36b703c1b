"""`executions list | get | cancel` as cfy 7.0.5 has them, and execution hints that run as printed (issue 15)."""

from __future__ import annotations

import re

from simulator.models import DB_PASSWORD


def waiting(sim) -> list[dict]:
    return [e for e in sim.state.executions.values() if e["status"] in ("queued", "scheduled")]


def test_list_hides_system_workflows_filters_by_tenant_and_deployment(bot) -> None:
    code, out = bot.run("executions list")
    assert code == 0 and "system workflows hidden" in out and "create_snapshot" not in out
    assert "hello-world-1" in out and "web-prod" not in out  # the manager's tenant only
    code, out = bot.run("executions list --include-system-workflows")
    assert code == 0 and "create_snapshot" in out
    code, out = bot.run("executions list -t prod-apps -d web-prod")
    assert code == 0 and "of deployment web-prod on production in tenant prod-apps" in out
    assert "db-prod" not in out and "scale" in out
    code, out = bot.run("executions list -a")
    assert code == 0 and "in every tenant" in out and "web-staging" in out and "hello-world-1" in out


def test_list_says_what_was_asked_when_it_shows_nothing(bot) -> None:
    code, out = bot.run("execution list -t prod-apps -o 500")
    assert code == 0 and "No executions at offset 500: there are" in out
    code, out = bot.run("executions list -s 0")
    assert code == 2 and "-s/--pagination-size must be between 1 and 1000, got 0" in out
    code, out = bot.run("executions list -d nope")
    assert code == 0 and "No executions of deployment nope on production in tenant default_tenant" in out
    code, out = bot.run("executions list -t prod-apps -a")
    assert code == 2 and "not both" in out
    code, out = bot.run("executions list -s -1")
    assert code == 2


def test_get_shows_the_execution_redacted_and_finds_its_tenant(bot) -> None:
    snap = next(e for e in bot.sim.state.executions.values() if e["workflow_id"] == "create_snapshot")
    code, out = bot.run(f"executions get {snap['id']}")
    assert code == 0 and "create_snapshot" in out and "parameter snapshot_id" in out
    assert DB_PASSWORD not in out
    heal = next(e for e in bot.sim.state.executions.values() if e["workflow_id"] == "heal")
    code, out = bot.run(f"executions get {heal['id']}")
    assert code == 1 and f"it is in tenant prod-apps: `executions get {heal['id']} -t prod-apps`" in out
    code, out = bot.run(f"executions get {heal['id']} -t prod-apps")
    assert code == 0 and "failed" in out and "replica did not join the cluster" in out
    code, out = bot.run("executions get no-such-id")
    assert code == 1 and "does not exist on production" in out


def test_cancel_is_gated_for_operators_and_sends_cfys_actions(make_bot) -> None:
    bot = make_bot(scheduled=True)
    first, second, third = sorted(waiting(bot.sim), key=lambda e: e["id"])[:3]
    viewer = make_bot(managers=("staging",), env={"BOT_SHELL_ROLE": "viewer"}, scheduled=True)
    some = waiting(viewer.sim)[0]
    code, out = viewer.run(f"executions cancel {some['id']} -t {some['tenant_name']}", yes=True)
    assert code == 1 and some["status"] == "scheduled"
    code, out = bot.run(f"executions cancel {first['id']} -k")
    assert code == 1 and f"`executions cancel {first['id']} --kill -t {first['tenant_name']}`" in out
    code, out = bot.run(f"executions cancel {first['id']} -t {first['tenant_name']}")  # unanswered: nothing sent
    assert "Confirm" in out and first["status"] == "scheduled" and f"tenant {first['tenant_name']}" in out
    code, out = bot.run(f"executions cancel {first['id']} -t {first['tenant_name']}", yes=True)
    assert code == 0 and first["status"] in ("cancelling", "cancelled"), out
    assert f"Track it with `executions get {first['id']} -t {first['tenant_name']}`" in out
    code, out = bot.run(f"executions cancel {second['id']} -k -t {second['tenant_name']}", yes=True)
    assert code == 0 and "kill request" in out
    code, out = bot.run(f"executions cancel {third['id']} --force -t {third['tenant_name']}", yes=True)
    assert code == 0 and "force-cancel request" in out
    code, out = bot.run(f"executions cancel {third['id']} -f -k", yes=True)
    assert code == 2 and "not both" in out
    done = next(e for e in bot.sim.state.executions.values() if e["status"] == "terminated")
    code, out = bot.run(f"executions cancel {done['id']}", yes=True)
    assert code == 1 and "has already ended (terminated)" in out
    calls = [r for r in bot.store.query_audit(limit=500) if r["event"] == "manager_call"]
    posts = [r for r in calls if r["detail"]["method"] == "POST" and "/executions/" in r["detail"]["path"]]
    assert len(posts) == 3


def test_every_hint_about_blocking_executions_runs_as_printed(make_bot) -> None:
    bot = make_bot(managers=("production", "staging"), scheduled=True)
    staging = bot.sims["staging"]
    code, out = bot.run("maintenance-mode activate -m staging", yes=True)
    assert code == 1 and "queued or scheduled" in out
    ids = {e["id"] for e in waiting(staging)}
    assert all(i in out for i in ids)  # the error names every blocking execution
    hints = re.findall(r"`(executions cancel [^`]+)`", out)
    assert len(hints) == 4 and all("-m staging" in h and " -t " in h for h in hints)
    for hint in hints:
        code, answer = bot.run(hint, yes=True)
        assert code == 0, answer
    assert len(waiting(bot.sims["production"])) == 4  # the default manager was not touched
    code, out = bot.run("maintenance-mode activate -m staging", yes=True)
    assert code == 0 and "staging is in maintenance mode" in out, out


def test_status_and_maintenance_status_name_queued_and_scheduled_executions(make_bot) -> None:
    bot = make_bot(scheduled=True)
    ids = {e["id"] for e in waiting(bot.sim)}
    code, out = bot.run("status")
    assert "4 queued or scheduled, which keep maintenance mode from activating" in out
    assert all(i in out for i in ids)
    code, out = bot.run("maintenance-mode status")
    assert code == 0 and "4 executions are queued or scheduled" in out and all(i in out for i in ids)
    assert "would not activate until they are cancelled: `executions cancel" in out
    healthy = make_bot(managers=("staging",))
    code, out = healthy.run("status")
    assert "executions: none active, queued or scheduled" in out
    code, out = healthy.run("maintenance-mode status")
    assert "queued or scheduled" not in out


def test_executions_are_read_past_activated_maintenance_mode(bot) -> None:
    code, out = bot.run("maintenance-mode activate", yes=True)
    assert code == 0, out
    code, out = bot.run("executions list --include-system-workflows")
    assert code == 0 and "X-BYPASS-MAINTENANCE" in out and "create_snapshot" in out
    snap = next(e for e in bot.sim.state.executions.values() if e["workflow_id"] == "create_snapshot")
    code, out = bot.run(f"executions get {snap['id']}")
    assert code == 0 and "X-BYPASS-MAINTENANCE" in out
    code, out = bot.run("maintenance-mode status")
    assert code == 0 and "production is in maintenance mode." in out
    code, out = bot.run("status")
    assert "executions: none active, queued or scheduled" in out  # not "could not read"
