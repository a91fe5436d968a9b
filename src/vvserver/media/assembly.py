"""Turning received RTP packets into encoded frames with as little delay as possible.

aiortc's own jitter buffer releases a video frame only when the first packet of the *next*
frame arrives (one frame interval late) and holds 4 audio packets of prefetch (~80 ms).
Here a video frame is released as soon as its marker-bit packet arrives and every packet
before it is present; an audio packet is released at once (late duplicates are dropped).
"""

from __future__ import annotations

from collections.abc import Callable

from vvserver.media.aiortc_hooks import RtpSlice
from vvserver.media.frames import EncodedFrame, vp8_descriptor_starts_frame, vp8_is_keyframe

SEQ_MOD = 1 << 16
MAX_MISORDER = 100  # a packet this far behind the release point means the source restarted


def _seq_add(seq: int, delta: int) -> int:
    return (seq + delta) % SEQ_MOD


def _seq_ahead(seq: int, base: int) -> int:
    """How far `seq` is ahead of `base` (negative when behind), modulo 16-bit wrap-around."""
    ahead = (seq - base) % SEQ_MOD
    return ahead - SEQ_MOD if ahead >= SEQ_MOD // 2 else ahead


class VideoFrameAssembler:
    """Reassembles VP8 frames from RTP packets, waiting briefly for NACKed retransmissions."""

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
        self._loss = False  # frames were skipped since the last released frame
        self._stalled_since: float | None = None

    @property
    def pending_packets(self) -> int:
        return len(self._slots)

    def add(self, rtp: RtpSlice, arrival: float) -> tuple[list[EncodedFrame], bool]:
        """Take one packet; return the frames it completes and whether to ask for a keyframe."""
        want_keyframe = False
        if self._next is None:
            self._next = rtp.sequence_number
        ahead = _seq_ahead(rtp.sequence_number, self._next)
        if ahead < 0:
            if -ahead < MAX_MISORDER:
                return [], False  # late: its frame was already released or given up
            self._restart(rtp.sequence_number)  # the source restarted its sequence numbers
            want_keyframe = True
        elif ahead >= self._capacity:
            self._restart(rtp.sequence_number)  # too much missing: start over from here
            want_keyframe = True
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
    """Releases each Opus packet at once; drops duplicates and packets that come too late."""

    def __init__(self) -> None:
        self._newest: int | None = None

    def add(self, rtp: RtpSlice, arrival: float) -> list[EncodedFrame]:
        if not rtp.data:
            return []
        if self._newest is not None:
            ahead = _seq_ahead(rtp.sequence_number, self._newest)
            if ahead == 0 or -MAX_MISORDER < ahead < 0:
                return []
        self._newest = rtp.sequence_number
        return [
            EncodedFrame(
                kind="audio",
                data=rtp.data,
                rtp_timestamp=rtp.timestamp,
                keyframe=True,
                ssrc=rtp.ssrc,
                arrival=arrival,
            )
        ]
