"""bot/cloudify.py: node failover, notices, timeouts, streamed download and chunked upload, the transports."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import socket
import ssl
import threading
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

from bot import errors
from bot.cloudify import CHUNK_SIZE, Manager, wsgi_transport
from bot.settings import ManagerSettings

A, B, C = "http://a.sim", "http://b.sim", "http://c.sim"
MiB = 1 << 20


def settings(*urls: str, **kw: Any) -> ManagerSettings:
    base: dict[str, Any] = dict(name="prod", urls=urls, username="admin", password="admin")
    base.update(kw)
    return ManagerSettings(**base)


class Node:
    """A tiny manager node: counts requests, answers JSON, or fails as the simulator's faults do."""

    def __init__(self, name: str, status: int = 200) -> None:
        self.name, self.status = name, status
        self.fault: type[BaseException] | None = None
        self.put_status: int | None = None  # answer PUTs with this status (after reading their body)
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.lock = threading.Lock()

    def __call__(self, environ: dict, start_response: Callable) -> list[bytes]:
        length = environ.get("CONTENT_LENGTH")
        chunked = environ.get("HTTP_TRANSFER_ENCODING") == "chunked"
        body = environ["wsgi.input"].read(int(length)) if length else environ["wsgi.input"].read() if chunked else b""
        headers = {k: v for k, v in environ.items() if k.startswith(("HTTP_", "CONTENT_"))}
        with self.lock:
            self.requests.append((environ["REQUEST_METHOD"], environ["PATH_INFO"], headers, body))
        if self.fault is not None:
            raise self.fault()
        path = environ["PATH_INFO"]
        if self.status == 502 or (self.put_status == 502 and environ["REQUEST_METHOD"] == "PUT"):
            data = b"<html><title>502 Bad Gateway</title></html>"
            start_response("502 Bad Gateway", [("Content-Type", "text/html")])
            return [data]
        if path == "/api/version":
            data = json.dumps({"edition": "community", "version": "7.0.4", "node": self.name}).encode()
        elif path.endswith("/archive") and environ["REQUEST_METHOD"] == "PUT":
            start_response("201 Created", [("Content-Type", "application/json")])
            return [json.dumps({"id": path.split("/")[-2], "status": "uploaded", "size": len(body),
                                "sha256": hashlib.sha256(body).hexdigest()}).encode()]
        elif environ["REQUEST_METHOD"] == "POST":
            data = json.dumps({"id": "r1", "node": self.name}).encode()
        else:
            data = json.dumps({"status": "not-running", "node": self.name}).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]

    @property
    def count(self) -> int:
        return len(self.requests)


def cluster(*nodes: Node, **kw: Any) -> tuple[Manager, list[str]]:
    notices: list[str] = []
    urls = tuple(f"http://{n.name}.sim" for n in nodes)
    m = Manager(settings(*urls, **kw), transport=wsgi_transport({f"{n.name}.sim": n for n in nodes}),
                on_notice=notices.append)
    return m, notices


# --- failover -----------------------------------------------------------------------------------------


def test_a_refused_node_is_skipped_with_a_notice_and_the_working_node_sticks() -> None:
    a, b = Node("a"), Node("b")
    a.fault = ConnectionRefusedError
    m, notices = cluster(a, b)
    assert m.current_url == A
    assert m.snapshot_status() == "not-running"
    assert m.current_url == B
    expected = f"manager prod: node {A} refused the connection; now talking to {B}"
    assert notices == [expected]
    assert m.take_notices() == [expected] and m.take_notices() == []
    m.snapshot_status()
    assert a.count == 1 and b.count == 2  # sticks to b: a is not asked again
    assert notices == [expected]


def test_a_502_moves_to_the_next_node() -> None:
    a, b = Node("a", status=502), Node("b")
    m, notices = cluster(a, b)
    assert m.version()["node"] == "b"
    assert notices == [f"manager prod: node {A} answered 502 Bad Gateway; now talking to {B}"]


def test_failover_wraps_around_from_the_current_node() -> None:
    a, b, c = Node("a"), Node("b"), Node("c")
    b.fault = ConnectionRefusedError
    m, _ = cluster(a, b, c)
    a.fault = ConnectionRefusedError
    m.snapshot_status()  # a refused, b refused, c answers
    assert m.current_url == C
    c.fault, a.fault = ConnectionRefusedError, None
    m.snapshot_status()  # c refused, wraps to a
    assert m.current_url == A


