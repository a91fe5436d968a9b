"""A visit's media room: the two participants' encoded media forwarded to each other."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiortc import RTCIceServer

from vvserver.aio import TaskSet, cancel_and_wait
from vvserver.media.forwarding import DEFAULT_KEYFRAME_INTERVAL, Feed, MediaCounters
from vvserver.media.frames import KINDS, MediaKind
from vvserver.media.media_flow import MediaFlowWatch, MediaPresence, watch_media_flow
from vvserver.media.offers import CheckedOffer, OfferRejected, check_offer
from vvserver.media.participant import (
    FORWARDED_CODECS,
    ParticipantConnection,
    media_counts,
    visit_log,
)
from vvserver.media.quality import QualityMeter
from vvserver.media.remux import RecordingResult
from vvserver.media.room_connections import RoomConnections
from vvserver.media.room_events import (
    DEFAULT_QUALITY_INTERVAL,
    ROLES,
    EndReason,
    EventBroadcaster,
    EventSubscription,
    MonitorRefused,
    ParticipantStateChanged,
    QualityReport,
    Role,
    RoomClosed,
    SlotStarted,
    VisitEnded,
    VisitWarning,
)
from vvserver.media.room_recording import RoomRecording
from vvserver.media.slot_gate import GatedFeed, SlotGate
from vvserver.media.visit_clock import DEFAULT_WARNINGS, VisitClock

logger = logging.getLogger(__name__)

DEFAULT_MAX_MONITORS = 8


def other_side(role: Role) -> Role:
    return "kiosk" if role == "visitor" else "visitor"


def _utc_now() -> datetime:
    return datetime.now(UTC)


def checked(offer: CheckedOffer | str) -> CheckedOffer:
    """The offer as checked SDP: parsed once, wherever it was checked first."""
    if isinstance(offer, CheckedOffer):
        return offer
    return check_offer(offer, required_codecs=FORWARDED_CODECS)


class VisitRoom(RoomConnections):
    """One visit: the visitor and the kiosk, each with one peer connection at a time.

    `join()` answers a participant's SDP offer; a second join of the same role (a reconnect)
    replaces that participant's connection while the other side keeps playing. Officers'
    `monitor()` connections receive both sides and send nothing. With `ends_at`, the room's
    clock warns before the end and closes the room at the end. With `starts_at` (and
    `ends_at`), the room is a waiting room until the slot starts: participants join and their
    connections come up, but nothing is forwarded or recorded before the clock opens the
    room's `SlotGate` at `starts_at` (`SlotStarted`). With `recording_dir` (and not
    `privileged`), both participants are recorded into packet logs, remuxed to WebM files and
    a manifest on close (`recording`). Media is forwarded encoded: no frame is ever decoded
    or encoded here. With `connect_timeout`, a side whose peer connection has not connected
    that many seconds after it first joined is published as `MediaNotConnected` (once per
    wait: re-offers while it waits do not start the clock again).
    """

    def __init__(
        self,
        visit_id: int,
        *,
        ice_servers: Sequence[RTCIceServer] = (),
        ends_at: datetime | None = None,
        starts_at: datetime | None = None,
        now: Callable[[], datetime] = _utc_now,
        warnings: Sequence[timedelta] = DEFAULT_WARNINGS,
        privileged: bool = False,
        max_monitors: int = DEFAULT_MAX_MONITORS,
        keyframe_interval: float = DEFAULT_KEYFRAME_INTERVAL,
        quality_interval: float | None = DEFAULT_QUALITY_INTERVAL,
        recording_dir: Path | None = None,
        counters: MediaCounters | None = None,
        connect_timeout: float | None = None,
    ) -> None:
        self.visit_id = visit_id
        self._counters = counters  # the registry's running totals (metrics)
        self.privileged = privileged
        self.log = visit_log(logger, f"visit {visit_id}")
        self._ice_servers = tuple(ice_servers)
        self._max_monitors = max_monitors
        if starts_at is not None and ends_at is None:
            raise ValueError("a room with a start needs its end (the clock opens it)")
        self._now = now
        # The waiting room: closed until the slot starts, for the forwarder and the recorder.
        self.gate = SlotGate(is_open=starts_at is None or now() >= starts_at)
        self._feeds: dict[tuple[Role, MediaKind], Feed] = {
            (role, kind): GatedFeed(
                kind, f"{role}/{kind}", gate=self.gate, keyframe_interval=keyframe_interval
            )
            for role in ROLES
            for kind in KINDS
        }
        self._participants: dict[Role, ParticipantConnection] = {}
        self._connect_timeout = connect_timeout
        # Per side: when (event-loop time) it joined without a connected peer connection since.
        self._connect_waits: dict[Role, float] = {}
        self._monitors: dict[str, ParticipantConnection] = {}
        self._events = EventBroadcaster()
        self._tasks = TaskSet()
        self._lock = asyncio.Lock()
        self._ended: VisitEnded | None = None
        # The closing work, shielded from its callers' cancellation (see ``close``).
        self._closing: asyncio.Future[None] | None = None
        self._quality_meters = {
            role: QualityMeter(visit_id, role, self.feed(role, "video"), self.feed(role, "audio"))
            for role in ROLES
        }
        self._latest_quality: dict[Role, QualityReport] = {}
        if quality_interval is not None:
            self._tasks.create(
                self._measure_quality(quality_interval), name=f"visit {visit_id} quality"
            )
        # Recording: from the first media to the end; never for a privileged visit.
        if privileged:
            self.log.info("privileged visit: not recorded, monitors refused")
        self._recording = RoomRecording(
            None if privileged else recording_dir,
            visit_id=visit_id,
            roles=ROLES,
            feeds_of=lambda role: (self.feed(role, "audio"), self.feed(role, "video")),
            now=now,
            log=self.log,
        )
        # Whether each side's media reaches the relay (lost time is counted from it).
        self._flows = {role: MediaFlowWatch() for role in ROLES}
        self._tasks.create(
            watch_media_flow(visit_id, self._flows, now, self._events.publish),
            name=f"visit {visit_id} media flow",
        )
        self.clock: VisitClock | None = None
        if ends_at is not None:
            self.clock = VisitClock(
                ends_at,
                now=now,
                warnings=warnings,
                on_warning=self._warn,
                on_end=lambda: self.close("time_up", "the visit's time is over"),
                starts_at=starts_at,
                on_start=self._slot_started,
            )
            self._tasks.create(self.clock.run(), name=f"visit {visit_id} clock")

    # --- public API -----------------------------------------------------------------------

    def feed(self, role: Role, kind: MediaKind) -> Feed:
        return self._feeds[(role, kind)]

    def participant(self, role: Role) -> ParticipantConnection | None:
        return self._participants.get(role)

    @property
    def participant_roles(self) -> tuple[Role, ...]:
        """The roles that have a connection now."""
        return tuple(self._participants)

    def connections(self) -> tuple[ParticipantConnection, ...]:
        """Every open connection: participants and monitors."""
        return (*self._participants.values(), *self._monitors.values())

    @property
    def monitor_ids(self) -> tuple[str, ...]:
        return tuple(self._monitors)

    @property
    def recording(self) -> RecordingResult | None:
        """The finished recording (after `close()`); None when not recorded or it failed."""
        return self._recording.result

    @property
    def recording_failures(self) -> list[str]:
        """Recording problems (disk full...), for staff to see: the call went on."""
        return self._recording.failures

    async def recording_finished(self) -> None:
        """Wait until the recording is remuxed (after the end has been told)."""
        await self._recording.finished()

    def events(self) -> EventSubscription:
        """A new subscription to this room's events (ends after VisitEnded)."""
        return self._events.subscribe()

    def joiner(self, role: Role) -> Callable[[str], Awaitable[str]]:
        """`offer -> answer` for one role, e.g. for `TestPeer.connect`."""
        return functools.partial(self.join, role)

    async def join(self, role: Role, offer: CheckedOffer | str) -> str:
        """Answer a participant's offer (at most one audio and one video section).

        ``offer`` is either already checked (``check_offer``, as ``VisitMedia`` does before it
        opens a room) or raw SDP, checked here.
        """
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        self._ensure_open()
        offer = checked(offer)
        if any(count > 1 for count in media_counts(offer).values()):
            raise OfferRejected(
                "offer_too_many_media", "a participant sends one audio and one video at most"
            )
        async with self._lock:
            self._ensure_open()
            previous = self._participants.pop(role, None)
            if previous is not None:
                self.log.info("%s reconnects: replacing its connection", role)
                await previous.close()
            connection = self._connection(role)
            self._participants[role] = connection
            self._flows[role].reset()  # its first packet starts (or resumes) its media
            answer = await self._answer(
                connection,
                offer,
                publish_to=[self.feed(role, s.kind) for s in offer.media],
                play_from=[self.feed(other_side(role), s.kind) for s in offer.media],
                presence=self._flows[role].presence,
            )
        self._events.publish(ParticipantStateChanged(self.visit_id, role, "joined"))
        self._expect_connection(role)
        return answer

    async def monitor(self, monitor_id: str, offer: CheckedOffer | str) -> str:
        """Answer an officer's monitor offer: it receives both sides and sends nothing.

        Per kind, the first offered section plays the visitor and the second the kiosk. A
        privileged visit refuses every monitor (the caller audits the refusal).
        """
        if self.privileged:
            raise MonitorRefused("privileged_visit", "a privileged visit cannot be monitored")
        self._ensure_open()
        offer = checked(offer)
        if any(count > len(ROLES) for count in media_counts(offer).values()):
            raise OfferRejected("offer_too_many_media", "a monitor plays two audio, two video")
        nth: dict[MediaKind, int] = {"audio": 0, "video": 0}
        play_from: list[Feed | None] = []
        for section in offer.media:
            play_from.append(self.feed(ROLES[nth[section.kind]], section.kind))
            nth[section.kind] += 1
        async with self._lock:
            self._ensure_open()
            previous = self._monitors.pop(monitor_id, None)
            if previous is not None:
                await previous.close()
            if len(self._monitors) >= self._max_monitors:
                raise MonitorRefused("too_many_monitors", "this visit has enough monitors")
            connection = self._connection(f"monitor {monitor_id}")
            self._monitors[monitor_id] = connection
            answer = await self._answer(
                connection, offer, publish_to=[None] * len(offer.media), play_from=play_from
            )
        self.log.info("monitor %s started", monitor_id)
        return answer

    async def close(self, reason: EndReason = "closed", message: str = "") -> None:
        """End the room: every connection closed, tasks awaited, then `VisitEnded` published
        and the recording remuxed (nobody waits for that to be told); safe to call twice.

        The closing runs to its end even when the caller is cancelled while it waits (a
        recording must never be left unfinished because whoever hung up went away).
        """
        if self._closing is None:
            self._ended = VisitEnded(self.visit_id, reason, message)
            self._closing = asyncio.ensure_future(self._close(asyncio.current_task()))
        await asyncio.shield(self._closing)

    async def _close(self, caller: asyncio.Task[Any] | None) -> None:
        assert self._ended is not None
        self.log.info("closing (%s) %s", self._ended.reason, self._ended.message)
        try:
            async with self._lock:
                connections = [*self._participants.values(), *self._monitors.values()]
                self._participants.clear()
                self._monitors.clear()
                await asyncio.gather(*(c.close() for c in connections), return_exceptions=True)
            # The clock may be the caller: it ends by itself once this returns.
            await cancel_and_wait(*(t for t in self._tasks.tasks if t is not caller))
            self._recording.stop()
        finally:
            # Told at once: the remux below takes seconds on a long visit.
            self._events.publish(self._ended)
            self._events.close()
        await self._recording.finish()

    # --- internals ----------------------------------------------------------------------------

    def _ensure_open(self) -> None:
        if self.closed:
            raise RoomClosed(f"visit {self.visit_id} has ended")

    def _connection(self, name: str) -> ParticipantConnection:
        return ParticipantConnection(
            visit_id=self.visit_id,
            name=name,
            ice_servers=self._ice_servers,
            on_state=self._connection_state_changed,
            counters=self._counters,
        )

    async def _answer(
        self,
        connection: ParticipantConnection,
        offer: CheckedOffer,
        *,
        publish_to: Sequence[Feed | None],
        play_from: Sequence[Feed | None],
        presence: MediaPresence | None = None,
    ) -> str:
        """Answer through `connection`; on failure forget and close it, raise OfferRejected."""
        failure: str | None = None
        try:
            return await connection.answer(
                offer, publish_to=publish_to, play_from=play_from, presence=presence
            )
        except (ValueError, RuntimeError, AttributeError, KeyError, IndexError) as exc:
            # aiortc's SDP parser and negotiation raise these on offers it cannot use.
            failure = f"the offer could not be answered: {exc!r}"
        finally:
            if failure is not None or not connection.answered:
                self._forget(connection)
                await connection.close()
        # Raised outside the except block and logged as text: a traceback would keep the
        # closed connection alive for as long as the caller holds the exception.
        self.log.warning("%s: %s", connection.name, failure)
        raise OfferRejected("offer_failed", failure)

    def _forget(self, connection: ParticipantConnection) -> None:
        for role, known in list(self._participants.items()):
            if known is connection:
                del self._participants[role]
        for monitor_id, known in list(self._monitors.items()):
            if known is connection:
                del self._monitors[monitor_id]

    def _slot_started(self) -> None:
        """The clock's start: the waiting room is over (no-op when it was open already)."""
        if not self.gate.open_now():
            return
        self.log.info("slot started: media is forwarded and recorded from now on")
        for role in ROLES:
            self.feed(role, "video").request_keyframe()  # for whoever watches from now
        self._events.publish(SlotStarted(self.visit_id, self._now()))

    def _warn(self, seconds_left: int) -> None:
        self.log.info("warning: %d s left", seconds_left)
        self._events.publish(VisitWarning(self.visit_id, seconds_left))
