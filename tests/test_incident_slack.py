"""Incidents and runbook buttons through the real Bolt app, against the recording stand-in for the Slack Web API
(tests/slack_fake_server.py) and a 3-node simulated cluster."""

from __future__ import annotations

import json
from typing import Any

import pytest

from slack_fake_server import ADMIN, ADMIN2, OPERATOR, SECRET, CountingPool, FakeSlack, SlackBot, WSGIServerThread
from sim_fixtures import daily

INC = "inc-20261129-db-nodes-down"
SNAP = f"{daily(1)}"



@pytest.fixture
def slack(tmp_path: Any, clock: Any, fake: FakeSlack) -> Any:
    """The whole bot (global registry, every command) in Slack, over a simulated 3-node cluster."""
    from bot.front.wiring import build_services
    from bot.cloudify import wsgi_transport
    from bot.config import load_settings
    from bot.engine.dispatch import Dispatcher
    from bot.clock import FakeClock
    from bot.settings import ManagerSettings
    from bot.slack import Outbox, build_app, front_of, make_client, wsgi
    from simulator import Simulator
    from simulator.seed import seed_demo

    sim = Simulator(now=clock.time, sleep=clock.sleep, data_dir=str(tmp_path / "sim"))
    nodes = ("mgr-1", "mgr-2", "mgr-3")
    sim.set_cluster(list(nodes))
    seed_demo(sim)
    manager = ManagerSettings("production", tuple(f"http://{n}.test" for n in nodes), username="admin",
                              password="pw-admin-x", fallback_password="admin")  # the snapshots' own
    sim.set_password("admin", "pw-admin-x")
    env = {"BOT_DATA_DIR": str(tmp_path / "data"), "SLACK_BOT_TOKEN": "xoxb-test", "SLACK_SIGNING_SECRET": SECRET,
           "SLACK_API_URL": fake.api_url, "BOT_ADMINS": f"{ADMIN},{ADMIN2}", "BOT_OPERATORS": OPERATOR}
    settings = load_settings(env, managers=(manager,))
    services = build_services(settings, clock=clock, transport=wsgi_transport({f"{n}.test": sim.node_wsgi(n)
                                                                               for n in nodes}))
    client = make_client(settings)
    app = build_app(services, Dispatcher(services), client=client, executor=CountingPool(8, "cfy-work"),
                    outbox=Outbox(client, post_interval=0.01, edit_interval=0.05, clock=FakeClock()))  # instant
    front = front_of(app)
    front.quick.shutdown()
    front.quick = CountingPool(8, "cfy-quick")
    bot = SlackBot(fake, app, front, services, WSGIServerThread(wsgi(app)), clock)
    bot.sim = sim  # type: ignore[attr-defined]
    yield bot
    bot.close()


def run(slack: Any, text: str, user: str = OPERATOR, channel: str = "C100") -> list[dict[str, Any]]:
    """Send `/cfy text`, wait for quiet, and return what reached this command's response URL."""
    name = f"cmd-{user}-{len(slack.fake.calls)}"
    assert slack.command(text, user=user, channel=channel, response_url=slack.fake.response_url(name)) == (200, "")
    slack.settle()
    return slack.responses(name)


def posts(slack: Any, channel: str | None = None) -> list[dict[str, Any]]:
    return [c.params for c in slack.fake.calls_to("chat.postMessage") if channel in (None, c.params.get("channel"))]


def blocks_text(params: dict[str, Any]) -> str:
    blocks = params.get("blocks")
    return json.dumps(json.loads(blocks) if isinstance(blocks, str) else blocks or []) + params.get("text", "")


