"""The bot's own transport to its managers: httpx over an httpcore pool that reads its sockets 1 MiB at a time,
and a snapshot archive's body read straight from its socket into the caller's buffer.

Snapshot archives are gigabytes. httpcore reads a socket 64 KiB at a time (a constant of its HTTP/1.1
connection, with no public setting), and at that size a download ran at a quarter of curl's speed. This
transport gives the bot's own connection pool a network backend (httpcore's public `NetworkBackend`
interface, passed to its public `ConnectionPool`) whose streams read up to READ_SIZE bytes per call. Only
the sockets of this pool are affected: any other httpx or httpcore client in the process keeps its defaults.
Memory stays bounded by one read per connection.

A request that carries the DIRECT_BODY extension (the archive download) gets a connection of its own, whose
stream never hands httpcore a byte past the end of the response head. When the answer is framed by
Content-Length alone (no Transfer-Encoding, no Content-Encoding), the response's DIRECT_BODY extension is a
`DirectBody`: `readinto(buffer)` fills the caller's buffer with `recv_into`, the bytes copied once, by the
kernel, where httpcore and h11 would copy each piece four times in Python (about a third of a download's CPU).
It counts against Content-Length itself, and raises if the server closes early. The connection is closed with
the response, never reused (httpcore did not see the body). Any other answer reads as usual, through httpcore.

The rest is what `httpx.HTTPTransport` does with the same pool: the request and response are handed over
as they are, and httpcore's exceptions become httpx's (so `bot.cloudify.exchange` sees the same errors as
with the default transport). The pool's limits are httpx's defaults. Proxies from the environment are not
handled here: `client_transport` keeps httpx's own transport when one is configured.
"""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
import typing
import urllib.request
from collections.abc import Iterable, Iterator

import httpcore
import httpx

from bot.cloudify.wire import DIRECT_BODY

READ_SIZE = 1 << 20  # bytes per socket read (httpcore's own: 64 KiB)
_HEAD_END = re.compile(rb"\n\r?\n")  # the blank line that ends a response head (as h11 finds it)
_INTERIM = re.compile(rb"HTTP/\d\.\d 1\d\d")  # a 1xx head: the final head comes after it

# From the most specific to the least: the first match is the mapping (as httpx maps them).
_ERRORS: tuple[tuple[type[Exception], type[httpx.HTTPError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


@contextlib.contextmanager
def _as_httpx_errors() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        for source, target in _ERRORS:
            if isinstance(exc, source):
                raise target(str(exc)) from exc
        raise


class _Stream(httpcore.NetworkStream):
    """A connected socket (plain or TLS) whose reads ask for at least `size` bytes.

    With `heads` (a download's own connection) no read hands httpcore a byte past the end of the final
    response head: what follows waits in `_pending`, for `readinto`, or for httpcore's next read."""

    def __init__(self, inner: httpcore.NetworkStream, size: int, heads: bool = False) -> None:
        self._inner, self._size, self._heads = inner, size, heads
        self._pending = b""  # bytes read from the socket and not handed on yet
        self._head = b""  # the bytes of the head being read, so far
        self._timeout: float | None = -1.0  # the socket's timeout as readinto last set it (-1: not set yet)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        data, self._pending = self._pending or self._inner.read(max(max_bytes, self._size), timeout), b""
        return self._up_to_head_end(data) if self._heads and data else data

    def _up_to_head_end(self, data: bytes) -> bytes:
        """`data` up to the end of the head being read (the rest kept for later); all of it if the head goes on.

        A head is a few hundred bytes (h11 refuses one over 100 KiB), so keeping it whole costs nothing."""
        seen = self._head + data
        end = _HEAD_END.search(seen, max(0, len(self._head) - 2))
        if end is None:
            self._head = seen
            return data
        cut = end.end() - len(self._head)
        self._heads = _INTERIM.match(seen) is not None  # after a 1xx head, the real one follows
        self._pending, self._head = data[cut:], b""
        return data[:cut]

    def readinto(self, buffer: memoryview, timeout: float | None) -> int:
        """Fill the start of `buffer` from what is pending, else with one `recv_into`; how many bytes (0 at EOF)."""
        if self._pending:
            given = min(len(buffer), len(self._pending))
            buffer[:given], self._pending = self._pending[:given], self._pending[given:]
            return given
        sock = self._inner.get_extra_info("socket")
        try:
            if timeout != self._timeout:
                sock.settimeout(timeout)
                self._timeout = timeout
            n: int = sock.recv_into(buffer)
        except TimeoutError as exc:
            raise httpx.ReadTimeout(str(exc) or "timed out") from exc
        except OSError as exc:  # ssl.SSLError included
            raise httpx.ReadError(str(exc)) from exc
        return n

    def can_read_into(self) -> bool:
        return isinstance(self._inner.get_extra_info("socket"), socket.socket) and not self._heads

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, timeout)

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        return _Stream(self._inner.start_tls(ssl_context, server_hostname, timeout), self._size, self._heads)

    def get_extra_info(self, info: str) -> typing.Any:
        return self._inner.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    """httpcore's synchronous backend, its streams wrapped in `_Stream`."""

    def __init__(self, size: int, heads: bool = False) -> None:
        self._inner, self._size, self._heads = httpcore.SyncBackend(), size, heads

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None) -> httpcore.NetworkStream:
        stream = self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return _Stream(stream, self._size, self._heads)

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None) -> httpcore.NetworkStream:
        return _Stream(self._inner.connect_unix_socket(path, timeout, socket_options), self._size, self._heads)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class DirectBody:
    """A Content-Length body read straight from its connection's socket (see the module's docstring)."""

    def __init__(self, stream: _Stream, length: int, timeout: float | None) -> None:
        self._stream, self._timeout = stream, timeout
        self.length, self.received = length, 0
        self.iterated = False  # set when the body was read through httpcore instead: no direct reads then
        self.closed = False  # set when the response was closed (its connection is gone)

    def readinto(self, buffer: memoryview) -> int:
        """Fill the start of `buffer` with the next bytes of the body; how many (0 once all arrived).

        Raises httpx.ReadTimeout, httpx.ReadError, or httpx.RemoteProtocolError when the server closes early."""
        if self.closed:
            raise httpx.StreamClosed()
        if self.iterated:
            raise httpx.StreamConsumed()
        left = self.length - self.received
        if left <= 0 or not buffer:
            return 0
        n = self._stream.readinto(buffer[:left], self._timeout)
        if n == 0:
            raise httpx.RemoteProtocolError(f"the server closed the connection after {self.received} of the "
                                            f"{self.length} bytes of the body it announced")
        self.received += n
        return n


