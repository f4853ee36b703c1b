"""Incidents in the terminal (the terminal is the room): start, note, status card, close with timeline and
Markdown export, and `restore … --incident`."""

from __future__ import annotations

from pathlib import Path

from bot.recovery import incidents as inc
from bot.recovery.chatport import TerminalChat
from sim_fixtures import daily

SNAP = f"{daily(1)}"
INC = "inc-20261129-db-nodes-down"


def test_names_are_what_slack_accepts() -> None:
    from datetime import UTC, datetime

    day = datetime(2026, 11, 29, tzinfo=UTC)
    assert inc.channel_name("DB nodes down!", day) == INC
    assert inc.channel_name("Ünïcode & émoji 🔥 — restore", day) == "inc-20261129-n-code-moji-restore"
    assert inc.channel_name("???", day, attempt=2) == "inc-20261129-incident-2"
    long = inc.channel_name("x" * 300, day, attempt=12)
    assert len(long) == 80 and long.endswith("-12")


def test_start_note_status_close_in_the_terminal(make_bot) -> None:
    bot = make_bot(env={"BOT_SHELL_ROLE": "operator"})
    code, out = bot.run("incident start DB nodes down")
    assert code == 0, out
    assert f"Incident {INC} on production runs here: this terminal is the room." in out
    for needed in ("manager", "cluster                 OK: Every node answers",
                   "newest verified backup  NONE", "running operations      none", "state                   open"):
        assert needed in out, needed
    code, out = bot.run("incident start another one")
    assert code == 1 and f"incident {INC} is open in the terminal; close it first (`incident close -i {INC}`)" in out
    bot.clock.advance(60)
    code, out = bot.run("incident note db-2 disk full, cleaning up", user="bob")
    assert code == 0 and f"Noted in incident {INC} (production): db-2 disk full" in out
    bot.run("snapshots list")
    rid = "rb-" + bot.run("runbook node-down")[1].split("(rb-", 1)[1].split(")", 1)[0]
    bot.run(f"runbook done {rid} 1 removed db-2", user="bob")
    bot.run("incident status")
    bot.clock.advance(600)
    code, out = bot.run("incident close db-2 replaced, cluster healthy")
    assert code == 0, out
    assert f"Incident {INC} on production closed by alice: db-2 replaced, cluster healthy." in out
    lines = out.split("Timeline (", 1)[1].splitlines()[1:]
    whats = [line.split(": ", 1)[1] for line in lines if line[:2].isdigit()]
    assert whats == [
        "opened the incident (terminal): DB nodes down",
        f"incident start on production ended failed: incident {INC} is open in the terminal; close it first "
        f"(`incident close -i {INC}`)",  # a refusal is a fact of the incident (usage errors were not recorded)
        "noted: db-2 disk full, cleaning up",
        "ran `snapshots list`", f"started runbook node-down ({rid})",
        f"runbook {rid} step 1 done: removed db-2", "closed the incident: db-2 replaced, cluster healthy"]
    assert lines[0].startswith("09:00:00 alice: opened") and lines[2].startswith("09:01:00 bob: noted")
    path = Path(out.split("Markdown export: ", 1)[1].strip())
    text = path.read_text()
    assert text.startswith(f"# Incident {INC}: DB nodes down\n")
    assert "- Closed: 2026-11-29 09:11:00 by alice" in text and "- Summary: db-2 replaced, cluster healthy" in text
    assert "| 2026-11-29 09:01:00 | bob | noted: db-2 disk full, cleaning up |" in text
    code, out = bot.run("incident close again")
    assert code == 1 and "no incident is open in the terminal; name one with `-i INCIDENT_ID`" in out
    assert "Usage error" not in out  # the text was valid: what was asked did not happen (README's exit codes)
    code, out = bot.run(f"incident close -i {INC}")
    assert code == 0 and "closed already" in out  # what was asked is so already
    code, out = bot.run(f"incident note -i {INC} too late")
    assert code == 1 and "is closed; notes go to an open incident" in out
    code, out = bot.run("incident note too late")
    assert code == 1
    code, out = bot.run("incident start DB nodes down")  # the same title later that day: a new name
    assert code == 0 and f"{INC}-2" in out


def test_operators_only_and_viewers_see_the_card(make_bot) -> None:
    bot = make_bot(env={"BOT_SHELL_ROLE": "viewer", "BOT_OPERATORS": "shell:olga"})
    code, out = bot.run("incident start nope")
    assert code == 1 and "operator" in out
    assert bot.run("incident start DB nodes down", user="olga")[0] == 0
    code, out = bot.run("incident status")
    assert code == 0 and f"Incident {INC}: DB nodes down" in out
    assert bot.run("incident note hi")[0] == 1


def test_the_card_names_the_newest_verified_backup_and_running_operations(make_bot) -> None:
    bot = make_bot()
    assert bot.run(f"snapshots download {SNAP}")[0] == 0
    from bot.core import Invocation
    from bot.front.shell import shell_actor

    inv = Invocation(f"restore {SNAP} -f", shell_actor("alice"), "terminal", "shell", bot.clock.now())
    assert bot.dispatcher.handle(inv).gate == "confirm"  # left waiting for confirmation
    code, out = bot.run("incident start restore needed")
    assert f"newest verified backup  {SNAP} (" in out and " old)" in out
    assert "running operations      op-" in out and "restore pending" in out


def test_restore_with_incident_in_the_terminal(make_bot) -> None:
    bot = make_bot()
    code, out = bot.run(f"restore {SNAP} -f --incident", yes=True, approver="bob")
    assert code == 0, out
    name = f"inc-20261129-restore-{SNAP}-on-production"
    assert f"incident {name} opened: this terminal" in out
    record = inc.get(bot.store, name)
    [op] = [o for o in bot.store.list_operations() if o.kind == "restore"]
    assert record["kind"] == "restore" and record["operation_id"] == op.id and record["mode"] == "terminal"
    assert op.journal["incident_id"] == name
    code, out = bot.run("incident close restored")
    assert code == 0, out
    assert f"{op.id}: verified: production is in maintenance mode (activated)" in out
    assert f"restore {op.id} on production ended succeeded" in out


def test_terminal_chat_has_no_channels() -> None:
    import pytest

    from bot.recovery.chatport import NoChannels

    chat = TerminalChat()
    with pytest.raises(NoChannels):
        chat.create_channel("inc-x")
    assert chat.link("terminal") == "this terminal"
