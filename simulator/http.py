"""Request and response objects over a WSGI environ, and the two kinds of error the manager answers."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from simulator.wire import error_body, html_error, success_body

CHUNK = 64 * 1024


class ApiError(Exception):
    """An error answered with the manager's JSON error body."""

    def __init__(self, status: int, code: str, message: str, *, traceback: Any = None,
                 with_traceback: bool = True, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.traceback, self.extra = traceback, extra
        self.show_traceback = with_traceback

    def response(self) -> Response:
        """The JSON error response."""
        body = error_body(self.code, self.message, self.traceback, with_traceback=self.show_traceback,
                          extra=self.extra)
        return Response(self.status, [("Content-Type", "application/json")], [body])


class HtmlError(Exception):
    """An error answered with a werkzeug HTML page (unknown route, wrong method, bad JSON)."""

    def __init__(self, status: int, description: str | None = None) -> None:
        super().__init__(status)
        self.status, self.description = status, description

    def response(self) -> Response:
        """The HTML error response."""
        body = html_error(self.status, self.description)
        return Response(self.status, [("Content-Type", "text/html; charset=utf-8")], [body])


@dataclass
class Response:
    """Status, headers and an iterable body (streamed by the WSGI layer as is)."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: Iterable[bytes] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        """The first header called `name` (case-insensitive)."""
        lower = name.lower()
        return next((v for k, v in self.headers if k.lower() == lower), None)


def json_response(obj: Any, status: int = 200) -> Response:
    """A success response with a flask-restful JSON body."""
    return Response(status, [("Content-Type", "application/json")], [success_body(obj)])


def empty_response(status: int) -> Response:
    """A body-less response (304, 204)."""
    return Response(status, [], [])


class Request:
    """The parts of a WSGI request the simulator reads."""

    def __init__(self, environ: dict[str, Any]) -> None:
        self.environ = environ
        self.method = environ.get("REQUEST_METHOD", "GET").upper()
        self.path = environ.get("PATH_INFO", "") or "/"
        self.query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        self.headers = _headers(environ)
        self._body: bytes | None = None

    def header(self, name: str) -> str | None:
        """A request header (case-insensitive), or None."""
        return self.headers.get(name.lower())

    def arg(self, name: str) -> str | None:
        """The first value of a query parameter, or None."""
        values = self.query.get(name)
        return values[0] if values else None

    @property
    def chunked(self) -> bool:
        """Whether the body came with `Transfer-Encoding: chunked`."""
        return "chunked" in (self.header("transfer-encoding") or "").lower()

    def content_length(self) -> int | None:
        """The declared Content-Length, or None."""
        raw = self.header("content-length")
        try:
            return int(raw) if raw not in (None, "") else None
        except ValueError:
            return None

    def has_body(self) -> bool:
        """Whether a body was sent (chunked, or a non-zero Content-Length)."""
        return self.chunked or bool(self.content_length())

    def iter_body(self, size: int = CHUNK) -> Iterator[bytes]:
        """Yield the request body in chunks, without holding it all in memory."""
        if self._body is not None:
            yield self._body
            return
        stream = self.environ.get("wsgi.input")
        if stream is None:
            return
        remaining = None if self.chunked else (self.content_length() or 0)
        while remaining is None or remaining > 0:
            want = size if remaining is None else min(size, remaining)
            data = stream.read(want)
            if not data:
                break
            if remaining is not None:
                remaining -= len(data)
            yield data

    def read_body(self) -> bytes:
        """The whole request body (only for small JSON bodies)."""
        if self._body is None:
            self._body = b"".join(self.iter_body())
        return self._body

    def json_body(self) -> dict[str, Any]:
        """The JSON object body: 415 without `application/json`, HTML 400 when it does not parse."""
        if (self.header("content-type") or "") != "application/json":
            raise ApiError(415, "unsupported_content_type_error", "Content type must be application/json")
        raw = self.read_body()
        try:
            data = json.loads(raw.decode("utf-8") if raw else "")
        except (ValueError, UnicodeDecodeError) as exc:
            raise HtmlError(400, f"Failed to decode JSON object: {exc}") from None
        if not isinstance(data, dict):
            raise internal_error(AttributeError(f"'{type(data).__name__}' object has no attribute 'get'"))
        return data


def internal_error(exc: BaseException) -> ApiError:
    """The 500 an unhandled exception becomes in the manager (e.g. a KeyError on a missing body key)."""
    name = type(exc).__name__
    text = f"{name}: {exc}"
    tb = (
        "Traceback (most recent call last):\n"
        '  File "/opt/manager/env/lib/python3.11/site-packages/flask/app.py", line 1823, in '
        "full_dispatch_request\n    rv = self.dispatch_request()\n"
        f"{text}\n"
    )
    return ApiError(500, "internal_server_error",
                    f"Internal error occurred in manager REST server - {text}", traceback=tb)


def _headers(environ: dict[str, Any]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers[key[5:].replace("_", "-").lower()] = value
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").lower()] = environ[key]
    return headers
