"""Recordings are written without re-encoding, play back in PyAV, survive a torn log, and
never exist for a privileged visit."""

from __future__ import annotations

import asyncio
import itertools
import json
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path

import av
import pytest

from tests.media.conftest import Resources, assert_back_to
from vvserver.client.peer import TestPeer
from vvserver.client.sample_clip import Clip
from vvserver.media.frames import EncodedFrame
from vvserver.media.packet_log import PacketLogWriter, SegmentInfo, read_packet_log
from vvserver.media.remux import demuxed_duration, finalize_recording, recover_recordings
from vvserver.media.room import VisitRoom

STARTED = datetime(2026, 5, 1, 14, 0, tzinfo=UTC)
REPOSITORY_ROOT = Path(__file__).resolve().parents[2]


def write_clip_log(
    path: Path, clip: Clip, seconds: float, *, video_until: float | None = None
) -> None:
    """A packet log as the recorder writes it: the clip's frames at their real-time arrival."""
    writer = PacketLogWriter(path, SegmentInfo(7, "visitor", 1, STARTED), origin=100.0)
    frames: list[EncodedFrame] = []
    for n in range(round(seconds * 30)):
        if video_until is not None and n / 30 >= video_until:
            break
        source = clip.video[n % len(clip.video)]
        frames.append(
            EncodedFrame("video", source.data, n * 3000, source.keyframe, 1, 100 + n / 30)
        )
    for n in range(round(seconds * 50)):
        source = clip.audio[n % len(clip.audio)]
        frames.append(EncodedFrame("audio", source.data, n * 960, True, 2, 100 + n / 50))
    for frame in sorted(frames, key=lambda f: f.arrival):
        writer.write(frame)
    writer.close()


def decoded_counts(path: Path) -> dict[str, int]:
    counts = {"video": 0, "audio": 0}
    with av.open(str(path)) as container:
        for frame in container.decode(*container.streams):
            counts["video" if isinstance(frame, av.VideoFrame) else "audio"] += 1
    return counts


def test_a_packet_log_reads_back_what_was_written_and_stops_at_a_torn_tail(
    tmp_path: Path, clip: Clip
) -> None:
    log = tmp_path / "visitor-001.vvlog"
    write_clip_log(log, clip, 1.0)
    info, frames = read_packet_log(log)
    assert info == SegmentInfo(7, "visitor", 1, STARTED)
    complete = list(frames)
    assert len(complete) == 30 + 50
    assert complete[0].data == clip.video[0].data  # video arrives first at t=0
    with log.open("r+b") as file:  # a SIGKILL in the middle of a write
        file.truncate(log.stat().st_size - 10)
    assert len(list(read_packet_log(log)[1])) == len(complete) - 1


def test_a_log_becomes_a_webm_that_decodes_with_the_expected_duration(
    tmp_path: Path, clip: Clip
) -> None:
    write_clip_log(tmp_path / "visitor-001.vvlog", clip, 3.0)
    result = finalize_recording(tmp_path)
    [recorded] = result.files
    assert recorded.path.suffix == ".webm"
    assert abs(recorded.duration_s - 3.0) <= 0.1
    assert decoded_counts(recorded.path) == {"video": 90, "audio": 150}
    assert b"OpusHead" in recorded.path.read_bytes()  # browsers need Opus' CodecPrivate
    manifest = json.loads(result.manifest.read_text())
    assert manifest["files"][0]["name"] == "visitor-001.webm"
    assert manifest["files"][0]["participant"] == "visitor"
    assert manifest["files"][0]["started_at"] == STARTED.isoformat()
    assert manifest["files"][0]["sha256"] == recorded.sha256
    assert not list(tmp_path.glob("*.vvlog"))  # logs go once the manifest is written


def test_audio_that_goes_on_after_the_camera_stops_is_kept(tmp_path: Path, clip: Clip) -> None:
    write_clip_log(tmp_path / "visitor-001.vvlog", clip, 4.0, video_until=1.0)
    [recorded] = finalize_recording(tmp_path).files
    assert abs(recorded.duration_s - 4.0) <= 0.1
    assert decoded_counts(recorded.path) == {"video": 30, "audio": 200}


def test_a_burst_of_late_frames_after_a_stall_keeps_the_video_timestamps_increasing(
    tmp_path: Path, clip: Clip
) -> None:
    """After a 0.8 s stall the frames held up arrive together, then the stream goes on: the
    late ones re-anchor to their arrival, and the next ones must not be dated before them."""
    writer = PacketLogWriter(
        tmp_path / "visitor-001.vvlog", SegmentInfo(7, "visitor", 1, STARTED), origin=100.0
    )
    for n in range(90):
        arrival = 100 + n / 30 if not 30 <= n < 54 else 100 + 54 / 30  # 30..53 come late
        source = clip.video[n % len(clip.video)]
        writer.write(EncodedFrame("video", source.data, n * 3000, source.keyframe, 1, arrival))
    writer.close()
    [recorded] = finalize_recording(tmp_path).files
    with av.open(str(recorded.path)) as container:
        stamps = [p.pts for p in container.demux() if p.pts is not None and p.size]
    assert len(stamps) == 90
    assert all(b > a for a, b in itertools.pairwise(stamps)), stamps
    assert decoded_counts(recorded.path) == {"video": 90, "audio": 0}


