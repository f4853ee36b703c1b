"""A stand-in for Slack's Socket Mode endpoint: a small stdlib WebSocket server on 127.0.0.1.

It does what Slack's side of the connection does: the HTTP Upgrade handshake (`Sec-WebSocket-Accept`), the
`hello` message, envelopes pushed as unmasked text frames, pings answered with pongs, and a close frame when told
to drop the client. It decodes what the client sends (masked frames; lengths of 7, 16 and 64 bits; fragments;
text, ping, pong, close) and records the acks, `{"envelope_id": ..., "payload": ...}`, by envelope id.

FakeSlack's `apps.connections.open` hands out `SocketSlack.url`, as Slack hands out its wss:// URL.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3
TEXT, CLOSE, PING, PONG, CONTINUATION = 0x1, 0x8, 0x9, 0xA, 0x0


def accept_key(key: str) -> str:
    """The Sec-WebSocket-Accept value for a client's Sec-WebSocket-Key."""
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def encode_frame(opcode: int, payload: bytes, mask: bytes | None = None, fin: bool = True) -> bytes:
    """One frame; servers send unmasked (`mask=None`), clients masked with a 4-byte key."""
    head = bytes([(0x80 if fin else 0) | opcode])
    bit = 0x80 if mask else 0
    n = len(payload)
    if n <= 125:
        head += bytes([bit | n])
    elif n <= 0xFFFF:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        head += mask
    return head + payload


def _read_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("the client closed the connection")
        data += chunk
    return data


def read_frame(sock: socket.socket) -> tuple[bool, int, bytes]:
    """One frame from `sock`: (fin, opcode, unmasked payload)."""
    b1, b2 = _read_exactly(sock, 2)
    n = b2 & 0x7F
    if n == 126:
        n = struct.unpack("!H", _read_exactly(sock, 2))[0]
    elif n == 127:
        n = struct.unpack("!Q", _read_exactly(sock, 8))[0]
    mask = _read_exactly(sock, 4) if b2 & 0x80 else b""
    payload = _read_exactly(sock, n)
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bool(b1 & 0x80), b1 & 0x0F, payload


@dataclass
class Link:
    """One client connection."""

    sock: socket.socket
    path: str
    headers: dict[str, str]
    lock: threading.Lock = field(default_factory=threading.Lock)
    open: bool = True

    def send(self, opcode: int, payload: bytes) -> None:
        """Send one unmasked frame."""
        with self.lock:
            self.sock.sendall(encode_frame(opcode, payload))

    def send_json(self, message: dict[str, Any]) -> None:
        """Send a JSON text message."""
        self.send(TEXT, json.dumps(message).encode())


