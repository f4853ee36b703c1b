"""DESIGN §1/§10: Slack only in bot/slack/, httpx only in bot/cloudify/, SQLite only in bot/store/."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# module prefix -> the only files that may import it (a path ending in "/" allows the files of that package)
ALLOWED = {
    "slack_bolt": {"bot/slack/"},
    "slack_sdk": {"bot/slack/"},
    "httpx": {"bot/cloudify/"},
    "sqlite3": {"bot/store/"},
    "sqlite_utils": {"bot/store/"},
    "boto3": {"bot/archive/s3.py"},
    "botocore": {"bot/archive/s3.py"},
}
PACKAGES = ("bot", "commands", "simulator")
OUTER = ("bot.slack", "bot.cloudify", "bot.store", "bot.front.shell", "bot.front.cli")  # commands/ reach none of these


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _allowed(rel: str, allowed: set[str]) -> bool:
    return any(rel.startswith(a) if a.endswith("/") else rel == a for a in allowed)


def _files(*packages: str) -> list[Path]:
    return [p for pkg in packages for p in (ROOT / pkg).rglob("*.py")]


def test_foreign_libraries_stay_in_their_module() -> None:
    bad = []
    for path in _files(*PACKAGES):
        rel = path.relative_to(ROOT).as_posix()
        for name in _imports(path):
            top = name.split(".")[0]
            if top in ALLOWED and not _allowed(rel, ALLOWED[top]) and not rel.startswith("simulator/"):
                bad.append(f"{rel} imports {name}")
    assert not bad, bad


def test_commands_do_not_reach_outward() -> None:
    bad = []
    for path in _files("commands"):
        for name in _imports(path):
            if name.split(".")[0] in ("slack_bolt", "slack_sdk", "httpx", "sqlite3", "sqlite_utils", "simulator"):
                bad.append(f"{path.name} imports {name}")
            if any(name == m or name.startswith(m + ".") for m in OUTER):  # bot.cloudify is a package
                bad.append(f"{path.name} imports {name}")
    assert not bad, bad


def test_simulator_is_self_contained() -> None:
    bad = [f"{p.name} imports {n}" for p in _files("simulator") for n in _imports(p)
           if n.split(".")[0] in ("bot", "commands", "httpx", "requests", "flask")]
    assert not bad, bad


def test_no_module_level_slack_app_or_io() -> None:
    for path in _files("bot", "commands"):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, (ast.Assign, ast.Expr)) and isinstance(getattr(node, "value", None), ast.Call):
                func = node.value.func
                name = getattr(func, "id", getattr(func, "attr", ""))
                assert name not in ("App", "open", "connect", "Store", "WebClient", "load_dotenv"), (
                    f"{path.name}: {name}() at import time")
