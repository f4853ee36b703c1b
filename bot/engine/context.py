"""The seam between commands and the bot: what a command handler sees, typed, and nothing more.

A command gets a `Ctx`: its invocation and parsed arguments, the manager it is about, progress and audit, and
its ports, each a `Protocol` naming exactly what commands may call:

    ManagerAPI       one Cloudify manager (bot.cloudify.Manager implements it)
    ArchiveAPI       off-manager snapshot copies (bot.archive.folder.Archive implements it)
    Catalog          the archive catalog, the scheduled runs and marks (bot.store.Store implements it)
    OperationEngine  operations: list/get them, record a step, open a gate, decide, run another command
    AuditLog         append to and read the audit log (bot.store.Store implements it)
    Follower         follow a Cloudify execution or a snapshot's status (bot.engine.follow.ExecutionFollower)
    Backups          the daily job's timetable and run claims (bot.schedule.runs.BackupRuns)
    Incidents        incident records, their rooms, timeline and export (bot.recovery.incidents.IncidentRecords)
    Runbooks         runbook files and their checklist runs (bot.recovery.runbook.RunbookChecklists)
    Drills           restore drills' content checks and wording (bot.recovery.drills.DrillChecks)

No Slack, HTTP or SQL here, and no bag of services: commands import only `bot.core`, `bot.errors`, `bot.spec`
and this module (tests/test_layers.py enforces it). `__all__` names types and ports only, never a function or
a module: the value types the ports speak in (Schedule, Claim, Runbook, Content, ExecutionTimeout, ...) are here,
what works on them is reached through `Ctx`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

from bot.clock import Clock
from bot.core import (
    Actor, ArchiveCopy, Download, DrillResult, Execution, Invocation, Listing, Operation, Page, ProgressEvent, Tone,
    person,
)
from bot.redact import redact_url_secrets
from bot.engine.liveness import Runner
from bot.engine.follow import ExecutionTimeout
from bot.engine.outcome import Outcome
from bot.errors import Cancelled
from bot.recovery.drills import Content, ContentUnreadable, RestoreCheck
from bot.recovery.runbook import Runbook, RunbookError, Step
from bot.recovery.chatport import ChatPort, port_for
from bot.schedule.runs import Claim
from bot.schedule.timetable import Fire, Schedule
from bot.settings import ManagerSettings, Settings
from bot.spec.parser import Args
from bot.spec.registry import Command, Registry

__all__ = [
    # the context and its ports
    "ArchiveAPI", "AuditLog", "Catalog", "ChatPort", "ChatPorts", "Ctx", "ManagerAPI", "NullSink", "OperationEngine",
    "Outcome", "Sink",
    # the domain ports (implemented in bot.engine.follow, bot.schedule.runs, bot.recovery) and their value types
    "Backups", "Claim", "Content", "ContentUnreadable", "Drills", "ExecutionTimeout", "Fire", "Follower",
    "Incidents", "RestoreCheck", "Runbook", "RunbookError", "Runbooks", "Schedule", "Step",
]


class Sink(Protocol):
    """Where progress events go (terminal lines, a Slack thread, nowhere)."""

    def emit(self, event: ProgressEvent) -> None:
        """Deliver one event."""


class NullSink:
    """Drops progress; for callers that only want the final reply."""

    def emit(self, event: ProgressEvent) -> None:
        """Drop the event."""


class ManagerAPI(Protocol):
    """One Cloudify manager, as cfy 7.0.5 calls it (bot.cloudify.Manager)."""

    settings: ManagerSettings

    @property
    def name(self) -> str: ...
    @property
    def urls(self) -> tuple[str, ...]: ...
    @property
    def current_url(self) -> str: ...
    def take_notices(self) -> list[str]: ...
    def for_node(self, url: str) -> ManagerAPI: ...
    def with_password(self, password: str) -> ManagerAPI: ...
    def close(self) -> None: ...
    def version(self) -> dict[str, Any]: ...
    def server_version(self) -> tuple[int, ...]: ...
    def status(self) -> dict[str, Any]: ...
    def ok(self) -> bool: ...
    def snapshot_status(self) -> str: ...
    def maintenance_status(self) -> dict[str, Any]: ...
    def maintenance_activate(self) -> dict[str, Any]: ...
    def maintenance_deactivate(self) -> dict[str, Any]: ...
    def get_execution(self, execution_id: str, *, bypass_maintenance: bool = False,
                      tenant: str | None = None) -> Execution: ...
    def list_executions(self, *, include_system: bool = True, offset: int | None = None, size: int | None = None,
                        sort: str | None = None, bypass_maintenance: bool = False, tenant: str | None = None,
                        **filters: Any) -> Listing[Execution]: ...
    def execution_action(self, execution_id: str, action: str, *, bypass_maintenance: bool = False,
                         tenant: str | None = None) -> Execution: ...
    def list_events(self, execution_id: str, *, offset: int = 0, size: int = 100, include_logs: bool = True,
                    bypass_maintenance: bool = False, **filters: Any) -> Page: ...
    def list_execution_schedules(self, *, offset: int | None = None, size: int | None = None,
                                 sort: str | None = None, bypass_maintenance: bool = False,
                                 **filters: Any) -> Page: ...
    def list_deployments(self, *, sort: str | None = "created_at", descending: bool = False, offset: int = 0,
                         size: int = 1000, all_tenants: bool = False, tenant: str | None = None,
                         bypass_maintenance: bool = False) -> Page: ...
    def list_blueprints(self, *, offset: int = 0, size: int = 1000, all_tenants: bool = False,
                        tenant: str | None = None, bypass_maintenance: bool = False) -> Page: ...
    def managers(self) -> Page: ...
    def brokers(self) -> Page: ...
    def db_nodes(self) -> Page: ...
    def cluster_status(self, summary: bool = False) -> dict[str, Any]: ...
    def list_snapshots(self, *, sort: str = "created_at", descending: bool = False, search: str | None = None,
                       offset: int = 0, size: int = 1000, all_tenants: bool = False, tenant: str | None = None,
                       **filters: Any) -> Page: ...
    def get_snapshot(self, snapshot_id: str, tenant: str | None = None) -> dict[str, Any]: ...
    def create_snapshot(self, snapshot_id: str, *, legacy: bool, include_credentials: bool = True,
                        include_logs: bool = True, include_events: bool = True, queue: bool = False,
                        tempdir_path: str | None = None, listener_timeout: float | None = None) -> Execution: ...
    def delete_snapshot(self, snapshot_id: str, tenant: str | None = None) -> dict[str, Any] | None: ...
    def download_snapshot(self, snapshot_id: str,
                          tenant: str | None = None) -> AbstractContextManager[Download]: ...
    def upload_snapshot(self, snapshot_id: str, chunks: Iterable[bytes] | None = None, *, url: str | None = None,
                        tenant: str | None = None) -> dict[str, Any]: ...
    def restore_snapshot(self, snapshot_id: str, *, force: bool = False, restore_certificates: bool = False,
                         no_reboot: bool = False, timeout: int | None = None) -> Execution: ...
    # what a restore drill reads back (bot.cloudify.entities)
    def list_tenants(self, *, bypass_maintenance: bool = False) -> list[str]: ...
    def list_users(self, *, bypass_maintenance: bool = False) -> list[dict[str, Any]]: ...
    def list_entities(self, kind: str, tenant: str, *, bypass_maintenance: bool = False) -> list[dict[str, Any]]: ...


class ArchiveAPI(Protocol):
    """Snapshot copies kept off the manager (bot.archive.folder.Archive: a folder or an S3 bucket)."""

    def location(self, manager: str, snapshot_id: str) -> str: ...
    def save(self, manager: str, snapshot_id: str, download: Download, *, manager_version: str = "",
             tenant: str = "", created_at: str = "",
             progress: Callable[[int, int | None], None] | None = None) -> ArchiveCopy: ...
    def verify(self, copy: ArchiveCopy) -> ArchiveCopy: ...
    def upload_copy(self, copy: ArchiveCopy, manager: ManagerAPI, snapshot_id: str, tenant: str | None = None,
                    progress: Callable[[int, int | None], None] | None = None) -> dict[str, Any]: ...
    def delete(self, copy: ArchiveCopy) -> bool: ...
    def find(self, snapshot_id: str, manager: str) -> ArchiveCopy: ...
    def snapshot_format(self, copy: ArchiveCopy) -> tuple[str, str]: ...
    def manager_snapshot_format(self, manager: ManagerAPI, snapshot_id: str,
                                limit: int = ...) -> tuple[str, str, int]: ...
    def local_copy(self, copy: ArchiveCopy) -> AbstractContextManager[str]: ...
    def stored_size(self, copy: ArchiveCopy) -> int | None: ...


class Catalog(Protocol):
    """What the bot remembers: archive copies, scheduled runs (one per manager and day) and marks."""

    def get_copy(self, manager: str, snapshot_id: str) -> ArchiveCopy | None: ...
    def list_copies(self, manager: str | None = None, verified: bool | None = None) -> list[ArchiveCopy]: ...
    def latest_verified(self, manager: str) -> ArchiveCopy | None: ...
    def claim_run(self, manager: str, day: str, owner: str, stale_after: float | None = None) -> bool: ...
    def finish_run(self, manager: str, day: str, state: str, **fields: Any) -> dict[str, Any] | None: ...
    def get_run(self, manager: str, day: str) -> dict[str, Any] | None: ...
    def list_runs(self, manager: str | None = None, since_day: str | None = None) -> list[dict[str, Any]]: ...
    def get_mark(self, key: str) -> str | None: ...
    def set_mark(self, key: str, value: str = "") -> None: ...
    def claim_mark(self, key: str, value: str = "") -> bool: ...
    # operations, read-only: the daily job looks for its own unfinished run (bot.schedule.runs)
    def list_operations(self, states: str | Iterable[str] | None = None, manager: str | None = None,
                        kinds: str | Iterable[str] | None = None, limit: int | None = None) -> list[Operation]: ...
    def get_operation(self, op_id: str) -> Operation | None: ...
    # restore drills' results (bot.store.drills)
    def record_drill(self, drill: DrillResult) -> DrillResult: ...
    def list_drills(self, source: str | None = None, limit: int = 20) -> list[DrillResult]: ...
    def last_drill(self, source: str, passed: bool = False) -> DrillResult | None: ...


class AuditLog(Protocol):
    """The append-only, hash-chained audit log."""

    secrets: set[str]  # the configured secret values: never written to the log, scrubbed from what is shown

    def append_audit(self, event: str, *, actor: str, transport: str = "", channel: str = "", manager: str = "",
                     command: str = "", operation_id: str = "", execution_id: str = "",
                     detail: dict[str, Any] | None = None) -> dict[str, Any]: ...
    def query_audit(self, user: str | None = None, command: str | None = None, manager: str | None = None,
                    since: datetime | str | None = None, until: datetime | str | None = None,
                    event: str | None = None, limit: int = 50,
                    operation_id: str | None = None) -> list[dict[str, Any]]: ...
    def iter_audit(self, since: datetime | str | None = None) -> Iterator[dict[str, Any]]: ...
    def audit_head(self) -> tuple[int, str]: ...


class OperationEngine(Protocol):
    """Operations (DESIGN §2): read them, record steps, open a gate, decide one, run another command."""

    def list_operations(self, states: str | Iterable[str] | None = None, manager: str | None = None,
             kinds: str | Iterable[str] | None = None, limit: int | None = None) -> list[Operation]: ...
    def get_operation(self, op_id: str) -> Operation | None: ...
    def runner(self, op: Operation) -> Runner: ...
    def update_operation(self, op_id: str, expected_state: str | Iterable[str],
                         **fields: Any) -> Operation | None: ...
    def open_gate(self, ctx: Ctx, kind: str, args: dict[str, Any] | None = None) -> Operation: ...
    def expire_due(self) -> list[Operation]: ...
    def decide(self, op_id: str, actor: Actor, action: str, sink: Sink, channel: str = "",
               transport: str = "") -> Outcome: ...
    def handle(self, inv: Invocation, sink: Sink) -> Outcome: ...
    def may_run(self, actor: Actor, channel: str = "") -> Callable[[Command], bool]: ...


# --- the domain ports: what commands call of bot/engine/follow, bot/schedule, bot/recovery -------------------------

class Follower(Protocol):
    """Following a Cloudify execution (its events become steps) or a snapshot's status (bot.engine.follow)."""

    def follow_execution(self, ctx: Ctx, execution_id: str, *, timeout: float | None = None,
                         bypass_maintenance: bool = False) -> Execution:
        """Poll the execution until it ends, reporting status changes and events; the final execution
        (`bypass_maintenance`: read past maintenance mode with X-BYPASS-MAINTENANCE, as a sys-admin may)."""
    def wait_for_snapshot(self, ctx: Ctx, snapshot_id: str, *, timeout: float | None = None) -> dict[str, Any]:
        """Poll a snapshot until it is created or failed; ExecutionTimeout after `timeout` seconds."""
    def describe_failure(self, execution: Execution) -> str:
        """Why an execution did not succeed, in one line."""


