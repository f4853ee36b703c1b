"""A new-format restore only logs per-entity conflicts (reference §2.7), so the guided restore reads its result
back (issue 14 point 3): the tenants, blueprints, deployments, secrets and plugins the snapshot holds (its archive
copy's dumps) against what the manager lists afterwards, per tenant where they differ, and each missing entity
named. Real SQLite, the real client over the WSGI seam to the simulator, the injected clock."""

from __future__ import annotations

import json
from typing import Any

from test_archive import download, snapshot_zip

NEW = "pre-upgrade-20261121"  # the seed's new-format snapshot of production


def _docs(kind: str, *items: dict[str, Any]) -> bytes:
    return json.dumps({"type": kind, "items": list(items)}).encode()


def fresh_snapshot(bot: Any, sid: str = "fresh-1") -> None:
    """A new-format archive copy (not on the manager): tenants default_tenant and apps; in apps 2 blueprints, 1
    deployment, 2 secrets and 1 plugin."""
    members = {
        "mgmt/00000002.json": _docs("tenants", {"name": "default_tenant"}, {"name": "apps"}),
        "tenants/apps/00000001.json": _docs("blueprints", {"id": "web"}, {"id": "db"}),
        "tenants/apps/00000002.json": _docs("deployments", {"id": "web-1", "blueprint_id": "web"}),
        "tenants/apps/00000003.json": _docs("secrets", {"key": "token", "value": "s3cr3t-value"}, {"key": "pw"}),
        "tenants/apps/00000004.json": _docs("plugins", {"id": "aws-1", "package_name": "cloudify-aws-plugin",
                                                        "package_version": "3.1.6"}),
    }
    data = snapshot_zip(layout="new", version="7.0.5", extra=members)
    bot.services.archive.save("production", sid, download(data), manager_version="7.0.5")


def field(out: str, name: str) -> str:
    """The summary's line `name`, without its label."""
    [line] = [ln for ln in out.splitlines() if ln.startswith(f"{name} ")]
    return line[len(name):].strip()


def test_a_new_format_restore_onto_an_empty_manager_reads_back_every_count(make_bot) -> None:
    bot = make_bot(seed=False)
    fresh_snapshot(bot)
    code, out = bot.run("restore fresh-1", yes=True, approver="bob")
    assert code == 0, out
    assert "restore snapshot fresh-1, which adds the snapshot's entities to what the manager has" in out
    assert field(out, "content") == (
        "the snapshot holds 2 tenants, 2 blueprints, 1 deployment, 2 secrets, 1 plugin; production has 2 tenants, "
        "2 blueprints, 1 deployment, 2 secrets, 1 plugin: each of the snapshot's is there, and the restore logged "
        "no error")
    state = bot.sim.state  # what the line says the manager has, counted in the simulator itself
    assert sorted(state.tenants) == ["apps", "default_tenant"]
    assert [b["id"] for b in state.blueprints["apps"]] == ["web", "db"]
    assert "s3cr3t-value" not in out  # secret keys are counted, values never read


def test_an_entity_the_restore_did_not_bring_is_named_and_the_restore_is_reported_incomplete(make_bot) -> None:
    bot = make_bot(seed=False)
    fresh_snapshot(bot)
    bot.sim.faults.drop_on_restore("blueprints", "db")
    code, out = bot.run("restore fresh-1", yes=True, approver="bob")
    assert code == 1, out
    assert "Restore of production incomplete" in out
    assert "ended terminated, but the manager does not have all the snapshot holds" in out
    assert ("tenant apps: the snapshot holds 2 blueprints, 1 deployment, 2 secrets, 1 plugin; production has "
            "1 blueprint, 1 deployment, 2 secrets, 1 plugin") in out  # the tenant where the counts differ
    assert "tenant apps: blueprint db: missing after the restore" in out
    assert "tenant default_tenant:" not in out  # same counts on both sides: not listed
    assert field(out, "content") == (
        "the snapshot holds 2 tenants, 2 blueprints, 1 deployment, 2 secrets, 1 plugin; production has 2 tenants, "
        "1 blueprint, 1 deployment, 2 secrets, 1 plugin: 1 entity of the snapshot missing or different after the "
        "restore (listed above)")
    assert field(out, "maintenance mode") == "deactivated"  # the restore itself ended terminated


def test_entities_already_on_the_manager_are_there_by_name_and_the_logged_conflicts_are_counted(make_bot) -> None:
    bot = make_bot()
    assert bot.run(f"snapshots download {NEW}")[0] == 0
    errors_before = len([e for e in bot.sim.state.events if e.get("level") == "error"])
    code, out = bot.run(f"restore {NEW}", yes=True, approver="bob")
    assert code == 0, out
    [restore] = [e for e in bot.sim.state.executions.values() if e["workflow_id"] == "restore_snapshot"]
    logged = [e for e in bot.sim.state.events if e.get("level") == "error" and e.get("execution_id") == restore["id"]]
    assert logged and len([e for e in bot.sim.state.events if e.get("level") == "error"]) > errors_before
    assert f"but the restore logged {len(logged)} errors (listed above): an entity that was already on " \
           "production keeps its own content, not the snapshot's" in field(out, "content")
    assert field(out, "content").startswith("the snapshot holds 3 tenants, 4 blueprints, 4 deployments, 5 secrets, "
                                            "4 plugins; production has 3 tenants, 4 blueprints")


def test_without_an_archive_copy_the_restore_copies_it_first_and_compares_against_that_copy(make_bot) -> None:
    bot = make_bot()
    code, out = bot.run(f"restore {NEW}", yes=True, approver="bob")  # only on the manager
    assert code == 0, out
    assert f"{NEW} is a new-format snapshot (7.0.5; metadata.json in the first " in out
    assert "the snapshot holds (the archive copy the bot makes of it before maintenance mode)" in out
    assert f"copied {NEW} off production into the archive before the restore: " in out
    assert out.index("into the archive before the restore") < out.index("maintenance mode requested")
    assert bot.store.get_copy("production", NEW).verified
    assert field(out, "content").startswith("the snapshot holds 3 tenants, 4 blueprints, 4 deployments")
