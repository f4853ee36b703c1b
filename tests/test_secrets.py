"""Canary secrets: run the main flows with recognisable secret values, then search every output for them.

Outputs searched: what the terminal printed, everything logged at DEBUG (messages, arguments and tracebacks),
what the bot posted to Slack (texts, blocks, response URLs), and the raw bytes of the bot's SQLite files
(main file, -wal and -shm) and of every other file in its data folder but the snapshot zips themselves.
The needles: the manager password, the fallback password, an API token, a wrong password, the Slack bot
token, signing secret and app token, Basic-auth encodings of the passwords, and the database password that
the simulated manager puts in every snapshot execution's `parameters.config`.
"""

from __future__ import annotations

import base64
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import BotHarness

from simulator.models import DB_PASSWORD
from sim_fixtures import daily

PASSWORD = "canaryMgrPw-7Hq2Zx9w"
FALLBACK = "canaryFallbackPw-Kd83Lm"
WRONG = "canaryWrongPw-33kkQ1"
TOKEN = "ctok-canaryTok-91ZZ88aa"
BOT_TOKEN = "xoxb-canary-0001-botTokenZ"
SIGNING = "canarySigningSecret-5521qq"
APP_TOKEN = "xapp-canary-1-appTokenY"
SECRETS = {"manager password": PASSWORD, "fallback password": FALLBACK, "wrong password": WRONG, "API token": TOKEN,
           "Slack bot token": BOT_TOKEN, "Slack signing secret": SIGNING, "Slack app token": APP_TOKEN,
           "the manager's DB password (parameters.config)": DB_PASSWORD}
for _label, _pw in (("manager password", PASSWORD), ("fallback password", FALLBACK), ("wrong password", WRONG)):
    SECRETS[f"{_label}, Basic-encoded"] = base64.b64encode(f"admin:{_pw}".encode()).decode()
    SECRETS[f"{_label}, reversed"] = _pw[::-1]  # a cheap check that nothing 'hides' it by reversing

SLACK_ENV = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING, "SLACK_APP_TOKEN": APP_TOKEN}


def leaks(text: str | bytes) -> list[str]:
    """The names of the canaries found in `text`."""
    data = text if isinstance(text, bytes) else text.encode("utf-8", "replace")
    return [label for label, value in SECRETS.items() if value.encode() in data]


@dataclass
class Setup:
    bot: BotHarness
    data_dir: Path


def build(tmp_path: Path, clock: Any, env: dict[str, str] | None = None, transport_only: bool = False) -> Any:
    """Four managers: production (seeded), staging (empty, for a restore), broken (wrong password), tokened
    (a wrong API token); every password, token and Slack secret is a canary."""
    from bot.front.wiring import build_services
    from bot.cloudify import wsgi_transport
    from bot.config import load_settings
    from bot.engine.dispatch import Dispatcher
    from bot.settings import ManagerSettings
    from simulator import Simulator
    from simulator.seed import seed_demo

    sims, apps, managers = {}, {}, []
    for name, seeded, real_password, password, token in (
            ("production", True, PASSWORD, PASSWORD, ""), ("staging", False, PASSWORD, PASSWORD, ""),
            ("broken", True, "someone-changed-it", WRONG, ""), ("tokened", True, PASSWORD, "", TOKEN)):
        sim = Simulator(now=clock.time, sleep=clock.sleep, data_dir=str(tmp_path / f"sim-{name}"),
                        users={"admin": real_password})
        if seeded:
            seed_demo(sim)
        sims[name], apps[f"{name}.test"] = sim, sim.wsgi
        managers.append(ManagerSettings(name=name, urls=(f"http://{name}.test",), username="admin", password=password,
                                        token=token, fallback_password=FALLBACK))
    data = tmp_path / "data"
    settings = load_settings({"BOT_DATA_DIR": str(data), "BOT_SHELL_ROLE": "admin", **SLACK_ENV, **(env or {})},
                             managers=tuple(managers))
    transport = wsgi_transport(apps)
    if transport_only:
        return settings, transport, sims
    services = build_services(settings, clock=clock, transport=transport)
    return Setup(BotHarness(Dispatcher(services), services, sims, clock, settings), data)


