"""Read and validate configuration in one place: environment (+ `.env`) and the optional TOML file."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bot.core import Role, parse_duration
from bot.errors import ConfigError
from bot.spec.registry import ROLES
from bot.settings import Grant, ManagerSettings, Settings

TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off", "")


def default_data_dir(env: Mapping[str, str]) -> str:
    """A per-user data folder (XDG on Linux)."""
    base = env.get("XDG_DATA_HOME") or os.path.join(env.get("HOME") or os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "cfy-bot")


def parse_retention(text: str) -> tuple[tuple[str, int], ...]:
    """`daily=7,weekly=4,monthly=12,yearly=3` → ordered pairs; ValueError on anything else."""
    out = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, _, value = part.partition("=")
        if key.strip() not in ("daily", "weekly", "monthly", "yearly") or not value.strip().isdigit():
            raise ValueError(part)
        out.append((key.strip(), int(value)))
    if not out:
        raise ValueError(text)
    return tuple(out)


class _Reader:
    """Collects every problem instead of stopping at the first."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def text(self, name: str, default: str = "") -> str:
        return (self.env.get(name) or default).strip()

    def flag(self, name: str, default: bool) -> bool:
        raw = self.env.get(name)
        if raw is None:
            return default
        if raw.strip().lower() in TRUE:
            return True
        if raw.strip().lower() in FALSE:
            return False
        self.problems.append(f"{name} must be true or false, got {raw!r}")
        return default

    def duration(self, name: str, default: float) -> float:
        raw = self.env.get(name)
        if not raw:
            return default
        try:
            return parse_duration(raw)
        except ValueError:
            self.problems.append(f"{name} must be a duration such as 600, 90m or 26h, got {raw!r}")
            return default

    def ids(self, name: str, pattern: str) -> tuple[str, ...]:
        values = tuple(v.strip() for v in self.text(name).split(",") if v.strip())
        for v in values:
            if not re.fullmatch(pattern, v):
                self.problems.append(f"{name}: {v!r} is not a valid id")
        return values


def _manager_from_env(r: _Reader) -> ManagerSettings | None:
    urls = tuple(u.strip().rstrip("/") for u in r.text("CLOUDIFY_MANAGER_URL").split(",") if u.strip())
    if not urls:
        return None
    return ManagerSettings(
        name=r.text("CLOUDIFY_MANAGER_NAME", "default"),
        urls=urls,
        username=r.text("CLOUDIFY_USERNAME", "admin"),
        password=r.env.get("CLOUDIFY_PASSWORD", ""),
        token=r.env.get("CLOUDIFY_TOKEN", ""),
        tenant=r.text("CLOUDIFY_TENANT", "default_tenant"),
        ca_bundle=r.text("CLOUDIFY_CA_BUNDLE"),
        trust_all=r.flag("CLOUDIFY_SSL_TRUST_ALL", False),
        read_timeout=r.duration("CLOUDIFY_READ_TIMEOUT", 300.0),
        fallback_password=r.env.get("CLOUDIFY_FALLBACK_PASSWORD", ""),
    )


def _secret(r: _Reader, table: dict[str, Any], key: str) -> str:
    """A secret from the TOML table, preferably by the name of the variable that holds it (`password_env`)."""
    env_name = table.get(f"{key}_env")
    return r.env.get(env_name, "") if env_name else str(table.get(key, ""))


def _managers_from_toml(r: _Reader, data: dict[str, Any]) -> list[ManagerSettings]:
    out = []
    for name, m in (data.get("managers") or {}).items():
        if not isinstance(m, dict):
            r.problems.append(f"[managers.{name}] must be a table")
            continue
        urls = m.get("urls") or ([m["url"]] if m.get("url") else [])
        if not urls or not all(isinstance(u, str) for u in urls):
            r.problems.append(f"[managers.{name}] needs urls = [\"https://…\"]")
            continue

        out.append(ManagerSettings(
            name=name, urls=tuple(u.rstrip("/") for u in urls), username=str(m.get("username", "admin")),
            password=_secret(r, m, "password"), token=_secret(r, m, "token"),
            tenant=str(m.get("tenant", "default_tenant")),
            ca_bundle=str(m.get("ca_bundle", "")), trust_all=bool(m.get("trust_all", False)),
            read_timeout=float(m.get("read_timeout", 300)), fallback_password=_secret(r, m, "fallback_password"),
        ))
    return out


def _grants(r: _Reader, data: dict[str, Any]) -> list[Grant]:
    grants = []
    for role, var in (("admin", "BOT_ADMINS"), ("operator", "BOT_OPERATORS"), ("viewer", "BOT_VIEWERS")):
        grants += [Grant(p, Role(role)) for p in r.ids(var, r"[USW][A-Z0-9]+|shell:[\w.@-]+")]
    for i, g in enumerate(data.get("grants") or []):
        given = g.get("role") if isinstance(g, dict) else None
        who = g.get("user") or g.get("group") if isinstance(g, dict) else None
        if given not in ROLES or not who:
            r.problems.append(f"grants[{i}] needs role (viewer/operator/admin) and user or group")
            continue
        grants.append(Grant(str(who), Role(given), tuple(g.get("channels", ())), tuple(g.get("managers", ()))))
    return grants


def _toml(r: _Reader) -> dict[str, Any]:
    path = r.text("BOT_CONFIG")
    if not path:
        return {}
    try:
        return tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        r.problems.append(f"BOT_CONFIG names {path}, which does not exist")
    except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError) as exc:
        r.problems.append(f"BOT_CONFIG {path} could not be read: {exc}")
    return {}


