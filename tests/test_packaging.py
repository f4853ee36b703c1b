"""A regular (non-editable) install ships every package and the runbook data files; its process starts lean."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import tomllib
from pathlib import Path

from setuptools import find_packages

from bot.front.cli import UNUSED_OPTIONAL
from bot.archive.heap import keep_buffers_in_heap

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


def test_a_bot_process_imports_none_of_the_unused_optional_accelerators(tmp_path) -> None:
    """httpcore would import trio and sqlite-utils numpy/pandas whenever installed (0.3 s of every start)."""
    env = {**os.environ, "BOT_DATA_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    names = ("trio", "pandas", "numpy", "httpx._main")
    assert set(names) == set(UNUSED_OPTIONAL)
    probe = ("import runpy, sys, atexit; "
             f"atexit.register(lambda: print('LOADED', sorted(m for m in {names!r} if sys.modules.get(m)), "
             f"'ABSENT', sorted(m for m in {names!r} if m in sys.modules and sys.modules[m] is None))); "
             "sys.argv = ['cfy-bot', 'run', '--demo', 'status']; "
             "runpy.run_module('bot.front.cli', run_name='__main__')")
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "version 7.0.5" in out.stdout  # the command itself ran
    assert f"LOADED [] ABSENT {sorted(names)}" in out.stdout


def test_glibc_is_told_to_keep_download_buffers_in_the_heap() -> None:
    libc, _ = platform.libc_ver()
    assert keep_buffers_in_heap() is (sys.platform.startswith("linux") and libc == "glibc")