def test_incident_gets_its_own_channel_card_pin_and_link_back(slack: Any) -> None:
    [answer] = run(slack, "incident start DB nodes down")
    [created] = [c.params for c in slack.fake.calls_to("conversations.create")]
    assert created["name"] == INC and created.get("is_private") in (False, "false", "0", 0)
    room = slack.store.get_mark(f"incident:{INC}") and json.loads(slack.store.get_mark(f"incident:{INC}"))["room"]
    assert room.startswith("C") and room != "C100"
    [invite] = [c.params for c in slack.fake.calls_to("conversations.invite")]
    assert invite == {"channel": room, "users": OPERATOR} or (invite["channel"], invite["users"]) == (room, OPERATOR)
    [card] = posts(slack, room)
    text = blocks_text(card)
    for needed in ("Incident inc-20261129-db-nodes-down: DB nodes down", "production", "newest verified backup",
                   "OK: Every node answers", "running operations"):
        assert needed in text, needed
    [pin] = [c.params for c in slack.fake.calls_to("pins.add")]
    assert pin["channel"] == room and pin["timestamp"]
    assert answer["response_type"] == "in_channel" and f"<#{room}>" in answer["text"]  # the link back in C100


def test_the_room_hears_notes_operations_and_the_close(slack: Any) -> None:
    run(slack, "incident start DB nodes down")
    record = json.loads(slack.store.get_mark(f"incident:{INC}"))
    room = record["room"]
    run(slack, "incident note db-2 disk is full", channel=room)
    assert any("Note by" in p["text"] and "db-2 disk is full" in p["text"] for p in posts(slack, room))
    assert any(c.params.get("ts") == record["card_ts"] for c in slack.fake.calls_to("chat.update"))
    run(slack, f"restore {SNAP} -f", user=ADMIN, channel=room)  # an operation started in the room reports there
    [op] = [o for o in slack.store.list_operations() if o.kind == "restore"]
    assert op.channel == room and op.slack_channel == room
    run(slack, "incident close db-2 cleaned up", channel=room)
    texts = [p["text"] for p in posts(slack, room)]
    assert any("Timeline of incident" in t for t in texts)
    export = next(t for t in texts if t.startswith("Markdown export"))
    assert f"# Incident {INC}: DB nodes down" in export and "noted: db-2 disk is full" in export
    assert "```" in export
    assert any("was closed by" in p["text"] for p in posts(slack, "C100"))


def test_without_channels_manage_it_runs_in_a_thread_and_says_so(slack: Any) -> None:
    slack.fake.fail("conversations.create", "missing_scope")
    [answer] = run(slack, "incident start DB nodes down")
    assert "`channels:manage` scope" in answer["text"] and "thread of this channel" in answer["text"]
    record = json.loads(slack.store.get_mark(f"incident:{INC}"))
    assert record["mode"] == "thread" and record["room"] == "C100" and record["thread"]
    [card] = posts(slack, "C100")
    assert "Incident inc-20261129-db-nodes-down" in blocks_text(card) and not card.get("thread_ts")
    assert not slack.fake.calls_to("conversations.invite")
    run(slack, "incident note looking at db-2")
    note = next(p for p in posts(slack, "C100") if "looking at db-2" in p["text"])
    assert note["thread_ts"] == record["thread"]
    run(slack, f"restore {SNAP} -f", user=ADMIN)  # its card goes into the incident's thread
    [op] = [o for o in slack.store.list_operations() if o.kind == "restore"]
    gate = next(p for p in posts(slack, "C100") if op.id in blocks_text(p))
    assert gate["thread_ts"] == record["thread"]


def test_a_missing_pin_scope_is_named_too(slack: Any) -> None:
    slack.fake.fail("pins.add", "missing_scope")
    [answer] = run(slack, "incident start DB nodes down")
    assert "not pinned" in answer["text"] and "`pins:write` scope" in answer["text"]


def test_runbook_buttons_record_who_and_redraw_the_checklist(slack: Any) -> None:
    [answer] = run(slack, "runbook node-down")
    assert answer["response_type"] == "in_channel"
    buttons = [e for b in answer["blocks"] if b["type"] == "actions" for e in b["elements"]]
    done = next(b for b in buttons if b["text"]["text"] == "Done 1")
    assert done["action_id"].startswith("cfy_run_") and done["value"].startswith("runbook done rb-")
    url = slack.fake.response_url("click-1")
    assert slack.click(done["action_id"].removeprefix("cfy_"), done["value"], user=OPERATOR, response_url=url,
                       message_ts="1.1") == (200, "")
    slack.settle()
    [redrawn] = slack.responses("click-1")
    assert redrawn["replace_original"] is True
    assert "1. [x] Remove manager from the cluster. (done by uoper1" in blocks_text(redrawn)
    again = slack.fake.response_url("click-2")
    slack.click(done["action_id"].removeprefix("cfy_"), done["value"], user=ADMIN, response_url=again)
    slack.settle()
    [refused] = slack.responses("click-2")
    assert "already marked done by uoper1" in refused["text"] and not refused.get("replace_original")


