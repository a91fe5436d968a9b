"""One subscriber of a feed: each packet rewritten for its sender and sent at once.

Split from `forwarding` (whose `Feed` hands each packet to its `ForwardedTrack`s); the relay's
C chain (`_relay_lane.c`) does `ForwardedTrack.forward`'s usual case on the same attributes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from vvserver.media.aiortc_hooks import RtpSlice
from vvserver.media.frames import MediaKind, clock_rate
from vvserver.media.rtp_send_path import BACKED_UP, SENT, RtpSendPath

if TYPE_CHECKING:
    from vvserver.media.forwarding import Feed

SEQ_MOD = 1 << 16
RTP_TIMESTAMP_MOD = 1 << 32


@dataclass(slots=True)
class MediaCounters:
    """Running totals of what a process's subscriber tracks forwarded and dropped (metrics).

    One instance is shared by every track of a room registry and never reset, so the totals
    stay monotonic as rooms and connections come and go.
    """

    frames_forwarded: int = 0
    packets_forwarded: int = 0
    bytes_forwarded: int = 0  # RTP payload bytes
    frames_dropped: int = 0


class ForwardedTrack(MediaStreamTrack):
    """One subscriber of a feed: each packet rewritten for its sender and sent at once.

    Out SSRC and payload type are the sender's; out sequence number = in + an offset, out
    timestamp = in + an offset. Both are set when forwarding (re)starts: video at the first
    keyframe after the sender starts, after a slow socket, and at a new source (the publisher
    reconnected). The sequence offset then makes the first packet `highest sent + 1` (a
    restart is not a run of losses to the subscriber); across sources the timestamp follows
    the arrival gap, so it never runs backwards. Payloads pass unchanged.
    """

    # the fields the C chain reads and writes are slots (_rtp_native.h: SlotCache)
    __slots__ = (
        "_await_keyframe",
        "_clock_rate",
        "_dropped_ts",
        "_feed",
        "_frame_ts",
        "_last_at",
        "_last_out_ts",
        "_max_out",
        "_new_source",
        "_out",
        "_remb",
        "_run_start",
        "_seq_offset",
        "_source",
        "_ts_offset",
        "counters",
        "frames_dropped",
        "frames_out",
        "keyframe_requests",
        "kind",
        "label",
        "packets_out",
        "retransmissions_asked",
    )

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
