"""The Bolt app: `/cfy`, `@cfy-bot` mentions and the card buttons, every listener acked at once; its WSGI entry."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

from slack_bolt import App, BoltResponse
from slack_bolt.error import BoltUnhandledRequestError
from slack_sdk import WebClient

from bot.errors import ConfigError
from bot.slack import render
from bot.slack.chat import SlackChat
from bot.slack.client import make_client
from bot.slack.front import SlackFront
from bot.slack.guard import BODY_FENCE, RequestGuard, guarded
from bot.slack.outbox import Outbox

log = logging.getLogger("cfy_bot.slack")
RUN_BUTTON = re.compile(r"^cfy_run_\d+$")  # a reply's own buttons: the value is a command, run as the clicker


def build_app(services: Any, dispatcher: Any, *, client: WebClient | None = None, executor: Executor | None = None,
              outbox: Outbox | None = None, socket_mode: bool = False) -> App:
    """The Bolt app: one `/cfy` command, `@cfy-bot COMMAND` mentions and the card buttons; every listener acks at
    once."""
    settings = services.settings
    secret = settings.slack_signing_secret
    if not secret and not socket_mode:
        raise ConfigError(["SLACK_SIGNING_SECRET is not set (needed to check that requests come from Slack)"])
    client = client or make_client(settings)
    workers = getattr(settings, "slack_workers", 0) or 16
    front = SlackFront(services, dispatcher, client,
                       executor or ThreadPoolExecutor(workers, thread_name_prefix="cfy-work"),
                       outbox or Outbox(client))
    bolt_log = logging.getLogger("cfy_bot.bolt")
    bolt_log.addFilter(_quiet_token_warning)  # Bolt warns when SLACK_BOT_TOKEN is also in the environment
    bolt_log.addFilter(BODY_FENCE)  # before App(): Bolt copies these filters onto the loggers it makes
    app = App(client=client, signing_secret=secret or None, request_verification_enabled=bool(secret),
              raise_error_for_unhandled_request=True, name="cfy-bot", logger=bolt_log)
    app.cfy_front = front  # type: ignore[attr-defined]
    services.chat["slack"] = SlackChat(client, front.outbox)  # incidents create their rooms through it

    app.command("/cfy", middleware=[_answered_at_once(front.on_command)])(_acked)
    for action in render.ACTIONS:
        hand_off = _answered_at_once(_clicked(front, action))
        app.action(f"cfy_{action}", middleware=[hand_off])(_acked)
    app.action(RUN_BUTTON, middleware=[_answered_at_once(front.on_run_button)])(_acked)
    app.event("app_mention", middleware=[_answered_at_once(front.on_mention)])(_acked)

    @app.error
    def on_error(error: Exception, request: Any, response: BoltResponse | None) -> BoltResponse | None:
        if isinstance(error, BoltUnhandledRequestError):
            log.warning("unhandled Slack request (%s)", _kind(getattr(request, "body", {}) or {}))
            return None
        ref = uuid.uuid4().hex[:8]
        log.error("Slack request failed, ref %s", ref, exc_info=error)
        if response is None:  # already acknowledged
            return None
        return BoltResponse(status=200, body=f":warning: Something went wrong (ref `{ref}`); the details are in "
                                             "the bot's log.")

    return app


def _clicked(front: SlackFront, action: str) -> Callable[[dict[str, Any]], None]:
    """The hand-off for one button: the click's body and which action it was."""

    def hand_off(body: dict[str, Any]) -> None:
        front.on_click(body, action)

    return hand_off


def _answered_at_once(hand_off: Callable[[dict[str, Any]], None]) -> Callable[..., BoltResponse]:
    """Listener middleware that hands the request to the bot's pools and acknowledges it right away, on the
    request's own thread: no trip through Bolt's 5-thread listener pool and its 10 ms ack polling."""

    def ack_now(body: dict[str, Any]) -> BoltResponse:
        hand_off(body)
        return BoltResponse(status=200, body="")  # returned without next(): Bolt answers Slack with it

    return ack_now


def _acked(ack: Callable[..., Any]) -> None:
    """The listener behind the middleware; never reached, since the middleware has answered."""
    ack()


def _quiet_token_warning(record: logging.LogRecord) -> bool:
    return "`token` will be unused" not in record.getMessage()


def front_of(app: App) -> SlackFront:
    """The front end behind an app built by build_app."""
    return app.cfy_front  # type: ignore[attr-defined,no-any-return]


def _kind(body: dict[str, Any]) -> str:
    return str(body.get("type") or body.get("command") or "unknown")[:40]


def wsgi(app: App) -> Callable[..., Iterable[bytes]]:
    """`/health`, and `/slack/events` through the request guard (size, signature, shape, replays) to Bolt's
    WSGI adapter."""
    from slack_bolt.adapter.wsgi import SlackRequestHandler

    front = front_of(app)
    guard = RequestGuard(front.services.settings.slack_signing_secret, front.services.store)
    return guarded(SlackRequestHandler(app), guard, front.health)
