"""One peer connection of a visit participant: publishes its media, plays the other side's."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from aiortc import (
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.rtcrtpparameters import RTCRtpCodecCapability

from vvserver.aio import TaskSet
from vvserver.media.aiortc_hooks import (
    cap_receiver_remb,
    on_keyframe_request,
    on_remb,
    rtc_configuration,
    send_nack_upstream,
    send_pli_upstream,
    tap_receiver,
)
from vvserver.media.fast_receive import enable_fast_receive
from vvserver.media.feed_sink import FeedSink
from vvserver.media.forwarding import Feed, ForwardedTrack, MediaCounters
from vvserver.media.frames import MediaKind
from vvserver.media.media_flow import MediaPresence
from vvserver.media.offers import CheckedOffer, answer_direction
from vvserver.media.rtp_send_path import RtpSendPath

logger = logging.getLogger(__name__)

# The relay forwards, it never transcodes: both sides must use the same codecs.
FORWARDED_CODECS: dict[MediaKind, str] = {"video": "vp8", "audio": "opus"}


def codec_preferences(kind: MediaKind) -> list[RTCRtpCodecCapability]:
    """The forwarded codec for `kind`, plus RTX for video retransmissions."""
    wanted = FORWARDED_CODECS[kind]
    capabilities = RTCRtpSender.getCapabilities(kind).codecs
    chosen = [c for c in capabilities if c.mimeType.lower() == f"{kind}/{wanted}"]
    if kind == "video":
        chosen += [c for c in capabilities if c.mimeType.lower() == "video/rtx"]
    return chosen


class VisitLog(logging.LoggerAdapter[logging.Logger]):
    """Prefixes every line with the visit id (and the participant role, when known)."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        return f"[{self.extra['context'] if self.extra else ''}] {msg}", kwargs


def visit_log(base: logging.Logger, context: str) -> VisitLog:
    return VisitLog(base, {"context": context})


StateListener = Callable[["ParticipantConnection", str], None]


class ParticipantConnection:
    """Wraps one RTCPeerConnection; media goes through feeds, never through a decoder."""

    def __init__(
        self,
        *,
        visit_id: int,
        name: str,
        ice_servers: Sequence[RTCIceServer],
        on_state: StateListener,
        counters: MediaCounters | None = None,
    ) -> None:
        self.name = name
        self._counters = counters
        self.log = visit_log(logger, f"visit {visit_id} {name}")
        self.pc = RTCPeerConnection(rtc_configuration(ice_servers))
        self._on_state = on_state
        self._tasks = TaskSet()
        self._tracks: list[ForwardedTrack] = []
        self._publications: list[tuple[Feed, int]] = []
        self._closed = False
        self._close_done = asyncio.Event()
        self.answered = False
        self.pc.on("connectionstatechange", self._connection_state_changed)

    @property
    def connection_state(self) -> str:
        return str(self.pc.connectionState)

    @property
    def tracks(self) -> tuple[ForwardedTrack, ...]:
        return tuple(self._tracks)

    async def answer(
        self,
        offer: CheckedOffer,
        *,
        publish_to: Sequence[Feed | None],
        play_from: Sequence[Feed | None],
        presence: MediaPresence | None = None,
    ) -> str:
        """Answer `offer`; media section i publishes to publish_to[i], plays play_from[i].

        Every packet published is noted in `presence` (when the participant was last heard).
        """
        if presence is None:
            presence = MediaPresence()
        for index, section in enumerate(offer.media):
            source, feed = publish_to[index], play_from[index]
            # Only a section that publishes may receive: an untapped receiver would decode.
            direction = answer_direction(plays=feed is not None, publishes=source is not None)
            track = ForwardedTrack(
                section.kind, f"{self.name}/{section.kind}{index}", counters=self._counters
            )
            self._tracks.append(track)
            transceiver = self.pc.addTransceiver(track, direction=direction)
            transceiver.setCodecPreferences(codec_preferences(section.kind))
            track.bind(RtpSendPath(transceiver.sender))
            on_keyframe_request(transceiver.sender, track.request_keyframe)
            on_remb(transceiver.sender, self._remb_reporter(track))
            if source is not None and section.direction in ("sendrecv", "sendonly"):
                self._publish(transceiver.receiver, source, presence)
            if feed is not None and section.direction in ("sendrecv", "recvonly"):
                feed.subscribe(track)
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer.sdp, type="offer"))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        enable_fast_receive(self.pc)  # bundled now; media flows once DTLS is up
        local = self.pc.localDescription
        assert local is not None
        self.answered = True
        self.log.info("answered an offer with %d media sections", len(offer.media))
        return str(local.sdp)

    @staticmethod
    def _remb_reporter(track: ForwardedTrack) -> Callable[[int], None]:
        loop = asyncio.get_running_loop()
        return lambda bitrate: track.report_remb(bitrate, loop.time())

    def _publish(self, receiver: RTCRtpReceiver, feed: Feed, presence: MediaPresence) -> None:
        segment = feed.attach_publisher(
            lambda ssrc: self._send_pli(receiver, ssrc),
            lambda ssrc, lost: self._send_nack(receiver, ssrc, lost),
        )
        self._publications.append((feed, segment))
        loop = asyncio.get_running_loop()
        if feed.kind == "video":
            # A subscriber on a weak link lowers the publisher's bitrate instead of freezing.
            cap_receiver_remb(receiver, feed.lowest_subscriber_remb)
        tap_receiver(receiver, FeedSink(feed, segment, presence, loop.time))

    def _send_pli(self, receiver: RTCRtpReceiver, ssrc: int) -> None:
        if self._closed:
            return

        async def send() -> None:
            await send_pli_upstream(receiver, ssrc)

        self._tasks.create(send(), name=f"pli {self.name} {ssrc}")

    def _send_nack(self, receiver: RTCRtpReceiver, ssrc: int, lost: list[int]) -> None:
        if self._closed:
            return

        async def send() -> None:
            await send_nack_upstream(receiver, ssrc, lost)

        self._tasks.create(send(), name=f"nack {self.name} {ssrc}")

    def _connection_state_changed(self) -> None:
        state = self.connection_state
        self.log.info("connection state %s", state)
        self._on_state(self, state)

    async def close(self) -> None:
        """Stop publishing and playing, close the peer connection; safe to call twice."""
        if self._closed:
            await self._close_done.wait()
            return
        self._closed = True
        try:
            for feed, segment in self._publications:
                feed.detach_publisher(segment)
            for track in self._tracks:
                track.stop()
            await self.pc.close()
            await self._tasks.close()
        finally:
            self._close_done.set()
        self.log.info("closed")


def media_counts(offer: CheckedOffer) -> Mapping[MediaKind, int]:
    counts: dict[MediaKind, int] = {"audio": 0, "video": 0}
    for section in offer.media:
        counts[section.kind] += 1
    return counts
