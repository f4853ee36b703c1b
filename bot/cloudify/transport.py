"""An in-process httpx transport: the simulator (or any WSGI app) behind the real client, streaming both ways."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import httpx

from bot.cloudify.wire import _int_or_none

log = logging.getLogger("cfy_bot.cloudify")  # the client's logger: one name for everything the client logs


def wsgi_transport(apps: Callable[..., Any] | Mapping[str, Callable[..., Any]]) -> httpx.BaseTransport:
    """An httpx transport that calls WSGI apps in-process, streaming request and response bodies.

    `apps` is one WSGI callable, or a dict from URL host (or host:port) to WSGI callable. An app that raises
    ConnectionRefusedError is a refused connection (httpx.ConnectError); TimeoutError is a read timeout.
    A response shorter than its Content-Length ends with a protocol error, as over a real socket.
    """
    return _WSGITransport(apps)


class _WSGITransport(httpx.BaseTransport):
    def __init__(self, apps: Callable[..., Any] | Mapping[str, Callable[..., Any]]) -> None:
        self._apps: Mapping[str, Callable[..., Any]] = {} if callable(apps) else dict(apps)
        self._default = apps if callable(apps) else None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        host, port = request.url.host, request.url.port or {"http": 80, "https": 443}[request.url.scheme]
        app = self._apps.get(f"{host}:{port}") or self._apps.get(host) or self._default
        if app is None:
            raise httpx.ConnectError(f"no WSGI app serves host {host}", request=request)
        started: list[Any] = []
        written: list[bytes] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if exc_info and started:
                raise exc_info[1].with_traceback(exc_info[2])
            started[:] = [status, headers]
            return written.append

        try:
            result = app(_environ(request, host, port), start_response)
            body = iter(result)
            while not started:  # an app may call start_response only when its body is first iterated
                written.append(next(body))
        except ConnectionRefusedError as exc:
            raise httpx.ConnectError(str(exc) or "connection refused", request=request) from None
        except TimeoutError as exc:
            raise httpx.ReadTimeout(str(exc) or "timed out", request=request) from None
        status = int(started[0].split()[0])
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in started[1]]
        bodiless = request.method == "HEAD" or status in (204, 304) or status < 200
        length = None if bodiless else _int_or_none(dict((k.lower(), v) for k, v in started[1]).get("content-length"))
        stream = _WSGIResponseStream(itertools.chain(written, body), result, request, length)
        return httpx.Response(status, headers=headers, stream=stream, request=request)


def _environ(request: httpx.Request, host: str, port: int) -> dict[str, Any]:
    if not isinstance(request.stream, httpx.SyncByteStream):
        raise TypeError("this transport serves the sync httpx.Client only")
    environ: dict[str, Any] = {
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": request.url.scheme,
        "wsgi.input": _WSGIInput(request.stream),
        "wsgi.input_terminated": True,  # the body ends where the stream ends (chunked uploads)
        "wsgi.errors": _LogErrors(),
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "REQUEST_METHOD": request.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": request.url.path,
        "RAW_URI": request.url.raw_path.decode("ascii"),
        "QUERY_STRING": request.url.query.decode("ascii"),
        "SERVER_NAME": host,
        "SERVER_PORT": str(port),
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
    }
    for raw_key, raw_value in request.headers.raw:
        key = raw_key.decode("latin-1").upper().replace("-", "_")
        key = key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key
        value = raw_value.decode("latin-1")
        environ[key] = f"{environ[key]}, {value}" if key in environ else value
    return environ


class _LogErrors:
    """`wsgi.errors` written to the client's logger, `cfy_bot.cloudify` (at debug level)."""

    def write(self, text: str) -> None:
        if text.strip():
            log.debug("wsgi: %s", text.rstrip())

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        pass


class _WSGIInput:
    """`wsgi.input` over the request stream: read lazily, so a chunked upload is never buffered whole."""

    def __init__(self, stream: Iterable[bytes]) -> None:
        self._chunks = iter(stream)
        self._buffer = bytearray()
        self._done = False

    def _fill(self, wanted: int, stop: bytes | None = None) -> None:
        while not self._done and (wanted < 0 or len(self._buffer) < wanted):
            if stop is not None and stop in self._buffer:
                return
            chunk = next(self._chunks, None)
            if chunk is None:
                self._done = True
            else:
                self._buffer += chunk

    def _take(self, n: int) -> bytes:
        n = len(self._buffer) if n < 0 else min(n, len(self._buffer))
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data

    def read(self, size: int | None = -1) -> bytes:
        size = -1 if size is None else size
        if size > 0 and not self._buffer:
            self._fill(1)  # one chunk at a time, as a socket would
            return self._take(size)
        self._fill(size)
        return self._take(size)

    def readline(self, size: int | None = -1) -> bytes:
        size = -1 if size is None else size
        self._fill(size, stop=b"\n")
        end = self._buffer.find(b"\n")
        n = end + 1 if end >= 0 else len(self._buffer)
        return self._take(n if size < 0 else min(n, size))

    def readlines(self, hint: int = -1) -> list[bytes]:
        return list(iter(self.readline, b""))

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.readline, b"")


class _WSGIResponseStream(httpx.SyncByteStream):
    """The app's body iterable, passed on chunk by chunk; faults raised mid-body become httpx errors."""

    def __init__(self, body: Iterator[bytes], result: Any, request: httpx.Request, length: int | None) -> None:
        self._body, self._result, self._request, self._length = body, result, request, length

    def __iter__(self) -> Iterator[bytes]:
        received = 0
        try:
            for chunk in self._body:
                if chunk:
                    received += len(chunk)
                    yield bytes(chunk)
        except TimeoutError as exc:
            raise httpx.ReadTimeout(str(exc) or "timed out", request=self._request) from None
        except ConnectionError as exc:
            raise httpx.ReadError(str(exc) or "connection reset", request=self._request) from None
        if self._length is not None and received < self._length:
            raise httpx.RemoteProtocolError(
                f"peer closed connection without sending complete message body (received {received} bytes, "
                f"expected {self._length})", request=self._request)

    def close(self) -> None:
        close = getattr(self._result, "close", None)
        if close is not None:
            close()
