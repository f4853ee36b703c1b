"""Is the process that runs an operation alive? Owners, heartbeats, and the verdict a restarted bot acts on.

Every running operation records its owner (host:pid) and, while it runs, a heartbeat: its `updated_at` is
refreshed every HEARTBEAT_S, even when the operation itself is quiet (a restore watch can wait an hour
for the manager). On the same host the OS says whether the owner's pid lives; another host (another
container, another dyno sharing the data folder) is taken as gone once its heartbeat is OTHER_HOST_STALE
old: soon enough to resume a crashed runner's operation in minutes, never while the runner is alive.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.core import Operation
from bot.errors import BotError

log = logging.getLogger("cfy_bot.operations")
HEARTBEAT_S = 20.0  # how often a running operation's `updated_at` is refreshed
OTHER_HOST_STALE = 6 * HEARTBEAT_S  # an operation another host has not refreshed for this long is orphaned
RUNNING_HERE: set[str] = set()  # ids of the operations this process is executing right now


def owner() -> str:
    """This process, as recorded on the operations it runs, to tell a crashed runner from a live peer."""
    return f"{socket.gethostname()}:{os.getpid()}"


@contextmanager
def heartbeat(store: Any, op_id: str, every: float = HEARTBEAT_S) -> Iterator[None]:
    """While the block runs (and the operation is running), refresh its `updated_at` every `every` seconds."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(every):
            try:
                if store.update_operation(op_id, "running") is None:
                    return  # it ended (or is no longer running): nothing to keep alive
            except BotError as exc:  # a busy database: the next beat tries again, well within the margin
                log.warning("heartbeat of %s not recorded: %s", op_id, exc)

    thread = threading.Thread(target=beat, name=f"heartbeat-{op_id}", daemon=True)
    RUNNING_HERE.add(op_id)
    thread.start()
    try:
        yield
    finally:
        RUNNING_HERE.discard(op_id)
        stop.set()
        thread.join()


def recorded_owner(op: Operation) -> str:
    """The process (host:pid) recorded as running `op`; "" when none was."""
    return str((((op.result or {}).get("journal") or {}).get("owner")) or "")


@dataclass(frozen=True)
class Runner:
    """Who runs an operation, as `operations` shows it."""

    owner: str  # host:pid, "" when none was recorded
    here: bool  # this process runs it right now
    alive: bool  # its process is alive (same host: the OS says so; another host: a recent heartbeat)
    seen_s: float | None  # seconds since its last sign of life (a heartbeat or a step); None when unknown


def runner(op: Operation, now: datetime) -> Runner:
    """Who runs `op` and how recently it was heard from."""
    try:
        seen: float | None = (now - datetime.fromisoformat(str(op.updated_at or "").replace("Z", "+00:00"))
                              ).total_seconds()
    except ValueError:
        seen = None
    here = recorded_owner(op) == owner() and op.id in RUNNING_HERE
    return Runner(recorded_owner(op), here, owner_alive(op, now), seen)


def owner_alive(op: Operation, now: datetime) -> bool:
    """Is the process that runs `op` alive? Same host: ask the OS; another host: a recent heartbeat."""
    recorded = recorded_owner(op)
    host, _, pid = recorded.rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        if int(pid) == os.getpid():
            return op.id in RUNNING_HERE
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    try:
        age = (now - datetime.fromisoformat((op.updated_at or "").replace("Z", "+00:00"))).total_seconds()
    except ValueError:
        return False
    return bool(host) and age < OTHER_HOST_STALE
