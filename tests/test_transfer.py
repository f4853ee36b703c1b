"""Snapshots end to end through the terminal: create → follow → copy off → verify, and every failure path,
against the simulator's fault switches (real client over the WSGI seam, real SQLite, real archive folder)."""

from __future__ import annotations

import hashlib
import json
import os
import zipfile

import pytest
from sim_fixtures import daily

SID = "manual-20261129-090000"  # the default id at the harness's start time (2026-11-29 09:00:00 UTC)


def archive_files(bot) -> list[str]:
    root = bot.settings.archive_dir
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)


def sim_zip(sim, sid: str, tenant: str = "default_tenant") -> bytes:
    with open(sim.store.path(tenant, sid), "rb") as fh:
        return fh.read()


def busy(sim, workflow: str = "install", deployment: str = "web-prod", seconds: float = 600.0,
         tenant: str = "prod-apps") -> dict:
    """Start a long user workflow on the simulated manager (it blocks legacy snapshot creates)."""
    sim.durations[workflow] = seconds
    with sim.lock:
        return sim.engine.create(tenant, "admin", workflow, {}, is_system_workflow=False,
                                 deployment_id=deployment, blueprint_id="web-app")


def create_executions(sim) -> list[dict]:
    return [e for e in sim.state.executions.values()
            if e["workflow_id"] == "create_snapshot" and e["created_at"] >= "2026-11-29T09"]


# --- the happy paths ------------------------------------------------------------------------------------


def test_create_follow_download_verify(bot) -> None:
    code, out = bot.run("snapshots create --no-legacy", yes=True)
    assert code == 0, out
    for line in (f"creating snapshot {SID} on production in the new (7.0+) format",
                 "Starting 'create_snapshot' workflow execution", f"Creating snapshot `{SID}`",
                 "Snapshot created successfully", "finished", f"copying {SID}", f"verified the copy of {SID}",
                 f"Snapshot {SID} created on production, copied off and verified."):
        assert line in out, (line, out)
    assert out.count(f"Creating snapshot `{SID}`") == 1  # each event reported once
    row = bot.store.get_copy("production", SID)
    data = sim_zip(bot.sim, SID)
    assert row.verified and row.sha256 == hashlib.sha256(data).hexdigest() and row.size == len(data)
    assert row.snapshot_version == "7.0.5" and row.manager_version == "7.0.5"
    assert row.tenant == "default_tenant" and row.sha256 in out
    assert archive_files(bot) == [f"production/{SID}.zip"]
    params = create_executions(bot.sim)[0]["parameters"]
    assert params["legacy"] is False and params["include_credentials"] is True
    code, out = bot.run("snapshots list --search manual")
    assert code == 0 and SID in out and "verified" in out


def test_create_defaults_to_legacy_and_sends_every_flag(bot) -> None:
    code, out = bot.run("snapshots create nightly-1 --exclude-credentials --exclude-logs --exclude-events")
    assert code == 0, out
    assert "in the legacy format" in out
    params = create_executions(bot.sim)[0]["parameters"]
    assert (params["legacy"], params["include_credentials"], params["include_logs"],
            params["include_events"]) == (True, False, False, False)
    with zipfile.ZipFile(bot.store.get_copy("production", "nightly-1").location) as zf:
        assert "schema_revision" in json.loads(zf.read("metadata.json"))


def test_create_help_states_the_legacy_default(bot) -> None:
    code, out = bot.run("snapshots create --help")
    assert code == 0 and "[--legacy/--no-legacy]" in out and "the default as in cfy 7.0.5" in out


def test_download_an_existing_snapshot(bot) -> None:
    bot.run("snapshots create s-1 --no-legacy")
    os.unlink(bot.store.get_copy("production", "s-1").location)
    bot.store.delete_copy("production", "s-1")
    code, out = bot.run("snapshots download s-1")
    assert code == 0 and "copied to the archive and verified" in out, out
    assert bot.store.get_copy("production", "s-1").verified


def test_download_refuses_a_failed_snapshot(bot) -> None:
    failed = next(s for s in bot.sim.state.snapshots["default_tenant"].values() if s["status"] == "failed")
    code, out = bot.run(f"snapshots download {failed['id']}")
    assert code == 1 and "failed on production, so there is nothing to copy" in out and "pg_dump" in out


# --- failures of the create -------------------------------------------------------------------------------


