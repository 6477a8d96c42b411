"""The time-to-fix benchmark's bound (``bench/_least.py``) against every order of the requests.

The bound says no agent could do better. These tests hold it to that: on small generated
sets of refusals, the earliest-deadline-first figure equals the best over *every* order of
the requests (tried one by one), and the percentile is the best over every set of refusals
left out. A bound that were too high would call a reachable target unreachable.
"""

from __future__ import annotations

import importlib.util
import itertools
import math
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

_PATH = Path(__file__).resolve().parents[2] / "bench" / "_least.py"
_SPEC = importlib.util.spec_from_file_location("bench_least", _PATH)
assert _SPEC is not None
assert _SPEC.loader is not None
least = importlib.util.module_from_spec(_SPEC)
sys.modules["bench_least"] = least
_SPEC.loader.exec_module(least)
Need = least.Need


def times_of_order(needs: list[Need], order: tuple[str, ...], rate: float) -> list[float]:
    """Each refusal's time to fix, sorted, when the requests go one by one in ``order``."""
    step = 1.0 / rate
    release: dict[str, float] = {}
    for i, need in enumerate(needs):
        release[f"own {i}"] = need.released
        for share in need.shares:
            key = f"{need.released} {share}"
            release[key] = min(release.get(key, math.inf), need.released)
    done: dict[str, float] = {}
    now = 0.0
    for label in order:  # each as soon as it is released and the one before it is done
        now = max(now, release[label]) + step
        done[label] = now
    times = []
    for i, need in enumerate(needs):
        mine = [f"own {i}"] if need.requests else []
        mine += [f"{need.released} {share}" for share in need.shares]
        last = max([need.released] + [done[label] for label in mine])
        times.append(last + need.tail - need.refused)
    return sorted(times)


def every_order(needs: list[Need]) -> set[tuple[str, ...]]:
    """Every order of the requests: a refusal's own ones, then each shared read once."""
    labels: list[str] = []
    shared: set[str] = set()
    for i, need in enumerate(needs):
        labels += [f"own {i}"] * need.requests
        shared |= {f"{need.released} {share}" for share in need.shares}
    labels += sorted(shared)
    return set(itertools.permutations(labels))


needs_st = st.lists(
    st.builds(
        Need,
        released=st.sampled_from([0.0, 1.0, 2.0]),
        refused=st.floats(min_value=-2.0, max_value=2.0),
        requests=st.integers(min_value=0, max_value=2),
        tail=st.sampled_from([0.0, 5.0]),
        shares=st.frozensets(st.sampled_from(["inventories", "bookings"]), max_size=1),
    ),
    min_size=1,
    max_size=3,
)


@settings(max_examples=150, deadline=None)
@given(needs=needs_st, rate=st.sampled_from([1.0, 2.0, 20.0]))
def test_the_least_worst_is_the_best_order(needs: list[Need], rate: float) -> None:
    best = min(times_of_order(needs, order, rate)[-1] for order in every_order(needs))
    assert math.isclose(least.least_worst(needs, rate), best, abs_tol=1e-9)


@settings(max_examples=100, deadline=None)
@given(needs=needs_st, rate=st.sampled_from([1.0, 20.0]), q=st.sampled_from([0.5, 0.95]))
def test_the_percentile_is_the_best_over_every_order(
    needs: list[Need], rate: float, q: float
) -> None:
    # nearest rank: the ceil(q n)-th smallest time of an order
    keep = max(1, math.ceil(q * len(needs)))
    best = min(times_of_order(needs, order, rate)[keep - 1] for order in every_order(needs))
    bound = least.least_percentile(needs, rate, q)
    assert bound <= best + 1e-9  # never above what some order reaches
    if keep == len(needs):
        assert math.isclose(bound, best, abs_tol=1e-9)  # nobody left out: exact


def test_with_no_rate_limit_the_bound_is_the_floor() -> None:
    needs = [
        Need(released=5.0, refused=1.0, requests=4, tail=5.0, shares=frozenset({"events"})),
        Need(released=5.0, refused=3.0, requests=1, tail=0.0),
    ]
    assert least.least_worst(needs, math.inf) == 9.0  # 5 - 1 + 5: the wait and the push


def test_requests_at_the_rate_limit_add_to_the_floor() -> None:
    # two toggles refused at once, 4 requests each and one shared read at 20/s: whichever
    # goes second has its last request 9 requests after its poll, then the push
    needs = [
        Need(released=5.0, refused=1.0, requests=4, tail=5.0, shares=frozenset({"events"})),
        Need(released=5.0, refused=1.0, requests=4, tail=5.0, shares=frozenset({"events"})),
    ]
    assert math.isclose(least.least_worst(needs, 20.0), 4.0 + 9 / 20 + 5.0)
    # the p50 of two may leave the second out: the first's 5 requests only
    assert math.isclose(least.least_percentile(needs, 20.0, 0.5), 4.0 + 5 / 20 + 5.0)
