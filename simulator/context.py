"""What a handler gets: the simulator, the request, the node answering, the caller, the tenant."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from simulator.auth import Identity, permit, require_tenant
from simulator.http import ApiError, Request

if TYPE_CHECKING:
    from simulator.sim import Simulator


@dataclass
class Ctx:
    """One request being handled."""

    sim: Simulator
    req: Request
    node: str
    params: dict[str, str] = field(default_factory=dict)
    who: Identity | None = None
    tenant: str | None = None

    @property
    def user(self) -> Identity:
        """The authenticated caller (routes without auth never ask)."""
        assert self.who is not None
        return self.who

    def need_tenant(self) -> str:
        """The tenant of a tenant-scoped endpoint (403 `tenant not provided` without the header)."""
        return require_tenant(self.tenant)

    def permit(self, action: str) -> None:
        """403 unless the caller may perform `action`."""
        permit(self.user, action, self.tenant)

    def json(self) -> dict[str, Any]:
        """The JSON object body (415 / HTML 400 as the manager answers)."""
        return self.req.json_body()


def not_found(model: str, ident: str) -> ApiError:
    """The manager's 404 for a missing row."""
    return ApiError(404, "not_found_error", f"Requested `{model}` with ID `{ident}` was not found")
