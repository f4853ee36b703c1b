"""`cfy-bot check`: configuration is valid, and every manager answers."""

from __future__ import annotations

from typing import Any

from bot.errors import ManagerError


def run_check(settings: Any, transport: Any = None) -> int:
    """Print one line per manager; exit 1 when any manager does not answer properly."""
    from bot.cloudify import Manager

    n = len(settings.managers)
    print(f"configuration OK: {n} manager{'' if n == 1 else 's'}, data in {settings.data_dir}")
    if settings.slack_bot_token:
        print("Slack: token set (checked with auth.test when the Slack transport starts)")
    else:
        print("Slack: SLACK_BOT_TOKEN not set (terminal use only)")
    failed = 0
    for m in settings.managers:
        client = Manager(m, transport=transport)
        try:
            version = client.version()
            client.list_snapshots(size=1)
            print(f"manager {m.name}: OK at {client.current_url}, version {version.get('version')}, "
                  f"tenant {m.tenant}")
        except ManagerError as exc:
            failed += 1
            print(f"manager {m.name}: FAILED: {exc}")
        for note in client.take_notices():
            print(f"  note: {note}")
    return 1 if failed else 0
