"""Access control through the dispatcher: roles, grants by user, group, channel and manager, help, denials."""

from __future__ import annotations

from typing import Any

import pytest

from bot.core import Actor, Invocation
from bot.engine.policy import Policy
from sim_fixtures import daily

CONTACT = "#cloudify-access (ask @dana)"


def slack(bot: Any, text: str, user: str = "U1", channel: str = "COPS", name: str = "") -> Any:
    """Run `text` as Slack user `user` in `channel`; the dispatcher's Outcome."""
    actor = Actor(f"slack:{user}", name or user.lower(), "slack")
    inv = Invocation(text=text, actor=actor, channel=channel, transport="slack", received_at=bot.clock.now())
    return bot.dispatcher.handle(inv)


def decide(bot: Any, op_id: str, user: str, action: str, channel: str = "COPS") -> Any:
    actor = Actor(f"slack:{user}", user.lower(), "slack")
    return bot.dispatcher.decide(op_id, actor, action, channel=channel, transport="slack")


def gated(bot: Any, text: str, user: str, channel: str = "COPS") -> bool:
    """True when `text` reached its gate (allowed); the operation is then rejected so the manager stays free."""
    out = slack(bot, text, user=user, channel=channel)
    if out.gate is None:
        return False
    assert decide(bot, out.operation.id, user, "reject", channel=channel).exit_code == 0
    return True


def rows(bot: Any, event: str) -> list[dict]:
    return bot.store.query_audit(event=event, limit=100)


def help_commands(outcome: Any) -> set[str]:
    assert outcome.exit_code == 0, outcome.reply.text
    return {row[0] for row in outcome.reply.table.rows}


ENV = {"BOT_ADMINS": "UADMIN,UADMIN2", "BOT_OPERATORS": "UOPER", "BOT_ACCESS_CONTACT": CONTACT}


@pytest.fixture
def team(make_bot):
    return make_bot(env=ENV)


# --- roles from the environment ------------------------------------------------------------------------


def test_anyone_unlisted_is_a_viewer_and_deny_is_the_default_above(team) -> None:
    assert slack(team, "snapshots list", user="USTRANGER").exit_code == 0
    out = slack(team, "maintenance-mode deactivate", user="USTRANGER")
    assert out.exit_code == 1 and out.reply.title == "Not allowed"
    assert out.reply.text == (f"`maintenance-mode deactivate` needs the admin role (you are viewer on production); "
                              f"ask {CONTACT}")
    out = slack(team, "snapshots create", user="USTRANGER")
    assert "needs the operator role (you are viewer on production)" in out.reply.text
    assert team.store.list_operations() == []


def test_operator_and_admin(team) -> None:
    assert "needs the admin role (you are operator" in slack(team, "maintenance-mode deactivate",
                                                                 user="UOPER").reply.text
    out = slack(team, "maintenance-mode deactivate", user="UADMIN")
    assert out.exit_code == 0 and out.gate == "confirm"
    code = slack(team, "snapshots create nightly-op", user="UOPER").exit_code
    assert code == 0 and team.store.get_copy("production", "nightly-op").verified


def test_a_denial_is_audited_with_who_where_what_and_the_role_needed(team) -> None:
    slack(team, "restore latest", user="UOPER", channel="COPS")
    [row] = rows(team, "denied")
    assert (row["actor"], row["transport"], row["channel"], row["manager"], row["command"]) == (
        "slack:UOPER", "slack", "COPS", "production", "restore")
    assert row["detail"]["needed"] == "admin role" and CONTACT in row["detail"]["reason"]
    assert team.store.verify_audit().ok


def test_denied_commands_change_nothing_on_the_manager(team) -> None:
    before = len(team.sim.state.executions)
    slack(team, "maintenance-mode activate", user="UOPER")
    slack(team, f"snapshots delete {daily(1)} ", user="UOPER")
    assert len(team.sim.state.executions) == before
    assert team.store.list_operations() == []


# --- user groups -----------------------------------------------------------------------------------------