def test_failed_execution_shows_the_last_line_of_the_traceback(bot) -> None:
    bot.sim.faults.fail_next("create_snapshot", "pg_dump: error: could not write to output file: No space left")
    code, out = bot.run("snapshots create --no-legacy")
    assert code == 1
    assert (f"Snapshot {SID} failed on production: cloudify.exceptions.NonRecoverableError: pg_dump: error: could "
            "not write to output file: No space left") in out
    assert "Traceback" not in out and archive_files(bot) == [] and bot.store.list_copies() == []


def test_busy_manager_says_what_runs_and_suggests_queue(bot) -> None:
    running = [busy(bot.sim), busy(bot.sim, "heal", "hello-world-1", tenant="default_tenant")]
    code, out = bot.run("snapshots create")
    assert code == 1
    assert f"production is busy: snapshot {SID} was not created because 2 other executions are running" in out
    assert "--queue" in out and "--no-legacy" in out  # a 7.0.5 manager runs new-format creates alongside
    lines = out.splitlines()
    for execution, workflow, deployment in zip(running, ("install", "heal"), ("web-prod", "hello-world-1"),
                                               strict=True):
        row = next(ln for ln in lines if ln.startswith(execution["id"]))
        assert workflow in row and deployment in row and ("pending" in row or "started" in row)
    assert SID not in bot.sim.state.snapshots["default_tenant"]


def test_queued_create_says_so_and_follows_it_when_it_starts(bot) -> None:
    busy(bot.sim, seconds=120)
    code, out = bot.run("snapshots create --queue")
    assert code == 0, out
    assert f"snapshot {SID} is queued on production" in out and "is queued: it starts when" in out
    queued, started = out.index("is queued"), out.index("Starting 'create_snapshot' workflow")
    assert queued < started < out.index("copied off and verified")
    assert bot.store.get_copy("production", SID).verified


def test_conflicting_id(bot) -> None:
    bot.run("snapshots create dup-1 --no-legacy")
    code, out = bot.run("snapshots create dup-1 --no-legacy")
    assert code == 1 and "snapshot dup-1 already exists on manager production" in out


# --- failures of the copy ---------------------------------------------------------------------------------


def test_truncated_download_keeps_nothing_then_a_retry_works(bot) -> None:
    bot.sim.faults.truncate_downloads(after_bytes=2000, count=1)
    code, out = bot.run("snapshots create --no-legacy")
    assert code == 1
    assert f"Snapshot {SID} was created on production, but is not in the archive. Copying snapshot" in out
    assert "broke off the download" in out and "partial file was removed and the catalog is unchanged" in out
    assert f"snapshots download {SID}" in out
    assert archive_files(bot) == [] and bot.store.list_copies() == []
    code, out = bot.run(f"snapshots download {SID}")
    assert code == 0 and bot.store.get_copy("production", SID).verified


def test_corrupt_download_is_refused(bot) -> None:
    bot.run("snapshots create c-1 --no-legacy")
    before = bot.store.get_copy("production", "c-1")
    bot.sim.faults.corrupt_downloads(count=1)
    code, out = bot.run("snapshots download c-1")
    assert code == 1 and "copying snapshot c-1 of production to the archive failed" in out
    assert "zip" in out and "the catalog is unchanged" in out
    assert bot.store.get_copy("production", "c-1") == before  # the earlier good copy stays, untouched
    assert archive_files(bot) == ["production/c-1.zip"]


def test_not_a_zip_is_refused(bot) -> None:
    bot.services.managers["production"].upload_snapshot("junk-1", chunks=iter([b"just some text\n"]))
    code, out = bot.run("snapshots download junk-1")
    assert code == 1 and "it is not a readable zip file" in out
    assert archive_files(bot) == [] and bot.store.list_copies() == []


def test_disk_full(bot, monkeypatch) -> None:
    archive = bot.services.archive
    real = archive._open_temp

    class FullDisk:
        def __init__(self, fh) -> None:
            self.fh, self.room = fh, 1000

        def write(self, b) -> int:
            import errno

            if len(b) > self.room:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            self.room -= len(b)
            return self.fh.write(b)

        def __enter__(self):
            return self

        def __exit__(self, *exc) -> None:
            self.fh.close()

    monkeypatch.setattr(archive, "_open_temp", lambda path: FullDisk(real(path)))
    code, out = bot.run("snapshots create --no-legacy")
    assert code == 1 and "is full (no space left after" in out and "Created, not archived" in out
    assert archive_files(bot) == [] and bot.store.list_copies() == []


