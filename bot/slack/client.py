"""The Slack Web API client the bot uses, and how a Slack failure reads in one line."""

from __future__ import annotations

from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler


def retry_handlers() -> list[Any]:
    """Connection errors retried, and 429s twice (the outbox pauses the channel after that)."""
    return [ConnectionErrorRetryHandler(), RateLimitErrorRetryHandler(max_retry_count=2)]


def make_client(settings: Any) -> WebClient:
    """The Web API client: SLACK_API_URL as base URL, connection errors and 429s retried."""
    kwargs: dict[str, Any] = {"token": settings.slack_bot_token or None, "retry_handlers": retry_handlers()}
    if settings.slack_api_url:
        kwargs["base_url"] = settings.slack_api_url.rstrip("/") + "/"
    return WebClient(**kwargs)


def error_text(exc: Exception) -> str:
    """A failed call in one line: Slack's error code, or the exception's type and message."""
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error") or f"HTTP {exc.response.status_code}")
    return f"{type(exc).__name__}: {exc}"