def test_grants_to_a_user_group(make_bot) -> None:
    bot = make_bot(env={"BOT_ADMINS": "SADMINS", "BOT_OPERATORS": "SOPS"})
    members = {"SADMINS": {"UANA"}, "SOPS": {"UBEN", "UANA"}}
    asked: list[str] = []

    def groups_of(user: str) -> set[str]:
        asked.append(user)
        return {g for g, users in members.items() if user in users}

    bot.services.policy = Policy(bot.settings, groups_of)
    assert gated(bot, "maintenance-mode deactivate", user="UANA")
    assert "needs the admin role (you are operator" in slack(bot, "maintenance-mode deactivate",
                                                             user="UBEN").reply.text
    assert "you are viewer" in slack(bot, "maintenance-mode deactivate", user="UCAL").reply.text
    assert asked and set(asked) <= {"UANA", "UBEN", "UCAL"}  # asked by bare Slack id
    members["SADMINS"].discard("UANA")  # the Slack front end's cache expired: membership is read again
    assert "you are operator" in slack(bot, "maintenance-mode deactivate", user="UANA").reply.text


def test_shell_users_never_match_slack_grants(make_bot) -> None:
    bot = make_bot(env={"BOT_ADMINS": "UADMIN,SADMINS", "BOT_SHELL_ROLE": "viewer"})
    bot.services.policy = Policy(bot.settings, lambda user: {"SADMINS"})
    code, out = bot.run("maintenance-mode deactivate", user="UADMIN")  # a terminal login named like a Slack id
    assert code == 1 and "needs the admin role (you are viewer" in out


# --- channels and managers -----------------------------------------------------------------------------


def test_bot_channels_refuses_commands_elsewhere_and_audits_it(make_bot) -> None:
    bot = make_bot(env={**ENV, "BOT_CHANNELS": "COPS,CINFRA"})
    assert slack(bot, "status", user="UADMIN", channel="CINFRA").exit_code == 0
    for text in ("status", "help", "", "snapshots list --help"):
        out = slack(bot, text, user="UADMIN", channel="CRANDOM")
        assert out.exit_code == 1, text
        assert "not allowed in this channel" in out.reply.text and "<#COPS>, <#CINFRA>" in out.reply.text
    denied = rows(bot, "denied")
    assert len(denied) == 4 and {r["channel"] for r in denied} == {"CRANDOM"}
    code, _out = bot.run("status")  # the terminal is not a Slack channel
    assert code == 0


def test_grants_limited_to_channels_and_managers(make_bot, tmp_path) -> None:
    config = tmp_path / "bot.toml"
    config.write_text('[[grants]]\nuser = "UKIM"\nrole = "admin"\nchannels = ["COPS"]\n\n'
                      '[[grants]]\ngroup = "SSTAGING"\nrole = "admin"\nmanagers = ["staging"]\n\n'
                      '[[grants]]\nuser = "ULEE"\nrole = "operator"\nchannels = ["COPS"]\nmanagers = ["production"]\n')
    bot = make_bot(managers=("production", "staging"), env={"BOT_CONFIG": str(config), "BOT_ACCESS_CONTACT": CONTACT})
    bot.services.policy = Policy(bot.settings, lambda user: {"SSTAGING"} if user == "UJO" else set())
    assert gated(bot, "maintenance-mode deactivate -m staging", user="UKIM", channel="COPS")
    out = slack(bot, "maintenance-mode deactivate -m staging", user="UKIM", channel="CGENERAL")
    assert "you are viewer on staging" in out.reply.text
    assert gated(bot, "maintenance-mode deactivate -m staging", user="UJO", channel="CGENERAL")
    out = slack(bot, "maintenance-mode deactivate", user="UJO", channel="CGENERAL")
    assert out.reply.text == ("`maintenance-mode deactivate` needs the admin role (you are viewer on production; "
                              f"you may run it on staging with -m); ask {CONTACT}")
    assert slack(bot, "snapshots create lee-1", user="ULEE", channel="COPS").exit_code == 0
    assert "you are viewer on staging" in slack(bot, "snapshots create lee-2 -m staging", user="ULEE",
                                                channel="COPS").reply.text
    assert "you are viewer on production" in slack(bot, "snapshots create lee-3", user="ULEE",
                                                   channel="CGENERAL").reply.text
    # `audit` is about no manager: a grant limited to managers does not reach it, one limited to channels does
    assert slack(bot, "audit", user="UJO", channel="CGENERAL").exit_code == 1
    assert slack(bot, "audit", user="UKIM", channel="COPS").exit_code == 0