class Backups(Protocol):
    """The daily backup job's timetable and its runs, one per (manager, day) (bot.schedule.runs.BackupRuns)."""

    def schedule(self) -> Schedule:
        """BOT_BACKUP_SCHEDULE read in BOT_TIMEZONE; ConfigError when it cannot be read."""
    def run_key(self, day: date, attempt: int = 1) -> str:
        """The run key of a day (`2026-11-29`, `2026-11-29~2` for a retry)."""
    def parse_key(self, key: str) -> tuple[date, int]:
        """(day, attempt) of a run key."""
    def is_failed(self, state: str | None) -> bool:
        """Whether a run in this state ended without a backup (failed or skipped)."""
    def owner_id(self, tag: str) -> str:
        """Who holds a claim: this process and `tag`."""
    def claim_day(self, manager: str, day: date, owner: str, now: datetime, *, retry: bool = False) -> Claim:
        """Claim the run of (manager, day); with `retry`, a failed or skipped day gets a new attempt."""
    def run_operation(self, manager: str, key: str) -> Operation | None:
        """The unfinished `backups run` operation working on run `key` of `manager`, if any."""


class Incidents(Protocol):
    """Incident records (the catalog's marks), the room each runs in, its timeline and its Markdown export."""

    def stamp(self, when: datetime) -> str:
        """A time as the audit log writes it (UTC, microseconds, `Z`), so the two compare as strings."""
    def channel_name(self, title: str, day: datetime, attempt: int = 1) -> str:
        """`inc-20261129-db-nodes-down`, with `-2`, `-3`… on later attempts; never longer than Slack allows."""
    def who(self, actor: str) -> str:
        """An actor id without its namespace (`U123`, `alice`, `scheduler`)."""
    def get(self, incident_id: str) -> dict[str, Any] | None:
        """An incident by id, or None."""
    def save(self, incident: dict[str, Any], *, new: bool = False) -> bool:
        """Write the record; with `new`, only if no incident has that id (False then)."""
    def set_room(self, channel: str, incident_id: str) -> None:
        """Make `incident_id` the open incident of `channel` ('' clears it)."""
    def open_in(self, channel: str) -> dict[str, Any] | None:
        """The open incident whose room is `channel`, or None."""
    def timeline(self, rows: Iterable[dict[str, Any]], incident: dict[str, Any]) -> list[dict[str, str]]:
        """Audit rows about the incident (its room, its events, its operations), as (at, who, what) entries."""
    def markdown(self, incident: dict[str, Any], entries: list[dict[str, str]]) -> str:
        """The incident and its timeline as a Markdown document."""
    def write_export(self, incident: dict[str, Any], text: str) -> str:
        """Save the Markdown export under `<BOT_DATA_DIR>/incidents/`; returns its path."""