def _direct_length(answer: httpcore.Response, method: str) -> int | None:
    """The body's length when Content-Length alone frames it (as the bytes are on the wire), else None."""
    if method == "HEAD" or not 200 <= answer.status < 300 or answer.status == 204:
        return None
    headers = [(k.lower(), v.strip().lower()) for k, v in answer.headers]
    if any(k == b"transfer-encoding" or (k == b"content-encoding" and v != b"identity") for k, v in headers):
        return None
    lengths = {v for k, v in headers if k == b"content-length"}
    if len(lengths) != 1:
        return None
    value = lengths.pop()
    return int(value) if value.isdigit() else None


class _Body(httpx.SyncByteStream):
    def __init__(self, stream: Iterable[bytes], direct: DirectBody | None = None,
                 pool: httpcore.ConnectionPool | None = None) -> None:
        self._stream, self._direct, self._pool = stream, direct, pool

    def __iter__(self) -> Iterator[bytes]:
        if self._direct is not None:
            if self._direct.received:
                raise httpx.StreamConsumed()
            self._direct.iterated = True
        with _as_httpx_errors():
            yield from self._stream

    def close(self) -> None:
        if self._direct is not None:
            self._direct.closed = True
        try:
            close = getattr(self._stream, "close", None)
            if close is not None:
                close()
        finally:
            if self._pool is not None:
                self._pool.close()  # a download's own connection: never reused


class ManagerTransport(httpx.BaseTransport):
    """HTTP/1.1 to the manager's nodes over a pool of its own that reads each socket READ_SIZE at a time.

    A request with the DIRECT_BODY extension gets a connection of its own and, when its answer allows it,
    a `DirectBody` as the response's DIRECT_BODY extension. `ssl_context` None: httpcore makes its default
    context if a node speaks TLS after all.
    """

    def __init__(self, ssl_context: ssl.SSLContext | None = None, read_size: int = READ_SIZE) -> None:
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=5.0)
        self._ssl_context, self._read_size = ssl_context, read_size
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context, max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections, keepalive_expiry=limits.keepalive_expiry,
            network_backend=_Backend(read_size))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.SyncByteStream)
        url = httpcore.URL(scheme=request.url.raw_scheme, host=request.url.raw_host, port=request.url.port,
                           target=request.url.raw_path)
        sent = httpcore.Request(method=request.method, url=url, headers=request.headers.raw, content=request.stream,
                                extensions=request.extensions)
        if request.extensions.get(DIRECT_BODY):
            return self._direct(sent, request)
        with _as_httpx_errors():
            answer = self._pool.handle_request(sent)
        assert isinstance(answer.stream, Iterable)
        return httpx.Response(status_code=answer.status, headers=answer.headers, stream=_Body(answer.stream),
                              extensions=answer.extensions)

    def _direct(self, sent: httpcore.Request, request: httpx.Request) -> httpx.Response:
        """`sent` on a connection of its own whose body may be read straight from the socket."""
        pool = httpcore.ConnectionPool(ssl_context=self._ssl_context, max_connections=1, max_keepalive_connections=0,
                                       network_backend=_Backend(self._read_size, heads=True))
        try:
            with _as_httpx_errors():
                answer = pool.handle_request(sent)
        except BaseException:
            pool.close()
            raise
        assert isinstance(answer.stream, Iterable)
        stream, length = answer.extensions.get("network_stream"), _direct_length(answer, request.method)
        extensions = dict(answer.extensions)
        direct = None
        if isinstance(stream, _Stream) and stream.can_read_into() and length is not None:
            timeout = request.extensions.get("timeout", {}).get("read")
            direct = extensions[DIRECT_BODY] = DirectBody(stream, length, timeout)
        return httpx.Response(status_code=answer.status, headers=answer.headers,
                              stream=_Body(answer.stream, direct, pool), extensions=extensions)

    def close(self) -> None:
        self._pool.close()


def environment_proxies() -> bool:
    """Whether HTTP(S)_PROXY/ALL_PROXY is set: httpx's own transport then routes through it (as cfy would)."""
    proxies = urllib.request.getproxies()
    return any(proxies.get(scheme) for scheme in ("http", "https", "all"))


def client_transport(verify: ssl.SSLContext | bool) -> httpx.BaseTransport | None:
    """The transport for a manager's client: ours, or None (httpx's default) when a proxy is configured."""
    if environment_proxies():
        return None
    if verify is False:
        return ManagerTransport(httpx.create_ssl_context(verify=False))
    return ManagerTransport(verify if isinstance(verify, ssl.SSLContext) else httpx.create_ssl_context())
