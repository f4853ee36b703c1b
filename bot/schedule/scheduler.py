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
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.engine.context import NullSink, Sink
from bot.engine.services import Services
from bot.core import Actor, Invocation, Reply, Tone, parse_time
from bot.schedule.runs import FAILED, JOB, PROCESS, is_dead, owner_id, run_key
from bot.schedule.notify import Notifier
from bot.schedule.timetable import Fire, Schedule

log = logging.getLogger("cfy_bot.schedule")

ACTOR = Actor("system:scheduler", "scheduler", "system")
TRANSPORT = "schedule"
LOOKBACK = timedelta(days=62)  # how far back missed days are recorded and failures alerted
SUMMARY_DEADLINE = timedelta(hours=10)  # the summary does not wait longer than this for a run to end
LATE = timedelta(minutes=5)  # a run started this long after its firing is a catch-up


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
            from bot.engine.dispatch import Dispatcher

            self.dispatcher = Dispatcher(self.services)
        from bot.schedule.drills import DrillScheduler

        self.drills = DrillScheduler(self.services, self.dispatcher, self.notifier, self.sink)

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
        self.drills.tick(self.now())  # restore drills (BOT_DRILL_SCHEDULE), after the backups
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
    return Reply(text="\n".join(lines), title=title, tone=Tone.DANGER, public=True, ok=False)


def start_scheduler(services: Services, notifier: Notifier, stop_event: threading.Event, *,
                    dispatcher: Any = None, sink: Sink | None = None, poll: float = 60.0) -> threading.Thread:
    """Start the scheduler thread (a daemon); it ticks at once (catching up) and stops when `stop_event` is set.
    Raises ConfigError at once when BOT_BACKUP_SCHEDULE or BOT_TIMEZONE cannot be read."""
    scheduler = Scheduler(services, notifier, dispatcher, sink or NullSink(), poll)
    thread = threading.Thread(target=scheduler.loop, args=(stop_event,), name="cfy-scheduler", daemon=True)
    thread.scheduler = scheduler  # type: ignore[attr-defined]  # for health checks and tests
    thread.start()
    return thread


__all__ = ["ACTOR", "Scheduler", "alert_reply", "start_scheduler"]
