"""Throttling, coalescing, rate limits and Web API errors: what the bot sends when Slack is slow or says no."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from slack_fake_server import ADMIN, OPERATOR, FakeSlack, make_slack_bot
from test_slack_app import REG, RELEASE, buttons, ops

from bot.clock import FakeClock
from bot.settings import Settings
from bot.slack import Outbox, make_client

POST, EDIT = 1.0, 3.0  # the outbox's real intervals: on its FakeClock they pass at once


class Timed:
    """The Web API client, noting on the outbox's clock when each method is called: (method, channel, time)."""

    def __init__(self, client: Any, clock: FakeClock) -> None:
        self.client, self.clock, self.sent = client, clock, []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.client, name)

        def call(**kwargs: Any) -> Any:
            self.sent.append((name, kwargs.get("channel"), self.clock.monotonic()))
            return method(**kwargs)

        return call

    def times(self, method: str, channel: str = "C1") -> list[float]:
        return [at for name, ch, at in list(self.sent) if name == method and ch == channel]


def timed_client(fake: FakeSlack) -> Timed:
    return Timed(make_client(Settings(managers=(), data_dir="", db_path="", archive_dir="",
                                      slack_bot_token="xoxb-test", slack_api_url=fake.api_url)), FakeClock())


@pytest.fixture
def client(fake: FakeSlack) -> Timed:
    return timed_client(fake)


@pytest.fixture
def outbox(client: Timed) -> Any:
    box = Outbox(client, post_interval=POST, edit_interval=EDIT, clock=client.clock)
    yield box
    box.close()


@pytest.fixture
def slack(tmp_path: Any, clock: Any, fake: FakeSlack) -> Any:
    bot = make_slack_bot(tmp_path, clock, REG, fake=fake)
    yield bot
    bot.close()


def test_posts_are_one_per_interval_per_channel(outbox: Outbox, client: Timed, fake: FakeSlack) -> None:
    for i in range(4):
        outbox.post("C1", f"one-{i}")
        outbox.post("C2", f"two-{i}")
    assert outbox.drain(5)
    for channel in ("C1", "C2"):
        calls = [c for c in fake.calls_to("chat.postMessage") if c.params["channel"] == channel]
        assert [c.params["text"][-1] for c in calls] == ["0", "1", "2", "3"]  # in order
        at = client.times("chat_postMessage", channel)
        assert min(b - a for a, b in zip(at, at[1:], strict=False)) >= POST
    first = {ch: client.times("chat_postMessage", ch)[0] for ch in ("C1", "C2")}
    assert abs(first["C1"] - first["C2"]) < 2.5 * POST  # one channel does not wait behind another's four


def test_edits_are_coalesced_and_the_final_state_always_lands(outbox: Outbox, client: Timed,
                                                              fake: FakeSlack) -> None:
    msg = outbox.post("C1", "parent")
    assert outbox.drain(5)
    for step in ("step 0", "step 1"):
        outbox.edit(msg, step)
        assert outbox.drain(5)
    first, second = client.times("chat_update")
    assert second - first >= EDIT  # one edit of a message per interval
    fake.paused.clear()  # Slack hangs on the next edit, so everything asked for meanwhile waits behind it
    try:
        outbox.edit(msg, "step 2")
        assert fake.wait_for(lambda f: f.waiting > 0)
        for i in range(3, 21):
            outbox.edit(msg, f"step {i}")
        outbox.edit(msg, "done", final=True)
        outbox.edit(msg, "stale step")  # older news than the final state: ignored
    finally:
        fake.paused.set()
    assert outbox.drain(5)
    edits = [c.params["text"] for c in fake.calls_to("chat.update")]
    assert edits == ["step 0", "step 1", "step 2", "done"]  # 23 edits asked for


def test_thread_replies_wait_for_their_parent(outbox: Outbox, fake: FakeSlack) -> None:
    parent = outbox.post("C1", "parent")
    outbox.post("C1", "reply", thread=parent, broadcast=True)
    assert outbox.drain(5)
    first, second = fake.calls_to("chat.postMessage")
    assert second.params["thread_ts"] == first.params.get("ts", parent.ts) == parent.ts
    assert second.params["reply_broadcast"] is True


def test_rate_limit_is_retried_then_waited_out(outbox: Outbox, fake: FakeSlack) -> None:
    fake.rate_limit("chat.postMessage", retry_after=0, times=4)  # more than the client's own two retries
    done = threading.Event()
    msg = outbox.post("C1", "hello", on_done=lambda m: done.set())
    assert done.wait(8) and msg.ts
    assert [c.method for c in fake.calls] == ["chat.postMessage"] * 5


def test_a_failed_parent_drops_its_replies_and_edits(outbox: Outbox, fake: FakeSlack, caplog: Any) -> None:
    fake.fail("chat.postMessage", "not_in_channel")
    seen = []
    parent = outbox.post("C1", "parent", on_done=seen.append)
    outbox.post("C1", "reply", thread=parent, on_done=seen.append)
    outbox.edit(parent, "edited")
    assert outbox.drain(5)
    assert [m.failed for m in seen] == [True, True]
    assert len(fake.calls_to("chat.postMessage")) == 1 and fake.calls_to("chat.update") == []
    assert "chat.postMessage to C1 failed: not_in_channel" in caplog.text


