"""A recording stand-in for the Slack Web API and for response URLs, plus a small threaded WSGI server.

`FakeSlack` answers `POST /api/<method>` like Slack (form or JSON bodies, `Authorization: Bearer`), records every
call, and can be told to fail a method (`{"ok": false, "error": ...}`) or rate-limit it (429 + Retry-After).
Bot tokens (`xoxb-`) work for every method but `apps.connections.open`, which only takes an app-level token
(`xapp-`) and answers with `socket_url` (a `SocketSlack` from slack_socket_server.py), as Slack does.
Response URLs are `POST /response/<name>`. Everything listens on 127.0.0.1, port 0.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import parse_qsl
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server


@dataclass
class Call:
    """One request the fake received."""

    method: str  # Web API method, or "response_url"
    params: dict[str, Any]
    token: str
    at: float = field(default_factory=time.monotonic)
    path: str = ""


class FakeSlack:
    """The fake Web API. `calls` is every request in arrival order."""

    def __init__(self, good_tokens: tuple[str, ...] = ("xoxb-test",),
                 app_tokens: tuple[str, ...] = ("xapp-test",)) -> None:
        self.good_tokens = set(good_tokens)
        self.app_tokens = set(app_tokens)
        self.socket_url = "ws://127.0.0.1:9/link"  # what apps.connections.open hands out
        self.calls: list[Call] = []
        self.faults: dict[str, list[dict[str, Any]]] = {}
        self.usergroups: list[dict[str, Any]] = []
        self.delay = 0.0
        self.paused = threading.Event()  # clear it to make every Web API call hang until it is set again
        self.paused.set()
        self.waiting = 0  # calls hanging on `paused` right now
        self._lock = threading.Lock()
        self._ts = 1_764_000_000_000_100
        self._server: ThreadingHTTPServer | None = None

    # -- control -----------------------------------------------------------------------------
    def start(self) -> FakeSlack:
        """Listen on 127.0.0.1, a free port, in a daemon thread."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                fake._handle(self)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def api_url(self) -> str:
        """What SLACK_API_URL is set to."""
        return self.url + "/api/"

    def response_url(self, name: str = "r1") -> str:
        """A response URL that records what is posted to it."""
        return f"{self.url}/response/{name}"

    def fail(self, method: str, error: str = "channel_not_found", times: int = 1) -> None:
        """Answer the next `times` calls of `method` with `{"ok": false, "error": error}`."""
        self.faults.setdefault(method, []).extend({"error": error} for _ in range(times))

    def rate_limit(self, method: str, retry_after: int = 1, times: int = 1) -> None:
        """Answer the next `times` calls of `method` with 429 and `Retry-After`."""
        self.faults.setdefault(method, []).extend({"status": 429, "retry_after": retry_after} for _ in range(times))

    # -- reading what happened ----------------------------------------------------------------
    def calls_to(self, method: str) -> list[Call]:
        """The recorded calls of one method, in order."""
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def methods(self) -> list[str]:
        with self._lock:
            return [c.method for c in self.calls]

    def wait_for(self, predicate: Callable[[FakeSlack], bool], timeout: float = 10.0) -> bool:
        """Poll until `predicate(self)` holds (True) or `timeout` passes (False)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate(self):
                return True
            time.sleep(0.01)
        return predicate(self)

    # -- answering ----------------------------------------------------------------------------
    def _handle(self, req: BaseHTTPRequestHandler) -> None:
        raw = req.rfile.read(int(req.headers.get("Content-Length") or 0)).decode()
        if "json" in (req.headers.get("Content-Type") or ""):
            params = json.loads(raw or "{}")
        else:
            params = dict(parse_qsl(raw, keep_blank_values=True))
        token = (req.headers.get("Authorization") or "").removeprefix("Bearer ").strip() or params.get("token", "")
        if req.path.startswith("/response/"):
            self._record(Call("response_url", params, token, path=req.path))
            return _send(req, 200, "ok", "text/plain")
        method = req.path.removeprefix("/api/").strip("/")
        if self.delay:
            time.sleep(self.delay)
        if not self.paused.is_set():
            with self._lock:
                self.waiting += 1
            self.paused.wait(30)
            with self._lock:
                self.waiting -= 1
        fault = self._take_fault(method)
        self._record(Call(method, params, token, path=req.path))
        if fault and fault.get("status") == 429:
            return _send(req, 429, json.dumps({"ok": False, "error": "ratelimited"}),
                         headers={"Retry-After": str(fault["retry_after"])})
        if fault:
            return _send(req, 200, json.dumps({"ok": False, "error": fault["error"]}))
        problem = self._token_problem(method, token)
        if problem:
            return _send(req, 200, json.dumps({"ok": False, "error": problem}))
        return _send(req, 200, json.dumps(self._answer(method, params)))

    def _token_problem(self, method: str, token: str) -> str:
        """Slack's error for a token this method does not take, or ''."""
        wanted, other = (self.app_tokens, self.good_tokens) if method == "apps.connections.open" \
            else (self.good_tokens, self.app_tokens)
        if token in wanted:
            return ""
        return "not_allowed_token_type" if token in other else "invalid_auth"

    def _take_fault(self, method: str) -> dict[str, Any] | None:
        with self._lock:
            queue = self.faults.get(method)
            return queue.pop(0) if queue else None

    def _record(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)

    def _next_ts(self) -> str:
        with self._lock:
            self._ts += 100
            return f"{self._ts // 1_000_000}.{self._ts % 1_000_000:06d}"

    def _answer(self, method: str, p: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {"ok": True, "url": "https://example.slack.com/", "team": "Example", "user": "cfy-bot",
                    "team_id": "T1", "user_id": "UBOT", "bot_id": "BBOT", "is_enterprise_install": False}
        if method == "chat.postMessage":
            ts = self._next_ts()
            return {"ok": True, "channel": p.get("channel"), "ts": ts,
                    "message": {"text": p.get("text", ""), "ts": ts, "thread_ts": p.get("thread_ts")}}
        if method == "chat.update":
            return {"ok": True, "channel": p.get("channel"), "ts": p.get("ts"), "text": p.get("text", "")}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": self._next_ts()}
        if method == "usergroups.list":
            return {"ok": True, "usergroups": self.usergroups}
        if method == "usergroups.users.list":
            group = next((g for g in self.usergroups if g["id"] == p.get("usergroup")), None)
            return {"ok": True, "users": (group or {}).get("users", [])}
        if method == "conversations.create":
            return {"ok": True, "channel": {"id": "C" + self._next_ts().replace(".", "")[-8:], "name": p.get("name")}}
        if method == "apps.connections.open":
            return {"ok": True, "url": self.socket_url}
        return {"ok": True}  # conversations.invite/setTopic, pins.add, reactions.add, ...


def _send(req: BaseHTTPRequestHandler, status: int, body: str, ctype: str = "application/json",
          headers: dict[str, str] | None = None) -> None:
    data = body.encode()
    req.send_response(status)
    req.send_header("Content-Type", ctype)
    req.send_header("Content-Length", str(len(data)))
    for k, v in (headers or {}).items():
        req.send_header(k, v)
    req.end_headers()
    req.wfile.write(data)


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


class WSGIServerThread:
    """Serve a WSGI app on 127.0.0.1 (free port) in a thread, one thread per request, like gunicorn gthread."""

    def __init__(self, wsgi_app: Callable[..., Any]) -> None:
        self.server = make_server("127.0.0.1", 0, wsgi_app, server_class=_ThreadingWSGIServer,
                                  handler_class=_QuietHandler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# -- a whole Slack front end over the real WSGI adapter, for tests -------------------------------------

SECRET = "test-signing-secret"
ADMIN, ADMIN2, OPERATOR, VIEWER = "UADMIN1", "UADMIN2", "UOPER1", "UVIEW1"


@dataclass
class SlackBot:
    """The real Bolt app behind a real HTTP server, talking to a FakeSlack."""

    fake: FakeSlack
    app: Any
    front: Any
    services: Any
    server: WSGIServerThread
    clock: Any

    @property
    def url(self) -> str:
        return self.server.url + "/slack/events"

    @property
    def store(self) -> Any:
        return self.services.store

    def command(self, text: str, user: str = ADMIN, channel: str = "C100", **kw: Any) -> tuple[int, str]:
        """Send a signed `/cfy TEXT`; the response URL records under the name `cmd-<user>`."""
        from bot.slack.fake import send_command

        kw.setdefault("response_url", self.fake.response_url(f"cmd-{user}"))
        return send_command(self.url, SECRET, text, user=user, user_name=user.lower(), channel=channel, **kw)

    def click(self, action: str, op_id: str, user: str = ADMIN, channel: str = "C100", message_ts: str = "",
              **kw: Any) -> tuple[int, str]:
        """Send a signed click on `cfy_<action>` with value `op_id`."""
        from bot.slack.fake import send_click

        kw.setdefault("response_url", self.fake.response_url(f"click-{user}"))
        return send_click(self.url, SECRET, action, op_id, user=user, user_name=user.lower(), channel=channel,
                          message_ts=message_ts, **kw)

    def responses(self, name: str) -> list[dict[str, Any]]:
        """What was posted to the response URL `name`."""
        return [c.params for c in self.fake.calls_to("response_url") if c.path.endswith("/" + name)]

    def settle(self, timeout: float = 10.0) -> None:
        """Wait until the bot's pools are idle and the outbox is empty."""
        end = time.monotonic() + timeout
        pools = (self.front.quick, self.front.work)
        while time.monotonic() < end:
            if not any(_running(p) for p in pools) and self.front.outbox.drain(max(0.0, end - time.monotonic())) \
                    and not any(_running(p) for p in pools):
                return
            time.sleep(0.01)
        raise AssertionError("the Slack front end did not settle")

    def close(self) -> None:
        self.server.stop()
        self.front.close()


def _running(pool: Any) -> bool:
    """True while a job submitted to a CountingPool has not finished."""
    return getattr(pool, "active", 0) > 0


class CountingPool:
    """A ThreadPoolExecutor that counts running jobs, so tests can wait for quiet."""

    def __init__(self, workers: int, name: str) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.pool = ThreadPoolExecutor(workers, thread_name_prefix=name)
        self._max_workers = workers
        self.active = 0
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        with self._lock:
            self.active += 1

        def run() -> Any:
            try:
                return fn(*args)
            finally:
                with self._lock:
                    self.active -= 1

        return self.pool.submit(run)

    def shutdown(self, wait: bool = True) -> None:
        self.pool.shutdown(wait=wait)


def make_slack_bot(tmp_path: Any, clock: Any, registry: Any, env: dict[str, str] | None = None,
                   fake: FakeSlack | None = None, post_interval: float = 0.02, edit_interval: float = 0.1,
                   workers: int = 16, socket_mode: bool = False) -> SlackBot:
    """A Slack front end over a private registry, a real store, and a FakeSlack (started if not given)."""
    from bot.config import load_settings
    from bot.engine.services import Services
    from bot.engine.dispatch import Dispatcher
    from bot.engine.policy import Policy
    from bot.settings import ManagerSettings
    from bot.slack import SlackGroups, make_client
    from bot.store import Store

    fake = fake or FakeSlack().start()
    base = {"BOT_DATA_DIR": str(tmp_path / "data"), "SLACK_BOT_TOKEN": "xoxb-test", "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": fake.api_url, "BOT_ADMINS": f"{ADMIN},{ADMIN2}", "BOT_OPERATORS": OPERATOR}
    base.update(env or {})
    manager = ManagerSettings("production", ("http://production.test",), username="admin", password="pw-x")
    settings = load_settings(base, managers=(manager,))
    (tmp_path / "data").mkdir(exist_ok=True)
    client = make_client(settings)
    services = Services(settings=settings, clock=clock, store=Store(settings.db_path, clock=clock),
                        managers={"production": object()}, registry=registry,
                        policy=Policy(settings, SlackGroups(client, [g.principal for g in settings.grants],
                                                            clock=clock)))
    return slack_front(services, Dispatcher(services), fake, client=client, post_interval=post_interval,
                       edit_interval=edit_interval, workers=workers, socket_mode=socket_mode)


def slack_front(services: Any, dispatcher: Any, fake: FakeSlack, *, client: Any = None, post_interval: float = 0.02,
                edit_interval: float = 0.1, workers: int = 16, socket_mode: bool = False) -> SlackBot:
    """The real app over already built services, served on 127.0.0.1 through Bolt's WSGI adapter."""
    from bot.clock import FakeClock
    from bot.slack import Outbox, build_app, front_of, make_client, wsgi

    client = client or make_client(services.settings)
    # The outbox throttles on a fake clock of its own: its intervals pass at once, and the bot's clock only moves
    # when the test (or a flow's polling) moves it.
    app = build_app(services, dispatcher, client=client, executor=CountingPool(workers, "cfy-work"),
                    outbox=Outbox(client, post_interval=post_interval, edit_interval=edit_interval,
                                  clock=FakeClock()),
                    socket_mode=socket_mode)
    front = front_of(app)
    front.quick.shutdown()
    front.quick = CountingPool(8, "cfy-quick")
    return SlackBot(fake, app, front, services, WSGIServerThread(wsgi(app)), services.clock)
