"""Which acting runs exclude each other: a run holds the lock of every scope it may write.

A *scope* is a set of systems whose targets only a run holding the scope's lock writes:

* ``cloud``: the intercom cloud (``door-logs`` and ``license-renewal``: credentials,
  licenses, access groups, temp keys, holiday hours);
* ``aca-clp``: ACA and CLP (``aca-rejections``: the Access Matrix toggle, Sync Access).

A ticket run (``diagnose``) may act on any cause, so it holds every scope, taken in one order
(so two such runs never wait on each other crosswise). In one process, runs of different
scopes go at the same time: a card assigned by ``door-logs`` never waits for an Access Matrix
toggle's verification in ``aca-rejections``; runs of one scope take turns (the daemon's turns,
and the journal's run lock, :mod:`doorfix.agent.journal.lock`, which also keeps every other
process out while any run of this one acts).

A fleet divides each scope further by shard of centers (:mod:`~doorfix.agent.engine.shards`):
with ``[fleet] shards`` above one, a scope's locks and turns are named per shard
(``cloud@2/8``), a shard's run holds its shard's, and a run with no shard holds every shard's.

The rule that makes this safe: **a run settles only what its own scopes left** (see
:mod:`~doorfix.agent.engine.reconcile`). A live run holds the turn of every scope it writes,
so an action in flight in a scope this run holds, or a run left ``running`` whose scopes meet
this run's, was left by a run that is gone; anything else may be a live run's beside it.
"""

from __future__ import annotations

from collections.abc import Iterable

from doorfix.agent.engine.shards import Shard, all_shards, shard_of

#: each scope and the systems its runs write
SYSTEMS: dict[str, frozenset[str]] = {
    "aca-clp": frozenset({"aca", "clp"}),
    "cloud": frozenset({"cloud"}),
}
#: every scope, in the order a run holding several takes their locks
ALL: tuple[str, ...] = tuple(sorted(SYSTEMS))
#: each scheduled playbook's scopes; any other run (a ticket's ``diagnose``) holds them all
_PLAYBOOKS: dict[str, tuple[str, ...]] = {
    "door-logs": ("cloud",),
    "license-renewal": ("cloud",),
    "aca-rejections": ("aca-clp",),
}


def scopes_of(run_name: str, *, shard: Shard | None = None, shards: int = 1) -> tuple[str, ...]:
    """The scopes a run of this name holds, in lock order.

    A run of ``shard`` holds its playbook's scopes at that shard; a run with no shard, when
    the centers are divided in ``shards``, holds them at every shard.
    """
    base = _PLAYBOOKS.get(run_name, ALL)
    if shard is not None:
        return tuple(sorted(shard.scope(scope) for scope in base))
    return tuple(sorted(s.scope(scope) for scope in base for s in all_shards(shards)))


def scope_at(scope: str, center_id: str | None, shards: int) -> str:
    """The name of ``scope`` at the shard of a center (what a run there holds)."""
    return Shard(shard_of(center_id, shards), max(1, shards)).scope(scope)


def scope_of_system(system: str) -> str | None:
    """The scope that writes this system (None for ``none``: an escalation calls no API)."""
    for scope, systems in SYSTEMS.items():
        if system in systems:
            return scope
    return None


def meets(scopes: Iterable[str], held: Iterable[str]) -> bool:
    """True when the two sets of scopes share one."""
    return not set(scopes).isdisjoint(held)