class Runbooks(Protocol):
    """Recovery runbooks: the files (the operator's first) and their runs as checklists in the catalog's marks."""

    def load(self, scenario: str) -> Runbook:
        """The runbook of `scenario`; RunbookError when there is none or it is malformed."""
    def start_run(self, book: Runbook, *, manager: str, actor: str, actor_name: str, channel: str, at: str,
                  incident: str = "") -> dict[str, Any]:
        """Record a new run of `book` (its steps copied) and return it."""
    def get_run(self, run_id: str) -> dict[str, Any]:
        """A run by id; RunbookError when unknown."""
    def step_of(self, run: dict[str, Any], number: int) -> Step:
        """One step of a run; RunbookError when out of range."""
    def mark_step(self, run: dict[str, Any], number: int, state: str, *, actor: str, actor_name: str, at: str,
                  note: str = "") -> tuple[bool, dict[str, Any]]:
        """Mark a step done or skipped once; (True, record) for the first, (False, existing record) after."""
    def record_action(self, run: dict[str, Any], number: int, *, operation_id: str, command: str, actor: str,
                      actor_name: str, at: str) -> None:
        """Remember that a step's action was started (the operation it created, if any)."""
    def step_states(self, run: dict[str, Any]) -> list[tuple[Step, dict[str, Any], dict[str, Any]]]:
        """Each step with its done/skipped record ({} when open) and its action record ({} when none)."""


