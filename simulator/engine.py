"""Executions that advance lazily from the clock: nothing runs in the background.

Whenever a request arrives, `tick()` replays every transition that became due since the last one, in
time order and with the right timestamps: an execution picked up at t0 with duration d is `pending`
until t0+0.1d, `started` until t0+d, then `terminated` or `failed`; a cancel request ends `cancelled`
CANCEL_DELAY later (never, for an execution no worker ever picked up, unless it is killed); a final
state starts queued executions; on 5.x, due `scheduled` executions fire while maintenance mode is off.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from simulator import workflows
from simulator.http import ApiError
from simulator.models import new_event, new_execution
from simulator.state import ACTIVE, FINAL
from simulator.wire import iso, parse_iso

if TYPE_CHECKING:
    from simulator.sim import Simulator

CANCEL_DELAY = 0.5
CANCELLING = ("cancelling", "force_cancelling", "kill_cancelling")
ACTIONS = ["cancel", "force-cancel", "kill", "resume", "force-resume", "requeue"]


class Engine:
    """Creates executions and moves them through their states as simulated time passes."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    # ---- creation ------------------------------------------------------------------------------
    def create(self, tenant: str, user: str, workflow_id: str, params: dict[str, Any], *,
               status: str = "pending", worker: bool = True, **fields: Any) -> dict[str, Any]:
        """Store a new execution; a `pending` one is picked up by the worker at once."""
        sim = self.sim
        now = sim.now()
        record = new_execution(sim.new_id(), tenant, user, workflow_id, params, now, status=status,
                               **fields)
        record["_rt"].update(d=sim.duration(workflow_id), worker=worker,
                             fail=sim.faults.take_failure(workflow_id))
        sim.state.executions[record["id"]] = record
        if status == "pending" and worker:
            record["_rt"]["t0"] = now
        return record

    def active(self) -> list[dict[str, Any]]:
        """Executions in an active state (these block system workflows)."""
        return self.sim.state.executions_in(ACTIVE)

    def is_blocking(self, record: dict[str, Any]) -> bool:
        """Whether this execution may only run alone (system workflows; new-format creates on 7.0.4+)."""
        if not record["is_system_workflow"]:
            return False
        if record["workflow_id"] == "create_snapshot" and self.sim.vt >= (7, 0, 4):
            return bool(record["parameters"].get("legacy", True))
        return True

    def running_error(self, others: list[dict[str, Any]]) -> ApiError:
        """The 400 a blocking workflow gets while other executions are active (text by version)."""
        ids = ", ".join(e["id"] for e in others)
        if self.sim.vt >= (6, 3, 0):
            text = f"Cannot start execution because there are other executions running e.g.: {ids}"
        else:
            text = ("You cannot start a system-wide execution if there are other executions running. "
                    f"Currently running executions: [{ids}]")
        return ApiError(400, "existing_running_execution_error", text)

    # ---- the clock -----------------------------------------------------------------------------
    def tick(self) -> int:
        """Apply, in time order, every transition due by now; return how many were applied."""
        now = self.sim.now()
        for applied in range(100_000):
            due = self._next_due(now)
            if due is None:
                return applied
            at, action, record = due
            if record is not None:
                action(record, at)
            else:
                action(at)
        return 100_000

    def _next_due(self, now: float) -> tuple[float, Any, Any] | None:
        best: tuple[float, Any, Any] | None = None
        for record in self.sim.state.executions.values():
            item = self._due(record)
            if item and item[0] <= now and (best is None or item[0] < best[0]):
                best = (item[0], item[1], record)
        for at, action in workflows.timers(self.sim):
            if at <= now and (best is None or at < best[0]):
                best = (at, action, None)
        return best

    def _due(self, record: dict[str, Any]) -> tuple[float, Any] | None:
        rt, status = record["_rt"], record["status"]
        if status in ("pending", "started") and rt["worker"] and rt["t0"] is not None:
            if status == "pending":
                return rt["t0"] + 0.1 * rt["d"], self._start
            return rt["t0"] + rt["d"], self._finish
        if status in CANCELLING and rt["cancel_at"] is not None:
            return rt["cancel_at"], self._cancelled
        # 5.x fired `scheduled` rows at their time; 6.0+ leaves such rows alone (schedules replaced them).
        fires = self.sim.vt < (6, 0, 0) and self.sim.state.maintenance["status"] == "deactivated"
        if status == "scheduled" and record["scheduled_for"] and rt["worker"] and fires:
            return parse_iso(record["scheduled_for"]), self._fire
        return None

    # ---- transitions ---------------------------------------------------------------------------
    def _start(self, record: dict[str, Any], at: float) -> None:
        record["status"] = "started"
        record["started_at"] = iso(at)
        self.event(record, at, f"Starting '{record['workflow_id']}' workflow execution",
                   event_type="workflow_started")
        workflows.on_start(self.sim, record, at)

    def _finish(self, record: dict[str, Any], at: float) -> None:
        failure = workflows.on_finish(self.sim, record, at)
        if failure is None:
            self.event(record, at, f"'{record['workflow_id']}' workflow execution succeeded",
                       event_type="workflow_succeeded")
            self.end(record, at, "terminated", "")
            return
        self.event(record, at, f"'{record['workflow_id']}' workflow execution failed: {failure}",
                   event_type="workflow_failed")
        self.end(record, at, "failed", workflows.traceback_text(record["workflow_id"], failure))

    def _cancelled(self, record: dict[str, Any], at: float) -> None:
        workflows.on_cancel(self.sim, record, at)
        self.event(record, at, f"'{record['workflow_id']}' workflow execution cancelled",
                   event_type="workflow_cancelled")
        self.end(record, at, "cancelled", "")

    def _fire(self, record: dict[str, Any], at: float) -> None:
        record["status"] = "pending"
        record["_rt"]["t0"] = at

    def end(self, record: dict[str, Any], at: float, status: str, error: str) -> None:
        """Put an execution in a final state at `at`, then start what was queued."""
        record["status"] = status
        record["ended_at"] = iso(at)
        record["error"] = error
        record["_rt"]["cancel_at"] = None
        self.start_queued(at)

    def begin(self, record: dict[str, Any], at: float) -> None:
        """Hand an execution to the worker at `at` (it becomes `pending`)."""
        record["status"] = "pending"
        record["_rt"].update(t0=at, worker=True, cancel_at=None)

    def start_queued(self, at: float) -> None:
        """Start queued executions that may run now (system workflows first, oldest first)."""
        state = self.sim.state
        if state.maintenance["status"] != "deactivated":
            return
        queued = state.executions_in(("queued",))
        queued.sort(key=lambda e: not e["is_system_workflow"])
        for record in queued:
            active = self.active()
            if active and self.is_blocking(record):
                return
            if any(self.is_blocking(e) for e in active):
                continue
            self.begin(record, at)

    def event(self, record: dict[str, Any], at: float, message: str, **kw: Any) -> None:
        """Emit an event (`event_type=`) or a log (`level=`) of this execution."""
        self.sim.state.add_event(new_event(record, at, message, **kw))

    # ---- requests from clients -----------------------------------------------------------------
    def action(self, record: dict[str, Any], action: str) -> None:
        """Apply `POST /executions/<id> {"action": ...}` (cancel, force-cancel, kill, resume, ...)."""
        if action not in ACTIONS:
            raise ApiError(400, "bad_parameters_error",
                           f"Invalid action: {action}, Valid action values are: {ACTIONS}")
        if action in ("resume", "force-resume"):
            self._resume(record, action)
            return
        status = record["status"]
        allowed: dict[str, tuple[str, ...]] = {"cancel": ("pending", "started", "scheduled", "queued"),
                   "requeue": ("pending", "started", "scheduled", "queued")}
        allowed["force-cancel"] = allowed["cancel"] + ("cancelling",)
        if action != "kill" and status not in allowed[action]:
            verb = "force-cancel" if action == "force-cancel" else "cancel"
            raise ApiError(400, "illegal_action_error",
                           f"Can't {verb} execution {record['id']} because it's in status {status}")
        new = {"kill": "kill_cancelling", "force-cancel": "force_cancelling"}.get(action, "cancelling")
        record["status"] = new
        rt = record["_rt"]
        if action == "kill" or (rt["worker"] and (rt["t0"] is not None or status in ("queued", "scheduled"))):
            rt["cancel_at"] = self.sim.now() + CANCEL_DELAY

    def _resume(self, record: dict[str, Any], action: str) -> None:
        if record["status"] not in ("failed", "cancelled"):
            raise ApiError(400, "illegal_action_error",
                           f"Cannot {action} execution: `{record['id']}` in state: `{record['status']}`")
        record.update(ended_at=None, error=None, resume=True)
        self.begin(record, self.sim.now())

    def patch_status(self, record: dict[str, Any], status: str, error: str | None) -> None:
        """Apply `PATCH /executions/<id>` (workers and admins)."""
        current = record["status"]
        bad = current in FINAL or (current == "cancelling" and status in ACTIVE + ("terminated",)) or (
            current == "force_cancelling" and status in ACTIVE + ("terminated", "cancelling"))
        if bad:
            raise ApiError(400, "invalid_exception_status_update",
                           f"Invalid relationship - can't change status from {current} to {status} for "
                           f"\"{record['id']}\" execution while running \"{record['workflow_id']}\" workflow.")
        now = self.sim.now()
        if status in FINAL:
            self.end(record, now, status, error if error is not None else "")
            return
        record["status"] = status
        record["error"] = error if error is not None else ""
        if status == "started" and not record["started_at"]:
            record["started_at"] = iso(now)
