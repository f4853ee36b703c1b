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


# --- Issue 16: configuration that cannot turn security off by accident ---------------------------------------

BASE = {"CLOUDIFY_MANAGER_URL": "https://m.example", "CLOUDIFY_PASSWORD": "pw-secret", "HOME": "/home/x"}


def _problems(env: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings({**BASE, **env})
    return "\n".join(info.value.problems)


def _toml_problems(tmp_path, text: str, env: dict[str, str] | None = None) -> str:
    cfg = tmp_path / "bot.toml"
    cfg.write_text(text)
    return _problems({"BOT_CONFIG": str(cfg), "PW": "pw", **(env or {})})


def test_a_string_false_never_turns_tls_verification_off(tmp_path) -> None:
    text = _toml_problems(tmp_path, '[managers.p]\nurl = "https://p.example"\npassword_env = "PW"\n'
                                    'trust_all = "false"\n')
    assert "[managers.p].trust_all must be true or false (a TOML boolean" in text


@pytest.mark.parametrize("value", ['"abc"', "-5", "nan", "inf", "true", "1e12"])
def test_read_timeout_is_a_positive_finite_number(tmp_path, value: str) -> None:
    text = _toml_problems(tmp_path, f'[managers.p]\nurl = "https://p.example"\npassword_env = "PW"\n'
                                    f'read_timeout = {value}\n')
    assert "[managers.p].read_timeout must be a number of seconds" in text


def test_wrongly_typed_toml_tables_are_listed_not_tracebacks(tmp_path) -> None:
    text = _toml_problems(tmp_path, 'managers = 5\n[[grants]]\nrole = "admin"\nuser = "U1"\nchannels = 5\n'
                                    'manager = ["typo"]\n')
    assert "managers must be tables such as [managers.production], got int 5" in text
    assert "grants[0].channels must be a list of strings" in text
    assert "grants[0]: unknown key 'manager'" in text


def test_grants_that_are_not_tables_are_listed(tmp_path) -> None:
    assert "grants must be [[grants]] tables" in _toml_problems(tmp_path, "grants = 5\n")
    assert "grants[0] must be a [[grants]] table" in _toml_problems(tmp_path, "grants = [5]\n")


def test_unknown_manager_keys_are_refused_rather_than_ignored(tmp_path) -> None:
    text = _toml_problems(tmp_path, '[managers.p]\nurl = "https://p.example"\npassword_env = "PW"\n'
                                    'trust_al = true\nusername = 7\n')
    assert "[managers.p]: unknown key 'trust_al'" in text and "[managers.p].username must be a string" in text


@pytest.mark.parametrize("word,expected", [("TRUE", True), ("yes", True), ("On", True), ("1", True),
                                           ("false", False), ("no", False), ("off", False), ("0", False)])
def test_environment_booleans_take_the_documented_words(word: str, expected: bool) -> None:
    s = load_settings({**BASE, "CLOUDIFY_SSL_TRUST_ALL": word, "BOT_REQUIRE_APPROVAL": word})
    assert s.managers[0].trust_all is expected and s.require_approval is expected


def test_an_empty_boolean_variable_keeps_the_safe_default() -> None:
    assert load_settings({**BASE, "BOT_REQUIRE_APPROVAL": ""}).require_approval is True


@pytest.mark.parametrize("word", ["disabled", "ture", "2", "f"])
def test_other_boolean_words_are_config_errors(word: str) -> None:
    assert "CLOUDIFY_SSL_TRUST_ALL must be one of 1/true/yes/on or 0/false/no/off" in _problems(
        {"CLOUDIFY_SSL_TRUST_ALL": word})


def test_unicode_digits_are_config_errors_not_tracebacks() -> None:
    text = _problems({"BOT_WORKERS": "²", "BOT_BACKUP_SCHEDULE": "² 2 * * *", "BOT_RETENTION": "daily=²"})
    assert "BOT_WORKERS must be a number of threads" in text
    assert "BOT_BACKUP_SCHEDULE: minute: '²' is not a number" in text
    assert "BOT_RETENTION: 'daily=²' is not like" in text


@pytest.mark.parametrize("value", ["0", "5", "99999999999999d", "1e400"])
def test_gate_ttl_out_of_range_is_refused(value: str) -> None:
    assert "BOT_GATE_TTL" in _problems({"BOT_GATE_TTL": value})


@pytest.mark.parametrize("value,reason", [("daily=0,weekly=0", "keep no backup"), ("daily=0", "keep no backup"),
                                          ("daily=3,daily=5", "daily is named twice"),
                                          ("daily=99999999", "counts 0-10000")])
def test_retention_that_keeps_nothing_or_repeats_is_refused(value: str, reason: str) -> None:
    assert reason in _problems({"BOT_RETENTION": value})


@pytest.mark.parametrize("url", ["https://admin:s3cr3t-pw@m.example", "https://admin@m.example",
                                 "https://:tok@m.example:443/"])
def test_credentials_inside_a_manager_url_are_refused_and_not_echoed(url: str) -> None:
    text = _problems({"CLOUDIFY_MANAGER_URL": url})
    assert "must not hold credentials" in text and "CLOUDIFY_USERNAME and CLOUDIFY_PASSWORD" in text
    assert "s3cr3t" not in text and "admin@" not in text and "tok@" not in text


def test_credentials_inside_a_toml_url_are_refused(tmp_path) -> None:
    text = _toml_problems(tmp_path, '[managers.p]\nurls = ["https://u:toml-pw@p.example"]\npassword_env = "PW"\n')
    assert "manager p: a URL must not hold credentials" in text and "toml-pw" not in text


def test_audit_key_is_checked_for_length() -> None:
    assert "BOT_AUDIT_KEY must be at least 32 bytes (it is 5)" in _problems({"BOT_AUDIT_KEY": "short"})
    s = load_settings({**BASE, "BOT_AUDIT_KEY": "k" * 32})
    assert s.audit_key == "k" * 32 and "k" * 32 in s.secrets() and "k" * 32 not in repr(s)


def test_a_data_dir_that_cannot_be_created_is_a_config_error(tmp_path) -> None:
    from bot.config import prepare_folders

    blocker = tmp_path / "file"
    blocker.write_text("x")
    s = load_settings({**BASE, "BOT_DATA_DIR": str(blocker / "data")})
    with pytest.raises(ConfigError) as info:
        prepare_folders(s)
    assert f"BOT_DATA_DIR: cannot create the folder {blocker / 'data'}" in str(info.value)


def test_cli_lists_a_bad_data_dir_without_a_traceback(tmp_path) -> None:
    import os
    import subprocess
    import sys

    blocker = tmp_path / "file"
    blocker.write_text("x")
    env = {**os.environ, **BASE, "BOT_DATA_DIR": str(blocker / "data"), "PYTHONPATH": os.getcwd()}
    done = subprocess.run([sys.executable, "-m", "bot.front.cli", "run", "status"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "cannot create the folder" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("name", ["BOT_ARCHIVE_URL", "SLACK_API_URL"])
def test_credentials_in_other_urls_are_refused_too(name: str) -> None:
    url = {"BOT_ARCHIVE_URL": "s3://AKIAXX:s3cr3t-key@bucket/prefix",
           "SLACK_API_URL": "https://u:s3cr3t-key@slack.example/api/"}[name]
    text = _problems({name: url})
    assert f"{name} must not hold credentials" in text and "s3cr3t" not in text