FLOWS: list[tuple[str, dict[str, Any], int | None]] = [
    ("status", {}, None),
    ("managers", {}, None),
    ("cluster status", {}, 0),
    ("snapshots list", {}, 0),
    (f"snapshots show {daily(1)}", {}, 0),
    ("snapshots create canary-1", {}, 0),
    (f"snapshots download {daily(2)}", {}, 0),
    ("maintenance-mode status", {}, 0),
    ("status -m broken", {}, None),  # says "unreachable: … Wrong credentials"
    ("snapshots list -m broken", {}, 1),
    ("snapshots create canary-2 -m broken", {}, 1),
    ("status -m tokened", {}, None),
    ("snapshots list -m tokened", {}, 1),
    ("snapshots create before-restore -m staging", {}, 0),
    ("maintenance-mode activate -m staging", {"yes": True}, 0),
    ("maintenance-mode deactivate -m staging", {"yes": True}, 0),
    ("restore before-restore -f -m staging", {"yes": True, "approver": "bob"}, 0),
    ("@ the next restore brings back other admin credentials: only the fallback password works after it", {}, None),
    ("restore before-restore -f -m staging", {"yes": True, "approver": "bob"}, 0),  # finishes with the fallback
    ("status -m staging", {}, None),
    ("snapshots list -m staging", {}, None),  # wrong credentials now
    ("restore latest --timeout 60", {"yes": True, "approver": "bob"}, 1),  # legacy onto blueprints: refused up front
    ("snapshots delete canary-1 --archive", {"yes": True}, 0),
    ("operations --all", {}, 0),
    ("help", {}, 0),
    ("audit --limit 200", {}, 0),
    ("audit --event manager_call --limit 200", {}, 0),
]


def test_no_canary_reaches_the_terminal_the_logs_or_the_database(tmp_path, clock, caplog, capsys) -> None:
    caplog.set_level(logging.DEBUG)
    setup = build(tmp_path, clock)
    bot = setup.bot
    ran = []
    for text, kwargs, expected in FLOWS:
        if text.startswith("@"):
            bot.sims["staging"].faults.change_admin_password_after_restore(FALLBACK)
            continue
        code, out = bot.run(text, **kwargs)
        ran.append(text)
        if expected is not None:
            assert code == expected, (text, out)
    assert bot.store.verify_audit().ok
    assert bot.store.query_audit(event="manager_call", limit=5), "the flows made mutating calls"
    found: dict[str, list[str]] = {}
    for i, out in enumerate(bot.outputs):
        if hits := leaks(out):
            found[f"terminal output of {ran[i]!r}"] = hits
    captured = capsys.readouterr()
    found.update({k: v for k, v in (("stdout", leaks(captured.out)), ("stderr", leaks(captured.err))) if v})
    for record in caplog.records:
        text = " ".join([record.getMessage(), repr(record.args), record.exc_text or "", str(record.exc_info or "")])
        if hits := leaks(text):
            found[f"log record {record.name}: {record.getMessage()[:80]}"] = hits
    if hits := leaks(caplog.text):
        found["formatted log"] = hits
    found.update(_files(setup.data_dir, bot.settings.db_path))
    assert not found, found
    assert os.path.exists(bot.settings.db_path + "-wal"), "the WAL was searched while it held the latest rows"


def _files(data_dir: Path, db_path: str) -> dict[str, list[str]]:
    """Canaries in the SQLite files (-wal and -shm too) and any other file the bot wrote, snapshot zips aside."""
    found = {}
    paths = {Path(db_path + suffix) for suffix in ("", "-wal", "-shm")} | {
        p for p in data_dir.rglob("*") if p.is_file() and p.suffix != ".zip"}
    for path in sorted(p for p in paths if p.exists()):
        if hits := leaks(path.read_bytes()):
            found[str(path)] = hits
    return found


def test_the_simulated_manager_really_hands_out_the_db_password(tmp_path, clock) -> None:
    """Keeps the canary test honest: the manager does hold the DB password in its executions' parameters."""
    settings, transport, sims = build(tmp_path, clock, transport_only=True)
    from bot.cloudify import Manager

    held = [e for e in sims["production"].state.executions.values()
            if DB_PASSWORD in json.dumps(e.get("parameters") or {})]
    assert held, "the seeded manager has snapshot executions whose parameters.config holds the DB password"
    client = Manager(settings.manager("production"), transport=transport, clock=clock)
    page = client.list_executions(include_system=True, size=1000)
    ours = [e for e in page.items if e.id in {h["id"] for h in held}]
    assert ours and all("config" in e.parameters for e in ours)
    # hidden by the client, before any command sees it
    assert DB_PASSWORD not in json.dumps([e.wire() for e in page.items])