def test_when_every_node_fails_the_manager_is_unreachable_with_each_reason() -> None:
    a, b = Node("a"), Node("b", status=502)
    a.fault = ConnectionRefusedError
    m, notices = cluster(a, b)
    with pytest.raises(errors.ManagerUnreachable) as info:
        m.snapshot_status()
    assert str(info.value) == f"manager prod is unreachable: {A} connection refused; {B} 502 Bad Gateway"
    assert not isinstance(info.value, errors.ManagerTimeout)
    assert notices == [] and m.current_url == A


def test_a_read_timeout_of_a_get_moves_on_but_a_single_node_times_out() -> None:
    a, b = Node("a"), Node("b")
    a.fault = TimeoutError
    m, notices = cluster(a, b)
    assert m.snapshot_status() == "not-running"
    assert notices == [f"manager prod: node {A} did not answer within 300 s; now talking to {B}"]
    single, _ = cluster(a, read_timeout=30)
    with pytest.raises(errors.ManagerTimeout, match=f"manager prod did not answer in time: {A} no answer within 30 s"):
        single.snapshot_status()


def test_a_read_timeout_of_a_mutating_call_is_not_failed_over() -> None:
    a, b = Node("a"), Node("b")
    m, _ = cluster(a, b)
    m.server_version()
    a.fault = TimeoutError
    with pytest.raises(errors.ManagerTimeout) as info:
        m.restore_snapshot("s1")
    assert "may still have been applied" in str(info.value) and "restore snapshot s1" in str(info.value)
    assert b.count == 0


def test_a_connect_timeout_moves_on() -> None:
    import httpx  # only to stand for a network that drops SYNs; the bot itself never sees httpx

    inner = wsgi_transport({"b.sim": Node("b")})

    class SlowToConnect(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            if request.url.host == "a.sim":
                raise httpx.ConnectTimeout("timed out", request=request)
            return inner.handle_request(request)

    notices: list[str] = []
    m = Manager(settings(A, B), transport=SlowToConnect(), on_notice=notices.append)
    assert m.snapshot_status() == "not-running"
    assert notices == [f"manager prod: node {A} did not accept the connection within 5 s; now talking to {B}"]
    pinned = m.for_node(A)
    with pytest.raises(errors.ManagerUnreachable, match="connect timed out after 5 s") as info:
        pinned.snapshot_status()
    assert not isinstance(info.value, errors.ManagerTimeout)  # it never accepted the connection


def test_concurrent_callers_share_one_failover_and_one_notice() -> None:
    a, b = Node("a"), Node("b")
    a.fault = ConnectionRefusedError
    m, notices = cluster(a, b)
    results: list[str] = []

    def work() -> None:
        results.extend(m.snapshot_status() for _ in range(20))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == ["not-running"] * 160
    assert len(notices) == 1 and m.current_url == B


def test_for_node_is_pinned_and_with_password_keeps_the_node_and_drops_the_token() -> None:
    a, b = Node("a"), Node("b")
    m, _ = cluster(a, b, token="ctok-x-y")
    pinned = m.for_node(B + "/")
    assert pinned.urls == (B,)
    pinned.snapshot_status()
    assert b.count == 1 and a.count == 0
    a.fault = ConnectionRefusedError
    with pytest.raises(errors.ManagerUnreachable):
        m.for_node(A).snapshot_status()
    m.snapshot_status()  # moves to b
    fallback = m.with_password("restored-pw")
    assert fallback.current_url == B and fallback.name == "prod"
    fallback.version()
    headers = b.requests[-1][2]
    assert headers["HTTP_AUTHORIZATION"] == "Basic YWRtaW46cmVzdG9yZWQtcHc="  # admin:restored-pw
    assert "HTTP_AUTHENTICATION_TOKEN" not in headers
    assert "restored-pw" not in repr(fallback)


def test_an_unknown_host_is_a_refused_connection() -> None:
    m = Manager(settings("http://nowhere.sim"), transport=wsgi_transport({"a.sim": Node("a")}))
    with pytest.raises(errors.ManagerUnreachable, match="nowhere.sim cannot connect"):
        m.snapshot_status()


# --- streamed download ----------------------------------------------------------------------------


def archive_app(total: int, piece: int = 64 * 1024, declared: int | None = None,
                fault_at: int | None = None) -> Callable:
    """Serves `total` bytes as a snapshot archive, generated piece by piece (never held whole)."""
    block = bytes(range(256)) * (piece // 256)

    def app(environ: dict, start_response: Callable) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(total if declared is None else declared)),
                                  ("Content-Disposition", 'attachment; filename="big.zip"')])
        sent = 0
        while sent < total:
            if fault_at is not None and sent >= fault_at:
                raise ConnectionResetError("peer reset")
            chunk = block[: min(piece, total - sent)]
            sent += len(chunk)
            yield chunk

    return app


