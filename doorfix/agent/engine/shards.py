"""Shards of centers: how a fleet divides a playbook's work into runs that go side by side.

With ``[fleet] shards = N`` (8 by default), every center belongs to one of ``N`` shards (a
hash of its id, so a center keeps its shard whatever other centers come and go), and each
tick of a fleet's playbook is one run per shard: a run reads, diagnoses and fixes only the
centers of its shard. Each shard's runs hold their own locks (``cloud@2/8``, the scope of
:mod:`~doorfix.agent.engine.scopes` at one shard), so replicas work different shards at the
same time, a replica killed mid-run stalls only its shard's centers until one takes it over,
and the playbooks of one center take turns.

The rule that keeps shards apart: **a run touches only what belongs to its shard's
centers**: the centers it reads (door logs, licenses, hardware), the events of ACA's feed it
decides (the others are another shard's, left unseen for it), the incidents it settles,
retries or verifies (by the center of their subject), and, after a crash, the actions and
runs it reconciles. An incident whose subject names no center is shard 0's.

A run with no shard (``doorfix run``, a ticket's ``diagnose``, the single-node daemon's)
holds every shard's locks, so it works every center while no shard's run acts. With one
shard nothing of this shows: the scopes keep their plain names.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


def shard_of(center_id: str | None, count: int) -> int:
    """The shard (0-based) of a center among ``count``: a stable hash of its id.

    BLAKE2b, not a checksum: ids that differ in a digit (``c-1``, ``c-2``) still spread.
    """
    if count <= 1 or not center_id:
        return 0
    digest = hashlib.blake2b(center_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % count


@dataclass(frozen=True, slots=True)
class Shard:
    """One shard of ``count``: the centers whose id hashes to ``index``."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count:
            raise ValueError(f"shard {self.index} is not one of {self.count}")

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @classmethod
    def parse(cls, text: str) -> Shard:
        """A shard from its text form (``2/8``)."""
        index, _, count = text.partition("/")
        return cls(int(index), int(count))

    def holds(self, center_id: str | None) -> bool:
        """Whether the center is this shard's."""
        return shard_of(center_id, self.count) == self.index

    def scope(self, scope: str) -> str:
        """The name of a scope at this shard (its locks' and turns' name)."""
        return f"{scope}@{self}" if self.count > 1 else scope


def all_shards(count: int) -> tuple[Shard, ...]:
    """Every shard of ``count``."""
    return tuple(Shard(i, count) for i in range(max(1, count)))
