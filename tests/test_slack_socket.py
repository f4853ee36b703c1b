"""Socket Mode over a real WebSocket: the stand-in for Slack's endpoint, Bolt's handler on it, and `cfy-bot socket`."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from slack_fake_server import ADMIN, OPERATOR, FakeSlack, make_slack_bot
from slack_socket_server import CLOSE, CONTINUATION, PING, PONG, TEXT, SocketSlack, accept_key, encode_frame, \
    read_frame
from test_slack_app import REG, ops

from bot.slack.fake import command_fields, event_callback, mention_event

ROOT = Path(__file__).resolve().parent.parent
MASK = b"\x37\xfa\x21\x3d"


@pytest.fixture
def ws(fake: FakeSlack) -> Any:
    server = SocketSlack().start()
    fake.socket_url = server.url
    yield server
    server.stop()


# -- the stand-in itself ----------------------------------------------------------------------------------

def _raw_client(ws: SocketSlack) -> socket.socket:
    """A hand-made client: the RFC 6455 example handshake, then the server's `hello`."""
    sock = socket.create_connection(("127.0.0.1", ws.port), timeout=5)
    sock.sendall(b"GET /link/?ticket=t1 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101 ") and b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head
    fin, opcode, payload = read_frame(sock)
    assert (fin, opcode, json.loads(payload)["type"]) == (True, TEXT, "hello")
    return sock


def test_the_stand_in_speaks_rfc_6455(ws: SocketSlack) -> None:
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # RFC 6455 §1.3
    sock = _raw_client(ws)
    assert ws.wait_connected() and ws.link.path == "/link/?ticket=t1"
    big = json.dumps({"envelope_id": "e-127", "payload": {"text": "x" * 70_000}}).encode()
    mid = json.dumps({"envelope_id": "e-126", "payload": {"text": "y" * 300}}).encode()
    split = json.dumps({"envelope_id": "e-split"}).encode()
    sock.sendall(encode_frame(TEXT, json.dumps({"envelope_id": "e-7"}).encode(), MASK)
                 + encode_frame(TEXT, mid, MASK) + encode_frame(TEXT, big, MASK)
                 + encode_frame(TEXT, split[:5], MASK, fin=False) + encode_frame(PING, b"p1", MASK)
                 + encode_frame(CONTINUATION, split[5:], MASK))
    assert read_frame(sock) == (True, PONG, b"p1")  # answered between the fragments
    assert ws.wait_ack("e-split") == {"envelope_id": "e-split"} and ws.acks["e-7"] == {"envelope_id": "e-7"}
    assert len(ws.acks["e-126"]["payload"]["text"]) == 300 and len(ws.acks["e-127"]["payload"]["text"]) == 70_000
    eid = ws.push("events_api", {"blob": "z" * 70_000}, retry_attempt=1, retry_reason="timeout")
    fin, opcode, payload = read_frame(sock)
    envelope = json.loads(payload)
    assert (fin, opcode, envelope["envelope_id"], envelope["retry_attempt"]) == (True, TEXT, eid, 1)
    assert len(envelope["payload"]["blob"]) == 70_000
    ws.ping(b"srv")
    assert read_frame(sock) == (True, PING, b"srv")
    sock.sendall(encode_frame(PONG, b"srv", MASK) + encode_frame(CLOSE, b"\x03\xe8bye", MASK))
    assert ws.wait_for(lambda s: s.closes and not s.links[0].open) and ws.pongs == [b"srv"]
    sock.close()
    with socket.create_connection(("127.0.0.1", ws.port), timeout=5) as plain:
        plain.sendall(b"GET /link HTTP/1.1\r\nHost: x\r\n\r\n")
        assert plain.recv(100).startswith(b"HTTP/1.1 400")
    assert ws.refused == ["no Upgrade: websocket"]


def test_slack_sdks_own_client_connects_acks_and_reconnects(fake: FakeSlack, ws: SocketSlack) -> None:
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError
    from slack_sdk.socket_mode.builtin import SocketModeClient
    from slack_sdk.socket_mode.response import SocketModeResponse

    def ack(client: Any, req: Any) -> None:
        size = req.payload["size"]
        client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id,
                                                            payload={"text": "a" * size} if size else None))

    client = SocketModeClient("xapp-test", web_client=WebClient(base_url=fake.api_url), ping_interval=0.3)
    client.socket_mode_request_listeners.append(ack)
    try:
        client.connect()
        assert ws.wait_connected() and client.is_connected()
        ids = [ws.push("slash_commands", {"size": n}, accepts_response_payload=True) for n in (0, 300, 70_000)]
        assert [len((ws.wait_ack(i) or {}).get("payload", {}).get("text", "")) for i in ids] == [0, 300, 70_000]
        assert ws.wait_for(lambda s: s.pings >= 1)  # the client pings on connect and every ping_interval
        ws.drop()
        assert ws.wait_connected(2, timeout=10)  # Slack closed it; the client asked for a new URL and came back
        assert [c.token for c in fake.calls_to("apps.connections.open")] == ["xapp-test", "xapp-test"]
    finally:
        client.close()
    with pytest.raises(SlackApiError, match="not_allowed_token_type"):
        WebClient(base_url=fake.api_url).apps_connections_open(app_token="xoxb-test")


