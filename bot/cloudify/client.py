"""The Cloudify Manager REST client: one `Manager` per configured manager, with failover across its nodes.

This is the only module of the bot that imports httpx. Every httpx exception and every error answer is
translated here, where it enters, into the `bot.errors` tree with a message naming the manager and node.
Requests are shaped exactly as the official `cfy` 7.0.5 CLI sends them, and each call accepts only the
status cfy expects (see shared/reference/cfy-cli-wire.md).
"""

from __future__ import annotations

import base64
import itertools
import json
import logging
import os
import re
import ssl
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, NoReturn
from urllib.parse import quote

import httpx

from bot import errors
from bot.clock import Clock
from bot.redact import redact, redact_text
from bot.settings import ManagerSettings

log = logging.getLogger("cfy_bot.cloudify")

API = "/api/v3.1"
CHUNK_SIZE = 1 << 20  # download chunks: fixed 1 MiB, so an archive is never held in memory
EXECUTION_ACTIONS = ("cancel", "force-cancel", "kill")
_ERROR_PEEK = 1 << 16  # at most this much of an unexpected body is read, even from a stream


@dataclass(frozen=True)
class Page:
    """One page of a list endpoint: its items and the server's pagination."""

    items: list[dict]
    total: int
    offset: int
    size: int


@dataclass
class Download:
    """A streamed snapshot archive: `size` from Content-Length, `filename` from Content-Disposition."""

    size: int | None
    filename: str | None
    chunks: Iterator[bytes]


@dataclass(frozen=True)
class _Call:
    """One REST call: what it is called in messages, how it is sent, and the status cfy expects."""

    name: str
    method: str
    path: str  # after /api/v3.1, or absolute when it starts with /api/
    expect: tuple[int, ...] = (200,)
    params: list[tuple[str, str]] | None = None
    body: Any = None  # bytes (JSON), a one-shot iterable of bytes (upload), or None
    auth: bool = True
    tenant: str | None = None
    subject: str = ""  # "snapshot daily-1": names the thing in 404/409 messages
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def full_path(self) -> str:
        return self.path if self.path.startswith("/api/") else API + self.path


@dataclass(frozen=True)
class _Failure:
    """Why one node could not be used: a noun phrase for errors, a verb phrase for notices."""

    url: str
    noun: str
    verb: str
    timeout: bool = False
    tls: bool = False


class _Nodes:
    """The node URLs of one manager and the index of the node that answers now (thread-safe)."""

    def __init__(self, urls: Iterable[str]) -> None:
        self.urls = tuple(u.rstrip("/") for u in urls)
        self.index = 0
        self.lock = threading.Lock()

    def start(self) -> int:
        with self.lock:
            return self.index

    def settle(self, start: int, index: int) -> bool:
        """Stick to `index` if nobody moved since `start`; True when this call made the move."""
        with self.lock:
            if self.index != start or index == start:
                return False
            self.index = index
            return True


class _Shared:
    """What a manager shares with the managers derived from it (`for_node`, `with_password`)."""

    def __init__(self, client: httpx.Client, on_notice: Callable[[str], None] | None) -> None:
        self.client = client
        self.on_notice = on_notice
        self.notices: list[str] = []
        self.lock = threading.Lock()
        self.version: tuple[int, ...] | None = None