def test_the_search_finds_a_canary_in_the_write_ahead_log(tmp_path, clock, caplog) -> None:
    """The detector itself: a value that is not a configured secret gets in, and the raw-bytes search sees it."""
    setup = build(tmp_path, clock)
    setup.bot.run("status")
    setup.bot.store.append_audit("step", actor="system:test", detail={"oops": DB_PASSWORD})
    found = _files(setup.data_dir, setup.bot.settings.db_path)
    assert any(path.endswith("-wal") for path in found), found  # still only in the WAL, not yet checkpointed
    assert found[next(iter(found))] == ["the manager's DB password (parameters.config)"]


def test_no_canary_reaches_slack(tmp_path, clock, caplog) -> None:
    """The same secrets through the real Bolt app: nothing the bot posts to Slack or answers holds them."""
    slack_mod = pytest.importorskip("bot.slack")
    from slack_fake_server import CountingPool, FakeSlack, WSGIServerThread

    from bot.engine.dispatch import Dispatcher
    from bot.clock import FakeClock
    from bot.slack.fake import send_click, send_command

    caplog.set_level(logging.DEBUG)
    fake = FakeSlack(good_tokens=(BOT_TOKEN,)).start()
    setup = build(tmp_path, clock, env={"SLACK_API_URL": fake.api_url, "BOT_ADMINS": "UADMIN,UADMIN2"})
    services = setup.bot.services
    client = slack_mod.make_client(services.settings)
    app = slack_mod.build_app(services, Dispatcher(services), client=client, executor=CountingPool(8, "canary"),
                              outbox=slack_mod.Outbox(client, post_interval=0.01, edit_interval=0.05,
                                                      clock=FakeClock()))  # throttling passes at once
    front = slack_mod.front_of(app)
    front.quick.shutdown()
    front.quick = CountingPool(8, "canary-quick")  # so _settle can tell when quick commands are done
    server = WSGIServerThread(slack_mod.wsgi(app))
    url = server.url + "/slack/events"
    try:
        for text in ("status", "snapshots list", "status -m broken", "snapshots create slack-1", "status -m tokened",
                     "snapshots delete slack-1", "audit --limit 100"):
            status, _body = send_command(url, SIGNING, text, user="UADMIN", user_name="ana", channel="COPS",
                                         response_url=fake.response_url("cmd"))
            assert status == 200, text
            _settle(front, fake)
        op = services.store.list_operations(kinds="snapshots delete")[0]
        send_click(url, SIGNING, "confirm", op.id, user="UADMIN", user_name="ana", channel="COPS",
                   response_url=fake.response_url("click"))
        _settle(front, fake)
        assert services.store.get_operation(op.id).state == "succeeded"
    finally:
        server.stop()
        front.close()
        fake.stop()
    posted = [c for c in fake.calls if c.method in ("chat.postMessage", "chat.update", "chat.postEphemeral",
                                                     "response_url")]
    assert len(posted) >= 7
    found = {f"{c.method} #{i}": hits for i, c in enumerate(fake.calls) if (hits := leaks(json.dumps(c.params)))}
    assert all(c.token in ("", BOT_TOKEN) for c in fake.calls)  # the token went only where it belongs: the header
    found.update({f"log {r.name}": hits for r in caplog.records
                  if (hits := leaks(" ".join([r.getMessage(), repr(r.args), r.exc_text or ""])))})
    found.update(_files(setup.data_dir, services.settings.db_path))
    assert not found, found


def _settle(front: Any, fake: Any, timeout: float = 20.0) -> None:
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        busy = any(getattr(p, "active", 0) for p in (front.quick, front.work))
        if not busy and front.outbox.drain(max(0.0, end - time.monotonic())):
            return
        time.sleep(0.02)
    raise AssertionError("the Slack front end did not settle")
