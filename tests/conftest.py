"""Shared by every test: nothing may be left behind in the temp directory.

The tests, and the commands and benchmarks they start, make ``smpphub-*`` folders
(hub databases, demo runs, tshark homes). Each must remove its own, on failure too.
The session runs with a temp directory of its own (``TMPDIR``, inherited by the
processes it starts) so that another test session on the same machine cannot make
this one fail, nor this one leave anything in the machine's temp directory. Whatever
is still named ``smpphub-*`` in it at the end is reported as an error (at the
teardown of the session's last test), then removed.

Upstream SMSCs for the hub's tests: one is the ``smsc`` fixture of the simulator's own
pytest plugin (``smpphub.simulator.pytest_plugin``, loaded by its entry point), the one
ESME developers use, so the tests of the hub run on it too; several are ``smscs`` below.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from hubkit import simulator

from smpphub.simulator.app import RunningSimulator


@pytest.fixture(scope="session", autouse=True)
def no_temp_folders_left(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    tmp_path_factory.getbasetemp()  # pytest's own tmp_path folders stay where pytest keeps them
    private = Path(tempfile.mkdtemp(prefix="pytest-smpphub-tmp-"))
    saved_env, saved_tempdir = os.environ.get("TMPDIR"), tempfile.tempdir
    os.environ["TMPDIR"] = tempfile.tempdir = str(private)
    try:
        yield
        left = sorted(p.name for p in private.glob("smpphub-*"))
    finally:
        tempfile.tempdir = saved_tempdir
        if saved_env is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = saved_env
        shutil.rmtree(private, ignore_errors=True)
    assert not left, f"the tests left these in the temp directory: {', '.join(left)}"


@pytest.fixture
def smsc_names() -> tuple[str, ...]:
    """The upstreams ``smscs`` starts, by name; a module overrides it to name its own (as ``smsc_config``)."""
    return ("a", "b")


@pytest.fixture
async def smscs(smsc_names: tuple[str, ...]) -> AsyncIterator[dict[str, RunningSimulator]]:
    """A simulator per name of ``smsc_names``, keyed by it (what ``hub_config`` calls the upstreams), stopped after."""
    sims: dict[str, RunningSimulator] = {}
    try:
        for name in smsc_names:
            sims[name] = await simulator()
        yield sims
    finally:
        for sim in sims.values():
            await sim.close()
