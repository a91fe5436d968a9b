"""Fan-out of one participant's media to its subscribers, packet by packet, as it arrives.

A `Feed` is one participant's audio or video for the whole life of a room: it outlives the
participant's peer connections, so a reconnecting participant publishes into the same feed (a
new *segment*) and subscribers keep playing. Each RTP packet the publisher's receive path
hands it (`publish_packet`) goes at once to every `ForwardedTrack` (a subscriber's sender),
rewritten for it, with no frame assembly, task or queue between. Frames are assembled only
for what needs whole frames: the recorder and the feed's counters (`publish`).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from typing import Protocol

from vvserver.media.aiortc_hooks import RtpSlice
from vvserver.media.assembly import AudioPacketGate, VideoFrameAssembler
from vvserver.media.forwarded_track import ForwardedTrack, MediaCounters
from vvserver.media.frames import EncodedFrame, MediaKind
from vvserver.media.rtp_parsing import ntp_now, vp8_starts_keyframe

logger = logging.getLogger(__name__)

__all__ = ["Feed", "ForwardedTrack", "MediaCounters"]  # the track and counters: forwarded_track

DEFAULT_KEYFRAME_INTERVAL = 0.5  # at most this often a PLI goes to the publisher
NEW_SUBSCRIBER_PLI_INTERVAL = 0.1  # ... but a subscriber that starts waits at most this
REMB_MAX_AGE = 5.0  # a subscriber's REMB older than this no longer limits the publisher
MIN_FORWARDED_REMB = 64_000  # never ask a publisher to go below this (bps)

# A publisher sending more than this is flooding (ASVS V17): the excess is dropped, not
# forwarded or recorded. Browsers send at most ~2.5 Mbps of video and ~0.5 Mbps of Opus.
MAX_PUBLISH_BITRATE: dict[MediaKind, int] = {"video": 4_000_000, "audio": 512_000}
BITRATE_BURST_SECONDS = 1.0

SendPli = Callable[[int], None]  # media SSRC -> sends an RTCP PLI to the publisher
SendNack = Callable[[int, list[int]], None]  # media SSRC, sequence numbers -> RTCP NACK


class ByteBudget:
    """A token bucket of bytes: `bits_per_second`, with a burst of `burst_seconds`."""

    # the fields the C chain reads and writes are slots (_rtp_native.h: SlotCache)
    __slots__ = ("__dict__", "_at", "_capacity", "_rate", "_tokens")

    def __init__(self, bits_per_second: int, burst_seconds: float, now: float) -> None:
        self._rate = bits_per_second / 8
        self._capacity = self._rate * burst_seconds
        self._tokens = self._capacity
        self._at = now

    def take(self, size: int, now: float) -> bool:
        self._tokens = min(self._capacity, self._tokens + (now - self._at) * self._rate)
        self._at = now
        if size > self._tokens:
            return False
        self._tokens -= size
        return True


class ForwardingGate(Protocol):
    """What a feed asks before it forwards a packet (a room's `SlotGate`)."""

    @property
    def is_open(self) -> bool: ...


class FrameSubscriber(Protocol):
    """What a feed hands whole frames to: a recorder."""

    @property
    def kind(self) -> MediaKind: ...

    def attach(self, feed: Feed) -> None: ...

    def offer(self, frame: EncodedFrame, segment: int) -> None: ...


class Feed:
    """One participant's audio or video: forwards its packets, assembles frames for recording."""

    # the fields the C chain reads and writes are slots (_rtp_native.h: SlotCache)
    __slots__ = (
        "__dict__",
        "_assembler",
        "_budget",
        "_clock",
        "_cut",
        "_frame_subscribers",
        "_gate",
        "_keyframe_interval",
        "_keyframe_wanted",
        "_last_pli",
        "_last_ssrc",
        "_needs_keyframe",
        "_segment",
        "_send_nack",
        "_send_pli",
        "_tracks",
        "bytes_in",
        "forwarding_gate",
        "frames_held",
        "frames_in",
        "keyframes_in",
        "kind",
        "label",
        "nacks_sent",
        "packets_in",
        "packets_over_budget",
        "plis_sent",
        "source",
    )

    def __init__(
        self,
        kind: MediaKind,
        label: str,
        *,
        keyframe_interval: float = DEFAULT_KEYFRAME_INTERVAL,
        clock: Callable[[], float] | None = None,
        max_bitrate: int | None = None,
    ) -> None:
        self.kind: MediaKind = kind
        self.label = label
        self._keyframe_interval = keyframe_interval
        self._clock = clock or asyncio.get_running_loop().time
        self._budget = ByteBudget(
            max_bitrate or MAX_PUBLISH_BITRATE[kind], BITRATE_BURST_SECONDS, self._clock()
        )
        self._tracks: list[ForwardedTrack] = []
        # An object whose `is_open` says whether packets go on to the subscribers (None: they
        # always do); see `forwarding_open`.
        self.forwarding_gate: ForwardingGate | None = None
        self._frame_subscribers: list[FrameSubscriber] = []
        self._send_pli: SendPli | None = None
        self._send_nack: SendNack | None = None
        self._segment = 0
        self._assembler: VideoFrameAssembler | None = None
        self._gate: AudioPacketGate | None = None
        self._last_ssrc: int | None = None
        # Forwarding: a new source (segment or SSRC) restarts every subscriber's rewriting;
        # after packets were cut (over budget) nothing is forwarded until a keyframe starts.
        self.source = 0
        self._cut = False
        # Recording: after lost frames, delta frames are held until a keyframe.
        self._needs_keyframe = False
        self._keyframe_wanted = False
        self._last_pli = -math.inf
        self.packets_in = 0
        self.frames_in = 0
        self.bytes_in = 0
        self.keyframes_in = 0
        self.plis_sent = 0
        self.nacks_sent = 0
        self.frames_held = 0  # delta frames not recorded while waiting for a keyframe
        self.packets_over_budget = 0  # dropped because the publisher sent too much

    @property
    def subscribers(self) -> tuple[ForwardedTrack | FrameSubscriber, ...]:
        return (*self._tracks, *self._frame_subscribers)

    @property
    def has_publisher(self) -> bool:
        return self._send_pli is not None

    def attach_publisher(self, send_pli: SendPli, send_nack: SendNack | None = None) -> int:
        """A (re)connected participant now sends this feed; returns its segment number."""
        self._segment += 1
        self._send_pli = send_pli
        self._send_nack = send_nack
        self._last_ssrc = None
        self.source += 1
        self._cut = False
        if self.kind == "video":
            self._assembler = VideoFrameAssembler()
            self._needs_keyframe = True
            if self._tracks or self._frame_subscribers:
                self._keyframe_wanted = True
        else:
            self._gate = AudioPacketGate()
        return self._segment

    def detach_publisher(self, segment: int) -> None:
        if segment == self._segment:
            self._send_pli = None
            self._send_nack = None

    def publish_packet(self, rtp: RtpSlice, segment: int, now: float) -> None:
        """Called by the publisher's receive path (on the event loop) for each RTP packet."""
        if segment != self._segment:
            return  # a replaced connection still delivering its last packets
        if not self._budget.take(len(rtp.payload), now):
            if self.packets_over_budget % 500 == 0:
                logger.warning("%s: publisher exceeds its bitrate budget, dropping", self.label)
            self.packets_over_budget += 1
            self._cut = self.kind == "video"  # what follows would not decode
            return
        self.packets_in += 1
        if rtp.ssrc != self._last_ssrc:
            if self._last_ssrc is not None:
                self.source += 1  # the publisher restarted its stream
            self._last_ssrc = rtp.ssrc
        if self.kind == "video":
            key_start = vp8_starts_keyframe(rtp.payload)
            if self._cut:
                if key_start:
                    self._cut = False
                else:
                    self.request_keyframe()
            if not self._cut and self._tracks and self.forwarding_open():
                ntp = ntp_now()
                for track in self._tracks:
                    track.forward(rtp, key_start, self.source, now, ntp)
        elif self._tracks and self.forwarding_open():
            ntp = ntp_now()
            for track in self._tracks:
                track.forward(rtp, True, self.source, now, ntp)
        self._assemble(rtp, segment, now)

    def _assemble(self, rtp: RtpSlice, segment: int, now: float) -> None:
        """Assemble the packet into frames (video) or release it in order (audio); publish
        what completes. (Also called by the C chain for the packets it does not assemble.)"""
        if self.kind == "video":
            assembler = self._assembler
            if assembler is not None:
                frames, want_keyframe = assembler.add(rtp, now)
                for frame in frames:
                    self.publish(frame, segment)
                if want_keyframe:
                    self.request_keyframe()
        else:
            gate = self._gate
            if gate is not None:
                for frame in gate.add(rtp, now):
                    self.publish(frame, segment)

    def forwarding_open(self) -> bool:
        """Whether packets go on to the subscribers now (a room's waiting room says no: its
        gate, `forwarding_gate`, is closed). The C chain reads `forwarding_gate` itself."""
        gate = self.forwarding_gate
        return gate is None or gate.is_open

    def publish(self, frame: EncodedFrame, segment: int) -> None:
        """A complete frame (assembled from the packets): counted, and recorded."""
        if segment != self._segment:
            return
        self.frames_in += 1
        self.bytes_in += len(frame.data)
        if self._last_ssrc is None:
            self._last_ssrc = frame.ssrc
        if self.kind == "video":
            if frame.keyframe:
                self.keyframes_in += 1
                self._needs_keyframe = False
                self._keyframe_wanted = False
            else:
                if frame.after_loss:
                    self._needs_keyframe = True
                if self._needs_keyframe:
                    self.frames_held += 1
                    self.request_keyframe()
                    return
                if self._keyframe_wanted:
                    self._maybe_send_pli()
        for subscriber in self._frame_subscribers:
            subscriber.offer(frame, segment)

    def request_keyframe(self, *, new_subscriber: bool = False) -> None:
        """Ask the publisher for a keyframe, at most once per keyframe interval (for a
        subscriber that starts now, unless one was asked for in the last 0.1 s: the one asked
        for earlier may have come before it could take it)."""
        if self.kind != "video":
            return
        self._keyframe_wanted = True
        self._maybe_send_pli(NEW_SUBSCRIBER_PLI_INTERVAL if new_subscriber else None)

    def _maybe_send_pli(self, interval: float | None = None) -> None:
        now = self._clock()
        if self._send_pli is None or self._last_ssrc is None:
            return  # sent with the publisher's first frame
        if now - self._last_pli < min(self._keyframe_interval, interval or math.inf):
            return  # retried with a later frame unless a keyframe comes first
        self._last_pli = now
        self.plis_sent += 1
        self._send_pli(self._last_ssrc)

    def request_retransmission(self, sequence_number: int) -> None:
        """A subscriber misses a packet the relay never got: ask the publisher (RTCP NACK)."""
        if self._send_nack is not None and self._last_ssrc is not None:
            self.nacks_sent += 1
            self._send_nack(self._last_ssrc, [sequence_number])

    def lowest_subscriber_remb(self) -> int | None:
        """The lowest recent REMB among subscribers (bps), to cap the publisher's bitrate."""
        now = self._clock()
        recent = [
            bitrate
            for track in self._tracks
            if (bitrate := track.remb(now, REMB_MAX_AGE)) is not None
        ]
        return max(MIN_FORWARDED_REMB, min(recent)) if recent else None

    def subscribe(self, track: ForwardedTrack) -> None:
        """Forward this feed's packets to `track` (a subscriber's sender)."""
        if track.kind != self.kind:
            raise ValueError(f"a {track.kind} track cannot play a {self.kind} feed")
        self._tracks.append(track)
        track.attach(self)

    def subscribe_frames(self, subscriber: FrameSubscriber) -> None:
        """Hand this feed's assembled frames to `subscriber` (a recorder) from now on."""
        if subscriber.kind != self.kind:
            raise ValueError(f"a {subscriber.kind} subscriber cannot take a {self.kind} feed")
        self._frame_subscribers.append(subscriber)
        subscriber.attach(self)
        self._needs_keyframe = self.kind == "video"
        self.request_keyframe()

    def unsubscribe(self, subscriber: ForwardedTrack | FrameSubscriber) -> None:
        if isinstance(subscriber, ForwardedTrack):
            if subscriber in self._tracks:
                self._tracks.remove(subscriber)
        elif subscriber in self._frame_subscribers:
            self._frame_subscribers.remove(subscriber)
