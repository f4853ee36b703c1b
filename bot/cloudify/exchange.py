"""The exchange under every `Manager` call: failover across nodes, logging, httpx errors -> the error tree.

`_Exchange` is the base of `Manager`: it sends one `_Call` to the first node that answers, checks the
status cfy expects, reads the body as an object, a page or a stream, and remembers the server's version.
"""

from __future__ import annotations

import base64
import logging
import os
import ssl
import threading
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import httpx

from bot import errors
from bot.clock import Clock
from bot.cloudify import answers
from bot.cloudify.nodes import _connect_failure, _Failure, _Nodes, _unreachable
from bot.cloudify.wire import DIRECT_BODY, Page, _Call, _DirectReader, _of, _OneShot, _parse_version
from bot.settings import ManagerSettings

log = logging.getLogger("cfy_bot.cloudify")


class _Shared:
    """What a manager shares with the managers derived from it (`for_node`, `with_password`)."""

    def __init__(self, client: httpx.Client, on_notice: Callable[[str], None] | None,
                 on_call: Callable[[str, str, int, str, str, str], None] | None = None) -> None:
        self.client = client
        self.on_notice = on_notice
        self.on_call = on_call  # (method, path, status, node, what, execution id) of each call that changes something
        self.notices: list[str] = []
        self.lock = threading.Lock()
        self.version: tuple[int, ...] | None = None


def _execution_of(call: _Call, response: httpx.Response) -> str:
    """The execution a successful call started or acted on (snapshot create and restore, execution actions)."""
    starts = call.path.endswith("/restore") or (call.method == "PUT" and call.path.count("/") == 2
                                                  and call.path.startswith("/snapshots/"))
    if response.status_code not in call.expect or not (starts or call.path.startswith("/executions/")):
        return ""
    try:
        data = response.json()
    except ValueError:
        return ""
    return str(data.get("id") or "") if isinstance(data, dict) else ""