def test_bot_viewers_restricts_who_may_use_the_bot_at_all(make_bot) -> None:
    bot = make_bot(env={**ENV, "BOT_VIEWERS": "UVIEW"})
    assert slack(bot, "status", user="UVIEW").exit_code == 0
    assert slack(bot, "status", user="UOPER").exit_code == 0
    for text in ("status", "help", ""):
        out = slack(bot, text, user="UNOBODY")
        assert out.exit_code == 1 and "no role" in out.reply.text and CONTACT in out.reply.text, text


# --- help ---------------------------------------------------------------------------------------------


def test_help_lists_only_what_the_asker_may_run(team) -> None:
    everything = {c.name for c in team.services.registry.all()}
    viewer = help_commands(slack(team, "help", user="USTRANGER"))
    operator = help_commands(slack(team, "help", user="UOPER"))
    admin = help_commands(slack(team, "", user="UADMIN"))
    assert admin == everything
    assert viewer < operator < admin
    assert {"status", "snapshots list", "help"} <= viewer
    assert not viewer & {"snapshots create", "snapshots delete", "restore", "audit", "maintenance-mode activate"}
    assert "snapshots create" in operator and not operator & {"restore", "audit", "snapshots delete"}
    out = slack(team, "help", user="USTRANGER")
    assert out.reply.table.note == f"{len(everything - viewer)} more commands need a higher role."
    group = slack(team, "help snapshots", user="USTRANGER").reply.text
    assert "snapshots list" in group and "snapshots create" not in group and "snapshots delete" not in group


def test_help_follows_channel_and_manager_grants(make_bot, tmp_path) -> None:
    config = tmp_path / "bot.toml"
    config.write_text('[[grants]]\nuser = "UKIM"\nrole = "admin"\nchannels = ["COPS"]\n\n'
                      '[[grants]]\nuser = "UJO"\nrole = "admin"\nmanagers = ["staging"]\n')
    bot = make_bot(managers=("production", "staging"), env={"BOT_CONFIG": str(config)})
    in_ops = help_commands(slack(bot, "help", user="UKIM", channel="COPS"))
    elsewhere = help_commands(slack(bot, "help", user="UKIM", channel="CGENERAL"))
    assert "restore" in in_ops and "audit" in in_ops
    assert "restore" not in elsewhere and "audit" not in elsewhere
    staging_admin = help_commands(slack(bot, "help", user="UJO"))
    assert "restore" in staging_admin  # runnable with -m staging
    assert "audit" not in staging_admin  # not about a manager, so a manager grant does not cover it


def test_the_shell_acts_as_shell_user_with_bot_shell_role(make_bot, monkeypatch) -> None:
    from bot.front.shell import shell_actor

    monkeypatch.setenv("USER", "carol")
    assert shell_actor() == Actor("shell:carol", "carol", "shell")
    bot = make_bot(env={"BOT_SHELL_ROLE": "viewer", "BOT_ADMINS": "shell:bob"})
    code, out = bot.run("maintenance-mode deactivate", user="carol")
    assert code == 1 and "needs the admin role (you are viewer on production)" in out
    code, out = bot.run("help", user="carol")
    assert "maintenance-mode status" in out and "maintenance-mode deactivate" not in out
    code, out = bot.run("maintenance-mode deactivate", user="bob", yes=True)
    assert code == 0, out
    [row] = rows(bot, "denied")
    assert (row["actor"], row["transport"], row["channel"]) == ("shell:carol", "shell", "terminal")


def test_shell_role_defaults_to_viewer_and_demo_is_admin(tmp_path) -> None:
    from bot.config import load_settings
    from bot.front.demo import make_demo
    from bot.settings import ManagerSettings

    m = ManagerSettings(name="p", urls=("http://p.test",), password="secret-pw")
    assert load_settings({"BOT_DATA_DIR": str(tmp_path)}, managers=(m,)).shell_role == "viewer"
    demo = make_demo({})
    try:
        assert demo.settings.shell_role == "admin"
    finally:
        demo.close()