def test_restore_with_incident_opens_the_room_when_it_starts(slack: Any) -> None:
    run(slack, f"restore {SNAP} -f --incident", user=ADMIN)
    [op] = [o for o in slack.store.list_operations() if o.kind == "restore"]
    assert not slack.fake.calls_to("conversations.create")  # nothing is opened for a restore nobody approved
    for action, user in (("confirm", ADMIN), ("approve", ADMIN2)):
        assert slack.click(action, op.id, user=user) == (200, "")
        slack.settle(30)
    op = slack.store.get_operation(op.id)
    assert op.state == "succeeded", op.error
    name = f"inc-20261129-restore-{SNAP}-on-production"
    [created] = [c.params["name"] for c in slack.fake.calls_to("conversations.create")]
    assert created == name
    record = json.loads(slack.store.get_mark(f"incident:{name}"))
    invited = {c.params["users"] for c in slack.fake.calls_to("conversations.invite")}
    assert invited == {ADMIN, ADMIN2} and record["operation_id"] == op.id
    room_texts = [p["text"] for p in posts(slack, record["room"])]
    assert any("verified: production is in maintenance mode (activated)" in t for t in room_texts)
    assert any(f"Restored {SNAP} on production" in t for t in room_texts)
    origin = " ".join(blocks_text(p) for p in posts(slack, "C100"))
    assert f"incident {name} opened: <#{record['room']}>" in origin  # the link back, in the restore's thread


def test_the_restore_button_of_cluster_down_puts_the_gate_card_in_the_channel(slack: Any) -> None:
    run(slack, f"snapshots download {SNAP}", user=ADMIN)  # a verified archive copy: what `latest` means
    for kind in (slack.sim.state.blueprints, slack.sim.state.deployments):  # the cluster was rebuilt: empty
        for per_tenant in kind.values():
            per_tenant.clear()
    [answer] = run(slack, "runbook cluster-down", user=ADMIN)
    buttons = [e for b in answer["blocks"] if b["type"] == "actions" for e in b["elements"]]
    restore = next(b for b in buttons if b["text"]["text"] == "Start the guided restore (latest)")
    url = slack.fake.response_url("click-restore")
    slack.click(restore["action_id"].removeprefix("cfy_"), restore["value"], user=ADMIN, response_url=url)
    slack.settle()
    [op] = [o for o in slack.store.list_operations() if o.kind == "restore"]
    assert op.state == "pending" and op.args["snapshot_id"] == SNAP and op.requester == f"slack:{ADMIN}"
    card = next(p for p in posts(slack, "C100") if op.id in blocks_text(p))
    assert '"cfy_confirm"' in blocks_text(card)  # the gate card, with its Confirm button, in the channel
    [redrawn] = slack.responses("click-restore")
    assert redrawn["replace_original"] is True and f"operation {op.id} is pending" in blocks_text(redrawn)


def test_a_replayed_signed_incident_start_opens_one_incident(slack: Any) -> None:
    from bot.slack.fake import command_body, command_fields, post, signed_headers

    body = command_body(command_fields("incident start DB nodes down", user=OPERATOR,
                                       response_url=slack.fake.response_url("replayed")))
    headers = signed_headers(SECRET, body)  # the same signed request, captured once and sent three times
    assert [post(slack.url, body, headers) for _ in range(3)] == [(200, "")] * 3
    slack.settle()
    assert len(slack.fake.calls_to("conversations.create")) == 1
    assert len(slack.responses("replayed")) == 1
