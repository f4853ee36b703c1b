"""bot/cloudify/sockets.py: the bot's own transport reads its sockets 1 MiB at a time, and nobody else's."""

from __future__ import annotations

import hashlib
import os
import socket
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
