"""bot/redact.py: secrets never reach a log line, a Slack message or the store."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

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


# --- issue 16: URL credentials and signed queries are redacted wherever they are kept or shown ----------------

SECRET_URL = "https://bob:hunter2-pw@files.example/x.zip?X-Amz-Expires=60&X-Amz-Signature=sig-5ecret-123"


def test_redact_url_secrets_hides_userinfo_and_secret_query_values() -> None:
    from bot.redact import redact_url_secrets

    assert redact_url_secrets(SECRET_URL) == (
        "https://[redacted]@files.example/x.zip?X-Amz-Expires=60&X-Amz-Signature=[redacted]")
    assert redact_url_secrets("ftp://u@h/a and https://h/p?sv=1&sig=A%2F&se=2#f") == (
        "ftp://[redacted]@h/a and https://h/p?sv=1&sig=[redacted]&se=2#f")
    assert redact_url_secrets("mail ops@example.com, a=b, https://h/x?page=2") == (
        "mail ops@example.com, a=b, https://h/x?page=2")


def test_an_upload_url_secret_is_used_but_never_stored_posted_or_audited(make_bot, monkeypatch) -> None:
    import simulator.api_archive as api

    fetched: list[str] = []

    def fetch(url: str) -> Any:
        fetched.append(url)
        raise api.ApiError(400, "bad_parameters_error", f"Cannot fetch {url}: connection refused")

    monkeypatch.setattr(api, "_fetch", fetch)
    bot = make_bot()
    code, out = bot.run(f"snapshots upload up-1 {SECRET_URL}", yes=True)
    assert fetched == [SECRET_URL]  # the manager was given the whole URL
    assert code == 1 and "files.example" in out
    for secret in ("hunter2", "sig-5ecret"):
        assert secret not in out
        op = bot.store.list_operations(kinds="snapshots upload")[0]
        assert secret not in repr(op)
        assert secret not in repr(bot.store.query_audit(limit=1000))
        for path in Path(bot.settings.db_path).parent.glob("*.db*"):  # the file, its WAL: nowhere on disk
            assert secret.encode() not in path.read_bytes(), path


def test_a_stored_operation_whose_url_secret_is_gone_fails_clearly(make_bot) -> None:
    """Another process (or a restart) finds the operation: the secret was never stored, so it says so."""
    from bot.engine.context import NullSink
    from bot.engine.operations import LOST_SECRET, Operations

    bot = make_bot()
    op = bot.store.create_operation(kind="snapshots upload", args={"snapshot_id": "up-2", "url":
                                    "https://[redacted]@files.example/x.zip", "from_archive": False},
                                    manager="production", requester="shell:alice", requester_name="alice",
                                    channel="terminal", transport="shell", state="approved")
    outcome = Operations(bot.services).run(op, NullSink())
    assert outcome.exit_code == 1 and outcome.reply.text == LOST_SECRET
    assert bot.store.get_operation(op.id).state == "failed"
    assert bot.store.query_audit(operation_id=op.id, event="manager_call") == []  # the manager was not asked
