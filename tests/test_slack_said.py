"""QA s13 findings 12 and 20 in Slack (the real Bolt app, signed requests, a recording fake Slack): a failed
restore's summary names requester and approver the same way, the follow-up card says who may confirm it, and
its expiry alerts that the manager is still in maintenance mode."""

from __future__ import annotations

import json
from typing import Any

import pytest
from slack_fake_server import ADMIN, ADMIN2, OPERATOR, SECRET, FakeSlack, slack_front
from sim_fixtures import daily

ALERTS = "CALERT1"


@pytest.fixture
def slack(make_bot: Any, fake: FakeSlack) -> Any:
    harness = make_bot(env={"SLACK_BOT_TOKEN": "xoxb-test", "SLACK_SIGNING_SECRET": SECRET,
                            "SLACK_API_URL": fake.api_url, "BOT_ADMINS": f"{ADMIN},{ADMIN2}",
                            "BOT_OPERATORS": OPERATOR, "BOT_ALERT_CHANNEL": ALERTS})
    bot = slack_front(harness.services, harness.dispatcher, fake)
    bot.sim, bot.clock, bot.settings = harness.sim, harness.clock, harness.settings
    yield bot
    bot.close()


def _failed_restore(slack: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    slack.sim.faults.fail_next("restore_snapshot", "pg_restore: could not connect")
    slack.command(f"restore {daily(1)} -f")
    slack.settle(30)
    [op] = [o for o in slack.store.list_operations() if o.kind == "restore"]
    slack.click("confirm", op.id, message_ts=op.slack_ts)
    slack.settle(30)
    slack.click("approve", op.id, user=ADMIN2, message_ts=op.slack_ts)
    slack.settle(60)
    done = slack.store.get_operation(op.id)
    assert done.state == "failed", done
    follow = next(o for o in slack.store.list_operations() if o.kind == "maintenance-mode deactivate")
    return done, follow


def test_the_failed_restore_names_both_people_alike_and_the_follow_up_says_who_confirms(slack: Any,
                                                                                         fake: FakeSlack) -> None:
    done, follow = _failed_restore(slack)
    broadcast = [c.params for c in fake.calls_to("chat.postMessage") if c.params.get("reply_broadcast")][-1]
    assert (f"The restore of {daily(1)} on production FAILED (requested by {ADMIN.lower()}, approved by "
            f"{ADMIN2.lower()}).") in broadcast["text"], broadcast["text"]
    card = next(c.params for c in fake.calls_to("chat.postMessage") if c.params.get("thread_ts") == done.slack_ts
                and "maintenance-mode deactivate" in c.params["text"])
    assert f"Only <@{ADMIN}>, who requested it, can confirm" in json.dumps(card["blocks"])


def test_an_unanswered_deactivation_alerts_in_the_thread_and_the_alert_channel(slack: Any, fake: FakeSlack) -> None:
    from bot.slack import expire_cards

    done, follow = _failed_restore(slack)
    assert slack.sim.state.maintenance["status"] == "activated"
    slack.clock.advance(slack.settings.gate_ttl + 60)
    assert expire_cards(slack.services, slack.front.client, slack.front.outbox,
                        slack.front.dispatcher.operations) == 1
    slack.settle(30)
    said = f"{slack.sim.state.maintenance['status']}"
    text = (f"{follow.id} (maintenance-mode deactivate) expired at {follow.expires_at[11:16]} UTC unanswered: "
            f"production is still in maintenance mode ({said}), so its backups and changes wait; "
            "`maintenance-mode deactivate` ends it.")
    posts = [c.params for c in fake.calls_to("chat.postMessage") if text in c.params["text"]]
    assert {p["channel"] for p in posts} == {"C100", ALERTS}, posts
    assert [p.get("thread_ts") for p in posts if p["channel"] == "C100"] == [done.slack_ts]  # the restore's
    expired = slack.store.get_operation(follow.id)
    assert expired.state == "expired" and expired.error == text
    assert expire_cards(slack.services, slack.front.client, slack.front.outbox,
                        slack.front.dispatcher.operations) == 0
    slack.settle(30)
    assert len([c for c in fake.calls_to("chat.postMessage") if text in c.params["text"]]) == 2  # said once
