"""When the daily backup fires: BOT_BACKUP_SCHEDULE read in BOT_TIMEZONE, one firing per local day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from typing import Any

from bot.schedule.cron import Cron, CronError, zone
from bot.errors import ConfigError


@dataclass(frozen=True)
class Fire:
    """One firing: when it happens (UTC) and the local wall time it was scheduled for."""

    at: datetime
    wall: datetime

    @property
    def day(self) -> date:
        """The local day the firing belongs to (the day in `daily-YYYYMMDD`)."""
        return self.wall.date()


@dataclass(frozen=True)
class Schedule:
    """BOT_BACKUP_SCHEDULE read in BOT_TIMEZONE."""

    cron: Cron
    tz: tzinfo
    tz_name: str

    @classmethod
    def from_settings(cls, settings: Any) -> Schedule:
        """The schedule the settings describe; ConfigError when it cannot be read."""
        try:
            return cls(Cron.parse(settings.backup_schedule), zone(settings.timezone), settings.timezone)
        except CronError as exc:
            raise ConfigError([f"BOT_BACKUP_SCHEDULE / BOT_TIMEZONE: {exc}"]) from None

    def today(self, now: datetime) -> date:
        """The local date at `now`."""
        return now.astimezone(self.tz).date()

    def local(self, when: datetime) -> datetime:
        """`when` in the schedule's time zone."""
        return when.astimezone(self.tz)

    def due(self, now: datetime) -> Fire | None:
        """The latest firing at or before `now`."""
        found = self.cron.previous(now, self.tz)
        return Fire(*found) if found else None

    def next_runs(self, now: datetime, n: int = 1) -> list[Fire]:
        """The next `n` firings after `now`, one per local day (the job runs once a day)."""
        out: list[Fire] = []
        cursor = now
        while len(out) < n:
            fire = Fire(*self.cron.next_with_wall(cursor, self.tz))
            if not out or fire.day != out[-1].day:
                out.append(fire)
            cursor = fire.at
        return out

    def between(self, start: datetime, end: datetime) -> list[Fire]:
        """Firings in (start, end], one per local day (the first of each day)."""
        out: list[Fire] = []
        for at, wall in self.cron.between(start, end, self.tz):
            if not out or wall.date() != out[-1].day:
                out.append(Fire(at, wall))
        return out


__all__ = ["Fire", "Schedule"]