class Drills(Protocol):
    """Restore drills: what a snapshot holds against what the restored manager lists, and how results read."""

    def snapshot_content(self, path: str) -> Content:
        """The entities a snapshot zip holds; ContentUnreadable when they cannot be read."""
    def manager_content(self, client: ManagerAPI, tenants: Iterable[str] | None = None,
                        bypass_maintenance: bool = False) -> Content:
        """What a manager lists now, for `tenants` (those the snapshot holds; None: all), plus its users."""
    def restore_check(self, expected: Content, actual: Content, manager: str) -> RestoreCheck:
        """A restore's tenants and counted entities: the snapshot's against what `manager` lists after it."""
    def counts_text(self, counts: Sequence[tuple[str, int]]) -> str:
        """`3 tenants, 4 blueprints, 1 deployment, …`."""
    def compare(self, expected: Content, actual: Content, target_tenants: Sequence[str] = ()) -> list[str]:
        """Every difference between the snapshot and the restored manager, named; [] when they match."""
    def duration(self, seconds: float | None) -> str:
        """`4m12s`, `1h03m`, `38s` (a drill's recovery time, to the second)."""
    def sparkline(self, values: Sequence[float | None]) -> str:
        """One block per value, scaled between the smallest and largest; `·` where there is none."""
    def phases_text(self, phases: Sequence[tuple[str, float]]) -> str:
        """`upload 12s, maintenance 3s, restore 3m40s, …`."""
    def summary_line(self, source: str, last: DrillResult | None, now: datetime) -> str:
        """The daily summary's line for one source: its last drill, or that there was none."""
    def drill_alarm(self, source: str, last: DrillResult | None, last_pass: DrillResult | None, now: datetime,
                    max_age: float, has_target: bool) -> str:
        """Why the drills of `source` need attention ("" when they do not)."""


