"""A 256-character snapshot id works end to end on the simulator; an internal error's traceback goes to the
log file, never to the terminal (QA s13 #7)."""

from __future__ import annotations

import io
import logging


def test_a_256_character_snapshot_id_is_created_copied_off_and_listed(bot) -> None:
    sid = "a" + "b" * 255
    code, out = bot.run(f"snapshots create {sid}", yes=True)
    assert code == 0, out
    assert bot.sim.state.snapshots["default_tenant"][sid]["status"] == "created"
    code, out = bot.run("snapshots list -s 1000")
    assert code == 0 and "internal error" not in out
    code, out = bot.run(f"snapshots show {sid}")
    assert code == 0 and "verified" in out


def test_two_long_ids_sharing_a_start_are_two_files(tmp_path) -> None:
    from simulator.store import ArchiveStore

    store = ArchiveStore(str(tmp_path))
    one, two = "a" * 255 + "1", "a" * 255 + "2"
    assert store.path("default_tenant", one) != store.path("default_tenant", two)
    for sid in (one, two):
        store.commit("default_tenant", sid, store.receive("default_tenant", sid, [sid.encode()]))
    assert store.size("default_tenant", one) == 256 and store.exists("default_tenant", two)


def test_a_traceback_goes_to_the_log_file_and_the_terminal_says_where(tmp_path) -> None:
    from bot.front.cli import terminal_logging

    terminal, path = io.StringIO(), tmp_path / "data" / "cfy-bot.log"
    added = terminal_logging(str(path), stream=terminal)
    try:
        try:
            raise OSError(36, "File name too long")
        except OSError:
            logging.getLogger("bot.engine.outcome").exception("internal error handling invocation inv-1")
    finally:
        for handler in added:
            logging.getLogger().removeHandler(handler)
            handler.close()
    shown = terminal.getvalue()
    assert "internal error handling invocation inv-1" in shown and f"(traceback in {path})" in shown
    assert "Traceback" not in shown and "File name too long" not in shown
    logged = path.read_text()
    assert "Traceback (most recent call last)" in logged and "OSError: [Errno 36] File name too long" in logged
    assert path.stat().st_mode & 0o077 == 0
