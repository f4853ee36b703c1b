"""What Slack sends a bot: signed slash commands, button clicks and events, for tests and the ack benchmark.

Nothing here runs in the bot; it builds the requests Slack would make so the real app can be fed real
signed HTTP requests (or Socket Mode bodies) without a workspace.
"""

from __future__ import annotations

import json
import time
import uuid
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier


def signed_headers(secret: str, body: str, timestamp: int | None = None) -> dict[str, str]:
    """The headers Slack adds: `X-Slack-Request-Timestamp` and the v0 HMAC signature of the raw body."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body) or ""
    return {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature}


def command_fields(text: str, *, user: str = "U100", user_name: str = "alice", channel: str = "C100",
                   response_url: str = "", team: str = "T1", trigger: str = "") -> dict[str, str]:
    """The form fields of a `/cfy` slash command; each gets its own `trigger_id`, as from Slack (two requests
    with the same body and timestamp are one request sent twice)."""
    trigger = trigger or _trigger_id()
    return {"token": "legacy", "team_id": team, "team_domain": "example", "channel_id": channel,
            "channel_name": "ops", "user_id": user, "user_name": user_name, "command": "/cfy", "text": text,
            "api_app_id": "A1", "is_enterprise_install": "false", "response_url": response_url,
            "trigger_id": trigger}


def action_payload(action: str, value: str, *, user: str = "U100", user_name: str = "alice",
                   channel: str = "C100", message_ts: str = "", response_url: str = "", team: str = "T1",
                   ephemeral: bool = False, thread_ts: str = "") -> dict[str, Any]:
    """A `block_actions` payload: someone clicked the button `cfy_<action>` whose value is `value`."""
    return {
        "type": "block_actions", "team": {"id": team, "domain": "example"},
        "user": {"id": user, "username": user_name, "name": user_name, "team_id": team},
        "api_app_id": "A1", "token": "legacy", "trigger_id": _trigger_id(),
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel,
                      "is_ephemeral": ephemeral, **({"thread_ts": thread_ts} if thread_ts else {})},
        "channel": {"id": channel, "name": "ops"}, "response_url": response_url,
        "actions": [{"type": "button", "action_id": f"cfy_{action}", "block_id": f"op:{value}", "value": value,
                     "action_ts": f"{time.time():.6f}", "text": {"type": "plain_text", "text": action}}],
    }


def _trigger_id() -> str:
    return f"{int(time.time())}.{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex}"


def mention_event(text: str, *, user: str = "U100", channel: str = "C100", ts: str = "", bot_id: str = "",
                  thread_ts: str = "", edited: bool = False) -> dict[str, Any]:
    """An `app_mention` event: someone wrote `text` (which starts with `<@UBOT>`) in a channel."""
    ts = ts or f"{time.time():.6f}"
    event: dict[str, Any] = {"type": "app_mention", "user": user, "text": text, "ts": ts, "channel": channel,
                             "event_ts": ts, "team": "T1"}
    if bot_id:
        event.update(bot_id=bot_id, subtype="bot_message")
    if thread_ts:
        event["thread_ts"] = thread_ts
    if edited:
        event["edited"] = {"user": user, "ts": f"{float(ts) + 5:.6f}"}
    return event


def event_callback(event: dict[str, Any], *, event_id: str = "", team: str = "T1") -> dict[str, Any]:
    """The Events API body around an event (POSTed as JSON, or the payload of an `events_api` envelope)."""
    return {"token": "legacy", "team_id": team, "api_app_id": "A1", "event": event, "type": "event_callback",
            "event_id": event_id or "Ev" + uuid.uuid4().hex[:10].upper(), "event_time": int(time.time()),
            "authorizations": [{"team_id": team, "user_id": "UBOT", "is_bot": True}],
            "is_ext_shared_channel": False, "event_context": "4-fake"}


def command_body(fields: dict[str, str]) -> str:
    """The raw form-encoded body of a slash command."""
    return urlencode(fields)


def action_body(payload: dict[str, Any]) -> str:
    """The raw body of an interactivity request: one form field, `payload`, holding JSON."""
    return urlencode({"payload": json.dumps(payload)})


def post(url: str, body: str, headers: dict[str, str], timeout: float = 10.0) -> tuple[int, str]:
    """POST a raw body; returns (status, text) for error statuses too."""
    req = urllib.request.Request(url, data=body.encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - loopback test traffic
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def send_command(url: str, secret: str, text: str, *, timestamp: int | None = None, timeout: float = 10.0,
                 **fields: Any) -> tuple[int, str]:
    """Send a signed `/cfy TEXT` to a bot's `/slack/events`; `timeout` bounds the wait for each read."""
    body = command_body(command_fields(text, **fields))
    return post(url, body, signed_headers(secret, body, timestamp), timeout)


def send_event(url: str, secret: str, body: dict[str, Any], retry: int = 0) -> tuple[int, str]:
    """POST a signed Events API body to a bot's `/slack/events`; `retry` > 0 adds Slack's retry headers."""
    raw = json.dumps(body)
    headers = {**signed_headers(secret, raw), "Content-Type": "application/json"}
    if retry:
        headers.update({"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"})
    return post(url, raw, headers)


def send_click(url: str, secret: str, action: str, value: str, **fields: Any) -> tuple[int, str]:
    """Send a signed button click to a bot's `/slack/events`."""
    body = action_body(action_payload(action, value, **fields))
    return post(url, body, signed_headers(secret, body))