def test_download_streams_bounded_chunks_with_size_and_filename() -> None:
    total = 5 * MiB + 123
    m = Manager(settings(A), transport=wsgi_transport(archive_app(total)))
    with m.download_snapshot("big") as download:
        sizes = [len(c) for c in download.chunks]
    assert download.size == total and download.filename == "big.zip"
    assert sum(sizes) == total and len(sizes) > 1 and max(sizes) <= CHUNK_SIZE


def test_download_of_a_big_archive_does_not_grow_memory() -> None:
    total = 96 * MiB
    m = Manager(settings(A), transport=wsgi_transport(archive_app(total)))
    tracemalloc.start()
    try:
        received = 0
        with m.download_snapshot("big") as download:
            for chunk in download.chunks:
                received += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert received == total
    assert peak < 8 * MiB, f"peak {peak / MiB:.1f} MiB for a {total / MiB:.0f} MiB archive"


def test_a_short_download_is_an_error_not_a_silent_truncation() -> None:
    m = Manager(settings(A), transport=wsgi_transport(archive_app(3 * MiB, declared=4 * MiB)))
    with pytest.raises(errors.ManagerUnreachable) as info, m.download_snapshot("big") as download:
        for _ in download.chunks:
            pass
    assert "snapshot big" in str(info.value) and "of 4194304 bytes" in str(info.value)


def test_a_connection_reset_mid_download_is_unreachable() -> None:
    m = Manager(settings(A), transport=wsgi_transport(archive_app(4 * MiB, fault_at=2 * MiB)))
    with pytest.raises(errors.ManagerUnreachable, match="broke off the download of snapshot big"), \
            m.download_snapshot("big") as download:
        for _ in download.chunks:
            pass


def test_download_of_a_missing_archive_explains_the_html_404() -> None:
    def nginx_404(environ: dict, start_response: Callable) -> list[bytes]:
        start_response("404 Not Found", [("Content-Type", "text/html")])
        return [b"<html><title>404 Not Found</title></html>"]

    m = Manager(settings(A), transport=wsgi_transport(nginx_404))
    with pytest.raises(errors.ManagerNotFound, match="no archive for snapshot s1 .*still being created"), \
            m.download_snapshot("s1"):
        pass


def test_chunks_read_after_the_with_block_is_a_clear_error() -> None:
    m = Manager(settings(A), transport=wsgi_transport(archive_app(3 * MiB)))
    with m.download_snapshot("big") as download:
        pass
    with pytest.raises(RuntimeError, match="inside its `with` block"):
        next(iter(download.chunks))


# --- chunked upload ---------------------------------------------------------------------------------


def chunks_of(total: int, size: int = 8192) -> Iterator[bytes]:
    block = b"z" * size
    sent = 0
    while sent < total:
        piece = block[: min(size, total - sent)]
        sent += len(piece)
        yield piece


def test_upload_asks_the_version_first_then_sends_a_chunked_body() -> None:
    a, b = Node("a"), Node("b")
    a.fault = ConnectionRefusedError
    m, notices = cluster(a, b)
    consumed: list[int] = []

    def body() -> Iterator[bytes]:
        for piece in chunks_of(100_000):
            consumed.append(len(piece))
            yield piece

    result = m.upload_snapshot("s1", body(), tenant="t1")
    assert result["status"] == "uploaded" and result["size"] == 100_000
    assert [(r[0], r[1]) for r in b.requests] == [("GET", "/api/version"), ("PUT", "/api/v3.1/snapshots/s1/archive")]
    headers = b.requests[1][2]
    assert headers["HTTP_TRANSFER_ENCODING"] == "chunked" and "CONTENT_LENGTH" not in headers
    assert headers["CONTENT_TYPE"] == "application/json" and headers["HTTP_TENANT"] == "t1"
    assert sum(consumed) == 100_000 and len(notices) == 1  # the body was read once, on the working node


def test_upload_by_url_sends_the_query_and_no_body() -> None:
    a = Node("a")
    m, _ = cluster(a)
    m.upload_snapshot("s1", url="https://files.example/s1.zip?sig=abc")
    method, path, headers, body = a.requests[1]
    assert (method, path, body) == ("PUT", "/api/v3.1/snapshots/s1/archive", b"")
    assert headers["CONTENT_LENGTH"] == "0"
    with pytest.raises(ValueError):
        m.upload_snapshot("s1", [b"x"], url="https://x")
    with pytest.raises(ValueError):
        m.upload_snapshot("s1")


