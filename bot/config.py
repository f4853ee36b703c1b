"""Read and validate configuration in one place: environment (+ `.env`) and the optional TOML file."""

from __future__ import annotations

import math
import os
import re
import tomllib
from dataclasses import replace
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bot.core import Role, parse_duration
from bot.errors import ConfigError
from bot.spec.registry import ROLES
from bot.settings import AuditSettings, Grant, ManagerSettings, Settings

# The words an environment variable may use for a boolean (any case); an empty value means "not set".
TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off")
DIGITS = re.compile(r"[0-9]+", re.ASCII)  # str.isdigit() also accepts "²", which int() then refuses
MIN_AUDIT_KEY_BYTES = 32
GATE_TTL_RANGE = (30.0, 86400.0)  # half a minute to a day
READ_TIMEOUT_RANGE = (1.0, 86400.0)
AGE_RANGE = (3600.0, 366 * 86400.0)  # alarm ages: an hour to a year
MAX_KEEP = 10000  # retention counts beyond this keep everything anyway
RETENTION_KEYS = ("daily", "weekly", "monthly", "yearly")
_MANAGER_KEYS = {"drill_target", "url", "urls", "username", "password", "password_env", "token", "token_env", "tenant",
                 "ca_bundle", "trust_all", "read_timeout", "fallback_password", "fallback_password_env"}
_GRANT_KEYS = {"role", "user", "group", "channels", "managers"}
_TOP_KEYS = {"managers", "grants"}


def default_data_dir(env: Mapping[str, str]) -> str:
    """A per-user data folder (XDG on Linux)."""
    base = env.get("XDG_DATA_HOME") or os.path.join(env.get("HOME") or os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "cfy-bot")


def parse_retention(text: str) -> tuple[tuple[str, int], ...]:
    """`daily=7,weekly=4,monthly=12,yearly=3` → ordered pairs; ValueError (a readable reason) otherwise.

    Refused: an unknown key, a count that is not 0-10000, a key named twice, and rules that keep nothing.
    """
    out: list[tuple[str, int]] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, _, value = (x.strip() for x in part.partition("="))
        if key not in RETENTION_KEYS or not DIGITS.fullmatch(value) or int(value) > MAX_KEEP:
            raise ValueError(f"{part!r} is not like daily=7,weekly=4,monthly=12,yearly=3 (counts 0-{MAX_KEEP})")
        if key in dict(out):
            raise ValueError(f"{key} is named twice")
        out.append((key, int(value)))
    if not out:
        raise ValueError(f"{text!r} names no rule")
    if not any(count for _, count in out):
        raise ValueError("every count is 0, which would keep no backup at all")
    return tuple(out)


