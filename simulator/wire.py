"""Wire formats of the manager: timestamps, JSON bodies (success and error), HTML error pages."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any, overload

NGINX_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)

_HTML_ERRORS = {
    400: ("Bad Request", "The browser (or proxy) sent a request that this server could not understand."),
    404: (
        "Not Found",
        "The requested URL was not found on the server. If you entered the URL manually please check "
        "your spelling and try again.",
    ),
    405: ("Method Not Allowed", "The method is not allowed for the requested URL."),
}

REASONS = {
    200: "OK", 201: "CREATED", 204: "NO CONTENT", 304: "NOT MODIFIED", 400: "BAD REQUEST",
    401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT FOUND", 405: "METHOD NOT ALLOWED",
    409: "CONFLICT", 415: "UNSUPPORTED MEDIA TYPE", 500: "INTERNAL SERVER ERROR", 502: "Bad Gateway",
    503: "SERVICE UNAVAILABLE",
}

_VERSION_RE = re.compile(r"^(\d+)(?:\.(\d+))?(?:\.(\d+))?")


@overload
def iso(ts: float) -> str: ...


@overload
def iso(ts: None) -> None: ...


def iso(ts: float | None) -> str | None:
    """Epoch seconds as the manager's ISO-8601 UTC string with milliseconds and `Z`."""
    if ts is None:
        return None
    dt = datetime.fromtimestamp(ts, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse_iso(text: str) -> float:
    """Parse an ISO-8601 timestamp (with or without `Z`/offset) into epoch seconds (UTC if naive)."""
    value = text.strip().replace("Z", "+00:00")
    dt = datetime.fromisoformat(value)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def version_tuple(version: str) -> tuple[int, int, int]:
    """'7.0.5' -> (7, 0, 5); missing parts are 0 and suffixes such as '.dev1' are ignored."""
    match = _VERSION_RE.match(version or "")
    if not match:
        return (0, 0, 0)
    major, minor, patch = (int(part or 0) for part in match.groups())
    return (major, minor, patch)


def success_body(obj: Any) -> bytes:
    """A flask-restful success body: `", "` separators, keys in field order, trailing newline."""
    return (json.dumps(obj) + "\n").encode()


def error_body(code: str, message: str, traceback: Any = None, *, with_traceback: bool = True,
               extra: dict[str, Any] | None = None) -> bytes:
    """A Flask `jsonify` error body: compact, keys sorted, trailing newline."""
    body: dict[str, Any] = {"error_code": code, "message": message}
    if with_traceback:
        body["server_traceback"] = traceback
    body.update(extra or {})
    return (json.dumps(body, sort_keys=True, separators=(",", ":")) + "\n").encode()


def html_error(status: int, description: str | None = None) -> bytes:
    """A werkzeug HTML error page (404, 405, 400)."""
    title, default = _HTML_ERRORS[status]
    text = description if description is not None else default
    return (
        f"<!doctype html>\n<html lang=en>\n<title>{status} {title}</title>\n"
        f"<h1>{title}</h1>\n<p>{text}</p>\n"
    ).encode()
