"""The snapshot calls of `Manager`: list, read, create, delete, download, upload and restore."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from bot import errors
from bot.core import Execution
from bot.cloudify.exchange import _Exchange
from bot.cloudify.wire import (
    Download,
    Page,
    _Call,
    _dumps,
    _filename,
    _filters,
    _int_or_none,
    _OneShot,
    _py,
    _seg,
)


class _SnapshotCalls(_Exchange):
    """`/snapshots` and its archive and restore endpoints, each accepting only the status cfy expects."""

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

    def get_snapshot(self, snapshot_id: str, tenant: str | None = None) -> dict[str, Any]:
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
    ) -> Execution:
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
        return Execution.from_wire(self._object(call))

    def delete_snapshot(self, snapshot_id: str, tenant: str | None = None) -> dict[str, Any] | None:
        """`DELETE /snapshots/<id>`: 200 with the deleted snapshot, or 204 (None)."""
        call = _Call(f"delete snapshot {snapshot_id}", "DELETE", f"/snapshots/{_seg(snapshot_id)}",
                     expect=(200, 204), tenant=tenant, subject=f"snapshot {snapshot_id}")
        response, url = self._send(call)
        return None if response.status_code == 204 else self._json(call, response, url)

    @contextmanager
    def download_snapshot(self, snapshot_id: str, tenant: str | None = None) -> Iterator[Download]:
        """`GET /snapshots/<id>/archive`, streamed: read `Download.chunks` (1 MiB each) or, when the transport
        offers it, `Download.readinto` (straight from the socket) inside the `with`."""
        call = _Call(f"download snapshot {snapshot_id}", "GET", f"/snapshots/{_seg(snapshot_id)}/archive",
                     tenant=tenant, subject=f"snapshot {snapshot_id}",
                     headers={"Accept-Encoding": "identity"},  # so Content-Length is the archive's size
                     direct=True)
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
            yield Download(size, filename, self._chunks(call, response, url, size),
                           self._readinto(call, response, url, size))
        finally:
            response.close()

    def upload_snapshot(
        self,
        snapshot_id: str,
        chunks: Iterable[bytes] | None = None,
        *,
        url: str | None = None,
        tenant: str | None = None,
    ) -> dict[str, Any]:
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
    ) -> Execution:
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
        return Execution.from_wire(self._object(call))
