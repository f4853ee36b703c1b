"""`snapshots create` in Slack: progress as thread replies under one parent, the result broadcast."""

from __future__ import annotations

from typing import Any

import pytest
from slack_fake_server import ADMIN, OPERATOR, FakeSlack, make_slack_bot

from bot.archive.folder import open_archive
from bot.cloudify import Manager, wsgi_transport
from bot.spec.registry import REGISTRY
from simulator import Simulator


@pytest.fixture
def slack(tmp_path: Any, clock: Any) -> Any:
    import commands  # noqa: F401 - registers every command

    fake = FakeSlack().start()
    bot = make_slack_bot(tmp_path, clock, REGISTRY, fake=fake)
    sim = Simulator(now=clock.time, sleep=clock.sleep, users={"admin": "pw-x"}, data_dir=str(tmp_path / "sim"))
    settings = bot.services.settings
    bot.services.managers["production"] = Manager(settings.manager("production"),
                                                  transport=wsgi_transport({"production.test": sim.wsgi}),
                                                  clock=clock)
    bot.services.archive = open_archive(settings, bot.services.store, clock)
    bot.sim = sim
    yield bot
    bot.close()
    fake.stop()


def test_create_reports_in_a_thread_and_broadcasts_the_result(slack: Any) -> None:
    slack.command("snapshots create weekly-1 --no-legacy", user=OPERATOR)
    slack.settle()
    parent, *replies = slack.fake.calls_to("chat.postMessage")
    [op] = slack.store.list_operations()
    assert op.state == "succeeded" and op.execution_id
    assert all(r.params["thread_ts"] == op.slack_ts for r in replies)
    texts = "\n".join(r.params["text"] for r in replies)
    for line in ("creating snapshot weekly-1 on production", "Creating snapshot `weekly-1`",
                 "verified the copy of weekly-1"):
        assert line in texts, texts
    final = replies[-1].params
    assert final["reply_broadcast"] is True and "Snapshot weekly-1 created on production, copied off" in final["text"]
    assert slack.store.get_copy("production", "weekly-1").verified


def test_delete_posts_a_gate_card_naming_what_goes(slack: Any) -> None:
    slack.command("snapshots create weekly-2 --no-legacy", user=OPERATOR)
    slack.settle()
    slack.command("snapshots delete weekly-2 --archive", user=ADMIN)
    slack.settle()
    card = slack.fake.calls_to("chat.postMessage")[-1].params
    text = str(card.get("text", "")) + str(card.get("blocks", ""))
    assert "delete snapshot weekly-2 of production" in text and "will be deleted too" in text
    assert "weekly-2" in slack.sim.state.snapshots["default_tenant"]  # nothing happens before the click
