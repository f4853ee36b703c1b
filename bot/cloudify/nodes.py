"""Node failover bookkeeping: which node of a manager answers now, and why the others could not be used."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass

import httpx

from bot import errors
from bot.cloudify.wire import _Call, _OneShot


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


def _unreachable(name: str, node_count: int, call: _Call, failures: list[_Failure]) -> errors.ManagerUnreachable:
    """The error when no node of manager `name` (of `node_count` nodes) could be used for `call`."""
    detail = "; ".join(f"{f.url} {f.noun}" for f in failures)
    if any(f.tls for f in failures):
        detail += (" (point CLOUDIFY_CA_BUNDLE at the manager's CA certificate, "
                   "or set CLOUDIFY_SSL_TRUST_ALL=true)")
    if isinstance(call.body, _OneShot) and call.body.started and len(failures) < node_count:
        detail += f"; {call.name} was not sent to another node because its body cannot be sent twice"
    if all(f.timeout for f in failures):
        return errors.ManagerTimeout(f"manager {name} did not answer in time: {detail}", manager=name)
    status = 502 if all(f.noun.startswith("502") for f in failures) else None
    return errors.ManagerUnreachable(f"manager {name} is unreachable: {detail}", manager=name, status=status)
