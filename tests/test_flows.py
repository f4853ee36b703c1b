"""Following executions: polling cadence, incremental events, failures, timeouts, lost contact."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from bot.clock import FakeClock
from bot.cloudify import Page
from bot.core import Execution
from bot.errors import Cancelled, ManagerUnreachable
from bot.engine.follow import ExecutionTimeout, describe_failure, event_line, follow_execution, wait_for_snapshot

TRACEBACK = ("Traceback (most recent call last):\n  File \"/opt/mgmtworker/snapshot.py\", line 80, in create\n"
             "    raise RuntimeError(msg)\nRuntimeError: pg_dump: error: connection to database failed\n")


@dataclass
class ScriptedManager:
    """A manager whose execution walks through `statuses` (one per poll) and logs `events` as it goes."""

    clock: FakeClock
    statuses: list[str]
    events_at: dict[int, list[dict]] = field(default_factory=dict)  # poll number -> events that appear then
    error: str = ""
    unreachable_polls: tuple[int, ...] = ()
    polls: list[float] = field(default_factory=list)
    event_calls: list[tuple[int, int]] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)
    actions: list[tuple[str, float]] = field(default_factory=list)  # (action, when) sent by the bot

    def execution_action(self, execution_id: str, action: str) -> Execution:
        self.actions.append((action, self.clock.time()))
        self.statuses = [*self.statuses[:len(self.polls)], "cancelling", "cancelled"]
        return Execution(execution_id, status="cancelling")

    def get_execution(self, execution_id: str, *, bypass_maintenance: bool = False) -> Execution:
        n = len(self.polls)
        self.polls.append(self.clock.time())
        if n in self.unreachable_polls:
            raise ManagerUnreachable("manager production is unreachable: connection refused", manager="production")
        self.events += self.events_at.get(n, [])
        status = self.statuses[min(n, len(self.statuses) - 1)]
        return Execution.from_wire({"id": execution_id, "workflow_id": "create_snapshot", "status": status,
                                    "error": self.error if status == "failed" else ""})

    def list_events(self, execution_id: str, *, offset: int = 0, size: int = 100, include_logs: bool = True,
                    bypass_maintenance: bool = False) -> Page:
        self.event_calls.append((offset, size))
        items = self.events[offset:offset + size]
        return Page(items, len(self.events), offset, size)


@dataclass
class StepCtx:
    """The part of Ctx the flows use (manager, clock, store, manager_name, step)."""

    manager: Any
    clock: FakeClock
    manager_name: str = "production"
    audit_log: Any = field(default_factory=lambda: SimpleNamespace(secrets=set()))  # no secrets configured
    steps: list[tuple[str, str]] = field(default_factory=list)
    cancel_at: float | None = None  # from this time on, someone has asked to cancel the operation

    def step(self, text: str, tone: str = "info", **_: Any) -> None:
        self.steps.append((text, tone))

    def check_cancel(self) -> None:
        if self.cancel_at is not None and self.clock.time() >= self.cancel_at:
            raise Cancelled("cancelled by shell:bob before the point of no return")


def log(text: str, level: str = "info") -> dict:
    return {"type": "cloudify_log", "level": level, "message": text}


def event(text: str, kind: str = "workflow_started") -> dict:
    return {"type": "cloudify_event", "event_type": kind, "message": text}


def test_follows_to_the_end_reporting_each_event_once(clock) -> None:
    mgr = ScriptedManager(clock, ["pending", "started", "started", "started", "terminated"], events_at={
        1: [event("Starting 'create_snapshot' workflow execution")],
        2: [log("Creating snapshot `s1`"), log("dumping", "debug")],
        4: [log("Snapshot created successfully"), event("'create_snapshot' workflow execution succeeded",
                                                        "workflow_succeeded")],
    })
    ctx = StepCtx(mgr, clock)
    final = follow_execution(ctx, "e1")
    assert final.status == "terminated"
    texts = [t for t, _ in ctx.steps]
    assert texts == [
        "execution e1 (create_snapshot) is pending: waiting for the management worker",
        "Starting 'create_snapshot' workflow execution",
        "execution e1 (create_snapshot) started",
        "Creating snapshot `s1`",
        "Snapshot created successfully",
        "'create_snapshot' workflow execution succeeded",
        "execution e1 (create_snapshot) finished",
    ]
    # each poll asks only for what comes after what it has seen: nothing is read twice
    assert [o for o, _ in mgr.event_calls] == [0, 0, 1, 3, 3]


def test_polls_every_second_then_backs_off_to_a_few_seconds(clock) -> None:
    mgr = ScriptedManager(clock, ["started"] * 12 + ["terminated"], events_at={6: [log("still going")]})
    follow_execution(StepCtx(mgr, clock), "e1")
    gaps = [round(b - a, 2) for a, b in zip(mgr.polls, mgr.polls[1:], strict=False)]
    assert gaps[0] == 1.0
    assert max(gaps) <= 5.0 and 5.0 in gaps
    assert gaps == [1.0, 1.5, 2.25, 3.38, 5.0, 5.0, 1.0, 1.5, 2.25, 3.38, 5.0, 5.0]


def test_failure_shows_the_last_line_of_the_traceback(clock) -> None:
    mgr = ScriptedManager(clock, ["started", "failed"], error=TRACEBACK)
    ctx = StepCtx(mgr, clock)
    final = follow_execution(ctx, "e1")
    assert describe_failure(final) == "RuntimeError: pg_dump: error: connection to database failed"
    assert ctx.steps[-1] == ("execution e1 (create_snapshot) failed: RuntimeError: pg_dump: error: connection "
                             "to database failed", "danger")


def test_describe_failure_without_a_traceback() -> None:
    assert describe_failure(Execution("e1", status="cancelled", error="")) == "the execution was cancelled"
    assert describe_failure(Execution("e1", status="failed", error=None)) == "the execution ended failed"


def test_timeout_is_a_clear_error(clock) -> None:
    mgr = ScriptedManager(clock, ["started"])
    with pytest.raises(ExecutionTimeout, match=r"gave up following execution e1 \(create_snapshot\) on production "
                                               r"after 1m: it is still started there and keeps running"):
        follow_execution(StepCtx(mgr, clock), "e1", timeout=60)


def test_a_short_loss_of_contact_is_ridden_out(clock) -> None:
    mgr = ScriptedManager(clock, ["started", "started", "started", "terminated"], unreachable_polls=(1, 2))
    ctx = StepCtx(mgr, clock)
    assert follow_execution(ctx, "e1").status == "terminated"
    texts = [t for t, _ in ctx.steps]
    assert any("lost contact with production" in t for t in texts) and "production answers again" in texts


def test_a_long_loss_of_contact_fails(clock) -> None:
    mgr = ScriptedManager(clock, ["started"], unreachable_polls=tuple(range(1, 1000)))
    with pytest.raises(ManagerUnreachable, match="may still be running"):
        follow_execution(StepCtx(mgr, clock), "e1")


def test_many_events_are_paged_and_a_flood_is_summed_up(clock) -> None:
    mgr = ScriptedManager(clock, ["started", "terminated"], events_at={0: [log(f"line {i}") for i in range(230)]})
    ctx = StepCtx(mgr, clock)
    follow_execution(ctx, "e1")
    assert [o for o, _ in mgr.event_calls][:3] == [0, 100, 200]
    texts = [t for t, _ in ctx.steps]
    assert "line 49" in texts and "line 50" not in texts
    assert "… and 180 more log lines of execution e1" in texts


def test_secrets_in_log_lines_are_hidden(clock) -> None:
    class Store:
        secrets = {"hunter2-password"}

    mgr = ScriptedManager(clock, ["started", "terminated"], events_at={0: [log("login with hunter2-password")]})
    ctx = StepCtx(mgr, clock, audit_log=Store())
    follow_execution(ctx, "e1")
    assert ("login with [redacted]", "info") in ctx.steps


def test_event_lines() -> None:
    assert event_line(log("x", "error")) == ("error: x", "danger")
    assert event_line(log("x", "warning")) == ("warning: x", "warning")
    assert event_line(log("x", "debug")) is None
    assert event_line({"type": "cloudify_event", "event_type": "workflow_failed", "message": {"text": "boom"}}) == (
        "boom", "danger")


def test_wait_for_snapshot(clock) -> None:
    states = iter(["creating", "creating", "created"])

    class Mgr:
        def get_snapshot(self, sid: str) -> dict:
            return {"id": sid, "status": next(states)}

    assert wait_for_snapshot(StepCtx(Mgr(), clock), "s1")["status"] == "created"

    class Stuck:
        def get_snapshot(self, sid: str) -> dict:
            return {"id": sid, "status": "creating"}

    with pytest.raises(ExecutionTimeout, match="still creating"):
        wait_for_snapshot(StepCtx(Stuck(), clock), "s1", timeout=30)


def test_a_cancel_is_seen_at_the_next_poll_and_cancels_the_execution(clock) -> None:
    mgr = ScriptedManager(clock, ["pending"] + ["started"] * 1000)
    ctx = StepCtx(mgr, clock, cancel_at=clock.time() + 60.0)  # asked a minute in, while polls are 5 s apart
    with pytest.raises(Cancelled) as caught:
        follow_execution(ctx, "e1")
    [(action, sent)] = mgr.actions
    assert action == "cancel" and 0 <= sent - ctx.cancel_at <= 5.0  # within one poll interval (MAX_INTERVAL)
    assert str(caught.value) == ("cancelled by shell:bob before the point of no return; execution e1 was cancelled "
                                 "on production")
    assert mgr.polls[-1] - sent <= 5.0  # and followed to its end, which came at the next poll


def test_a_cancel_while_waiting_for_a_snapshot_says_its_creation_goes_on(clock) -> None:
    manager = SimpleNamespace(get_snapshot=lambda sid: {"id": sid, "status": "creating"})
    ctx = StepCtx(manager, clock, cancel_at=clock.time() + 30.0)
    with pytest.raises(Cancelled, match="snapshot s1 is still creating on production: the bot stopped waiting for "
                                        "it and did not cancel its creation there"):
        wait_for_snapshot(ctx, "s1")
    assert clock.time() - ctx.cancel_at <= 5.0