class _OneShot:
    """An upload body that can be sent once; remembers whether sending began (then no failover)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = chunks
        self.started = False

    def __iter__(self) -> Iterator[bytes]:
        self.started = True
        yield from self._chunks


class Manager:
    """A client for one Cloudify manager (one or more node URLs of the same cluster); thread-safe."""

    def __init__(
        self,
        settings: ManagerSettings,
        *,
        transport: httpx.BaseTransport | None = None,
        clock: Clock | None = None,
        on_notice: Callable[[str], None] | None = None,
    ) -> None:
        if not settings.urls:
            raise errors.ConfigError([f"manager {settings.name}: no node URL is configured"])
        self.settings = settings
        self._clock = clock or Clock()
        self._nodes = _Nodes(settings.urls)
        self._shared = _Shared(_make_client(settings, transport), on_notice)

    def _derive(self, settings: ManagerSettings, nodes: _Nodes) -> Manager:
        other = object.__new__(Manager)
        other.settings, other._clock, other._nodes, other._shared = settings, self._clock, nodes, self._shared
        return other

    def __repr__(self) -> str:
        return f"Manager({self.name!r}, urls={self.urls!r})"

    # --- identity, notices, derived clients --------------------------------------------------

    @property
    def name(self) -> str:
        """The configured name of the manager (`prod`)."""
        return self.settings.name

    @property
    def urls(self) -> tuple[str, ...]:
        """The node URLs, in configured order."""
        return self._nodes.urls

    @property
    def current_url(self) -> str:
        """The node that answered last (requests go there first)."""
        return self._nodes.urls[self._nodes.start()]

    def take_notices(self) -> list[str]:
        """The failover notices recorded since the last call (then forgotten)."""
        with self._shared.lock:
            notices, self._shared.notices = self._shared.notices, []
        return notices

    def for_node(self, url: str) -> Manager:
        """The same manager pinned to one node URL (no failover): cluster status asks every node itself."""
        return self._derive(replace(self.settings, urls=(url,)), _Nodes((url,)))

    def with_password(self, password: str) -> Manager:
        """The same manager and nodes with another password (Basic auth, no token): the post-restore fallback."""
        return self._derive(replace(self.settings, password=password, token=""), self._nodes)

    def close(self) -> None:
        """Close the connection pool (shared with the derived managers)."""
        self._shared.client.close()

    def __enter__(self) -> Manager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- status and version ------------------------------------------------------------------

    def version(self) -> dict:
        """`GET /api/version` (authenticated, unversioned): edition and version of the manager."""
        call = _Call("read the version", "GET", "/api/version")
        response, url = self._send(call)
        data = self._json(call, response, url)
        parsed = _parse_version(data.get("version") if isinstance(data, dict) else None)
        if parsed is None:
            raise self._bad(call, url, f"no usable version number ({self._excerpt(response.content)})")
        self._shared.version = parsed
        return data

    def server_version(self) -> tuple[int, ...]:
        """The manager's version as numbers, `(7, 0, 4)`; asked once, then cached."""
        cached = self._shared.version
        if cached is None:
            self.version()
            cached = self._shared.version
        assert cached is not None
        return cached

    def status(self) -> dict:
        """`GET /status`: overall status and services."""
        return self._object(_Call("read the status", "GET", "/status"))

    def ok(self) -> bool:
        """`GET /ok` (no auth): True when the manager says OK, False when it says FAIL (HTTP 500)."""
        response, _ = self._send(_Call("check its health", "GET", "/ok", expect=(200, 500), auth=False))
        return response.status_code == 200 and response.text.strip().strip('"') == "OK"

    def snapshot_status(self) -> str:
        """`GET /snapshot-status` without credentials: "running" or "not-running" (anything else as sent)."""
        call = _Call("read the snapshot restore status", "GET", "/snapshot-status", auth=False)
        response, url = self._send(call)
        data = self._json(call, response, url)
        if not isinstance(data, dict) or not isinstance(data.get("status"), str):
            raise self._bad(call, url, f"no `status` field ({self._excerpt(response.content)})")
        return data["status"]

    # --- snapshots -----------------------------------------------------------------------------

    def list_snapshots(
        self,
        *,
        sort: str = "created_at",
        descending: bool = False,
        search: str | None = None,
        offset: int = 0,
        size: int = 1000,
        all_tenants: bool = False,
        tenant: str | None = None,
        **filters: Any,
    ) -> Page:
        """`GET /snapshots`, with the query in cfy's order (`_all_tenants, _search, _offset, _size, _sort`)."""
        params = [("_all_tenants", _py(all_tenants))]
        if search:
            params.append(("_search", search))
        params += [("_offset", str(offset)), ("_size", str(size)), ("_sort", ("-" if descending else "") + sort)]
        call = _Call("list snapshots", "GET", "/snapshots", params=params + _filters(filters), tenant=tenant)
        return self._page(call)

    def get_snapshot(self, snapshot_id: str, tenant: str | None = None) -> dict:
        """`GET /snapshots/<id>`."""
        call = _Call(f"read snapshot {snapshot_id}", "GET", f"/snapshots/{_seg(snapshot_id)}",
                     tenant=tenant, subject=f"snapshot {snapshot_id}")
        return self._object(call)

    def create_snapshot(
        self,
        snapshot_id: str,
        *,
        legacy: bool,
        include_credentials: bool = True,
        include_logs: bool = True,
        include_events: bool = True,
        queue: bool = False,
        tempdir_path: str | None = None,
        listener_timeout: float | None = None,
    ) -> dict:
        """`PUT /snapshots/<id>` with cfy's body (`legacy` always explicit); 201; the redacted execution."""
        if legacy and listener_timeout is not None:
            raise errors.UsageError("--listener-timeout only applies to new-format snapshots (use --no-legacy)")
        body = {
            "include_credentials": include_credentials,
            "include_logs": include_logs,
            "include_events": include_events,
            "queue": queue,
            "tempdir_path": tempdir_path,
            "legacy": legacy,
            "listener_timeout": None if listener_timeout is None else float(listener_timeout),
        }
        call = _Call(f"create snapshot {snapshot_id}", "PUT", f"/snapshots/{_seg(snapshot_id)}", expect=(201,),
                     body=_dumps(body), subject=f"snapshot {snapshot_id}")
        return self._object(call)

    def delete_snapshot(self, snapshot_id: str, tenant: str | None = None) -> dict | None:
        """`DELETE /snapshots/<id>`: 200 with the deleted snapshot, or 204 (None)."""
        call = _Call(f"delete snapshot {snapshot_id}", "DELETE", f"/snapshots/{_seg(snapshot_id)}",
                     expect=(200, 204), tenant=tenant, subject=f"snapshot {snapshot_id}")
        response, url = self._send(call)
        return None if response.status_code == 204 else self._json(call, response, url)

    @contextmanager
    def download_snapshot(self, snapshot_id: str, tenant: str | None = None) -> Iterator[Download]:
        """`GET /snapshots/<id>/archive`, streamed: read `Download.chunks` (1 MiB each) inside the `with`."""
        call = _Call(f"download snapshot {snapshot_id}", "GET", f"/snapshots/{_seg(snapshot_id)}/archive",
                     tenant=tenant, subject=f"snapshot {snapshot_id}",
                     headers={"Accept-Encoding": "identity"})  # so Content-Length is the archive's size
        try:
            response, url = self._send(call, stream=True)
        except errors.ManagerNotFound as exc:
            if exc.error_code:
                raise
            raise errors.ManagerNotFound(
                f"manager {self.name} has no archive for snapshot {snapshot_id} (an HTML 404: is the "
                "snapshot still being created, or is the manager URL wrong?)", manager=self.name, status=404,
            ) from None
        try:
            size = _int_or_none(response.headers.get("content-length"))
            filename = _filename(response.headers.get("content-disposition", ""))
            yield Download(size, filename, self._chunks(call, response, url, size))
        finally:
            response.close()

    def upload_snapshot(
        self,
        snapshot_id: str,
        chunks: Iterable[bytes] | None = None,
        *,
        url: str | None = None,
        tenant: str | None = None,
    ) -> dict:
        """`PUT /snapshots/<id>/archive`: a chunked body from `chunks`, or `?snapshot_archive_url=`; 201."""
        if (chunks is None) == (url is None):
            raise ValueError("upload_snapshot needs either chunks or url, not both")
        self.version()  # as cfy does; it also settles on a node that answers before the body is sent
        call = _Call(f"upload snapshot {snapshot_id}", "PUT", f"/snapshots/{_seg(snapshot_id)}/archive",
                     expect=(201,), params=[("snapshot_archive_url", url)] if url else None,
                     body=_OneShot(chunks) if chunks is not None else None, tenant=tenant,
                     subject=f"snapshot {snapshot_id}")
        return self._object(call)

    def restore_snapshot(
        self,
        snapshot_id: str,
        *,
        force: bool = False,
        restore_certificates: bool = False,
        no_reboot: bool = False,
        timeout: int | None = None,
    ) -> dict:
        """`POST /snapshots/<id>/restore` with the body for the server's version (`force` always); 200."""
        body: dict[str, Any] = {}
        if self.server_version() < (6,):
            body["recreate_deployments_envs"] = True  # required before 6.0 (400 without it)
        body.update(force=force, restore_certificates=restore_certificates, no_reboot=no_reboot,
                    ignore_plugin_failure=False)
        if timeout is not None:
            body["timeout"] = int(timeout)
        call = _Call(f"restore snapshot {snapshot_id}", "POST", f"/snapshots/{_seg(snapshot_id)}/restore",
                     body=_dumps(body), subject=f"snapshot {snapshot_id}")
        return self._object(call)

    # --- maintenance mode ----------------------------------------------------------------------

    def maintenance_status(self) -> dict:
        """`GET /maintenance`, with `remaining_executions` always a flat list."""
        return _maintenance(self._object(_Call("read the maintenance mode", "GET", "/maintenance")))

    def maintenance_activate(self) -> dict:
        """`POST /maintenance/activate` (no body); 304 means it was already on (NotModified)."""
        return self._maintenance_action("activate", "on")

    def maintenance_deactivate(self) -> dict:
        """`POST /maintenance/deactivate` (no body); 304 means it was already off (NotModified)."""
        return self._maintenance_action("deactivate", "off")

    def _maintenance_action(self, action: str, state: str) -> dict:
        call = _Call(f"{action} maintenance mode", "POST", f"/maintenance/{action}", expect=(200,))
        try:
            return _maintenance(self._object(call))
        except errors.NotModified as exc:
            raise errors.NotModified(f"manager {self.name}: maintenance mode is already {state}",
                                     manager=self.name, status=304, error_code="not_modified") from exc

    # --- executions, events, schedules ---------------------------------------------------------

    def get_execution(self, execution_id: str, *, bypass_maintenance: bool = False,
                      tenant: str | None = None) -> dict:
        """`GET /executions/<id>`, redacted (its `parameters.config` holds the database password)."""
        call = _Call(f"read execution {execution_id}", "GET", f"/executions/{_seg(execution_id)}",
                     subject=f"execution {execution_id}", headers=_bypass(bypass_maintenance), tenant=tenant)
        return self._object(call)

    def list_executions(
        self,
        *,
        include_system: bool = True,
        offset: int | None = None,
        size: int | None = None,
        sort: str | None = None,
        bypass_maintenance: bool = False,
        **filters: Any,
    ) -> Page:
        """`GET /executions`; a list value (e.g. `status=[...]`) repeats the key; items redacted."""
        params = [("_include_system_workflows", _py(include_system))] + _paging(offset, size, sort) + _filters(filters)
        return self._page(_Call("list executions", "GET", "/executions", params=params,
                                headers=_bypass(bypass_maintenance)))

    def execution_action(self, execution_id: str, action: str, *, bypass_maintenance: bool = False,
                         tenant: str | None = None) -> dict:
        """`POST /executions/<id> {"action": ...}` with cancel, force-cancel or kill; the redacted execution.

        Executions are tenant-scoped: `tenant` names the execution's tenant when it is not the manager's own.
        """
        if action not in EXECUTION_ACTIONS:
            raise ValueError(f"execution action must be one of {', '.join(EXECUTION_ACTIONS)}, not {action!r}")
        call = _Call(f"{action} execution {execution_id}", "POST", f"/executions/{_seg(execution_id)}",
                     body=_dumps({"action": action}), subject=f"execution {execution_id}",
                     headers=_bypass(bypass_maintenance), tenant=tenant)
        return self._object(call)

    def list_events(
        self,
        execution_id: str,
        *,
        offset: int = 0,
        size: int = 100,
        include_logs: bool = True,
        bypass_maintenance: bool = False,
        **filters: Any,
    ) -> Page:
        """`GET /events` as the CLI polls it (events, and logs unless `include_logs=False`)."""
        params = [("_offset", str(offset)), ("_size", str(size)), ("execution_id", execution_id),
                  ("type", "cloudify_event")]
        if include_logs:
            params.append(("type", "cloudify_log"))
        params += [("_sort", "reported_timestamp")] + _filters(filters)
        return self._page(_Call(f"list the events of execution {execution_id}", "GET", "/events", params=params,
                                headers=_bypass(bypass_maintenance)))

    def list_execution_schedules(
        self, *, offset: int | None = None, size: int | None = None, sort: str | None = None, **filters: Any
    ) -> Page:
        """`GET /execution-schedules`."""
        return self._page(_Call("list execution schedules", "GET", "/execution-schedules",
                                params=_paging(offset, size, sort) + _filters(filters)))

    # --- cluster -------------------------------------------------------------------------------

    def managers(self) -> Page:
        """`GET /managers`: the manager nodes."""
        return self._page(_Call("list the manager nodes", "GET", "/managers"))

    def brokers(self) -> Page:
        """`GET /brokers`: the broker nodes (credentials redacted)."""
        return self._page(_Call("list the broker nodes", "GET", "/brokers"))

    def db_nodes(self) -> Page:
        """`GET /db-nodes`: the database nodes."""
        return self._page(_Call("list the database nodes", "GET", "/db-nodes"))

    def cluster_status(self, summary: bool = False) -> dict:
        """`GET /cluster-status?summary=False` as cfy asks it (with `summary`, a `Fail` comes as HTTP 500)."""
        call = _Call("read the cluster status", "GET", "/cluster-status", params=[("summary", _py(summary))],
                     expect=(200, 500) if summary else (200,))
        response, url = self._send(call)
        if response.status_code == 500:  # with summary, a cluster in `Fail` is reported as HTTP 500
            data = _loads(response.content)
            if not (isinstance(data, dict) and isinstance(data.get("services"), dict)):
                self._raise_for(call, response, url)
            return redact(data)
        data = self._json(call, response, url)
        if not isinstance(data, dict) or not isinstance(data.get("services"), dict):
            raise self._bad(call, url, f"a cluster status without `services` ({self._excerpt(response.content)})")
        return data

    # --- the exchange: failover, logging, translation of httpx errors --------------------------

    def _object(self, call: _Call) -> dict:
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

    def _send(self, call: _Call, *, stream: bool = False) -> tuple[httpx.Response, str]:
        """Exchange `call` with the first node that answers; raise unless the status is the expected one."""
        response, url = self._exchange(call, stream)
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
        raise self._unreachable(call, failures)

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
            return self._shared.client.build_request(call.method, url + call.full_path, params=call.params,
                                                     content=call.body, headers=headers)
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

    def _unreachable(self, call: _Call, failures: list[_Failure]) -> errors.ManagerUnreachable:
        detail = "; ".join(f"{f.url} {f.noun}" for f in failures)
        if any(f.tls for f in failures):
            detail += (" (point CLOUDIFY_CA_BUNDLE at the manager's CA certificate, "
                       "or set CLOUDIFY_SSL_TRUST_ALL=true)")
        if isinstance(call.body, _OneShot) and call.body.started and len(failures) < len(self.urls):
            detail += f"; {call.name} was not sent to another node because its body cannot be sent twice"
        if all(f.timeout for f in failures):
            return errors.ManagerTimeout(f"manager {self.name} did not answer in time: {detail}", manager=self.name)
        status = 502 if all(f.noun.startswith("502") for f in failures) else None
        return errors.ManagerUnreachable(f"manager {self.name} is unreachable: {detail}", manager=self.name,
                                         status=status)

    def _chunks(self, call: _Call, response: httpx.Response, url: str, size: int | None) -> Iterator[bytes]:
        received = 0
        where = f"manager {self.name} at {url}"
        try:
            for chunk in response.iter_bytes(CHUNK_SIZE):
                received += len(chunk)
                yield chunk
        except httpx.TimeoutException:
            raise errors.ManagerTimeout(f"{where} stopped sending {call.subject} after {received} bytes "
                                        f"(nothing for {self.settings.read_timeout:g} s)", manager=self.name) from None
        except httpx.StreamError:
            raise RuntimeError("the download is closed: read Download.chunks inside its `with` block") from None
        except httpx.HTTPError as exc:
            raise errors.ManagerUnreachable(f"{where} broke off the download of {call.subject} after {received}"
                                            f"{_of(size)} bytes ({exc})", manager=self.name) from None
        if size is not None and received != size:
            raise errors.ManagerUnreachable(f"{where} ended the download of {call.subject} after {received}"
                                            f"{_of(size)} bytes", manager=self.name)

    # --- error answers -> the error tree -------------------------------------------------------

    def _raise_for(self, call: _Call, response: httpx.Response, url: str) -> NoReturn:
        """Raise the error for an answer whose status is not the one `call` expects."""
        status = response.status_code
        raw = _read_some(response)
        code, message = _error_fields(raw)
        message = self._scrub(message)
        first = message.strip().splitlines()[0] if message.strip() else self._excerpt(raw)
        kw: dict[str, Any] = dict(manager=self.name, status=status, error_code=code, server_message=message)
        where = f"manager {self.name} at {url}"
        tenant = call.tenant or self.settings.tenant
        if status == 304:
            kw["error_code"] = code or "not_modified"
            raise errors.NotModified(f"manager {self.name}: nothing to modify ({call.name})", **kw)
        if status == 401:
            raise errors.AuthenticationFailed(f"{where} rejected {self._who()}: {first}", **kw)
        if status == 403:
            raise self._forbidden(call, first, tenant, kw)
        if status == 404:
            if not code:  # an HTML (or otherwise foreign) 404: not the REST API's own not_found_error
                raise errors.ManagerNotFound(f"{where} does not serve the Cloudify REST API at this path (is the URL "
                                             f"right?): {call.method} {call.full_path} answered 404 {first}", **kw)
            if code == "not_found_error" and call.subject:
                raise errors.ManagerNotFound(f"{call.subject} does not exist on manager {self.name} "
                                             f"(tenant {tenant})", **kw)
            raise errors.ManagerNotFound(f"manager {self.name} could not {call.name}: {first}", **kw)
        if status == 409:
            if code == "conflict_error" and call.subject:
                raise errors.Conflict(f"{call.subject} already exists on manager {self.name} (tenant {tenant})", **kw)
            raise errors.Conflict(f"manager {self.name} refused to {call.name}: {first}", **kw)
        if status == 400:
            raise self._bad_request(call, code, first, kw)
        if status == 503 and code == "maintenance_mode_active":
            raise errors.MaintenanceModeActive(f"manager {self.name} is in maintenance mode, so it refused to "
                                               f"{call.name} (deactivate maintenance mode first)", **kw)
        if status == 503 and code == "entering_maintenance_mode":
            raise errors.EnteringMaintenanceMode(f"manager {self.name} is entering maintenance mode, so it refused to "
                                                 f"{call.name} (running executions must end first)", **kw)
        if status >= 500:
            raise errors.ServerError(f"{where} failed to {call.name}: HTTP {status} {code or ''}: {first}"
                                     .replace("  ", " "), **kw)
        expected = " or ".join(str(s) for s in call.expect)
        raise errors.ServerError(f"{where} answered HTTP {status} to {call.method} {call.full_path} ({call.name}), "
                                 f"where cfy expects {expected}: {self._excerpt(raw)}", **kw)

    def _who(self) -> str:
        s = self.settings
        if s.token:
            return "the API token"
        if s.username:
            return f"the credentials for user {s.username}"
        return ("a request without credentials (set CLOUDIFY_USERNAME and CLOUDIFY_PASSWORD, "
                "or CLOUDIFY_TOKEN)")

    def _forbidden(self, call: _Call, first: str, tenant: str, kw: dict[str, Any]) -> errors.Forbidden:
        low = first.lower()
        if "invalid tenant name" in low:
            return errors.TenantNotFound(f"tenant {tenant} does not exist on manager {self.name}", **kw)
        if "tenant not provided" in low:
            return errors.TenantNotFound(f"manager {self.name} needs a tenant and none was sent "
                                         "(set CLOUDIFY_TENANT)", **kw)
        user = self.settings.username or "the token's user"
        return errors.Forbidden(f"manager {self.name} does not let {user} {call.name} in tenant {tenant}: {first}",
                                **kw)

    def _bad_request(self, call: _Call, code: str, first: str, kw: dict[str, Any]) -> errors.BadRequest:
        if code == "existing_running_execution_error":
            ids = _execution_ids(first)
            exc = errors.ExecutionsRunning(
                f"manager {self.name} refused to {call.name} because other executions are running: "
                f"{', '.join(ids) if ids else first}", **kw)
            exc.execution_ids = ids  # type: ignore[attr-defined]
            return exc
        if code == "snapshot_action_error":
            return errors.SnapshotActionError(f"manager {self.name} refused to {call.name}: {first}", **kw)
        return errors.BadRequest(f"manager {self.name} refused to {call.name}: {first}", **kw)

    def _json(self, call: _Call, response: httpx.Response, url: str) -> Any:
        """The redacted JSON body of a successful answer, or BadResponse."""
        data = _loads(response.content)
        if data is _NOT_JSON:
            if _looks_html(response.content, response.headers.get("content-type", "")):
                raise errors.BadResponse(f"manager {self.name} at {url} answered with HTML, not JSON: is this a "
                                         f"Cloudify manager? ({call.method} {call.full_path})",
                                         manager=self.name, status=response.status_code)
            raise self._bad(call, url, f"something that is not JSON ({self._excerpt(response.content)}): "
                                       "is this a Cloudify manager?", response.status_code)
        return redact(data)

    def _bad(self, call: _Call, url: str, what: str, status: int | None = None) -> errors.BadResponse:
        return errors.BadResponse(f"manager {self.name} at {url} answered {call.method} {call.full_path} "
                                  f"({call.name}) with {what}", manager=self.name, status=status)

    def _scrub(self, text: str) -> str:
        s = self.settings
        return redact_text(text, (s.password, s.token, s.fallback_password))

    def _excerpt(self, raw: bytes, limit: int = 200) -> str:
        """A short, redacted, one-line excerpt of a body, for error messages."""
        data = _loads(raw)
        if data is not _NOT_JSON:
            text = json.dumps(redact(data))
        else:
            text = raw.decode("utf-8", "replace")
            if _looks_html(raw, ""):
                text = re.sub(r"<[^>]*>", " ", text)
        text = " ".join(self._scrub(text).split())
        if not text:
            return "(empty body)"
        return text if len(text) <= limit else text[:limit] + "…"