class _Exchange:
    """One manager's nodes, connection pool and settings, and how a call is exchanged with them."""

    settings: ManagerSettings
    _clock: Clock
    _nodes: _Nodes
    _shared: _Shared

    @property
    def name(self) -> str:
        """The configured name of the manager (`prod`)."""
        return self.settings.name

    @property
    def urls(self) -> tuple[str, ...]:
        """The node URLs, in configured order."""
        return self._nodes.urls

    # --- the server's version (it decides the shape of some bodies) ---------------------------

    def version(self) -> dict[str, Any]:
        """`GET /api/version` (authenticated, unversioned): edition and version of the manager."""
        call = _Call("read the version", "GET", "/api/version")
        response, url = self._send(call)
        data = self._json(call, response, url)
        parsed = _parse_version(data.get("version") if isinstance(data, dict) else None)
        if parsed is None:
            raise self._bad(call, url, f"no usable version number ({self._excerpt(response.content)})")
        self._shared.version = parsed
        version: dict[str, Any] = data
        return version

    def server_version(self) -> tuple[int, ...]:
        """The manager's version as numbers, `(7, 0, 4)`; asked once, then cached."""
        cached = self._shared.version
        if cached is None:
            self.version()
            cached = self._shared.version
        assert cached is not None
        return cached

    # --- reading the answer ---------------------------------------------------------------------

    def _object(self, call: _Call) -> dict[str, Any]:
        response, url = self._send(call)
        data = self._json(call, response, url)
        if not isinstance(data, dict):
            raise self._bad(call, url, f"something other than a JSON object ({self._excerpt(response.content)})")
        return data

    def _page(self, call: _Call) -> Page:
        response, url = self._send(call)
        data = self._json(call, response, url)
        items = data.get("items") if isinstance(data, dict) else None
        metadata = data.get("metadata") if isinstance(data, dict) else None
        pagination = metadata.get("pagination") if isinstance(metadata, dict) else None
        total = pagination.get("total") if isinstance(pagination, dict) else None
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            raise self._bad(call, url, f"a list without `items` ({self._excerpt(response.content)})")
        if not isinstance(total, int) or isinstance(total, bool):
            raise self._bad(call, url, "a list without `metadata.pagination.total` "
                                       f"({self._excerpt(response.content)})")
        assert isinstance(pagination, dict)
        offset, size = pagination.get("offset"), pagination.get("size")
        return Page(items, total, offset if isinstance(offset, int) else 0,
                    size if isinstance(size, int) else len(items))

    def _chunks(self, call: _Call, response: httpx.Response, url: str, size: int | None) -> Iterator[bytes]:
        received = 0
        try:
            for chunk in response.iter_bytes():  # as they arrive: re-chunking to a fixed size costs a copy
                received += len(chunk)
                yield chunk
        except (httpx.HTTPError, httpx.StreamError) as exc:
            raise self._download_failed(call, url, received, size, exc) from None
        if size is not None and received != size:
            raise errors.ManagerUnreachable(f"manager {self.name} at {url} ended the download of {call.subject} "
                                            f"after {received}{_of(size)} bytes", manager=self.name)

    def _readinto(self, call: _Call, response: httpx.Response, url: str,
                  size: int | None) -> Callable[[memoryview], int] | None:
        """The body straight from the socket into a buffer, when the transport offers it (bot.cloudify.sockets:
        Content-Length framing, counted there: it never gives more, and fails if the server stops short)."""
        direct: _DirectReader | None = response.extensions.get(DIRECT_BODY)
        if direct is None:
            return None

        def readinto(buffer: memoryview) -> int:
            try:
                return direct.readinto(buffer)
            except (httpx.HTTPError, httpx.StreamError) as exc:
                raise self._download_failed(call, url, direct.received, size, exc) from None

        return readinto

    def _download_failed(self, call: _Call, url: str, received: int, size: int | None,
                         exc: httpx.HTTPError | httpx.StreamError) -> Exception:
        where = f"manager {self.name} at {url}"
        if isinstance(exc, httpx.TimeoutException):
            return errors.ManagerTimeout(f"{where} stopped sending {call.subject} after {received} bytes "
                                         f"(nothing for {self.settings.read_timeout:g} s)", manager=self.name)
        if isinstance(exc, httpx.StreamClosed):
            return RuntimeError("the download is closed: read Download.chunks inside its `with` block")
        if isinstance(exc, httpx.StreamError):
            return RuntimeError("a download is read one way: Download.chunks or Download.readinto, not both")
        return errors.ManagerUnreachable(f"{where} broke off the download of {call.subject} after {received}"
                                         f"{_of(size)} bytes ({exc})", manager=self.name)

    # --- sending, with failover -------------------------------------------------------------------

    def _send(self, call: _Call, *, stream: bool = False) -> tuple[httpx.Response, str]:
        """Exchange `call` with the first node that answers; raise unless the status is the expected one."""
        response, url = self._exchange(call, stream)
        if call.method != "GET" and self._shared.on_call is not None:
            self._shared.on_call(call.method, call.path, response.status_code, url, call.name,
                                 "" if stream else _execution_of(call, response))
        if response.status_code not in call.expect:
            try:
                self._raise_for(call, response, url)
            finally:
                response.close()
        return response, url

    def _exchange(self, call: _Call, stream: bool) -> tuple[httpx.Response, str]:
        nodes = self._nodes
        start = nodes.start()
        failures: list[_Failure] = []
        for step in range(len(nodes.urls)):
            index = (start + step) % len(nodes.urls)
            failure, response = self._try(call, nodes.urls[index], stream)
            if response is not None:
                if failures and nodes.settle(start, index):
                    self._notice(f"manager {self.name}: " + "; ".join(f"node {f.url} {f.verb}" for f in failures)
                                 + f"; now talking to {nodes.urls[index]}")
                return response, nodes.urls[index]
            assert failure is not None
            failures.append(failure)
            if isinstance(call.body, _OneShot) and call.body.started:
                break  # the body is gone: it cannot be sent to another node
        raise _unreachable(self.name, len(self.urls), call, failures)

    def _try(self, call: _Call, url: str, stream: bool) -> tuple[_Failure | None, httpx.Response | None]:
        """One attempt on one node: the response, or why the next node should be tried."""
        request = self._request(call, url)
        began = self._clock.monotonic()
        read, connect = self.settings.read_timeout, self.settings.connect_timeout
        try:
            response = self._shared.client.send(request, stream=stream)
        except httpx.ConnectTimeout:
            failure = _Failure(url, f"connect timed out after {connect:g} s",
                               f"did not accept the connection within {connect:g} s")
        except httpx.ConnectError as exc:
            failure = _connect_failure(url, exc)
        except httpx.TimeoutException:
            if call.method != "GET":  # the node has the request: it may have been applied
                raise errors.ManagerTimeout(
                    f"manager {self.name} at {url} did not answer within {read:g} s to {call.name}; it may still "
                    "have been applied, so check before trying again", manager=self.name) from None
            failure = _Failure(url, f"no answer within {read:g} s", f"did not answer within {read:g} s", timeout=True)
        except httpx.TransportError as exc:
            if call.method != "GET":
                raise errors.ManagerUnreachable(
                    f"manager {self.name} at {url} dropped the connection during {call.name} ({exc}); it may or "
                    "may not have been applied, so check before trying again", manager=self.name) from None
            failure = _Failure(url, f"connection failed ({exc})", f"dropped the connection ({exc})")
        except httpx.HTTPError as exc:
            raise errors.BadResponse(f"manager {self.name} at {url} sent an unreadable answer to {call.name} ({exc})",
                                     manager=self.name) from None
        else:
            self._log(call, url, response.status_code, began)
            if response.status_code != 502:
                return None, response
            response.close()
            failure = _Failure(url, "502 Bad Gateway", "answered 502 Bad Gateway")
        log.warning("%s %s: node %s %s (manager %s)", call.method, call.full_path, url, failure.verb, self.name)
        return failure, None

    def _request(self, call: _Call, url: str) -> httpx.Request:
        headers = {"Content-type": "application/json"}  # cfy sends it on every request, spelled so
        if call.auth:
            headers.update(self._auth_headers())
        tenant = call.tenant or self.settings.tenant
        if tenant:
            headers["Tenant"] = tenant
        if call.body is None and call.method in ("POST", "PUT", "PATCH", "DELETE"):
            headers["Content-Length"] = "0"
        headers.update(call.headers)
        try:
            return self._shared.client.build_request(call.method, url + call.full_path,
                                                     params=None if call.params is None else tuple(call.params),
                                                     content=call.body, headers=headers,
                                                     extensions={DIRECT_BODY: True} if call.direct else None)
        except httpx.InvalidURL as exc:
            raise errors.ConfigError([f"manager {self.name}: {url} is not a usable URL ({exc})"]) from None

    def _auth_headers(self) -> dict[str, str]:
        s = self.settings
        if s.token:  # the token wins: no Authorization header, as cfy with a token profile
            return {"Authentication-Token": s.token}
        if s.username or s.password:
            basic = base64.b64encode(f"{s.username}:{s.password}".encode()).decode("ascii")
            return {"Authorization": f"Basic {basic}"}
        return {}

    def _log(self, call: _Call, url: str, status: int, began: float) -> None:
        # Method, path, status and duration only: never the query (it may hold a presigned URL), bodies or auth.
        ms = (self._clock.monotonic() - began) * 1000
        level = logging.DEBUG if call.method == "GET" and status < 400 else logging.INFO
        log.log(level, "%s %s %s %.0f ms (manager %s at %s)", call.method, call.full_path, status, ms, self.name, url)

    def _notice(self, text: str) -> None:
        log.warning("%s", text)
        with self._shared.lock:
            self._shared.notices.append(text)
        if self._shared.on_notice is not None:
            self._shared.on_notice(text)

    # --- answers -> the error tree (bot.cloudify.answers), with this manager's settings ---------

    def _raise_for(self, call: _Call, response: httpx.Response, url: str) -> NoReturn:
        answers._raise_for(self.settings, call, response, url)

    def _json(self, call: _Call, response: httpx.Response, url: str) -> Any:
        return answers._json(self.settings, call, response, url)

    def _bad(self, call: _Call, url: str, what: str, status: int | None = None) -> errors.BadResponse:
        return answers._bad(self.settings, call, url, what, status)

    def _excerpt(self, raw: bytes, limit: int = 200) -> str:
        return answers._excerpt(self.settings, raw, limit)


