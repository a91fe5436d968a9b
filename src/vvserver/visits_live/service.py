"""`VisitMedia`: the service the signaling layer calls to run a visit's call.

It holds `Services` and the process's `RoomRegistry`. Participants' and officers' offers go
in, answers come out; every refusal is a DomainError (clean 4xx). Auditing, visit states,
connection accounting and the `Recording` row happen here, because the media layer has no
database. Authorising participants (join links, kiosk credentials) is the caller's job;
staff methods take the officer's `Principal` and check its scope themselves. What concerns
every room of the process at once (metrics, draining, the close at shutdown) is
`ProcessRooms` (``process_rooms``), which `VisitMedia` derives from.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from vvserver.aio import TaskSet
from vvserver.domain.accounts.principal import Principal
from vvserver.domain.audit.chain import AuditRecord
from vvserver.domain.errors import Conflict, Forbidden, InvalidInput
from vvserver.domain.services import Services
from vvserver.domain.visits.states import transition
from vvserver.media import stack as media_stack
from vvserver.media.ice_servers import checked_ice_servers, rtc_ice_servers
from vvserver.media.offers import check_offer
from vvserver.media.room_events import DEFAULT_QUALITY_INTERVAL, ROLES, Role
from vvserver.media.room_registry import RoomRegistry
from vvserver.visits_live.figures import VisitQuality, visit_quality
from vvserver.visits_live.handoff import handed_off_at
from vvserver.visits_live.ledger_store import LedgerWriter
from vvserver.visits_live.live_visit import (
    LiveVisit,
    ensure_joinable,
    ensure_staff_in_scope,
    load_live_visit,
    media_errors,
)
from vvserver.visits_live.process_rooms import ProcessRooms
from vvserver.visits_live.recording_rows import create_recording_row
from vvserver.visits_live.room_watch import RoomWatch, audit_monitor

if TYPE_CHECKING:
    from aiortc import RTCIceServer

    from vvserver.media.frames import MediaKind
    from vvserver.media.room import VisitRoom

logger = logging.getLogger(__name__)

TERMINATED_MESSAGE = "ended by the facility"
# A termination reason (HTTP and the officer socket alike).
MAX_REASON_CHARS = 500
MONITOR_REFUSALS = frozenset({"privileged_visit", "too_many_monitors"})


async def _forwarded_codecs() -> dict[MediaKind, str]:
    """The codecs the relay forwards (the media stack loaded first)."""
    await media_stack.ready()
    from vvserver.media.participant import FORWARDED_CODECS

    return FORWARDED_CODECS


def _relay_room() -> type[VisitRoom]:
    """The relay's room class (the media stack is loaded: `media_stack.ready()`)."""
    from vvserver.media.room import VisitRoom

    return VisitRoom


