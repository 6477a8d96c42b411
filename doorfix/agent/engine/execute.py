"""Where doorfix touches the world: each remedy's calls, its verification, its reconciliation.

This is the only module that mutates the three systems. Dry-run is simply "do not call
:meth:`Executor.run`". Every remedy is verified by re-reading what it changed; a remedy whose
effect only the next presentation can prove (Sync Access) ends ``pending_verification``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any, Literal, TypeVar

import structlog

from doorfix.agent.journal.store import ActionRow
from doorfix.clock import Clock
from doorfix.connectors._http import acting
from doorfix.connectors.factory import Clients
from doorfix.connectors.models import from_epoch, iso_z
from doorfix.connectors.models.aca import Access
from doorfix.connectors.models.cloud import Holiday
from doorfix.connectors.models.clp import SyncJob
from doorfix.errors import ConnectorError, ContractError, TransientError
from doorfix.playbooks.types import Outcome, PlannedAction, Remedy, Step, Who

log = structlog.get_logger("doorfix.execute")
T = TypeVar("T")

#: The waits before each of a verification's re-reads (clock seconds), the last one repeated.
#: The vendors apply a change asynchronously ("CLP shows it seconds later"), so the first
#: re-read waits too, and the next ones come every second for the first 10 s, where a change
#: usually lands (a person waiting at the door sees the fix within a second of it landing),
#: then after 2 and 3 s, then every 5 s until the verification's timeout. Each re-read goes
#: through its system's rate limiter like any other read and waits its turn behind the reads
#: already queued (:func:`~doorfix.connectors._http.acting`), so a burst of fixes polling
#: for their results slows itself, never the diagnosis of the incidents after it.
POLL_WAITS: tuple[float, ...] = (1.0,) * 10 + (2.0, 3.0, 5.0)


#: Told once a remedy's writes are sent and only its verification's re-reads are left (see
#: :func:`on_verifying`); None outside a run's incident.
_ON_VERIFYING: ContextVar[Callable[[], None] | None] = ContextVar("on_verifying", default=None)
#: Told what a write's answer named that a re-read needs (a Sync Access's job id), before the
#: answer is waited on further (see :func:`on_answered`); None outside a run's incident.
_ON_ANSWERED: ContextVar[Callable[[Mapping[str, Any]], None] | None] = ContextVar(
    "on_answered", default=None
)
#: Set within :meth:`Executor.run` to a list that gets an item once the remedy's writes are sent:
#: an error after that is a verification's, and leaves the outcome unknown, never ``failed``.
_SENT: ContextVar[list[bool] | None] = ContextVar("writes_sent", default=None)


@contextmanager
def on_verifying(callback: Callable[[], None]) -> Iterator[None]:
    """Within this block (one incident's task), call ``callback`` when a remedy starts verifying.

    The run uses it to take the verification off its critical path: from that moment the
    incident holds no slot, and the next incident of its lane may act (see ``run``).
    """
    token = _ON_VERIFYING.set(callback)
    try:
        yield
    finally:
        _ON_VERIFYING.reset(token)


@contextmanager
def on_answered(callback: Callable[[Mapping[str, Any]], None]) -> Iterator[None]:
    """Within this block, call ``callback`` with what a write's answer named (its job id).

    The run records it on the action in flight, so a stop or a crash while the job is read
    back leaves the journal naming the job: the next run reads that job back and never sends
    the call again (an answered call has landed).
    """
    token = _ON_ANSWERED.set(callback)
    try:
        yield
    finally:
        _ON_ANSWERED.reset(token)


def _answered(detail: Mapping[str, Any]) -> None:
    callback = _ON_ANSWERED.get()
    if callback is not None:
        callback(detail)


def _verifying() -> None:
    """The remedy's writes are sent; only its verification's re-reads are left."""
    sent = _SENT.get()
    if sent is not None:
        sent.append(True)
    callback = _ON_VERIFYING.get()
    if callback is not None:
        callback()


def poll_waits(timeout: float) -> list[float]:
    """The waits of one verification: :data:`POLL_WAITS` while their sum stays within ``timeout``.

    A timeout shorter than the first wait still makes one re-read, at once (reconciliation
    after a crash re-reads once, with a timeout of 0).
    """
    waits: list[float] = []
    total = 0.0
    while True:
        wait = POLL_WAITS[min(len(waits), len(POLL_WAITS) - 1)]
        if total + wait > timeout:
            return waits or [0.0]
        waits.append(wait)
        total += wait


@dataclass(frozen=True)
class ActionResult:
    """What an executed action did and what the incident's outcome is because of it."""

    #: ``skipped``: the system refused to act for now, nothing changed (no cool-down starts);
    #: ``unknown``: the write may have taken effect and no re-read could tell, so the action
    #: stays in flight in the journal for the next run's reconciliation to settle
    status: Literal["succeeded", "failed", "skipped", "unknown"]
    outcome: Outcome
    detail: dict[str, Any] = field(default_factory=dict)
    #: the write itself failed (counts towards the circuit breaker)
    write_error: bool = False
    #: extra checklist items when the remedy did not hold
    steps: tuple[Step, ...] = ()

    def recorded(self, **extra: Any) -> dict[str, Any]:
        """The detail a reconciliation records: with the outcome and steps, which decide the
        incident (see reconcile), and ``extra``."""
        return {
            **self.detail,
            **extra,
            "outcome": self.outcome.value,
            "steps": [s.as_dict() for s in self.steps],
        }


Settled = Literal["succeeded", "failed", "skipped"]


def _settled(done: bool) -> Settled:
    """A re-read after a crash: the change is there, or the call never took effect."""
    return "succeeded" if done else "skipped"


def _hhmm(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def _verified(held: bool, detail: dict[str, Any], what: str) -> ActionResult:
    """``fixed`` when the re-read shows the remedy held; else escalate, saying ``what`` is wrong."""
    if held:
        return ActionResult("succeeded", Outcome.FIXED, detail)
    step = Step(
        Who.VENDOR_SUPPORT,
        f"doorfix ran the remedy but {what}; escalate to vendor support with this incident.",
    )
    return ActionResult("succeeded", Outcome.NEEDS_HUMAN, detail, steps=(step,))


def _hours_already_set(holiday: Holiday, p: Mapping[str, Any]) -> ActionResult:
    """The holiday has working hours enabled already: left as they are, never replaced."""
    hours = holiday.working_hours
    found = f"{hours.start_time:%H:%M}-{hours.end_time:%H:%M}"
    wanted = f"{p['start_time']}-{p['end_time']}"
    detail = {"working_hours_found": found, "working_hours_enabled": True, "not_called": True}
    if found == wanted:
        return ActionResult("skipped", Outcome.FIXED, detail | {"working_hours": True})
    step = Step(
        Who.SUPPORT,
        f"Holiday {holiday.name} ({holiday.holiday_id}) already has working hours {found} "
        f"enabled, set by a person; doorfix never shortens or replaces them (it would have set "
        f"{wanted}). If people should enter outside {found}, widen them by hand under Access "
        "Control > Holiday.",
    )
    return ActionResult("skipped", Outcome.NEEDS_HUMAN, detail, steps=(step,))


def _may_have_landed(exc: ConnectorError) -> bool:
    """Whether the failed call was a write that may still have taken effect: its answer was
    lost or garbled, or an error the server may send after acting (a 5xx, a timeout)."""
    return exc.write and (
        isinstance(exc, ContractError) or (isinstance(exc, TransientError) and exc.maybe_processed)
    )


def _left_disabled(user_id: str, lock_id: str, exc: ConnectorError) -> ActionResult:
    """The toggle's enable failed after its disable: the user may be locked out; say how to undo."""
    log.warning(
        "remedy_failed",
        remedy=Remedy.TOGGLE_ACCESS_MATRIX.value,
        target=f"{user_id}/{lock_id}",
        system=exc.system,
        endpoint=exc.endpoint,
        status=exc.status,
        code=exc.code,
        access_left_disabled=True,
    )
    step = Step(
        Who.SUPPORT,
        f"Switch user {user_id}'s access to lock {lock_id} back on in the ACA Access Matrix: "
        "doorfix switched it off to force a sync and could not switch it on again.",
    )
    detail = {"error": str(exc), "system": exc.system, "endpoint": exc.endpoint}
    return ActionResult(
        "failed",
        Outcome.FAILED,
        detail | {"access_left_disabled": True},
        write_error=True,
        steps=(step,),
    )


class Executor:
    """Runs remedies through the connectors and verifies them by re-reading."""

    def __init__(self, clients: Clients, clock: Clock, *, verify_timeout: float) -> None:
        self._c = clients
        self._clock = clock
        self._verify_timeout = verify_timeout
        #: Sync Access runs once per collection per run, however many users it helps
        self._syncs: dict[tuple[str, str], ActionResult] = {}

    async def _poll(self, read: Callable[[], Awaitable[T]], done: Callable[[T], bool]) -> T:
        """Re-read after each wait until ``done`` or the verification timeout; the last reading.

        The writes are sent by now: the run is told, so waiting here holds nothing else up.
        """
        _verifying()
        *early, last = poll_waits(self._verify_timeout)
        with acting(ahead=False):  # re-reads wait their turn like the run's other reads
            for wait in early:
                await self._clock.sleep(wait)
                value = await read()
                if done(value):
                    return value
            if last:
                await self._clock.sleep(last)
            return await read()

    async def run(self, action: PlannedAction, verify: Mapping[str, Any]) -> ActionResult:
        """Execute ``action`` and verify it; connector errors become a result, never raised.

        An error before the writes are sent fails (or defers) the remedy; an error of the
        verification's re-read, after the writes are sent, leaves the outcome unknown: the
        action stays in flight, the incident ``pending_verification``, and the next run's
        reconciliation settles it by re-reading the target (never by calling again).

        ``escalate`` is not an API call: :mod:`doorfix.agent.engine.escalate` sends it.
        """
        handler = self._handlers()[action.remedy]
        sent: list[bool] = []
        token = _SENT.set(sent)
        try:
            with acting():  # its requests go ahead of the run's reads still queued
                return await handler(action.params, verify)
        except ConnectorError as exc:
            if not sent:
                return self._unsent(action, exc)
            # the change was made and only its re-read failed: not failed, not claimed; the
            # action stays in flight and the next run's reconciliation re-reads the target
            _log_left_in_flight("remedy_unverified", action, exc)
            detail = {"error": str(exc), "unverified": True}
            return ActionResult("unknown", Outcome.PENDING_VERIFICATION, detail)
        finally:
            _SENT.reset(token)

    @staticmethod
    def _unsent(action: PlannedAction, exc: ConnectorError) -> ActionResult:
        """The result of a remedy whose write failed, or whose answer was lost."""
        if _may_have_landed(exc):
            # neither claimed nor failed nor sent again: the next run's reconciliation
            # re-reads the target first
            _log_left_in_flight("remedy_outcome_unknown", action, exc)
            detail = {"error": str(exc), "outcome_unknown": True}
            return ActionResult("unknown", Outcome.DEFERRED, detail, write_error=True)
        if isinstance(exc, TransientError) and not exc.maybe_processed:
            # the system refused to act for now (429, CLP 2203): nothing changed, try later
            log.info("remedy_deferred", remedy=action.remedy.value, target=action.target)
            return ActionResult("skipped", Outcome.DEFERRED, {"error": str(exc), "deferred": True})
        log.warning(
            "remedy_failed",
            remedy=action.remedy.value,
            target=action.target,
            system=exc.system,
            endpoint=exc.endpoint,
            status=exc.status,
            code=exc.code,
            transient=isinstance(exc, TransientError),
        )
        return ActionResult(
            "failed",
            Outcome.FAILED,
            {"error": str(exc), "system": exc.system, "endpoint": exc.endpoint},
            write_error=True,
        )

    def _handlers(
        self,
    ) -> dict[Remedy, Callable[[Mapping[str, Any], Mapping[str, Any]], Awaitable[ActionResult]]]:
        return {
            Remedy.TOGGLE_ACCESS_MATRIX: self._toggle,
            Remedy.SYNC_ACCESS: self._sync,
            Remedy.RENEW_LICENSE: self._renew,
            Remedy.ASSIGN_CREDENTIAL: self._assign,
            Remedy.ADD_TO_ACCESS_GROUP: self._add_to_group,
            Remedy.CREATE_TEMP_KEY: self._temp_key,
            Remedy.SET_HOLIDAY_HOURS: self._holiday,
        }

    # ------------------------------------------------------------------ ACA -> CLP

    async def _toggle(self, p: Mapping[str, Any], v: Mapping[str, Any]) -> ActionResult:
        aca = self._c.aca
        user_id, lock_id = p["user_id"], p["lock_id"]
        try:
            await aca.set_access_matrix(user_id, lock_id, enabled=False)
        except ConnectorError as exc:
            if not _may_have_landed(exc):
                raise  # refused before anything changed: there is nothing to switch back on
            # the disable may have landed with its answer lost: the enable must follow it,
            # and the re-read of Larry access below tells whether the toggle worked
            log.warning("toggle_disable_unconfirmed", user_id=user_id, lock_id=lock_id)
        try:
            # the PUT is idempotent and retried by the layer; a crash in between is
            # re-enabled by reconcile()
            await aca.set_access_matrix(user_id, lock_id, enabled=True)
        except ConnectorError as exc:
            return _left_disabled(user_id, lock_id, exc)
        larry = await self._poll(
            lambda: self._c.clp.larry_access(v["site_id"], v["clp_user_id"], p["lock_id"]),
            lambda access: access.status == "granted",
        )
        return _verified(
            larry.status == "granted",
            {"larry_access": larry.status, "larry_reason": larry.reason},
            "CLP still denies access after the Access Matrix toggle",
        )

    # ------------------------------------------------------------------ CLP -> IQ

    async def _sync(self, p: Mapping[str, Any], v: Mapping[str, Any]) -> ActionResult:
        key = (p["site_id"], p["collection_id"])
        if key in self._syncs:
            shared = self._syncs[key]
            return ActionResult(
                "succeeded",
                shared.outcome,
                {**shared.detail, "shared_job": True},
                steps=shared.steps,
            )
        try:
            ref = await self._c.clp.sync_access(p["site_id"], p["collection_id"])
        except ConnectorError as exc:
            if not _may_have_landed(exc):
                raise
            # the answer was lost, so the job may be running; it is never re-sent blindly, and
            # only the next presentation at the lock can tell (as after any Sync Access)
            log.warning("sync_outcome_unknown", collection_id=p["collection_id"], error=str(exc))
            unknown = ActionResult(
                "failed",
                Outcome.PENDING_VERIFICATION,
                {"error": str(exc), "outcome_unknown": True},
                write_error=True,
            )
            self._syncs[key] = unknown
            return unknown
        _answered({"job_id": ref.job_id, "adopted": ref.adopted})
        try:
            job = await self._poll(
                lambda: self._c.clp.get_sync_job(p["site_id"], ref.job_id),
                lambda j: j.state in ("succeeded", "failed"),
            )
        except ConnectorError as exc:
            # the job was accepted and only reading it back failed: as after any Sync Access,
            # the next presentation at the lock proves it; it is never sent again
            log.warning("sync_job_unread", collection_id=p["collection_id"], error=str(exc))
            result = ActionResult(
                "succeeded",
                Outcome.PENDING_VERIFICATION,
                {"job_id": ref.job_id, "job_state": "unread", "adopted": ref.adopted},
            )
            self._syncs[key] = result
            return result
        result = self._sync_result(job, adopted=ref.adopted)
        self._syncs[key] = result
        return result

    @staticmethod
    def _sync_result(job: SyncJob, *, adopted: bool) -> ActionResult:
        detail = {"job_id": job.job_id, "job_state": job.state, "adopted": adopted}
        if job.state == "failed":
            detail["job_error"] = job.error
            who = Who.ON_SITE if job.error == "iq_offline" else Who.VENDOR_SUPPORT
            text = (
                "Sync Access failed because an IQ of the collection is offline: power-cycle it, "
                "then run Sync Access again."
                if job.error == "iq_offline"
                else "Sync Access failed inside CLP: escalate to vendor support."
            )
            return ActionResult("succeeded", Outcome.NEEDS_HUMAN, detail, steps=(Step(who, text),))
        # only the next presentation at the lock can prove the IQ now holds the access
        return ActionResult("succeeded", Outcome.PENDING_VERIFICATION, detail)

    # ------------------------------------------------------------------ cloud

    async def _renew(self, p: Mapping[str, Any], v: Mapping[str, Any]) -> ActionResult:
        cloud = self._c.cloud
        before = await cloud.get_door_detail(p["project_id"], p["door_id"])
        door = await cloud.renew_door_license(
            p["project_id"], p["door_id"], int(p["months"]), before=before
        )
        lic = door.license
        return _verified(
            lic.status == "active",
            {"license_status": lic.status, "expires_at": lic.expires_at},
            "the door license is still not active",
        )

    async def _assign(self, p: Mapping[str, Any], v: Mapping[str, Any]) -> ActionResult:
        cloud = self._c.cloud
        await cloud.add_personnel_credential(
            p["project_id"], p["personnel_id"], p["type"], p["value"]
        )
        _verifying()
        person = await cloud.get_personnel_detail(p["project_id"], p["personnel_id"])
        held = person.has_credential(p["type"], p["value"])
        return _verified(
            held, {"credential_assigned": held}, "the person still lacks the credential"
        )

    async def _add_to_group(self, p: Mapping[str, Any], v: Mapping[str, Any]) -> ActionResult:
        cloud = self._c.cloud
        await cloud.add_access_group_member(
            p["project_id"], p["access_group_id"], p["personnel_id"]
        )
        _verifying()
        person = await cloud.get_personnel_detail(p["project_id"], p["personnel_id"])
        member = p["access_group_id"] in person.access_group_ids
        return _verified(member, {"member": member}, "the person is still not in the access group")

    async def _temp_key(self, p: Mapping[str, Any], v: Mapping[str, Any]) -> ActionResult:
        cloud = self._c.cloud
        key = await cloud.create_visitor_temp_key(
            p["project_id"],
            p["visitor_id"],
            list(p["door_ids"]),
            from_epoch(int(p["start_time"])),
            from_epoch(int(p["finish_time"])),
        )
        _verifying()
        visitor = await cloud.get_visitor_detail(p["project_id"], p["visitor_id"])
        held = any(k.temp_key_id == key.temp_key_id and not k.expired for k in visitor.temp_keys)
        detail = {"temp_key_id": key.temp_key_id, "finish_time": key.finish_time}
        return _verified(held, detail, "the visitor has no valid temp key")

    async def _holiday(self, p: Mapping[str, Any], v: Mapping[str, Any]) -> ActionResult:
        cloud = self._c.cloud
        start, end = _hhmm(p["start_time"]), _hhmm(p["end_time"])
        # the plan's premise, re-read just before the call: doorfix only enables hours where
        # none are enabled; hours a person set since are never shortened or replaced
        async for holiday in cloud.iter_holidays(p["project_id"]):
            if holiday.holiday_id == p["holiday_id"] and holiday.working_hours_enabled:
                return _hours_already_set(holiday, p)
        await cloud.set_holiday_working_hours(
            p["project_id"], p["holiday_id"], enabled=True, start_time=start, end_time=end
        )
        _verifying()
        held = False
        async for holiday in cloud.iter_holidays(p["project_id"]):
            if holiday.holiday_id == p["holiday_id"]:
                hours = holiday.working_hours
                held = (
                    holiday.working_hours_enabled
                    and hours.start_time == start
                    and hours.end_time == end
                )
        return _verified(held, {"working_hours": held}, "the holiday still has no working hours")

    # ------------------------------------------------------------------ after a crash

    async def reconcile(
        self,
        row: ActionRow,
        *,
        subject: Mapping[str, str],
        landed_by: datetime,
        sending_again: Callable[[], None] = lambda: None,
    ) -> tuple[Settled, dict[str, Any]]:
        """Settle an action left in flight by re-reading its target; never fire it blindly.

        ``succeeded``: the re-read shows the change; ``skipped``: it shows the change is not
        there, so the call never took effect and the remedy may run again (no cool-down);
        ``failed``: a toggle's sync did not follow, or the holiday is gone.

        An action this step *completes* (the toggle's enable, a Sync Access sent again)
        re-reads its target and re-checks the remedy's preconditions first: what a person
        changed since the intent was written is left alone, and the detail says what was
        found (``left_alone``, with the outcome ``needs_human`` and the steps). The calls of
        the crashed process could land until ``landed_by``; a change after it is a person's.
        A detail with an ``outcome`` decides the incident (see reconcile). ``sending_again``
        is called just before a call is made again (the journal records that intent).
        """
        p = row.params.get("call", {})
        v = row.params.get("verify", {})
        remedy = Remedy(row.remedy)
        cloud = self._c.cloud
        if remedy is Remedy.TOGGLE_ACCESS_MATRIX:
            return await self._complete_toggle(
                row, p, v, landed_by=landed_by, sending_again=sending_again
            )
        if remedy is Remedy.SYNC_ACCESS:
            return await self._complete_sync(row, p, v, subject, sending_again)
        if remedy is Remedy.RENEW_LICENSE:
            door = await cloud.get_door_detail(p["project_id"], p["door_id"])
            before = v.get("expires_at")
            renewed = door.license.status == "active" and (
                before is None or (door.license.expires_at or 0) > int(before)
            )
            return _settled(renewed), {"license_status": door.license.status}
        if remedy is Remedy.ASSIGN_CREDENTIAL:
            person = await cloud.get_personnel_detail(p["project_id"], p["personnel_id"])
            ok = person.has_credential(p["type"], p["value"])
            return _settled(ok), {"credential_assigned": ok}
        if remedy is Remedy.ADD_TO_ACCESS_GROUP:
            person = await cloud.get_personnel_detail(p["project_id"], p["personnel_id"])
            ok = p["access_group_id"] in person.access_group_ids
            return _settled(ok), {"member": ok}
        if remedy is Remedy.CREATE_TEMP_KEY:
            visitor = await cloud.get_visitor_detail(p["project_id"], p["visitor_id"])
            ok = any(
                k.start_time == int(p["start_time"]) and k.finish_time == int(p["finish_time"])
                for k in visitor.temp_keys
            )
            return _settled(ok), {"temp_key_found": ok}
        if remedy is Remedy.SET_HOLIDAY_HOURS:
            async for holiday in cloud.iter_holidays(p["project_id"]):
                if holiday.holiday_id == p["holiday_id"]:
                    hours = holiday.working_hours
                    found = f"{hours.start_time:%H:%M}-{hours.end_time:%H:%M}"
                    ours = found == f"{p['start_time']}-{p['end_time']}"
                    ok = holiday.working_hours_enabled and ours
                    detail: dict[str, Any] = {"working_hours": ok}
                    if holiday.working_hours_enabled and not ours:
                        # hours a person set since the intent: theirs, left alone; the next
                        # diagnosis reports them (never replaced)
                        detail["working_hours_found"] = found
                    return _settled(ok), detail
            return "failed", {"working_hours": False, "holiday_found": False}
        return "failed", {"remedy": row.remedy, "unknown_remedy": True}

    async def _cell(self, user_id: str, lock_id: str) -> Access | None:
        """The user's Access Matrix cell for the lock, as ACA holds it now (None: no cell)."""
        async for access in self._c.aca.iter_accesses(user_id):
            if access.lock_id == lock_id:
                return access
        return None

    async def _complete_toggle(
        self,
        row: ActionRow,
        p: Mapping[str, Any],
        v: Mapping[str, Any],
        *,
        landed_by: datetime,
        sending_again: Callable[[], None],
    ) -> tuple[Settled, dict[str, Any]]:
        """Finish a toggle a crash cut off, unless a person changed the cell since the intent.

        Only a cell that doorfix's own disable can explain is switched back on: disabled in the
        Access Matrix at a time doorfix's call could land (from the intent to ``landed_by``).
        A cell that is gone, disabled because its booking ended, or disabled later (by an
        administrator, minutes or days after) is left as found. An active cell unchanged since
        before the intent saw neither call land: ``skipped``, like any call that never took
        effect.
        """
        user_id, lock_id = p["user_id"], p["lock_id"]
        cell = await self._cell(user_id, lock_id)
        found: dict[str, Any] = {"access": None if cell is None else cell.state}
        if cell is not None and cell.state == "disabled":
            found |= {
                "disabled_by": cell.disabled_by,
                "changed_at": iso_z(cell.changed_at, whole_seconds=True),
            }
            # started_at is stored to the second: one second earlier is still doorfix's call
            ours = (
                cell.disabled_by == "access_matrix"
                and row.started_at - timedelta(seconds=1) <= cell.changed_at <= landed_by
            )
            if not ours:
                return _left_alone(row, found, _toggle_found_text(user_id, lock_id, cell))
            sending_again()
            await self._c.aca.set_access_matrix(user_id, lock_id, enabled=True)
            found["re_enabled"] = True
        elif cell is None:
            text = (
                f"ACA no longer lists user {user_id}'s access to lock {lock_id} (the booking "
                "that gave it is gone): doorfix left it as found."
            )
            return _left_alone(row, found, text)
        elif cell.changed_at < row.started_at - timedelta(seconds=1):
            # unchanged since before the intent: neither the disable nor the enable landed,
            # so the toggle never took effect and may run again at once (no cool-down)
            return "skipped", found | {"changed_at": iso_z(cell.changed_at, whole_seconds=True)}
        larry = await self._c.clp.larry_access(v["site_id"], v["clp_user_id"], lock_id)
        ok = larry.status == "granted"
        return ("succeeded" if ok else "failed"), found | {"larry_access": larry.status}

    async def _complete_sync(
        self,
        row: ActionRow,
        p: Mapping[str, Any],
        v: Mapping[str, Any],
        subject: Mapping[str, str],
        sending_again: Callable[[], None],
    ) -> tuple[Settled, dict[str, Any]]:
        """Read back a Sync Access CLP answered; send again one whose answer never came.

        An answered one (its job id noted on the action, see :func:`on_answered`) has landed:
        its job is read back and decides, and it is never sent again. For the other, Sync
        Access only pushes CLP's access down to the IQs, so repeating it is safe, and
        nothing tells whether the cut-off one ran (CLP lists no jobs by collection): waiting
        for a presentation that may never come would leave the person locked out. It is sent
        again at once when ACA and CLP still grant the user the lock (C c2); otherwise what
        changed is reported and nothing is sent. It is sent again once at most: a crash that
        cut off the second one too (the journal noted it before sending) leaves the outcome
        unknown, and the next presentation at the lock proves it.
        """
        noted = row.detail or {}
        if noted.get("job_id"):
            # CLP answered with its job before the cut: the call landed, so it is never sent
            # again; the job's state decides, as it would have in the run
            job = await self._c.clp.get_sync_job(p["site_id"], str(noted["job_id"]))
            result = self._sync_result(job, adopted=bool(noted.get("adopted")))
            return "succeeded", result.recorded(answered=True)
        user_id, lock_id = subject.get("user_id"), subject.get("lock_id")
        if (
            user_id is None
            or lock_id is None
            or not v.get("clp_user_id")
            or (row.detail or {}).get("sent_again")
        ):
            return "failed", {
                "outcome_unknown": True,
                "remedy": row.remedy,
                "sent_again": bool((row.detail or {}).get("sent_again")),
            }
        cell = await self._cell(user_id, lock_id)
        larry = await self._c.clp.larry_access(v["site_id"], v["clp_user_id"], lock_id)
        found = {"access": None if cell is None else cell.state, "larry_access": larry.status}
        if cell is None or cell.state != "active" or larry.status != "granted":
            text = (
                f"doorfix's Sync Access for user {user_id} at lock {lock_id} was cut off by a "
                f"crash; since then ACA's access is {found['access'] or 'gone'} and CLP's "
                f"{larry.status}, so it was not sent again: check whether the person should "
                "still get in."
            )
            return _left_alone(row, found, text)
        sending_again()
        result = await self._sync(p, v)
        detail = result.recorded(**found, sent_again=True)
        return ("succeeded" if result.status == "succeeded" else "failed"), detail


def _log_left_in_flight(event: str, action: PlannedAction, exc: ConnectorError) -> None:
    """A remedy whose write may have landed, left in flight for the next run's re-read."""
    log.warning(
        event,
        remedy=action.remedy.value,
        target=action.target,
        system=exc.system,
        endpoint=exc.endpoint,
    )


def _toggle_found_text(user_id: str, lock_id: str, cell: Access) -> str:
    why = (
        "its booking ended"
        if cell.disabled_by == "booking_ended"
        else f"it was disabled at {iso_z(cell.changed_at, whole_seconds=True)}, after doorfix's "
        "toggle"
    )
    return (
        f"doorfix's Access Matrix toggle for user {user_id} at lock {lock_id} was cut off by a "
        f"crash; the access is now disabled ({why}), so doorfix did not switch it back on. "
        "Check with whoever disabled it whether it should stay off."
    )


def _left_alone(row: ActionRow, found: dict[str, Any], text: str) -> tuple[Settled, dict[str, Any]]:
    """A completion a person's change forbids: reported, nothing written."""
    log.warning("reconcile_left_alone", action_id=row.action_id, remedy=row.remedy, found=found)
    return "failed", {
        **found,
        "left_alone": True,
        "outcome": Outcome.NEEDS_HUMAN.value,
        "steps": [Step(Who.SUPPORT, text).as_dict()],
    }
