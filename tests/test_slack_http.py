"""The HTTP door of `/slack/events` under hostile traffic: oversized and endless bodies, malformed bodies, what
reaches the log, replays and Slack's retries; and the server (waitress) with 100 slow clients, for real."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from slack_fake_server import ADMIN, SECRET, FakeSlack, make_slack_bot
from test_slack_app import REG

from bot.slack.fake import command_body, command_fields, event_callback, mention_event, post, send_event, signed_headers
from bot.slack.guard import MAX_BODY

MARK = "ZQXJUNK"  # a word that must never reach the log


@pytest.fixture
def fake() -> Any:
    fake = FakeSlack().start()
    yield fake
    fake.stop()


@pytest.fixture
def bot(tmp_path: Any, clock: Any, fake: FakeSlack) -> Any:
    bot = make_slack_bot(tmp_path, clock, REG, fake=fake)
    yield bot
    bot.close()


def _signed(body: str, content_type: str = "application/x-www-form-urlencoded") -> dict[str, str]:
    return {**signed_headers(SECRET, body), "Content-Type": content_type}


def _raw_post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    """POST bytes as they are (fake.post sends text)."""
    import urllib.error
    import urllib.request

    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


# -- malformed bodies, signed or not, and what reaches the log ----------------------------------------------

JUNK = {
    "binary": (b"\xff\xfe\x00" + MARK.encode() + bytes(range(256)) * 40, "application/octet-stream"),
    "payload not JSON": (f"payload=%7B{MARK}".encode(), "application/x-www-form-urlencoded"),
    "payload a JSON list": (f'payload=%5B%22{MARK}%22%5D'.encode(), "application/x-www-form-urlencoded"),
    "JSON list": (json.dumps([MARK] * 50).encode(), "application/json"),
    "deep nesting": (b"[" * 100_000 + MARK.encode(), "application/json"),
    "deep nesting in payload": (b"payload=" + b"%5B" * 50_000, "application/x-www-form-urlencoded"),
    "JSON string": (json.dumps(MARK * 100).encode(), "application/json"),
}


def test_malformed_bodies_get_4xx_and_never_reach_the_log(bot: Any, caplog: Any) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, Bolt's included, at its most talkative
    for name, (body, ctype) in JUNK.items():
        unsigned = _raw_post(bot.url, body, {"Content-Type": ctype})
        assert unsigned[0] == 401, name
        stamp = str(int(time.time()))
        mac = "v0=" + hmac.new(SECRET.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256).hexdigest()
        signed = {"Content-Type": ctype, "X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": mac}
        status, answer = _raw_post(bot.url, body, signed)
        assert status == 400 and MARK not in answer, (name, status, answer)
    bot.settle()
    assert MARK not in caplog.text and "Traceback" not in caplog.text
    assert "refused a request to /slack/events: no Slack signature" in caplog.text


def test_signed_bodies_of_odd_shapes_are_answered_without_a_traceback(bot: Any, caplog: Any) -> None:
    odd = [{"type": "block_actions", "actions": "x", "user": 5, "channel": [], "container": "c"},
           {"type": "event_callback", "event": [MARK], "event_id": 7},
           {"type": "event_callback", "event": {"type": "app_mention", "text": 5, "user": {}, "channel": 1,
                                                 "ts": []}},
           {"command": "/cfy", "text": {"a": MARK}, "user_id": [], "channel_id": {}}]
    caplog.set_level(logging.DEBUG)
    for body in odd:
        raw = json.dumps(body)
        status, _ = post(bot.url, raw, _signed(raw, "application/json"))
        assert status < 500, body
    bot.settle()
    assert "Traceback" not in caplog.text and MARK not in caplog.text


def test_bolt_logs_are_fenced(bot: Any, caplog: Any) -> None:
    """Bolt's own loggers cannot emit a body whole, whatever reaches them."""
    caplog.set_level(logging.DEBUG)
    logging.getLogger("slack_bolt.RequestVerification").info("body: %s", MARK * 10_000)
    bot.app.logger.debug(f"Request body: {MARK * 10_000}")
    assert caplog.text.count(MARK) <= 2 * 300 // len(MARK) + 2 and "characters not logged" in caplog.text


# -- oversized and endless bodies --------------------------------------------------------------------------

class _Endless:
    """A wsgi.input that never ends: counts what was read."""

    def __init__(self) -> None:
        self.read_bytes = 0

    def read(self, n: int = -1) -> bytes:
        n = 65536 if n is None or n < 0 else n
        self.read_bytes += n
        return b"x" * n


def test_a_body_without_length_is_read_only_up_to_the_limit(bot: Any) -> None:
    from bot.slack import wsgi

    stream, seen = _Endless(), []
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/slack/events", "wsgi.input": stream,
               "HTTP_TRANSFER_ENCODING": "chunked", "CONTENT_TYPE": "application/json"}
    body = b"".join(wsgi(bot.app)(environ, lambda status, headers: seen.append(status)))
    assert seen == ["413 Payload Too Large"] and b"too large" in body
    assert stream.read_bytes <= MAX_BODY + 65536