def test_leftover_logs_are_recovered_at_start_up(tmp_path: Path, clip: Clip) -> None:
    visit = tmp_path / "visit-7"
    visit.mkdir()
    write_clip_log(visit / "visitor-001.vvlog", clip, 1.0)
    (tmp_path / "visit-8").mkdir()  # finalized or empty: left alone
    [result] = recover_recordings(tmp_path)
    assert result.directory == visit
    assert demuxed_duration(result.files[0].path) == pytest.approx(1.0, abs=0.1)


@pytest.mark.slow
async def test_a_recorded_visit_leaves_one_file_per_participant_and_a_privileged_one_none(
    tmp_path: Path, clip: Clip
) -> None:
    baseline = Resources.now()
    control_dir, privileged_dir = tmp_path / "visit-301", tmp_path / "visit-302"
    control = VisitRoom(301, recording_dir=control_dir)
    privileged = VisitRoom(302, recording_dir=privileged_dir, privileged=True)
    peers = [TestPeer(f"{role}-{n}", clip) for n in (1, 2) for role in ("visitor", "kiosk")]
    try:
        for room, (visitor, kiosk) in ((control, peers[0:2]), (privileged, peers[2:4])):
            await visitor.connect(room.joiner("visitor"))
            await kiosk.connect(room.joiner("kiosk"))
            await visitor.wait_connected(within=10)
            await kiosk.wait_connected(within=10)
        for peer in peers:
            await peer.received_media("video").wait_for_frames(90, within=15)
    finally:
        await control.close()
        await privileged.close()
        for peer in peers:
            await peer.close()
    assert privileged.recording is None
    assert not privileged_dir.exists()
    assert control.recording is not None
    files = {f.role: f for f in control.recording.files}
    assert set(files) == {"visitor", "kiosk"}
    for recorded in files.values():
        counts = decoded_counts(recorded.path)
        assert counts["video"] >= 80
        assert counts["audio"] >= 130
        assert abs(recorded.duration_s - counts["audio"] * 0.02) <= 1.0
    del control, privileged, peers, peer, room, visitor, kiosk, recorded, files
    await assert_back_to(baseline)


async def call_until_killed(root: Path, seconds: float, stall_after: float | None) -> float:
    """Run a recorded call in a child process, SIGKILL it; return the seconds it ran."""
    args = [str(root / "visit-900")] + ([str(stall_after)] if stall_after is not None else [])
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.media.crash_call",
        *args,
        stdout=asyncio.subprocess.PIPE,
        cwd=REPOSITORY_ROOT,
    )
    assert child.stdout is not None
    try:
        async with asyncio.timeout(30):
            assert (await child.stdout.readline()).strip() == b"connected"
        connected_at = asyncio.get_running_loop().time()
        await asyncio.sleep(seconds)
    finally:
        child.kill()  # SIGKILL: no clean-up of any kind
        await child.wait()
    assert child.returncode == -signal.SIGKILL
    return asyncio.get_running_loop().time() - connected_at


@pytest.mark.slow
@pytest.mark.parametrize("stall_after", [None, 1.0], ids=["steady", "visitor-camera-stalls"])
async def test_a_sigkill_mid_call_loses_at_most_the_last_two_seconds(
    tmp_path: Path, stall_after: float | None
) -> None:
    ran = await call_until_killed(tmp_path, 5.0, stall_after)
    [result] = recover_recordings(tmp_path)
    files = {f.role: f for f in result.files}
    assert set(files) == {"visitor", "kiosk"}
    for role, recorded in files.items():
        assert ran - 2.0 - 1.0 <= recorded.duration_s <= ran + 1.0, (role, recorded, ran)
        counts = decoded_counts(recorded.path)
        assert counts["audio"] * 0.02 >= ran - 3.0
        if role == "visitor" and stall_after is not None:
            assert 15 <= counts["video"] <= (stall_after + 1.0) * 30
        else:
            assert counts["video"] >= (ran - 3.0) * 30 * 0.8


@pytest.mark.slow
async def test_a_recording_that_cannot_be_written_does_not_stop_the_call(
    tmp_path: Path, clip: Clip
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the recording directory should go")
    room = VisitRoom(303, recording_dir=blocker / "visit-303")
    visitor, kiosk = TestPeer("visitor", clip), TestPeer("kiosk", clip)
    try:
        await visitor.connect(room.joiner("visitor"))
        await kiosk.connect(room.joiner("kiosk"))
        await kiosk.received_media("video").wait_for_frames(30, within=10)
        await visitor.received_media("video").wait_for_frames(30, within=10)
    finally:
        await room.close()
        await visitor.close()
        await kiosk.close()
    assert room.recording is None
    assert room.recording_failures  # reported, not raised


@pytest.mark.slow
async def test_whoever_hangs_up_may_go_away_and_the_recording_is_still_finished(
    tmp_path: Path, clip: Clip
) -> None:
    room = VisitRoom(304, recording_dir=tmp_path / "visit-304")
    visitor, kiosk = TestPeer("visitor", clip), TestPeer("kiosk", clip)
    try:
        await visitor.connect(room.joiner("visitor"))
        await kiosk.connect(room.joiner("kiosk"))
        await kiosk.received_media("video").wait_for_frames(30, within=10)
        # The caller of close() is cancelled while the room waits for its tasks.
        hanging_up = asyncio.create_task(room.close("terminated", "ended by staff"))
        await asyncio.sleep(0)
        hanging_up.cancel()
        with pytest.raises(asyncio.CancelledError):
            await hanging_up
        await room.close()  # a second call waits for the same closing
    finally:
        await visitor.close()
        await kiosk.close()
    assert room.recording is not None
    assert {f.role for f in room.recording.files} == {"visitor", "kiosk"}
    assert room.ended is not None
    assert room.ended.reason == "terminated"
