"""Time as a dependency: the real clock, and a fake one that makes polling and schedules instant."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime


class Clock:
    """Wall time, monotonic time and sleeping; the only place the bot reads the clock."""

    def time(self) -> float:
        """Seconds since the epoch."""
        return time.time()

    def now(self) -> datetime:
        """The current time as an aware UTC datetime."""
        return datetime.fromtimestamp(self.time(), tz=UTC)

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back."""
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        """Wait `seconds`."""
        if seconds > 0:
            time.sleep(seconds)

    def wait(self, cond: threading.Condition, seconds: float) -> bool:
        """Wait on `cond` (held by the caller) until notified or `seconds` pass; True if notified."""
        return cond.wait(seconds)


class FakeClock(Clock):
    """A clock that only moves when told to; `sleep` advances it instantly (thread-safe)."""

    def __init__(self, start: float | datetime = 1_795_000_000.0) -> None:
        if isinstance(start, datetime):
            start = start.timestamp()
        self._t = float(start)
        self._lock = threading.Lock()

    def time(self) -> float:
        with self._lock:
            return self._t

    def monotonic(self) -> float:
        return self.time()

    def sleep(self, seconds: float) -> None:
        self.advance(max(seconds, 0.0))

    def wait(self, cond: threading.Condition, seconds: float) -> bool:
        """The time passes at once, as in `sleep`; the caller, as after any wait, looks again at what changed."""
        self.advance(max(seconds, 0.0))
        return False

    def advance(self, seconds: float) -> None:
        """Move the clock forward by `seconds`."""
        with self._lock:
            self._t += seconds

    def set(self, when: float | datetime) -> None:
        """Jump to `when` (may go backwards, to test clock jumps)."""
        with self._lock:
            self._t = when.timestamp() if isinstance(when, datetime) else float(when)
