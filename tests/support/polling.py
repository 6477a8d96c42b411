"""Waiting for something that happens in another thread or process: poll, with a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable

#: seconds between two looks at the condition
POLL_SECONDS = 0.02


def wait_for(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(POLL_SECONDS)
