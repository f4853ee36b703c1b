"""`@cfy-bot COMMAND` in a channel: the `app_mention` event turned into the request `/cfy COMMAND` would make."""

from __future__ import annotations

import re
from typing import Any

LEADING_MENTION = re.compile(r"^\s*<@[UW][A-Z0-9]+(?:\|[^>]*)?>[\s,:]*")


def mention_request(body: dict[str, Any]) -> dict[str, Any] | None:
    """The `/cfy` request that an `app_mention` event body stands for, or None when it must not run: written by a
    bot (the bot's own messages included), or an edit of a message (Slack sends those as mentions again).

    The request has no response URL; `thread_ts` says where answers go (the mention's thread), and `key` names
    the message, so that a delivery Slack retries (X-Slack-Retry-Num, or a second Socket Mode connection) runs
    the command once."""
    event = body.get("event") or {}
    if event.get("type") != "app_mention" or event.get("bot_id") or event.get("subtype") or event.get("edited"):
        return None
    channel, ts = str(event.get("channel", "")), str(event.get("ts", ""))
    if not (channel and ts and event.get("user")):
        return None
    return {"text": LEADING_MENTION.sub("", str(event.get("text", "")), count=1), "user_id": str(event["user"]),
            "user_name": "", "channel_id": channel, "response_url": "", "thread_ts": str(event.get("thread_ts") or ts),
            "key": f"{channel}:{ts}"}
