"""Test kit: smpphub as a user gets it, in a fresh virtual environment of its own.

The editable install the suite runs under hides what the wheel gets wrong (a module
left out of the package list, a generic top-level name, a plugin that only works with
our own pytest configuration). So the packaging and README tests build the wheel from
a clean copy of the checkout by running the README's own install block ("Run it for
real", its ``/opt/smpphub`` replaced by a temporary folder), add what a user's test
project has (pytest, pytest-asyncio with its default configuration, smpplib), and run
commands there. One environment per test session, shared by every test module that
asks for it (``fresh_venv(request)`` from a session-scoped fixture), removed when the session ends.

Also here: reading a README's fenced code blocks, and the user project with its own
packages named like ours (``simulator``, ``router``, ``benchmarks``).
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

#: where the README's "Run it for real" installs; the tests install into a temporary folder instead
README_VENV = "/opt/smpphub"

#: what a user's test project installs beside smpphub
USER_TEST_PACKAGES = ("pytest", "pytest-asyncio", "smpplib")

#: a user's own packages, named like the repository's folders; each test imports one module of each
USER_PACKAGES = {
    "simulator/__init__.py": "",
    "simulator/carrier.py": 'OWNER = "the user"\n',
    "router/__init__.py": "",
    "router/rules.py": 'OWNER = "the user"\n',
    "benchmarks/__init__.py": "",
    "benchmarks/timing.py": 'OWNER = "the user"\n',
}

_FENCE = re.compile(r"^( *)```(\S*)\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced code block of a README: where it is, its language tag and its text."""

    readme: str
    line: int
    lang: str
    code: str

    @property
    def first_line(self) -> str:
        return self.code.splitlines()[0] if self.code else ""

    def __str__(self) -> str:
        return f"{self.readme}:{self.line} ({self.lang}) {self.first_line!r}"


def fenced_blocks(readme: str) -> list[Block]:
    """Every fenced block of ``readme`` (a path from the repository root), indentation of its fence removed."""
    blocks: list[Block] = []
    lines = (REPO / readme).read_text().splitlines()
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        indent, lang = len(opening.group(1)), opening.group(2)
        start = i + 1
        i = start
        while not lines[i].strip().startswith("```"):
            i += 1
        body = [line[indent:] if line[:indent].isspace() else line for line in lines[start:i]]
        blocks.append(Block(readme, start, lang, "\n".join(body) + "\n"))
        i += 1
    return blocks


def block_starting(first_line: str, readme: str = "README.md") -> Block:
    """The one fenced block of ``readme`` whose first line starts with ``first_line``."""
    (found,) = [b for b in fenced_blocks(readme) if b.first_line.startswith(first_line)]
    return found


def readme_install_block() -> Block:
    """The README's block that builds the wheel and installs it into its own virtual environment."""
    (block,) = [b for b in fenced_blocks("README.md") if b.lang == "sh" and "pip wheel" in b.code]
    return block


@dataclass(frozen=True)
class FreshVenv:
    """A virtual environment with the smpphub wheel and a user's test packages, nothing else."""

    root: Path
    venv: Path
    wheel: Path
    install_output: str

    def bin(self, name: str) -> Path:
        return self.venv / "bin" / name

    def env(self) -> dict[str, str]:
        """The environment of a shell in which this virtual environment is active, and no pytest of ours."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PYTHON", "VIRTUAL_ENV", "COV_"))}
        env["PATH"] = f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env["VIRTUAL_ENV"] = str(self.venv)
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        return env

    def run(
        self, args: list[str], cwd: Path, timeout: float = 120, stdin: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            args, cwd=cwd, env=self.env(), input=stdin, capture_output=True, text=True, timeout=timeout,
        )

    def sh(self, script: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """``script`` run by bash, stopping at the first command that fails."""
        return self.run(["bash", "-euo", "pipefail", "-c", script], cwd, timeout)

    def project(self, name: str) -> Path:
        """A new user project folder holding the user's own simulator/router/benchmarks packages."""
        folder = self.root / name
        for rel, text in USER_PACKAGES.items():
            path = folder / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        return folder

    def site_packages(self) -> Path:
        where = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
        done = self.run([str(self.bin("python")), "-c", where], self.root)
        return Path(done.stdout.strip())


def _copy_checkout(dest: Path) -> None:
    """The files of the checkout a clone would have (tracked or new, not ignored): no build/, .venv, caches."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO, capture_output=True, check=True,
    ).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        source = REPO / rel
        if source.is_file():  # a tracked file another change deleted is not part of the copy
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def _build(root: Path) -> FreshVenv:
    source = root / "checkout"
    _copy_checkout(source)
    venv = root / "venv"
    script = readme_install_block().code.replace(README_VENV, str(venv))
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"  # python3: this interpreter
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))} | {"PATH": path}
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=source, env=env,
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        problem = f"the README's install block failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        pytest.fail(problem, pytrace=False)
    (wheel,) = (source / "dist").glob("smpphub-*.whl")
    made = FreshVenv(root, venv, wheel, done.stdout)
    extra = made.run([str(made.bin("pip")), "install", "-q", *USER_TEST_PACKAGES], root, timeout=600)
    if extra.returncode != 0:
        pytest.fail(f"pip install {' '.join(USER_TEST_PACKAGES)} failed:\n{extra.stderr}", pytrace=False)
    return made


_made: dict[str, FreshVenv] = {}


def fresh_venv(request: pytest.FixtureRequest) -> FreshVenv:
    """The session's fresh virtual environment, built on first use.

    ``request`` is a session-scoped fixture's: the folder is removed when the session's
    fixtures are torn down (before tests/conftest.py looks for anything left behind).
    """
    assert request.scope == "session", "one environment per session: ask from a session-scoped fixture"
    if "venv" not in _made:
        root = Path(tempfile.mkdtemp(prefix="smpphub-fresh-"))
        request.addfinalizer(_made.clear)
        request.addfinalizer(functools.partial(shutil.rmtree, root, ignore_errors=True))
        _made["venv"] = _build(root)
    return _made["venv"]
