"""`deployments list` (commands/deployments.py) through the whole bot, against the simulated manager over httpx."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pytest

from bot.cloudify import Manager, wsgi_transport
from bot.settings import ManagerSettings
from commands.deployments import COLUMNS, cell
from simulator import Simulator
from simulator.seed import seed_demo

HEADER = ("id", "display_name", "blueprint_id", "created_at", "updated_at", "visibility", "tenant_name", "created_by",
          "site_name", "labels", "deployment_status", "installation_status")


def _table(out: str) -> list[list[str]]:
    """The table's rows (header first) split on the column gaps, from a terminal transcript."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("id "))
    rule = lines[start + 1]
    spans, at = [], 0
    for dashes in rule.split("  "):
        if dashes:
            spans.append((at, at + len(dashes)))
        at += len(dashes) + 2
    rows = []
    for line in lines[start:]:
        if line == rule or not line.strip():
            continue
        rows.append([line[a:b].strip() for a, b in spans])
    return rows


def test_all_tenants_lists_every_deployment_with_cfys_columns(bot) -> None:
    code, out = bot.run("deployments list -a")
    assert code == 0, out
    rows = _table(out)
    assert tuple(rows[0]) == HEADER == COLUMNS
    assert {(r[0], r[2], r[6]) for r in rows[1:]} == {
        ("hello-world-1", "hello-world", "default_tenant"), ("web-prod", "web-app", "prod-apps"),
        ("db-prod", "db-cluster", "prod-apps"), ("web-staging", "web-app", "staging-apps")}
    assert "Showing 4 of 4 deployments on production (all tenants)" in out
    seeded = bot.sim.state.deployments["prod-apps"][0]["created_at"]  # e.g. 2026-11-09T09:00:00.000Z
    assert seeded.replace("T", " ").rstrip("Z") in out


def test_without_a_tenant_only_the_managers_tenant_and_with_one_only_that(bot) -> None:
    code, out = bot.run("deployments list")
    assert code == 0 and [r[0] for r in _table(out)[1:]] == ["hello-world-1"], out
    assert "Showing 1 of 1 deployments on production (tenant default_tenant)" in out
    code, out = bot.run("deployments list -t prod-apps")
    assert code == 0 and [r[0] for r in _table(out)[1:]] == ["web-prod", "db-prod"], out
    code, out = bot.run("deployments list --tenant-name staging-apps")
    assert code == 0 and [r[0] for r in _table(out)[1:]] == ["web-staging"], out


def test_labels_site_and_nulls_print_as_cfy_prints_them(bot) -> None:
    dep = bot.sim.state.deployments["default_tenant"][0]
    dep.update(site_name="dc-east", labels=[{"key": "env", "value": "prod"}, {"key": "tier", "value": "web"}],
               display_name=None)
    code, out = bot.run("deployments list")
    assert code == 0, out
    row = dict(zip(HEADER, _table(out)[1], strict=True))
    assert row["site_name"] == "dc-east" and row["labels"] == "env:prod,tier:web" and row["display_name"] == ""


def test_an_unknown_tenant_is_a_clear_failure(bot) -> None:
    code, out = bot.run("deployments list -t nope")
    assert code == 1
    assert "tenant nope does not exist on manager production" in out and "Traceback" not in out


def test_no_deployments_says_so(bot) -> None:
    bot.sim.state.deployments["default_tenant"].clear()
    code, out = bot.run("deployments list")
    assert code == 0 and "Showing 0 of 0 deployments on production (tenant default_tenant)" in out, out


def test_a_viewer_may_list(make_bot) -> None:
    viewer = make_bot(env={"BOT_SHELL_ROLE": "viewer"})
    code, out = viewer.run("deployments list -a")
    assert code == 0 and "Showing 4 of 4" in out, out


def _recording(app: Callable[..., Iterable[bytes]], seen: list[tuple[str, str, str]]) -> Callable[..., Any]:
    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        seen.append((environ["PATH_INFO"], environ["QUERY_STRING"], environ.get("HTTP_TENANT", "")))
        return app(environ, start_response)

    return wrapped


@pytest.mark.parametrize(("kwargs", "query", "tenant"), [
    ({}, "_all_tenants=False&_offset=0&_size=1000&_sort=created_at", "default_tenant"),
    ({"all_tenants": True}, "_all_tenants=True&_offset=0&_size=1000&_sort=created_at", "default_tenant"),
    ({"tenant": "prod-apps"}, "_all_tenants=False&_offset=0&_size=1000&_sort=created_at", "prod-apps"),
])
def test_the_request_is_the_one_cfy_sends(clock, tmp_path, kwargs: dict[str, Any], query: str, tenant: str) -> None:
    sim = Simulator(now=clock.time, sleep=clock.sleep, data_dir=str(tmp_path / "sim"))
    seed_demo(sim)
    seen: list[tuple[str, str, str]] = []
    settings = ManagerSettings(name="production", urls=("http://production.test",), username="admin",
                               password="admin")
    client = Manager(settings, transport=wsgi_transport({"production.test": _recording(sim.wsgi, seen)}))
    page = client.list_deployments(**kwargs)
    assert seen[-1] == ("/api/v3.1/deployments", query, tenant)
    assert page.total == len(page.items) > 0


def test_cells() -> None:
    assert cell(None) == "" and cell([]) == "" and cell("") == ""
    assert cell(False) == "False" and cell(True) == "True"
    assert cell("2026-11-29T02:00:00.123Z") == "2026-11-29 02:00:00.123"
    assert cell(["a", "b"]) == "a,b" and cell([{"key": "k", "value": "v"}]) == "k:v"
    assert cell("web-prod") == "web-prod"