def test_download_of_an_unknown_snapshot(bot) -> None:
    code, out = bot.run("snapshots download nope-1")
    assert code == 1 and "snapshot nope-1 does not exist on manager production" in out


def test_manager_unreachable_before_the_download(bot) -> None:
    bot.run("snapshots create r-1 --no-legacy")
    bot.sim.faults.refuse_connections(seconds=30)
    code, out = bot.run("snapshots download r-1")
    assert code == 1 and "unreachable" in out


# --- upload back ------------------------------------------------------------------------------------------


def test_upload_back_from_the_archive(bot) -> None:
    bot.run("snapshots create up-1 --no-legacy")
    original = sim_zip(bot.sim, "up-1")
    code, out = bot.run("snapshots delete up-1", yes=True)
    assert code == 0 and "kept its archive copy" in out, out
    assert "up-1" not in bot.sim.state.snapshots["default_tenant"]
    code, out = bot.run("snapshots upload up-1")
    assert code == 0 and "Snapshot up-1 uploaded to production from its own archive copy (uploaded)" in out, out
    assert bot.sim.state.snapshots["default_tenant"]["up-1"]["status"] == "uploaded"
    assert sim_zip(bot.sim, "up-1") == original


def test_upload_refuses_to_replace_an_existing_snapshot(bot) -> None:
    bot.run("snapshots create up-2 --no-legacy")
    code, out = bot.run("snapshots upload up-2 --from-archive")
    assert code == 1 and "already has a snapshot up-2 (created)" in out


def test_upload_refuses_a_damaged_copy(bot) -> None:
    bot.run("snapshots create up-3 --no-legacy")
    bot.run("snapshots delete up-3", yes=True)
    with open(bot.store.get_copy("production", "up-3").location, "r+b") as fh:
        fh.seek(100)
        fh.write(b"rot")
    code, out = bot.run("snapshots upload up-3")
    assert code == 1 and "failed its check, so it was not uploaded" in out
    assert "up-3" not in bot.sim.state.snapshots["default_tenant"]


def test_upload_with_nothing_in_the_archive(bot) -> None:
    code, out = bot.run("snapshots upload ghost-1")
    assert code == 1 and "the archive has no copy of snapshot ghost-1" in out


def test_upload_usage(bot) -> None:
    code, out = bot.run("snapshots upload x-1 --from-archive https://example.com/x.zip")
    assert code == 2 and "either --from-archive or a URL" in out
    code, out = bot.run("snapshots upload x-1 file:///etc/passwd")
    assert code == 2 and "not a URL the manager can fetch" in out


def test_upload_across_managers(make_bot) -> None:
    bot = make_bot(managers=("production", "staging"))
    code, out = bot.run("snapshots create cross-1 --no-legacy")
    assert code == 0, out
    staging = bot.sims["staging"]
    assert "cross-1" not in staging.state.snapshots["default_tenant"]
    code, out = bot.run("snapshots upload cross-1 -m staging")
    assert code == 0, out
    assert "checking the archive copy taken from production of cross-1" in out
    assert "uploaded to staging from the archive copy taken from production" in out
    assert sim_zip(staging, "cross-1") == sim_zip(bot.sims["production"], "cross-1")
    assert staging.state.snapshots["default_tenant"]["cross-1"]["status"] == "uploaded"


def test_upload_from_a_url(bot, tmp_path) -> None:
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    bot.run("snapshots create url-1 --no-legacy")
    data = sim_zip(bot.sim, "url-1")
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "url-1.zip").write_bytes(data)

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(tmp_path / "www")))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/url-1.zip"
        code, out = bot.run(f"snapshots upload fetched-1 {url}")
    finally:
        server.shutdown()
    assert code == 0 and f"production fetched {url} as snapshot fetched-1" in out, out
    assert sim_zip(bot.sim, "fetched-1") == data


# --- delete -----------------------------------------------------------------------------------------------


