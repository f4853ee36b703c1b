"""The Slack front end: `/cfy`, `@cfy-bot` and the buttons on Bolt, progress threads, gate cards, HTTP and Socket Mode.

Every listener acknowledges at once and hands the work to the bot's own thread pools (never Bolt's
5-thread listener pool). Everything sent to Slack goes through one throttled `Outbox`. This package is the
only part of the bot that imports slack_bolt or slack_sdk.

    client.py    make_client: the Web API client with its retries; error_text of a failed call
    outbox.py    Outbox, Msg: posts and edits per channel within Slack's rate limits, off the caller's thread
    display.py   SlackDisplay: operation cards, results in their threads, private replies; expire_cards
    sink.py      SlackSink: progress of one operation on its card and in its thread
    front.py     SlackFront: what the listeners hand work to (commands, mentions, clicks), recovery and housekeeping
    mention.py   mention_request: an `app_mention` event as the `/cfy` request it stands for (or one to ignore)
    chat.py      SlackChat: the chat port of incidents (rooms, invitations, pins)
    groups.py    SlackGroups: user-group membership for grants that name a group
    app.py       build_app, front_of, wsgi: the Bolt app and its WSGI entry with /health
    runtime.py   startup_problem, build_runtime, SlackNotifier, serve_http, serve_socket: a serving process
    render.py    Slack text and Block Kit: pure functions, no Slack library
    fake.py      what Slack sends a bot (signed requests, events), for tests and the ack benchmark

Everything here logs to the `cfy_bot.slack` logger.
"""

from bot.slack.app import RUN_BUTTON, build_app, front_of, wsgi
from bot.slack.chat import SlackChat
from bot.slack.client import make_client
from bot.slack.display import ALL_STATES, expire_cards
from bot.slack.front import HOUSEKEEPING_S, OP_ID, SlackFront
from bot.slack.groups import SlackGroups
from bot.slack.outbox import Msg, Outbox
from bot.slack.runtime import SlackNotifier, build_runtime, serve_http, serve_socket, startup_problem
from bot.slack.sink import SlackSink

__all__ = ["ALL_STATES", "HOUSEKEEPING_S", "OP_ID", "RUN_BUTTON", "Msg", "Outbox", "SlackChat", "SlackFront",
           "SlackGroups", "SlackNotifier", "SlackSink", "build_app", "build_runtime", "expire_cards", "front_of",
           "make_client", "serve_http", "serve_socket", "startup_problem", "wsgi"]
