"""The door of `/slack/events`: what a request must be before Bolt sees it, and what Bolt may log of it.

Every HTTP request body passes here first, and nothing else reads `wsgi.input`:

1. a declared `Content-Length` over MAX_BODY is refused (413) before a byte of the body is read, and a body
   without one (chunked) is read only up to MAX_BODY + 1 bytes;
2. the v0 signature (HMAC-SHA256 of `v0:TIMESTAMP:BODY`, timestamp within five minutes) is checked on the
   raw bytes before anything parses them (401);
3. the body must be what Slack sends: UTF-8, a JSON object, or a form whose `payload` is a JSON object (400);
4. a signed request already seen runs once: its signature is claimed in the store (a mark, so it holds across
   threads and processes), and so is the `event_id` of an Events API delivery, which Slack may send again
   with `X-Slack-Retry-Num`; a repeat is answered 200 without running.

Logging is fenced here too: a refused request is logged as one line that names its size and the reason, never
its content, and BODY_FENCE cuts every record of Bolt's loggers (Bolt logs whole bodies on a bad signature at
INFO and on some paths at DEBUG) to MAX_LOGGED characters.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol
from urllib.parse import parse_qsl

from bot.errors import BotError

log = logging.getLogger("cfy_bot.slack")
MAX_BODY = 1 << 20  # 1 MiB: Slack's commands, clicks and events are a few KB
WINDOW_S = 300  # Slack's replay window: a signature older or newer than this is refused
REPLAY_MEMORY = timedelta(seconds=2 * WINDOW_S)  # how long a seen signature is kept (a clock may drift)
REQUEST_MARK = "slack-request:"
EVENT_MARK = "slack-event:"
MAX_LOGGED = 300  # characters of one record of Bolt's loggers
CHUNK = 64 * 1024


class Marks(Protocol):
    """The store's marks (bot.store): claimed once across threads and processes."""

    def claim_mark(self, key: str, value: str = "") -> bool: ...


@dataclass(frozen=True)
class Refusal:
    """Why a request does not reach Bolt: the HTTP status, the short body Slack (or a prober) gets, the log."""

    status: str
    body: str
    reason: str


@dataclass(frozen=True)
class Admitted:
    """A signed, well-formed request: its raw body, ready for Bolt; `repeat` when it ran before."""

    body: bytes
    repeat: bool = False


TOO_LARGE = "413 Payload Too Large"
BAD = "400 Bad Request"
UNSIGNED = "401 Unauthorized"


