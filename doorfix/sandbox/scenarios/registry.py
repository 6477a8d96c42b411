"""Named scenarios: seeded worlds anchored at the clock's now.

``build_scenario("demo", seed=0, clock=clock)`` twice from the same instant builds the same
world, byte for byte (:meth:`World.fingerprint`). ``demo`` (:mod:`scenario_demo`) holds exactly
one instance of every world fault, each on its own people, lock and door, with people retrying
on a schedule so a fix can be seen to work; ``scale`` (:mod:`scenario_scale`) is the big,
healthy world the benchmarks build; ``empty`` is nothing at all.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from doorfix.clock import Clock
from doorfix.sandbox.scenarios.demo import build_demo, demo_manifest
from doorfix.sandbox.scenarios.scale import build_scale
from doorfix.sandbox.world.world import World

__all__ = ["SCENARIOS", "ScenarioSpec", "build_scenario", "demo_manifest"]


@dataclass(frozen=True, slots=True)
class ScenarioSpec:
    """A named scenario: what it is, its parameters with their defaults, and its builder."""

    name: str
    description: str
    params: Mapping[str, object]
    build: Callable[..., None]


def build_empty(w: World) -> None:
    """Nothing at all: tests build their own world on top."""


#: Every scenario by name, with its parameters' defaults.
SCENARIOS: Mapping[str, ScenarioSpec] = MappingProxyType(
    {
        "empty": ScenarioSpec("empty", "no entities", MappingProxyType({}), build_empty),
        "demo": ScenarioSpec(
            "demo",
            "three centers, one instance of every world fault, people retrying",
            MappingProxyType({"history_minutes": 60, "hours": 4.0, "every_minutes": 10}),
            build_demo,
        ),
        "scale": ScenarioSpec(
            "scale",
            "many healthy centers and a million door-log rows",
            MappingProxyType(
                {
                    "centers": 1000,
                    "locks_per_center": 5,
                    "doors_per_center": 4,
                    "users_per_center": 20,
                    "days": 7,
                    "door_logs": 1_000_000,
                    "failure_rate": 0.01,
                }
            ),
            build_scale,
        ),
    }
)


#: a build leaving more new objects than this is collected once at its end
_BIG_BUILD = 100_000


def build_scenario(name: str, *, seed: int = 0, clock: Clock, **params: object) -> World:
    """Build the named scenario at ``clock.now()``; unknown names or parameters raise."""
    spec = SCENARIOS.get(name)
    if spec is None:
        raise ValueError(f"unknown scenario {name!r}; known: {sorted(SCENARIOS)}")
    unknown = set(params) - set(spec.params)
    if unknown:
        raise TypeError(f"scenario {name!r} takes no parameter(s) {sorted(unknown)}")
    world = World(clock, seed=seed, scenario=name)
    # a big build allocates millions of objects that all live on: collecting during it
    # only rescans them, over and over
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        spec.build(world, **{**spec.params, **params})
    finally:
        built = gc.get_count()[0]  # objects the build left for the collector to track
        if was_enabled:
            gc.enable()
    if was_enabled and built > _BIG_BUILD:
        # the first full collection after a big build walks every object it made (a quarter
        # of a second for the scale world): take it now, not in whichever request comes next
        gc.collect()
    world.advance()
    return world
