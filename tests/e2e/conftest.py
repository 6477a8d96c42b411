"""The agent against the in-process demo sandbox, on a manual clock."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from support.demo import Demo, make_demo


@pytest.fixture
async def demo() -> AsyncIterator[Demo]:
    """The demo harness (a fresh world and agent); closes the agent's clients and journal."""
    harness = make_demo()
    try:
        yield harness
    finally:
        await harness.aclose()