def test_a_declared_oversized_body_is_refused_before_it_is_read(bot: Any) -> None:
    from bot.slack import wsgi

    stream, seen = _Endless(), []
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/slack/events", "wsgi.input": stream,
               "CONTENT_LENGTH": str(1 << 30)}
    wsgi(bot.app)(environ, lambda status, headers: seen.append(status))
    assert seen == ["413 Payload Too Large"] and stream.read_bytes == 0


# -- replays and Slack's retries -----------------------------------------------------------------------------

def test_an_event_slack_delivers_again_runs_once(bot: Any, fake: FakeSlack) -> None:
    event = event_callback(mention_event("<@UBOT> ping", user=ADMIN), event_id="EvAGAIN1")
    assert send_event(bot.url, SECRET, event)[0] == 200
    assert send_event(bot.url, SECRET, event, retry=1)[0] == 200  # new timestamp, same event id
    bot.settle()
    assert [c.params["text"] for c in fake.calls_to("chat.postMessage")].count("pong") <= 1
    assert len([c for c in fake.calls_to("chat.postMessage") if "pong" in json.dumps(c.params)]) == 1


def test_replay_marks_hold_across_processes_and_are_forgotten(tmp_path: Any, clock: Any, bot: Any) -> None:
    """A second store on the same file (another process's) sees what the first claimed."""
    from bot.store import Store

    body = command_body(command_fields("ping", user=ADMIN, response_url=bot.fake.response_url("twice")))
    headers = signed_headers(SECRET, body)
    assert post(bot.url, body, headers) == (200, "")
    bot.settle()
    other = Store(bot.services.settings.db_path, clock=clock)
    seen = hashlib.sha256(f"{headers['X-Slack-Request-Timestamp']}:{headers['X-Slack-Signature']}".encode())
    assert not other.claim_mark("slack-request:" + seen.hexdigest())
    assert bot.front.forget_old_requests() == 0
    clock.advance(11 * 60)
    assert bot.front.forget_old_requests() == 1
    other.close()


# -- the server, for real: slow clients and a huge body ------------------------------------------------------

@pytest.fixture
def served(bot: Any) -> Iterator[str]:
    from bot.slack import wsgi
    from bot.slack.runtime import http_server, stop_http_server

    server = http_server(wsgi(bot.app), "127.0.0.1", 0, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.effective_port}"
    stop_http_server(server)
    thread.join(timeout=5)
    server.task_dispatcher.shutdown(timeout=1)
    assert not thread.is_alive()


def _connect(where: str, timeout: float = 1.0) -> socket.socket:
    host, port = where.split(":")
    return socket.create_connection((host, int(port)), timeout=timeout)


def _request(where: str, raw: bytes) -> tuple[int, bytes]:
    """Send a whole request (Connection: close), read the answer to its end; each read waits 1 s at most (the
    socket's timeout fails the test otherwise)."""
    with _connect(where) as s:
        s.sendall(raw)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        return int(data.split(b" ", 2)[1]), data


def _signed_command(where: str, text: str, response_url: str) -> bytes:
    body = command_body(command_fields(text, user=ADMIN, response_url=response_url))
    head = "".join(f"{k}: {v}\r\n" for k, v in signed_headers(SECRET, body).items())
    return (f"POST /slack/events HTTP/1.1\r\nHost: {where}\r\n{head}Content-Length: {len(body)}\r\n"
            f"Connection: close\r\n\r\n{body}").encode()


def test_slow_clients_do_not_delay_health_or_a_signed_command(served: str, bot: Any, fake: FakeSlack) -> None:
    slow = []
    try:
        for _ in range(100):  # each declares a body and sends a few bytes of it, then stays
            s = _connect(served)
            s.sendall(f"POST /slack/events HTTP/1.1\r\nHost: {served}\r\nContent-Type: application/json\r\n"
                      f"Content-Length: 5000\r\n\r\n{{\"a\"".encode())
            slow.append(s)
        status, data = _request(served, f"GET /health HTTP/1.1\r\nHost: {served}\r\nConnection: close\r\n\r\n".encode())
        assert status == 200 and b'"ok": true' in data
        assert _request(served, _signed_command(served, "ping", fake.response_url("slow")))[0] == 200
        bot.settle()
        assert ["pong" in r["text"] for r in bot.responses("slow")] == [True]
    finally:
        for s in slow:
            s.close()


def test_a_huge_declared_body_is_refused_at_once(served: str) -> None:
    with _connect(served) as s:
        s.sendall(f"POST /slack/events HTTP/1.1\r\nHost: {served}\r\nContent-Length: {1 << 30}\r\n\r\n".encode()
                  + b"x" * 65536)
        assert s.recv(65536).startswith(b"HTTP/1.1 413")


def test_a_huge_chunked_body_is_cut_off(served: str) -> None:
    chunk = b"%x\r\n%s\r\n" % (65536, b"x" * 65536)
    with _connect(served, timeout=2.0) as s:
        s.sendall(f"POST /slack/events HTTP/1.1\r\nHost: {served}\r\nTransfer-Encoding: chunked\r\n\r\n".encode())
        answer = b""
        try:
            for _ in range(64):  # 4 MiB at most; the server answers 413 after 1 MiB and closes
                s.sendall(chunk)
        except OSError:  # the server closed the connection: it stopped reading
            pass
        try:
            answer = s.recv(65536)
        except OSError:
            answer = b""
        assert answer.startswith(b"HTTP/1.1 413"), answer[:100]