class RequestGuard:
    """Checks one request to `/slack/events` (see the module doc); `now` is wall-clock time, as Slack signs."""

    def __init__(self, secret: str, marks: Marks, *, max_body: int = MAX_BODY,
                 now: Callable[[], float] = time.time) -> None:
        self.secret = secret.encode()
        self.marks = marks
        self.max_body = max_body
        self.now = now

    def check(self, environ: dict[str, Any]) -> Refusal | Admitted:
        """Admit the request (its body read, bounded) or say why not."""
        raw = self._read(environ)
        if isinstance(raw, Refusal):
            return raw
        unsigned = self._unsigned(environ, raw)
        if unsigned:
            return Refusal(UNSIGNED, '{"error":"invalid request"}', unsigned)
        shape = _shape(raw, str(environ.get("CONTENT_TYPE") or ""))
        if isinstance(shape, str):
            return Refusal(BAD, '{"error":"malformed request"}', shape)
        return Admitted(raw, repeat=not self._first(environ, shape))

    def _read(self, environ: dict[str, Any]) -> bytes | Refusal:
        declared = str(environ.get("CONTENT_LENGTH") or "").strip()
        if declared and not declared.isdigit():
            return Refusal(BAD, '{"error":"bad content-length"}', "a Content-Length that is not a number")
        if declared and int(declared) > self.max_body:
            return Refusal(TOO_LARGE, '{"error":"request too large"}',
                           f"a declared body of {int(declared):,} bytes (the limit is {self.max_body:,})")
        stream = environ.get("wsgi.input")
        if stream is None:
            return b""
        limit = int(declared) if declared else self.max_body + 1
        parts, got = [], 0
        while got < limit:
            chunk = stream.read(min(CHUNK, limit - got))
            if not chunk:
                break
            parts.append(chunk)
            got += len(chunk)
        if got > self.max_body:
            return Refusal(TOO_LARGE, '{"error":"request too large"}',
                           f"a body of more than {self.max_body:,} bytes")
        return b"".join(parts)

    def _unsigned(self, environ: dict[str, Any], raw: bytes) -> str:
        """Why the signature does not hold ("" when it does), on the raw bytes, as Slack computes it."""
        stamp = str(environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP") or "")
        signature = str(environ.get("HTTP_X_SLACK_SIGNATURE") or "")
        if not stamp or not signature:
            return f"no Slack signature ({len(raw):,} bytes)"
        if not stamp.isdigit() or abs(self.now() - int(stamp)) > WINDOW_S:
            return f"a signature timestamp outside the five-minute window ({len(raw):,} bytes)"
        mac = hmac.new(self.secret, b"v0:" + stamp.encode() + b":" + raw, hashlib.sha256).hexdigest()
        if not hmac.compare_digest("v0=" + mac, signature):
            return f"a wrong signature ({len(raw):,} bytes)"
        return ""

    def _first(self, environ: dict[str, Any], body: dict[str, Any]) -> bool:
        """Claim the request's signature, and an event's id, in the store: True the first time each is seen."""
        signature = str(environ.get("HTTP_X_SLACK_SIGNATURE"))
        seen = hashlib.sha256(f"{environ.get('HTTP_X_SLACK_REQUEST_TIMESTAMP')}:{signature}".encode()).hexdigest()
        first = self.marks.claim_mark(REQUEST_MARK + seen)
        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
        if first and isinstance(event_id, str) and event_id:
            first = self.marks.claim_mark(EVENT_MARK + event_id[:64])
        return first


def _shape(raw: bytes, content_type: str) -> dict[str, Any] | str:
    """The body as Bolt will parse it (bolt's request.internals.parse_body), or why it is not one Slack sends."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "a body that is not UTF-8"
    if not text:
        return {}
    try:
        if content_type.split(";")[0].strip() == "application/json" or text.startswith("{"):
            value: Any = json.loads(text)
        elif "payload" in text:
            payload = dict(parse_qsl(text, keep_blank_values=True)).get("payload")
            value = {} if payload is None else json.loads(payload)
        else:
            value = dict(parse_qsl(text, keep_blank_values=True))
    except (ValueError, RecursionError):  # JSONDecodeError is a ValueError; RecursionError: absurd nesting
        return "a body (or payload) that is not JSON"
    if not isinstance(value, dict):
        return f"a JSON {type(value).__name__}, not an object"
    odd = _odd_field(value)
    return f"a field of the wrong type ({odd})" if odd else value


# The fields Bolt reads to build a request's context, and the bot's listeners after it, with the types Slack
# gives them. A body with any of them of another type is refused: Bolt would fail on it with a traceback.
_IDENTS = ("user", "channel", "team", "enterprise")  # a string id, or an object with an `id`
_TEXTS = ("user_id", "channel_id", "team_id", "enterprise_id", "type", "ts", "thread_ts", "message_ts", "event_ts",
          "command", "response_url", "trigger_id", "event_id", "user_team", "subtype", "bot_id", "id",
          "value", "action_id", "block_id", "function_execution_id", "bot_access_token", "app_installed_team_id")
_OBJECTS = ("event", "message", "previous_message", "item", "assistant_thread", "view", "function_data",
            "container", "edited")
_LISTS = ("authorizations", "actions", "response_urls")  # lists of objects
_FLAGS = ("is_enterprise_install", "is_ext_shared_channel", "is_ephemeral")  # booleans ("true" in a form)


def _odd_field(body: dict[str, Any], where: str = "", depth: int = 0) -> str:
    """The path of the first field of a type Slack does not send ("" if none), through the nested objects that
    Bolt and the listeners read."""
    for key in _IDENTS:
        v = body.get(key)
        if not (v is None or isinstance(v, str) or (isinstance(v, dict) and not _odd_field(v, "", depth + 1))):
            return where + key
    for key in _TEXTS:
        if not isinstance(body.get(key), str | None):
            return where + key
    for key in _FLAGS:
        if not isinstance(body.get(key), bool | str | None):
            return where + key
    nested: list[tuple[str, Any]] = [(key, body.get(key)) for key in _OBJECTS if body.get(key) is not None]
    for key in _LISTS:
        items = body.get(key)
        if not isinstance(items, list | None):
            return where + key
        nested += [(f"{key}[{i}]", item) for i, item in enumerate(items or [])]
    for key, item in nested:
        if not isinstance(item, dict):
            return where + key
        odd = _odd_field(item, f"{where}{key}.", depth + 1) if depth < 4 else ""
        if odd:
            return odd
    if body.get("type") == "block_actions" and not depth:
        for key in ("user", "channel", "container"):
            if not isinstance(body.get(key), dict | None):
                return key
    return ""


def guarded(bolt: Callable[..., Iterable[bytes]], guard: RequestGuard,
            health: Callable[[], tuple[bool, dict[str, Any]]]) -> Callable[..., Iterable[bytes]]:
    """The WSGI application: `/health`, and `/slack/events` through `guard` to Bolt's adapter `bolt`."""

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO"), environ.get("REQUEST_METHOD")
        if path == "/health":
            ok, detail = health()
            return _answer(start_response, "200 OK" if ok else "503 Service Unavailable",
                           json.dumps({"ok": ok, **detail}))
        if path != "/slack/events":
            return _answer(start_response, "404 Not Found", '{"error":"not found"}')
        if method != "POST":
            return _answer(start_response, "405 Method Not Allowed", '{"error":"POST only"}', [("Allow", "POST")])
        try:
            verdict = guard.check(environ)
        except BotError as exc:  # the store cannot say whether the request ran before: do not run it
            log.error("cannot check Slack requests against replays: %s", exc)
            return _answer(start_response, "503 Service Unavailable", '{"error":"store unavailable"}')
        if isinstance(verdict, Refusal):
            log.info("refused a request to /slack/events: %s", verdict.reason)
            return _answer(start_response, verdict.status, verdict.body)
        if verdict.repeat:
            log.info("a signed Slack request came again (a replay or Slack's retry): answered, not run again")
            return _answer(start_response, "200 OK", "")
        environ = {**environ, "wsgi.input": io.BytesIO(verdict.body), "CONTENT_LENGTH": str(len(verdict.body))}
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        return bolt(environ, start_response)

    return application


def _answer(start_response: Callable[..., Any], status: str, body: str,
            extra: list[tuple[str, str]] | None = None) -> list[bytes]:
    data = body.encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data))),
                            *(extra or [])])
    return [data]


class BodyFence(logging.Filter):
    """Cuts every record of Bolt's loggers to MAX_LOGGED characters (message and arguments formatted first),
    so no request body (Bolt logs them whole on some paths) reaches a log whole, at any level."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except (TypeError, ValueError):  # a record whose arguments do not fit its message: logging reports it
            return True
        if len(text) > MAX_LOGGED:
            text = f"{text[:MAX_LOGGED]}… ({len(text) - MAX_LOGGED:,} characters not logged)"
        record.msg, record.args = text, None
        return True


BODY_FENCE = BodyFence()  # one object: Bolt copies its base logger's filters onto each logger it makes
