"""The real Bolt app fed real signed HTTP requests through the WSGI adapter; Slack replaced by a recording fake."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from slack_fake_server import ADMIN, ADMIN2, OPERATOR, SECRET, VIEWER, FakeSlack, make_slack_bot

from bot.core import Reply, Table
from bot.errors import ManagerError
from bot.spec.registry import Param, Registry, command
from bot.slack.fake import command_body, command_fields, post, signed_headers

REG = Registry()
RELEASE = threading.Event()  # `hold` waits for it


@command("ping", summary="answer pong", group="overview", registry=REG, manager_scoped=False)
def _ping(ctx: Any, args: Any) -> Reply:
    return Reply(text="pong", title="Ping")


@command("echo", summary="say it back", group="overview", registry=REG, manager_scoped=False,
         params=[Param("words", rest=True, required=True)])
def _echo(ctx: Any, args: Any) -> Reply:
    return Reply(text=f"you said: {args.words}", title="Echo")


@command("table", summary="a long table", group="overview", registry=REG,
         params=[Param("rows", kind="int", default=2000)])
def _table(ctx: Any, args: Any) -> Reply:
    rows = tuple((f"snap-{i:05d}", "created", "2026-11-29 02:00") for i in range(args.rows))
    return Reply(text=f"{args.rows} snapshots", title="Snapshots", table=Table(("id", "status", "created"), rows))


@command("work", summary="a long operation", group="snapshots", registry=REG, long_running=True,
         permission="operator")
def _work(ctx: Any, args: Any) -> Reply:
    for n in ("creating snapshot", "waiting for execution", "downloading to the archive"):
        ctx.step(n)
    return Reply(text="snapshot snap-1 created and archived", title="Snapshot created", tone="good",
                 fields=(("snapshot", "snap-1"), ("size", "12.0 MiB")))


@command("broken", summary="fails", group="snapshots", registry=REG, long_running=True, permission="operator")
def _broken(ctx: Any, args: Any) -> Reply:
    ctx.step("asking the manager")
    raise ManagerError("production answered 502 <@channel> <http://evil.example|click>")


@command("drop", summary="a gated command", group="snapshots", registry=REG, permission="admin", gate="confirm",
         params=[Param("snapshot_id", required=True)], gate_text="delete snapshot {snapshot_id} on {manager}")
def _drop(ctx: Any, args: Any) -> Reply:
    ctx.step(f"deleting {args.snapshot_id}")
    return Reply(text=f"deleted {args.snapshot_id}", title="Deleted", tone="good")


@command("burn", summary="a gated command that fails", group="snapshots", registry=REG, permission="admin",
         gate="confirm")
def _burn(ctx: Any, args: Any) -> Reply:
    ctx.step("trying")
    raise ManagerError("production refused: 409")


@command("resume-me", summary="picks up after a restart", group="snapshots", registry=REG, long_running=True,
         permission="operator", resumable=True)
def _resume_me(ctx: Any, args: Any) -> Reply:
    ctx.step("picking up where it was")
    return Reply(text="finished after the restart", title="Done", tone="good")


@command("wipe", summary="two-person", group="restore", registry=REG, permission="admin", gate="approve",
         long_running=True, params=[Param("snapshot_id", required=True)],
         gate_text="restore {snapshot_id} onto {manager}, replacing everything")
def _wipe(ctx: Any, args: Any) -> Reply:
    ctx.step("maintenance mode on")
    ctx.step("restoring")
    return Reply(text=f"restored {args.snapshot_id}", title="Restored", tone="good")


@command("hold", summary="waits", group="snapshots", registry=REG, long_running=True, permission="operator")
def _hold(ctx: Any, args: Any) -> Reply:
    ctx.step("holding")
    RELEASE.wait(10)
    return Reply(text="released", title="Done", tone="good")


@command("watch", summary="opens a follow-up gate", group="restore", registry=REG, long_running=True,
         permission="admin")
def _watch(ctx: Any, args: Any) -> Reply:
    from bot.core import ProgressEvent

    ctx.step("restore failed")
    op = ctx.engine.open_gate(ctx, "drop", {"snapshot_id": "leftover"})
    ctx.sink.emit(ProgressEvent(ctx.op.id, "gate", "confirm the clean-up", "warning", ctx.now(),
                                {"gate": "confirm", "operation": op.id}))
    return Reply(text=f"failed; clean-up waits for confirmation ({op.id})", title="Restore failed", ok=False)



@pytest.fixture
def slack(tmp_path: Any, clock: Any, fake: FakeSlack) -> Any:
    bot = make_slack_bot(tmp_path, clock, REG, fake=fake)
    yield bot
    bot.close()


def ops(slack: Any) -> list[dict[str, Any]]:
    return slack.store.list_operations()


# -- commands --------------------------------------------------------------------------------------------

def test_quick_command_is_acked_then_answered_privately(slack: Any) -> None:
    status, body = slack.command("ping")
    assert (status, body) == (200, "")
    slack.settle()
    [answer] = slack.responses(f"cmd-{ADMIN}")
    assert answer["response_type"] == "ephemeral"
    assert "pong" in answer["text"]
    assert any(b["type"] == "header" and "Ping" in b["text"]["text"] for b in answer["blocks"])
    assert slack.fake.calls_to("chat.postMessage") == []


def test_slack_escaping_is_undone_before_parsing(slack: Any) -> None:
    slack.command("echo \u201cA &amp; B\u201d &lt;x&gt; <https://ex.example/a|link>")
    slack.settle()
    [answer] = slack.responses(f"cmd-{ADMIN}")
    assert "you said: A &amp; B &lt;x&gt; https://ex.example/a" in answer["text"]  # escaped again on the way out


def test_usage_error_is_private_and_friendly(slack: Any) -> None:
    slack.command("pnig")
    slack.settle()
    [answer] = slack.responses(f"cmd-{ADMIN}")
    assert "Did you mean `ping`" in answer["text"]


def test_long_table_is_cut_with_a_note(slack: Any) -> None:
    slack.command("table")
    slack.settle()
    [answer] = slack.responses(f"cmd-{ADMIN}")
    sections = [b for b in answer["blocks"] if b["type"] == "section"]
    assert all(len(b["text"]["text"]) <= 3000 for b in sections if "text" in b)
    assert len(json.dumps(answer["blocks"])) < 13_000
    notes = [e["text"] for b in answer["blocks"] if b["type"] == "context" for e in b["elements"]]
    assert any("more rows not shown" in n for n in notes)


def test_long_command_gets_parent_thread_edits_and_broadcast(slack: Any) -> None:
    slack.command("work", user=OPERATOR)
    slack.settle()
    posts = slack.fake.calls_to("chat.postMessage")
    parent, *replies = posts
    assert "thread_ts" not in parent.params and parent.params["channel"] == "C100"
    [op] = ops(slack)
    assert op.state == "succeeded"
    assert (op.slack_channel, op.slack_ts) == ("C100", "1764000000.000200")
    assert all(r.params["thread_ts"] == op.slack_ts for r in replies)
    texts = [r.params["text"] for r in replies]
    assert [t.split(" ", 1)[1] for t in texts[:4]] == [
        "work on production started by uoper1", "creating snapshot", "waiting for execution",
        "downloading to the archive"]
    final = replies[-1].params
    assert final["reply_broadcast"] is True and "snapshot snap-1 created" in final["text"]
    edits = slack.fake.calls_to("chat.update")
    assert edits and all(e.params["ts"] == op.slack_ts for e in edits)
    assert "succeeded" in edits[-1].params["text"]
    assert len(edits) < 5  # coalesced, not one per step
    assert slack.responses(f"cmd-{OPERATOR}") == []


def test_failed_operation_escapes_manager_text(slack: Any) -> None:
    slack.command("broken", user=OPERATOR)
    slack.settle()
    final = slack.fake.calls_to("chat.postMessage")[-1].params
    assert final["reply_broadcast"] is True
    blob = json.dumps(final) + json.dumps(slack.fake.calls_to("chat.update")[-1].params)
    assert "<http://evil" not in blob and "<@channel>" not in blob and "&lt;http://evil.example|click&gt;" in blob


def test_unauthorized_user_is_told_privately(slack: Any) -> None:
    slack.command("work", user=VIEWER)
    slack.settle()
    [answer] = slack.responses(f"cmd-{VIEWER}")
    assert "needs the operator role" in answer["text"] and answer["response_type"] == "ephemeral"
    assert ops(slack) == [] and slack.fake.calls_to("chat.postMessage") == []


def test_restricted_viewers_and_channels(tmp_path: Any, clock: Any, fake: FakeSlack) -> None:
    bot = make_slack_bot(tmp_path, clock, REG, fake=fake, env={"BOT_VIEWERS": OPERATOR, "BOT_CHANNELS": "COPS"})
    try:
        bot.command("ping", user="ustranger".upper(), channel="COPS")
        bot.command("ping", user=OPERATOR, channel="CELSE")
        bot.settle()
        assert "you have no role" in bot.responses("cmd-USTRANGER")[0]["text"]
        assert "<#COPS>" in bot.responses(f"cmd-{OPERATOR}")[0]["text"]  # the bot's own channel link survives
    finally:
        bot.close()


# -- signatures ------------------------------------------------------------------------------------------

def test_bad_signature_and_old_timestamp_are_401(slack: Any) -> None:
    body = command_body(command_fields("ping", response_url=slack.fake.response_url()))
    headers = signed_headers("not-the-secret", body)
    assert post(slack.url, body, headers)[0] == 401
    assert slack.command("ping", timestamp=int(time.time()) - 6 * 60)[0] == 401
    assert post(slack.url, body, {"Content-Type": "application/x-www-form-urlencoded"})[0] == 401
    slack.settle()
    assert slack.fake.calls_to("response_url") == []


def test_health_and_unknown_paths(slack: Any) -> None:
    import urllib.request

    with urllib.request.urlopen(slack.server.url + "/health") as resp:
        assert json.loads(resp.read()) == {"ok": True, "store": True, "outbox": True}
    body = command_body(command_fields("ping"))
    assert post(slack.server.url + "/elsewhere", body, signed_headers(SECRET, body))[0] == 404


def test_unhandled_payload_is_404_and_logged(slack: Any, caplog: Any) -> None:
    from bot.slack.fake import action_body, action_payload

    payload = action_payload("confirm", "op-1")
    payload["actions"][0]["action_id"] = "somebody_elses_button"
    body = action_body(payload)
    assert post(slack.url, body, signed_headers(SECRET, body))[0] == 404
    assert "unhandled Slack request (block_actions)" in caplog.text


# -- gate cards and clicks -------------------------------------------------------------------------------

def gate(slack: Any, text: str = "drop snap-1", user: str = ADMIN) -> dict[str, Any]:
    """Run a gated command; returns the pending operation once its card is posted."""
    slack.command(text, user=user)
    slack.settle()
    [op] = ops(slack)
    assert op.state == "pending" and op.slack_ts
    return op


def buttons(call: Any) -> dict[str, dict[str, Any]]:
    return {e["action_id"]: e for b in call.params.get("blocks", []) if b["type"] == "actions" for e in b["elements"]}


def card_text(call: Any) -> str:
    return json.dumps(call.params["blocks"])


def test_gate_card_is_posted_in_channel_with_only_the_id_in_buttons(slack: Any) -> None:
    op = gate(slack)
    [card] = slack.fake.calls_to("chat.postMessage")
    assert card.params["channel"] == "C100" and "thread_ts" not in card.params
    found = buttons(card)
    assert set(found) == {"cfy_confirm", "cfy_cancel"}
    assert {b["value"] for b in found.values()} == {op.id}
    assert found["cfy_confirm"]["confirm"]["title"]["text"] == "Are you sure?"
    assert "delete snapshot snap-1 on production" in card_text(card)
    assert slack.responses(f"cmd-{ADMIN}") == []


def test_confirm_click_runs_and_edits_the_card(slack: Any) -> None:
    op = gate(slack)
    assert slack.click("confirm", op.id, message_ts=op.slack_ts) == (200, "")
    slack.settle()
    done = slack.store.get_operation(op.id)
    assert done.state == "succeeded" and done.confirmed_by == f"slack:{ADMIN}"
    last = slack.fake.calls_to("chat.update")[-1]
    assert last.params["ts"] == op.slack_ts and "succeeded" in last.params["text"]
    assert f"confirmed by <@{ADMIN}>" in card_text(last) and not buttons(last)
    replies = [c.params for c in slack.fake.calls_to("chat.postMessage") if c.params.get("thread_ts")]
    assert "deleting snap-1" in replies[1]["text"] and replies[-1]["reply_broadcast"] is True
    assert slack.responses(f"click-{ADMIN}") == []


def test_double_and_concurrent_clicks_run_once(slack: Any) -> None:
    op = gate(slack)
    users = [ADMIN] * 6
    threads = [threading.Thread(target=slack.click, args=("confirm", op.id), kwargs={"user": u,
                                "message_ts": op.slack_ts}) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    slack.click("confirm", op.id, message_ts=op.slack_ts)
    slack.settle()
    started = [c for c in slack.fake.calls_to("chat.postMessage") if "started by" in c.params["text"]]
    assert len(started) == 1
    steps = slack.store.query_audit(operation_id=op.id, event="outcome")
    assert len(steps) == 1
    told = slack.responses(f"click-{ADMIN}")
    assert len(told) == 6  # the clicks that lost were told where the operation stands, privately
    assert all(t["text"].startswith("Nothing to do") and op.id in t["text"] for t in told)
    assert {t["response_type"] for t in told} == {"ephemeral"} and not any(t["replace_original"] for t in told)
    assert "succeeded" in slack.fake.calls_to("chat.update")[-1].params["text"]


def test_click_by_someone_without_the_right(slack: Any) -> None:
    op = gate(slack)
    slack.click("confirm", op.id, user=OPERATOR, message_ts=op.slack_ts)
    slack.click("confirm", op.id, user=ADMIN2, message_ts=op.slack_ts)
    slack.settle()
    assert slack.store.get_operation(op.id).state == "pending"
    assert "only the requester" in slack.responses(f"click-{OPERATOR}")[0]["text"]
    assert "only the requester" in slack.responses(f"click-{ADMIN2}")[0]["text"]
    for call in slack.fake.calls_to("chat.update"):  # redrawn, still waiting, buttons intact
        assert set(buttons(call)) == {"cfy_confirm", "cfy_cancel"}


def test_two_person_approval_card(slack: Any) -> None:
    op = gate(slack, "wipe snap-7")
    slack.click("confirm", op.id, message_ts=op.slack_ts)
    slack.settle()
    approval = slack.fake.calls_to("chat.update")[-1]
    assert set(buttons(approval)) == {"cfy_approve", "cfy_reject"}
    assert "Approval needed" in approval.params["text"] and f"confirmed by <@{ADMIN}>" in card_text(approval)
    slack.click("approve", op.id, message_ts=op.slack_ts)  # the requester cannot approve
    slack.click("approve", op.id, user=OPERATOR, message_ts=op.slack_ts)  # nor a non-admin
    slack.settle()
    assert slack.store.get_operation(op.id).state == "pending"
    assert "second admin" in slack.responses(f"click-{ADMIN}")[0]["text"]
    assert "needs the admin role" in slack.responses(f"click-{OPERATOR}")[0]["text"]
    slack.click("approve", op.id, user=ADMIN2, message_ts=op.slack_ts)
    slack.settle()
    done = slack.store.get_operation(op.id)
    assert done.state == "succeeded" and done.approved_by == f"slack:{ADMIN2}"
    final = slack.fake.calls_to("chat.update")[-1]
    assert f"approved by <@{ADMIN2}>" in card_text(final) and "succeeded" in final.params["text"]
    assert slack.fake.calls_to("chat.postMessage")[-1].params["reply_broadcast"] is True


def test_reject_cancels_and_says_who(slack: Any) -> None:
    op = gate(slack, "wipe snap-7")
    slack.click("confirm", op.id, message_ts=op.slack_ts)
    slack.settle()
    slack.click("reject", op.id, user=ADMIN2, message_ts=op.slack_ts)
    slack.settle()
    assert slack.store.get_operation(op.id).state == "cancelled"
    last = slack.fake.calls_to("chat.update")[-1]
    assert "cancelled" in last.params["text"] and f"cancelled by <@{ADMIN2}>" in card_text(last)
    assert not buttons(last)
    assert not [c for c in slack.fake.calls_to("chat.postMessage") if c.params.get("reply_broadcast")]


def test_click_on_an_expired_card(slack: Any, clock: Any) -> None:
    op = gate(slack)
    clock.advance(601)
    slack.click("confirm", op.id, message_ts=op.slack_ts)
    slack.settle()
    assert slack.store.get_operation(op.id).state == "expired"
    last = slack.fake.calls_to("chat.update")[-1]
    assert "expired" in last.params["text"] and not buttons(last)
    assert "is expired" in slack.responses(f"click-{ADMIN}")[0]["text"]
    assert len([c for c in slack.fake.calls_to("chat.postMessage")]) == 1  # nothing started


def test_expire_cards_edits_cards_of_expired_gates(slack: Any, clock: Any) -> None:
    from bot.slack import expire_cards

    op = gate(slack)
    assert expire_cards(slack.services, slack.front.client, slack.front.outbox) == 0
    clock.advance(601)
    assert expire_cards(slack.services, slack.front.client, slack.front.outbox) == 1
    slack.settle()
    [edit] = slack.fake.calls_to("chat.update")
    assert edit.params["ts"] == op.slack_ts and "expired" in edit.params["text"] and not buttons(edit)
    assert expire_cards(slack.services, slack.front.client) == 0  # once


def test_click_on_an_unknown_operation(slack: Any) -> None:
    slack.click("confirm", "op-nothere")
    slack.click("confirm", "<script>")
    slack.settle()
    told = slack.responses(f"click-{ADMIN}")
    assert len(told) == 2 and all("no operation" in t["text"] for t in told)
    assert slack.fake.calls_to("chat.update") == []


def test_follow_up_gate_card_goes_into_the_thread(slack: Any) -> None:
    slack.command("watch")
    slack.settle()
    first, followup = sorted(ops(slack), key=lambda o: o.kind != "watch")
    root = first.slack_ts
    [card] = [c for c in slack.fake.calls_to("chat.postMessage") if "cfy_confirm" in buttons(c)]
    assert card.params["thread_ts"] == root and {b["value"] for b in buttons(card).values()} == {followup.id}
    followup = slack.store.get_operation(followup.id)
    assert followup.slack_ts and followup.slack_ts != root
    slack.click("confirm", followup.id, message_ts=followup.slack_ts)
    slack.settle()
    assert slack.store.get_operation(followup.id).state == "succeeded"
    later = [c.params for c in slack.fake.calls_to("chat.postMessage") if "deleting leftover" in c.params["text"]]
    assert [p["thread_ts"] for p in later] == [root]  # steps of the follow-up stay in the one thread
    edited = {c.params["ts"] for c in slack.fake.calls_to("chat.update")}
    assert followup.slack_ts in edited


def test_a_confirmed_operation_that_fails_is_broadcast(slack: Any) -> None:
    op = gate(slack, "burn")
    slack.click("confirm", op.id, message_ts=op.slack_ts)
    slack.settle()
    assert slack.store.get_operation(op.id).state == "failed"
    final = slack.fake.calls_to("chat.postMessage")[-1].params
    assert final["reply_broadcast"] is True and "production refused: 409" in final["text"]
    assert "failed" in slack.fake.calls_to("chat.update")[-1].params["text"]
    assert slack.responses(f"click-{ADMIN}") == []


def test_recover_after_a_restart_edits_the_same_cards(slack: Any, clock: Any) -> None:
    common = {"args": {}, "manager": "production", "requester": f"slack:{OPERATOR}", "requester_name": "uoper1",
              "channel": "C100", "transport": "slack", "slack_channel": "C100",
              "result": {"journal": {"owner": "elsewhere.invalid:1"}}}
    resumed = slack.store.create_operation(kind="resume-me", state="running", slack_ts="1.000100", **common)
    settled = slack.store.create_operation(kind="work", state="running", slack_ts="1.000200", **common)
    unstarted = slack.store.create_operation(kind="work", state="approved", slack_ts="1.000300", **common)
    clock.advance(1000)  # the other host has not touched them for long: orphaned
    slack.front.recover()
    slack.settle()
    states = {o.id: o.state for o in ops(slack)}
    assert states == {resumed.id: "succeeded", settled.id: "failed", unstarted.id: "failed"}
    last = {}
    for c in slack.fake.calls_to("chat.update"):
        last[c.params["ts"]] = c.params["text"]
    assert last == {"1.000100": "resume-me on production: succeeded", "1.000200": "work on production: failed",
                    "1.000300": "work on production: failed"}
    replies = [c.params for c in slack.fake.calls_to("chat.postMessage")]
    assert any(r["thread_ts"] == "1.000100" and "resuming resume-me" in r["text"] for r in replies)
    assert any(r["thread_ts"] == "1.000100" and "picking up" in r["text"] for r in replies)
    assert not [r for r in replies if "thread_ts" not in r]  # no new parent messages
    told = {r["thread_ts"]: r["text"] for r in replies if r.get("reply_broadcast")}
    assert "finished after the restart" in told["1.000100"] and "restarted while it ran" in told["1.000200"]
    assert "before starting it" in told["1.000300"]


def test_a_listener_error_gets_a_friendly_answer_and_a_logged_traceback(slack: Any, caplog: Any) -> None:
    @slack.app.command("/cfy-broken")
    def broken(ack: Any) -> None:
        raise ZeroDivisionError("boom")

    fields = command_fields("x", response_url=slack.fake.response_url())
    fields["command"] = "/cfy-broken"
    body = command_body(fields)
    status, text = post(slack.url, body, signed_headers(SECRET, body))
    assert status == 200 and text.startswith(":warning: Something went wrong (ref `")
    assert "ZeroDivisionError" not in text and "Traceback" not in text
    ref = text.split("`")[1]
    assert f"Slack request failed, ref {ref}" in caplog.text and "ZeroDivisionError: boom" in caplog.text


def test_announce_and_a_sink_for_scheduled_work(slack: Any) -> None:
    from bot.core import Actor, Invocation

    slack.front.announce("CSUMMARY", Reply(text="last good backup: 3h ago", title="Daily backups", tone="good"))
    inv = Invocation(text="work", actor=Actor("system:scheduler", "scheduler", "system"), channel="CSUMMARY",
                     transport="schedule", received_at=slack.clock.now())
    outcome = slack.front.dispatcher.handle(inv, slack.front.sink("CSUMMARY"))
    slack.settle()
    assert outcome.exit_code == 0
    posts = [c.params for c in slack.fake.calls_to("chat.postMessage")]
    assert posts[0]["channel"] == "CSUMMARY" and "last good backup" in posts[0]["text"]
    [op] = ops(slack)
    assert op.slack_channel == "CSUMMARY" and any(p.get("thread_ts") == op.slack_ts for p in posts)


def test_a_reply_button_runs_its_command_as_the_clicker(slack: Any) -> None:
    from bot.slack.fake import action_body, action_payload

    for user, value in ((OPERATOR, "work"), (VIEWER, "work")):
        payload = action_payload("run_0", value, user=user, response_url=slack.fake.response_url(f"run-{user}"))
        body = action_body(payload)
        assert post(slack.url, body, signed_headers(SECRET, body)) == (200, "")
    slack.settle()
    [op] = ops(slack)
    assert op.requester == f"slack:{OPERATOR}" and op.state == "succeeded"
    assert "needs the operator role" in slack.responses(f"run-{VIEWER}")[0]["text"]
