"""A real browser (Debian's Chromium, driven by Playwright) against ``doorfix demo --console``.

Nothing downloads a browser: Playwright is given ``/usr/bin/chromium``; without it (or
without the ``playwright`` package) these tests skip, saying why. Each test's screenshots go
to its ``tmp_path``; the *Needs a person* page is also written to ``docs/`` for the README.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from support.console import APPROVE, CHROMIUM, VIEW, DemoConsole, read_console
from support.polling import wait_for
from support.processes import DOORFIX


@pytest.fixture(scope="module")
def demo_console() -> Iterator[DemoConsole]:
    """``doorfix demo --console`` with both tokens, until the module is done."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOORFIX_")}
    env |= {
        "DOORFIX_CONSOLE_VIEW_TOKEN": VIEW,
        "DOORFIX_CONSOLE_APPROVE_TOKEN": APPROVE,
        "PYTHONUNBUFFERED": "1",
        "COLUMNS": "200",
    }
    proc = subprocess.Popen(
        [*DOORFIX, "demo", "--console", "--seconds", "300", "--approve", "renew_license"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    demo = DemoConsole(proc)
    threading.Thread(target=read_console, args=(demo,), daemon=True).start()
    try:
        wait_for(lambda: bool(demo.url) or proc.poll() is not None, timeout=30, what="console")
        assert demo.url, "".join(demo.out)
        yield demo
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, through Playwright."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium); no browser is downloaded")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install '.[test]')"
    )
    with sync_api.sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield chromium
        finally:
            chromium.close()
