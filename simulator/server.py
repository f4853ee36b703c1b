"""Serve a simulator over HTTP: a threaded stdlib server with a small WSGI bridge.

Unlike wsgiref, the bridge de-chunks `Transfer-Encoding: chunked` request bodies (what the cfy client
sends on upload), streams response iterables without buffering them, and turns the simulator's fault
exceptions into socket behaviour: ConnectionRefusedError closes the connection without an answer,
TimeoutError holds it silent for `hang_seconds` and then closes it.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import time
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from simulator.sim import Simulator
from simulator.store import FileBody
from simulator.wire import REASONS

CHUNK = 64 * 1024
DRAIN_LIMIT = 16 * 1024 * 1024  # beyond this an unread body is not worth reading: close instead


class ChunkedReader:
    """A file-like reader that decodes an HTTP/1.1 chunked body."""

    def __init__(self, rfile: Any) -> None:
        self._rfile, self._left, self.done = rfile, 0, False

    def _next_chunk(self) -> None:
        line = self._rfile.readline(65537)
        size = int(line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            while self._rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            self.done = True
        self._left = size

    def read(self, size: int = -1) -> bytes:
        """Up to `size` decoded bytes (all that is left when size < 0); b"" at the end."""
        out = bytearray()
        while not self.done and (size < 0 or len(out) < size):
            if self._left == 0:
                self._next_chunk()
                continue
            want = self._left if size < 0 else min(self._left, size - len(out))
            data = self._rfile.read(want)
            if not data:
                self.done = True
                break
            out += data
            self._left -= len(data)
            if self._left == 0:
                self._rfile.readline(3)  # the CRLF after each chunk
        return bytes(out)


class LimitedReader:
    """A reader that stops after Content-Length bytes."""

    def __init__(self, rfile: Any, length: int) -> None:
        self._rfile, self.left = rfile, length

    def read(self, size: int = -1) -> bytes:
        """Up to `size` bytes of what remains."""
        if self.left <= 0:
            return b""
        data: bytes = self._rfile.read(self.left if size < 0 else min(size, self.left))
        self.left -= len(data)
        return data


class WSGIRequestHandler(BaseHTTPRequestHandler):
    """Runs one request through the server's WSGI app."""

    protocol_version = "HTTP/1.1"
    server: SimServer

    def do_request(self) -> None:
        """Any method: build the environ, call the app, stream the answer."""
        body = self._input()
        try:
            result = self.server.app(self._environ(body), self._start_response)
        except ConnectionRefusedError:
            self._drop()
            return
        except TimeoutError:
            time.sleep(self.server.hang_seconds)
            self._drop()
            return
        try:
            self._send(result)
        finally:
            getattr(result, "close", lambda: None)()
        self._drain(body)

    def _drain(self, body: Any) -> None:
        """Read what the app left of the request body (up to a limit) so the connection stays in step."""
        budget = DRAIN_LIMIT
        while budget > 0 and body.read(min(CHUNK, budget)):
            budget -= CHUNK
        if budget <= 0:
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_request

    def _input(self) -> Any:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return ChunkedReader(self.rfile)
        return LimitedReader(self.rfile, int(self.headers.get("Content-Length") or 0))

    def _environ(self, body: Any) -> dict[str, Any]:
        path, _, query = self.path.partition("?")
        env: dict[str, Any] = {
            "REQUEST_METHOD": self.command, "SCRIPT_NAME": "", "PATH_INFO": unquote(path, "latin-1"),
            "QUERY_STRING": query, "SERVER_NAME": self.server.server_name, "SERVER_PORT": str(self.server.server_port),
            "SERVER_PROTOCOL": self.request_version, "REMOTE_ADDR": self.client_address[0], "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http", "wsgi.input": body, "wsgi.input_terminated": True, "wsgi.errors": sys.stderr,
            "wsgi.multithread": True, "wsgi.multiprocess": False, "wsgi.run_once": False,
        }
        for key, value in self.headers.items():
            name = key.upper().replace("-", "_")
            name = name if name in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + name
            env[name] = f"{env[name]}, {value}" if name in env else value
        return env

    def _start_response(self, status: str, headers: list[tuple[str, str]],
                        exc_info: Any = None) -> Callable[[bytes], None]:
        self._status, self._headers = status, headers
        return lambda data: None

    def _send(self, result: Iterable[bytes]) -> None:
        code = int(self._status.split()[0])
        headers = list(self._headers)
        names = {k.lower() for k, _ in headers}
        bodiless = self.command == "HEAD" or code in (204, 304)
        chunks: Iterable[bytes] = result
        if "content-length" not in names and not bodiless:
            if isinstance(result, list):
                headers.append(("Content-Length", str(sum(len(c) for c in result))))
            else:
                headers.append(("Transfer-Encoding", "chunked"))
                chunks = _chunked(result)
        self.send_response(code, REASONS.get(code, self._status.partition(" ")[2]))
        for key, value in headers:
            self.send_header(key, value)
        self.end_headers()
        declared = next((int(v) for k, v in headers if k.lower() == "content-length"), None)
        sent = 0
        if isinstance(result, FileBody) and not bodiless:
            with open(result.path, "rb") as handle:
                sent = self.connection.sendfile(handle)  # os.sendfile: the kernel copies, as nginx's sendfile
            chunks = ()
        for chunk in chunks if not bodiless else ():
            self.wfile.write(chunk)
            self.wfile.flush()
            sent += len(chunk)
        if declared is not None and not bodiless and sent < declared:
            self.close_connection = True  # a truncated download: the client sees the socket close early

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
        """Quiet unless the server is verbose."""
        if self.server.verbose:
            super().log_message(format, *args)


def _chunked(chunks: Iterable[bytes]) -> Iterable[bytes]:
    for chunk in chunks:
        if chunk:
            yield f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    yield b"0\r\n\r\n"


class SimServer(ThreadingHTTPServer):
    """A threaded HTTP server for one simulator (its first manager node)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: Callable[..., Any], verbose: bool = False) -> None:
        self.app, self.verbose, self.hang_seconds = app, verbose, 10.0
        super().__init__(address, WSGIRequestHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away is not an error worth a traceback."""
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


def make_server(host: str, port: int, sim: Simulator, node: str | None = None, verbose: bool = False) -> SimServer:
    """A server for `sim` (as manager `node`) on host:port (port 0: a free one; see `.server_port`)."""
    return SimServer((host, port), sim.node_wsgi(node), verbose=verbose)


def serve(host: str, port: int, data_dir: str | None = None, seed: bool = True, verbose: bool = True,
          ready: Callable[[str], None] | None = None, scenario: str = "healthy") -> None:
    """Serve a simulator (admin/admin, default_tenant) until interrupted; seeds demo data on first start.

    The port is bound before anything is seeded or announced: OSError (port in use) reaches the caller, and
    `ready(url)` is called only once the server listens. `scenario` (simulator.seed.Scenario) is the seeded state.
    """
    sim = Simulator(data_dir=data_dir)
    try:
        server = make_server(host, port, sim, verbose=verbose)
    except OSError:
        sim.close()
        raise
    if seed and not sim.loaded_from_disk:
        from simulator.seed import seed_demo

        seed_demo(sim, scenario)
    if ready is not None:
        ready(f"http://{host}:{server.server_port}")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        sim.close()
