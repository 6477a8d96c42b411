"""Fixtures shared across the test tree: the sandbox in process, on a manual clock.

Helpers shared across the tree (polling, doorfix as a subprocess, the demo harness) live in
``tests/support/``, imported as ``support``: pytest puts ``tests/`` on ``sys.path`` when it
loads this file, before any test module (see ``support/__init__.py``).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import pytest
from hypothesis import settings

from doorfix.clock import ManualClock
from doorfix.sandbox.api.auth import SandboxCredentials
from doorfix.sandbox.api.transport import InProcessSandbox
from doorfix.sandbox.faults.api import ApiFaults
from doorfix.sandbox.scenarios.registry import build_scenario

# CI (``$CI`` set, as .ci/run runs) draws the same hypothesis examples on every run, so a
# submission never fails on a new draw; anywhere else each run explores new inputs, and a
# failure found there is pinned with ``@example`` (see test_fuzz_parsers.py)
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """An empty PostgreSQL database's URL; skips, saying why, where no server can be started.

    The server is CI's (``$DOORFIX_TEST_PG_DSN``, which ``.ci/run`` exports) or a throwaway
    cluster that ``tests/support/postgres.py`` starts with ``.ci/postgres``.
    """
    from support import postgres

    dsn, why = postgres.server_dsn()
    if dsn is None:
        pytest.skip(f"PostgreSQL test skipped: {why}")
    url = postgres.fresh_database(dsn)
    try:
        yield url
    finally:
        postgres.drop_database(dsn, url)


#: every sandbox test starts here: a Monday morning, inside office hours
SANDBOX_START = datetime(2026, 11, 16, 8, 0, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> ManualClock:
    """A manual clock at :data:`SANDBOX_START`; tests step it, nothing sleeps."""
    return ManualClock(SANDBOX_START)


@pytest.fixture
async def sandbox(clock: ManualClock) -> AsyncIterator[InProcessSandbox]:
    """The demo world behind the sandbox app, with one raw ``httpx.AsyncClient`` per system.

    ``sandbox.cloud`` / ``.aca`` / ``.clp`` / ``.clp_identity`` / ``.control`` talk to the app
    in process (``SandboxTransport``); ``sandbox.world``, ``.faults`` and ``.state`` reach
    behind the API; ``await sandbox.cloud_token()``, ``await sandbox.clp_token()`` and
    ``sandbox.aca_headers()`` give working credentials.
    """
    world = build_scenario("demo", seed=0, clock=clock)
    box = InProcessSandbox.create(
        world, credentials=SandboxCredentials(), api_faults=ApiFaults(seed=0)
    )
    async with box:
        yield box
