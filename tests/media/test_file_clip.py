"""A headless participant can send a real WebM file, packet for packet, without re-encoding."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import pytest

from vvserver.client.file_clip import UnusableMediaFile, clip_from_file
from vvserver.client.sample_clip import Clip


def write_webm(path: Path, clip: Clip) -> None:
    """A WebM with the sample clip's own VP8 and Opus packets (muxed, never re-encoded)."""
    with av.open(str(path), "w", format="webm") as out:
        video = out.add_stream("libvpx", rate=clip.spec.fps)
        video.width, video.height = clip.spec.width, clip.spec.height
        audio = out.add_stream("libopus", rate=48_000)
        for frame in clip.video:
            packet = av.Packet(frame.data)
            packet.stream = video
            packet.pts = packet.dts = frame.index
            packet.time_base = Fraction(1, clip.spec.fps)
            packet.is_keyframe = frame.keyframe
            out.mux(packet)
        for frame in clip.audio:
            packet = av.Packet(frame.data)
            packet.stream = audio
            packet.pts = packet.dts = frame.index * 960
            packet.time_base = Fraction(1, 48_000)
            out.mux(packet)


def test_a_webm_file_becomes_a_clip_with_the_same_packets(tmp_path: Path, clip: Clip) -> None:
    path = tmp_path / "visit.webm"
    write_webm(path, clip)
    loaded = clip_from_file(path)
    assert [f.data for f in loaded.video] == [f.data for f in clip.video]
    assert [f.data for f in loaded.audio] == [f.data for f in clip.audio]
    assert loaded.video[0].keyframe
    assert (loaded.spec.width, loaded.spec.height, loaded.spec.fps) == (640, 480, 30)


def test_files_that_would_need_re_encoding_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "not-media.webm"
    path.write_bytes(b"definitely not a media file")
    with pytest.raises(UnusableMediaFile):
        clip_from_file(path)


def test_the_headless_client_refuses_a_file_it_would_have_to_re_encode(tmp_path: Path) -> None:
    from vvserver.client.headless_cli import main

    path = tmp_path / "talk.mp3"
    path.write_bytes(b"ID3 not really audio")
    bad = str(path)
    with pytest.raises(SystemExit) as exited:
        main(
            ["--server", "http://127.0.0.1:9", "--role", "visitor", "--token", "t", "--media", bad]
        )
    assert exited.value.code == 2
