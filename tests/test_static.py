"""Static checks as tests: mypy (strict for smppcore) and ruff over the checked packages.

Their settings live in pyproject.toml ([tool.mypy], [tool.ruff]); both tools are pinned
in the ``test`` extra, so a new release of either cannot fail the suite on its own.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: The packages held to the checks (folders of the repository).
CHECKED = ["smppcore"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(
    "command",
    [
        ("mypy", *CHECKED),
        ("ruff", "check", *CHECKED),
    ],
    ids=["mypy", "ruff"],
)
def test_static_check_is_clean(command: tuple[str, ...]) -> None:
    result = run(*command)
    assert result.returncode == 0, f"{' '.join(command)} found problems:\n{result.stdout}{result.stderr}"
