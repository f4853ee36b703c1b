"""The daily-backup scheduler: a front end that turns the clock into `backups run` invocations.

Every tick (at each firing of BOT_BACKUP_SCHEDULE in BOT_TIMEZONE, and at least every `poll` seconds):
1. the latest firing at or before now is *due*; each manager without a run for its local day gets
   `backups run -m NAME --day YYYY-MM-DD` from `system:scheduler` (one thread per manager), which claims
   the (manager, day) row in the database before anything else, so a restart, a second bot process or a
   clock jump never runs a day twice; a due day that passed while the bot was down is caught up this way;
2. days before the due one that have no run at all (the bot was down through them) are recorded as
   skipped, "missed";
3. every run that ended failed or skipped since the last tick is alerted once (across processes);
4. once every manager's run of the due day has ended, the day's summary is posted once.

The first tick on a database marks when scheduling began, per manager: firings before it were not
missed (the bot did not exist yet) and are not caught up.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from bot.context import NullSink, Services, Sink
from bot.core import Actor, Invocation, Reply
from bot.cron import Cron, CronError, zone
from bot.errors import ConfigError
from bot.notify import Notifier
from bot.render import parse_time

log = logging.getLogger("cfy_bot.schedule")

ACTOR = Actor("system:scheduler", "scheduler", "system")
TRANSPORT = "schedule"
JOB = "backups run"
CLAIM_GRACE = 120.0  # s: a claim with no operation for this long belongs to a process that died
LOOKBACK = timedelta(days=62)  # how far back missed days are recorded and failures alerted
SUMMARY_DEADLINE = timedelta(hours=10)  # the summary does not wait longer than this for a run to end
LATE = timedelta(minutes=5)  # a run started this long after its firing is a catch-up
PROCESS = f"{socket.gethostname()}:{os.getpid()}"
FAILED = ("failed", "skipped")


# --- the schedule ----------------------------------------------------------------------------------


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


# --- runs and their claims -------------------------------------------------------------------------


def run_key(day: date, attempt: int = 1) -> str:
    """The schedule_runs key: `2026-11-29` for the day's run, `2026-11-29~2` for a later retry."""
    return day.isoformat() if attempt <= 1 else f"{day.isoformat()}~{attempt}"


def parse_key(key: str) -> tuple[date, int]:
    """(day, attempt) of a run key."""
    day, _, attempt = key.partition("~")
    return date.fromisoformat(day), int(attempt or 1)


def owner_id(tag: str) -> str:
    """Who holds a claim: host, process and the invocation."""
    return f"{PROCESS}/{tag}"


def run_operation(store: Any, manager: str, key: str) -> dict[str, Any] | None:
    """The unfinished `backups run` operation working on run `key` of `manager`, if any."""
    for op in store.list_operations(states=("pending", "approved", "running"), manager=manager, kinds=JOB):
        if (op.get("args") or {}).get("run") == key:
            return op
    return None


def is_dead(store: Any, row: dict[str, Any], now: datetime) -> bool:
    """A claimed run whose claimer is gone: no operation works on it, and it was claimed a while ago."""
    if row.get("state") != "claimed":
        return False
    claimed = parse_time(row.get("claimed_at"))
    if claimed is not None and (now - claimed).total_seconds() < CLAIM_GRACE:
        return False  # the claimer may be about to create its operation
    return run_operation(store, row["manager"], row["day"]) is None


@dataclass(frozen=True)
class Claim:
    """The outcome of claiming a day: the key now held, or the run that stands in the way."""

    key: str | None
    holder: dict[str, Any] | None = None
    took_over: dict[str, Any] | None = None


def claim_day(store: Any, manager: str, day: date, owner: str, now: datetime, *, retry: bool = False) -> Claim:
    """Claim (manager, day); with `retry`, a day whose run failed or was skipped gets a new attempt."""
    key = run_key(day)
    if store.claim_run(manager, key, owner):
        return Claim(key)
    row = store.get_run(manager, key)
    if row is None:
        return Claim(None, {"manager": manager, "day": key, "state": "claimed", "owner": "?"})
    if retry and row["state"] in FAILED:
        attempts = [r for r in store.list_runs(manager, since_day=key)
                    if r["day"] == key or r["day"].startswith(key + "~")]
        row = max(attempts, key=lambda r: parse_key(r["day"])[1])
        if row["state"] in FAILED:
            nxt = run_key(day, parse_key(row["day"])[1] + 1)
            if store.claim_run(manager, nxt, owner):
                return Claim(nxt)
            return Claim(None, store.get_run(manager, nxt))
    return _take_over(store, manager, row, owner, now)


