"""bot/cloudify/sockets.py: the bot's own transport reads its sockets 1 MiB at a time, and nobody else's."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import socket
import ssl
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import httpcore
import httpx
import pytest

from bot import errors
from bot.cloudify import Manager
from bot.cloudify.sockets import READ_SIZE, ManagerTransport, client_transport
from bot.settings import ManagerSettings

BODY = os.urandom(1 << 20) * 16  # 16 MiB


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


def _archive(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    if environ["PATH_INFO"] == "/api/version":
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b'{"version": "7.0.5", "edition": "premium"}']
    start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(BODY)))])
    return [BODY]


@contextmanager
def _served(app: Callable[..., Any]) -> Iterator[str]:
    server: WSGIServer = make_server("127.0.0.1", 0, app, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _chunks(client: httpx.Client, url: str) -> list[int]:
    sha = hashlib.sha256()
    sizes = []
    with client.stream("GET", url + "/archive") as response:
        assert response.status_code == 200
        for chunk in response.iter_raw():
            sha.update(chunk)
            sizes.append(len(chunk))
    assert sha.digest() == hashlib.sha256(BODY).digest()
    return sizes


def test_the_bot_transport_reads_more_than_httpcore_s_64_kib_and_a_plain_client_keeps_its_default() -> None:
    with _served(_archive) as url, httpx.Client(transport=ManagerTransport()) as ours, httpx.Client() as plain:
        mine = _chunks(ours, url)
        theirs = _chunks(plain, url)  # the same process, after ours: nothing global was changed
    assert max(theirs) <= 64 * 1024
    assert 64 * 1024 < max(mine) <= READ_SIZE


def test_a_manager_without_an_injected_transport_uses_the_bot_transport_over_a_real_socket() -> None:
    with _served(_archive) as url:
        manager = Manager(ManagerSettings(name="prod", urls=(url,), username="admin", password="admin"))
        try:
            assert manager.version()["version"] == "7.0.5"
            assert isinstance(manager._shared.client._transport, ManagerTransport)
        finally:
            manager._shared.client.close()


def test_httpcore_errors_arrive_as_httpx_errors_and_the_manager_names_the_refused_node() -> None:
    with socket.socket() as sock:  # a port nobody listens on: bound, never listening
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        with httpx.Client(transport=ManagerTransport()) as client, pytest.raises(httpx.ConnectError) as caught:
            client.get(url + "/api/version")
        assert isinstance(caught.value.__cause__, httpcore.ConnectError)
        manager = Manager(ManagerSettings(name="prod", urls=(url,), username="admin", password="admin"))
        with pytest.raises(errors.ManagerUnreachable, match="127.0.0.1"):
            manager.version()


def test_a_proxy_in_the_environment_keeps_httpx_s_own_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert client_transport(True) is None
    monkeypatch.delenv("HTTPS_PROXY")
    for name in ("HTTP_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert isinstance(client_transport(False), ManagerTransport)


# --- the archive download read straight from its socket (DirectBody) -----------------------------------


class _Scripted:
    """A raw HTTP server on 127.0.0.1: each connection gets `pieces` (after reading the request head), each
    sent with its own sendall, then the connection is closed. `heads` records the request heads."""

    def __init__(self, pieces: list[bytes], context: ssl.SSLContext | None = None) -> None:
        self.pieces, self.context, self.heads = pieces, context, []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"{'https' if self.context else 'http'}://127.0.0.1:{self.sock.getsockname()[1]}"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed: the test is over
            with conn, contextlib.suppress(OSError):  # a client that leaves early resets the connection
                link = self.context.wrap_socket(conn, server_side=True) if self.context else conn
                head = b""
                while b"\r\n\r\n" not in head:
                    head += link.recv(65536)
                self.heads.append(head)
                for piece in self.pieces:
                    link.sendall(piece)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() (closing alone would not)
        self.sock.close()
        self.thread.join(timeout=5)


def _head(length: int | None, *extra: str, status: str = "200 OK", eol: str = "\r\n") -> bytes:
    lines = [f"HTTP/1.1 {status}", "Content-Type: application/octet-stream", *extra]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return (eol.join(lines) + eol + eol).encode()


def _manager(url: str, **kw: Any) -> Manager:
    return Manager(ManagerSettings(name="prod", urls=(url,), username="admin", password="admin", read_timeout=10,
                                   **kw))


def _read_direct(manager: Manager, buffer_size: int = 1 << 20) -> bytes:
    got = bytearray()
    buffer = memoryview(bytearray(buffer_size))
    with manager.download_snapshot("s1") as download:
        assert download.readinto is not None, "the bot's transport offers the body straight from the socket"
        assert download.size == len(BODY)
        while n := download.readinto(buffer):
            got += buffer[:n]
    return bytes(got)


INTERIM = b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"


@pytest.mark.parametrize("pieces", [
    pytest.param([_head(len(BODY)) + BODY], id="head-and-body-together"),
    pytest.param([_head(len(BODY)), BODY[:3], BODY[3:]], id="head-then-body-apart"),
    pytest.param([INTERIM + _head(len(BODY)) + BODY[:100], BODY[100:]], id="a-1xx-head-first"),
    pytest.param([_head(len(BODY), eol="\n") + BODY], id="bare-LF-head"),
])
def test_the_archive_body_is_read_straight_from_the_socket_byte_for_byte(pieces: list[bytes]) -> None:
    server = _Scripted(pieces)
    try:
        manager = _manager(server.url)
        assert hashlib.sha256(_read_direct(manager)).digest() == hashlib.sha256(BODY).digest()
        assert _read_direct(manager, buffer_size=4093) == BODY  # a buffer of any size, filled from where it was
        assert server.heads[0].startswith(b"GET /api/v3.1/snapshots/s1/archive HTTP/1.1\r\n")
        assert b"accept-encoding: identity" in server.heads[0].lower()
    finally:
        server.close()


def test_a_body_cut_short_on_the_direct_path_says_how_far_it_got() -> None:
    server = _Scripted([_head(len(BODY)) + BODY[:1000], BODY[1000:400_000]])  # then the server closes
    try:
        with pytest.raises(errors.ManagerUnreachable, match=rf"broke off the download of snapshot s1 after "
                                                            rf"400000 of {len(BODY)} bytes \(the server closed"):
            _read_direct(_manager(server.url))
    finally:
        server.close()


@pytest.mark.parametrize(("pieces", "body"), [
    pytest.param([_head(None, "Transfer-Encoding: chunked") + b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"],
                 b"hello world", id="chunked"),
    pytest.param([_head(len(gzip.compress(b"hello world")), "Content-Encoding: gzip") + gzip.compress(b"hello world")],
                 None, id="gzip-despite-identity"),
    pytest.param([_head(None, "Connection: close") + b"until the end"], b"until the end", id="close-delimited"),
])
def test_a_body_not_framed_by_content_length_alone_is_read_through_httpcore(pieces: list[bytes],
                                                                           body: bytes | None) -> None:
    server = _Scripted(pieces)
    try:
        with _manager(server.url).download_snapshot("s1") as download:
            assert download.readinto is None
            if body is not None:  # (a gzipped body is decoded by httpx; Content-Length counts it encoded)
                assert b"".join(download.chunks) == body
    finally:
        server.close()


def test_a_direct_body_is_read_one_way_and_only_inside_its_with_block() -> None:
    server = _Scripted([_head(len(BODY)) + BODY])
    buffer = memoryview(bytearray(1000))
    try:
        manager = _manager(server.url)
        with manager.download_snapshot("s1") as download:
            assert download.readinto is not None and download.readinto(buffer) > 0
            with pytest.raises(RuntimeError, match="read one way"):
                next(iter(download.chunks))
        with pytest.raises(RuntimeError, match="the download is closed"):
            download.readinto(buffer)
        with manager.download_snapshot("s1") as download:
            assert next(iter(download.chunks))
            assert download.readinto is not None
            with pytest.raises(RuntimeError, match="read one way"):
                download.readinto(buffer)
    finally:
        server.close()


def test_an_error_answer_on_the_download_connection_is_read_as_usual() -> None:
    body = b'{"error_code": "not_found_error", "message": "Requested `Snapshot` with ID `s1` was not found"}'
    server = _Scripted([_head(len(body), status="404 NOT FOUND").replace(b"octet-stream", b"json") + body])
    try:
        with pytest.raises(errors.ManagerNotFound, match="snapshot s1 does not exist on manager prod"), \
                _manager(server.url).download_snapshot("s1"):
            pass
    finally:
        server.close()


def test_the_direct_path_over_tls(tmp_path: Any) -> None:
    from test_cloudify_transport import self_signed

    folder = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(f"{folder}/cert.pem", f"{folder}/key.pem")
    server = _Scripted([_head(len(BODY)) + BODY[:70_000], BODY[70_000:]], context)
    try:
        assert _read_direct(_manager(server.url, ca_bundle=f"{folder}/cert.pem")) == BODY
    finally:
        server.close()


def test_a_corrupted_archive_on_the_direct_path_is_caught_and_nothing_is_kept(tmp_path: Any, clock: Any) -> None:
    from test_archive import snapshot_zip

    from bot.archive.folder import FolderArchive
    from bot.errors import ArchiveError
    from bot.store import Store

    payload = os.urandom(3 << 20)
    good = snapshot_zip(payload=payload)
    bad = bytearray(good)
    bad[good.index(payload[:64]) + (2 << 20)] ^= 0x01
    store = Store(str(tmp_path / "bot.db"), clock=clock)
    archive = FolderArchive(str(tmp_path / "archive"), store, clock)
    for data in (bytes(bad), good):
        server = _Scripted([_head(len(data)) + data[:5000], data[5000:]])
        try:
            with _manager(server.url).download_snapshot("s1") as download:
                assert download.readinto is not None
                if data is good:
                    row = archive.save("prod", "s1", download)
                else:
                    with pytest.raises(ArchiveError, match="(?i)crc|damaged"):
                        archive.save("prod", "s1", download)
                    assert store.list_copies() == [] and os.listdir(tmp_path / "archive" / "prod") == []
        finally:
            server.close()
    with open(row.location, "rb") as fh:
        assert fh.read() == good
    assert row.sha256 == hashlib.sha256(good).hexdigest() and row.verified
    store.close()
