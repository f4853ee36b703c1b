"""Shared fixtures: an injected clock, simulated managers, and a whole bot over real SQLite and httpx."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from bot.clock import FakeClock

from sim_fixtures import START  # the injected clock starts here (tests derive dates from it)


@pytest.fixture
def clock() -> FakeClock:
    """A clock that moves only when slept on or advanced; polling loops finish instantly."""
    return FakeClock(START)


@dataclass
class BotHarness:
    """A whole bot wired to simulators: run command texts as a terminal user would."""

    dispatcher: Any
    services: Any
    sims: dict[str, Any]
    clock: FakeClock
    settings: Any
    outputs: list[str] = field(default_factory=list)

    @property
    def store(self) -> Any:
        return self.services.store

    @property
    def sim(self) -> Any:
        """The simulator of the first (default) manager."""
        return next(iter(self.sims.values()))

    def run(self, text: str, *, yes: bool = False, approver: str = "", user: str = "alice",
            ask: Callable[[str], str] | None = None) -> tuple[int, str]:
        """Run `text` through the terminal front end; returns (exit code, everything printed)."""
        from bot.front.shell import Terminal, shell_actor

        out = io.StringIO()
        term = Terminal(self.dispatcher, out=out, actor=shell_actor(user), ask=ask, simulated_approvals=True)
        code = term.run(text, yes=yes, approver=approver)
        self.outputs.append(out.getvalue())
        return code, out.getvalue()


@pytest.fixture
def make_bot(tmp_path, clock) -> Callable[..., BotHarness]:
    """Build a bot: `make_bot(managers=("production",), env={...}, seed=True, manager={ManagerSettings fields})`;
    `scheduled=True` seeds the stuck-maintenance scenario (4 live scheduled executions)."""
    from bot.front.wiring import build_services
    from bot.cloudify import wsgi_transport
    from bot.config import load_settings
    from bot.engine.dispatch import Dispatcher
    from bot.settings import ManagerSettings
    from simulator import Simulator

    def build(managers: tuple[str, ...] = ("production",), env: dict[str, str] | None = None,
              seed: bool = True, manager: dict[str, Any] | None = None, scheduled: bool = False,
              **sim_kwargs: Any) -> BotHarness:
        sims, apps, ms = {}, {}, []
        for name in managers:
            sim = Simulator(now=clock.time, sleep=clock.sleep, data_dir=str(tmp_path / f"sim-{name}"), **sim_kwargs)
            if seed:
                from simulator.seed import seed_demo

                seed_demo(sim, "stuck-maintenance" if scheduled else "healthy")
            sims[name] = sim
            apps[f"{name}.test"] = sim.wsgi
            fields = {"username": "admin", "password": "admin", **(manager or {})}
            ms.append(ManagerSettings(name=name, urls=(f"http://{name}.test",), **fields))
        base = {"BOT_DATA_DIR": str(tmp_path / "data"), "BOT_SHELL_ROLE": "admin"}
        base.update(env or {})
        settings = load_settings(base, managers=tuple(ms))
        services = build_services(settings, clock=clock, transport=wsgi_transport(apps))
        return BotHarness(Dispatcher(services), services, sims, clock, settings)

    return build


@pytest.fixture
def bot(make_bot) -> BotHarness:
    """A bot with one seeded simulated manager named production, and an admin terminal user."""
    return make_bot()


@pytest.fixture
def fake() -> Any:
    """The recording stand-in for the Slack Web API and response_url, on 127.0.0.1."""
    from slack_fake_server import FakeSlack

    server = FakeSlack().start()
    yield server
    server.stop()


@pytest.fixture
def store(tmp_path, clock) -> Any:
    """A real SQLite store in tmp_path on the injected clock."""
    from bot.store import Store

    opened = Store(tmp_path / "bot.db", clock=clock)
    yield opened
    opened.close()


@pytest.fixture
def api(clock) -> Any:
    """The simulator's WSGI app behind a tiny test caller, on whichever `clock` the test module uses."""
    from sim_fixtures import Api, make_sim

    return Api(make_sim(clock))
