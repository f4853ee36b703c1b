"""QA finding 37: `restore … --restore-certificates` without `--no-reboot` - the card both admins decide on says
the snapshot's certificates are restored and the manager reboots; the report says, read back, whether the manager
answered again after the reboot (the simulator's post-restore job reboots: every request refused for a while)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import simulator.workflows as workflows
from commands.common import parse_time
from sim_fixtures import daily
from test_restore_summary import row, summary

SNAP = daily(1)


def card(out: str) -> str:
    """The confirmation card: everything before the operation starts."""
    return out.split("▶", 1)[0]


def restore_of(bot: Any) -> dict[str, Any]:
    [e] = [e for e in bot.sim.state.executions.values() if e["workflow_id"] == "restore_snapshot"]
    return e


def test_card_says_certificates_and_reboot_and_report_reads_the_manager_back(make_bot) -> None:
    bot = make_bot()
    code, out = bot.run(f"restore {SNAP} -f --restore-certificates", yes=True, approver="bob")
    assert code == 0, out
    assert ("The restore also puts the snapshot's certificates in place of the manager's (clients that trust only "
            "the current CA must be given the snapshot's), and the manager REBOOTS a few seconds after the restore "
            "ends (`sudo shutdown -r now`), answering nothing until it is up again; the bot waits for it to answer "
            "again and reports whether it did.") in card(out)
    ended = parse_time(restore_of(bot)["ended_at"])
    assert ended is not None
    block = summary(out, "OK Restore of production succeeded")
    assert block[:3] == ["OK Restore of production succeeded", row("snapshot", SNAP),
                         row("execution", f"{restore_of(bot)['id']} terminated")]
    m = re.fullmatch(row("reboot", r"production stopped answering \(first seen (\S+) UTC, (\d+)s after the restore "
                                   r"ended: the reboot\) and answered again (\S+) UTC \(version 7\.0\.5 read back "
                                   r"(\S+) UTC\)"), block[3])
    assert m, block
    seen, after, back, read = m.groups()
    reboot_at = ended + timedelta(seconds=workflows.POST_RESTORE_DELAY)  # when the simulated VM went down
    assert reboot_at.strftime("%H:%M:%S") <= seen < (reboot_at + timedelta(seconds=5)).strftime("%H:%M:%S")
    assert int(after) == (datetime.strptime(seen, "%H:%M:%S") - datetime.strptime(ended.strftime("%H:%M:%S"),
                                                                                   "%H:%M:%S")).seconds
    up = reboot_at + timedelta(seconds=workflows.REBOOT_SECONDS)  # when it answers again
    assert up.strftime("%H:%M:%S") <= back == read < (up + timedelta(seconds=6)).strftime("%H:%M:%S")


def test_no_reboot_card_says_so_and_the_report_has_no_reboot_line(make_bot) -> None:
    bot = make_bot()
    code, out = bot.run(f"restore {SNAP} -f --restore-certificates --no-reboot", yes=True, approver="bob")
    assert code == 0, out
    assert ("The restore also puts the snapshot's certificates in place of the manager's (clients that trust only "
            "the current CA must be given the snapshot's); --no-reboot: the manager is not rebooted.") in card(out)
    assert "unavailable" not in out and not any(line.startswith("reboot ") for line in out.splitlines())


def test_a_reboot_that_is_not_seen_is_not_claimed(make_bot, monkeypatch) -> None:
    monkeypatch.setattr(workflows, "REBOOT_SECONDS", 0.0)  # the manager never goes down
    bot = make_bot()
    code, out = bot.run(f"restore {SNAP} -f --restore-certificates", yes=True, approver="bob")
    assert code == 0, out
    ended = parse_time(restore_of(bot)["ended_at"])
    assert ended is not None
    [line] = [x for x in out.splitlines() if x.startswith("reboot ")]
    m = re.fullmatch(row("reboot", r"not seen: production answered every read the bot made from the end of the restore "
                                   r"to (\S+) UTC \((.+); version 7\.0\.5\), so whether it has rebooted is not "
                                   r"known"), line)
    assert m, line
    quiet = datetime.strptime(m[1], "%H:%M:%S") - datetime.strptime(ended.strftime("%H:%M:%S"), "%H:%M:%S")
    assert 60 <= quiet.seconds < 66 and m[2] in ("1m", f"1m {quiet.seconds - 60}s")
    assert "unavailable" not in out


def test_the_plain_call_card_says_it_too(make_bot) -> None:
    bot = make_bot()
    code, out = bot.run(f"snapshots restore {SNAP} -f --restore-certificates", yes=True, approver="bob")
    assert code == 0, out
    assert "the manager REBOOTS a few seconds after the restore ends" in card(out)
    assert "Reboot: production stopped answering (first seen" in out


def test_a_manager_that_does_not_answer_again_is_reported_down_and_still_in_maintenance(make_bot) -> None:
    bot = make_bot()
    start = bot.clock.time()
    # from 8 s in (after the card's reads, before the restore ends) the manager's version read gets nginx 502s:
    # the bot's authenticated read-back after the reboot never succeeds
    bot.sim.faults._add("http_error", None, None, path_prefix="/api/version", status=502, start=start + 8)
    code, out = bot.run(f"restore {SNAP} -f --restore-certificates", yes=True, approver="bob")
    assert code != 0, out
    assert "WARNING production does not answer after the restore (http://production.test 502 Bad Gateway): " \
           "the reboot; waiting for it to answer again" in out
    assert ("the restore ended terminated, but production has not answered again after the reboot: not in the 15m "
            "the bot waited since it stopped answering (first seen 09:00:" in out), out
    assert "It is still in maintenance mode; check the VM, then run `maintenance-mode deactivate`" in out
    assert bot.sim.state.maintenance["status"] == "activated"
