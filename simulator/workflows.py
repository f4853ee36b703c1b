"""What the mgmtworker does when a workflow starts and ends: create_snapshot, restore_snapshot, others."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from simulator import archive, restore

if TYPE_CHECKING:
    from simulator.sim import Simulator

# How long the flag file outlives a legacy restore: the post-restore job sleeps 3 s.
POST_RESTORE_DELAY = 3.0
# A legacy restore with restore_certificates and without no_reboot ends in `sudo shutdown -r now` (reference
# §2.7): the VM answers nothing (snapshot-status included) while it reboots.
REBOOT_SECONDS = 45.0

_MODULES = {
    "create_snapshot": ("cloudify_system_workflows/snapshots/snapshot_create.py", "create"),
    "restore_snapshot": ("cloudify_system_workflows/snapshots/snapshot_restore.py", "restore"),
}


def traceback_text(workflow_id: str, message: str) -> str:
    """A Python traceback as the worker stores it in `error`; its last line carries the message."""
    module, func = _MODULES.get(workflow_id, ("cloudify/workflows/workflow_context.py", "execute"))
    site = "/opt/mgmtworker/env/lib/python3.11/site-packages"
    return (
        "Traceback (most recent call last):\n"
        f'  File "{site}/cloudify/dispatch.py", line 1121, in _remote_workflow_child_thread\n'
        "    workflow_result = self._execute_workflow_function()\n"
        f'  File "{site}/cloudify/dispatch.py", line 1164, in _execute_workflow_function\n'
        "    result = self.func(*self.args, **self.kwargs)\n"
        f'  File "{site}/{module}", line 98, in {func}\n'
        "    raise NonRecoverableError(message)\n"
        f"cloudify.exceptions.NonRecoverableError: {message}"
    )


def on_start(sim: Simulator, record: dict[str, Any], at: float) -> None:
    """The worker picked the execution up and it is now `started`."""
    sid = record["parameters"].get("snapshot_id")
    if record["workflow_id"] == "create_snapshot":
        sim.engine.event(record, at, f"Creating snapshot `{sid}`", level="info")
    elif record["workflow_id"] == "restore_snapshot":
        sim.engine.event(record, at, f"Restoring snapshot `{sid}`", level="info")
        sim.state.restore = {"execution_id": record["id"], "clear_at": None, "admin_hash": None}
        sim.faults.begin_restore_outage(at)


def on_finish(sim: Simulator, record: dict[str, Any], at: float) -> str | None:
    """The workflow function returned or raised at `at`: the failure message, or None."""
    failure: str | None = record["_rt"].get("fail")
    if record["workflow_id"] == "create_snapshot":
        return _finish_create(sim, record, at, failure)
    if record["workflow_id"] == "restore_snapshot":
        if failure is None:
            failure, admin_hash, legacy = restore.run(sim, record, at)
            if failure is None:
                params = record["parameters"]
                reboot = legacy and bool(params.get("restore_certificates")) and not params.get("no_reboot")
                finish_restore_flag(sim, at, admin_hash, legacy, reboot)
                return None
        _schedule_flag_clear(sim, at, None)
        return failure
    return failure


def on_cancel(sim: Simulator, record: dict[str, Any], at: float) -> None:
    """A cancel or kill took effect at `at`."""
    snap = sim.state.snapshots.get(record["tenant_name"], {}).get(record["parameters"].get("snapshot_id"))
    if record["workflow_id"] == "create_snapshot" and snap and snap["status"] == "creating":
        _snapshot_failed(sim, record, "Execution cancelled")
    flag = sim.state.restore or {}
    if record["workflow_id"] == "restore_snapshot" and flag.get("execution_id") == record["id"]:
        _schedule_flag_clear(sim, at, None)


def timers(sim: Simulator) -> list[tuple[float, Callable[[float], None]]]:
    """Due times of work that is not an execution: the post-restore job (credentials, flag file)."""
    flag = sim.state.restore
    if flag and flag.get("clear_at") is not None:
        return [(flag["clear_at"], lambda at: _post_restore(sim, at))]
    return []


def _post_restore(sim: Simulator, at: float) -> None:
    flag = sim.state.restore or {}
    if flag.get("admin_hash") and "admin" in sim.state.users:
        sim.state.users["admin"]["password_hash"] = flag["admin_hash"]
    sim.state.restore = None
    if flag.get("reboot"):  # the job's `sudo shutdown -r now`; the flag file in /tmp does not outlive it
        sim.faults.reboot(at, REBOOT_SECONDS)
    sim.faults.begin_unreachable()


def _schedule_flag_clear(sim: Simulator, at: float, admin_hash: str | None, reboot: bool = False) -> None:
    """Remove the flag file at `at`, setting the admin password hash first if given (and reboot if asked)."""
    sim.state.restore = {"execution_id": None, "clear_at": at, "admin_hash": admin_hash, "reboot": reboot}


def finish_restore_flag(sim: Simulator, at: float, admin_hash: str | None, legacy: bool,
                        reboot: bool = False) -> None:
    """After a successful restore: the flag (and credential switch) end now, or 3 s later for legacy, where
    `reboot` (restore_certificates without no_reboot) then takes the VM down for REBOOT_SECONDS."""
    override = sim.faults.take_password_change()
    if override is not None:
        admin_hash = sim.hash_password(override)
    _schedule_flag_clear(sim, at + (POST_RESTORE_DELAY if legacy else 0.0), admin_hash, reboot)


def _snapshot_failed(sim: Simulator, record: dict[str, Any], message: str) -> None:
    tenant, sid = record["tenant_name"], record["parameters"]["snapshot_id"]
    snap = sim.state.snapshots.get(tenant, {}).get(sid)
    if snap is not None:
        snap["status"], snap["error"] = "failed", message
    sim.store.remove(tenant, sid)


def _finish_create(sim: Simulator, record: dict[str, Any], at: float, failure: str | None) -> str | None:
    tenant, params = record["tenant_name"], record["parameters"]
    sid = params["snapshot_id"]
    if failure is not None:
        sim.engine.event(record, at, f"Snapshot creation failed: {failure}", level="error")
        _snapshot_failed(sim, record, failure)
        return failure
    legacy = bool(params.get("legacy", True)) or sim.vt < (7, 0, 0)
    dump = archive.dump_legacy if legacy else archive.dump_new
    members = dump(sim.state, sim.version, record["id"], params.get("include_logs", True),
                   params.get("include_events", True))
    tmp = sim.store.temp_path(tenant, sid)
    archive.write_zip(tmp, members)
    sim.store.commit(tenant, sid, tmp)
    snap = sim.state.snapshots.get(tenant, {}).get(sid)
    if snap is not None:
        snap["status"], snap["error"] = "created", ""
    sim.engine.event(record, at, "Snapshot created successfully", level="info")
    return None
