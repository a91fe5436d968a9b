"""Frames leave the assembler as soon as they are complete, and never half-built."""

from __future__ import annotations

from vvserver.media.aiortc_hooks import RtpSlice
from vvserver.media.assembly import AudioPacketGate, VideoFrameAssembler
from vvserver.media.frames import vp8_is_keyframe

KEYFRAME = b"\x10\x02\x00\x9d\x01\x2a\x80\x02\xe0\x01" + b"K" * 20  # P bit clear + start code
DELTA = b"\x31\x02\x00" + b"D" * 20


def vp8_packets(first_seq: int, timestamp: int, frame: bytes, parts: int) -> list[RtpSlice]:
    """A frame split into `parts` RTP packets; S bit on the first, marker on the last."""
    size = -(-len(frame) // parts)
    chunks = [frame[i : i + size] for i in range(0, len(frame), size)]
    return [
        RtpSlice(
            sequence_number=(first_seq + i) % 65536,
            timestamp=timestamp,
            marker=i == len(chunks) - 1,
            ssrc=1234,
            payload_type=96,
            payload=bytes([0x10 if i == 0 else 0x00]) + chunk,
            data=chunk,
        )
        for i, chunk in enumerate(chunks)
    ]


def test_a_frame_is_released_on_its_marker_packet_without_waiting_for_the_next() -> None:
    assembler = VideoFrameAssembler()
    first, second, last = vp8_packets(100, 3000, KEYFRAME, 3)
    assert assembler.add(first, 1.0) == ([], False)
    assert assembler.add(second, 1.0) == ([], False)
    frames, want_keyframe = assembler.add(last, 1.01)
    assert not want_keyframe
    assert [(f.data, f.keyframe, f.rtp_timestamp, f.after_loss) for f in frames] == [
        (KEYFRAME, True, 3000, False)
    ]
    assert assembler.pending_packets == 0


def test_reordered_packets_complete_frames_in_order_across_sequence_wraparound() -> None:
    assembler = VideoFrameAssembler()
    key = vp8_packets(65534, 0, KEYFRAME, 2)
    delta = vp8_packets(0, 3000, DELTA, 2)
    assert assembler.add(key[0], 0.0)[0] == []
    assert assembler.add(delta[0], 0.0)[0] == []  # the next frame starts before this one ends
    assert assembler.add(delta[1], 0.0)[0] == []
    frames, _ = assembler.add(key[1], 0.0)  # the late packet completes both frames
    assert [f.data for f in frames] == [KEYFRAME, DELTA]


def test_joining_mid_frame_drops_the_partial_frame_and_flags_the_loss() -> None:
    assembler = VideoFrameAssembler()
    key = vp8_packets(10, 0, KEYFRAME, 3)
    delta = vp8_packets(13, 3000, DELTA, 1)
    assert assembler.add(key[1], 0.0)[0] == []
    assert assembler.add(key[2], 0.0)[0] == []  # complete but without its start: dropped
    frames, _ = assembler.add(delta[0], 0.0)
    assert [(f.data, f.after_loss) for f in frames] == [(DELTA, True)]


def test_a_frame_whose_packet_never_comes_is_given_up_and_a_keyframe_asked_for() -> None:
    assembler = VideoFrameAssembler(max_wait=0.25)
    lost_frame = vp8_packets(0, 0, KEYFRAME, 3)
    following = [vp8_packets(3 + i, 3000 * (i + 1), DELTA, 1)[0] for i in range(12)]
    assembler.add(lost_frame[0], 0.0)
    assembler.add(lost_frame[2], 0.0)  # lost_frame[1] never arrives
    released = []
    asked = False
    for i, packet in enumerate(following):
        frames, want_keyframe = assembler.add(packet, 0.033 * (i + 1))
        released += frames
        asked = asked or want_keyframe
    assert asked
    assert released, "frames after the gap flow again"
    assert released[0].after_loss
    assert all(f.data == DELTA for f in released)


def test_a_big_jump_in_sequence_numbers_restarts_assembly() -> None:
    assembler = VideoFrameAssembler(capacity=64)
    assembler.add(vp8_packets(0, 0, KEYFRAME, 2)[0], 0.0)
    frames, want_keyframe = assembler.add(vp8_packets(5000, 9000, KEYFRAME, 1)[0], 0.1)
    assert want_keyframe
    assert [(f.keyframe, f.after_loss) for f in frames] == [(True, True)]


def test_vp8_keyframes_are_recognised_from_the_frame_header() -> None:
    assert vp8_is_keyframe(KEYFRAME)
    assert not vp8_is_keyframe(DELTA)
    assert not vp8_is_keyframe(b"")


def opus(seq: int, data: bytes = b"opus", ssrc: int = 99) -> RtpSlice:
    return RtpSlice(seq, seq * 960, True, ssrc, 111, data, data)


def released(gate: AudioPacketGate, seq: int, at: float, **kwargs: object) -> list[int]:
    """The sequence numbers (timestamp / 960) of what one packet releases."""
    return [f.rtp_timestamp // 960 for f in gate.add(opus(seq, **kwargs), at)]  # type: ignore[arg-type]


def test_audio_in_order_passes_at_once_across_wraparound_and_duplicates_are_dropped() -> None:
    gate = AudioPacketGate()
    assert released(gate, 65535, 0.0) == [65535]
    assert released(gate, 0, 0.02) == [0]  # wrap-around is not "late"
    assert released(gate, 0, 0.02) == []  # duplicate
    assert released(gate, 1, 0.04, data=b"") == []  # empty payload: nothing to forward


def test_reordered_audio_is_released_in_sequence_order_within_the_window() -> None:
    gate = AudioPacketGate(window=0.06)
    assert released(gate, 10, 0.0) == [10]
    assert released(gate, 12, 0.04) == []  # 11 is late: 12 waits for it
    assert released(gate, 13, 0.06) == []
    assert released(gate, 11, 0.07) == [11, 12, 13]  # in order, nothing dropped
    assert released(gate, 11, 0.08) == []  # a duplicate of a released packet
    assert gate.held_packets == 0


def test_a_lost_audio_packet_is_given_up_after_the_window_and_late_arrivals_dropped() -> None:
    gate = AudioPacketGate(window=0.06)
    assert released(gate, 10, 0.0) == [10]
    assert released(gate, 12, 0.04) == []
    assert released(gate, 13, 0.06) == []
    assert released(gate, 14, 0.11) == [12, 13, 14]  # 12 waited 70 ms: 11 is lost
    assert released(gate, 11, 0.12) == []  # too late now


def test_a_jump_after_an_outage_and_a_new_source_pass_at_once() -> None:
    gate = AudioPacketGate()
    assert released(gate, 10, 0.0) == [10]
    assert released(gate, 300, 6.0) == [300]  # the sender went on during an outage
    assert released(gate, 5, 6.1, ssrc=7) == [5]  # a new SSRC starts over


def test_audio_far_behind_is_late_not_a_restart_unless_nothing_else_comes() -> None:
    gate = AudioPacketGate()
    assert released(gate, 1000, 0.0) == [1000]
    assert released(gate, 800, 0.01) == []  # far behind: dropped, the stream goes on
    assert released(gate, 1001, 0.02) == [1001]
    # A source that really restarted its numbers (same SSRC) is followed after a second.
    assert released(gate, 5, 0.1) == []
    assert released(gate, 6, 0.6) == []
    assert released(gate, 7, 1.2) == [7]
    assert released(gate, 8, 1.22) == [8]


def test_late_retransmissions_after_an_outage_are_not_released_as_stale_frames() -> None:
    """A receiver NACKs the last packets of an outage; their late copies must not come out
    as old frames between the new ones, nor be taken for a restarted source."""
    assembler = VideoFrameAssembler()
    out: list[tuple[int, bool]] = []

    def feed(packets: list[RtpSlice], at: float) -> None:
        for packet in packets:
            frames, _ = assembler.add(packet, at)
            out.extend((f.rtp_timestamp, f.after_loss) for f in frames)

    feed(vp8_packets(0, 0, KEYFRAME, 2), 0.0)
    feed(vp8_packets(2, 3000, DELTA, 2), 0.033)
    # A 5 s outage: packets 4..303 (150 frames) never arrive. Then new packets come...
    feed(vp8_packets(304, 3000 * 152, DELTA, 2), 5.1)
    # ...and the NACKed retransmissions of the outage's last frames and of its first ones.
    for old in range(300, 4, -2):
        feed(vp8_packets(old, 3000 * (old // 2), DELTA, 2), 5.11)
    feed(vp8_packets(306, 3000 * 153, KEYFRAME, 2), 5.2)
    feed(vp8_packets(308, 3000 * 154, DELTA, 2), 5.23)
    assert out == [
        (0, False),
        (3000, False),
        (3000 * 152, True),
        (3000 * 153, False),
        (3000 * 154, False),
    ]
