"""The WSGI entry point: network faults, routing, the maintenance gate, authentication, handlers, audit headers.

Request pipeline (the order of the real manager's `before_request` hooks):
advance executions → network faults (refused, hang, slow) → injected HTTP errors → route (HTML 404/405) →
maintenance flip and gate (before auth) → authentication (unless `snapshot-status`/`ok`) → tenant header →
handler → audit headers → persist.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from simulator import maintenance
from simulator.auth import authenticate, check_tenant
from simulator.context import Ctx
from simulator.http import ApiError, HtmlError, Request, Response, internal_error
from simulator.routes import Match, match, versionless
from simulator.wire import NGINX_502, REASONS

if TYPE_CHECKING:
    from simulator.sim import Simulator

NGINX_PAGES = {503: "503 Service Temporarily Unavailable", 504: "504 Gateway Time-out"}


def nginx_page(status: int) -> Response:
    """The HTML error page nginx answers with when the REST service behind it is gone."""
    if status == 502:
        text = NGINX_502
    else:
        title = NGINX_PAGES.get(status, f"{status} Error")
        text = (f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>"
                "\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")
    return Response(status, [("Content-Type", "text/html")], [text.encode()])


class NodeApp:
    """A WSGI callable answering as one manager node (None: the first manager node)."""

    def __init__(self, sim: Simulator, node: str | None) -> None:
        self.sim, self.node = sim, node

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        node = self.node or self.sim.nodes[0]
        response = handle(self.sim, Request(environ), node)
        reason = REASONS.get(response.status, "UNKNOWN")
        start_response(f"{response.status} {reason}", response.headers)
        return response.body


def _network_faults(sim: Simulator, node: str, paths: tuple[str, ...]) -> None:
    """Faults that happen before any HTTP answer: refused connections, hangs, slowness."""
    if node not in sim.nodes or sim.cluster.is_down(node) or sim.faults.take("refuse", node, paths):
        raise ConnectionRefusedError(111, "Connection refused")
    if sim.faults.take("hang", node, paths):
        raise TimeoutError("the manager did not answer")
    slow = sim.faults.take("slow", node, paths)
    if slow is not None:
        sim.sleep(float(slow.params["delay"]))


def _injected(sim: Simulator, node: str, paths: tuple[str, ...]) -> Response | None:
    """Injected HTTP errors, garbage bodies, and nginx's 502 when this node's REST service is down."""
    fault = sim.faults.take("http_error", node, paths)
    if fault is not None:
        status = int(fault.params["status"])
        if status >= 502:
            return nginx_page(status)
        return internal_error(RuntimeError("injected fault")).response()
    if sim.faults.take("garbage", node, paths) is not None:
        sim.garbage_served += 1
        if sim.garbage_served % 2:
            return Response(200, [("Content-Type", "text/html")], [b"<html><body><h1>Welcome to nginx!</h1>"
                                                                   b"</body></html>\n"])
        return Response(200, [("Content-Type", "application/json")], [b"upstream sent an invalid response\n"])
    if not sim.cluster.serves_api(node):
        return nginx_page(502)
    return None


def _prepare(sim: Simulator, req: Request, node: str, paths: tuple[str, ...]) -> tuple[Match, Ctx]:
    """Route, gate and authenticate (raises the error responses)."""
    found = match(req.method, req.path)
    maintenance.refresh(sim)
    maintenance.gate(sim, req, found.segments)
    ctx = Ctx(sim, req, node, found.params)
    if found.route.auth:
        if sim.faults.take("unauthorized", node, paths):
            raise ApiError(401, "unauthorized_error", "User unauthorized: No authentication info provided")
        ctx.who = authenticate(sim, req)
        ctx.tenant = check_tenant(sim, req)
    return found, ctx


def _audit(sim: Simulator, ctx: Ctx | None, response: Response) -> None:
    if ctx is None or ctx.who is None or sim.vt < (6, 2, 0):
        return
    response.headers += [("X-Cloudify-Audit-Auth-Method", ctx.who.method),
                         ("X-Cloudify-Audit-Tenant", ctx.tenant or ""),
                         ("X-Cloudify-Audit-Username", ctx.who.username)]


def _run(handler: Callable[[Ctx], Response], ctx: Ctx) -> Response:
    try:
        return handler(ctx)
    except (ApiError, HtmlError) as exc:
        return exc.response()
    except Exception as exc:  # noqa: BLE001 - the manager turns any unhandled exception into a 500 body
        return internal_error(exc).response()


def handle(sim: Simulator, req: Request, node: str) -> Response:
    """Answer one request as `node`."""
    paths = (req.path, versionless(req.path))
    with sim.lock:
        applied = sim.engine.tick()
    _network_faults(sim, node, paths)
    ctx: Ctx | None = None
    handler = None
    with sim.lock:
        response = _injected(sim, node, paths)
        if response is None:
            try:
                found, ctx = _prepare(sim, req, node, paths)
                handler = found.handler
                if found.method not in found.route.unlocked:
                    response, handler = _run(handler, ctx), None
            except (ApiError, HtmlError) as exc:
                response = exc.response()
    if handler is not None and ctx is not None:
        response = _run(handler, ctx)
    assert response is not None
    _audit(sim, ctx, response)
    if req.method != "GET" or applied:
        sim.save()
    return response
