"""Assemble a running bot from settings: store, manager clients, archive, policy, dispatcher."""

from __future__ import annotations

from typing import Any

from bot.clock import Clock
from bot.engine.services import Services
from bot.engine.dispatch import Dispatcher
from bot.engine.policy import Policy
from bot.spec.registry import REGISTRY
from bot.settings import Settings


def build_services(settings: Settings, *, clock: Clock | None = None, transport: Any = None,
                   groups_of: Any = None) -> Services:
    """Everything a dispatcher needs; `transport` lets tests and the demo talk to an in-process simulator."""
    import commands  # noqa: F401 - registers every command declaration
    from bot.cloudify import Manager
    from bot.store import Store
    from bot.config import prepare_folders
    from bot.errors import BotError
    from bot.store.audit import audit_key

    clock = clock or Clock()
    prepare_folders(settings)
    store = Store(settings.db_path, clock=clock)
    store.secrets = settings.secrets()
    store.audit_key = audit_key(settings.audit_key)
    try:
        store.start_audit_chain()
    except BotError:  # a key that does not fit the log: refuse to start, leaving nothing open
        store.close()
        raise
    managers: dict[str, Any] = {}
    services = Services(settings=settings, clock=clock, store=store, managers=managers, registry=REGISTRY,
                        policy=Policy(settings, groups_of))
    for m in settings.managers:
        managers[m.name] = Manager(m, transport=transport, clock=clock,
                                   on_call=lambda *call, name=m.name: services.record_call(name, *call))
    services.archive = _archive(services)
    return services


def _archive(services: Services) -> Any:
    """The off-manager archive, when its module is present."""
    try:
        from bot.archive.folder import open_archive
    except ImportError:
        return None
    return open_archive(services.settings, services.store, services.clock)


def build_dispatcher(settings: Settings, **kwargs: Any) -> Dispatcher:
    """A dispatcher over freshly built services."""
    return Dispatcher(build_services(settings, **kwargs))