# --- module helpers ----------------------------------------------------------------------------

_NOT_JSON = object()


def _make_client(settings: ManagerSettings, transport: httpx.BaseTransport | None) -> httpx.Client:
    timeout = httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout)
    return httpx.Client(transport=transport, verify=_verify(settings), timeout=timeout, follow_redirects=False)


def _verify(settings: ManagerSettings) -> ssl.SSLContext | bool:
    """CLOUDIFY_SSL_TRUST_ALL turns verification off; CLOUDIFY_CA_BUNDLE (file or folder) pins the CA."""
    if settings.trust_all:
        return False
    if not settings.ca_bundle:
        return True
    try:
        if os.path.isdir(settings.ca_bundle):
            return ssl.create_default_context(capath=settings.ca_bundle)
        return ssl.create_default_context(cafile=settings.ca_bundle)
    except (OSError, ssl.SSLError) as exc:
        raise errors.ConfigError([f"manager {settings.name}: CLOUDIFY_CA_BUNDLE {settings.ca_bundle} "
                                  f"cannot be used ({exc})"]) from None


def _connect_failure(url: str, exc: httpx.ConnectError) -> _Failure:
    text = str(exc) or type(exc).__name__
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return _Failure(url, f"TLS certificate not trusted ({text})",
                        "presented a TLS certificate that is not trusted", tls=True)
    if "SSL" in text:
        return _Failure(url, f"TLS handshake failed ({text})", f"failed the TLS handshake ({text})", tls=True)
    if "refused" in text.lower():
        return _Failure(url, "connection refused", "refused the connection")
    return _Failure(url, f"cannot connect ({text})", f"could not be reached ({text})")