# -- Bolt's Socket Mode handler on the real app -------------------------------------------------------------

@pytest.fixture
def socket_bot(tmp_path: Any, clock: Any, fake: FakeSlack, ws: SocketSlack) -> Any:
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    bot = make_slack_bot(tmp_path, clock, REG, fake=fake, socket_mode=True, env={"SLACK_SIGNING_SECRET": ""})
    handler = SocketModeHandler(bot.app, "xapp-test")
    handler.connect()
    assert ws.wait_connected()
    yield bot
    ws.stop()  # first: the client's reader then leaves recv() at once, not after its 3 s timeout
    handler.close()
    bot.close()


def test_envelopes_are_acked_at_once_and_answered(socket_bot: Any, fake: FakeSlack, ws: SocketSlack) -> None:
    sent = time.monotonic()
    eid = ws.push("slash_commands", command_fields("ping", user=ADMIN, response_url=fake.response_url("s")),
                  accepts_response_payload=True)
    assert ws.wait_ack(eid, timeout=3) == {"envelope_id": eid} and ws.ack_at[eid] - sent < 1.0
    body = event_callback(mention_event("<@UBOT> drop snap-1", user=ADMIN, ts="1764000000.000700"))
    first = ws.push("events_api", body)
    again = ws.push("events_api", body, retry_attempt=1, retry_reason="timeout")  # the same event, redelivered
    assert ws.wait_ack(first, timeout=3) and ws.wait_ack(again, timeout=3)
    socket_bot.settle()
    assert "pong" in socket_bot.responses("s")[0]["text"]
    [op] = ops(socket_bot)
    assert op.requester == f"slack:{ADMIN}" and op.state == "pending"
    from bot.slack.fake import action_payload

    click = ws.push("interactive", action_payload("confirm", op.id, user=ADMIN, message_ts=op.slack_ts,
                                                  response_url=fake.response_url("c")))
    assert ws.wait_ack(click, timeout=3) == {"envelope_id": click}
    socket_bot.settle()
    assert socket_bot.store.get_operation(op.id).state == "succeeded"


def test_connection_drops_are_logged_down_then_back(fake: FakeSlack, ws: SocketSlack, caplog: Any) -> None:
    from slack_sdk import WebClient
    from slack_sdk.socket_mode.builtin import SocketModeClient

    from bot.slack.runtime import watch_connection

    client = SocketModeClient("xapp-test", web_client=WebClient(base_url=fake.api_url), ping_interval=0.3,
                              logger=logging.getLogger("test.sdk"))
    stop = threading.Event()
    watcher = threading.Thread(target=watch_connection, args=(client.is_connected, stop, 0.02))
    caplog.set_level(logging.WARNING, logger="cfy_bot.slack")
    try:
        client.connect()
        watcher.start()
        ws.drop()
        assert ws.wait_connected(2, timeout=10)
        assert ws.wait_for(lambda _: "is back" in caplog.text, timeout=5)
    finally:
        stop.set()
        watcher.join(5)
        client.close()
    said = [r.getMessage() for r in caplog.records if r.name == "cfy_bot.slack"]
    assert said[0] == "Socket Mode connection is down; the client is reconnecting"
    assert said[1].startswith("Socket Mode connection is back after ") and len(said) == 2


def test_a_long_outage_is_timed_on_the_injected_clock(caplog: Any) -> None:
    from sim_fixtures import eventually

    from bot.clock import FakeClock
    from bot.slack.runtime import watch_connection

    clock, up, stop = FakeClock(), threading.Event(), threading.Event()
    up.set()
    watcher = threading.Thread(target=watch_connection, args=(up.is_set, stop, 0.01),
                               kwargs={"remind": 300.0, "clock": clock})
    caplog.set_level(logging.WARNING, logger="cfy_bot.slack")
    watcher.start()
    try:
        up.clear()
        assert eventually(lambda: "connection is down" in caplog.text)
        for minutes in (5, 10):
            clock.advance(300)  # no one waits five minutes: the clock is told they passed
            assert eventually(lambda m=minutes: f"still down after {m * 60} s" in caplog.text)
        up.set()
        assert eventually(lambda: "is back after 600 s down" in caplog.text)
    finally:
        stop.set()
        watcher.join(5)


