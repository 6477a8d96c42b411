"""How access travels: ACA's matrix → (push) → CLP's access groups → (propagation) → the IQs.

A matrix change reaches CLP ``push_delay_s`` later (never, for a user whose push is broken);
a CLP change reaches the IQs ``propagation_delay_s`` later, but only those online at that
moment; Sync Access loads every online IQ of a collection with exactly CLP's grants.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from doorfix.sandbox.world import rules
from doorfix.sandbox.world.model import IQ, Lock, MatrixCell, SyncJob, User, WorldError
from doorfix.sandbox.world.state import WorldState


def set_access_matrix(
    w: WorldState, user: User, lock: Lock, enabled: bool, now: datetime
) -> MatrixCell:
    """Switch a user's access to a lock; a change is pushed to CLP ``push_delay_s`` later."""
    if enabled and not rules.active_bookings_giving(w, user, lock.id, now):
        raise WorldError("no_booking", f"no active booking of {user.company_id} gives {lock.id}")
    key = (user.id, lock.id)
    cell = w.matrix.get(key)
    if cell is not None and cell.enabled == enabled:
        return cell
    was_enabled = cell.enabled if cell is not None else True
    cell = w.matrix[key] = MatrixCell(enabled=enabled, changed_at=now)
    # ACA pushes changes only: re-sending the same state does nothing, which is why the
    # runbook's force-sync is "disable, then enable again"
    if was_enabled != enabled:
        w.schedule(
            now + timedelta(seconds=w.settings.push_delay_s),
            f"aca_push {user.id} {lock.id} {enabled}",
            lambda at: _push(w, user, lock, enabled, at),
        )
    return cell


def _push(w: WorldState, user: User, lock: Lock, enabled: bool, at: datetime) -> None:
    """ACA's push of one matrix change into CLP's access groups."""
    if user.id not in w.push_broken:
        set_membership(w, user.clp_user_id, lock, enabled, at)


def set_membership(
    w: WorldState, platform_user_id: str, lock: Lock, member: bool, at: datetime
) -> None:
    """Put a platform user in (or out of) the CLP groups of a lock, then propagate."""
    changed: set[str] = set()
    for group in rules.groups_listing(w, lock.site_id, lock.id):
        if member == (platform_user_id in group.user_ids):
            continue
        if member:
            group.user_ids.add(platform_user_id)
        else:
            group.user_ids.discard(platform_user_id)
        changed.update(group.lock_ids)
    if not changed:
        return
    pairs = sorted((platform_user_id, lock_id) for lock_id in changed)
    for lock_id in sorted(changed):
        w.collection_changed_at[w.locks[lock_id].collection_id] = at
    w.schedule(
        at + timedelta(seconds=w.settings.propagation_delay_s),
        f"clp_propagate {platform_user_id}",
        lambda when: _propagate(w, pairs),
    )


def _propagate(w: WorldState, pairs: list[tuple[str, str]]) -> None:
    """CLP pushes access changes to the IQs; an offline IQ misses them until a Sync Access."""
    for platform_user_id, lock_id in pairs:
        lock = w.locks[lock_id]
        iq = w.iqs[lock.iq_id]
        if not iq.online:
            continue
        if platform_user_id in rules.clp_grants(w, lock):
            iq.held.add((platform_user_id, lock_id))
        else:
            iq.held.discard((platform_user_id, lock_id))


def sync_iq(w: WorldState, iq: IQ) -> None:
    """Load an IQ with exactly CLP's grants for its locks (what Sync Access does)."""
    iq.held = {
        (uid, lock_id)
        for lock_id in iq.lock_ids
        for uid in rules.clp_grants(w, w.locks[lock_id])
        if (uid, lock_id) not in w.sync_broken
    }


def align_clp(w: WorldState, user: User, now: datetime) -> None:
    """Make CLP and the IQs agree with ACA for one user, by fiat (building, faults)."""
    site_id = w.centers[user.center_id].clp_site_id
    for lock in w.locks.where("site_id", site_id):
        access = rules.aca_access(w, user, lock.id, now)
        granted = access is not None and access.state == "active"
        pair = (user.clp_user_id, lock.id)
        for group in rules.groups_listing(w, site_id, lock.id):
            if granted:
                group.user_ids.add(user.clp_user_id)
            else:
                group.user_ids.discard(user.clp_user_id)
        if granted:
            w.iqs[lock.iq_id].held.add(pair)
        else:
            w.iqs[lock.iq_id].held.discard(pair)


def collection_iqs(w: WorldState, site_id: str, collection_id: str) -> list[IQ]:
    """The IQs of a collection."""
    return w.iqs.where("collection", (site_id, collection_id))


def start_sync_access(w: WorldState, site_id: str, collection_id: str, now: datetime) -> SyncJob:
    """Queue a Sync Access job: running a second later, done ``sync_duration_s`` after."""
    if site_id not in w.sites or not collection_iqs(w, site_id, collection_id):
        raise WorldError("not_found", f"no collection {collection_id} on site {site_id}")
    for job in w.sync_jobs.where("collection_id", collection_id):
        if job.state in ("queued", "running"):
            raise WorldError("sync_running", f"sync {job.job_id} is {job.state}", job_id=job.job_id)
    changed = w.collection_changed_at.get(collection_id)
    if (
        changed is not None
        and (now - changed).total_seconds() < w.settings.clp_change_block_seconds
    ):
        raise WorldError("operation_blocked", "access changed less than a minute ago")
    job = SyncJob(w.new_id("job"), site_id, collection_id, "queued", None, now)
    w.sync_jobs[job.job_id] = job

    def run(at: datetime) -> None:
        job.state = "running"

    w.schedule(
        now + timedelta(seconds=w.settings.sync_start_delay_s), f"sync_run {job.job_id}", run
    )
    w.schedule(
        now + timedelta(seconds=w.settings.sync_duration_s),
        f"sync_finish {job.job_id}",
        lambda at: _sync_finish(w, job, at),
    )
    return job


def _sync_finish(w: WorldState, job: SyncJob, at: datetime) -> None:
    """Load the online IQs; the job fails if any IQ of the collection is offline."""
    offline = False
    for iq in collection_iqs(w, job.site_id, job.collection_id):
        if iq.online:
            sync_iq(w, iq)
        else:
            offline = True
    job.state = "failed" if offline else "succeeded"
    job.error = "iq_offline" if offline else None
    job.finished_utc = at
