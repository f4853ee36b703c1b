"""A serving process: start-up checks, the wiring of services and scheduler, HTTP under waitress, Socket Mode."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.clock import Clock
from bot.core import Reply
from bot.slack.app import build_app, front_of, wsgi
from bot.slack.client import error_text, make_client
from bot.slack.guard import MAX_BODY
from bot.slack.groups import SlackGroups

log = logging.getLogger("cfy_bot.slack")
STOP_GRACE_S = 2.0  # after SIGTERM, how long running commands may take before the process ends anyway


def startup_problem(settings: Any, mode: str, client: WebClient | None = None) -> str | None:
    """Why the Slack transport cannot start (one line, never a secret), or None."""
    if not settings.slack_bot_token:
        return "SLACK_BOT_TOKEN is not set (the bot token, xoxb-…, from the app's OAuth & Permissions page)"
    if mode == "http" and not settings.slack_signing_secret:
        return "SLACK_SIGNING_SECRET is not set (Basic Information → App Credentials → Signing Secret)"
    if mode == "socket" and not settings.slack_app_token:
        return "SLACK_APP_TOKEN is not set (an app-level token, xapp-…, with the connections:write scope)"
    if mode == "socket" and not settings.slack_app_token.startswith("xapp-"):
        return "SLACK_APP_TOKEN must be an app-level token (xapp-…), not a bot or user token"
    if os.environ.get("SLACK_CLIENT_ID") and os.environ.get("SLACK_CLIENT_SECRET"):
        return "SLACK_CLIENT_ID and SLACK_CLIENT_SECRET are both set: they switch Bolt to OAuth; unset them"
    client = client or make_client(settings)
    try:
        client.auth_test()
    except SlackApiError as exc:
        return f"Slack rejected SLACK_BOT_TOKEN: auth.test answered {error_text(exc)}"
    except Exception as exc:  # noqa: BLE001 - any failure to reach Slack stops the start, with its reason
        return f"cannot reach the Slack API at {client.base_url}: {error_text(exc)}"
    return None


def build_runtime(settings: Any, *, client: WebClient | None = None, socket_mode: bool = False,
                  transport: Any = None) -> App:
    """Services, dispatcher and app for a serving process, with user groups read from Slack."""
    from bot.front.wiring import build_services
    from bot.engine.dispatch import Dispatcher

    client = client or make_client(settings)
    groups = SlackGroups(client, [g.principal for g in settings.grants])
    services = build_services(settings, groups_of=groups, transport=transport)
    dispatcher = Dispatcher(services)
    app = build_app(services, dispatcher, client=client, socket_mode=socket_mode)
    front = front_of(app)
    front.start_housekeeping()
    from bot.schedule.scheduler import start_scheduler

    channel = settings.summary_channel
    start_scheduler(services, SlackNotifier(front), front._stop, dispatcher=dispatcher,
                    sink=front.sink(channel) if channel else None)
    return app


class SlackNotifier:
    """The scheduler's summaries and alerts as channel messages (bot.schedule.notify.Notifier); never raises."""

    def __init__(self, front: Any) -> None:
        self.front = front

    def post(self, channel: str, reply: Reply) -> None:
        """Post the daily summary."""
        self._send(channel, reply)

    def alert(self, channel: str, reply: Reply) -> None:
        """Post an alert (a failed or missed backup) where people look first."""
        self._send(channel, reply)

    def _send(self, channel: str, reply: Reply) -> None:
        if not channel:
            log.warning("no BOT_SUMMARY_CHANNEL/BOT_ALERT_CHANNEL: not posted: %s", reply.title)
            return
        self.front.announce(channel, reply)


def _refuse(problem: str) -> int:
    print(f"cfy-bot cannot start: {problem}", file=sys.stderr)
    return 2


# The HTTP server: waitress reads each request whole in its I/O thread (asyncore, one thread for every
# connection) and only then hands it to one of `threads` worker threads, so slow or stalled clients hold a
# socket, never a worker; `max_request_body_size` refuses a declared Content-Length over the limit before the
# body is read, and stops a chunked body at the limit. The guard (bot/slack/guard.py) checks both again.
HTTP_SETTINGS: dict[str, Any] = {
    "max_request_body_size": MAX_BODY + 1,  # waitress refuses sizes >= this: 1 MiB passes, 1 MiB + 1 does not
    "max_request_header_size": 64 * 1024,
    "inbuf_overflow": 32 * 1024,  # a body beyond this waits in a temporary file, not in memory (default 512 KiB)
    "connection_limit": 1000,  # open connections before waitress stops accepting (its default is 100)
    "channel_timeout": 20,  # a connection silent this long is closed, mid-request or idle
    "cleanup_interval": 5,
    "asyncore_use_poll": True,  # poll(), not select(): no limit of 1024 descriptors
    "expose_tracebacks": False,
    "ident": "cfy-bot",
}


