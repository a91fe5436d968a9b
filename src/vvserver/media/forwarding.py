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
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from vvserver.media.aiortc_hooks import RtpSlice
from vvserver.media.assembly import AudioPacketGate, VideoFrameAssembler
from vvserver.media.frames import EncodedFrame, MediaKind, clock_rate
from vvserver.media.rtp_parsing import ntp_now, vp8_starts_keyframe
from vvserver.media.rtp_send_path import BACKED_UP, SENT, RtpSendPath

logger = logging.getLogger(__name__)

SEQ_MOD = 1 << 16
RTP_TIMESTAMP_MOD = 1 << 32
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


class ForwardedTrack(MediaStreamTrack):
    """One subscriber of a feed: each packet rewritten for its sender and sent at once.

    Out SSRC and payload type are the sender's; out sequence number = in + an offset, out
    timestamp = in + an offset. Both are set when forwarding (re)starts: video at the first
    keyframe after the sender starts, after a slow socket, and at a new source (the publisher
    reconnected). The sequence offset then makes the first packet `highest sent + 1` (a
    restart is not a run of losses to the subscriber); across sources the timestamp follows
    the arrival gap, so it never runs backwards. Payloads pass unchanged.
    """

    def __init__(
        self, kind: MediaKind, label: str, *, counters: MediaCounters | None = None
    ) -> None:
        super().__init__()
        self.kind: MediaKind = kind
        self.counters = counters or MediaCounters()
        self.label = label
        self._out: RtpSendPath | None = None
        self._feed: Feed | None = None
        self._clock_rate = clock_rate(kind)
        self._await_keyframe = kind == "video"  # for a keyframe start
        self._source = -1  # the feed's source this track forwards
        self._new_source = False
        self._seq_offset = 0
        self._ts_offset = 0
        self._run_start = 0  # the in-sequence number the current run started at
        self._max_out: int | None = None  # the highest out-sequence number sent
        self._last_out_ts = 0
        self._last_at = 0.0
        self._frame_ts = -1
        self._dropped_ts = -1
        self._remb: tuple[int, float] | None = None  # (bps, when) from the subscriber
        self.frames_out = 0
        self.packets_out = 0
        self.frames_dropped = 0
        self.keyframe_requests = 0
        self.retransmissions_asked = 0

    def bind(self, out: RtpSendPath) -> None:
        """Send through `out` (the subscriber's sender); forwarding starts when it starts."""
        self._out = out
        out.on_start = self._sender_started
        out.on_missing = self._missing

    def attach(self, feed: Feed) -> None:
        self._feed = feed

    def _sender_started(self) -> None:
        if self.kind == "video":
            self._await_keyframe = True
            self.keyframe_requests += 1
            if self._feed is not None:
                self._feed.request_keyframe(new_subscriber=True)

    def forward(self, rtp: RtpSlice, key_start: bool, source: int, now: float, ntp: int) -> None:
        """Send one packet of the feed (`key_start`: it starts a keyframe; always True for
        audio, where any packet can start playback)."""
        out = self._out
        if out is None or not out.started:
            return
        seq = rtp.sequence_number
        if source != self._source:
            self._source = source
            self._new_source = self._max_out is not None
            self._await_keyframe = True
            if not key_start:
                self.request_keyframe()
        if self._await_keyframe:
            if not key_start:
                self._drop(rtp.timestamp)
                return
            self._restart(rtp, now)
        elif (seq - self._run_start) & 0xFFFF >= 0x8000:
            return  # from before this run (a late retransmission): its place was given away
        out_seq = (seq + self._seq_offset) & 0xFFFF
        out_ts = (rtp.timestamp + self._ts_offset) & 0xFFFFFFFF
        sent = out.send(out_seq, out_ts, rtp.marker, rtp.payload, ntp)
        if sent is not SENT:
            if sent is BACKED_UP and self.kind == "video":
                self._await_keyframe = True  # the socket is backed up: resume at a keyframe
                self.request_keyframe()
            self._drop(rtp.timestamp)
            return
        if out_ts != self._frame_ts:
            self._frame_ts = out_ts
            self.frames_out += 1
            self.counters.frames_forwarded += 1
        highest = self._max_out
        if highest is None or (out_seq - highest) & 0xFFFF < 0x8000:
            self._max_out = out_seq
        self._last_out_ts = out_ts
        self._last_at = now
        self.packets_out += 1
        self.counters.packets_forwarded += 1
        self.counters.bytes_forwarded += len(rtp.payload)

    def _restart(self, rtp: RtpSlice, now: float) -> None:
        self._await_keyframe = False
        seq, timestamp = rtp.sequence_number, rtp.timestamp
        if self._max_out is None:
            self._seq_offset = random.randrange(SEQ_MOD) - seq
            self._ts_offset = random.randrange(RTP_TIMESTAMP_MOD) - timestamp
            self._max_out = (seq + self._seq_offset - 1) & 0xFFFF
        else:
            self._seq_offset = self._max_out + 1 - seq
            if self._new_source:
                elapsed = max(1, round((now - self._last_at) * self._clock_rate))
                self._ts_offset = self._last_out_ts + elapsed - timestamp
        self._new_source = False
        self._run_start = seq
        self._frame_ts = -1  # the first packet starts a frame

    def _drop(self, timestamp: int) -> None:
        if timestamp != self._dropped_ts:
            self._dropped_ts = timestamp
            self.frames_dropped += 1
            self.counters.frames_dropped += 1

    def _missing(self, out_sequence_number: int) -> None:
        """The subscriber NACKed a packet not in the sender's history: ask upstream."""
        in_seq = (out_sequence_number - self._seq_offset) & 0xFFFF
        if self._feed is None or self._max_out is None or self._await_keyframe:
            return
        if (in_seq - self._run_start) & 0xFFFF >= 0x8000:
            return  # from before this run
        self.retransmissions_asked += 1
        self._feed.request_retransmission(in_seq)

    def request_keyframe(self) -> None:
        """The subscriber's receiver lost the picture (PLI/FIR), or this track must restart."""
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

    async def recv(self) -> Any:
        """Nothing pulls frames from a forwarding track: its packets are pushed."""
        raise MediaStreamError

    def stop(self) -> None:
        if self._feed is not None:
            self._feed.unsubscribe(self)
            self._feed = None
        super().stop()
