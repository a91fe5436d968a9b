"""Bench-only: a visit room built the way aiortc's own examples relay media.

``VV_MEDIA_RELAY=stock`` swaps the passthrough relay for this so that
``scripts/bench_calls.py`` can compare both with the same clients in one run. Every received
track is decoded by aiortc's receiver, fanned out with `MediaRelay`, re-encoded by each sender
that plays it (the other participant, monitors) and encoded once more by an aiortc
`MediaRecorder` writing ``<role>-<segment>.webm``. Signaling, visit states, clocks and
monitors are the passthrough room's (`VisitRoom`); only the media path differs. Recordings
made here are plain WebM files without a manifest: the visit's `Recording` row ends up
``interrupted``. Never use this in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiortc import RTCIceServer, RTCSessionDescription
from aiortc.contrib.media import MediaRecorder, MediaRelay
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from vvserver.media.forwarding import Feed
from vvserver.media.frames import KINDS, MediaKind
from vvserver.media.media_flow import MediaPresence
from vvserver.media.offers import CheckedOffer, answer_direction
from vvserver.media.participant import ParticipantConnection, StateListener, codec_preferences
from vvserver.media.room import VisitRoom
from vvserver.media.room_events import ROLES

logger = logging.getLogger(__name__)


class StockSource:
    """The decoded track a participant currently sends for one kind (None between joins)."""

    def __init__(self, kind: MediaKind) -> None:
        self.kind: MediaKind = kind
        self.track: MediaStreamTrack | None = None
        self.generation = 0
        self._changed = asyncio.Event()

    def replace(self, track: MediaStreamTrack) -> None:
        self.track = track
        self.generation += 1
        self._changed.set()

    async def wait_newer_than(self, generation: int) -> MediaStreamTrack:
        while self.track is None or self.generation == generation:
            self._changed.clear()
            await self._changed.wait()
        return self.track


class StockPlayTrack(MediaStreamTrack):
    """Plays the other side's decoded frames to a sender that encodes them again."""

    def __init__(self, source: StockSource, relay: MediaRelay) -> None:
        super().__init__()
        self.kind = source.kind
        self._source = source
        self._relay = relay
        self._subscription: MediaStreamTrack | None = None
        self._generation = 0

    async def recv(self) -> Any:
        while self.readyState == "live":
            if self._subscription is None:
                source_track = await self._source.wait_newer_than(self._generation)
                self._generation = self._source.generation
                self._subscription = self._relay.subscribe(source_track, buffered=False)
            try:
                return await self._subscription.recv()
            except MediaStreamError:
                self._subscription = None  # the publisher left: wait for its next join
        raise MediaStreamError

    def stop(self) -> None:
        if self._subscription is not None:
            self._subscription.stop()
            self._subscription = None
        super().stop()


class StockConnection(ParticipantConnection):
    """A participant's or monitor's peer connection that decodes, relays and re-encodes."""

    def __init__(
        self,
        *,
        visit_id: int,
        name: str,
        ice_servers: Sequence[RTCIceServer],
        on_state: StateListener,
        relay: MediaRelay,
        sources: dict[int, StockSource],
        recording_path: Path | None,
    ) -> None:
        super().__init__(visit_id=visit_id, name=name, ice_servers=ice_servers, on_state=on_state)
        self._relay = relay
        self._sources = sources  # id(feed) -> its stock source
        self._recording_path = recording_path
        self._recorder: MediaRecorder | None = None
        self._own_tracks: list[MediaStreamTrack] = []
        self._drains: list[asyncio.Task[None]] = []

    async def answer(
        self,
        offer: CheckedOffer,
        *,
        publish_to: Sequence[Feed | None],
        play_from: Sequence[Feed | None],
        presence: MediaPresence | None = None,  # not watched: the baseline counts no lost time
    ) -> str:
        publishing: dict[Any, StockSource] = {}
        for index, section in enumerate(offer.media):
            source_feed, feed = publish_to[index], play_from[index]
            direction = answer_direction(plays=feed is not None, publishes=source_feed is not None)
            play: StockPlayTrack | None = None
            if feed is not None:
                play = StockPlayTrack(self._sources[id(feed)], self._relay)
                self._own_tracks.append(play)
            transceiver = self.pc.addTransceiver(play or section.kind, direction=direction)
            transceiver.setCodecPreferences(codec_preferences(section.kind))
            if source_feed is not None and section.direction in ("sendrecv", "sendonly"):
                publishing[transceiver.receiver] = self._sources[id(source_feed)]
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer.sdp, type="offer"))
        if publishing and self._recording_path is not None:
            self._recording_path.parent.mkdir(parents=True, exist_ok=True)
            self._recorder = MediaRecorder(str(self._recording_path), format="webm")
        for receiver, source in publishing.items():
            received: MediaStreamTrack = receiver.track
            source.replace(received)
            # Keeps the relay reading (and the receiver's queue empty) with no one playing.
            drain = self._relay.subscribe(received, buffered=False)
            self._own_tracks.append(drain)
            self._drains.append(asyncio.create_task(_drain(drain), name=f"{self.name} drain"))
            if self._recorder is not None:
                recorded = self._relay.subscribe(received)
                self._own_tracks.append(recorded)
                self._recorder.addTrack(recorded)
        if self._recorder is not None:
            await self._recorder.start()
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        local = self.pc.localDescription
        assert local is not None
        self.answered = True
        self.log.info("answered an offer with %d media sections (stock relay)", len(offer.media))
        return str(local.sdp)

    async def close(self) -> None:
        for track in self._own_tracks:
            track.stop()
        for task in self._drains:
            task.cancel()
        for task in self._drains:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._drains.clear()
        recorder, self._recorder = self._recorder, None
        if recorder is not None:
            try:
                await recorder.stop()
            except (OSError, ValueError) as exc:
                self.log.error("stopping the stock recorder failed: %s", exc)
        await super().close()


async def _drain(track: MediaStreamTrack) -> None:
    with contextlib.suppress(MediaStreamError):
        while True:
            await track.recv()


class StockVisitRoom(VisitRoom):
    """`VisitRoom` whose connections decode, relay and re-encode (aiortc's stock path)."""

    def __init__(
        self,
        visit_id: int,
        *,
        recording_dir: Path | None = None,
        privileged: bool = False,
        **options: Any,
    ) -> None:
        # The passthrough packet-log recorders stay off: MediaRecorder records instead.
        super().__init__(visit_id, recording_dir=None, privileged=privileged, **options)
        self._stock_recording_dir = None if privileged else recording_dir
        self._relay = MediaRelay()
        self._stock_sources: dict[int, StockSource] = {}
        for role in ROLES:
            for kind in KINDS:
                feed = self.feed(role, kind)
                self._stock_sources[id(feed)] = StockSource(feed.kind)
        self._segments: dict[str, int] = {}
        self.log.warning("bench-only stock relay: media is decoded and re-encoded")

    def _connection(self, name: str) -> ParticipantConnection:
        recording_path: Path | None = None
        if self._stock_recording_dir is not None and name in ROLES:
            segment = self._segments[name] = self._segments.get(name, 0) + 1
            recording_path = self._stock_recording_dir / f"{name}-{segment:03d}.webm"
        return StockConnection(
            visit_id=self.visit_id,
            name=name,
            ice_servers=self._ice_servers,
            on_state=self._connection_state_changed,
            relay=self._relay,
            sources=self._stock_sources,
            recording_path=recording_path,
        )
