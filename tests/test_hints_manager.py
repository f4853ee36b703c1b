"""Every hint runs as printed against the same manager: `-m NAME` when it is not the default (QA s13 #28)."""

from __future__ import annotations


def _staging(make_bot):
    return make_bot(managers=("production", "staging"))


def test_a_failed_snapshot_on_staging_points_at_staging_s_list(make_bot) -> None:
    bot = _staging(make_bot)
    snaps = bot.sims["staging"].state.snapshots["default_tenant"]
    sid = sorted(snaps)[0]
    snaps[sid]["status"] = "failed"
    snaps[sid]["error"] = "boom"
    code, out = bot.run(f"restore {sid} -f -m staging", yes=True)
    assert code == 1 and "Pick another with `snapshots list -m staging`." in out, out


def test_latest_without_a_copy_names_the_create_for_that_manager(make_bot) -> None:
    bot = _staging(make_bot)
    code, out = bot.run("restore latest -f -m staging", yes=True)
    assert code == 1 and "take one with `snapshots create -m staging`" in out, out
    code, out = bot.run("restore latest -f", yes=True)
    assert "take one with `snapshots create` or" in out


def test_upload_of_a_copy_the_archive_lacks_names_the_manager(make_bot) -> None:
    bot = _staging(make_bot)
    code, out = bot.run("snapshots upload nosuch --from-archive -m staging")
    assert code == 1 and "`snapshots list -m staging` shows which snapshots have one" in out, out


def test_no_drills_yet_names_the_source(make_bot) -> None:
    bot = _staging(make_bot)
    code, out = bot.run("backups drills -m staging")
    assert code == 0 and "`backups drill latest -m staging` runs one" in out, out
