"""A serving process: start-up checks, the wiring of services and scheduler, HTTP under gunicorn, Socket Mode."""

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

from bot.core import Reply
from bot.slack.app import build_app, front_of, wsgi
from bot.slack.client import error_text, make_client
from bot.slack.front import HOUSEKEEPING_S
from bot.slack.groups import SlackGroups

log = logging.getLogger("cfy_bot.slack")


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
    from bot.app import build_services
    from bot.dispatch import Dispatcher

    client = client or make_client(settings)
    groups = SlackGroups(client, [g.principal for g in settings.grants])
    services = build_services(settings, groups_of=groups, transport=transport)
    dispatcher = Dispatcher(services)
    app = build_app(services, dispatcher, client=client, socket_mode=socket_mode)
    front = front_of(app)
    front.start_housekeeping()
    from bot.schedule import start_scheduler

    channel = settings.summary_channel
    start_scheduler(services, SlackNotifier(front), front._stop, dispatcher=dispatcher,
                    sink=front.sink(channel) if channel else None)
    return app


class SlackNotifier:
    """The scheduler's summaries and alerts as channel messages (bot.notify.Notifier); never raises."""

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
    """`cfy-bot socket`: Socket Mode with SLACK_APP_TOKEN; logs when the connection is down."""
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    problem = startup_problem(settings, "socket")
    if problem:
        return _refuse(problem)
    app = build_runtime(settings, socket_mode=True)
    handler = SocketModeHandler(app, settings.slack_app_token)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        handler.connect()
    except SlackApiError as exc:
        return _refuse(f"Slack rejected SLACK_APP_TOKEN: apps.connections.open answered {error_text(exc)}")
    print("cfy-bot: connected to Slack in Socket Mode", file=sys.stderr, flush=True)
    while not stop.wait(HOUSEKEEPING_S):
        if not handler.client.is_connected():
            log.warning("Socket Mode connection is down; the client is reconnecting")
    handler.close()
    front_of(app).close()
    return 0