def _py(value: bool) -> str:
    """Booleans in query strings as cfy spells them (Python's `True` / `False`)."""
    return "True" if value else "False"


def _filters(filters: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Equality filters; a list value repeats the key (OR), None is left out."""
    params: list[tuple[str, str]] = []
    for key, value in filters.items():
        values = value if isinstance(value, (list, tuple, set, frozenset)) else [value]
        params += [(key, _py(v) if isinstance(v, bool) else str(v)) for v in values if v is not None]
    return params


def _paging(offset: int | None, size: int | None, sort: str | None) -> list[tuple[str, str]]:
    """`_offset`, `_size`, `_sort` when given (an execution has no `size` field to filter on)."""
    pairs = (("_offset", offset), ("_size", size), ("_sort", sort))
    return [(key, str(value)) for key, value in pairs if value is not None]


def _bypass(bypass: bool) -> dict[str, str]:
    """`X-BYPASS-MAINTENANCE`: lets a sys-admin read executions and events while maintenance is activated."""
    return {"X-BYPASS-MAINTENANCE": "true"} if bypass else {}


def _seg(value: str) -> str:
    """One path segment: valid Cloudify ids pass unchanged; anything else cannot break out of it."""
    return quote(str(value), safe="")


def _dumps(body: dict[str, Any]) -> bytes:
    # json.dumps defaults (", " and ": "), exactly as cfy's client serialises; httpx's json= is compact.
    return json.dumps(body).encode()


def _loads(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return _NOT_JSON


def _looks_html(raw: bytes, content_type: str) -> bool:
    return "html" in content_type.lower() or raw.lstrip()[:1] == b"<"


def _error_fields(raw: bytes) -> tuple[str, str]:
    """`error_code` and `message` (or `detail`) of a JSON error body; empty strings otherwise."""
    data = _loads(raw)
    if not isinstance(data, dict):
        return "", ""
    return str(data.get("error_code") or ""), str(data.get("message") or data.get("detail") or "")


def _read_some(response: httpx.Response, limit: int = _ERROR_PEEK) -> bytes:
    """The start of a body for an error message, without reading a whole stream."""
    try:
        return response.content[:limit]
    except httpx.ResponseNotRead:
        pass
    data = bytearray()
    try:
        for chunk in response.iter_bytes():
            data += chunk
            if len(data) >= limit:
                break
    except httpx.HTTPError:
        pass  # what arrived is enough to describe the error
    return bytes(data[:limit])


def _parse_version(value: Any) -> tuple[int, ...] | None:
    """`"7.1.0.dev1"` -> `(7, 1, 0)`; None when there is no leading number."""
    match = re.match(r"\s*v?(\d+(?:\.\d+)*)", value) if isinstance(value, str) else None
    return tuple(int(p) for p in match.group(1).split(".")) if match else None


def _maintenance(data: dict) -> dict:
    """`remaining_executions` as a flat list: activate wraps it in `[[...]]`, an idle GET sends null."""
    remaining = data.get("remaining_executions")
    if remaining is None:
        remaining = []
    elif isinstance(remaining, list) and len(remaining) == 1 and isinstance(remaining[0], list):
        remaining = remaining[0]
    return {**data, "remaining_executions": remaining}


def _execution_ids(message: str) -> list[str]:
    """The ids listed by existing_running_execution_error, in the 6.3+ and the older wording."""
    for marker in ("e.g.:", "Currently running executions:", "(id:"):
        if marker in message:
            return re.findall(r"[A-Za-z0-9][\w.:~-]*", message.split(marker, 1)[1])
    return []


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _filename(disposition: str) -> str | None:
    """The file name of `attachment; filename="x.zip"` (quoted or not), without any folder part."""
    match = re.search(r"filename\*?=(?:UTF-8'')?\"?([^\";]+)\"?", disposition, re.IGNORECASE)
    name = match.group(1).strip().replace("\\", "/").rsplit("/", 1)[-1] if match else ""
    return name or None


def _of(size: int | None) -> str:
    return f" of {size}" if size is not None else ""


# --- in-process transport: the simulator (or any WSGI app) behind the real client ---------------


def wsgi_transport(apps: Callable[..., Any] | Mapping[str, Callable[..., Any]]) -> httpx.BaseTransport:
    """An httpx transport that calls WSGI apps in-process, streaming request and response bodies.

    `apps` is one WSGI callable, or a dict from URL host (or host:port) to WSGI callable. An app that raises
    ConnectionRefusedError is a refused connection (httpx.ConnectError); TimeoutError is a read timeout.
    A response shorter than its Content-Length ends with a protocol error, as over a real socket.
    """
    return _WSGITransport(apps)


class _WSGITransport(httpx.BaseTransport):
    def __init__(self, apps: Callable[..., Any] | Mapping[str, Callable[..., Any]]) -> None:
        self._apps: Mapping[str, Callable[..., Any]] = {} if callable(apps) else dict(apps)
        self._default = apps if callable(apps) else None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        host, port = request.url.host, request.url.port or {"http": 80, "https": 443}[request.url.scheme]
        app = self._apps.get(f"{host}:{port}") or self._apps.get(host) or self._default
        if app is None:
            raise httpx.ConnectError(f"no WSGI app serves host {host}", request=request)
        started: list[Any] = []
        written: list[bytes] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if exc_info and started:
                raise exc_info[1].with_traceback(exc_info[2])
            started[:] = [status, headers]
            return written.append

        try:
            result = app(_environ(request, host, port), start_response)
            body = iter(result)
            while not started:  # an app may call start_response only when its body is first iterated
                written.append(next(body))
        except ConnectionRefusedError as exc:
            raise httpx.ConnectError(str(exc) or "connection refused", request=request) from None
        except TimeoutError as exc:
            raise httpx.ReadTimeout(str(exc) or "timed out", request=request) from None
        status = int(started[0].split()[0])
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in started[1]]
        bodiless = request.method == "HEAD" or status in (204, 304) or status < 200
        length = None if bodiless else _int_or_none(dict((k.lower(), v) for k, v in started[1]).get("content-length"))
        stream = _WSGIResponseStream(itertools.chain(written, body), result, request, length)
        return httpx.Response(status, headers=headers, stream=stream, request=request)


def _environ(request: httpx.Request, host: str, port: int) -> dict[str, Any]:
    environ: dict[str, Any] = {
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": request.url.scheme,
        "wsgi.input": _WSGIInput(request.stream),
        "wsgi.input_terminated": True,  # the body ends where the stream ends (chunked uploads)
        "wsgi.errors": _LogErrors(),
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "REQUEST_METHOD": request.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": request.url.path,
        "RAW_URI": request.url.raw_path.decode("ascii"),
        "QUERY_STRING": request.url.query.decode("ascii"),
        "SERVER_NAME": host,
        "SERVER_PORT": str(port),
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
    }
    for raw_key, raw_value in request.headers.raw:
        key = raw_key.decode("latin-1").upper().replace("-", "_")
        key = key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key
        value = raw_value.decode("latin-1")
        environ[key] = f"{environ[key]}, {value}" if key in environ else value
    return environ


class _LogErrors:
    """`wsgi.errors` written to this module's logger (at debug level)."""

    def write(self, text: str) -> None:
        if text.strip():
            log.debug("wsgi: %s", text.rstrip())

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        pass


class _WSGIInput:
    """`wsgi.input` over the request stream: read lazily, so a chunked upload is never buffered whole."""

    def __init__(self, stream: Iterable[bytes]) -> None:
        self._chunks = iter(stream)
        self._buffer = bytearray()
        self._done = False

    def _fill(self, wanted: int, stop: bytes | None = None) -> None:
        while not self._done and (wanted < 0 or len(self._buffer) < wanted):
            if stop is not None and stop in self._buffer:
                return
            chunk = next(self._chunks, None)
            if chunk is None:
                self._done = True
            else:
                self._buffer += chunk

    def _take(self, n: int) -> bytes:
        n = len(self._buffer) if n < 0 else min(n, len(self._buffer))
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data

    def read(self, size: int | None = -1) -> bytes:
        size = -1 if size is None else size
        if size > 0 and not self._buffer:
            self._fill(1)  # one chunk at a time, as a socket would
            return self._take(size)
        self._fill(size)
        return self._take(size)

    def readline(self, size: int | None = -1) -> bytes:
        size = -1 if size is None else size
        self._fill(size, stop=b"\n")
        end = self._buffer.find(b"\n")
        n = end + 1 if end >= 0 else len(self._buffer)
        return self._take(n if size < 0 else min(n, size))

    def readlines(self, hint: int = -1) -> list[bytes]:
        return list(iter(self.readline, b""))

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.readline, b"")


class _WSGIResponseStream(httpx.SyncByteStream):
    """The app's body iterable, passed on chunk by chunk; faults raised mid-body become httpx errors."""

    def __init__(self, body: Iterator[bytes], result: Any, request: httpx.Request, length: int | None) -> None:
        self._body, self._result, self._request, self._length = body, result, request, length

    def __iter__(self) -> Iterator[bytes]:
        received = 0
        try:
            for chunk in self._body:
                if chunk:
                    received += len(chunk)
                    yield bytes(chunk)
        except TimeoutError as exc:
            raise httpx.ReadTimeout(str(exc) or "timed out", request=self._request) from None
        except ConnectionError as exc:
            raise httpx.ReadError(str(exc) or "connection reset", request=self._request) from None
        if self._length is not None and received < self._length:
            raise httpx.RemoteProtocolError(
                f"peer closed connection without sending complete message body (received {received} bytes, "
                f"expected {self._length})", request=self._request)

    def close(self) -> None:
        close = getattr(self._result, "close", None)
        if close is not None:
            close()