def http_server(application: Callable[..., Any], host: str, port: int, threads: int) -> Any:
    """A waitress server for `application` on host:port (0: any free port, see `.effective_port`); `.run()`
    serves until stop_http_server."""
    from waitress.server import create_server

    return create_server(application, host=host, port=port, threads=max(threads, 2), **HTTP_SETTINGS)


def stop_http_server(server: Any) -> None:
    """Make `server.run()` return (from any thread, or a signal handler): its I/O loop closes every connection."""
    from waitress import wasyncore

    server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map))


def serve_http(settings: Any, port: int, threads: int, *, transport: Any = None) -> int:
    """`cfy-bot http`: /slack/events and /health under waitress (`threads` worker threads) until SIGTERM or
    SIGINT; `transport` reaches in-process simulated managers (the ack benchmark)."""
    problem = startup_problem(settings, "http")
    if problem:
        return _refuse(problem)
    app = build_runtime(settings, transport=transport)
    front = front_of(app)
    try:
        server = http_server(wsgi(app), "0.0.0.0", port, threads)
    except OSError as exc:
        front.close()
        return _refuse(f"cannot listen on port {port}: {exc.strerror or exc}")
    previous = {sig: signal.signal(sig, lambda *_: stop_http_server(server)) for sig in (signal.SIGTERM, signal.SIGINT)}
    print(f"cfy-bot: serving Slack on http://0.0.0.0:{server.effective_port}/slack/events "
          f"({max(threads, 2)} threads)", file=sys.stderr, flush=True)
    try:
        server.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    server.task_dispatcher.shutdown(timeout=STOP_GRACE_S)  # requests being answered finish
    _stop_front(front)
    return 0


def serve_socket(settings: Any) -> int:
    """`cfy-bot socket`: Socket Mode with SLACK_APP_TOKEN until SIGTERM or SIGINT; logs when the connection is
    down and when it is back."""
    problem = startup_problem(settings, "socket")
    if problem:
        return _refuse(problem)
    stop = threading.Event()
    # Before anything starts, so that a stop while starting is clean too; put back when serving ends.
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return _serve_socket(settings, stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _serve_socket(settings: Any, stop: threading.Event) -> int:
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    app = build_runtime(settings, socket_mode=True)
    front = front_of(app)
    handler = SocketModeHandler(app, settings.slack_app_token)
    try:
        handler.connect()
    except SlackApiError as exc:
        handler.close()
        front.close()
        return _refuse(f"Slack rejected SLACK_APP_TOKEN: apps.connections.open answered {error_text(exc)}")
    connected = handler.client.is_connected()
    print("cfy-bot: connected to Slack in Socket Mode" if connected else  # if not, the client logged why
          "cfy-bot: the Socket Mode connection did not open yet; retrying", file=sys.stderr, flush=True)
    watch_connection(handler.client.is_connected, stop, down_at_start=not connected)
    handler.close()  # no new envelopes from here on
    _stop_front(front)
    return 0


def _stop_front(front: Any) -> None:
    """Let running commands finish for a moment, send what is queued, and end the process if operations run."""
    idle = front.wait_idle(STOP_GRACE_S)
    front.close()  # what is queued for Slack is sent
    if not idle:
        # An operation can run for an hour (a restore being watched); the interpreter would wait for it at exit.
        # It is in the store, and the next start resumes or settles it, as after a crash.
        log.warning("stopping while operations run; the next start resumes or settles them")
        logging.shutdown()
        os._exit(0)


def watch_connection(is_connected: Callable[[], bool], stop: threading.Event, interval: float = 1.0,
                     remind: float = 300.0, down_at_start: bool = False, clock: Clock | None = None) -> None:
    """Until `stop` is set: log when the connection goes down, every `remind` seconds while it stays down, and
    when it is back (the client reconnects by itself). It looks every `interval` seconds of real time; how long
    the connection was down is measured on `clock`."""
    clock = clock or Clock()
    down_since = told = clock.monotonic() if down_at_start else None
    while not stop.wait(interval):
        now, up = clock.monotonic(), is_connected()
        if up and down_since is not None:
            log.warning("Socket Mode connection is back after %.0f s down", now - down_since)
            down_since = told = None
        elif not up and down_since is None:
            down_since = told = now
            log.warning("Socket Mode connection is down; the client is reconnecting")
        elif not up and told is not None and now - told >= remind:
            told = now
            log.warning("Socket Mode connection is still down after %.0f s", now - (down_since or now))
