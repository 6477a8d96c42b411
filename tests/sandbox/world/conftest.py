"""Fixtures of the world tests: the demo world on the shared manual clock, and its manifest."""

from __future__ import annotations

import pytest

from doorfix.clock import ManualClock
from doorfix.sandbox.scenarios.registry import build_scenario, demo_manifest
from doorfix.sandbox.world.world import World


@pytest.fixture
def demo(clock: ManualClock) -> World:
    """The demo world, built at the shared clock's start."""
    return build_scenario("demo", seed=0, clock=clock)


@pytest.fixture
def manifest(demo: World) -> dict[str, dict[str, str]]:
    """Fault kind (and named extras) -> subject ids of the demo."""
    return demo_manifest(demo)
