"""Fault switches (`sim.faults`): small, composable, each limited by a window of simulated time or a count.

Every switch takes `seconds` (a window starting now, in the simulator's clock) and/or `count` (how many
requests it hits); with neither it lasts until `clear()`. `node` limits it to one manager node and
`path_prefix` to paths starting with it (matched against the full path and the path after `/api/<ver>`).

- `refuse_connections(seconds, node)`: the WSGI callable raises `ConnectionRefusedError`;
  over HTTP the socket is closed without an answer.
- `http_error(status=502, count=1, seconds, node, path_prefix)`: 502/503/504 as nginx HTML pages, 500 as
  the manager's internal_server_error JSON, instead of the answer.
- `slow(delay, seconds, count, node, path_prefix)`: `sleep(delay)` before answering.
- `hang(seconds, count, node, path_prefix)`: the WSGI callable raises `TimeoutError`; over HTTP nothing
  is answered.
- `truncate_downloads(after_bytes, count, seconds)`: archive downloads stop after `after_bytes`;
  Content-Length still announces the full size.
- `corrupt_downloads(count, seconds)`: archive downloads carry damaged bytes (same length).
- `garbage_responses(count, seconds, node, path_prefix)`: 200 with an HTML page or a non-JSON body.
- `api_outage_during_restore(seconds)`: when the next restore starts, refused connections, then 502,
  then 401, a third of the window each (what a client must ride out, not failures).
- `change_admin_password_after_restore(pw)`: after the next restore ends, the admin password is `pw`.
- `fail_next(workflow_id, message)`: the next execution of that workflow fails with a traceback whose
  last line carries `message`.
- `drop_on_restore(kind, ident)` / `corrupt_on_restore(kind, ident)`: the next successful restore loses that
  entity (`kind` blueprints, deployments, secrets, plugins, sites or users; by id, key, name or username) or
  brings it back altered (a deployment's blueprint, a plugin's version, a site's location, a user's role; a
  blueprint or secret under a damaged name), in every tenant that has it. One-shot.
- `unreachable_after_restore()`: once the next restore's post-restore job is done, every request except the
  unauthenticated `snapshot-status` is refused (the manager did not come back); until `clear()`.
- `split_brain(partitions, seconds)`: each node sees only its own partition healthy (`simulator.cluster`).
- `clear()`: everything off.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Fault:
    """One active switch."""

    kind: str
    start: float
    until: float | None = None
    count: int | None = None
    node: str | None = None
    path_prefix: str | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def matches(self, kind: str, now: float, node: str | None, paths: Sequence[str]) -> bool:
        """Whether this switch applies to a request at `now` on `node` for one of `paths`."""
        if self.kind != kind or now < self.start or (self.until is not None and now >= self.until):
            return False
        if self.count is not None and self.count <= 0:
            return False
        if self.node is not None and node is not None and self.node != node:
            return False
        if any(p.startswith(x) for x in self.params.get("except_prefixes", ()) for p in paths):
            return False
        return self.path_prefix is None or any(p.startswith(self.path_prefix) for p in paths)


class Faults:
    """The set of active fault switches of one simulator."""

    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._fail_next: dict[str, list[str]] = {}
        self.restore_outage: float | None = None
        self.password_after_restore: str | None = None
        self.partitions: list[list[str]] | None = None
        self._partitions_until: float | None = None
        self._entity_damage: list[tuple[str, str, bool]] = []
        self.unreachable_after: bool = False

    # ---- switches ------------------------------------------------------------------------------
    def _add(self, kind: str, seconds: float | None, count: int | None, **kw: Any) -> Fault:
        now = self._now()
        start = kw.pop("start", now)
        until = None if seconds is None else start + seconds
        fault = Fault(kind, start, until, count, kw.pop("node", None), kw.pop("path_prefix", None), kw)
        with self._lock:
            self._faults.append(fault)
        return fault

    def refuse_connections(self, seconds: float | None = None, node: str | None = None,
                           count: int | None = None) -> None:
        """Refuse connections (the WSGI callable raises ConnectionRefusedError)."""
        self._add("refuse", seconds, count, node=node)

    def http_error(self, status: int = 502, count: int | None = 1, seconds: float | None = None,
                   node: str | None = None, path_prefix: str | None = None) -> None:
        """Answer `status` instead (502 as nginx's HTML page); by default for one request."""
        if seconds is not None and count == 1:
            count = None
        self._add("http_error", seconds, count, node=node, path_prefix=path_prefix, status=status)

    def slow(self, delay: float, seconds: float | None = None, count: int | None = None,
             node: str | None = None, path_prefix: str | None = None) -> None:
        """Sleep `delay` seconds (with the simulator's `sleep`) before answering."""
        self._add("slow", seconds, count, node=node, path_prefix=path_prefix, delay=delay)

    def hang(self, seconds: float | None = None, count: int | None = None, node: str | None = None,
             path_prefix: str | None = None) -> None:
        """Never answer (the WSGI callable raises TimeoutError)."""
        self._add("hang", seconds, count, node=node, path_prefix=path_prefix)

    def truncate_downloads(self, after_bytes: int, count: int | None = None,
                           seconds: float | None = None) -> None:
        """Cut archive downloads after `after_bytes` bytes (Content-Length still announces the full size)."""
        self._add("truncate", seconds, count, after_bytes=after_bytes)

    def corrupt_downloads(self, count: int | None = None, seconds: float | None = None) -> None:
        """Damage the bytes of archive downloads (same length)."""
        self._add("corrupt", seconds, count)

    def garbage_responses(self, count: int | None = None, seconds: float | None = None,
                          node: str | None = None, path_prefix: str | None = None) -> None:
        """Answer 200 with an HTML page or plain text instead of JSON."""
        self._add("garbage", seconds, count, node=node, path_prefix=path_prefix)

    def api_outage_during_restore(self, seconds: float) -> None:
        """When the next restore starts: refused connections, then 502, then 401, a third of `seconds` each."""
        self.restore_outage = seconds

    def change_admin_password_after_restore(self, new_password: str) -> None:
        """After the next restore finishes, the admin password becomes `new_password`."""
        self.password_after_restore = new_password

    def fail_next(self, workflow_id: str, message: str) -> None:
        """Make the next execution of `workflow_id` fail with `message` (as a traceback's last line)."""
        with self._lock:
            self._fail_next.setdefault(workflow_id, []).append(message)

    def drop_on_restore(self, kind: str, ident: str) -> None:
        """The next successful restore loses entity `ident` of `kind`."""
        with self._lock:
            self._entity_damage.append((kind, ident, False))

    def corrupt_on_restore(self, kind: str, ident: str) -> None:
        """The next successful restore brings entity `ident` of `kind` back altered."""
        with self._lock:
            self._entity_damage.append((kind, ident, True))

    def unreachable_after_restore(self) -> None:
        """After the next restore, the manager refuses every request but `snapshot-status`."""
        self.unreachable_after = True

    def take_entity_damage(self) -> list[tuple[str, str, bool]]:
        """The (kind, id, corrupt?) damage to apply to the restore that just succeeded (one-shot)."""
        with self._lock:
            damage, self._entity_damage = self._entity_damage, []
        return damage

    def reboot(self, at: float, seconds: float) -> None:
        """The manager's VM reboots at `at`: every request (snapshot-status too) is refused for `seconds`."""
        self._add("refuse", seconds, None, start=at)

    def begin_unreachable(self) -> None:
        """Called when a restore's post-restore job ends: switch on `unreachable_after_restore` (one-shot)."""
        if self.unreachable_after:
            self.unreachable_after = False
            self._add("refuse", None, None, except_prefixes=("/snapshot-status", "/api/v3.1/snapshot-status"))

    def split_brain(self, partitions: Sequence[Sequence[str]], seconds: float | None = None) -> None:
        """Partition the cluster: each node sees its own partition healthy and every other node failed."""
        self.partitions = [list(p) for p in partitions]
        self._partitions_until = None if seconds is None else self._now() + seconds

    def clear(self) -> None:
        """Switch every fault off."""
        with self._lock:
            self._faults.clear()
            self._fail_next.clear()
            self._entity_damage.clear()
        self.unreachable_after = False
        self.restore_outage = self.password_after_restore = None
        self.partitions = self._partitions_until = None

    # ---- queries used by the simulator ---------------------------------------------------------
    def take(self, kind: str, node: str | None = None, paths: Sequence[str] = ("",)) -> Fault | None:
        """The first active switch of `kind` for this request, its count consumed; else None."""
        now = self._now()
        with self._lock:
            for fault in self._faults:
                if fault.matches(kind, now, node, paths):
                    if fault.count is not None:
                        fault.count -= 1
                    return fault
        return None

    def take_failure(self, workflow_id: str) -> str | None:
        """The message the next execution of `workflow_id` must fail with, if one was asked for."""
        with self._lock:
            queue = self._fail_next.get(workflow_id)
            return queue.pop(0) if queue else None

    def begin_restore_outage(self, start: float) -> None:
        """Schedule the API outage of a restore that started at `start` (one-shot)."""
        seconds, self.restore_outage = self.restore_outage, None
        if not seconds:
            return
        third = seconds / 3.0
        self._add("refuse", third, None, start=start)
        self._add("http_error", third, None, start=start + third, status=502)
        self._add("unauthorized", third, None, start=start + 2 * third)

    def take_password_change(self) -> str | None:
        """The admin password to set after a restore (one-shot)."""
        password, self.password_after_restore = self.password_after_restore, None
        return password

    def partition_of(self, node: str) -> list[str] | None:
        """The partition `node` belongs to while a split brain is active, else None."""
        if self.partitions is None:
            return None
        if self._partitions_until is not None and self._now() >= self._partitions_until:
            self.partitions = self._partitions_until = None
            return None
        return next((p for p in self.partitions if node in p), [node])