# --- gates are authorized again on every click ---------------------------------------------------------


def _pending_restore(bot: Any) -> str:
    out = slack(bot, f"restore {daily(1)} -f", user="UADMIN")
    assert out.gate == "confirm", out.reply.text
    return out.operation.id


def test_only_the_requester_confirms_and_only_a_second_admin_approves(team) -> None:
    op_id = _pending_restore(team)
    out = decide(team, op_id, "UADMIN2", "confirm")
    assert out.exit_code == 1 and "only the requester" in out.reply.text
    assert decide(team, op_id, "UADMIN", "confirm").gate == "approve"
    out = decide(team, op_id, "UADMIN", "approve")
    assert "a second admin must approve" in out.reply.text
    out = decide(team, op_id, "UOPER", "approve")
    assert "needs the admin role (you are operator on production" in out.reply.text
    assert team.store.get_operation(op_id).state == "pending"
    events = [(r["event"], r["actor"], r["detail"].get("decision")) for r in reversed(
        team.store.query_audit(operation_id=op_id, limit=50))]
    assert events[:6] == [("gate_shown", "slack:UADMIN", None), ("denied", "slack:UADMIN2", "confirm"),
                          ("gate_answered", "slack:UADMIN", "confirm"), ("gate_shown", "slack:UADMIN", None),
                          ("denied", "slack:UADMIN", "approve"), ("denied", "slack:UOPER", "approve")]


def test_a_gate_clicked_from_a_refused_channel_is_denied(make_bot) -> None:
    bot = make_bot(env={**ENV, "BOT_CHANNELS": "COPS"})
    op_id = _pending_restore(bot)
    out = decide(bot, op_id, "UADMIN", "confirm", channel="CELSEWHERE")
    assert out.exit_code == 1 and "not allowed in this channel" in out.reply.text


def test_who_may_reject_or_cancel(team) -> None:
    op_id = _pending_restore(team)
    out = decide(team, op_id, "UOPER", "reject")
    assert out.exit_code == 1 and "only the requester (uadmin) or an admin of production" in out.reply.text
    assert rows(team, "denied")[0]["detail"]["decision"] == "reject"
    assert decide(team, op_id, "UADMIN2", "reject").exit_code == 0
    assert team.store.get_operation(op_id).state == "cancelled"


def test_a_running_operation_is_cancelled_only_by_its_requester_or_an_admin(team) -> None:
    op = team.store.create_operation(kind="maintenance-mode activate", manager="production", requester="slack:UOPER",
                                     requester_name="oper", channel="COPS", transport="slack", state="running")
    out = decide(team, op.id, "USTRANGER", "cancel")
    assert out.exit_code == 1 and out.reply.title == "Not allowed"
    assert not team.store.get_operation(op.id).cancel_requested
    assert decide(team, op.id, "UOPER", "cancel").exit_code == 0
    assert team.store.get_operation(op.id).cancel_requested == "slack:UOPER"


def test_system_actors_are_admins(team) -> None:
    policy = team.services.policy
    assert policy.role(Actor("system:scheduler", "scheduler", "system"), "", "production") == "admin"


def test_a_grant_on_one_manager_lets_its_holder_use_the_bot_when_viewers_are_restricted(make_bot, tmp_path) -> None:
    config = tmp_path / "bot.toml"
    config.write_text('[[grants]]\nuser = "UJO"\nrole = "admin"\nmanagers = ["staging"]\n')
    bot = make_bot(managers=("production", "staging"), env={"BOT_CONFIG": str(config), "BOT_VIEWERS": "UVIEW"})
    for text in ("help", "operations", "status -m production"):
        assert slack(bot, text, user="UJO").exit_code == 0, text
    assert "you are viewer on production" in slack(bot, "restore latest", user="UJO").reply.text
    assert "no role" in slack(bot, "help", user="UNOBODY").reply.text
