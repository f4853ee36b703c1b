"""Answers -> the `bot.errors` tree: an unexpected status or error_code, or a body that is not what was asked.

Every message names the manager (and the node where it matters); server messages and excerpts are redacted
and scrubbed of the configured credentials before they are put in a message.
"""

from __future__ import annotations

import json
import re
from typing import Any, NoReturn

import httpx

from bot import errors
from bot.cloudify.wire import _NOT_JSON, _Call, _loads, _looks_html
from bot.redact import redact, redact_text
from bot.settings import ManagerSettings

_ERROR_PEEK = 1 << 16  # at most this much of an unexpected body is read, even from a stream


def _json(settings: ManagerSettings, call: _Call, response: httpx.Response, url: str) -> Any:
    """The redacted JSON body of a successful answer, or BadResponse."""
    data = _loads(response.content)
    if data is _NOT_JSON:
        if _looks_html(response.content, response.headers.get("content-type", "")):
            raise errors.BadResponse(f"manager {settings.name} at {url} answered with HTML, not JSON: is this a "
                                     f"Cloudify manager? ({call.method} {call.full_path})",
                                     manager=settings.name, status=response.status_code)
        raise _bad(settings, call, url, f"something that is not JSON ({_excerpt(settings, response.content)}): "
                                        "is this a Cloudify manager?", response.status_code)
    return redact(data)


def _bad(settings: ManagerSettings, call: _Call, url: str, what: str, status: int | None = None
         ) -> errors.BadResponse:
    return errors.BadResponse(f"manager {settings.name} at {url} answered {call.method} {call.full_path} "
                              f"({call.name}) with {what}", manager=settings.name, status=status)


def _scrub(settings: ManagerSettings, text: str) -> str:
    return redact_text(text, (settings.password, settings.token, settings.fallback_password))


def _excerpt(settings: ManagerSettings, raw: bytes, limit: int = 200) -> str:
    """A short, redacted, one-line excerpt of a body, for error messages."""
    data = _loads(raw)
    if data is not _NOT_JSON:
        text = json.dumps(redact(data))
    else:
        text = raw.decode("utf-8", "replace")
        if _looks_html(raw, ""):
            text = re.sub(r"<[^>]*>", " ", text)
    text = " ".join(_scrub(settings, text).split())
    if not text:
        return "(empty body)"
    return text if len(text) <= limit else text[:limit] + "…"


# --- error answers -----------------------------------------------------------------------------


def _raise_for(settings: ManagerSettings, call: _Call, response: httpx.Response, url: str) -> NoReturn:
    """Raise the error for an answer whose status is not the one `call` expects."""
    raw = _read_some(response)
    code, message = _error_fields(raw)
    message = _scrub(settings, message)
    first = message.strip().splitlines()[0] if message.strip() else _excerpt(settings, raw)
    kw: dict[str, Any] = dict(manager=settings.name, status=response.status_code, error_code=code,
                              server_message=message)
    raise _error(settings, call, url, raw, first, kw)


def _error(settings: ManagerSettings, call: _Call, url: str, raw: bytes, first: str,
           kw: dict[str, Any]) -> errors.ManagerError:
    """The error for one unexpected status, by status and then by the server's error_code."""
    name, status, code = settings.name, kw["status"], kw["error_code"]
    where = f"manager {name} at {url}"
    tenant = call.tenant or settings.tenant
    if status == 304:
        kw["error_code"] = code or "not_modified"
        return errors.NotModified(f"manager {name}: nothing to modify ({call.name})", **kw)
    if status == 401:
        return errors.AuthenticationFailed(f"{where} rejected {_who(settings)}: {first}", **kw)
    if status == 403:
        return _forbidden(settings, call, first, tenant, kw)
    if status == 404:
        return _not_found(settings, call, url, first, tenant, kw)
    if status == 409:
        if code == "conflict_error" and call.subject:
            return errors.Conflict(f"{call.subject} already exists on manager {name} (tenant {tenant})", **kw)
        return errors.Conflict(f"manager {name} refused to {call.name}: {first}", **kw)
    if status == 400:
        return _bad_request(name, call, code, first, kw)
    if status >= 500:
        return _server_error(name, call, where, first, kw)
    expected = " or ".join(str(s) for s in call.expect)
    return errors.ServerError(f"{where} answered HTTP {status} to {call.method} {call.full_path} ({call.name}), "
                              f"where cfy expects {expected}: {_excerpt(settings, raw)}", **kw)


