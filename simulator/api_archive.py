"""Snapshot archive endpoints: download (streamed from the file) and upload (chunked, plain, or by URL)."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from urllib.parse import urlparse

from simulator.api_snapshots import lookup
from simulator.context import Ctx
from simulator.http import ApiError, Response, internal_error, json_response
from simulator.models import new_snapshot, null_snapshot, render_snapshot

NGINX_404 = (
    "<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n"
    "<center><h1>404 Not Found</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
ONLY_ONE = ("Can pass snapshot as only one of: URL via query parameters, request body, multi-form or "
            "chunked.")


def download(ctx: Ctx) -> Response:
    """`GET /snapshots/<id>/archive`: the zip with Content-Length and Content-Disposition."""
    sim, sid = ctx.sim, ctx.params["id"]
    ctx.permit("snapshot_download")
    row = lookup(ctx, sid)
    if row["status"] == "failed":
        raise ApiError(400, "snapshot_action_error", "Failed snapshot cannot be downloaded")
    tenant = row["tenant_name"]
    if not sim.store.exists(tenant, sid):  # nginx finds no file while the snapshot is being created
        return Response(404, [("Content-Type", "text/html")], [NGINX_404.encode()])
    size = sim.store.size(tenant, sid)
    paths = (ctx.req.path,)
    truncate = sim.faults.take("truncate", ctx.node, paths)
    corrupt = sim.faults.take("corrupt", ctx.node, paths) is not None
    limit = truncate.params["after_bytes"] if truncate else None
    filename = f'"{sid}.zip"' if sim.vt >= (7, 0, 0) else f"{sid}.zip"
    headers = [("Content-Type", "application/octet-stream"), ("Content-Length", str(size)),
               ("Content-Disposition", f"attachment; filename={filename}"),
               ("Content-Description", "File Transfer"), ("Cache-Control", "no-cache")]
    return Response(200, headers, sim.store.stream(tenant, sid, limit=limit, corrupt=corrupt))


def _fetch(url: str) -> Iterator[bytes]:
    """Stream a snapshot archive from a URL the manager is told to fetch (loopback only here)."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https", "ftp"):
        raise ApiError(400, "bad_parameters_error", f"Invalid URL {url}")
    if parsed.hostname not in LOCAL_HOSTS:
        raise ApiError(400, "bad_parameters_error",
                       f"Cannot fetch {url}: the simulator only fetches from 127.0.0.1")
    try:
        response = urllib.request.urlopen(url, timeout=30)  # noqa: S310 - scheme checked above
    except OSError as exc:
        raise ApiError(400, "bad_parameters_error", f"Cannot fetch {url}: {exc}") from None
    with response:
        while chunk := response.read(256 * 1024):
            yield chunk


def upload(ctx: Ctx) -> Response:
    """`PUT /snapshots/<id>/archive` (runs without the simulator lock while the body streams in)."""
    sim, sid, req = ctx.sim, ctx.params["id"], ctx.req
    with sim.lock:
        ctx.permit("snapshot_upload")
        tenant = ctx.need_tenant()
    url = req.arg("snapshot_archive_url")
    content_type = (req.header("content-type") or "").split(";")[0].strip().lower()
    if url and req.has_body():
        raise ApiError(400, "bad_parameters_error", ONLY_ONE)
    if content_type == "application/x-www-form-urlencoded" and req.has_body():
        raise internal_error(FileNotFoundError(f"[Errno 2] No such file or directory: '/tmp/{sid}.zip'"))
    if url:
        chunks = _fetch(url)
    elif req.has_body():
        chunks = req.iter_body()
    else:
        raise internal_error(FileNotFoundError(
            f"[Errno 2] No such file or directory: '/opt/manager/resources/uploaded-snapshots/{sid}/{sid}.zip'"))
    tmp = sim.store.receive(tenant, sid, chunks)
    with sim.lock:
        return _commit_upload(ctx, tenant, sid, tmp)


def _commit_upload(ctx: Ctx, tenant: str, sid: str, tmp: str) -> Response:
    sim = ctx.sim
    existing = sim.state.snapshots.get(tenant, {}).get(sid)
    sim.store.commit(tenant, sid, tmp)
    if existing is not None:
        if sim.vt >= (7, 0, 1):  # the file is replaced and the row kept: 201 with every field null
            return json_response(null_snapshot(), 201)
        raise ApiError(409, "conflict_error", f"<Snapshot id=`{sid}` tenant=`{tenant}`> already exists on "
                       f"<Tenant name=`{tenant}`> or with global visibility")
    row = new_snapshot(sid, tenant, ctx.user.username, sim.now(), "uploaded")
    sim.state.snapshots[tenant][sid] = row
    return json_response(render_snapshot(row), 201)

