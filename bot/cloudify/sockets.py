"""The bot's own transport to its managers: httpx over an httpcore pool that reads its sockets 1 MiB at a time.

Snapshot archives are gigabytes. httpcore reads a socket 64 KiB at a time (a constant of its HTTP/1.1
connection, with no public setting), and at that size a download ran at a quarter of curl's speed. This
transport gives the bot's own connection pool a network backend (httpcore's public `NetworkBackend`
interface, passed to its public `ConnectionPool`) whose streams read up to READ_SIZE bytes per call. Only
the sockets of this pool are affected: any other httpx or httpcore client in the process keeps its defaults.
Memory stays bounded by one read per connection.

The rest is what `httpx.HTTPTransport` does with the same pool: the request and response are handed over
as they are, and httpcore's exceptions become httpx's (so `bot.cloudify.exchange` sees the same errors as
with the default transport). The pool's limits are httpx's defaults. Proxies from the environment are not
handled here: `client_transport` keeps httpx's own transport when one is configured.
"""

from __future__ import annotations

import contextlib
import ssl
import typing
import urllib.request
from collections.abc import Iterable, Iterator

import httpcore
import httpx

READ_SIZE = 1 << 20  # bytes per socket read (httpcore's own: 64 KiB)

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


class _LargeReadStream(httpcore.NetworkStream):
    """A connected socket (plain or TLS) whose reads ask for at least `size` bytes."""

    def __init__(self, inner: httpcore.NetworkStream, size: int) -> None:
        self._inner, self._size = inner, size

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max(max_bytes, self._size), timeout)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, timeout)

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        return _LargeReadStream(self._inner.start_tls(ssl_context, server_hostname, timeout), self._size)

    def get_extra_info(self, info: str) -> typing.Any:
        return self._inner.get_extra_info(info)


class _LargeReads(httpcore.NetworkBackend):
    """httpcore's synchronous backend, its streams wrapped in `_LargeReadStream`."""

    def __init__(self, size: int) -> None:
        self._inner, self._size = httpcore.SyncBackend(), size

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None) -> httpcore.NetworkStream:
        stream = self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return _LargeReadStream(stream, self._size)

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None) -> httpcore.NetworkStream:
        return _LargeReadStream(self._inner.connect_unix_socket(path, timeout, socket_options), self._size)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _Body(httpx.SyncByteStream):
    def __init__(self, stream: Iterable[bytes]) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        with _as_httpx_errors():
            yield from self._stream

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()


class ManagerTransport(httpx.BaseTransport):
    """HTTP/1.1 to the manager's nodes over a pool of its own that reads each socket READ_SIZE at a time.

    `ssl_context` None: httpcore makes its default context if a node speaks TLS after all.
    """

    def __init__(self, ssl_context: ssl.SSLContext | None = None, read_size: int = READ_SIZE) -> None:
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=5.0)
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context, max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections, keepalive_expiry=limits.keepalive_expiry,
            network_backend=_LargeReads(read_size))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.SyncByteStream)
        url = httpcore.URL(scheme=request.url.raw_scheme, host=request.url.raw_host, port=request.url.port,
                           target=request.url.raw_path)
        sent = httpcore.Request(method=request.method, url=url, headers=request.headers.raw, content=request.stream,
                                extensions=request.extensions)
        with _as_httpx_errors():
            answer = self._pool.handle_request(sent)
        assert isinstance(answer.stream, Iterable)
        return httpx.Response(status_code=answer.status, headers=answer.headers, stream=_Body(answer.stream),
                              extensions=answer.extensions)

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