def _make_client(settings: ManagerSettings, transport: httpx.BaseTransport | None) -> httpx.Client:
    """The client of one manager: over `transport` if given (tests, the demo), else over the bot's own
    transport (bot.cloudify.sockets: 1 MiB socket reads for archives, on this client's sockets only)."""
    timeout = httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout)
    verify = _verify(settings)
    if transport is None:
        from bot.cloudify.sockets import client_transport  # httpcore: imported only to talk to a real manager

        transport = client_transport(verify)
    return httpx.Client(transport=transport, verify=verify, timeout=timeout, follow_redirects=False)


def _verify(settings: ManagerSettings) -> ssl.SSLContext | bool:
    """CLOUDIFY_SSL_TRUST_ALL turns verification off; CLOUDIFY_CA_BUNDLE (file or folder) pins the CA."""
    if settings.trust_all:
        return False
    if settings.ca_bundle:
        try:
            if os.path.isdir(settings.ca_bundle):
                return ssl.create_default_context(capath=settings.ca_bundle)
            return ssl.create_default_context(cafile=settings.ca_bundle)
        except (OSError, ssl.SSLError) as exc:
            raise errors.ConfigError([f"manager {settings.name}: CLOUDIFY_CA_BUNDLE {settings.ca_bundle} "
                                      f"cannot be used ({exc})"]) from None
    # Verify when some node speaks TLS. When none does (and redirects are not followed), there is nothing
    # to verify, and not loading the CA store saves 50 ms of every start.
    return any(url.lower().startswith("https:") for url in settings.urls)
