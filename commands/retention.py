"""Which daily backups to keep: pure selection by daily, weekly, monthly and yearly counts (no I/O).

Only the bot's own daily backups are candidates: snapshot ids `daily-YYYYMMDD` (or `daily-YYYYMMDD-N`, a
retry on the same day). Manual snapshots, `pre-upgrade-…` and every other id are never selected for
deletion, whatever their age: people made those on purpose.

A backup is *good* when the manager has it `created` (or `uploaded`) or the archive holds a verified copy.
Walking good backups newest first, each rule keeps the newest backup of each of its newest N periods
(local day, ISO week, month, year: the same rules as borg and restic's `--keep-*`); a backup kept by any
rule stays. The newest verified archive copy always stays, whatever the counts say. A backup that is not
good (failed, or only an archive copy that failed its check) takes no slot; it goes once it is older than
the oldest backup the daily rule keeps. Backups still being created are never touched.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date

DAILY_ID = re.compile(r"^daily-(\d{4})(\d{2})(\d{2})(?:-(\d{1,3}))?$")
RULES = ("daily", "weekly", "monthly", "yearly")
GOOD_STATUSES = ("created", "uploaded")
BUSY_STATUSES = ("creating",)


@dataclass(frozen=True)
class Backup:
    """One daily backup as seen on the manager and in the archive."""

    snapshot_id: str
    status: str = ""  # on the manager: created | failed | creating | uploaded …; "" when the manager lacks it
    archived: bool = False  # the archive holds a copy
    verified: bool = False  # … and that copy passed its checks

    @property
    def good(self) -> bool:
        """Restorable: created on the manager, or a verified archive copy."""
        return self.status in GOOD_STATUSES or self.verified

    @property
    def day(self) -> date:
        """The schedule day in the id."""
        parsed = daily_day(self.snapshot_id)
        assert parsed is not None, self.snapshot_id
        return parsed[0]

    @property
    def order(self) -> tuple[date, int]:
        """Sort key: day, then retry number."""
        parsed = daily_day(self.snapshot_id)
        assert parsed is not None, self.snapshot_id
        return parsed


@dataclass(frozen=True)
class Plan:
    """What stays (with every reason) and what goes (with the reason), by snapshot id."""

    keep: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    delete: Mapping[str, str] = field(default_factory=dict)
    ignored: tuple[str, ...] = ()  # ids that are not daily backups, never touched


def daily_day(snapshot_id: str) -> tuple[date, int] | None:
    """(day, retry number) of a `daily-YYYYMMDD[-N]` id, or None for any other id."""
    m = DAILY_ID.match(snapshot_id)
    if not m:
        return None
    try:
        day = date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None
    return day, int(m.group(4) or 1)


def period(rule: str, day: date) -> str:
    """The period of `rule` that `day` falls in, as shown in reasons."""
    if rule == "daily":
        return day.isoformat()
    if rule == "weekly":
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    if rule == "monthly":
        return f"{day:%Y-%m}"
    if rule == "yearly":
        return f"{day:%Y}"
    raise ValueError(f"unknown retention rule {rule!r}")


def select(backups: Iterable[Backup], counts: Mapping[str, int] | Iterable[tuple[str, int]]) -> Plan:
    """Decide which daily backups stay and which go; see the module docstring for the rules."""
    counts = dict(counts)
    unknown = set(counts) - set(RULES)
    if unknown:
        raise ValueError(f"unknown retention rules: {', '.join(sorted(unknown))}")
    items = {b.snapshot_id: b for b in backups}
    ignored = tuple(sorted(i for i in items if daily_day(i) is None))
    daily = sorted((b for b in items.values() if daily_day(b.snapshot_id) is not None),
                   key=lambda b: b.order, reverse=True)
    keep = _kept_by_rules([b for b in daily if b.good], counts)
    newest_verified = next((b for b in daily if b.verified), None)
    if newest_verified is not None:
        keep.setdefault(newest_verified.snapshot_id, []).append("the newest verified archive copy")
    for b in daily:
        if b.status in BUSY_STATUSES:
            keep.setdefault(b.snapshot_id, []).append("still being created")
    oldest_daily = min((items[i].order for i, why in keep.items() if any(w.startswith("daily ") for w in why)),
                       default=None)
    delete: dict[str, str] = {}
    for b in daily:
        if b.snapshot_id in keep:
            continue
        if b.good:
            delete[b.snapshot_id] = f"not among the newest {_counts_text(counts)}"
        elif oldest_daily is None or b.order < oldest_daily:
            what = f"failed on the manager ({b.status})" if b.status else "its archive copy failed its check"
            delete[b.snapshot_id] = f"{what}, and older than every daily backup kept"
        else:
            keep.setdefault(b.snapshot_id, []).append("not good, but within the daily window (kept to look at)")
    return Plan(keep={k: tuple(v) for k, v in keep.items()}, delete=delete, ignored=ignored)


def _kept_by_rules(good: list[Backup], counts: Mapping[str, int]) -> dict[str, list[str]]:
    """Why each good backup (newest first) is kept by the counting rules: the newest of each period, per rule."""
    keep: dict[str, list[str]] = {}
    for rule in RULES:
        wanted = counts.get(rule, 0)
        seen: list[str] = []
        for b in good:
            if len(seen) >= wanted:
                break
            p = period(rule, b.day)
            if p not in seen:
                seen.append(p)
                keep.setdefault(b.snapshot_id, []).append(f"{rule} {len(seen)}/{wanted} ({p})")
    return keep


def _counts_text(counts: Mapping[str, int]) -> str:
    parts = [f"{counts[r]} {r}" for r in RULES if counts.get(r)]
    return ", ".join(parts[:-1]) + f" and {parts[-1]}" if len(parts) > 1 else (parts[0] if parts else "0")
