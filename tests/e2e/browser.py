"""Headless Chromium (Debian's package) through Playwright, for the page tests."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run",
        "--disable-dev-shm-usage"]


@asynccontextmanager
async def chromium(viewport: dict[str, int] | None = None) -> AsyncIterator:
    """A fresh browser context; skips (or fails under CI) when Chromium is missing."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: scripts/test.sh installs it")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            context = await browser.new_context(viewport=viewport or {"width": 1280,
                                                                      "height": 900},
                                                locale="pt-BR")
            yield context
        finally:
            await browser.close()