class VisitMedia(ProcessRooms):
    def __init__(
        self,
        services: Services,
        rooms: RoomRegistry,
        *,
        quality_interval: float | None = DEFAULT_QUALITY_INTERVAL,
        room_class: type[VisitRoom] | None = None,
    ) -> None:
        self.services = services
        self.rooms = rooms
        checked_ice_servers(services.settings.ice_servers)  # a bad setting fails at start
        self._ice_servers: list[RTCIceServer] | None = None  # aiortc's, at the first room
        self._quality_interval = quality_interval
        # None: the relay's VisitRoom, loaded with the media stack at the first call. The
        # benchmark's stock aiortc baseline (vvserver.client.stock_relay) comes in here.
        self._room_class = room_class
        self._open_lock = asyncio.Lock()
        self._watches: dict[int, RoomWatch] = {}
        self._watch_tasks: dict[int, asyncio.Task[None]] = {}
        self._tasks = TaskSet()
        # Writes the calls' ledgers every second; its lock is every ledger write's.
        self._ledgers = LedgerWriter(services, self._watches.values)
        self._rooms_opened = 0
        self._went_live = 0
        self._recordings_finished = 0
        self._recording_failures = 0
        self._monitors_refused = 0
        # SIGTERM/SIGINT: no new room opens here; calls already here go on (node/drain.py).
        self.draining = False

    # --- participants -------------------------------------------------------------------

    def prepare(self) -> None:
        """A call is coming (a participant's socket opened for a visit): start loading the
        media stack now, in the background, so that the offer does not wait for it."""
        media_stack.prepare()

    async def open_room(self, visit_id: int) -> VisitRoom:
        """The visit's room, opened if needed: the visit must be active and inside its window."""
        await media_stack.ready()
        async with self._open_lock:
            now = self.services.clock.now()
            async with self.services.read() as session:
                live = await load_live_visit(session, visit_id)
            ensure_joinable(live, now)
            room = self.rooms.get(visit_id)
            if room is not None:
                return room  # a closing room answers RoomClosed (409) until it is gone
            if self.draining:
                # In cluster mode the bridge places the room on another node instead.
                raise Conflict(
                    "this server is stopping; join again in a moment", code="node_draining"
                )
            return await self._open(live)

    async def _open(self, live: LiveVisit) -> VisitRoom:
        root = self.services.settings.recordings_dir
        recording_id: int | None = None
        recording_dir = None
        async with self.services.read() as session:
            lost_since = await handed_off_at(session, live.id)
        if not live.visit.privileged:
            # The row exists from the moment recording can start: a crash at any point
            # leaves a row that start-up reconciliation and adoption finish.
            async with self.services.write() as session:
                recording = await create_recording_row(
                    session, live, root, self.services.clock.now()
                )
                recording_id, recording_dir = recording.id, root / recording.directory
        room_class = self._room_class or _relay_room()
        if self._ice_servers is None:
            self._ice_servers = rtc_ice_servers(self.services.settings.ice_servers)
        ice_servers = self._ice_servers
        room = self.rooms.open(
            live.id,
            lambda: room_class(
                live.id,
                ice_servers=ice_servers,
                # A waiting room until the slot starts: nothing forwarded or recorded before.
                starts_at=live.visit.start_at,
                ends_at=live.visit.end_at,
                now=self.services.clock.now,
                warnings=live.warnings,
                privileged=live.visit.privileged,
                quality_interval=self._quality_interval,
                recording_dir=recording_dir,
                counters=self.rooms.counters,
                connect_timeout=self.services.settings.media_connect_timeout_s,
            ),
        )
        watch = RoomWatch(
            self.services,
            room,
            recording_id=recording_id,
            ledger_lock=self._ledgers.lock,
            resume_from=live.visit,
            lost_since=lost_since,
            counts_from=live.visit.start_at,
        )
        self._ledgers.start()
        self._watches[live.id] = watch
        self._watch_tasks[live.id] = self._tasks.create(
            self._run_watch(watch), name=f"visit {live.id} media watch"
        )
        self._rooms_opened += 1
        logger.info(
            "visit %s: room open until %s (%s)",
            live.id,
            live.visit.end_at.isoformat(),
            "privileged, not recorded" if live.visit.privileged else f"recording {recording_dir}",
        )
        return room

    async def _run_watch(self, watch: RoomWatch) -> None:
        try:
            await watch.run()
        finally:
            self._went_live += watch.went_live
            self._recordings_finished += watch.recording_finished
            self._recording_failures += len(watch.recording_failures)
            if self._watches.get(watch.visit_id) is watch:
                del self._watches[watch.visit_id]
                del self._watch_tasks[watch.visit_id]

    async def join(self, visit_id: int, role: Role, offer_sdp: str) -> str:
        """Answer the visitor's or the kiosk's offer; joining again is a reconnect."""
        if role not in ROLES:
            raise InvalidInput("role must be visitor or kiosk", code="unknown_role")
        forwarded_codecs = await _forwarded_codecs()
        with media_errors():
            offer = check_offer(offer_sdp, required_codecs=forwarded_codecs)  # no room for garbage
        room = await self.open_room(visit_id)
        with media_errors():
            answer = await room.join(role, offer)
        now = self.services.clock.now()
        async with self.services.write() as session:
            visit = (await load_live_visit(session, visit_id, lock=True)).visit
            if role == "visitor" and visit.visitor_joined_at is None:
                visit.visitor_joined_at = now
            elif role == "kiosk" and visit.kiosk_joined_at is None:
                visit.kiosk_joined_at = now
        return answer

    async def leave(self, visit_id: int, role: Role) -> None:
        """A participant hung up; the visit goes on (they may rejoin until the end).

        Hanging up on purpose is not lost time: it earns no credit.
        """
        room = self.rooms.get(visit_id)
        watch = self._watches.get(visit_id)
        if watch is not None and watch.room is room:
            watch.ledger.expect_leave(role)
        if room is not None:
            await room.leave(role)

    async def hang_up(self, visit_id: int, message: str) -> None:
        """Close the call of a visit that was ended elsewhere (cancelled, no-show, failed).

        Both sides get `VisitEnded("closed", message)`; the recording is finished. A visit
        still live is set back to `ready` (resumable), as at shutdown.
        """
        room = self.rooms.get(visit_id)
        if room is not None:
            await room.close("closed", message)

    # --- staff ----------------------------------------------------------------------------

    async def _staff_visit(self, visit_id: int, principal: Principal) -> LiveVisit:
        async with self.services.read() as session:
            live = await load_live_visit(session, visit_id)
        ensure_staff_in_scope(principal, live)
        return live

    async def monitor(
        self,
        visit_id: int,
        principal: Principal,
        offer_sdp: str,
        *,
        request_id: str | None = None,
    ) -> str:
        """An officer watches both sides, unseen; refused (and audited) on privileged visits."""
        live = await self._staff_visit(visit_id, principal)
        if live.visit.privileged:
            await self._audit_refusal(visit_id, principal, "privileged_visit", request_id)
            raise Forbidden("a privileged visit cannot be monitored", code="privileged_visit")
        forwarded_codecs = await _forwarded_codecs()
        with media_errors():
            offer = check_offer(offer_sdp, required_codecs=forwarded_codecs)
        room = await self.open_room(visit_id)
        try:
            with media_errors():
                answer = await room.monitor(principal.actor, offer)
        except (Forbidden, Conflict) as refused:
            if refused.code in MONITOR_REFUSALS:
                await self._audit_refusal(visit_id, principal, refused.code, request_id)
            raise
        watch = self._watches.get(visit_id)
        try:
            await self._audit_monitor(principal, visit_id, True, "success", request_id)
        except BaseException:
            await room.stop_monitor(principal.actor)  # no unaudited watching
            raise
        if watch is not None and watch.room is room:
            watch.monitors.add(principal.actor)
        return answer

    async def _audit_refusal(
        self, visit_id: int, principal: Principal, code: str, request_id: str | None
    ) -> None:
        self._monitors_refused += 1
        await self._audit_monitor(principal, visit_id, True, "failure", request_id, code=code)

    async def _audit_monitor(
        self,
        principal: Principal,
        visit_id: int,
        started: bool,
        outcome: str,
        request_id: str | None,
        **details: object,
    ) -> None:
        """A monitor start/stop (or refusal) audited in a transaction of its own."""
        async with self.services.write() as session:
            await audit_monitor(
                self.services,
                session,
                actor=principal.actor,
                visit_id=visit_id,
                started=started,
                outcome=outcome,
                now=self.services.clock.now(),
                request_id=request_id,
                **details,
            )

    async def stop_monitor(
        self, visit_id: int, principal: Principal, *, request_id: str | None = None
    ) -> bool:
        """Stop this officer's monitor connection; False when it was not watching."""
        await self._staff_visit(visit_id, principal)
        room = self.rooms.get(visit_id)
        if room is None or principal.actor not in room.monitor_ids:
            return False
        watch = self._watches.get(visit_id)
        if watch is not None:
            watch.monitors.discard(principal.actor)
        await room.stop_monitor(principal.actor)
        await self._audit_monitor(
            principal, visit_id, False, "success", request_id, reason="stopped by the officer"
        )
        return True

    async def terminate(
        self,
        visit_id: int,
        principal: Principal,
        reason: str,
        *,
        request_id: str | None = None,
    ) -> None:
        """End the visit for conduct: both sides are told "ended by the facility"."""
        reason = reason.strip()
        if not reason:
            raise InvalidInput("a reason is required", code="reason_required")
        if len(reason) > MAX_REASON_CHARS:
            raise InvalidInput("the reason is too long", code="reason_too_long")
        now = self.services.clock.now()
        async with self.services.write() as session:
            live = await load_live_visit(session, visit_id, lock=True)
            ensure_staff_in_scope(principal, live)
            was = live.visit.state
            transition(
                session,
                live.visit,
                "terminated",
                actor=principal.actor,
                reason=reason,
                now=now,
                counts_toward_limit=True,
            )
            await self.services.audit.append(
                session,
                AuditRecord(
                    actor=principal.actor,
                    action="visit.terminate",
                    outcome="success",
                    target=f"visit:{visit_id}",
                    request_id=request_id,
                    component="media",
                    details={"reason": reason, "from_state": was},
                ),
                now,
            )
        room = self.rooms.get(visit_id)
        if room is not None:
            await room.close("terminated", TERMINATED_MESSAGE)

    # --- figures ----------------------------------------------------------------------------

    async def quality(self, visit_id: int, principal: Principal) -> VisitQuality:
        """Per-participant figures of the visit's call (staff in scope)."""
        await self._staff_visit(visit_id, principal)
        return visit_quality(visit_id, self.rooms.get(visit_id))
