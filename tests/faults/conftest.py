"""Fixtures of the fault tests: the demo world on a manual clock, and quiet, restored logging."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import structlog
from faultkit import World, make_world


@pytest.fixture
async def world() -> AsyncIterator[World]:
    """The demo world with an agent on it; closed afterwards."""
    harness = make_world()
    try:
        yield harness
    finally:
        await harness.aclose()


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Some tests configure structlog as the CLI does; put it back after each test."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)
