"""The audit methods of `Store`: append, verify, query and export, over the hash chain of audit.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime
from typing import Any

from bot.core import Operation, count
from bot.errors import ConfigError
from bot.store import audit
from bot.store.audit import AuditVerdict
from bot.store.base import _StoreBase
from bot.store.codec import iso


class _AuditCalls(_StoreBase):
    """Each call borrows a connection and hands it to the chain's functions, which own the SQL."""

    get_operation: Callable[[str], Operation | None]  # from _OperationCalls: where an operation's rows begin

    def append_audit(self, event: str, *, actor: str, transport: str = "", channel: str = "",
                     manager: str = "", command: str = "", operation_id: str = "", execution_id: str = "",
                     detail: dict[str, Any] | None = None) -> dict[str, Any]:
        """Append one hash-chained audit row, atomically across threads and processes."""
        fields = {"actor": actor, "transport": transport, "channel": channel, "manager": manager,
                  "command": command, "operation_id": operation_id, "execution_id": execution_id}
        with self._borrow() as db:
            return audit.append(db, self._now, self.secrets, event, fields, detail, self.audit_key)

    def verify_audit(self, expect: tuple[int, str] | None = None) -> AuditVerdict:
        """Check every row's hash (HMAC under `audit_key` for keyed rows) and link, the head record, and that
        the head `expect` (seq, hash) seen before is still there; streams, so memory stays flat."""
        with self._borrow() as db:
            verdict = audit.verify(db, self.audit_key, expect)
            if not verdict.ok or self.audit_key is None:
                return verdict
            missing, example = audit.unaudited_operations(db)
        if missing:
            return replace(verdict, ok=False, lost=True, reason=(
                f"the store holds {count(missing, 'operation')} that no audit row names "
                f"(e.g. {example}): their rows were deleted (rows keyed with BOT_AUDIT_KEY cannot be rewritten "
                "to name them, and the head record is not keyed)"))
        return verdict

    def start_audit_chain(self) -> None:
        """At start-up: refuse a key that does not fit the log (ConfigError); when the key is new to a log of
        plain rows, append the first keyed row, which seals those rows under the key from here on."""
        with self._borrow() as db:
            problem = audit.key_problem(db, self.audit_key)
            seq, last = audit.head(db)
        if problem:
            raise ConfigError([problem])
        if self.audit_key and seq and not last.startswith(audit.KEYED):
            self.append_audit("audit_keyed", actor="system:bot",
                              detail={"plain_rows": seq, "plain_head": f"{seq}:{last}"})

    def audit_head(self) -> tuple[int, str]:
        """The head record as written (row count and last hash), not verified: cheap, for the daily summary."""
        with self._borrow() as db:
            return audit.head(db)

    def query_audit(self, user: str | None = None, command: str | None = None, manager: str | None = None,
                    since: datetime | str | None = None, until: datetime | str | None = None,
                    event: str | None = None, limit: int = 50, operation_id: str | None = None
                    ) -> list[dict[str, Any]]:
        """Audit rows newest first; `since` inclusive, `until` exclusive; a bare user id matches any source."""
        if operation_id and not since:
            # No index on operation_id: an operation's rows all come after its creation, so start there.
            op = self.get_operation(operation_id)
            since = op.created_at if op else None
        with self._borrow() as db:
            return audit.query(db, user=user, command=command, manager=manager,
                                  since=iso(since) if since else None, until=iso(until) if until else None,
                                  event=event, operation_id=operation_id, limit=limit)

    def iter_audit(self, since: datetime | str | None = None) -> Iterator[dict[str, Any]]:
        """Audit rows oldest first, streamed (for export); holds one connection until exhausted or closed."""
        start = iso(since) if since else None
        with self._borrow() as db:
            yield from audit.iterate(db, start)
