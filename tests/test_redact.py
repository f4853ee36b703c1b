"""bot/redact.py: secrets never reach a log line, a Slack message or the store."""

from __future__ import annotations

import copy

from bot.redact import REDACTED, is_secret_key, redact, redact_text

EXECUTION = {
    "id": "e1",
    "workflow_id": "create_snapshot",
    "status": "pending",
    "parameters": {
        "snapshot_id": "daily-1",
        "include_credentials": True,
        "config": {"postgresql_username": "cloudify", "postgresql_password": "db-pw", "db_host": "10.0.0.5"},
        "legacy": True,
    },
}


def test_execution_config_is_replaced_whole_and_the_rest_is_kept() -> None:
    original = copy.deepcopy(EXECUTION)
    out = redact(EXECUTION)
    assert out["parameters"]["config"] == REDACTED
    assert out["parameters"]["snapshot_id"] == "daily-1"
    assert out["parameters"]["include_credentials"] is True  # a flag, not a secret
    assert out["status"] == "pending"
    assert original == EXECUTION  # a copy: the input is untouched
    assert "db-pw" not in repr(out)


def test_config_inside_lists_of_executions_is_redacted() -> None:
    page = {"items": [EXECUTION, {"id": "e2", "parameters": {"config": None}}]}
    out = redact(page)
    assert out["items"][0]["parameters"]["config"] == REDACTED
    assert out["items"][1]["parameters"]["config"] is None  # nothing to hide


def test_secret_keys_are_redacted_case_insensitively() -> None:
    obj = {
        "rabbitmq_password": "r", "password_hash": "pbkdf2$x", "PASSWORD": "p", "secret_key": "s",
        "Authentication-Token": "ctok-a-b", "api_key": "k", "private_key": "-----BEGIN", "value": "ctok",
        "ca_cert_content": "-----BEGIN CERTIFICATE-----", "username": "admin",
        "nested": [{"password": "n", "host": "h"}],
    }
    out = redact(obj)
    for key in ("rabbitmq_password", "password_hash", "PASSWORD", "secret_key", "Authentication-Token",
                "api_key", "private_key"):
        assert out[key] == REDACTED, key
    assert out["ca_cert_content"].startswith("-----BEGIN CERTIFICATE")
    assert out["username"] == "admin"
    assert out["value"] == "ctok"
    assert out["nested"] == [{"password": REDACTED, "host": "h"}]


def test_empty_null_and_boolean_secret_values_stay_readable() -> None:
    assert redact({"password": None, "token": "", "secret": False}) == {"password": None, "token": "", "secret": False}


def test_is_secret_key() -> None:
    assert is_secret_key("postgresql_password") and is_secret_key("API-Key") and is_secret_key("passwd")
    assert not is_secret_key("ca_cert_content") and not is_secret_key("include_credentials")
    assert not is_secret_key(3)


def test_scalars_and_tuples_pass_through() -> None:
    assert redact("x") == "x" and redact(3) == 3 and redact(None) is None
    assert redact(({"token": "t"},)) == ({"token": REDACTED},)


def test_redact_text_replaces_known_secrets_longest_first() -> None:
    text = "login admin/hunter2 then hunter2-extra and token abc123"
    out = redact_text(text, ["hunter2", "hunter2-extra", "", None, "abc123"])
    assert out == "login admin/[redacted] then [redacted] and token [redacted]"


def test_redact_text_hides_authorization_values_and_api_tokens() -> None:
    out = redact_text("Authorization: Basic YWRtaW46YWRtaW4= and ctok-AbC123xyz0-s3cr3tvalue")
    assert "YWRtaW46" not in out and "s3cr3t" not in out
    assert out == "Authorization: Basic [redacted] and [redacted]"
    assert redact_text("basic auth is fine") == "basic auth is fine"
