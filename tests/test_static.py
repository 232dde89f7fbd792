"""Static checks as tests: mypy (strict) and ruff over the checked packages.

Their settings live in pyproject.toml ([tool.mypy], [tool.ruff]); both tools are pinned
in the ``test`` extra, so a new release of either cannot fail the suite on its own.

mypy checks each package under the name it is installed as (``smpphub.router``, not
``router``), so that imports between packages resolve as they do at run time. The
editable install maps folders to names with an import hook mypy cannot follow, so
typecheck/ holds the same mapping as symbolic links (``typecheck/smpphub/router`` ->
``router/``) and [tool.mypy] puts it on mypy's path.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: The packages held to the checks: installed name -> folder of the repository.
CHECKED = {"smppcore": "smppcore", "smpphub.router": "router"}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_mypy_is_clean_over_every_module_of_the_checked_packages() -> None:
    result = run("mypy", *(arg for package in CHECKED for arg in ("-p", package)))
    assert result.returncode == 0, f"mypy found problems:\n{result.stdout}{result.stderr}"
    # every module was checked (a package mypy could not map would be missing from the count)
    modules = sum(len(list((ROOT / folder).rglob("*.py"))) for folder in CHECKED.values())
    checked = re.search(r"no issues found in (\d+) source files", result.stdout)
    assert checked is not None and int(checked.group(1)) == modules, result.stdout


def test_ruff_is_clean_over_the_checked_folders() -> None:
    result = run("ruff", "check", *CHECKED.values())
    assert result.returncode == 0, f"ruff found problems:\n{result.stdout}{result.stderr}"


@pytest.mark.parametrize("package", [p for p, folder in CHECKED.items() if p != folder])
def test_typecheck_maps_a_package_to_the_folder_it_is_installed_from(package: str) -> None:
    package_dir = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    assert package_dir[package] == CHECKED[package]
    link = ROOT / "typecheck" / Path(*package.split("."))
    assert link.is_symlink() and link.resolve() == (ROOT / CHECKED[package]).resolve()