def _workers(r: _Reader) -> int:
    raw = r.text("BOT_WORKERS", "16")
    if not raw.isdigit() or not 1 <= int(raw) <= 256:
        r.problems.append(f"BOT_WORKERS must be a number of threads between 1 and 256, got {raw!r}")
        return 16
    return int(raw)


def _managers(r: _Reader, data: dict[str, Any], given: tuple[ManagerSettings, ...]) -> list[ManagerSettings]:
    """The managers: those given, else the TOML file's, else the one the environment describes; checked."""
    found = list(given) or _managers_from_toml(r, data)
    if not found and (m := _manager_from_env(r)):
        found = [m]
    if not found:
        r.problems.append("no manager configured: set CLOUDIFY_MANAGER_URL or [managers.NAME] in BOT_CONFIG")
    names = [m.name for m in found]
    if len(set(names)) != len(names):
        r.problems.append("manager names must be unique")
    for m in found:
        if not m.token and not m.password:
            r.problems.append(f"manager {m.name}: set CLOUDIFY_PASSWORD (or CLOUDIFY_TOKEN)")
        for u in m.urls:
            if not re.match(r"^https?://[^/\s]+", u):
                r.problems.append(f"manager {m.name}: {u!r} is not an http(s) URL")
    return found


def _shell_role(r: _Reader) -> Role:
    shell_role = r.text("BOT_SHELL_ROLE", "viewer")
    if shell_role not in ROLES:
        r.problems.append(f"BOT_SHELL_ROLE must be one of {', '.join(ROLES)}, got {shell_role!r}")
        return Role.VIEWER
    return Role(shell_role)


def _retention(r: _Reader) -> tuple[tuple[str, int], ...]:
    retention: tuple[tuple[str, int], ...] = (("daily", 7), ("weekly", 4), ("monthly", 12), ("yearly", 3))
    if r.text("BOT_RETENTION"):
        try:
            retention = parse_retention(r.text("BOT_RETENTION"))
        except ValueError as exc:
            r.problems.append(f"BOT_RETENTION: {exc} is not like daily=7,weekly=4,monthly=12,yearly=3")
    return retention


def _backup_schedule(r: _Reader) -> str:
    schedule = r.text("BOT_BACKUP_SCHEDULE", "0 2 * * *")
    try:
        from bot.schedule.cron import Cron, CronError

        Cron.parse(schedule)
    except CronError as exc:
        r.problems.append(f"BOT_BACKUP_SCHEDULE: {exc}")
    return schedule


def _timezone(r: _Reader) -> str:
    tz = r.text("BOT_TIMEZONE", "UTC")
    try:
        from zoneinfo import ZoneInfo

        ZoneInfo(tz)
    except (KeyError, ValueError, OSError):
        r.problems.append(f"BOT_TIMEZONE: unknown time zone {tz!r}")
    return tz


def _refuse_oauth(r: _Reader) -> None:
    if r.text("SLACK_CLIENT_ID") and r.text("SLACK_CLIENT_SECRET"):
        r.problems.append("SLACK_CLIENT_ID and SLACK_CLIENT_SECRET are set: they switch Bolt to OAuth "
                          "(multi-workspace), which this bot does not support; unset them")


def load_settings(env: Mapping[str, str] | None = None, *, managers: tuple[ManagerSettings, ...] = ()) -> Settings:
    """Build Settings from `env`; every problem is listed in one ConfigError."""
    r = _Reader(os.environ if env is None else env)
    data = _toml(r)
    found = _managers(r, data, managers)
    data_dir = r.text("BOT_DATA_DIR") or default_data_dir(r.env)
    shell_role, retention, schedule, tz = _shell_role(r), _retention(r), _backup_schedule(r), _timezone(r)
    _refuse_oauth(r)
    grants = _grants(r, data)
    summary = r.text("BOT_SUMMARY_CHANNEL")
    settings = Settings(
        managers=tuple(found), data_dir=data_dir,
        db_path=r.text("BOT_DB_PATH") or os.path.join(data_dir, "cfy-bot.db"),
        archive_dir=r.text("BOT_ARCHIVE_DIR") or os.path.join(data_dir, "archive"),
        archive_url=r.text("BOT_ARCHIVE_URL"),
        slack_bot_token=r.text("SLACK_BOT_TOKEN"), slack_signing_secret=r.text("SLACK_SIGNING_SECRET"),
        slack_app_token=r.text("SLACK_APP_TOKEN"), slack_api_url=r.text("SLACK_API_URL"),
        grants=tuple(grants), viewers_restricted=bool(r.text("BOT_VIEWERS")),
        channels=r.ids("BOT_CHANNELS", r"[CGD][A-Z0-9]+|[\w.-]+"),
        access_contact=r.text("BOT_ACCESS_CONTACT", "your Cloudify admins"),
        shell_role=shell_role,
        require_approval=r.flag("BOT_REQUIRE_APPROVAL", True),
        gate_ttl=r.duration("BOT_GATE_TTL", 600.0),
        backup_schedule=schedule, timezone=tz, retention=retention,
        summary_channel=summary, alert_channel=r.text("BOT_ALERT_CHANNEL") or summary,
        max_backup_age=r.duration("BOT_MAX_BACKUP_AGE", 26 * 3600.0),
        slack_workers=_workers(r),
    )
    if r.text("BOT_ARCHIVE_URL") and not r.text("BOT_ARCHIVE_URL").startswith("s3://"):
        r.problems.append("BOT_ARCHIVE_URL must look like s3://bucket/prefix")
    if r.problems:
        raise ConfigError(r.problems)
    return settings
