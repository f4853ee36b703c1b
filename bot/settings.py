"""Typed settings objects (no I/O): what `bot/config.py` produces from the environment and TOML."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ManagerSettings:
    """How to reach one Cloudify manager (one or more node URLs of the same cluster)."""

    name: str
    urls: tuple[str, ...]
    username: str = ""
    password: str = field(default="", repr=False)
    token: str = field(default="", repr=False)
    tenant: str = "default_tenant"
    ca_bundle: str = ""
    trust_all: bool = False
    read_timeout: float = 300.0
    connect_timeout: float = 5.0
    fallback_password: str = field(default="", repr=False)
