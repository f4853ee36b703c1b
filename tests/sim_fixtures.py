"""Helpers for the simulator tests: a fake clock, a stdlib WSGI caller, a served simulator on 127.0.0.1; and
`eventually`, for waiting on another thread."""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote, urlencode

from simulator import Simulator

T0 = 1_795_000_000.0  # 2026-11-18T11:06:40Z


class Clock:
    """Simulated time: moves only when advanced (sleep advances it too)."""

    def __init__(self, start: float = T0) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds

    sleep = advance


@dataclass
class Result:
    """A WSGI answer, fully read."""

    status: int
    headers: dict[str, str]
    body: bytes
    header_list: list[tuple[str, str]] = field(default_factory=list)

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode()


def basic(user: str, password: str) -> str:
    """An Authorization header value for Basic auth."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def environ(method: str, path: str, *, query: dict[str, Any] | list[tuple[str, str]] | None = None,
            body: bytes = b"", headers: dict[str, str] | None = None, chunked: bool = False) -> dict[str, Any]:
    """A WSGI environ (what a server, or httpx's WSGI transport, would build)."""
    raw_path, _, raw_query = path.partition("?")
    qs = urlencode(query, doseq=True) if query else raw_query
    env: dict[str, Any] = {
        "REQUEST_METHOD": method, "PATH_INFO": unquote(raw_path), "QUERY_STRING": qs, "SERVER_NAME": "sim",
        "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.input": io.BytesIO(body),
        "wsgi.input_terminated": True, "wsgi.url_scheme": "http", "wsgi.errors": io.StringIO(),
        "wsgi.version": (1, 0), "wsgi.multithread": True, "wsgi.multiprocess": False, "wsgi.run_once": False,
    }
    if chunked:
        env["HTTP_TRANSFER_ENCODING"] = "chunked"
    elif body or method in ("POST", "PUT", "PATCH", "DELETE"):
        env["CONTENT_LENGTH"] = str(len(body))
    for key, value in (headers or {}).items():
        name = key.upper().replace("-", "_")
        env[name if name in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + name] = value
    return env


def call(app: Any, method: str, path: str, *, json_body: Any = None, body: bytes | None = None,
         auth: tuple[str, str] | None = ("admin", "admin"), tenant: str | None = "default_tenant",
         headers: dict[str, str] | None = None, query: Any = None, chunked: bool = False,
         content_type: str | None = None) -> Result:
    """Call a WSGI app the way the cfy client does (JSON content type on every request by default)."""
    hdrs = {"Content-Type": content_type or "application/json"}
    if auth:
        hdrs["Authorization"] = basic(*auth)
    if tenant:
        hdrs["Tenant"] = tenant
    hdrs.update(headers or {})
    hdrs = {k: v for k, v in hdrs.items() if v is not None}
    data = json.dumps(json_body).encode() if json_body is not None else (body or b"")
    captured: dict[str, Any] = {}

    def start_response(status: str, response_headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        captured["status"], captured["headers"] = int(status.split()[0]), response_headers
        return lambda _data: None

    chunks = app(environ(method, path, query=query, body=data, headers=hdrs, chunked=chunked), start_response)
    try:
        payload = b"".join(chunks)
    finally:
        getattr(chunks, "close", lambda: None)()
    header_list = captured["headers"]
    return Result(captured["status"], {k.lower(): v for k, v in header_list}, payload, header_list)


class Api:
    """A simulator node under test, called like the official client calls it (`/api/v3.1` prefix)."""

    def __init__(self, sim: Simulator, node: str | None = None) -> None:
        self.sim, self.app = sim, sim.node_wsgi(node) if node else sim.wsgi

    def __call__(self, method: str, path: str, **kw: Any) -> Result:
        full = path if path.startswith("/api/") else "/api/v3.1" + path
        return call(self.app, method, full, **kw)

    def get(self, path: str, **kw: Any) -> Result:
        return self("GET", path, **kw)

    def put(self, path: str, **kw: Any) -> Result:
        return self("PUT", path, **kw)

    def post(self, path: str, **kw: Any) -> Result:
        return self("POST", path, **kw)

    def delete(self, path: str, **kw: Any) -> Result:
        return self("DELETE", path, **kw)

    def patch(self, path: str, **kw: Any) -> Result:
        return self("PATCH", path, **kw)


def make_sim(clock: Clock, **kw: Any) -> Simulator:
    """A simulator on `clock` (sleep advances it)."""
    return Simulator(now=clock, sleep=clock.advance, **kw)


@contextmanager
def served(sim: Simulator) -> Iterator[str]:
    """Serve `sim` over real HTTP on 127.0.0.1 (a free port); yields the base URL."""
    from simulator.server import make_server

    server = make_server("127.0.0.1", 0, sim)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def served_settings(url: str, data_dir: str) -> Any:
    """Bot settings for one manager `production` at `url` (a served simulator), admin in the terminal."""
    from bot.config import load_settings

    return load_settings({"CLOUDIFY_MANAGER_URL": url, "CLOUDIFY_MANAGER_NAME": "production",
                          "CLOUDIFY_USERNAME": "admin", "CLOUDIFY_PASSWORD": "admin",
                          "BOT_DATA_DIR": data_dir, "BOT_SHELL_ROLE": "admin"})


def approve_and_die_at(bot: Any, op_id: str, text: str = "the restore is running") -> None:
    """bob approves `op_id`, and the process running it dies (KeyboardInterrupt) as the step `text` is shown: the
    row stays `running`, as after a SIGKILL, for another bot instance on the same store to settle."""
    import pytest

    from bot.core import Actor, ProgressEvent

    class Dies:
        def emit(self, event: ProgressEvent) -> None:
            if text in event.text:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        bot.dispatcher.operations.decide(op_id, Actor("shell:bob", "bob", "shell"), "approve", Dies())


def eventually(check: Callable[[], Any], timeout: float = 5.0) -> bool:
    """Poll `check` until it is true (True) or `timeout` seconds pass (False)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(0.01)
    return False


def daily_name(now: float, days_ago: int) -> str:
    """The id seed_demo gives the daily snapshot `days_ago` days before `now` (simulator/seed.py: 02:00 UTC)."""
    midnight = datetime.fromtimestamp(now, UTC).replace(hour=2, minute=0, second=0, microsecond=0)
    return f"daily-{midnight - timedelta(days=days_ago):%Y%m%d}"


START = datetime(2026, 11, 29, 9, 0, 0, tzinfo=UTC)  # the injected clock's start (tests/conftest.py `clock`)


def daily(days_ago: int) -> str:
    """The seeded daily snapshot `days_ago` days before START (negative: a day the test moves the clock to)."""
    return daily_name(START.timestamp(), days_ago)
