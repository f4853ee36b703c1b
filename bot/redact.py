"""Hide secrets before anything is logged, shown or stored (pure functions, no I/O)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

REDACTED = "[redacted]"

# Key names whose values are secrets: `postgresql_password`, `rabbitmq_password`, `password_hash`,
# `secret_key`, `Authentication-Token`, `api_key`, `private_key` ... (`ca_cert_content` is public).
_SECRET_KEY = re.compile(r"pass(word|wd)|secret|token|api[_-]?key|private[_-]?key", re.IGNORECASE)

# Secret-shaped text that may appear without a key: Basic credentials and Cloudify 6.4+ API tokens.
_SECRET_TEXT = (
    re.compile(r"(?i)\b(authorization:\s*basic)\s+[A-Za-z0-9+/=]+"),
    re.compile(r"\bctok-[A-Za-z0-9]+-[A-Za-z0-9*]+"),
)


# Credentials inside a URL: `scheme://user:password@host` and secret query values (`?token=…`, S3/GCS/Azure
# presigned `X-Amz-Signature=…`, `sig=…`, `X-Amz-Credential=…`, `api_key=…`).
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@?#]+@")
_QUERY_SECRET = re.compile(
    r"(?i)([?&;][^=&#\s?;]*(?:pass|pwd|secret|token|sig|key|credential|auth|session)[^=&#\s?;]*=)[^&#\s;]+")


def redact_url_secrets(text: str) -> str:
    """`text` with the user:password of every URL and every secret-named query value replaced by "[redacted]"."""
    if "@" in text:
        text = _URL_USERINFO.sub(lambda m: f"{m.group(1)}{REDACTED}@", text)
    if "=" in text:
        text = _QUERY_SECRET.sub(lambda m: f"{m.group(1)}{REDACTED}", text)
    return text


def redact_url_values(values: dict[str, Any]) -> dict[str, Any]:
    """A copy of `values` (a command's arguments) with URL secrets redacted in every text value."""
    return {k: redact_url_secrets(v) if isinstance(v, str) else v for k, v in values.items()}


def is_secret_key(key: object) -> bool:
    """True when a mapping key names a secret (password, secret, token, api key, private key)."""
    return isinstance(key, str) and bool(_SECRET_KEY.search(key))


def redact(obj: Any) -> Any:
    """A deep copy of `obj` with secret values and every `parameters.config` replaced by "[redacted]"."""
    if isinstance(obj, dict):
        out: dict[Any, Any] = {}
        for key, value in obj.items():
            if is_secret_key(key) and _worth_hiding(value):
                out[key] = REDACTED
            elif key == "parameters" and isinstance(value, dict):
                out[key] = _redact_parameters(value)
            else:
                out[key] = redact(value)
        return out
    if isinstance(obj, (list, tuple)):
        return type(obj)(redact(item) for item in obj)
    return obj


def _redact_parameters(parameters: dict[Any, Any]) -> dict[Any, Any]:
    """An execution's parameters: `config` holds the manager's database credentials, hide all of it."""
    out: dict[Any, Any] = redact(parameters)
    if "config" in out and out["config"] is not None:
        out["config"] = REDACTED
    return out


def _worth_hiding(value: Any) -> bool:
    # null, "" and booleans reveal nothing, and keeping them keeps flags such as `no_token: true` readable.
    return value is not None and value != "" and not isinstance(value, bool)


def redact_text(text: str, secrets: Iterable[str | None] = ()) -> str:
    """`text` with every known secret string, `Authorization: Basic` value and API token replaced by "[redacted]"."""
    # Longest first, so a secret that contains a shorter one is hidden whole.
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    text = _SECRET_TEXT[0].sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    return redact_url_secrets(_SECRET_TEXT[1].sub(REDACTED, text))
