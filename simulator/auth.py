"""Authentication (Basic, then `Authentication-Token`), tenants and permissions, with the manager's texts."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from simulator.http import ApiError, Request
from simulator.wire import iso, parse_iso

if TYPE_CHECKING:
    from simulator.sim import Simulator

_ITERATIONS = 1000
_RELATIVE = re.compile(r"^\+(\d+)\s*([smhdw])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# Roles other than sys_admin may only read (the manager's default authorization is finer grained).
READ_ONLY = ("_get", "_list")


@dataclass(frozen=True)
class Identity:
    """Who is calling, and how they proved it."""

    username: str
    role: str
    method: str  # http_basic | token

    @property
    def is_admin(self) -> bool:
        """Whether the user holds the sys_admin role."""
        return self.role == "sys_admin"


def hash_password(password: str, salt: str | None = None) -> str:
    """A salted PBKDF2 hash in passlib's style."""
    salt = salt or secrets.token_hex(8)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), _ITERATIONS).hex()
    return f"$pbkdf2-sha256${_ITERATIONS}${salt}${digest}"


def check_password(password: str, stored: str | None) -> bool:
    """Whether `password` matches the stored hash."""
    if not stored or stored.count("$") != 4:
        return False
    _, _, _, salt, _ = stored.split("$")
    return hmac.compare_digest(hash_password(password, salt), stored)


def _unauthorized(text: str) -> ApiError:
    return ApiError(401, "unauthorized_error", f"User unauthorized: {text}")


def _basic(req: Request) -> tuple[str, str] | None:
    header = req.header("authorization") or ""
    if not header.lower().startswith("basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:].strip()).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return user, password


def authenticate(sim: Simulator, req: Request) -> Identity:
    """The caller's identity, or the 401 the manager answers (Basic is tried before a token)."""
    who = identify(sim, req)
    if who is None:
        raise _unauthorized("No authentication info provided")
    return who


def identify(sim: Simulator, req: Request) -> Identity | None:
    """The caller's identity when credentials are sent (401 when they are wrong); None when none are sent.

    A Basic username that is unknown or does not start with an ASCII letter counts as none sent (reference §1.1).
    Unauthenticated endpoints still check what is sent: `snapshot-status` answers 401 to a wrong password or a bad
    token, and 200 to no credentials at all (reference §3); so does the `X-BYPASS-MAINTENANCE` gate (§1.1).
    """
    users = sim.state.users
    basic = _basic(req)
    if basic is not None:
        name, password = basic
        if name[:1].isascii() and name[:1].isalpha() and name in users:
            if not check_password(password, users[name].get("password_hash")):
                raise _unauthorized(f"Authentication failed for <User username=`{name}`>. "
                                    "Wrong credentials or locked account")
            return Identity(name, users[name].get("role", "default"), "http_basic")
    token = req.header("authentication-token")
    if token:
        return _token_identity(sim, token)
    return None


def _token_identity(sim: Simulator, value: str) -> Identity:
    parts = value.split("-")
    if len(parts) != 3:
        raise _unauthorized("Invalid token structure")
    row = sim.state.tokens.get(parts[1])
    if row is None or not hmac.compare_digest(row.get("secret", ""), parts[2]):
        raise _unauthorized("Unauthorized")
    if row.get("expiration_date") and parse_iso(row["expiration_date"]) <= sim.now():
        raise _unauthorized("Token is expired")
    user = sim.state.users.get(row["username"])
    if user is None:
        raise _unauthorized("Unauthorized")
    row["last_used"] = iso(sim.now())
    return Identity(row["username"], user.get("role", "default"), "token")


def check_tenant(sim: Simulator, req: Request) -> str | None:
    """The `Tenant` header if it names a tenant (403 otherwise); None when absent."""
    tenant = req.header("tenant")
    if tenant and tenant not in sim.state.tenants:
        raise ApiError(403, "forbidden_error",
                       f"Authorization failed: Tried to authenticate with invalid tenant name: {tenant}")
    return tenant or None


def require_tenant(tenant: str | None) -> str:
    """A tenant-scoped endpoint needs the `Tenant` header."""
    if not tenant:
        raise ApiError(403, "forbidden_error", "Authorization failed: tenant not provided")
    return tenant


def permit(who: Identity, action: str, tenant: str | None) -> None:
    """403 unless `who` may perform `action`."""
    if who.is_admin or action.endswith(READ_ONLY):
        return
    text = f"User `{who.username}` is not permitted to perform the action {action}"
    if tenant:
        text += f" in the tenant `{tenant}`"
    raise ApiError(403, "forbidden_error", text)


def mint_token(sim: Simulator, who: Identity, body: dict[str, Any]) -> dict[str, Any]:
    """`POST /tokens`: a new `ctok-<id>-<secret>` token (the secret is shown only this once)."""
    token_id = secrets.token_hex(5)
    secret = secrets.token_urlsafe(24).replace("-", "x")
    expires = _expiration(sim, body.get("expiration_date"))
    row = {"id": token_id, "username": who.username, "secret": secret, "role": who.role,
           "expiration_date": expires, "last_used": None, "description": body.get("description")}
    sim.state.tokens[token_id] = row
    return render_token(row, secret)


def render_token(row: dict[str, Any], secret: str | None = None) -> dict[str, Any]:
    """A token as listed (secret masked) or as just minted."""
    value = f"ctok-{row['id']}-{secret if secret else '********'}"
    return {"id": row["id"], "username": row["username"], "value": value, "role": row["role"],
            "expiration_date": row["expiration_date"], "last_used": row["last_used"],
            "description": row["description"]}


def _expiration(sim: Simulator, raw: Any) -> str | None:
    if raw in (None, ""):
        return None
    match = _RELATIVE.match(str(raw).strip())
    if match:
        return iso(sim.now() + int(match.group(1)) * _UNIT[match.group(2)])
    try:
        return iso(parse_iso(str(raw)))
    except ValueError:
        raise ApiError(400, "bad_parameters_error", f"Invalid expiration date: {raw}") from None
