"""Fan-out of one participant's encoded media to its subscribers, with bounded queues.

A `Feed` is one participant's audio or video for the whole life of a room: it outlives the
participant's peer connections, so a reconnecting participant publishes into the same feed (a
new *segment*) and subscribers keep playing. A `ForwardedTrack` is one subscriber: an aiortc
track whose `recv()` returns `av.Packet`s, which aiortc's sender packetizes without encoding.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from vvserver.media.frames import EncodedFrame, MediaKind, clock_rate, time_base

logger = logging.getLogger(__name__)

RTP_TIMESTAMP_MOD = 1 << 32
DEFAULT_VIDEO_QUEUE = 30  # ~1 s at 30 fps; beyond that a subscriber is too slow
DEFAULT_AUDIO_QUEUE = 50  # ~1 s of 20 ms Opus packets
PRESTART_AUDIO_PACKETS = 3  # kept while the subscriber's connection is still being set up
DEFAULT_KEYFRAME_INTERVAL = 0.5  # at most this often a PLI goes to the publisher
REMB_MAX_AGE = 5.0  # a subscriber's REMB older than this no longer limits the publisher
MIN_FORWARDED_REMB = 64_000  # never ask a publisher to go below this (bps)

# A publisher sending more than this is flooding (ASVS V17): the excess is dropped, not
# forwarded or recorded. Browsers send at most ~2.5 Mbps of video and ~0.5 Mbps of Opus.
MAX_PUBLISH_BITRATE: dict[MediaKind, int] = {"video": 4_000_000, "audio": 512_000}
BITRATE_BURST_SECONDS = 1.0

SendPli = Callable[[int], None]  # media SSRC -> sends an RTCP PLI to the publisher


@dataclass
class MediaCounters:
    """Running totals of what a process's subscriber tracks forwarded and dropped (metrics).

    One instance is shared by every track of a room registry and never reset, so the totals
    stay monotonic as rooms and connections come and go.
    """

    frames_forwarded: int = 0
    packets_forwarded: int = 0
    bytes_forwarded: int = 0  # RTP payload bytes
    frames_dropped: int = 0


class ByteBudget:
    """A token bucket of bytes: `bits_per_second`, with a burst of `burst_seconds`."""

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


class FeedSubscriber(Protocol):
    """What a feed hands frames to: a forwarded track, a recorder."""

    @property
    def kind(self) -> MediaKind: ...

    def attach(self, feed: Feed) -> None: ...

    def offer(self, frame: EncodedFrame, segment: int) -> None: ...

    def remb(self, now: float, max_age: float) -> int | None: ...


class Feed:
    """One participant's audio or video: receives frames, hands them to every subscriber."""

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
        self._subscribers: list[FeedSubscriber] = []
        self._send_pli: SendPli | None = None
        self._segment = 0
        self._last_ssrc: int | None = None
        self._needs_keyframe = False  # frames were lost: hold delta frames until a keyframe
        self._keyframe_wanted = False
        self._last_pli = -math.inf
        self.frames_in = 0
        self.bytes_in = 0
        self.keyframes_in = 0
        self.plis_sent = 0
        self.frames_held = 0  # delta frames not forwarded while waiting for a keyframe
        self.frames_over_budget = 0  # dropped because the publisher sent too much

    @property
    def subscribers(self) -> tuple[FeedSubscriber, ...]:
        return tuple(self._subscribers)

    @property
    def has_publisher(self) -> bool:
        return self._send_pli is not None

    def attach_publisher(self, send_pli: SendPli) -> int:
        """A (re)connected participant now sends this feed; returns its segment number."""
        self._segment += 1
        self._send_pli = send_pli
        self._last_ssrc = None
        self._needs_keyframe = self.kind == "video"
        if self.kind == "video" and self._subscribers:
            self._keyframe_wanted = True
        return self._segment

    def detach_publisher(self, segment: int) -> None:
        if segment == self._segment:
            self._send_pli = None

    def publish(self, frame: EncodedFrame, segment: int) -> None:
        """Called by the publisher's receiver (on the event loop) for each complete frame."""
        if segment != self._segment:
            return  # a replaced connection still delivering its last packets
        self.frames_in += 1
        self.bytes_in += len(frame.data)
        self._last_ssrc = frame.ssrc
        if not self._budget.take(len(frame.data), self._clock()):
            if self.frames_over_budget % 500 == 0:
                logger.warning("%s: publisher exceeds its bitrate budget, dropping", self.label)
            self.frames_over_budget += 1
            self._needs_keyframe = self.kind == "video"  # the next frames would not decode
            return
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
        for subscriber in self._subscribers:
            subscriber.offer(frame, segment)

    def request_keyframe(self) -> None:
        """Ask the publisher for a keyframe, at most once per keyframe interval."""
        if self.kind != "video":
            return
        self._keyframe_wanted = True
        self._maybe_send_pli()

    def _maybe_send_pli(self) -> None:
        now = self._clock()
        if self._send_pli is None or self._last_ssrc is None:
            return  # sent with the publisher's first frame
        if now - self._last_pli < self._keyframe_interval:
            return  # retried with a later frame unless a keyframe comes first
        self._last_pli = now
        self.plis_sent += 1
        self._send_pli(self._last_ssrc)

    def lowest_subscriber_remb(self) -> int | None:
        """The lowest recent REMB among subscribers (bps), to cap the publisher's bitrate."""
        now = self._clock()
        recent = [
            bitrate
            for track in self._subscribers
            if (bitrate := track.remb(now, REMB_MAX_AGE)) is not None
        ]
        return max(MIN_FORWARDED_REMB, min(recent)) if recent else None

    def subscribe(self, track: FeedSubscriber) -> None:
        if track.kind != self.kind:
            raise ValueError(f"a {track.kind} track cannot play a {self.kind} feed")
        self._subscribers.append(track)
        track.attach(self)
        self.request_keyframe()

    def unsubscribe(self, track: FeedSubscriber) -> None:
        if track in self._subscribers:
            self._subscribers.remove(track)


