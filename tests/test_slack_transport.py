"""Socket Mode dispatch, user groups, start-up checks, the manifest against the code, and `cfy-bot http` for real."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from slack_fake_server import ADMIN, SECRET, FakeSlack, make_slack_bot
from test_slack_app import REG, ops

from bot.config import load_settings
from bot.settings import ManagerSettings
from bot.slack import serve_http, serve_socket, startup_problem
from bot.slack.fake import action_payload, command_fields, send_command

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def fake() -> Any:
    fake = FakeSlack().start()
    yield fake
    fake.stop()


# -- Socket Mode: the same listeners through Bolt's own dispatch ----------------------------------------

def test_socket_mode_command_and_click(tmp_path: Any, clock: Any, fake: FakeSlack) -> None:
    from slack_bolt.request import BoltRequest

    bot = make_slack_bot(tmp_path, clock, REG, fake=fake, socket_mode=True, env={"SLACK_SIGNING_SECRET": ""})
    try:
        fields = command_fields("drop snap-2", user=ADMIN, response_url=fake.response_url("sock"))
        resp = bot.app.dispatch(BoltRequest(body=fields, mode="socket_mode"))
        assert resp.status == 200
        bot.settle()
        [op] = ops(bot)
        click = action_payload("confirm", op.id, user=ADMIN, message_ts=op.slack_ts,
                               response_url=fake.response_url("sock-click"))
        assert bot.app.dispatch(BoltRequest(body=click, mode="socket_mode")).status == 200
        bot.settle()
        assert bot.store.get_operation(op.id).state == "succeeded"
        assert "succeeded" in fake.calls_to("chat.update")[-1].params["text"]
    finally:
        bot.close()


def test_http_mode_refuses_to_build_without_a_signing_secret(tmp_path: Any, clock: Any, fake: FakeSlack) -> None:
    from bot.errors import ConfigError

    with pytest.raises(ConfigError, match="SLACK_SIGNING_SECRET"):
        make_slack_bot(tmp_path, clock, REG, fake=fake, env={"SLACK_SIGNING_SECRET": ""})


# -- user groups ----------------------------------------------------------------------------------------

def test_user_group_grants_are_read_from_slack_and_cached(tmp_path: Any, clock: Any, fake: FakeSlack) -> None:
    fake.usergroups = [{"id": "SADMINS", "handle": "cfy-admins", "users": ["UGROUPIE"]},
                       {"id": "SOPS", "handle": "ops"}]  # no users listed: asked separately
    bot = make_slack_bot(tmp_path, clock, REG, fake=fake, env={"BOT_ADMINS": "SADMINS,SOPS"})
    try:
        bot.command("drop snap-1", user="UGROUPIE")
        bot.command("drop snap-2", user="UNOBODY")
        bot.settle()
        assert [o.requester for o in ops(bot)] == ["slack:UGROUPIE"]
        assert "needs the admin role" in bot.responses("cmd-UNOBODY")[0]["text"]
        assert len(fake.calls_to("usergroups.list")) == 1
        assert fake.calls_to("usergroups.list")[0].params["include_users"] in (True, "true", "1")
        assert [c.params["usergroup"] for c in fake.calls_to("usergroups.users.list")] == ["SOPS"]
        clock.advance(300)  # the cache is five minutes old (on the injected clock): asked again
        bot.command("drop snap-3", user="UGROUPIE")
        bot.settle()
        assert len(fake.calls_to("usergroups.list")) == 2
    finally:
        bot.close()


def test_missing_usergroups_scope_fails_closed(tmp_path: Any, clock: Any, fake: FakeSlack, caplog: Any) -> None:
    fake.usergroups = [{"id": "SADMINS", "users": ["UGROUPIE"]}]
    fake.fail("usergroups.list", "missing_scope")
    bot = make_slack_bot(tmp_path, clock, REG, fake=fake, env={"BOT_ADMINS": "SADMINS"})
    try:
        bot.command("drop snap-1", user="UGROUPIE")
        bot.settle()
        assert ops(bot) == [] and "needs the admin role" in bot.responses("cmd-UGROUPIE")[0]["text"]
        assert "usergroups:read" in caplog.text and "missing_scope" in caplog.text
        clock.advance(60)  # a failed read is tried again after a minute; the scope was granted meanwhile
        bot.command("drop snap-1", user="UGROUPIE")
        bot.settle()
        assert [o.requester for o in ops(bot)] == ["slack:UGROUPIE"]
    finally:
        bot.close()


def test_no_group_grants_means_no_group_calls(tmp_path: Any, clock: Any, fake: FakeSlack) -> None:
    bot = make_slack_bot(tmp_path, clock, REG, fake=fake)
    try:
        bot.command("ping")
        bot.settle()
        assert not [m for m in fake.methods() if m.startswith("usergroups")]
    finally:
        bot.close()


# -- start-up checks ------------------------------------------------------------------------------------

def _settings(tmp_path: Any, **env: str) -> Any:
    manager = ManagerSettings("production", ("http://production.test",), password="pw")
    return load_settings({"BOT_DATA_DIR": str(tmp_path), **env}, managers=(manager,))


def test_startup_problems_are_one_clear_line(tmp_path: Any, fake: FakeSlack, monkeypatch: Any) -> None:
    monkeypatch.delenv("SLACK_CLIENT_ID", raising=False)
    api = {"SLACK_API_URL": fake.api_url}
    assert "SLACK_BOT_TOKEN is not set" in startup_problem(_settings(tmp_path, **api), "http")
    s = _settings(tmp_path, SLACK_BOT_TOKEN="xoxb-test", **api)
    assert "SLACK_SIGNING_SECRET is not set" in startup_problem(s, "http")
    assert "SLACK_APP_TOKEN is not set" in startup_problem(s, "socket")
    assert "app-level token" in startup_problem(_settings(tmp_path, SLACK_BOT_TOKEN="xoxb-test",
                                                          SLACK_APP_TOKEN="xoxb-oops", **api), "socket")
    good = _settings(tmp_path, SLACK_BOT_TOKEN="xoxb-test", SLACK_SIGNING_SECRET="s", SLACK_APP_TOKEN="xapp-1", **api)
    assert startup_problem(good, "http") is None and startup_problem(good, "socket") is None
    bad = _settings(tmp_path, SLACK_BOT_TOKEN="xoxb-sekrit-value", SLACK_SIGNING_SECRET="s", **api)
    problem = startup_problem(bad, "http")
    assert problem == "Slack rejected SLACK_BOT_TOKEN: auth.test answered invalid_auth"
    down = _settings(tmp_path, SLACK_BOT_TOKEN="xoxb-test", SLACK_SIGNING_SECRET="s",
                     SLACK_API_URL="http://127.0.0.1:9/api/")
    assert startup_problem(down, "http").startswith("cannot reach the Slack API at http://127.0.0.1:9/api/")
    monkeypatch.setenv("SLACK_CLIENT_ID", "1.2")
    monkeypatch.setenv("SLACK_CLIENT_SECRET", "x")
    assert "OAuth" in startup_problem(good, "http")


def test_serve_refuses_with_a_message_and_exit_2(tmp_path: Any, fake: FakeSlack, capsys: Any) -> None:
    bad = _settings(tmp_path, SLACK_BOT_TOKEN="xoxb-sekrit-value", SLACK_SIGNING_SECRET="s",
                    SLACK_APP_TOKEN="xapp-1", SLACK_API_URL=fake.api_url)
    assert serve_http(bad, port=0, threads=2) == 2
    assert serve_socket(bad) == 2
    err = capsys.readouterr().err
    assert err.count("cfy-bot cannot start: Slack rejected SLACK_BOT_TOKEN") == 2 and "sekrit" not in err


def test_cli_http_without_token(tmp_path: Any, monkeypatch: Any, capsys: Any) -> None:
    from bot.front.cli import main

    monkeypatch.chdir(tmp_path)
    for name in [k for k in os.environ if k.startswith(("SLACK_", "BOT_", "CLOUDIFY_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("CLOUDIFY_MANAGER_URL", "http://production.test")
    monkeypatch.setenv("CLOUDIFY_PASSWORD", "pw")
    monkeypatch.setenv("BOT_DATA_DIR", str(tmp_path))
    assert main(["http", "--port", "0"]) == 2
    assert "cfy-bot cannot start: SLACK_BOT_TOKEN is not set" in capsys.readouterr().err
    monkeypatch.setenv("SLACK_CLIENT_ID", "1.2")
    monkeypatch.setenv("SLACK_CLIENT_SECRET", "x")
    assert main(["socket"]) == 2
    assert "OAuth" in capsys.readouterr().err


# -- the manifest against the code ------------------------------------------------------------------------

# Every Web API method the bot/slack/ package may call, and the bot scopes it needs.
METHOD_SCOPES = {
    "auth_test": set(), "chat_postMessage": {"chat:write"}, "chat_update": {"chat:write"},
    "chat_postEphemeral": {"chat:write"}, "usergroups_list": {"usergroups:read"},
    "usergroups_users_list": {"usergroups:read"}, "users_info": {"users:read"},
    "conversations_create": {"channels:manage"}, "conversations_invite": {"channels:manage"},
    "pins_add": {"pins:write"}, "files_upload_v2": {"files:write"}, "reactions_add": {"reactions:write"},
}
_CALL = re.compile(r"\.(auth_\w+|chat_\w+|usergroups_\w+|users_\w+|conversations_\w+|pins_\w+|files_\w+"
                   r"|reactions_\w+|views_\w+)\(")
# Every Events API event the app may listen to (`app.event("...")`), and the bot scope Slack needs to send it.
EVENT_SCOPES = {"app_mention": {"app_mentions:read"}, "message.channels": {"channels:history"},
                "reaction_added": {"reactions:read"}}
_EVENT = re.compile(r"\.event\(\s*[\"']([\w.]+)[\"']")


def read_yaml(text: str) -> Any:
    """The YAML subset manifest.yml uses: nested mappings, lists, scalars, quotes, comments, flow-free."""
    lines = []
    for raw in text.splitlines():
        line = re.sub(r"\s+#.*$", "", raw) if not raw.lstrip().startswith("#") else ""
        if line.strip():
            lines.append((len(line) - len(line.lstrip()), line.strip()))
    value, _ = _block(lines, 0, lines[0][0])
    return value


def _scalar(text: str) -> Any:
    if text[:1] in "\"'":
        return text[1:-1]
    return {"true": True, "false": False}.get(text, int(text) if text.isdigit() else text)


def _block(lines: list[tuple[int, str]], i: int, indent: int) -> tuple[Any, int]:
    if lines[i][1].startswith("- "):
        items = []
        while i < len(lines) and lines[i][0] == indent and lines[i][1].startswith("- "):
            rest = lines[i][1][2:]
            if re.match(r"^[\w.-]+:( |$)", rest):  # a mapping inside a list item
                lines[i] = (indent + 2, rest)
                item, i = _block(lines, i, indent + 2)
            else:
                item, i = _scalar(rest), i + 1
            items.append(item)
        return items, i
    out = {}
    while i < len(lines) and lines[i][0] == indent:
        key, _, rest = lines[i][1].partition(":")
        if rest.strip():
            out[key], i = _scalar(rest.strip()), i + 1
        else:
            out[key], i = _block(lines, i + 1, lines[i + 1][0])
    return out, i


def test_manifest_scopes_are_exactly_what_the_code_uses() -> None:
    manifest = read_yaml((ROOT / "manifest.yml").read_text())
    code = "\n".join(p.read_text() for p in sorted((ROOT / "bot" / "slack").glob("*.py")))
    called, events = set(_CALL.findall(code)), set(_EVENT.findall(code))
    unknown = (called - METHOD_SCOPES.keys()) | (events - EVENT_SCOPES.keys())
    assert not unknown, f"add these Web API methods to METHOD_SCOPES or events to EVENT_SCOPES: {unknown}"
    assert events == {"app_mention"}
    needed = {"commands"} | set().union(*(METHOD_SCOPES[m] for m in called), *(EVENT_SCOPES[e] for e in events))
    if "chat_postMessage" in called:
        needed.add("chat:write.public")  # progress goes to the channel of the command, joined or not
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == needed
    assert set(manifest["settings"]["event_subscriptions"]["bot_events"]) == events  # Slack sends what is heard


def test_manifest_command_interactivity_and_urls() -> None:
    manifest = read_yaml((ROOT / "manifest.yml").read_text())
    [cmd] = manifest["features"]["slash_commands"]
    assert cmd["command"] == "/cfy" and cmd["url"].endswith("/slack/events")
    assert len(cmd["usage_hint"]) <= 1000 and len(cmd["description"]) <= 2000
    for word in ("status", "snapshots", "restore", "help"):
        assert word in cmd["usage_hint"]
    settings = manifest["settings"]
    assert settings["interactivity"]["is_enabled"] is True
    assert settings["interactivity"]["request_url"] == cmd["url"]
    assert settings["event_subscriptions"]["request_url"] == cmd["url"]  # Bolt answers all three on one path
    assert settings["socket_mode_enabled"] is False  # HTTP mode: URLs present; the comments describe Socket Mode
    assert 1 <= len(manifest["display_information"]["name"]) <= 35


def test_procfile() -> None:
    lines = (ROOT / "Procfile").read_text().splitlines()
    assert lines == ["web: cfy-bot http --port $PORT", "worker: cfy-bot socket"]


# -- cfy-bot http, for real --------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _slow_clients(port: int, n: int) -> list[socket.socket]:
    slow = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=1)
        s.sendall(b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n{")
        slow.append(s)
    return slow


@pytest.mark.slow
def test_cfy_bot_http_serves_and_stops_on_sigterm(tmp_path: Any, fake: FakeSlack) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "BOT_", "CLOUDIFY_"))}
    env.update(SLACK_BOT_TOKEN="xoxb-test", SLACK_SIGNING_SECRET=SECRET, SLACK_API_URL=fake.api_url,
               CLOUDIFY_MANAGER_URL="http://127.0.0.1:9", CLOUDIFY_PASSWORD="pw", BOT_DATA_DIR=str(tmp_path))
    proc = subprocess.Popen([sys.executable, "-m", "bot.front.cli", "http", "--port", str(port), "--threads", "4"],
                            cwd=tmp_path, env={**env, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                with urllib.request.urlopen(base + "/health", timeout=1) as resp:
                    assert resp.status == 200
                    break
            except OSError:
                time.sleep(0.05)
        else:
            raise AssertionError("cfy-bot http did not come up")
        slow = _slow_clients(port, 100)  # each declared a body and sent a few bytes: none holds a worker
        with socket.create_connection(("127.0.0.1", port), timeout=1) as huge:  # 1 GiB declared: refused at once
            huge.sendall(f"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Length: {1 << 30}\r\n\r\n".encode())
            assert huge.recv(100).startswith(b"HTTP/1.1 413")
        with urllib.request.urlopen(base + "/health", timeout=1) as resp:  # the timeouts fail the test if slow
            assert resp.status == 200
        events = base + "/slack/events"
        assert send_command(events, SECRET, "help", response_url=fake.response_url("g"), timeout=1)[0] == 200
        assert send_command(events, "wrong", "help", timeout=1)[0] == 401
        assert fake.wait_for(lambda f: f.calls_to("response_url"), timeout=10)
        assert "help" in fake.calls_to("response_url")[0].params["text"].lower()
        for s in slow:
            s.close()
    finally:
        proc.terminate()
        out = proc.communicate(timeout=20)[0].decode()
    assert proc.returncode == 0 and f"serving Slack on http://0.0.0.0:{port}/slack/events" in out, out
    assert "xoxb-test" not in out and SECRET not in out and "Traceback" not in out, out
