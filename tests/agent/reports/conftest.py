"""Fixtures of the report tests: the demo after some runs, a webhook receiver."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import structlog
from reportkit import Demo, make_demo
from support.receivers import Webhook


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[Demo]:
    """The demo on day one, before any run."""
    harness = make_demo(tmp_path / "journal.sqlite3")
    try:
        yield harness
    finally:
        await harness.agent.clients.aclose()
        harness.agent.journal.close()


@pytest.fixture
async def three_days(demo: Demo) -> Demo:
    """The demo after three days: every playbook each morning (the iq sync verified on day 2)."""
    await demo.run_all()
    demo.clock.advance(timedelta(days=1))
    await demo.run_all()
    demo.clock.advance(timedelta(days=1, hours=3))
    await demo.run_all()
    return demo


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    """A running webhook receiver."""
    with Webhook() as running:
        yield running


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The commands configure structlog for the process; put it back after each test."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)
