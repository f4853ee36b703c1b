"""`@cfy-bot COMMAND` in a channel: the real Bolt app fed signed Events API requests, Slack replaced by FakeSlack."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from slack_fake_server import ADMIN, SECRET, VIEWER, FakeSlack, make_slack_bot
from test_slack_app import REG, buttons, ops

from bot.slack.fake import event_callback, mention_event, post, send_event, signed_headers
from bot.slack.mention import mention_request


@pytest.fixture
def slack(tmp_path: Any, clock: Any, fake: FakeSlack) -> Any:
    bot = make_slack_bot(tmp_path, clock, REG, fake=fake)
    yield bot
    bot.close()


def mention(slack: Any, text: str, *, retry: int = 0, body: dict[str, Any] | None = None, **event: Any
            ) -> dict[str, Any]:
    """Send `<@UBOT> text` as a signed app_mention event (or `body` again); returns the body sent."""
    body = body or event_callback(mention_event(f"<@UBOT> {text}".rstrip(), **event))
    assert send_event(slack.url, SECRET, body, retry=retry) == (200, "")
    return body


def posts(slack: Any) -> list[dict[str, Any]]:
    return [c.params for c in slack.fake.calls_to("chat.postMessage")]


def test_a_quick_command_is_answered_in_the_mentions_thread(slack: Any) -> None:
    body = mention(slack, "echo hello &amp; bye", user=ADMIN, channel="C200", ts="1764000000.000100")
    mention(slack, "ping", user=ADMIN, channel="C200", ts="1764000000.000300", thread_ts="1764000000.000200")
    slack.settle()
    first, second = posts(slack)
    assert (first["channel"], first["thread_ts"]) == ("C200", body["event"]["ts"])
    assert "you said: hello &amp; bye" in first["text"]
    assert (second["thread_ts"], "pong" in second["text"]) == ("1764000000.000200", True)  # a mention in a thread
    assert slack.fake.calls_to("response_url") == [] and ops(slack) == []
    [row] = [r for r in slack.store.query_audit(command="echo") if r["event"] == "invoke"]
    assert row["actor"] == f"slack:{ADMIN}" and row["channel"] == "C200"


def test_an_empty_mention_answers_with_the_help(slack: Any) -> None:
    mention(slack, "", user=VIEWER)
    slack.settle()
    [answer] = posts(slack)
    assert "Commands you can run" in answer["text"] and "ping" in answer["text"] and "drop" not in answer["text"]
    assert "need a higher role" in answer["text"]  # what this viewer may run, as `/cfy` shows it


def test_a_gated_command_posts_its_card_and_the_confirm_click_runs_it(slack: Any) -> None:
    body = mention(slack, "drop snap-1", user=ADMIN)
    slack.settle()
    [op] = ops(slack)
    [card] = posts(slack)
    assert op.requester == f"slack:{ADMIN}" and op.state == "pending" and op.slack_ts
    assert "thread_ts" not in card and card["channel"] == "C100"  # in the channel, as /cfy posts it
    assert set(buttons(slack.fake.calls_to("chat.postMessage")[0])) == {"cfy_confirm", "cfy_cancel"}
    assert body["event"]["ts"] != op.slack_ts
    slack.click("confirm", op.id, user=ADMIN, message_ts=op.slack_ts)
    slack.settle()
    assert slack.store.get_operation(op.id).state == "succeeded"
    assert "succeeded" in slack.fake.calls_to("chat.update")[-1].params["text"]
    assert any(p.get("thread_ts") == op.slack_ts and p.get("reply_broadcast") for p in posts(slack))


def test_a_viewer_asking_for_an_admin_command_is_told_as_with_cfy(slack: Any) -> None:
    mention(slack, "drop snap-1", user=VIEWER, ts="1764000000.000500")
    slack.command("drop snap-1", user=VIEWER)
    slack.settle()
    [answer] = posts(slack)
    [private] = slack.responses(f"cmd-{VIEWER}")
    assert answer["thread_ts"] == "1764000000.000500" and ops(slack) == []
    assert "needs the admin role" in answer["text"] and answer["text"] == private["text"]


def test_mentions_by_bots_and_edits_do_nothing(slack: Any) -> None:
    mention(slack, "ping", user="UBOT", bot_id="BBOT")  # the bot's own message
    mention(slack, "drop snap-1", user="UOTHER", bot_id="BOTHER")  # another bot
    mention(slack, "ping", user=ADMIN, edited=True)
    slack.settle()
    assert posts(slack) == [] and ops(slack) == [] and slack.store.query_audit() == []


def test_a_retried_delivery_runs_once(slack: Any) -> None:
    body = mention(slack, "drop snap-1", user=ADMIN)
    mention(slack, "", body=body, retry=1)  # Slack did not see the ack in time and sends the same event again
    threads = [threading.Thread(target=mention, args=(slack, ""), kwargs={"body": body, "retry": 2})
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    slack.settle()
    assert len(ops(slack)) == 1 and len(posts(slack)) == 1
    assert len([r for r in slack.store.query_audit() if r["event"] == "invoke"]) == 1


def test_the_event_url_answers_slacks_challenge(slack: Any) -> None:
    raw = json.dumps({"token": "legacy", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
                      "type": "url_verification"})
    status, text = post(slack.url, raw, {**signed_headers(SECRET, raw), "Content-Type": "application/json"})
    assert status == 200 and "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" in text


@pytest.mark.parametrize(("text", "command"), [
    ("<@UBOT> snapshots list", "snapshots list"), ("<@UBOT|cfy-bot>   status -m prod", "status -m prod"),
    ("<@UBOT>: help", "help"), ("<@UBOT>", ""), ("  <@W0ENTERPRISE> ping <@U2>", "ping <@U2>"),
])
def test_the_leading_mention_is_taken_off(text: str, command: str) -> None:
    request = mention_request(event_callback(mention_event(text, user="U1", channel="C9", ts="1.000002")))
    assert request == {"text": command, "user_id": "U1", "user_name": "", "channel_id": "C9", "response_url": "",
                       "thread_ts": "1.000002", "key": "C9:1.000002"}


def test_handled_mentions_are_forgotten_after_a_day_and_nothing_else_is(slack: Any, clock: Any) -> None:
    """The marks that stop a redelivery from running twice do not pile up; other marks (runbooks, incidents,
    the scheduler's) are kept."""
    mention(slack, "ping", user=ADMIN)
    slack.settle()
    slack.store.set_mark("runbook-run:r1", "{}")
    slack.store.set_mark("slack-mentions-seen", "7")  # shares the start of the key, not the prefix
    assert slack.front.forget_old_mentions() == 0  # too recent: Slack may still deliver it again
    clock.advance(25 * 3600)
    assert slack.front.forget_old_mentions() == 1
    assert slack.store.get_mark("runbook-run:r1") == "{}" and slack.store.get_mark("slack-mentions-seen") == "7"
