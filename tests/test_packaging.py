"""A regular (non-editable) install ships every package and the runbook data files; its process starts lean
because nothing heavy is imported before it is used, not because anything is patched or hidden."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import tomllib
from pathlib import Path

from setuptools import find_packages

from tests.sim_fixtures import served
from simulator import Simulator

ROOT = Path(__file__).resolve().parent.parent


def test_every_source_folder_is_a_package_that_setuptools_finds() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    include = config["tool"]["setuptools"]["packages"]["find"]["include"]
    found = set(find_packages(where=str(ROOT), include=include))
    folders = {p.parent.relative_to(ROOT).as_posix().replace("/", ".")
               for top in ("bot", "commands", "simulator") for p in (ROOT / top).rglob("*.py")
               if "__pycache__" not in p.parts}
    assert folders <= found, f"folders without __init__.py would be left out: {sorted(folders - found)}"


def test_runbook_data_files_are_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["bot"]
    assert any(list((ROOT / "bot").glob(p)) for p in patterns)
    assert all(list((ROOT / "bot").glob(p)) for p in patterns)


def test_the_console_script_is_the_entry_that_keeps_start_up_lean() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert config["project"]["scripts"]["cfy-bot"] == "bot.front.cli:entry"


LAZY = ("sqlite_utils", "boto3", "botocore", "slack_bolt", "slack_sdk", "simulator")


def _modules_after(args: list[str], env: dict[str, str],
                   cwd: Path) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run `cfy-bot ARGS` in a fresh interpreter; its result and which of LAZY it had imported at exit."""
    probe = ("import sys, atexit; "
             "atexit.register(lambda: print('IMPORTED', "
             f"sorted({{m.split('.')[0] for m in sys.modules}} & {set(LAZY)!r}))); "
             f"from bot.front.cli import main; sys.exit(main({args!r}))")
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60, cwd=cwd)
    line = next((x for x in out.stdout.splitlines() if x.startswith("IMPORTED ")), "")
    assert line, out.stdout + out.stderr
    return out, set(ast.literal_eval(line.removeprefix("IMPORTED ")))


def _clean_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOT_", "CLOUDIFY_", "SLACK_", "AWS_"))}
    return {**env, "BOT_DATA_DIR": str(tmp_path / "data"), "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)}


def test_run_status_against_a_manager_imports_no_slack_s3_or_simulator(tmp_path: Path) -> None:
    """`cfy-bot run status` talks to one manager and the store: Bolt, boto3 and the simulator stay unimported,
    and the store is plain sqlite3 (sqlite-utils would import numpy and pandas wherever they are installed)."""
    with served(Simulator(data_dir=str(tmp_path / "sim"))) as url:
        env = {**_clean_env(tmp_path), "CLOUDIFY_MANAGER_URL": url, "CLOUDIFY_MANAGER_NAME": "prod",
               "CLOUDIFY_USERNAME": "admin", "CLOUDIFY_PASSWORD": "admin", "BOT_SHELL_ROLE": "operator"}
        out, imported = _modules_after(["run", "status"], env, tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "prod" in out.stdout  # the command itself ran against the served manager
    assert imported == set(), imported


def test_help_and_docs_import_nothing_heavy(tmp_path: Path) -> None:
    """Commands that touch neither a manager nor the store import none of the heavy libraries."""
    out, imported = _modules_after(["docs"], _clean_env(tmp_path), tmp_path)
    assert out.returncode == 0, out.stderr
    assert imported == set(), imported


def _sources() -> list[Path]:
    return [p for top in ("bot", "commands") for p in (ROOT / top).rglob("*.py") if "__pycache__" not in p.parts]


OURS = ("bot", "commands", "simulator")


def _root(node: ast.expr) -> str:
    """The name an attribute/subscript chain starts from (`sys` for `sys.modules["x"]`)."""
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else ""


def test_no_module_patches_sys_modules_a_library_or_the_c_allocator() -> None:
    """No process-wide patches: nothing in bot/ or commands/ assigns into sys.modules or onto anything it
    imported from a library, calls setattr/sys.modules.* on one, imports a library's private module, or
    tunes glibc malloc (that is deployment environment: README, Procfile)."""
    offences = []
    for path in _sources():
        tree = ast.parse(path.read_text(), filename=str(path))
        where = path.relative_to(ROOT)
        foreign: set[str] = set()  # names bound to libraries' modules, classes and functions
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
                foreign |= {(a.asname or a.name).split(".")[0] for a in node.names if not a.name.startswith(OURS)}
            elif isinstance(node, ast.ImportFrom):
                modules = [node.module or ""]
                if node.level == 0 and not (node.module or "").startswith(OURS):
                    foreign |= {a.asname or a.name for a in node.names}
            else:
                continue
            if any(m == "ctypes" or "._" in m for m in modules):
                offences.append(f"{where}:{node.lineno}: imports {modules}")
        for node in ast.walk(tree):
            targets: list[ast.expr] = (node.targets if isinstance(node, ast.Assign) else [node.target]
                                       if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else [])
            offences.extend(f"{where}:{node.lineno}: {ast.unparse(target)} = ..." for target in targets
                            if isinstance(target, (ast.Attribute, ast.Subscript)) and _root(target) in foreign)
            if isinstance(node, ast.Call):
                func = ast.unparse(node.func)
                patches = func.startswith("sys.modules.") and not func.endswith(".get")
                patches |= func in ("setattr", "delattr") and bool(node.args) and _root(node.args[0]) in foreign
                patches |= func.endswith(("mallopt", "malloc_trim"))
                if patches:
                    offences.append(f"{where}:{node.lineno}: {ast.unparse(node)}")
    assert offences == []
