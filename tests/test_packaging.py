"""The wheel as a user installs it: no generic top-level names, a plugin that works in their project.

A user's project may well have packages of its own called ``simulator``, ``router`` or
``benchmarks``. Installing smpphub must not shadow them: not by files in
site-packages, and not by the pytest plugin importing a module of that name before
the user's tests do. Everything here runs in one fresh virtual environment with the
wheel built by the README's install block (tests/venvkit.py), pytest-asyncio in its
default (strict) mode, no configuration of ours.
"""

from __future__ import annotations

import re
import tomllib
import zipfile
from pathlib import Path

import pytest
from venvkit import REPO, FreshVenv, fresh_venv

GENERIC = ("router", "simulator", "benchmarks")

USER_TEST = '''
from pathlib import Path

import pytest
import smppcore
from benchmarks import timing
from router import rules
from simulator import carrier

HERE = Path(__file__).resolve().parent


def test_the_projects_own_packages_are_the_ones_imported():
    for module in (carrier, rules, timing):
        assert Path(module.__file__).resolve().is_relative_to(HERE), module.__file__
        assert module.OWNER == "the user"


def test_the_smpphub_plugin_is_active(pytestconfig):
    plugin = pytestconfig.pluginmanager.get_plugin("smpphub")
    assert plugin is not None and plugin.__name__ == "smpphub.simulator.pytest_plugin"


@pytest.mark.asyncio
async def test_an_esme_against_the_smsc_fixture(smsc):
    async with smppcore.connect(smsc.host, smsc.port, system_id="me", password="pw") as client:
        await client.submit_sm(destination_addr="447700900123", short_message=b"hello")
    (message,) = await smsc.wait_for_messages(1)
    assert message.text == "hello"
'''


@pytest.fixture(scope="session")
def venv(request: pytest.FixtureRequest) -> FreshVenv:
    return fresh_venv(request)


@pytest.fixture(scope="module")
def project(venv: FreshVenv) -> Path:
    folder = venv.project("user-project")
    (folder / "test_user.py").write_text(USER_TEST)
    return folder


def version() -> str:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def test_the_wheel_holds_only_smppcore_and_smpphub(venv: FreshVenv) -> None:
    names = zipfile.ZipFile(venv.wheel).namelist()
    assert {name.split("/")[0] for name in names} == {"smppcore", "smpphub", f"smpphub-{version()}.dist-info"}
    for shipped in ("smppcore/py.typed", "smpphub/router/hub.example.toml", "smpphub/simulator/pytest_plugin.py",
                    "smpphub/bench/loadgen.py", "smpphub/router/store/sqlite.py", "smpphub/cli.py"):
        assert shipped in names


def test_site_packages_has_no_generic_top_level_names(venv: FreshVenv) -> None:
    site = venv.site_packages()
    assert (site / "smpphub").is_dir() and (site / "smppcore").is_dir()
    for name in GENERIC:
        assert not (site / name).exists() and not (site / f"{name}.py").exists(), name
    done = venv.run([str(venv.bin("python")), "-c", "import router"], venv.root)  # from outside any project
    assert "No module named 'router'" in done.stderr


@pytest.mark.parametrize("command", [["pytest"], ["python", "-m", "pytest"]], ids=["pytest", "python -m pytest"])
def test_a_user_project_with_its_own_simulator_router_benchmarks(
    venv: FreshVenv, project: Path, command: list[str],
) -> None:
    done = venv.run([*command, "-p", "no:cacheprovider", "-rA"], project)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    # no warning raised while the tests ran (pytest-asyncio's own note on its unset options is the user's business)
    assert "3 passed" in out and "warnings summary" not in out, out
    assert re.search(r"asyncio: mode=(Mode\.)?strict", out, re.I), out  # pytest-asyncio's default, not our auto mode


def test_smpphub_version(venv: FreshVenv) -> None:
    for command in (["smpphub", "--version"], ["python", "-m", "smpphub", "--version"]):
        done = venv.run(command, venv.root)
        assert (done.returncode, done.stdout.strip()) == (0, f"smpphub {version()}"), done.stderr


def test_readme_install_block_prints_the_version(venv: FreshVenv) -> None:
    assert venv.install_output.strip().splitlines()[-1] == f"smpphub {version()}"


def test_smpphub_demo_runs(venv: FreshVenv) -> None:
    done = venv.run(["smpphub", "demo", "--duration", "2"], venv.root, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
