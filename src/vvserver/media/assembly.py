"""Turning received RTP packets into encoded frames with as little delay as possible.

aiortc's own jitter buffer releases a video frame only when the first packet of the *next*
frame arrives (one frame interval late) and holds 4 audio packets of prefetch (~80 ms).
Here a video frame is released as soon as its marker-bit packet arrives and every packet
before it is present; an audio packet is released as soon as every packet before it is in, or
after a short reorder window when one is missing.

Packets far behind the release point are late retransmissions (a receiver NACKs the last
packets of an outage once it is over), never a reason to start over: only a new SSRC, or
nothing but such packets for `RESTART_AFTER` seconds, means the source restarted. After an
outage (nothing received for `OUTAGE_GAP` seconds, then a jump in sequence numbers) assembly
resumes at the first new packet, so the retransmissions of what was lost come too late to be
released as stale frames in the middle of current ones.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from vvserver.media.aiortc_hooks import RtpSlice
from vvserver.media.frames import EncodedFrame, vp8_descriptor_starts_frame, vp8_is_keyframe

if TYPE_CHECKING:
    from vvserver.media._rtp_native import FrameLane

SEQ_MOD = 1 << 16
MAX_MISORDER = 100  # packets this far behind the release point are watched for a restart
RESTART_AFTER = 1.0  # s of nothing but packets far behind: the source restarted its numbers
OUTAGE_GAP = 0.5  # s without any packet, then a jump: what is missing was lost in an outage
AUDIO_REORDER_WINDOW = 0.06  # s an audio packet waits for a missing earlier one
AUDIO_MAX_HELD = 8  # audio packets held at most while waiting (160 ms of Opus)


def _seq_add(seq: int, delta: int) -> int:
    return (seq + delta) % SEQ_MOD


def _seq_ahead(seq: int, base: int) -> int:
    """How far `seq` is ahead of `base` (negative when behind), modulo 16-bit wrap-around."""
    ahead = (seq - base) % SEQ_MOD
    return ahead - SEQ_MOD if ahead >= SEQ_MOD // 2 else ahead


class VideoFrameAssembler:
    """Reassembles VP8 frames from RTP packets, waiting briefly for NACKed retransmissions."""

    # the fields the C chain reads and writes are slots (_rtp_native.h: SlotCache)
    __slots__ = (
        "__dict__",
        "_behind_since",
        "_capacity",
        "_is_keyframe",
        "_lane",
        "_last_arrival",
        "_loss",
        "_max_wait",
        "_next",
        "_slots",
        "_ssrc",
        "_stalled_since",
        "_starts_frame",
    )

    def __init__(
        self,
        *,
        capacity: int = 512,
        max_wait: float = 0.25,
        starts_frame: Callable[[bytes], bool] = vp8_descriptor_starts_frame,
        is_keyframe: Callable[[bytes], bool] = vp8_is_keyframe,
    ) -> None:
        self._capacity = capacity
        self._max_wait = max_wait
        self._starts_frame = starts_frame
        self._is_keyframe = is_keyframe
        self._slots: dict[int, RtpSlice] = {}
        self._next: int | None = None  # oldest sequence number not yet released or skipped
        self._ssrc: int | None = None
        self._loss = False  # frames were skipped since the last released frame
        self._stalled_since: float | None = None
        self._last_arrival = 0.0
        self._behind_since: float | None = None  # only packets far behind arrive since then

        # The relay's C chain (`_relay_lane.c`) holds the packets of a frame arriving in order
        # here (a `_rtp_native.FrameLane`) while `_slots` is empty, and releases the frame
        # itself; anything else comes to `add`, which takes the held packets back first.
        self._lane: FrameLane | None = None

    @property
    def pending_packets(self) -> int:
        lane = self._lane
        return len(self._slots) + (lane.pending if lane is not None else 0)

    def add(self, rtp: RtpSlice, arrival: float) -> tuple[list[EncodedFrame], bool]:
        """Take one packet; return the frames it completes and whether to ask for a keyframe."""
        lane = self._lane
        if lane is None or not lane.pending:
            return self._add(rtp, arrival)
        frames: list[EncodedFrame] = []
        want_keyframe = False
        for held, at in [*lane.take(), (rtp, arrival)]:
            more, wanted = self._add(held, at)
            frames += more
            want_keyframe = want_keyframe or wanted
        return frames, want_keyframe

    def _add(self, rtp: RtpSlice, arrival: float) -> tuple[list[EncodedFrame], bool]:
        want_keyframe = False
        quiet = arrival - self._last_arrival
        self._last_arrival = arrival
        if self._next is None or rtp.ssrc != self._ssrc:
            if self._next is not None:
                self._restart(rtp.sequence_number)  # a new source
                want_keyframe = True
            self._next = rtp.sequence_number
            self._ssrc = rtp.ssrc
        ahead = _seq_ahead(rtp.sequence_number, self._next)
        if ahead < 0:
            if -ahead < MAX_MISORDER:
                return [], False  # late: its frame was already released or given up
            # Far behind: a late retransmission, unless nothing else comes for a while.
            if self._behind_since is None:
                self._behind_since = arrival
            if arrival - self._behind_since <= RESTART_AFTER:
                return [], False
            self._restart(rtp.sequence_number)  # the source restarted its sequence numbers
            want_keyframe = True
        elif ahead >= self._capacity or (ahead > 0 and quiet > OUTAGE_GAP):
            # Too much missing, or the end of an outage: start over from this packet, so that
            # the retransmissions of what was lost are late, not stale frames released now.
            self._restart(rtp.sequence_number)
            want_keyframe = True
        self._behind_since = None
        if rtp.sequence_number in self._slots:
            return [], want_keyframe
        self._slots[rtp.sequence_number] = rtp

        frames = self._drain(arrival)
        if frames or not self._slots:
            self._stalled_since = None
        elif self._stalled_since is None:
            self._stalled_since = arrival
        elif arrival - self._stalled_since > self._max_wait:
            self._skip_incomplete_frame()
            want_keyframe = True
            frames = self._drain(arrival)
            self._stalled_since = arrival if self._slots and not frames else None
        return frames, want_keyframe

    def _restart(self, sequence_number: int) -> None:
        self._slots.clear()
        self._next = sequence_number
        self._loss = True
        self._stalled_since = None
        self._behind_since = None

    def _drain(self, arrival: float) -> list[EncodedFrame]:
        frames: list[EncodedFrame] = []
        while self._next is not None and (first := self._slots.get(self._next)) is not None:
            parts: list[RtpSlice] = []
            seq = self._next
            end: int | None = None
            while (packet := self._slots.get(seq)) is not None and len(parts) < self._capacity:
                if packet.timestamp != first.timestamp:
                    end = seq  # the previous frame ended without a marker bit
                    break
                parts.append(packet)
                seq = _seq_add(seq, 1)
                if packet.marker:
                    end = seq
                    break
            if end is None:
                break  # still waiting for packets of this frame
            for part in parts:
                del self._slots[part.sequence_number]
            self._next = end
            if not self._starts_frame(first.payload):
                self._loss = True  # joined mid-frame: the frame is unusable
                continue
            data = b"".join(part.data for part in parts)
            frames.append(
                EncodedFrame(
                    kind="video",
                    data=data,
                    rtp_timestamp=first.timestamp,
                    keyframe=self._is_keyframe(data),
                    ssrc=first.ssrc,
                    arrival=arrival,
                    after_loss=self._loss,
                )
            )
            self._loss = False
        return frames

    def _skip_incomplete_frame(self) -> None:
        """Give up on the oldest frame: resume at the next packet that starts a frame."""
        assert self._next is not None
        self._loss = True
        waiting = sorted(self._slots, key=lambda seq: _seq_ahead(seq, self._next or 0))
        for seq in waiting:
            packet = self._slots[seq]
            if seq != self._next and self._starts_frame(packet.payload):
                self._next = seq
                return
            del self._slots[seq]
        if waiting:
            self._next = _seq_add(waiting[-1], 1)


class AudioPacketGate:
    """Releases Opus packets in sequence order, at once when nothing is missing before them.

    A packet after a gap is held until the missing ones arrive (reordering under jitter), for
    at most `window` seconds or `max_held` packets; then the gap is given up. Duplicates and
    packets behind the release point are dropped. The usual case, the next packet in order
    with nothing held, costs one comparison.
    """

    # the fields the C chain reads and writes are slots (_rtp_native.h: SlotCache)
    __slots__ = ("__dict__", "_behind_since", "_held", "_max_held", "_next", "_ssrc", "_window")

    def __init__(
        self, *, window: float = AUDIO_REORDER_WINDOW, max_held: int = AUDIO_MAX_HELD
    ) -> None:
        self._window = window
        self._max_held = max_held
        self._next = 0  # the sequence number expected next
        self._ssrc: int | None = None
        self._held: dict[int, EncodedFrame] = {}  # sequence number -> packet (data may be b"")
        self._behind_since: float | None = None

    @property
    def held_packets(self) -> int:
        return len(self._held)

    def add(self, rtp: RtpSlice, arrival: float) -> list[EncodedFrame]:
        seq = rtp.sequence_number
        if rtp.ssrc != self._ssrc:
            self._restart(rtp.ssrc, seq)
        if seq == self._next and not self._held:
            self._next = (seq + 1) % SEQ_MOD
            return [_audio_frame(rtp, arrival)] if rtp.data else []
        ahead = _seq_ahead(seq, self._next)
        if ahead < 0:
            if -ahead >= MAX_MISORDER:
                if self._behind_since is None:
                    self._behind_since = arrival
                elif arrival - self._behind_since > RESTART_AFTER:
                    self._restart(rtp.ssrc, seq)  # the source restarted its numbers
                    return self.add(rtp, arrival)
            return []  # a duplicate, or too late: what came after it has gone out
        self._behind_since = None
        if seq in self._held:
            return []
        self._held[seq] = _audio_frame(rtp, arrival)
        released: list[EncodedFrame] = []
        self._release_run(released)
        while self._held and (
            ahead > self._max_held  # a jump (an outage): no use waiting
            or len(self._held) > self._max_held
            or arrival - min(f.arrival for f in self._held.values()) > self._window
        ):
            self._next = min(self._held, key=lambda s: _seq_ahead(s, self._next))  # skip the gap
            self._release_run(released)
        return released

    def _release_run(self, released: list[EncodedFrame]) -> None:
        """Release the held packets that follow the release point without a gap."""
        while (frame := self._held.pop(self._next, None)) is not None:
            if frame.data:
                released.append(frame)
            self._next = (self._next + 1) % SEQ_MOD

    def _restart(self, ssrc: int, seq: int) -> None:
        self._ssrc = ssrc
        self._next = seq
        self._held.clear()
        self._behind_since = None


def _audio_frame(rtp: RtpSlice, arrival: float) -> EncodedFrame:
    return EncodedFrame(
        kind="audio",
        data=rtp.data,
        rtp_timestamp=rtp.timestamp,
        keyframe=True,
        ssrc=rtp.ssrc,
        arrival=arrival,
    )
