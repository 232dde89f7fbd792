"""Test kit for browser tests: Debian's headless Chromium driven by Playwright.

Playwright's own browser download cannot work here (no network but the package
registries), so the tests drive the system's Chromium (`apt install chromium`, done by
tests/run.sh) through Playwright's ``executable_path``. The flags keep Chromium off the
network: without them it tries Google's hosts at every start and this machine refuses
them. Outside CI a missing Chromium skips the browser tests with the reason; under CI
(``CI`` set) it fails, as every other oracle does.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from typing import Any

import pytest

CHROMIUM_FLAGS = (
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)


def chromium_path() -> str:
    """The system Chromium, or skip (fail under CI) naming what is missing."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (tests/run.sh installs it with apt as root)")
        pytest.skip("chromium is not installed (tests/run.sh installs it with apt as root)")
    return path


@contextlib.asynccontextmanager
async def browser_page(**context_options: Any) -> AsyncIterator[Any]:
    """A fresh Playwright page in headless Chromium with an empty profile, closed after
    (``context_options``: more of Playwright's context options, e.g. ``http_credentials``)."""
    from playwright.async_api import async_playwright

    executable = chromium_path()
    profile = tempfile.mkdtemp(prefix="smpphub-chromium-")
    try:
        async with async_playwright() as pw:
            context = await pw.chromium.launch_persistent_context(
                profile, executable_path=executable, headless=True, args=list(CHROMIUM_FLAGS), **context_options)
            try:
                page = context.pages[0] if context.pages else await context.new_page()
                yield page
            finally:
                await context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