ChatPorts = Mapping[str, ChatPort]  # transport -> its chat port (incident rooms), registered by the front ends


@dataclass
class Ctx:
    """One command run: invocation, parsed args, the manager it is about, progress, audit and the ports."""

    inv: Invocation
    args: Args
    command: Command
    manager_name: str
    settings: Settings
    clock: Clock
    managers: Mapping[str, ManagerAPI]
    catalog: Catalog
    audit_log: AuditLog
    engine: OperationEngine
    registry: Registry
    # the domain ports (built once with the services)
    follower: Follower
    backups: Backups
    incidents: Incidents
    runbooks: Runbooks
    drills: Drills
    archive: ArchiveAPI | None = None
    chat: ChatPorts = field(default_factory=dict)
    sink: Sink = field(default_factory=NullSink)
    op: Operation | None = None
    manager_named: bool = False  # the user chose the manager with -m/--manager

    def chat_port(self) -> ChatPort:
        """The chat side of this command's transport (incident rooms), the terminal's when it has none."""
        return port_for(self.chat, self.inv.transport)

    @property
    def manager(self) -> ManagerAPI:
        """The Cloudify client of the manager this command is about."""
        return self.managers[self.manager_name]

    def now(self) -> datetime:
        """The current time (the injected clock)."""
        return self.clock.now()

    def step(self, text: str, tone: Tone = Tone.INFO, kind: str = "step", **data: Any) -> None:
        """Report progress: one event to the sink, and an audit row when this is an operation."""
        text = redact_url_secrets(text)  # a URL's user:password or signed query never reaches a post or the store
        op_id = self.op.id if self.op else self.inv.id
        if self.op and kind == "step":  # recorded before it is shown: `operations` never lags what was printed
            self.audit("step", text=text, tone=tone)
            updated = self.engine.update_operation(self.op.id, "running", step=text[:200])
            if updated is not None:
                self.op = updated
        self.sink.emit(ProgressEvent(op_id, kind, text, tone, self.now(), dict(data)))

    def recall(self, key: str, default: Any = None) -> Any:
        """A value this operation remembered earlier (survives a restart of the bot)."""
        return self.op.journal.get(key, default) if self.op else default

    def remember(self, **values: Any) -> None:
        """Persist values in the operation's journal before acting on them, so a restart can resume."""
        if not self.op:
            return
        result = {**self.op.result, "journal": {**self.op.journal, **values}}
        updated = self.engine.update_operation(self.op.id, "running", result=result)
        if updated is not None:
            self.op = updated

    def record_execution(self, execution_id: str) -> None:
        """Name the Cloudify execution this operation started (later audit rows carry it)."""
        if self.op:
            updated = self.engine.update_operation(self.op.id, "running", execution_id=execution_id)
            if updated is not None:
                self.op = updated

    def check_cancel(self) -> None:
        """Stop here (raise Cancelled) when someone asked to cancel this operation."""
        if not self.op:
            return
        current = self.engine.get_operation(self.op.id)
        if current is not None and current.cancel_requested:
            raise Cancelled(f"cancelled by {person(current.cancel_requested)} before the point of no return")

    def point_of_no_return(self, what: str) -> None:
        """From here on the operation cannot be cancelled; recorded before the irreversible call."""
        self.check_cancel()
        if self.op:
            updated = self.engine.update_operation(self.op.id, "running", point_of_no_return=True, step=what)
            if updated is not None:
                self.op = updated

    def audit(self, event: str, **detail: Any) -> None:
        """Append an audit row about this command run."""
        self.audit_log.append_audit(
            event, actor=self.inv.actor.id, transport=self.inv.transport, channel=self.inv.channel,
            manager=self.manager_name, command=self.command.name,
            operation_id=self.op.id if self.op else "",
            # once the operation has a Cloudify execution, every later row names it (steps, outcome)
            execution_id=detail.pop("execution_id", "") or (self.op.execution_id if self.op else ""),
            detail=detail or None,
        )


RUNNING: ContextVar[Ctx | None] = ContextVar("cfy_bot_running_ctx", default=None)


@contextmanager
def running(ctx: Ctx) -> Iterator[Ctx]:
    """While a command's handler runs: the manager calls it makes are audited under its name and actor."""
    token = RUNNING.set(ctx)
    try:
        yield ctx
    finally:
        RUNNING.reset(token)
