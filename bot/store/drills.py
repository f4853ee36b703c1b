"""Restore drill results (table `drills`), as frozen `DrillResult`s."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.core import DrillResult, DrillVerdict
from bot.store.base import _StoreBase
from bot.store.codec import _encode
from bot.store.schema import DRILL_COLUMNS


def _result(row: dict[str, Any]) -> DrillResult:
    details = row.get("details") or {}
    ms = int(row.get("recovery_ms") or 0)
    return DrillResult(
        id=row["id"], source=row["source"], target=row["target"], snapshot_id=row["snapshot_id"],
        verdict=DrillVerdict(row["verdict"]), started_at=datetime.fromisoformat(row["started_at"]),
        finished_at=datetime.fromisoformat(row["finished_at"]), reason=row.get("reason") or "",
        mismatches=tuple(str(m) for m in details.get("mismatches", [])),
        recovery_seconds=ms / 1000.0 if ms > 0 else None,
        phases=tuple((str(k), float(v)) for k, v in details.get("phases", [])),
        requester=row.get("requester") or "", slot=row.get("slot") or "")


class _DrillCalls(_StoreBase):
    """Record and list restore drills."""

    def record_drill(self, drill: DrillResult) -> DrillResult:
        """Store one finished drill."""
        values = _encode({
            "id": drill.id, "source": drill.source, "target": drill.target, "snapshot_id": drill.snapshot_id,
            "verdict": drill.verdict.value, "started_at": drill.started_at, "finished_at": drill.finished_at,
            "reason": drill.reason, "details": {"mismatches": list(drill.mismatches),
                                                "phases": [list(p) for p in drill.phases]},
            "recovery_ms": round(drill.recovery_seconds * 1000) if drill.recovery_seconds else 0,
            "requester": drill.requester, "slot": drill.slot}, DRILL_COLUMNS)
        rows = self._write(f"INSERT INTO drills ({', '.join(values)}) VALUES ({', '.join('?' for _ in values)}) "
                           "RETURNING *", list(values.values()), DRILL_COLUMNS)
        return _result(rows[0])

    def list_drills(self, source: str | None = None, limit: int = 20) -> list[DrillResult]:
        """Drills, newest first (of one source manager when given)."""
        where, params = ("WHERE source = ?", [source]) if source else ("", [])
        rows = self._rows(f"SELECT * FROM drills {where} ORDER BY finished_at DESC, id DESC LIMIT ?",
                          [*params, limit], DRILL_COLUMNS)
        return [_result(r) for r in rows]

    def last_drill(self, source: str, passed: bool = False) -> DrillResult | None:
        """The newest drill of `source` (the newest passing one with `passed`)."""
        extra = " AND verdict = 'passed'" if passed else ""
        rows = self._rows(f"SELECT * FROM drills WHERE source = ?{extra} ORDER BY finished_at DESC, id DESC "
                          "LIMIT 1", [source], DRILL_COLUMNS)
        return _result(rows[0]) if rows else None
