"""Scheduled restore drills: BOT_DRILL_SCHEDULE (cron in BOT_TIMEZONE) turned into `backups drill` invocations.

At each tick the latest firing at or before now is the due *slot*. Every (source, drill target) pair without a
drill for that slot gets `backups drill latest -m SOURCE --target TARGET --slot SLOT` from `system:scheduler`,
after claiming the row (`drill:SOURCE>TARGET`, SLOT) in `schedule_runs`: one SQLite insert decides, so a
restart, a second bot process or a clock jump never drills a slot twice. A slot that passed while the bot was
down is caught up at the next tick. A pair whose target is busy (a drill or restore holds its lock) or whose
source's daily backup is running is not claimed: the next tick tries again. A failed drill is alerted to
BOT_ALERT_CHANNEL. Sources are every configured manager that is not itself a drill target.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.core import Actor, Invocation, Reply, Tone, parse_time
from bot.engine.context import NullSink, Sink
from bot.engine.services import Services
from bot.errors import ConfigError
from bot.recovery.drills import drill_alarm
from bot.schedule.cron import Cron, CronError, zone
from bot.schedule.runs import owner_id
from bot.schedule.timetable import Schedule

log = logging.getLogger("cfy_bot.schedule.drills")

ACTOR = Actor("system:scheduler", "scheduler", "system")
TRANSPORT = "schedule"
UNFINISHED = ("pending", "approved", "running")


def drill_schedule(settings: Any) -> Schedule:
    """BOT_DRILL_SCHEDULE in BOT_TIMEZONE; ConfigError when it cannot be read."""
    try:
        return Schedule(Cron.parse(settings.drill_schedule), zone(settings.timezone), settings.timezone)
    except CronError as exc:
        raise ConfigError([f"BOT_DRILL_SCHEDULE / BOT_TIMEZONE: {exc}"]) from None


def claim_key(source: str, target: str) -> str:
    """The `schedule_runs.manager` value of a drill pair (never a manager's name: it holds `>`)."""
    return f"drill:{source}>{target}"


@dataclass
class DrillScheduler:
    """Runs due drills for every (source, target) pair; see the module docstring."""

    services: Services
    dispatcher: Any
    notifier: Any = None  # bot.schedule.notify.Notifier
    sink: Sink = field(default_factory=NullSink)

    def __post_init__(self) -> None:
        self.schedule = drill_schedule(self.services.settings)

    def pairs(self) -> list[tuple[str, str]]:
        """(source, target) for every drill target and every manager that is not one."""
        targets = self.services.settings.drill_targets()
        sources = [m for m in self.services.managers if m not in targets]
        return [(s, t) for t in targets for s in sources]

    def since(self, now: datetime) -> datetime:
        """When drill scheduling began on this database: slots before it were never due."""
        store = self.services.store
        if store.get_mark("drill:since") is None:
            store.claim_mark("drill:since", now.isoformat())
        return parse_time(store.get_mark("drill:since")) or now

    def tick(self, now: datetime) -> list[str]:
        """Run every due, unclaimed, unblocked pair's drill (one after another); the claim keys run here."""
        due = self.schedule.due(now)
        if due is None or due.at < self.since(now):
            return []
        slot = due.at.isoformat()
        ran = []
        for source, target in self.pairs():
            key = claim_key(source, target)
            if self.services.store.get_run(key, slot) is not None or self._blocked(source, target):
                continue
            if not self.services.store.claim_run(key, slot, owner_id("drill")):
                continue  # another process claimed this slot first
            self._run(source, target, key, slot, now)
            ran.append(key)
        self._alert_overdue(now)
        return ran

    def _alert_overdue(self, now: datetime) -> None:
        """Once a day per source (across processes): alert when its last passing drill is too old."""
        settings, store = self.services.settings, self.services.store
        day = self.schedule.today(now).isoformat()
        for source in sorted({s for s, _t in self.pairs()}):
            last = store.last_drill(source)
            if last is not None and not last.passed:
                continue  # a failed drill was alerted when it ran
            if last is None and (now - self.since(now)).total_seconds() <= settings.max_drill_age:
                continue  # drills were scheduled too recently for the first one to be overdue
            alarm = drill_alarm(source, last, store.last_drill(source, passed=True), now, settings.max_drill_age,
                                True)
            if not alarm or not store.claim_mark(f"drill:overdue-alert:{source}:{day}"):
                continue
            reply = Reply(text=f"{alarm}.", title=f"Restore drills of {source} are overdue", tone=Tone.DANGER,
                          public=True, ok=False)
            self.services.audit("alert_sent", actor=ACTOR.id, transport=TRANSPORT, manager=source,
                                command="backups drill", channel=settings.alert_channel, detail={"text": alarm})
            if self.notifier is not None:
                try:
                    self.notifier.alert(settings.alert_channel, reply)
                except Exception:  # noqa: BLE001 - the schedule goes on when an alert cannot be delivered
                    log.exception("could not deliver the drill alert to %r", settings.alert_channel)

    def _blocked(self, source: str, target: str) -> str:
        """Why the pair must wait: its target is being drilled or restored, or its source backed up."""
        store = self.services.store
        busy = [op for op in store.list_operations(states=UNFINISHED, manager=target) if op.exclusive]
        if busy:
            return f"{target} is busy with {busy[0].kind} ({busy[0].id})"
        if any(r["state"] == "claimed" for r in store.list_runs(source)):
            return f"the daily backup of {source} is running"
        return ""

    def _run(self, source: str, target: str, key: str, slot: str, now: datetime) -> None:
        settings = self.services.settings
        text = f"backups drill latest -m {source} --target {target} --slot {slot}"
        inv = Invocation(text=text, actor=ACTOR, channel=settings.summary_channel, transport=TRANSPORT,
                         received_at=now)
        outcome = self.dispatcher.handle(inv, self.sink)
        ok = outcome.reply.ok and outcome.exit_code == 0
        first = (outcome.reply.text.splitlines() or [""])[0]
        self.services.store.finish_run(key, slot, "succeeded" if ok else "failed", error="" if ok else first[:500])
        self.services.audit("drill_scheduled", actor=ACTOR.id, transport=TRANSPORT, manager=target,
                            command="backups drill", detail={"source": source, "slot": slot, "ok": ok})
        log.info("restore drill of %s onto %s for %s: %s", source, target, slot, first)
        if not ok and self.notifier is not None:
            try:
                self.notifier.alert(settings.alert_channel, outcome.reply)
            except Exception:  # noqa: BLE001 - the schedule goes on when an alert cannot be delivered
                log.exception("could not deliver the drill alert to %r", settings.alert_channel)
