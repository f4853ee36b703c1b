"""The operations table: create, compare-and-set transitions, listing, the manager lock and gate expiry."""

from __future__ import annotations

import secrets as _random
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from bot.core import Operation
from bot.errors import BotError, NotFound, OperationError
from bot.store.base import _StoreBase
from bot.store.codec import _encode, iso
from bot.store.schema import _UNFINISHED_SQL, FINAL_STATES, OPERATION_COLUMNS, STATES, UNFINISHED_STATES


class _OperationCalls(_StoreBase):
    """The operation methods of `Store`: every state change is one atomic UPDATE … WHERE state IN (…)."""

    def create_operation(self, *, exclusive: bool = False, **fields: Any) -> Operation:
        """Insert an operation (state pending unless given); `exclusive` ones are one per manager."""
        if not fields.get("kind"):
            raise ValueError("an operation needs a kind")
        now = self._now()
        row = {"state": "pending", **fields, "exclusive": exclusive, "created_at": now, "updated_at": now}
        _check_state(row["state"])
        for _attempt in range(5):
            row["id"] = fields.get("id") or f"op-{_random.token_hex(3)}"
            values = _encode(row, OPERATION_COLUMNS)
            sql = (f"INSERT INTO operations ({', '.join(values)}) VALUES ({', '.join('?' * len(values))}) "
                   "RETURNING *")
            try:
                return Operation.from_row(self._write(sql, values.values(), OPERATION_COLUMNS)[0])
            except BotError as exc:
                conflict = str(exc.__cause__ or "")
                if "operations.manager" in conflict:
                    self._raise_busy(row.get("manager", ""))  # returns if the holder just finished
                elif "operations.id" not in conflict or fields.get("id"):
                    raise
        raise OperationError("could not find a free operation id; try again")

    def get_operation(self, op_id: str) -> Operation | None:
        """The operation, or None."""
        rows = self._rows("SELECT * FROM operations WHERE id = ?", [op_id], OPERATION_COLUMNS)
        return Operation.from_row(rows[0]) if rows else None

    def transition(self, op_id: str, from_states: str | Iterable[str], to_state: str, *,
                   expect_gate: str | None = None, **fields: Any) -> Operation | None:
        """Compare-and-set the state (and the gate, if `expect_gate`): the updated row, or None."""
        _check_state(to_state)
        states = _states(from_states)
        if FINAL_STATES.intersection(states):
            raise ValueError(f"an operation never leaves a final state ({', '.join(states)})")
        now = self._now()
        changes = {**fields, "state": to_state, "updated_at": now}
        if to_state in FINAL_STATES:
            changes.setdefault("finished_at", now)
        return self._cas(op_id, states, changes, expect_gate)

    def update_operation(self, op_id: str, expected_state: str | Iterable[str], *,
                         expect_gate: str | None = None, **fields: Any) -> Operation | None:
        """Change fields (step, execution_id, slack_ts…) only while the state is `expected_state`."""
        if "state" in fields:
            raise ValueError("use transition() to change the state")
        return self._cas(op_id, _states(expected_state), {**fields, "updated_at": self._now()}, expect_gate)

    def _cas(self, op_id: str, states: tuple[str, ...], changes: dict[str, Any], gate: str | None = None
             ) -> Operation | None:
        """One UPDATE … WHERE id = ? AND state IN (…) [AND gate = ?]: atomic without a transaction."""
        values = _encode(changes, OPERATION_COLUMNS, forbid=("id", "created_at"))
        sql = (f"UPDATE operations SET {', '.join(f'{k} = ?' for k in values)} "
               f"WHERE id = ? AND state IN ({', '.join('?' * len(states))})"
               + (" AND gate = ?" if gate is not None else "") + " RETURNING *")
        params = [*values.values(), op_id, *states, *([gate] if gate is not None else [])]
        try:
            rows = self._write(sql, params, OPERATION_COLUMNS)
        except BotError as exc:
            if "operations.manager" not in str(exc.__cause__ or ""):
                raise
            current = self.get_operation(op_id)
            self._raise_busy(current.manager if current else "")
            raise
        return Operation.from_row(rows[0]) if rows else None

    def list_operations(self, states: str | Iterable[str] | None = None, manager: str | None = None,
                        kinds: str | Iterable[str] | None = None, limit: int | None = None) -> list[Operation]:
        """Operations, newest first, filtered by state, manager and kind."""
        where: list[str] = ["1"]
        params: list[Any] = []
        for column, wanted in (("state", states), ("kind", kinds)):
            if wanted is not None:
                wanted = _states(wanted) if column == "state" else _strings(wanted)
                where.append(f"{column} IN ({', '.join('?' * len(wanted))})")
                params += wanted
        if manager is not None:
            where.append("manager = ?")
            params.append(manager)
        sql = f"SELECT * FROM operations WHERE {' AND '.join(where)} ORDER BY created_at DESC, rowid DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [Operation.from_row(row) for row in self._rows(sql, params, OPERATION_COLUMNS)]

    def unfinished_operations(self) -> list[Operation]:
        """Operations that are pending, approved or running (what start-up must reconcile)."""
        return self.list_operations(states=UNFINISHED_STATES)

    def manager_lock_holder(self, manager: str) -> Operation | None:
        """The unfinished exclusive operation on `manager`, if any."""
        rows = self._rows(f"SELECT * FROM operations WHERE manager = ? AND exclusive = 1 AND state IN "
                          f"{_UNFINISHED_SQL} LIMIT 1", [manager], OPERATION_COLUMNS)
        return Operation.from_row(rows[0]) if rows else None

    def claim_manager_lock(self, op_id: str) -> Operation:
        """Make an unfinished operation exclusive on its manager; OperationError names the holder if busy."""
        row = self._cas(op_id, UNFINISHED_STATES, {"exclusive": True, "updated_at": self._now()})
        if row is None:
            current = self.get_operation(op_id)
            if current is None:
                raise NotFound(f"no operation {op_id}")
            raise OperationError(f"{op_id} is already {current.state}")
        return row

    def _raise_busy(self, manager: str) -> None:
        """Raise OperationError naming the holder of `manager`'s lock; return if it was just released."""
        holder = self.manager_lock_holder(manager)
        if holder is None:
            return
        error = OperationError(f"{manager} is busy: {_holding(holder)}. Only one restore or maintenance change runs "
                               "on a manager at a time.")
        error.operation = holder  # type: ignore[attr-defined]  # for callers that want the details
        raise error

    def expire_gates(self, now: datetime | str | None = None) -> list[Operation]:
        """Move pending operations whose gate expired to `expired` (one CAS statement); returns them."""
        when = iso(now) if now is not None else self._now()
        return [Operation.from_row(row) for row in self._write(
            # it ended when its time was up, not when someone noticed
            "UPDATE operations SET state = 'expired', updated_at = ?, finished_at = expires_at "
            "WHERE state = 'pending' AND expires_at != '' AND expires_at <= ? RETURNING *",
            [when, when], OPERATION_COLUMNS)]


def _holding(op: Operation) -> str:
    """What holds a manager's lock, with what it waits for and how to end it."""
    who = op.requester_name or str(op.requester or "someone").split(":", 1)[-1]
    what = f"{op.kind} {op.id}, requested by {who},"
    if op.state == "pending":
        waiting = "a second admin's approval" if op.gate == "approve" else f"{who}'s confirmation"
        expires = f" (expires at {str(op.expires_at)[11:16]} UTC)" if op.expires_at else ""
        return f"{what} is waiting for {waiting}{expires}; `cancel {op.id}` ends it, `operations` shows it"
    if op.state == "approved":
        return f"{what} is approved and starting; `operations` shows it"
    step = f" (step: {op.step})" if op.step else ""
    return f"{what} is running{step}; `operations` shows it"


def _strings(values: str | Iterable[str]) -> tuple[str, ...]:
    return (values,) if isinstance(values, str) else tuple(values)


def _states(states: str | Iterable[str]) -> tuple[str, ...]:
    result = _strings(states)
    for state in result:
        _check_state(state)
    return result


def _check_state(state: str) -> None:
    if state not in STATES:
        raise ValueError(f"unknown operation state {state!r}")
