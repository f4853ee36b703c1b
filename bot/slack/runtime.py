"""A serving process: start-up checks, the wiring of services and scheduler, HTTP under gunicorn, Socket Mode."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.core import Reply
from bot.slack.app import build_app, front_of, wsgi
from bot.slack.client import error_text, make_client
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


def serve_http(settings: Any, port: int, threads: int, *, transport: Any = None) -> int:
    """`cfy-bot http`: /slack/events and /health under gunicorn (1 worker, `threads` threads); `transport`
    reaches in-process simulated managers (the ack benchmark)."""
    from gunicorn.app.base import BaseApplication

    problem = startup_problem(settings, "http")
    if problem:
        return _refuse(problem)

    apps: list[App] = []

    def worker_exit(_server: Any, _worker: Any) -> None:
        for app in apps:
            front_of(app).close()  # send what is queued; operations resume from the store after a restart

    class Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in {"bind": f"0.0.0.0:{port}", "workers": 1, "threads": max(threads, 2),
                               "worker_class": "gthread", "timeout": 60, "graceful_timeout": 20,
                               "control_socket_disable": True, "worker_exit": worker_exit}.items():
                if key in self.cfg.settings:  # control_socket_disable exists from gunicorn 25 on
                    self.cfg.set(key, value)

        def load(self) -> Callable[..., Any]:
            apps.append(build_runtime(settings, transport=transport))  # in the worker: its threads start there
            return wsgi(apps[-1])

    Server().run()
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
    idle = front.wait_idle(STOP_GRACE_S)
    front.close()  # what is queued for Slack is sent
    if not idle:
        # An operation can run for an hour (a restore being watched); the interpreter would wait for it at exit.
        # It is in the store, and the next start resumes or settles it, as after a crash.
        log.warning("stopping while operations run; the next start resumes or settles them")
        logging.shutdown()
        os._exit(0)
    return 0


def watch_connection(is_connected: Callable[[], bool], stop: threading.Event, interval: float = 1.0,
                     remind: float = 300.0, down_at_start: bool = False) -> None:
    """Until `stop` is set: log when the connection goes down, every `remind` seconds while it stays down, and
    when it is back (the client reconnects by itself)."""
    down_since = told = time.monotonic() if down_at_start else None
    while not stop.wait(interval):
        now, up = time.monotonic(), is_connected()
        if up and down_since is not None:
            log.warning("Socket Mode connection is back after %.0f s down", now - down_since)
            down_since = told = None
        elif not up and down_since is None:
            down_since = told = now
            log.warning("Socket Mode connection is down; the client is reconnecting")
        elif not up and told is not None and now - told >= remind:
            told = now
            log.warning("Socket Mode connection is still down after %.0f s", now - (down_since or now))