def _who(settings: ManagerSettings) -> str:
    if settings.token:
        return "the API token"
    if settings.username:
        return f"the credentials for user {settings.username}"
    return ("a request without credentials (set CLOUDIFY_USERNAME and CLOUDIFY_PASSWORD, "
            "or CLOUDIFY_TOKEN)")


def _forbidden(settings: ManagerSettings, call: _Call, first: str, tenant: str,
               kw: dict[str, Any]) -> errors.Forbidden:
    name, low = settings.name, first.lower()
    if "invalid tenant name" in low:
        return errors.TenantNotFound(f"tenant {tenant} does not exist on manager {name}", **kw)
    if "tenant not provided" in low:
        return errors.TenantNotFound(f"manager {name} needs a tenant and none was sent "
                                     "(set CLOUDIFY_TENANT)", **kw)
    user = settings.username or "the token's user"
    return errors.Forbidden(f"manager {name} does not let {user} {call.name} in tenant {tenant}: {first}", **kw)


def _not_found(settings: ManagerSettings, call: _Call, url: str, first: str, tenant: str,
               kw: dict[str, Any]) -> errors.ManagerNotFound:
    name, code = settings.name, kw["error_code"]
    if not code:  # an HTML (or otherwise foreign) 404: not the REST API's own not_found_error
        return errors.ManagerNotFound(f"manager {name} at {url} does not serve the Cloudify REST API at this path "
                                      f"(is the URL right?): {call.method} {call.full_path} answered 404 {first}",
                                      **kw)
    if code == "not_found_error" and call.subject:
        return errors.ManagerNotFound(f"{call.subject} does not exist on manager {name} (tenant {tenant})", **kw)
    return errors.ManagerNotFound(f"manager {name} could not {call.name}: {first}", **kw)


def _bad_request(name: str, call: _Call, code: str, first: str, kw: dict[str, Any]) -> errors.BadRequest:
    if code == "existing_running_execution_error":
        ids = _execution_ids(first)
        exc = errors.ExecutionsRunning(
            f"manager {name} refused to {call.name} because other executions are running: "
            f"{', '.join(ids) if ids else first}", **kw)
        exc.execution_ids = ids  # type: ignore[attr-defined]
        return exc
    if code == "snapshot_action_error":
        return errors.SnapshotActionError(f"manager {name} refused to {call.name}: {first}", **kw)
    return errors.BadRequest(f"manager {name} refused to {call.name}: {first}", **kw)


def _server_error(name: str, call: _Call, where: str, first: str, kw: dict[str, Any]) -> errors.ManagerError:
    status, code = kw["status"], kw["error_code"]
    if status == 503 and code == "maintenance_mode_active":
        return errors.MaintenanceModeActive(f"manager {name} is in maintenance mode, so it refused to "
                                            f"{call.name} (deactivate maintenance mode first)", **kw)
    if status == 503 and code == "entering_maintenance_mode":
        return errors.EnteringMaintenanceMode(f"manager {name} is entering maintenance mode, so it refused to "
                                              f"{call.name} (running executions must end first)", **kw)
    return errors.ServerError(f"{where} failed to {call.name}: HTTP {status} {code or ''}: {first}"
                              .replace("  ", " "), **kw)


# --- reading error bodies ----------------------------------------------------------------------


def _error_fields(raw: bytes) -> tuple[str, str]:
    """`error_code` and `message` (or `detail`) of a JSON error body; empty strings otherwise."""
    data = _loads(raw)
    if not isinstance(data, dict):
        return "", ""
    return str(data.get("error_code") or ""), str(data.get("message") or data.get("detail") or "")


def _execution_ids(message: str) -> list[str]:
    """The ids listed by existing_running_execution_error, in the 6.3+ and the older wording."""
    for marker in ("e.g.:", "Currently running executions:", "(id:"):
        if marker in message:
            return re.findall(r"[A-Za-z0-9][\w.:~-]*", message.split(marker, 1)[1])
    return []


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
