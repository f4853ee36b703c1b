"""A regular (non-editable) install must ship every package and the runbook data files."""

from __future__ import annotations

import tomllib
from pathlib import Path

from setuptools import find_packages

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