def test_updates_stay_within_the_per_minute_budget(client: Timed) -> None:
    box = Outbox(client, post_interval=0.0, edit_interval=0.0, updates_per_minute=3, clock=client.clock)
    try:
        start = client.clock.monotonic()
        for m in [box.message("C1", f"1.{i}") for i in range(5)]:
            box.edit(m, "x", final=True)
        assert box.drain(5)
        # the other two wait for the minute to pass
        assert [at - start for at in client.times("chat_update")] == [0.0, 0.0, 0.0, 60.0, 60.0]
    finally:
        box.close()


# -- the whole front end when Slack misbehaves ---------------------------------------------------------

def test_ack_does_not_wait_for_slow_slack(slack: Any, fake: FakeSlack) -> None:
    fake.paused.clear()  # Slack hangs: nothing the bot sends is answered
    try:
        assert slack.command("work", user=OPERATOR) == (200, "")
        assert slack.command("ping", user=OPERATOR) == (200, "")
        assert fake.wait_for(lambda f: f.waiting > 0)
    finally:
        fake.paused.set()
    slack.settle(20)
    assert ops(slack)[0].state == "succeeded"


def test_busy_operations_do_not_starve_commands(slack: Any) -> None:
    RELEASE.clear()
    try:
        for _ in range(8):  # more than Bolt's five listener threads
            assert slack.command("hold", user=OPERATOR) == (200, "")
        assert slack.fake.wait_for(lambda f: len([o for o in ops(slack) if o.state == "running"]) == 8)
        assert slack.command("ping", user=OPERATOR) == (200, "")
        # answered while all eight still hold their threads: nothing waits for them
        assert slack.fake.wait_for(lambda f: f.calls_to("response_url"), timeout=5)
        assert len([o for o in ops(slack) if o.state == "running"]) == 8
    finally:
        RELEASE.set()
    slack.settle()
    assert {o.state for o in ops(slack)} == {"succeeded"}


def test_operations_beyond_the_pool_are_told_they_wait(tmp_path: Any, clock: Any, fake: FakeSlack) -> None:
    bot = make_slack_bot(tmp_path, clock, REG, fake=fake, workers=2)
    RELEASE.clear()
    try:
        for _ in range(2):
            bot.command("hold", user=OPERATOR)
        assert fake.wait_for(lambda f: len([o for o in ops(bot) if o.state == "running"]) == 2)
        bot.command("hold", user=OPERATOR)
        assert fake.wait_for(lambda f: bot.responses(f"cmd-{OPERATOR}"))
        [queued] = bot.responses(f"cmd-{OPERATOR}")
        assert queued["text"].startswith("WARNING Queued") and "already running 2 operations" in queued["text"]
    finally:
        RELEASE.set()
    bot.settle()
    assert [o.state for o in ops(bot)] == ["succeeded"] * 3
    bot.close()


def test_web_api_errors_never_break_the_operation(slack: Any, fake: FakeSlack, caplog: Any) -> None:
    fake.fail("chat.postMessage", "not_in_channel")  # the parent
    fake.fail("chat.update", "message_not_found", times=5)
    slack.command("work", user=OPERATOR)
    slack.settle()
    assert ops(slack)[0].state == "succeeded"
    [private] = slack.responses(f"cmd-{OPERATOR}")  # the result reached the requester anyway
    assert "snapshot snap-1 created" in private["text"]
    assert "not_in_channel" in caplog.text


def test_gate_card_falls_back_to_a_private_card(slack: Any, fake: FakeSlack) -> None:
    fake.fail("chat.postMessage", "channel_not_found")
    slack.command("drop snap-1")
    slack.settle()
    [card] = slack.responses(f"cmd-{ADMIN}")
    [op] = ops(slack)
    assert {b["value"] for b in _buttons(card)} == {op.id} and not op.slack_ts
    slack.click("confirm", op.id, message_ts="1.1", ephemeral=True)
    slack.settle()
    assert slack.store.get_operation(op.id).state == "succeeded"
    replaced = [r for r in slack.responses(f"click-{ADMIN}") if r.get("replace_original")]
    assert replaced and "succeeded" in replaced[-1]["text"]


def test_rate_limited_progress_still_arrives(slack: Any, fake: FakeSlack) -> None:
    fake.rate_limit("chat.postMessage", retry_after=0, times=3)
    fake.rate_limit("chat.update", retry_after=0, times=3)
    slack.command("work", user=OPERATOR)
    slack.settle(20)
    posts = [c.params["text"] for c in fake.calls_to("chat.postMessage") if "thread_ts" in c.params]
    assert sum("snap-1 created" in t for t in posts) == 1 and len(posts) == 5
    assert "succeeded" in fake.calls_to("chat.update")[-1].params["text"]


def _buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    class Call:
        params = message

    return list(buttons(Call).values())