class ForwardedTrack(MediaStreamTrack):
    """A subscriber to one feed; aiortc's sender pulls `av.Packet`s from it."""

    def __init__(
        self,
        kind: MediaKind,
        label: str,
        *,
        max_queue: int | None = None,
        counters: MediaCounters | None = None,
    ) -> None:
        super().__init__()
        self.kind: MediaKind = kind
        self.counters = counters or MediaCounters()
        self.label = label
        self._max_queue = max_queue or (
            DEFAULT_VIDEO_QUEUE if kind == "video" else DEFAULT_AUDIO_QUEUE
        )
        self._queue: deque[tuple[EncodedFrame, int]] = deque()
        self._ready = asyncio.Event()
        self._feed: Feed | None = None
        self._waiting_for_keyframe = kind == "video"
        self._pulling = False  # True once aiortc's sender asks for frames
        self._clock_rate = clock_rate(kind)
        self._time_base = time_base(kind)
        # timestamp rebasing: the output never jumps backwards across publisher segments
        self._last_segment: int | None = None
        self._last_rtp_timestamp = 0
        self._last_arrival = 0.0
        self._last_pts = 0
        self._remb: tuple[int, float] | None = None  # (bps, when) from the subscriber
        self.frames_out = 0
        self.frames_dropped = 0
        self.keyframe_requests = 0

    @property
    def queued(self) -> int:
        return len(self._queue)

    def attach(self, feed: Feed) -> None:
        self._feed = feed

    def offer(self, frame: EncodedFrame, segment: int) -> None:
        """Queue a frame; a slow video subscriber drops to the next keyframe."""
        if self.readyState != "live":
            return
        if self._waiting_for_keyframe:
            if not frame.keyframe:
                self._drop(1)
                return
            self._waiting_for_keyframe = False
        if not self._pulling:
            # The sender has not started (ICE/DTLS still connecting): keep only what is worth
            # sending once it does, not a second of stale media in a burst.
            if frame.keyframe and self.kind == "video":
                self._drop(len(self._queue))
                self._queue.clear()
            elif self.kind == "audio" and len(self._queue) >= PRESTART_AUDIO_PACKETS:
                self._queue.popleft()
                self._drop(1)
        if len(self._queue) >= self._max_queue:
            if self.kind == "audio":
                self._queue.popleft()
                self._drop(1)
            else:
                self._drop(len(self._queue))
                self._queue.clear()
                if not frame.keyframe:
                    self._drop(1)
                    self._waiting_for_keyframe = True
                    self.request_keyframe()
                    return
        self._queue.append((frame, segment))
        self._ready.set()

    def _drop(self, frames: int) -> None:
        self.frames_dropped += frames
        self.counters.frames_dropped += frames

    def sent(self, packets: int, octets: int) -> None:
        """The sender put one frame on the wire as `packets` RTP packets of `octets` bytes."""
        self.counters.packets_forwarded += packets
        self.counters.bytes_forwarded += octets

    def request_keyframe(self) -> None:
        """The subscriber's receiver lost the picture (PLI/FIR), or this track dropped frames."""
        self.keyframe_requests += 1
        if self._feed is not None:
            self._feed.request_keyframe()

    def report_remb(self, bitrate: int, at: float) -> None:
        """The subscriber's receiver estimates it can take `bitrate` bps (RTCP REMB)."""
        self._remb = (bitrate, at)

    def remb(self, now: float, max_age: float) -> int | None:
        if self._remb is None or now - self._remb[1] > max_age:
            return None
        return self._remb[0]

    async def next_frame(self) -> tuple[bytes, int]:
        """The next frame to send and its rebased timestamp (in the codec's clock rate).

        What the relay's senders pull (`aiortc_hooks.forward_frames`); raises
        MediaStreamError once the track has stopped.
        """
        self._pulling = True
        while not self._queue:
            if self.readyState != "live":
                raise MediaStreamError
            self._ready.clear()
            await self._ready.wait()
        frame, segment = self._queue.popleft()
        self.frames_out += 1
        self.counters.frames_forwarded += 1
        return frame.data, self._rebase(frame, segment)

    async def recv(self) -> av.Packet[Any]:
        """The same as `next_frame`, as the `av.Packet` aiortc's own sender loop takes."""
        data, pts = await self.next_frame()
        packet = av.Packet(data)
        packet.pts = pts
        packet.time_base = self._time_base
        return packet

    def _rebase(self, frame: EncodedFrame, segment: int) -> int:
        if self._last_segment is None:
            pts = 0
        elif segment == self._last_segment:
            delta = (frame.rtp_timestamp - self._last_rtp_timestamp) % RTP_TIMESTAMP_MOD
            pts = self._last_pts + (0 if delta >= RTP_TIMESTAMP_MOD // 2 else delta)
        else:
            elapsed = frame.arrival - self._last_arrival
            pts = self._last_pts + max(1, round(elapsed * self._clock_rate))
        self._last_segment = segment
        self._last_rtp_timestamp = frame.rtp_timestamp
        self._last_arrival = frame.arrival
        self._last_pts = pts
        return pts

    def stop(self) -> None:
        if self._feed is not None:
            self._feed.unsubscribe(self)
            self._feed = None
        self._queue.clear()
        super().stop()
        self._ready.set()
