"""Typed settings objects (no I/O): what `bot/config.py` produces from the environment and TOML."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.core import Grant, Role

__all__ = ["AuditSettings", "Grant", "ManagerSettings", "Role", "Settings"]


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
    drill_target: bool = False  # disposable: restore drills may overwrite it (`drill_target = true` in BOT_CONFIG)


@dataclass(frozen=True)
class AuditSettings:
    """What `cfy-bot audit verify | export` needs: the database and the audit key (no manager, no Slack)."""

    db_path: str
    audit_key: str = field(default="", repr=False)


@dataclass(frozen=True)
class Settings:
    """Everything the bot is configured with, validated; secrets are not shown by repr."""

    managers: tuple[ManagerSettings, ...]
    data_dir: str
    db_path: str
    archive_dir: str
    archive_url: str = ""
    slack_bot_token: str = field(default="", repr=False)
    slack_signing_secret: str = field(default="", repr=False)
    slack_app_token: str = field(default="", repr=False)
    slack_api_url: str = ""
    grants: tuple[Grant, ...] = ()
    viewers_restricted: bool = False
    channels: tuple[str, ...] = ()
    access_contact: str = "your Cloudify admins"
    shell_role: Role = Role.VIEWER
    require_approval: bool = True
    gate_ttl: float = 600.0
    backup_schedule: str = "0 2 * * *"
    timezone: str = "UTC"
    retention: tuple[tuple[str, int], ...] = (("daily", 7), ("weekly", 4), ("monthly", 12), ("yearly", 3))
    summary_channel: str = ""
    alert_channel: str = ""
    max_backup_age: float = 26 * 3600.0
    slack_workers: int = 16  # threads that run operations and clicks from Slack (quick commands have their own)
    demo: bool = False
    drill_schedule: str = "0 4 * * 0"  # BOT_DRILL_SCHEDULE, cron in `timezone`
    max_drill_age: float = 8 * 86400.0  # BOT_MAX_DRILL_AGE: alarm when the last passing drill is older
    audit_key: str = field(default="", repr=False)  # BOT_AUDIT_KEY: rows' hashes are HMAC-SHA256 under it

    def manager(self, name: str | None) -> ManagerSettings:
        """The named manager, or the first (default) one when `name` is empty."""
        if not name:
            return self.managers[0]
        for m in self.managers:
            if m.name == name:
                return m
        raise KeyError(name)

    def drill_targets(self) -> tuple[str, ...]:
        """The names of the managers declared disposable for restore drills."""
        return tuple(m.name for m in self.managers if m.drill_target)

    def secrets(self) -> set[str]:
        """Every configured secret value, so outputs can be checked or scrubbed for them."""
        values = {self.slack_bot_token, self.slack_signing_secret, self.slack_app_token, self.audit_key}
        for m in self.managers:
            values |= {m.password, m.token, m.fallback_password}
        return {v for v in values if v and len(v) >= 4}