class _Reader:
    """Collects every problem instead of stopping at the first."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def text(self, name: str, default: str = "") -> str:
        return (self.env.get(name) or default).strip()

    def flag(self, name: str, default: bool) -> bool:
        raw = (self.env.get(name) or "").strip().lower()
        if not raw:
            return default
        if raw in TRUE:
            return True
        if raw in FALSE:
            return False
        self.problems.append(f"{name} must be one of {'/'.join(TRUE)} or {'/'.join(FALSE)}, got {self.env[name]!r}")
        return default

    def duration(self, name: str, default: float, bounds: tuple[float, float] | None = None) -> float:
        raw = self.env.get(name)
        if not raw or not raw.strip():
            return default
        try:
            value = parse_duration(raw)
        except ValueError:
            self.problems.append(f"{name} must be a duration such as 600, 90m or 26h, got {raw!r}")
            return default
        if bounds and not bounds[0] <= value <= bounds[1]:
            self.problems.append(f"{name} must be between {_span(bounds[0])} and {_span(bounds[1])}, got {raw!r}")
            return default
        return value

    def ids(self, name: str, pattern: str) -> tuple[str, ...]:
        values = tuple(v.strip() for v in self.text(name).split(",") if v.strip())
        for v in values:
            if not re.fullmatch(pattern, v):
                self.problems.append(f"{name}: {v!r} is not a valid id")
        return values


def _span(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


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
        read_timeout=r.duration("CLOUDIFY_READ_TIMEOUT", 300.0, READ_TIMEOUT_RANGE),
        fallback_password=r.env.get("CLOUDIFY_FALLBACK_PASSWORD", ""),
    )


class _Table:
    """One TOML table, read with a type check per key; problems are named `where.key`."""

    def __init__(self, r: _Reader, where: str, table: dict[str, Any], known: set[str]) -> None:
        self.r, self.where, self.table = r, where, table
        for key in sorted(set(table) - known):
            r.problems.append(f"{where}: unknown key {key!r} (known: {', '.join(sorted(known))})")

    def _wrong(self, key: str, wanted: str) -> None:
        self.r.problems.append(f"{self.where}.{key} must be {wanted}, got {_shown(self.table[key])}")

    def text(self, key: str, default: str = "") -> str:
        value = self.table.get(key, default)
        if not isinstance(value, str):
            self._wrong(key, "a string")
            return default
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.table.get(key, default)
        if not isinstance(value, bool):  # "false" (a string) is not false: refuse rather than guess
            self._wrong(key, "true or false (a TOML boolean, without quotes)")
            return default
        return value

    def seconds(self, key: str, default: float, bounds: tuple[float, float]) -> float:
        value = self.table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or not bounds[0] <= value <= bounds[1]:
            self._wrong(key, f"a number of seconds between {bounds[0]:g} and {bounds[1]:g}")
            return default
        return float(value)

    def strings(self, key: str) -> tuple[str, ...]:
        value = self.table.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            self._wrong(key, 'a list of strings, such as ["a", "b"]')
            return ()
        return tuple(value)

    def secret(self, key: str) -> str:
        """A secret, preferably by the name of the variable that holds it (`password_env`)."""
        env_name = self.text(f"{key}_env")
        if env_name:
            if not self.r.env.get(env_name):
                self.r.problems.append(f"{self.where}.{key}_env names {env_name}, which is not set")
            return self.r.env.get(env_name, "")
        return self.text(key)


def _shown(value: Any) -> str:
    """A wrong value for a message: its type and a short repr (TOML values here are never secrets)."""
    text = repr(value)
    return f"{type(value).__name__} {text[:40] + '…' if len(text) > 40 else text}"


def _managers_from_toml(r: _Reader, data: dict[str, Any]) -> list[ManagerSettings]:
    tables = data.get("managers") or {}
    if not isinstance(tables, dict):
        r.problems.append(f"managers must be tables such as [managers.production], got {_shown(tables)}")
        return []
    out = []
    for name, m in tables.items():
        if not isinstance(m, dict):
            r.problems.append(f"[managers.{name}] must be a table")
            continue
        t = _Table(r, f"[managers.{name}]", m, _MANAGER_KEYS)
        urls = t.strings("urls") if "urls" in m else ((t.text("url"),) if m.get("url") else ())
        if not urls or not all(urls):
            r.problems.append(f"[managers.{name}] needs urls = [\"https://…\"]")
            continue
        out.append(ManagerSettings(
            name=name, urls=tuple(u.strip().rstrip("/") for u in urls), username=t.text("username", "admin"),
            password=t.secret("password"), token=t.secret("token"),
            tenant=t.text("tenant", "default_tenant"), ca_bundle=t.text("ca_bundle"),
            trust_all=t.flag("trust_all", False),
            read_timeout=t.seconds("read_timeout", 300.0, READ_TIMEOUT_RANGE),
            fallback_password=t.secret("fallback_password"),
        ))
    return out


def _grants(r: _Reader, data: dict[str, Any]) -> list[Grant]:
    grants = []
    for role, var in (("admin", "BOT_ADMINS"), ("operator", "BOT_OPERATORS"), ("viewer", "BOT_VIEWERS")):
        grants += [Grant(p, Role(role)) for p in r.ids(var, r"[USW][A-Z0-9]+|shell:[\w.@-]+")]
    listed = data.get("grants") or []
    if not isinstance(listed, list):
        r.problems.append(f"grants must be [[grants]] tables, got {_shown(listed)}")
        return grants
    for i, g in enumerate(listed):
        if not isinstance(g, dict):
            r.problems.append(f"grants[{i}] must be a [[grants]] table")
            continue
        t = _Table(r, f"grants[{i}]", g, _GRANT_KEYS)
        role, who = t.text("role"), t.text("user") or t.text("group")
        channels, managers = t.strings("channels"), t.strings("managers")
        if role not in ROLES or not who:
            r.problems.append(f"grants[{i}] needs role (viewer/operator/admin) and user or group")
            continue
        grants.append(Grant(who, Role(role), channels, managers))
    return grants


def _toml(r: _Reader) -> dict[str, Any]:
    path = r.text("BOT_CONFIG")
    if not path:
        return {}
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        r.problems.append(f"BOT_CONFIG names {path}, which does not exist")
        return {}
    except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError) as exc:
        r.problems.append(f"BOT_CONFIG {path} could not be read: {exc}")
        return {}
    for key in sorted(set(data) - _TOP_KEYS):
        r.problems.append(f"BOT_CONFIG {path}: unknown key {key!r} (known: {', '.join(sorted(_TOP_KEYS))})")
    return data


def _workers(r: _Reader) -> int:
    raw = r.text("BOT_WORKERS", "16")
    if not DIGITS.fullmatch(raw) or not 1 <= int(raw) <= 256:
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
            _check_url(r, m.name, u)
    return found


def _check_url(r: _Reader, name: str, url: str) -> None:
    """An http(s) URL without credentials in it (they would be shown, logged and stored with the URL)."""
    try:
        parts = urlsplit(url)
        _ = parts.port  # ValueError for a port that is not a number
    except ValueError:
        parts = None
    if parts is not None and (parts.username is not None or parts.password is not None or "@" in parts.netloc):
        r.problems.append(f"manager {name}: a URL must not hold credentials ({parts.scheme}://…@{parts.hostname}); "
                          "set CLOUDIFY_USERNAME and CLOUDIFY_PASSWORD (or username and password_env in BOT_CONFIG)")
        return
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or not url.isprintable() \
            or re.search(r"\s", url):
        r.problems.append(f"manager {name}: {url!r} is not an http(s) URL")


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
            r.problems.append(f"BOT_RETENTION: {exc}")
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


def _audit_key(r: _Reader) -> str:
    key = r.env.get("BOT_AUDIT_KEY", "")
    if key and len(key.encode("utf-8", "surrogatepass")) < MIN_AUDIT_KEY_BYTES:
        r.problems.append(f"BOT_AUDIT_KEY must be at least {MIN_AUDIT_KEY_BYTES} bytes (it is "
                          f"{len(key.encode('utf-8', 'surrogatepass'))}); make one with "
                          "`python -c 'import secrets; print(secrets.token_hex(32))'`")
    return key


def _refuse_oauth(r: _Reader) -> None:
    if r.text("SLACK_CLIENT_ID") and r.text("SLACK_CLIENT_SECRET"):
        r.problems.append("SLACK_CLIENT_ID and SLACK_CLIENT_SECRET are set: they switch Bolt to OAuth "
                          "(multi-workspace), which this bot does not support; unset them")


def _drill_targets(r: _Reader, data: dict[str, Any], found: list[ManagerSettings]) -> list[ManagerSettings]:
    """`drill_target = true` on a `[managers.NAME]` table (a TOML boolean, nothing else) marks it disposable."""
    raw = data.get("managers")
    tables: dict[str, Any] = raw if isinstance(raw, dict) else {}
    out = []
    for m in found:
        entry = tables.get(m.name)
        table: dict[str, Any] = entry if isinstance(entry, dict) else {}
        value = table.get("drill_target", m.drill_target)
        if not isinstance(value, bool):
            r.problems.append(f"[managers.{m.name}] drill_target must be true or false (a TOML boolean), "
                              f"got {value!r}")
            value = False
        out.append(replace(m, drill_target=value))
    return out


def _drill_settings(r: _Reader) -> tuple[str, float]:
    """BOT_DRILL_SCHEDULE (cron, checked like the backup schedule) and BOT_MAX_DRILL_AGE (a duration)."""
    schedule = r.text("BOT_DRILL_SCHEDULE", "0 4 * * 0")
    from bot.schedule.cron import Cron, CronError

    try:
        Cron.parse(schedule)
    except CronError as exc:
        r.problems.append(f"BOT_DRILL_SCHEDULE: {exc}")
    return schedule, r.duration("BOT_MAX_DRILL_AGE", 8 * 86400.0, AGE_RANGE)


def load_audit_settings(env: Mapping[str, str] | None = None) -> AuditSettings:
    """Only what reading the audit log needs (BOT_DB_PATH or BOT_DATA_DIR, BOT_AUDIT_KEY): an auditor's machine
    with a copy of the database has no manager to configure."""
    r = _Reader(os.environ if env is None else env)
    data_dir = r.text("BOT_DATA_DIR") or default_data_dir(r.env)
    settings = AuditSettings(db_path=r.text("BOT_DB_PATH") or os.path.join(data_dir, "cfy-bot.db"),
                             audit_key=_audit_key(r))
    if r.problems:
        raise ConfigError(r.problems)
    return settings


def load_settings(env: Mapping[str, str] | None = None, *, managers: tuple[ManagerSettings, ...] = ()) -> Settings:
    """Build Settings from `env`; every problem is listed in one ConfigError."""
    r = _Reader(os.environ if env is None else env)
    data = _toml(r)
    found = _drill_targets(r, data, _managers(r, data, managers))
    drill_schedule, max_drill_age = _drill_settings(r)
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
        gate_ttl=r.duration("BOT_GATE_TTL", 600.0, GATE_TTL_RANGE),
        backup_schedule=schedule, timezone=tz, retention=retention,
        summary_channel=summary, alert_channel=r.text("BOT_ALERT_CHANNEL") or summary,
        max_backup_age=r.duration("BOT_MAX_BACKUP_AGE", 26 * 3600.0, AGE_RANGE),
        slack_workers=_workers(r), audit_key=_audit_key(r),
        drill_schedule=drill_schedule, max_drill_age=max_drill_age,
    )
    if r.text("BOT_ARCHIVE_URL") and not r.text("BOT_ARCHIVE_URL").startswith("s3://"):
        r.problems.append("BOT_ARCHIVE_URL must look like s3://bucket/prefix")
    for name, hint in (("BOT_ARCHIVE_URL", "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or an instance role)"),
                       ("SLACK_API_URL", "SLACK_BOT_TOKEN")):
        if "@" in urlsplit(r.text(name)).netloc:
            r.problems.append(f"{name} must not hold credentials (…@{urlsplit(r.text(name)).hostname}); "
                              f"use {hint}")
    if r.problems:
        raise ConfigError(r.problems)
    return settings


def prepare_folders(settings: Settings) -> None:
    """Create the bot's folders (data, database's, archive) or raise one ConfigError naming each that cannot be."""
    problems = []
    named = (("BOT_DATA_DIR", settings.data_dir), ("BOT_DB_PATH", os.path.dirname(os.path.abspath(settings.db_path))))
    for name, folder in named:
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            problems.append(f"{name}: cannot create the folder {folder}: {exc.strerror or exc}")
            continue
        if not os.access(folder, os.W_OK | os.X_OK):
            problems.append(f"{name}: the folder {folder} is not writable by this user")
    if problems:
        raise ConfigError(problems)

