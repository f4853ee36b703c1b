"""Declarations: every example parses to its own command; README's table equals `cfy-bot docs`."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import commands  # noqa: F401
from bot.spec.help import docs_table, help_reply
from bot.spec.parser import parse
from bot.spec.registry import REGISTRY

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("cmd", REGISTRY.all(), ids=lambda c: c.name)
def test_every_example_parses_to_its_own_command(cmd) -> None:
    assert cmd.examples, f"{cmd.name} has no example"
    for example in cmd.examples:
        parsed = parse(example, REGISTRY)
        assert parsed.command is cmd, f"{example!r} parsed to {parsed.command and parsed.command.name}"


@pytest.mark.parametrize("cmd", REGISTRY.all(), ids=lambda c: c.name)
def test_every_command_is_documented(cmd) -> None:
    assert cmd.summary and cmd.handler.__doc__
    for p in cmd.params:
        assert p.help, f"{cmd.name}: parameter {p.name} has no help text"


def test_readme_table_equals_docs() -> None:
    readme = (ROOT / "README.md").read_text()
    found = re.search(r"<!-- commands:start -->\n(.*?)\n<!-- commands:end -->", readme, re.S)
    assert found, "README.md lacks the commands block"
    assert found.group(1).strip() == docs_table(REGISTRY).strip(), "run `cfy-bot docs` and paste it into README.md"


def test_docs_command_prints_the_table() -> None:
    out = subprocess.run([sys.executable, "-m", "bot.front.cli", "docs"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0
    assert out.stdout.strip() == docs_table(REGISTRY).strip()


def test_help_hides_what_the_user_cannot_run() -> None:
    everything = help_reply(REGISTRY, (), lambda c: True)
    viewer = help_reply(REGISTRY, (), lambda c: c.permission == "viewer")
    assert len(viewer.table.rows) <= len(everything.table.rows)
    assert all(REGISTRY.lookup(r[0].split())[0].permission == "viewer" for r in viewer.table.rows)


def test_group_and_command_help() -> None:
    group = help_reply(REGISTRY, ("snapshot",), lambda c: True)
    assert "snapshots list" in group.text
    one = help_reply(REGISTRY, ("snapshots", "list"), lambda c: True)
    assert one.text.startswith("Usage: snapshots list")
    assert "Examples:" in one.text
