"""Socket Mode over a real WebSocket: the stand-in for Slack's endpoint, checked against RFC 6455 and slack_sdk."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest
from slack_fake_server import FakeSlack
from slack_socket_server import CLOSE, CONTINUATION, PING, PONG, TEXT, SocketSlack, accept_key, encode_frame, \
    read_frame

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