class SocketSlack:
    """Slack's Socket Mode WebSocket endpoint. `acks` maps envelope ids to what the client sent back."""

    def __init__(self) -> None:
        self.links: list[Link] = []
        self.acks: dict[str, dict[str, Any]] = {}
        self.ack_at: dict[str, float] = {}
        self.messages: list[dict[str, Any]] = []  # every text message the client sent, in order
        self.pings = 0  # pings the client sent (each answered with a pong)
        self.pongs: list[bytes] = []  # pongs the client sent, answering ours
        self.closes: list[bytes] = []  # close frames the client sent
        self.refused: list[str] = []  # handshakes refused, and why
        self._cond = threading.Condition()
        self._server = socket.create_server(("127.0.0.1", 0))
        self._stopped = False

    # -- control -----------------------------------------------------------------------------
    def start(self) -> SocketSlack:
        """Accept connections in a daemon thread."""
        threading.Thread(target=self._accept, name="socket-slack", daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop accepting and close every connection."""
        self._stopped = True
        self._server.close()
        for link in list(self.links):
            self._close(link)

    @property
    def port(self) -> int:
        return int(self._server.getsockname()[1])

    @property
    def url(self) -> str:
        """The URL apps.connections.open hands out."""
        return f"ws://127.0.0.1:{self.port}/link"

    @property
    def link(self) -> Link:
        """The newest open connection."""
        with self._cond:
            open_links = [lnk for lnk in self.links if lnk.open]
        assert open_links, "no client is connected"
        return open_links[-1]

    def push(self, kind: str, payload: dict[str, Any], *, envelope_id: str = "", accepts_response_payload: bool
             = False, **extra: Any) -> str:
        """Send an envelope (`slash_commands`, `interactive`, `events_api`) to the client; returns its id."""
        envelope_id = envelope_id or str(uuid.uuid4())
        self.link.send_json({"envelope_id": envelope_id, "type": kind, "payload": payload,
                             "accepts_response_payload": accepts_response_payload, **extra})
        return envelope_id

    def ping(self, data: bytes = b"are-you-there") -> None:
        """Ping the client; its pong lands in `pongs`."""
        self.link.send(PING, data)

    def drop(self, code: int = 1001, reason: str = "refresh") -> None:
        """Close the newest connection from Slack's side, as Slack does every few hours."""
        link = self.link
        link.send(CLOSE, struct.pack("!H", code) + reason.encode())
        self._close(link)

    # -- waiting -----------------------------------------------------------------------------
    def wait_connected(self, count: int = 1, timeout: float = 10.0) -> bool:
        """Wait until `count` connections have said hello."""
        return self._wait(lambda: len(self.links) >= count and self.links[count - 1].open, timeout)

    def wait_ack(self, envelope_id: str, timeout: float = 5.0) -> dict[str, Any] | None:
        """The client's ack of `envelope_id`, waiting up to `timeout` seconds."""
        self._wait(lambda: envelope_id in self.acks, timeout)
        return self.acks.get(envelope_id)

    def wait_for(self, predicate: Callable[[SocketSlack], bool], timeout: float = 5.0) -> bool:
        """Poll until `predicate(self)` holds."""
        return self._wait(lambda: predicate(self), timeout)

    def _wait(self, predicate: Callable[[], bool], timeout: float) -> bool:
        end = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
            return True

    # -- serving -----------------------------------------------------------------------------
    def _accept(self) -> None:
        while not self._stopped:
            try:
                sock, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(sock,), name="socket-slack-link", daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        link = self._handshake(sock)
        if link is None:
            sock.close()
            return
        with self._cond:
            self.links.append(link)
            self._cond.notify_all()
        link.send_json({"type": "hello", "num_connections": len(self.links), "debug_info": {
            "host": "applink-fake", "approximate_connection_time": 18060}, "connection_info": {"app_id": "A1"}})
        try:
            self._read(link)
        except (ConnectionError, OSError):
            pass
        finally:
            self._close(link)

    def _read(self, link: Link) -> None:
        """Frames until the link closes: control frames at once (also between fragments), messages when whole."""
        partial: tuple[int, bytes] | None = None
        while link.open:
            fin, opcode, payload = read_frame(link.sock)
            if opcode >= CLOSE:
                self._receive(link, opcode, payload)
                continue
            if opcode == CONTINUATION:
                assert partial is not None, "a continuation frame without a first fragment"
                opcode, payload = partial[0], partial[1] + payload
            if not fin:
                partial = (opcode, payload)
                continue
            partial = None
            self._receive(link, opcode, payload)

    def _handshake(self, sock: socket.socket) -> Link | None:
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = sock.recv(1024)
            if not chunk:
                return None
            request += chunk
        head = request.split(b"\r\n\r\n", 1)[0].decode()
        line, *rest = head.split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in rest)}
        method, path, _ = line.split(" ", 2)
        problem = _refusal(method, headers)
        if problem:
            self.refused.append(problem)
            sock.sendall(f"HTTP/1.1 400 Bad Request\r\nContent-Length: {len(problem)}\r\n\r\n{problem}".encode())
            return None
        sock.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Accept: {accept_key(headers['sec-websocket-key'])}\r\n\r\n").encode())
        return Link(sock, path, headers)

    def _receive(self, link: Link, opcode: int, payload: bytes) -> None:
        if opcode == PING:
            link.send(PONG, payload)
        with self._cond:
            if opcode == PING:
                self.pings += 1
            elif opcode == PONG:
                self.pongs.append(payload)
            elif opcode == CLOSE:
                self.closes.append(payload)
                link.open = False
            elif opcode == TEXT:
                message = json.loads(payload)
                self.messages.append(message)
                if "envelope_id" in message:
                    self.acks[message["envelope_id"]] = message
                    self.ack_at[message["envelope_id"]] = time.monotonic()
            self._cond.notify_all()

    def _close(self, link: Link) -> None:
        with self._cond:
            link.open = False
            self._cond.notify_all()
        try:
            link.sock.shutdown(socket.SHUT_RDWR)  # close() alone sends no FIN while our reader sits in recv()
        except OSError:
            pass
        link.sock.close()


def _refusal(method: str, headers: dict[str, str]) -> str:
    """Why a handshake is not a WebSocket upgrade Slack would accept, or ''."""
    if method != "GET":
        return "not a GET"
    if headers.get("upgrade", "").lower() != "websocket" or "upgrade" not in headers.get("connection", "").lower():
        return "no Upgrade: websocket"
    if headers.get("sec-websocket-version") != "13":
        return "Sec-WebSocket-Version is not 13"
    if not headers.get("sec-websocket-key"):
        return "no Sec-WebSocket-Key"
    return ""

