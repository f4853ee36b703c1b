"""Configuration is read in one place and every problem is listed at once."""

from __future__ import annotations

import pytest

from bot.config import load_settings, parse_duration, parse_retention
from bot.errors import ConfigError


def test_minimal_env() -> None:
    s = load_settings({"CLOUDIFY_MANAGER_URL": "https://a.example, https://b.example/", "CLOUDIFY_PASSWORD": "pw",
                       "HOME": "/home/x"})
    assert s.managers[0].urls == ("https://a.example", "https://b.example")
    assert s.managers[0].tenant == "default_tenant"
    assert s.db_path == "/home/x/.local/share/cfy-bot/cfy-bot.db"
    assert s.gate_ttl == 600 and s.require_approval and s.max_backup_age == 26 * 3600
    assert "pw" not in repr(s)


def test_every_problem_listed_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({"CLOUDIFY_MANAGER_URL": "ftp://x", "BOT_GATE_TTL": "soon", "BOT_REQUIRE_APPROVAL": "maybe",
                       "BOT_SHELL_ROLE": "root", "BOT_TIMEZONE": "Mars/Base", "BOT_RETENTION": "hourly=3",
                       "SLACK_CLIENT_ID": "1", "SLACK_CLIENT_SECRET": "2", "BOT_BACKUP_SCHEDULE": "daily"})
    problems = "\n".join(info.value.problems)
    for needle in ("not an http(s) URL", "CLOUDIFY_PASSWORD", "BOT_GATE_TTL", "BOT_REQUIRE_APPROVAL",
                   "BOT_SHELL_ROLE", "BOT_TIMEZONE", "BOT_RETENTION", "OAuth", "BOT_BACKUP_SCHEDULE"):
        assert needle in problems
    assert len(info.value.problems) >= 9


def test_toml_managers_and_grants(tmp_path) -> None:
    cfg = tmp_path / "bot.toml"
    cfg.write_text("""
[managers.production]
urls = ["https://p1.example", "https://p2.example"]
password_env = "PROD_PW"
tenant = "ops"

[managers.staging]
url = "https://s.example"
password = "staging-pw"

[[grants]]
role = "admin"
user = "U111"
managers = ["staging"]
""")
    s = load_settings({"BOT_CONFIG": str(cfg), "PROD_PW": "secret-prod"})
    assert [m.name for m in s.managers] == ["production", "staging"]
    assert s.managers[0].password == "secret-prod" and s.managers[0].tenant == "ops"
    assert s.grants[0].managers == ("staging",)
    assert {"secret-prod", "staging-pw"} <= s.secrets()


def test_bad_toml_is_a_config_problem(tmp_path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[managers.x\n")
    with pytest.raises(ConfigError) as info:
        load_settings({"BOT_CONFIG": str(cfg)})
    assert "could not be read" in str(info.value)


def test_durations_and_retention() -> None:
    assert parse_duration("26h") == 93600 and parse_duration("90m") == 5400 and parse_duration("15") == 15
    assert parse_retention("daily=7, weekly=4") == (("daily", 7), ("weekly", 4))
    with pytest.raises(ValueError):
        parse_retention("daily=x")