def _take_over(store: Any, manager: str, row: dict[str, Any], owner: str, now: datetime) -> Claim:
    """Claim a run whose claimer died; only one process wins (a mark), then the row changes hands."""
    if not is_dead(store, row, now):
        return Claim(None, row)
    mark = f"schedule:takeover:{manager}:{row['day']}:{row['owner']}:{row['claimed_at']}"
    if store.claim_mark(mark, owner) and store.claim_run(manager, row["day"], owner, stale_after=CLAIM_GRACE):
        return Claim(row["day"], took_over=row)
    return Claim(None, store.get_run(manager, row["day"]) or row)


# --- the scheduler -----------------------------------------------------------------------------------


@dataclass
class Scheduler:
    """Ticks the schedule for every manager of `services`; see the module docstring."""

    services: Services
    notifier: Notifier
    dispatcher: Any = None
    sink: Sink = field(default_factory=NullSink)
    poll: float = 60.0

    def __post_init__(self) -> None:
        self.schedule = Schedule.from_settings(self.services.settings)
        if self.dispatcher is None:
            from bot.dispatch import Dispatcher

            self.dispatcher = Dispatcher(self.services)

    @property
    def store(self) -> Any:
        return self.services.store

    def now(self) -> datetime:
        """The injected clock's time."""
        return self.services.clock.now()

    # one tick ---------------------------------------------------------------------------------------
    def tick(self) -> list[str]:
        """Do whatever is due now; returns the managers whose daily job was started (and has ended)."""
        now = self.now()
        self.store.set_mark("schedule:heartbeat", f"{now.isoformat()} {PROCESS}")
        due = self.schedule.due(now)
        wanted: list[str] = []
        for manager in self.services.managers:
            since = self.since(manager, now)
            if due is None or due.at < since:
                continue
            self._record_missed(manager, since, due, now)
            if self._needs_run(manager, due, now):
                wanted.append(manager)
        started = self._run_jobs(wanted, due, now)
        self._alert_failures(self.now())
        if due is not None:
            self._post_summary(due, self.now())
        return started

    def since(self, manager: str, now: datetime) -> datetime:
        """When scheduling began for `manager` on this database (set by the first tick that sees it)."""
        key = f"schedule:since:{manager}"
        mark = self.store.get_mark(key)
        if mark is None:
            self.store.claim_mark(key, now.isoformat())  # the first process to see the manager sets it
            mark = self.store.get_mark(key)
        return parse_time(mark) or now

    def _needs_run(self, manager: str, due: Fire, now: datetime) -> bool:
        row = self.store.get_run(manager, run_key(due.day))
        return row is None or is_dead(self.store, row, now)

    def _record_missed(self, manager: str, since: datetime, due: Fire, now: datetime) -> None:
        """Days between `since` and the due day that have no run at all: the bot was down through them."""
        start = max(since, now - LOOKBACK) - timedelta(microseconds=1)
        for fire in self.schedule.between(start, due.at):
            key = run_key(fire.day)
            if fire.day >= due.day or self.store.get_run(manager, key) is not None:
                continue
            if not self.store.claim_run(manager, key, owner_id("missed")):
                continue  # another process recorded it first
            local = self.schedule.local(fire.at)
            error = (f"missed: the bot was not running at {local:%Y-%m-%d %H:%M %Z}, when the daily backup "
                     f"of {manager} for {fire.day} was due")
            self.store.finish_run(manager, key, "skipped", error=error)
            self.services.audit("schedule_missed", actor=ACTOR.id, transport=TRANSPORT, manager=manager,
                                command=JOB, detail={"day": key, "due_at": fire.at.isoformat()})

    def _run_jobs(self, managers: list[str], due: Fire | None, now: datetime) -> list[str]:
        """Run the jobs (one thread per manager when there are several); the managers whose job started."""
        if not managers or due is None:
            return []
        started: list[str] = []
        if len(managers) == 1:
            self._job(managers[0], due, now, started)
            return started
        threads = [threading.Thread(target=self._job, args=(m, due, now, started), name=f"cfy-backup-{m}",
                                    daemon=True) for m in managers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return [m for m in managers if m in started]

    def _job(self, manager: str, due: Fire, now: datetime, started: list[str]) -> None:
        """Run one manager's job through the dispatcher, as `system:scheduler`; another process may win the day's
        claim first, and then no operation starts here."""
        if now - due.at > LATE:
            self.services.audit("schedule_catch_up", actor=ACTOR.id, transport=TRANSPORT, manager=manager,
                                command=JOB, detail={"day": due.day.isoformat(), "due_at": due.at.isoformat(),
                                                     "late_s": int((now - due.at).total_seconds())})
        text = f"backups run -m {manager} --day {due.day.isoformat()}"
        inv = Invocation(text=text, actor=ACTOR, channel=self.services.settings.summary_channel,
                         transport=TRANSPORT, received_at=now)
        outcome = self.dispatcher.handle(inv, self.sink)
        if outcome.operation is not None:
            started.append(manager)
        log.info("daily backup of %s for %s: %s", manager, due.day, (outcome.reply.text.splitlines() or [""])[0])

    # alerts and the summary ---------------------------------------------------------------------------
    def _alert_failures(self, now: datetime) -> None:
        """Alert, once per run across processes, every run that ended failed or skipped lately."""
        since_day = (self.schedule.today(now - LOOKBACK)).isoformat()
        for manager in self.services.managers:
            fresh = []
            for row in sorted(self.store.list_runs(manager, since_day=since_day), key=lambda r: r["day"]):
                mark = f"schedule:alerted:{manager}:{row['day']}"
                if row["state"] in FAILED and self.store.get_mark(mark) is None and self.store.claim_mark(mark):
                    fresh.append(row)
            if fresh:
                self._alert(manager, fresh)

    def _alert(self, manager: str, rows: list[dict[str, Any]]) -> None:
        reply = alert_reply(manager, rows)
        self.notifier_call("alert", self.services.settings.alert_channel, reply)
        self.services.audit("alert_sent", actor=ACTOR.id, transport=TRANSPORT, manager=manager, command=JOB,
                            channel=self.services.settings.alert_channel,
                            detail={"runs": [r["day"] for r in rows], "text": reply.text[:1000]})

    def _post_summary(self, due: Fire, now: datetime) -> None:
        """Post the summary of the due day once, when every manager's run of that day has ended."""
        key = run_key(due.day)
        rows = [self.store.get_run(m, key) for m in self.services.managers]
        if not any(rows):
            return  # nothing ran that day (scheduling began after it)
        ended = all(r is None or r["state"] != "claimed" for r in rows)
        if not ended and now - due.at < SUMMARY_DEADLINE:
            return
        if not self.store.claim_mark(f"schedule:summary:{key}", PROCESS):
            return
        inv = Invocation(text="backups summary", actor=ACTOR, channel=self.services.settings.summary_channel,
                         transport=TRANSPORT, received_at=now)
        reply = self.dispatcher.handle(inv).reply
        self.notifier_call("post", self.services.settings.summary_channel, reply)
        self.services.audit("summary_posted", actor=ACTOR.id, transport=TRANSPORT, command="backups summary",
                            channel=self.services.settings.summary_channel, detail={"day": key})

    def notifier_call(self, kind: str, channel: str, reply: Reply) -> None:
        """Hand a message to the notifier; a notifier that fails is logged, never fatal to the schedule."""
        try:
            getattr(self.notifier, kind)(channel, reply)
        except Exception:  # noqa: BLE001 - the backups must go on when a message cannot be delivered
            log.exception("could not deliver the scheduler's %s to %r", kind, channel)

    # the thread ----------------------------------------------------------------------------------------
    def loop(self, stop: threading.Event) -> None:
        """Tick until `stop` is set: at each firing, and at least every `poll` seconds."""
        while not stop.is_set():
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - the scheduler thread must outlive a bad tick; it retries
                log.exception("the backup scheduler's tick failed; trying again in %.0f s", self.poll)
            now = self.now()
            until = (self.schedule.next_runs(now)[0].at - now).total_seconds()
            stop.wait(max(0.0, min(until, self.poll)))


def alert_reply(manager: str, rows: Iterable[dict[str, Any]]) -> Reply:
    """The alert for runs of `manager` that failed, were skipped or were missed."""
    rows = list(rows)
    lines = []
    for r in rows:
        what = "was skipped" if r["state"] == "skipped" else "FAILED"
        snapshot = f" ({r['snapshot_id']})" if r.get("snapshot_id") else ""
        lines.append(f"{manager}: the daily backup of {r['day']}{snapshot} {what}: {r.get('error') or 'no reason'}")
    lines.append(f"Run `backups run -m {manager}` to try again; `backups summary` shows where the backups stand.")
    title = (f"Daily backup of {manager} failed" if any(r["state"] == "failed" for r in rows)
             else f"Daily backup of {manager} did not run")
    return Reply(text="\n".join(lines), title=title, tone="danger", public=True, ok=False)


def start_scheduler(services: Services, notifier: Notifier, stop_event: threading.Event, *,
                    dispatcher: Any = None, sink: Sink | None = None, poll: float = 60.0) -> threading.Thread:
    """Start the scheduler thread (a daemon); it ticks at once (catching up) and stops when `stop_event` is set.
    Raises ConfigError at once when BOT_BACKUP_SCHEDULE or BOT_TIMEZONE cannot be read."""
    scheduler = Scheduler(services, notifier, dispatcher, sink or NullSink(), poll)
    thread = threading.Thread(target=scheduler.loop, args=(stop_event,), name="cfy-scheduler", daemon=True)
    thread.scheduler = scheduler  # type: ignore[attr-defined]  # for health checks and tests
    thread.start()
    return thread


__all__ = ["ACTOR", "Claim", "Fire", "Schedule", "Scheduler", "alert_reply", "claim_day", "is_dead", "parse_key",
           "run_key", "start_scheduler"]
