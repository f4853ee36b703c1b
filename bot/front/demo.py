"""`--demo`: the whole bot against in-process simulated managers, in a throw-away data folder."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.clock import Clock
from bot.core import ArchiveCopy
from bot.config import load_settings
from bot.settings import ManagerSettings, Settings

DEMO_MANAGERS = (("production", "production.demo.invalid"), ("staging", "staging.demo.invalid"))


@dataclass
class Demo:
    """The simulators, the transport that reaches them, and the settings that name them."""

    settings: Settings
    transport: Any
    simulators: dict[str, Any] = field(default_factory=dict)
    folder: str = ""

    def close(self) -> None:
        """Remove the demo's temporary folder."""
        if self.folder:
            shutil.rmtree(self.folder, ignore_errors=True)


# The demo's data stays in its throw-away folder: these settings from the environment would point it elsewhere.
OWN_FOLDER = ("BOT_DATA_DIR", "BOT_DB_PATH", "BOT_ARCHIVE_DIR", "BOT_ARCHIVE_URL")
DAILY_PREFIX = "daily-"
COPIED_AFTER = 180.0  # seconds after a daily snapshot was created that the bot's daily job copied it off


def make_demo(env: dict[str, str] | None = None, clock: Clock | None = None, scenario: str = "healthy") -> Demo:
    """Seeded simulators for a production and a staging manager, and an admin shell.

    `scenario` is a simulator.seed.Scenario (healthy, or stuck-maintenance). The archive already holds verified
    copies of each manager's daily snapshots, as if the bot had run its daily job for a week.
    """
    from bot.cloudify import wsgi_transport
    from simulator import Simulator
    from simulator.seed import seed_demo

    clock = clock or Clock()
    folder = tempfile.mkdtemp(prefix="cfy-bot-demo-")
    sims, apps, managers = {}, {}, []
    for name, host in DEMO_MANAGERS:
        sim = Simulator(now=clock.time, sleep=clock.sleep, data_dir=f"{folder}/{name}-manager")
        seed_demo(sim, scenario, today=True)
        sims[name], apps[host] = sim, sim.wsgi
        managers.append(ManagerSettings(name=name, urls=(f"http://{host}",), username="admin", password="admin",
                                        drill_target=name == "staging"))
    base = {"BOT_DATA_DIR": folder, "BOT_SHELL_ROLE": "admin", "BOT_REQUIRE_APPROVAL": "true"}
    base.update({k: v for k, v in (env or {}).items() if k.startswith("BOT_") and k not in OWN_FOLDER})
    settings = load_settings(base, managers=tuple(managers))
    demo = Demo(settings=settings, transport=wsgi_transport(apps), simulators=sims, folder=folder)
    try:
        archive_dailies(settings, demo.transport, clock)
    except BaseException:
        demo.close()
        raise
    return demo


def _run_key(snapshot_id: str) -> str | None:
    """The run key of the daily job's snapshot `daily-YYYYMMDD[-N]` (attempt N), None for any other id."""
    from bot.schedule.runs import run_key
    from commands.retention import daily_day

    parsed = daily_day(snapshot_id)
    return run_key(*parsed) if parsed else None


def archive_dailies(settings: Settings, transport: Any, clock: Clock) -> list[ArchiveCopy]:
    """Copy every created `daily-*` snapshot of every manager into the archive, as the daily job does: downloaded
    through the client, checked and recorded (sha256, size, zip, metadata) by the archive code, each stored a few
    minutes after its snapshot was created; and record the daily job's run of each day (succeeded with that
    snapshot, or failed with the failed snapshot's error), so `backups schedule` shows the week the copies tell.
    The catalog rows made."""
    from bot.archive.folder import open_archive
    from bot.clock import FakeClock
    from bot.cloudify import Manager
    from bot.schedule.runs import owner_id
    from bot.store import Store

    then = FakeClock(clock.time())
    store = Store(settings.db_path, clock=then)
    rows = []
    try:
        archive = open_archive(settings, store, then)
        for manager_settings in settings.managers:
            with Manager(manager_settings, transport=transport, clock=clock) as client:
                version = str(client.version().get("version") or "")
                for snap in client.list_snapshots(search=DAILY_PREFIX).items:
                    key = _run_key(str(snap.get("id", "")))
                    if key is None or snap.get("status") not in ("created", "failed"):
                        continue
                    created = datetime.fromisoformat(str(snap["created_at"]).replace("Z", "+00:00"))
                    then.set(created.timestamp())
                    owner = owner_id("demo")
                    store.claim_run(manager_settings.name, key, owner)  # the daily job's run of that day
                    then.set(created.timestamp() + COPIED_AFTER)
                    if snap.get("status") == "failed":
                        error = (str(snap.get("error") or "").strip().splitlines() or ["failed"])[-1]
                        store.finish_run(manager_settings.name, key, "failed", owner=owner, snapshot_id=snap["id"],
                                         error=f"Snapshot {snap['id']} failed on {manager_settings.name}: {error}")
                        continue
                    with client.download_snapshot(snap["id"]) as download:
                        rows.append(archive.save(manager_settings.name, snap["id"], download,
                                                 manager_version=version, tenant=snap.get("tenant_name") or "",
                                                 created_at=snap["created_at"]))
                    store.finish_run(manager_settings.name, key, "succeeded", owner=owner, snapshot_id=snap["id"])
    finally:
        store.close()
    return rows