def test_delete_asks_first_and_says_exactly_what_goes(bot) -> None:
    bot.run("snapshots create del-1 --no-legacy")
    questions: list[str] = []
    code, out = bot.run("snapshots delete del-1", ask=lambda q: questions.append(q) or "no")
    assert "delete snapshot del-1 of production" in out
    assert "On production: created" in out and "will be deleted." in out
    assert "Archive copy (verified" in out and "is kept (add --archive to delete it too)" in out
    assert questions and "del-1" in bot.sim.state.snapshots["default_tenant"]  # answered no: nothing happened
    code, out = bot.run("snapshots delete del-1 --archive", yes=True)
    assert code == 0 and "will be deleted too" in out and "`restore latest` will then refuse" in out
    assert "deleted snapshot del-1 from production; deleted its archive copy" in out.lower()
    assert "del-1" not in bot.sim.state.snapshots["default_tenant"]
    assert bot.store.get_copy("production", "del-1") is None and archive_files(bot) == []


def test_delete_only_the_archive_copy_once_the_manager_lost_it(bot) -> None:
    bot.run("snapshots create del-2 --no-legacy")
    bot.run("snapshots delete del-2", yes=True)
    code, out = bot.run("snapshots delete del-2")
    assert code == 1 and "only its archive copy is left" in out and "--archive" in out
    code, out = bot.run("snapshots delete del-2 --archive", yes=True)
    assert code == 0 and "production no longer has it." in out
    assert "production no longer had snapshot del-2; deleted its archive copy" in out, out
    assert bot.store.get_copy("production", "del-2") is None and archive_files(bot) == []


def test_delete_of_nothing(bot) -> None:
    code, out = bot.run("snapshots delete nothing-1 --archive", yes=True)
    assert code == 1 and "neither on production nor in its archive" in out


# --- backups verify ---------------------------------------------------------------------------------------


def test_backups_verify(bot) -> None:
    bot.run("snapshots create v-1 --no-legacy")
    bot.clock.advance(60)
    bot.run("snapshots create v-2 --no-legacy")
    code, out = bot.run("backups verify")
    assert code == 0 and "All 2 archive copies checked out." in out
    assert "newest verified copy of production is v-2" in out
    with open(bot.store.get_copy("production", "v-2").location, "ab") as fh:
        fh.write(b"trailing junk")
    code, out = bot.run("backups verify")
    assert code == 1 and "1 of 2 archive copies failed the check" in out and "v-2" in out
    assert not bot.store.get_copy("production", "v-2").verified
    assert bot.store.latest_verified("production").snapshot_id == "v-1"
    code, out = bot.run("backups verify v-1")
    assert code == 0 and "The archive copy checked out." in out
    code, out = bot.run("snapshots list --search v-")
    assert "FAILED check (damaged)" in out  # v-2 failed its check: not merely unverified


def test_backups_verify_with_nothing(bot) -> None:
    code, out = bot.run("backups verify")
    assert code == 0 and "no copies of production's snapshots yet" in out


# --- permissions and restarts -----------------------------------------------------------------------------


def test_roles(make_bot) -> None:
    bot = make_bot(env={"BOT_SHELL_ROLE": "viewer"})
    code, out = bot.run("snapshots create")
    assert code == 1 and "operator" in out
    code, _ = bot.run("backups verify")
    assert code == 0


def test_a_restarted_bot_resumes_following_and_copies_off(bot, monkeypatch) -> None:
    from bot.engine.follow import ExecutionFollower

    class Crash(BaseException):
        pass

    class Crashing(ExecutionFollower):  # the bot dies while following the create
        def follow_execution(self, ctx, execution_id, *, timeout=None):
            raise Crash

    monkeypatch.setattr(bot.services, "follower", Crashing())
    with pytest.raises(Crash):
        bot.run("snapshots create --no-legacy")
    monkeypatch.undo()
    op = bot.store.list_operations(states=("running",))[0]
    assert op.execution_id and op.kind == "snapshots create"
    bot.dispatcher.operations.reconcile()
    done = bot.store.get_operation(op.id)
    assert done.state == "succeeded", done
    assert len(create_executions(bot.sim)) == 1  # resumed: no second snapshot was started
    assert bot.store.get_copy("production", SID).verified



def test_create_while_maintenance_mode_is_on_reads_the_execution_past_it(make_bot) -> None:
    """QA #32: the bot's sys-admin reads the create execution with X-BYPASS-MAINTENANCE, as `executions list`
    does, instead of claiming that executions cannot be read."""
    bot = make_bot(seed=False)
    client = bot.services.managers["production"]
    assert client.maintenance_activate()["status"] == "activated"
    code, out = bot.run("snapshots create --no-legacy")
    assert code == 0, out
    assert ("production is in maintenance mode, which refuses executions calls; reading the create execution with "
            "X-BYPASS-MAINTENANCE (sys-admin)") in out
    assert "cannot be read" not in out and "watching the snapshot's status instead" not in out
    eid = create_executions(bot.sim)[0]["id"]
    assert f"execution {eid} (create_snapshot) finished" in out, out  # followed: its status and events
    assert "Snapshot created successfully" in out
    assert bot.store.get_copy("production", SID).verified


