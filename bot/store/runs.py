"""Scheduled runs (one claim per manager and day, across processes) and marks (small named values)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.store.base import _StoreBase
from bot.store.codec import _encode, iso
from bot.store.schema import MARK_COLUMNS, RUN_COLUMNS, RUN_STATES


class _RunCalls(_StoreBase):
    """The schedule-run and mark methods of `Store` (tables `schedule_runs` and `marks`)."""

    def claim_run(self, manager: str, day: str, owner: str, stale_after: float | None = None) -> bool:
        """True for the one caller that may run (manager, day); `stale_after` s lets a dead claim be taken."""
        now = self._now()
        if self._write("INSERT INTO schedule_runs (manager, day, state, owner, claimed_at) "
                       "VALUES (?, ?, 'claimed', ?, ?) ON CONFLICT(manager, day) DO NOTHING RETURNING *",
                       [manager, day, owner, now], RUN_COLUMNS):
            return True
        if stale_after is None:
            return False
        cutoff = iso(self.clock.time() - stale_after)
        return bool(self._write("UPDATE schedule_runs SET owner = ?, claimed_at = ? WHERE manager = ? "
                                "AND day = ? AND state = 'claimed' AND claimed_at < ? RETURNING *",
                                [owner, now, manager, day, cutoff], RUN_COLUMNS))

    def finish_run(self, manager: str, day: str, state: str, **fields: Any) -> dict[str, Any] | None:
        """Close a claimed run (succeeded | failed | skipped); None if it was not claimed (or not by `owner`)."""
        if state not in RUN_STATES[1:]:
            raise ValueError(f"a run finishes as succeeded, failed or skipped, not {state!r}")
        owner = fields.pop("owner", None)
        values = _encode({**fields, "state": state, "finished_at": self._now()}, RUN_COLUMNS,
                         forbid=("manager", "day", "claimed_at"))
        sql = (f"UPDATE schedule_runs SET {', '.join(f'{k} = ?' for k in values)} "
               "WHERE manager = ? AND day = ? AND state = 'claimed'"
               + (" AND owner = ?" if owner else "") + " RETURNING *")
        rows = self._write(sql, [*values.values(), manager, day, *([owner] if owner else [])], RUN_COLUMNS)
        return rows[0] if rows else None

    def get_run(self, manager: str, day: str) -> dict[str, Any] | None:
        """The run of (manager, day), or None."""
        rows = self._rows("SELECT * FROM schedule_runs WHERE manager = ? AND day = ?", [manager, day],
                          RUN_COLUMNS)
        return rows[0] if rows else None

    def list_runs(self, manager: str | None = None, since_day: str | None = None) -> list[dict[str, Any]]:
        """Runs, newest day first."""
        where, params = ["1"], []
        if manager is not None:
            where.append("manager = ?")
            params.append(manager)
        if since_day is not None:
            where.append("day >= ?")
            params.append(since_day)
        return self._rows(f"SELECT * FROM schedule_runs WHERE {' AND '.join(where)} "
                          "ORDER BY day DESC, manager", params, RUN_COLUMNS)

    def get_mark(self, key: str) -> str | None:
        """The value of a mark, or None."""
        rows = self._rows("SELECT * FROM marks WHERE key = ?", [key], MARK_COLUMNS)
        return rows[0]["value"] if rows else None

    def set_mark(self, key: str, value: str = "") -> None:
        """Set a mark, replacing any value."""
        self._write("INSERT INTO marks (key, value, set_at) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE "
                    "SET value = excluded.value, set_at = excluded.set_at RETURNING *",
                    [key, value, self._now()], MARK_COLUMNS)

    def forget_marks(self, prefix: str, set_before: datetime) -> int:
        """Delete the marks whose key starts with `prefix` and that were set before `set_before`; how many."""
        pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        return len(self._write("DELETE FROM marks WHERE key LIKE ? ESCAPE '\\' AND set_at < ? RETURNING *",
                               [pattern, iso(set_before)], MARK_COLUMNS))

    def claim_mark(self, key: str, value: str = "") -> bool:
        """Set a mark only if it is not set; True for the one caller that set it."""
        return bool(self._write("INSERT INTO marks (key, value, set_at) VALUES (?, ?, ?) "
                                "ON CONFLICT(key) DO NOTHING RETURNING *",
                                [key, value, self._now()], MARK_COLUMNS))
