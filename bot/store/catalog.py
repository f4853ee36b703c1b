"""The archive catalog: which snapshot copies are stored off the manager, where, and whether they verified."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from bot.core import ArchiveCopy
from bot.errors import NotFound
from bot.store.base import _StoreBase
from bot.store.codec import _encode
from bot.store.schema import COPY_COLUMNS


class _CatalogCalls(_StoreBase):
    """The archive-catalog methods of `Store` (table `archive_copies`, one row per manager and snapshot)."""

    def record_copy(self, **fields: Any) -> ArchiveCopy:
        """Insert or update the archive copy of (manager, snapshot_id); fields not given are kept."""
        if not fields.get("manager") or not fields.get("snapshot_id"):
            raise ValueError("an archive copy needs a manager and a snapshot_id")
        values = _encode({"stored_at": self._now(), **fields}, COPY_COLUMNS)
        updates = ", ".join(f"{k} = excluded.{k}" for k in values if k not in ("manager", "snapshot_id"))
        sql = (f"INSERT INTO archive_copies ({', '.join(values)}) VALUES ({', '.join('?' * len(values))}) "
               f"ON CONFLICT(manager, snapshot_id) DO UPDATE SET {updates} RETURNING *")
        return _copy(self._write(sql, values.values(), COPY_COLUMNS)[0])

    def get_copy(self, manager: str, snapshot_id: str) -> ArchiveCopy | None:
        """The archive copy, or None."""
        rows = self._rows("SELECT * FROM archive_copies WHERE manager = ? AND snapshot_id = ?",
                          [manager, snapshot_id], COPY_COLUMNS)
        return _copy(rows[0]) if rows else None

    def list_copies(self, manager: str | None = None, verified: bool | None = None) -> list[ArchiveCopy]:
        """Archive copies, newest snapshot first."""
        where: list[str] = ["1"]
        params: list[Any] = []
        if manager is not None:
            where.append("manager = ?")
            params.append(manager)
        if verified is not None:
            where.append("verified = ?")
            params.append(int(verified))
        return [_copy(row) for row in self._rows(f"SELECT * FROM archive_copies WHERE {' AND '.join(where)} "
                                                 "ORDER BY created_at DESC, stored_at DESC", params, COPY_COLUMNS)]

    def latest_verified(self, manager: str) -> ArchiveCopy | None:
        """The newest verified copy of `manager`'s snapshots (what `restore latest` means)."""
        rows = self.list_copies(manager, verified=True)
        return rows[0] if rows else None

    def mark_verified(self, manager: str, snapshot_id: str, ok: bool, error: str = "") -> ArchiveCopy:
        """Record the result of checking a copy; NotFound if there is no such copy."""
        rows = self._write("UPDATE archive_copies SET verified = ?, verified_at = ?, error = ? "
                           "WHERE manager = ? AND snapshot_id = ? RETURNING *",
                           [int(ok), self._now(), error, manager, snapshot_id], COPY_COLUMNS)
        if not rows:
            raise NotFound(f"no archive copy of snapshot {snapshot_id} of {manager}")
        return _copy(rows[0])

    def delete_copy(self, manager: str, snapshot_id: str) -> bool:
        """Forget an archive copy; False if there was none."""
        return bool(self._write("DELETE FROM archive_copies WHERE manager = ? AND snapshot_id = ? "
                                "RETURNING *", [manager, snapshot_id], COPY_COLUMNS))


def _copy(row: dict[str, Any]) -> ArchiveCopy:
    return ArchiveCopy(**{name: row[name] for name in _COPY_FIELDS if name in row})


_COPY_FIELDS = tuple(f.name for f in fields(ArchiveCopy))