def test_a_bot_that_died_right_after_the_put_finds_its_execution(bot, monkeypatch) -> None:
    from bot.engine.context import Ctx

    class Crash(BaseException):
        pass

    real = Ctx.remember

    def remember(self, **values):
        if "execution_id" in values:
            raise Crash
        real(self, **values)

    monkeypatch.setattr(Ctx, "remember", remember)
    with pytest.raises(Crash):
        bot.run("snapshots create --no-legacy")
    monkeypatch.undo()
    [op] = bot.store.list_operations(states=("running",))
    bot.dispatcher.operations.reconcile()
    assert bot.store.get_operation(op.id).state == "succeeded"
    assert len(create_executions(bot.sim)) == 1
    assert bot.store.get_copy("production", SID).verified


# --- a kept archive copy is never overwritten (QA #36) ------------------------------------------------------


def file_sha(path: str) -> str:
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def test_a_new_snapshot_never_takes_the_id_of_a_kept_archive_copy(bot) -> None:
    bot.run("snapshots create qa5 --no-legacy")
    kept = bot.store.get_copy("production", "qa5")
    code, out = bot.run("snapshots delete qa5", yes=True)
    assert code == 0 and "kept its archive copy" in out, out
    bot.clock.advance(3600)
    code, out = bot.run("snapshots create qa5 --no-legacy")
    assert code == 1, out
    assert "the archive keeps a copy of snapshot qa5 of production (verified, taken 2026-11-29 09:00 UTC" in out
    assert "it was not created" in out and "`snapshots delete qa5 --archive`" in out, out
    assert "qa5" not in bot.sim.state.snapshots["default_tenant"]  # nothing was created on the manager
    assert file_sha(kept.location) == kept.sha256 and bot.store.get_copy("production", "qa5") == kept
    code, out = bot.run("snapshots delete qa5 --archive", yes=True)  # the hint runs, and then the id is free
    assert code == 0 and "deleted its archive copy" in out, out
    code, out = bot.run("snapshots create qa5 --no-legacy")
    assert code == 0 and "copied off and verified" in out, out


def test_a_download_never_overwrites_a_kept_copy_with_other_content(bot) -> None:
    bot.run("snapshots create dl-1 --no-legacy")
    kept = bot.store.get_copy("production", "dl-1")
    bot.run("snapshots delete dl-1", yes=True)
    bot.clock.advance(3600)
    bot.run("snapshots create other-1 --no-legacy")  # different content, put on the manager under the kept id
    bot.services.managers["production"].upload_snapshot("dl-1", iter([sim_zip(bot.sim, "other-1")]))
    code, out = bot.run("snapshots download dl-1")
    assert code == 1 and "already keeps a verified copy of snapshot dl-1 of production with other content" in out
    assert "A verified copy is never replaced: it was kept, and the new download was removed" in out, out
    assert file_sha(kept.location) == kept.sha256 and bot.store.get_copy("production", "dl-1").sha256 == kept.sha256
    assert archive_files(bot) == ["production/dl-1.zip", "production/other-1.zip"]
    code, out = bot.run("snapshots download other-1")  # the same content again is the same copy: fine
    assert code == 0 and "copied to the archive and verified" in out, out


def test_the_daily_run_takes_the_next_id_when_only_the_archive_keeps_the_days_copy(bot) -> None:
    today = daily(0)  # the day the injected clock says, as the daily run names it
    bot.run(f"snapshots create {today} --no-legacy")  # made by hand, then deleted keeping its copy
    kept = bot.store.get_copy("production", today)
    bot.run(f"snapshots delete {today}", yes=True)
    code, out = bot.run("backups run")
    assert code == 0 and f"Daily backup {today}-2 of production created, copied off and verified" in out, out
    assert f"the archive keeps a copy of {today} that production no longer has" in out
    assert bot.store.get_copy("production", f"{today}-2").sha256 != kept.sha256
    # never overwritten: retention then keeps the newest copy of the day, and says so
    assert f"pruned {today} in the archive: not among the newest 7 daily" in out, out