def test_serve_socket_says_when_the_websocket_did_not_open(tmp_path: Path, fake: FakeSlack, capsys: Any) -> None:
    from bot.config import load_settings
    from bot.settings import ManagerSettings
    from bot.slack import serve_socket

    fake.socket_url = "ws://127.0.0.1:9/link"  # apps.connections.open answers, but nothing listens there
    settings = load_settings({"BOT_DATA_DIR": str(tmp_path), "SLACK_BOT_TOKEN": "xoxb-test",
                              "SLACK_APP_TOKEN": "xapp-test", "SLACK_API_URL": fake.api_url},
                             managers=(ManagerSettings("production", ("http://127.0.0.1:9",), password="pw"),))
    before = signal.getsignal(signal.SIGTERM)

    def stop_when_serving() -> None:  # SIGTERM to this process, once serve_socket has put its handler in place
        end = time.monotonic() + 10
        while signal.getsignal(signal.SIGTERM) is before and time.monotonic() < end:
            time.sleep(0.01)
        fake.wait_for(lambda f: f.calls_to("apps.connections.open"))  # it went on to connect
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=stop_when_serving, daemon=True).start()
    assert serve_socket(settings) == 0
    assert signal.getsignal(signal.SIGTERM) is before  # put back
    err = capsys.readouterr().err
    assert "the Socket Mode connection did not open yet; retrying" in err and "connected to Slack" not in err


# -- `cfy-bot socket`, for real -----------------------------------------------------------------------------

def _start(tmp_path: Path, fake: FakeSlack, **env: str) -> subprocess.Popen[bytes]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "BOT_", "CLOUDIFY_"))}
    base.update(SLACK_BOT_TOKEN="xoxb-test", SLACK_APP_TOKEN="xapp-test", SLACK_API_URL=fake.api_url,
                CLOUDIFY_MANAGER_URL="http://127.0.0.1:9", CLOUDIFY_PASSWORD="pw", BOT_DATA_DIR=str(tmp_path),
                PYTHONPATH=str(ROOT))
    base.update(env)
    return subprocess.Popen([sys.executable, "-m", "bot.front.cli", "socket"], cwd=tmp_path, env=base,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _stop(proc: subprocess.Popen[bytes], timeout: float = 15) -> tuple[int, str, float]:
    """SIGTERM, then (exit code, everything printed, seconds it took to stop)."""
    began = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        out = proc.communicate(timeout=timeout)[0].decode()
    except subprocess.TimeoutExpired:
        proc.kill()
        out = proc.communicate()[0].decode()
    return proc.returncode, out, time.monotonic() - began


@pytest.mark.slow
def test_cfy_bot_socket_answers_a_command_and_a_mention(tmp_path: Path, fake: FakeSlack, ws: SocketSlack) -> None:
    proc = _start(tmp_path, fake)
    try:
        assert ws.wait_connected(timeout=20), "cfy-bot socket did not connect"
        sent = time.monotonic()
        eid = ws.push("slash_commands", command_fields("help", response_url=fake.response_url("sock")),
                      accepts_response_payload=True)
        assert ws.wait_ack(eid, timeout=3) == {"envelope_id": eid} and ws.ack_at[eid] - sent < 3
        mid = ws.push("events_api", event_callback(mention_event("<@UBOT> help", ts="1764000000.000900")))
        assert ws.wait_ack(mid, timeout=3) == {"envelope_id": mid}
        assert fake.wait_for(lambda f: f.calls_to("response_url") and f.calls_to("chat.postMessage"), timeout=10)
    finally:
        code, out, took = _stop(proc)
    assert "Commands you can run" in fake.calls_to("response_url")[0].params["text"]
    [reply] = [c.params for c in fake.calls_to("chat.postMessage")]
    assert reply["thread_ts"] == "1764000000.000900" and "Commands you can run" in reply["text"]
    assert [c.token for c in fake.calls_to("apps.connections.open")] == ["xapp-test"]
    assert (code, took < 10) == (0, True), out
    assert "connected to Slack in Socket Mode" in out and "Traceback" not in out, out
    assert "xoxb-test" not in out and "xapp-test" not in out


@pytest.mark.slow
def test_sigterm_does_not_wait_for_a_running_operation(tmp_path: Path, fake: FakeSlack, ws: SocketSlack) -> None:
    from sim_fixtures import served

    from bot.store import Store
    from simulator import Simulator

    sim = Simulator(data_dir=str(tmp_path / "sim"), durations={"create_snapshot": 120.0, "default": 0.2})
    (tmp_path / "bot").mkdir()
    with served(sim) as url:
        proc = _start(tmp_path / "bot", fake, CLOUDIFY_MANAGER_URL=url, CLOUDIFY_USERNAME="admin",
                      CLOUDIFY_PASSWORD="admin", BOT_OPERATORS=OPERATOR)
        try:
            assert ws.wait_connected(timeout=20), "cfy-bot socket did not connect"
            ws.push("slash_commands", command_fields("snapshots create s1", user=OPERATOR))
            assert fake.wait_for(lambda f: any("creating snapshot s1" in c.params.get("text", "")
                                               for c in f.calls_to("chat.postMessage")), timeout=15)
        finally:
            code, out, took = _stop(proc)
    assert (code, took < 10) == (0, True), out
    assert "stopping while operations run; the next start resumes or settles them" in out, out
    store = Store(tmp_path / "bot" / "cfy-bot.db")
    try:
        [op] = store.list_operations()
        assert op.state == "running"  # left for the next start to pick up, as after a crash
    finally:
        store.close()
    sim.close()
