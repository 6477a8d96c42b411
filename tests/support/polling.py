"""Waiting for something that happens in another thread or process: poll, with a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable, Sized

#: seconds between two looks at the condition
POLL_SECONDS = 0.02


def wait_for(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(POLL_SECONDS)


def wait_for_none(left: Callable[[], Sized], *, timeout: float, what: str) -> None:
    """Poll ``left`` until it is empty; fail naming ``what`` and what is still left."""
    try:
        wait_for(lambda: not len(left()), timeout=timeout, what=what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; still left: {left()}") from None