def test_an_upload_whose_body_was_sent_is_not_resent_to_another_node() -> None:
    a, b = Node("a"), Node("b")
    m, _ = cluster(a, b)
    a.put_status = 502  # the PUT reaches a (its body is read) and nginx answers 502
    with pytest.raises(errors.ManagerUnreachable, match="not sent to another node"):
        m.upload_snapshot("s1", chunks_of(50_000))
    assert all(r[0] != "PUT" for r in b.requests)


def test_upload_of_a_big_archive_does_not_grow_memory() -> None:
    total = 64 * MiB
    digest = hashlib.sha256()

    def reader(environ: dict, start_response: Callable) -> list[bytes]:
        if environ["PATH_INFO"] == "/api/version":
            start_response("200 OK", [("Content-Type", "application/json")])
            return [b'{"version": "7.0.4"}']
        size = 0
        while piece := environ["wsgi.input"].read(64 * 1024):
            size += len(piece)
            digest.update(piece)
        start_response("201 Created", [("Content-Type", "application/json")])
        return [json.dumps({"id": "s1", "size": size}).encode()]

    m = Manager(settings(A), transport=wsgi_transport(reader))
    tracemalloc.start()
    try:
        result = m.upload_snapshot("s1", chunks_of(total))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result["size"] == total
    assert digest.hexdigest() == hashlib.sha256(b"z" * total).hexdigest()
    assert peak < 8 * MiB, f"peak {peak / MiB:.1f} MiB for a {total / MiB:.0f} MiB upload"


# --- the transports ---------------------------------------------------------------------------------


def test_an_app_that_starts_its_response_lazily_works() -> None:
    def lazy(environ: dict, start_response: Callable) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "application/json")])
        yield b'{"status": '
        yield b'"running"}'

    assert Manager(settings(A), transport=wsgi_transport(lazy)).snapshot_status() == "running"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


def test_real_sockets_refused_port_then_a_real_server() -> None:
    node = Node("real")
    server = make_server("127.0.0.1", 0, node, handler_class=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        dead = f"http://127.0.0.1:{free_port()}"
        live = f"http://127.0.0.1:{server.server_port}"
        notices: list[str] = []
        m = Manager(settings(dead, live, read_timeout=10), on_notice=notices.append)
        assert m.snapshot_status() == "not-running"
        assert notices == [f"manager prod: node {dead} refused the connection; now talking to {live}"]
        m.restore_snapshot("s1")
        _, _, headers, body = node.requests[-1]
        assert json.loads(body)["force"] is False and headers["CONTENT_TYPE"] == "application/json"
        assert headers["HTTP_AUTHORIZATION"] == "Basic YWRtaW46YWRtaW4="
        m.close()
    finally:
        server.shutdown()
        server.server_close()


def self_signed(folder: Any) -> str:
    """A self-signed certificate for 127.0.0.1; returns the folder holding cert.pem and key.pem."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                       serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    return str(folder)


def test_real_tls_untrusted_then_ca_bundle_then_trust_all(tmp_path: Any) -> None:
    folder = self_signed(tmp_path)
    server = make_server("127.0.0.1", 0, Node("tls"), handler_class=QuietHandler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(f"{folder}/cert.pem", f"{folder}/key.pem")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"https://127.0.0.1:{server.server_port}"
    try:
        with pytest.raises(errors.ManagerUnreachable) as info:
            Manager(settings(url, read_timeout=10)).snapshot_status()
        assert "TLS certificate not trusted" in str(info.value) and "CLOUDIFY_CA_BUNDLE" in str(info.value)
        assert Manager(settings(url, ca_bundle=f"{folder}/cert.pem", read_timeout=10)).snapshot_status() \
            == "not-running"
        assert Manager(settings(url, trust_all=True, read_timeout=10)).snapshot_status() == "not-running"
    finally:
        server.shutdown()
        server.server_close()


def test_tls_settings() -> None:
    with pytest.raises(errors.ConfigError, match="CLOUDIFY_CA_BUNDLE /nonexistent/ca.pem cannot be used"):
        Manager(settings(A, ca_bundle="/nonexistent/ca.pem"))
    Manager(settings("https://a.sim", trust_all=True)).close()
    with pytest.raises(errors.ConfigError, match="no node URL"):
        Manager(settings())
