"""`--demo`: the whole bot against in-process simulated managers, in a throw-away data folder."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Any

from bot.clock import Clock
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


def make_demo(env: dict[str, str] | None = None, clock: Clock | None = None) -> Demo:
    """Seeded simulators for a production and a staging manager, and an admin shell."""
    from bot.cloudify import wsgi_transport
    from simulator import Simulator
    from simulator.seed import seed_demo

    clock = clock or Clock()
    folder = tempfile.mkdtemp(prefix="cfy-bot-demo-")
    sims, apps, managers = {}, {}, []
    for name, host in DEMO_MANAGERS:
        sim = Simulator(now=clock.time, sleep=clock.sleep, data_dir=f"{folder}/{name}-manager")
        seed_demo(sim)
        sims[name], apps[host] = sim, sim.wsgi
        managers.append(ManagerSettings(name=name, urls=(f"http://{host}",), username="admin", password="admin",
                                        drill_target=name == "staging"))
    base = {"BOT_DATA_DIR": folder, "BOT_SHELL_ROLE": "admin", "BOT_REQUIRE_APPROVAL": "true"}
    base.update({k: v for k, v in (env or {}).items() if k.startswith("BOT_") and k != "BOT_DATA_DIR"})
    settings = load_settings(base, managers=tuple(managers))
    return Demo(settings=settings, transport=wsgi_transport(apps), simulators=sims, folder=folder)
