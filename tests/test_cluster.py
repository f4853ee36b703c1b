"""`cluster status` against the simulator's cluster endpoints: healthy, one node down, the active node down,
a stopped service, no node answering, and two active sides (split brain); every node URL is asked."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from conftest import BotHarness

NODES = ("mgr-1", "mgr-2", "mgr-3")


@pytest.fixture
def make_cluster_bot(tmp_path, clock) -> Callable[..., BotHarness]:
    """A bot whose manager `production` is a 3-node cluster: one URL per node, each routed to that node."""
    from bot.front.wiring import build_services
    from bot.cloudify import wsgi_transport
    from bot.config import load_settings
    from bot.engine.dispatch import Dispatcher
    from bot.settings import ManagerSettings
    from simulator import Simulator
    from simulator.seed import seed_demo

    def build(nodes: tuple[str, ...] = NODES, env: dict[str, str] | None = None, seed: bool = True) -> BotHarness:
        sim = Simulator(now=clock.time, sleep=clock.sleep, data_dir=str(tmp_path / "sim-production"))
        sim.set_cluster(list(nodes))
        if seed:
            seed_demo(sim)
        urls = tuple(f"http://{n}.test" for n in nodes)
        manager = ManagerSettings(name="production", urls=urls, username="admin", password="admin")
        base = {"BOT_DATA_DIR": str(tmp_path / "data"), "BOT_SHELL_ROLE": "admin", **(env or {})}
        settings = load_settings(base, managers=(manager,))
        transport = wsgi_transport({f"{n}.test": sim.node_wsgi(n) for n in nodes})
        services = build_services(settings, clock=clock, transport=transport)
        return BotHarness(Dispatcher(services), services, {"production": sim}, clock, settings)

    return build


@pytest.fixture
def cbot(make_cluster_bot) -> BotHarness:
    return make_cluster_bot()




def test_healthy_cluster_every_node_asked(cbot: BotHarness) -> None:
    seen: list[str] = []
    original = cbot.services.managers["production"].for_node

    def spy(url: str) -> Any:
        seen.append(url)
        return original(url)

    cbot.services.managers["production"].for_node = spy  # type: ignore[method-assign]
    code, out = cbot.run("cluster status")
    assert code == 0, out
    assert seen == [f"http://{n}.test" for n in NODES]
    assert "Cluster status of production: OK" in out
    assert "Every node answers" in out
    for n in NODES + ("db-1", "db-3", "broker-2"):
        assert n in out
    assert "7/7 active" in out and "yes, the bot talks to it" in out
    assert "SPLIT BRAIN" not in out and "runbook" not in out


def test_one_node_down_names_it_and_the_runbook(cbot: BotHarness) -> None:
    cbot.sim.set_node_down("mgr-3")
    code, out = cbot.run("cluster status")
    assert "Cluster status of production: Degraded" in out
    assert "mgr-3 (http://mgr-3.test) does not answer" in out
    assert "manager nodes not OK: mgr-3" in out
    assert "`runbook node-down -m production`" in out
    assert "2 of 3 configured" in out
    row = next(line for line in out.splitlines() if line.startswith("manager  mgr-3"))
    assert "NO" in row and "Fail" in row
    assert code == 0


def test_active_node_down_says_which_node_answers_now(cbot: BotHarness) -> None:
    cbot.run("status")  # the bot talks to mgr-1
    assert cbot.services.managers["production"].current_url == "http://mgr-1.test"
    cbot.sim.set_node_down("mgr-1")
    code, out = cbot.run("cluster status")
    assert "`runbook active-node-down -m production`" in out
    assert "The bot was talking to http://mgr-1.test; http://mgr-2.test answers now." in out
    assert "Note: manager production: node http://mgr-1.test" in out and "now talking to http://mgr-2.test" in out
    # the next reply of an ordinary command goes to the node that answers, without a second notice
    code, out = cbot.run("snapshots list")
    assert code == 0 and "Note:" not in out


def test_failover_notice_on_an_ordinary_command_end_to_end(cbot: BotHarness) -> None:
    cbot.run("snapshots list")
    cbot.sim.set_node_down("mgr-1")
    code, out = cbot.run("snapshots list")
    assert code == 0
    assert "Note: manager production: node http://mgr-1.test refused the connection" in out
    assert "now talking to http://mgr-2.test" in out
    assert "Note:" not in cbot.run("snapshots list")[1]


def test_stopped_service_is_shown_per_node(cbot: BotHarness) -> None:
    cbot.sim.set_service("mgr-2", "Management Worker", active=False)
    _code, out = cbot.run("cluster status")
    row = next(line for line in out.splitlines() if line.startswith("manager  mgr-2"))
    assert "inactive: Management Worker" in row and "Fail" in row
    assert "manager nodes not OK: mgr-2" in out
    assert "node-down" in out


def test_database_quorum_lost_is_a_failure(cbot: BotHarness) -> None:
    cbot.sim.set_node_down("db-1")
    cbot.sim.set_node_down("db-2")
    code, out = cbot.run("cluster status")
    assert "Cluster status of production: Fail" in out and "db nodes not OK: db-1, db-2" in out
    assert "cluster-down" in out
    assert code == 1


def test_no_node_answers(cbot: BotHarness) -> None:
    for n in NODES:
        cbot.sim.set_node_down(n)
    code, out = cbot.run("cluster status")
    assert "Cluster status of production: DOWN" in out and "No node answers (3 asked)" in out
    assert "`runbook cluster-down -m production`" in out
    assert out.count("NO") >= 3 or out.count("unknown") >= 3
    assert code == 1


def test_split_brain_is_said_loudly(cbot: BotHarness) -> None:
    cbot.sim.faults.split_brain([["mgr-1"], ["mgr-2", "mgr-3"]])
    code, out = cbot.run("cluster status")
    assert code == 1
    assert "SPLIT BRAIN on production" in out
    assert "newest".upper() in out.upper() and "PostgreSQL database wins" in out
    assert "LOST" in out and "take a snapshot of each side" in out
    assert "Side 1: mgr-1 (http://mgr-1.test) list managers mgr-1; healthy: mgr-1; failed: mgr-2, mgr-3" in out
    assert "Side 2: mgr-2 (http://mgr-2.test), mgr-3 (http://mgr-3.test) list managers mgr-2, mgr-3" in out
    assert "`runbook split-brain -m production`" in out


def test_split_brain_with_the_same_member_lists_is_still_found() -> None:
    """Each node reports itself healthy and the other failed, though both list both."""
    from commands.cluster import View, judge

    def view(me: str, other: str) -> View:
        nodes = {me: {"status": "OK"}, other: {"status": "Fail"}}
        return View(f"http://{me}.test", me, status={"status": "Degraded", "services": {
            "manager": {"status": "Degraded", "nodes": nodes}}}, members={"manager": ("a", "b")})

    verdict = judge([view("a", "b"), view("b", "a")], "http://a.test")
    assert verdict.word == "SPLIT BRAIN" and len(verdict.sides) == 2


def test_two_nodes_one_down_agree_is_not_split_brain() -> None:
    from commands.cluster import View, judge

    status = {"status": "Degraded", "services": {"manager": {"status": "Degraded", "nodes": {
        "a": {"status": "OK"}, "b": {"status": "OK"}, "c": {"status": "Fail"}}}}}
    views = [View("http://a.test", "a", status=status, members={"manager": ("a", "b", "c")}),
             View("http://b.test", "b", status=status, members={"manager": ("a", "b", "c")}),
             View("http://c.test", "c", error="refused")]
    verdict = judge(views, "http://a.test")
    assert verdict.word == "Degraded" and verdict.runbook == "node-down"


def test_every_message_names_the_manager(make_cluster_bot) -> None:
    bot = make_cluster_bot()
    for text in ("cluster status", "cluster status -m production"):
        assert "production" in bot.run(text)[1]
    code, out = bot.run("cluster status -m staging")
    assert code == 2 and "unknown manager 'staging'" in out


def test_managers_lists_every_node_url(cbot: BotHarness) -> None:
    code, out = cbot.run("managers")
    assert code == 0
    assert "http://mgr-1.test, http://mgr-2.test, http://mgr-3.test" in out
    assert "answering (7.0.5) at http://mgr-1.test" in out


def test_one_of_two_configured_nodes_down_is_not_the_whole_cluster() -> None:
    """QA #33: a configured URL that does not answer, beside a single-node manager that answers healthy."""
    from commands.cluster import View, judge

    status = {"status": "OK", "services": {"manager": {"status": "OK", "nodes": {"mgr-1": {"status": "OK"}}}}}
    views = [View("http://127.0.0.1:1", error="connection refused"),
             View("http://127.0.0.1:8123", "mgr-1", status=status, members={"manager": ("mgr-1",)})]
    verdict = judge(views, "http://127.0.0.1:8123")
    assert verdict.word == "Degraded" and verdict.runbook == "node-down", verdict
    assert judge(views, "http://127.0.0.1:1").runbook == "active-node-down"
    both_down = [views[0], View("http://127.0.0.1:2", error="connection refused")]
    assert judge(both_down, "http://127.0.0.1:1").runbook == "cluster-down"
