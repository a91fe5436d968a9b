"""A reusable aiortc test peer: sends a pre-encoded clip, counts what it receives.

Neither direction encodes or decodes: the clip's VP8/Opus frames are split into RTP packets
and sent as they are due (`ClipTrack`), and received packets (through the relay's lean receive
path, `fast_receive.enable_fast_receive`) are reassembled into frames and counted,
hashed and identified against the clip. Used by the media tests, benchmarks and (wrapped in a
CLI) by the signaling layer.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiortc import RTCIceServer, RTCPeerConnection, RTCRtpReceiver, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from vvserver.client.sample_clip import Clip
from vvserver.media.aiortc_hooks import (
    RtpSlice,
    cap_receiver_remb,
    on_keyframe_request,
    on_remb,
    rtc_configuration,
    send_pli_upstream,
    tap_receiver,
)
from vvserver.media.assembly import AudioPacketGate, VideoFrameAssembler
from vvserver.media.fast_receive import enable_fast_receive
from vvserver.media.frames import EncodedFrame, MediaKind, clock_rate
from vvserver.media.participant import codec_preferences
from vvserver.media.rtp_packing import PICTURE_ID_MOD, opus_payloads, vp8_payloads
from vvserver.media.rtp_parsing import ntp_now
from vvserver.media.rtp_send_path import RtpSendPath

logger = logging.getLogger(__name__)

AUDIO_PACKET_SECONDS = 0.02


class ClipTrack(MediaStreamTrack):
    """Plays a clip's encoded frames in real time, looping; jumps to a keyframe on PLI.

    Frames go out through the sender's `RtpSendPath` (`bind`): each frame is split into its
    RTP payloads (`rtp_packing`) and sent from a loop timer when it is due, with no task, no
    `av.Packet` and no `RtpPacket` per frame; the bytes are what aiortc's sender would send.
    """

    def __init__(self, kind: MediaKind, clip: Clip) -> None:
        super().__init__()
        self.kind: MediaKind = kind
        self._frames = clip.frames(kind)
        self._interval = 1 / clip.spec.fps if kind == "video" else AUDIO_PACKET_SECONDS
        self._ticks = round(clock_rate(kind) * self._interval)
        self._payloads = vp8_payloads if kind == "video" else opus_payloads
        self._path: RtpSendPath | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._sequence_number = random.randrange(1 << 16)
        self._timestamp_origin = random.randrange(1 << 32)
        self._picture_id = random.randrange(PICTURE_ID_MOD)
        self._position = 0
        self._start = 0.0
        self._due = 0.0
        self._keyframe_wanted = False
        self.sent: list[int] = []  # clip indices, in sending order
        # clip index -> event-loop time it was last handed to the sender: a receiver that
        # identifies a frame by its bytes reads its delay from here (the clip loops).
        self.last_sent_at: dict[int, float] = {}
        self.remb_received: list[int] = []  # bitrates (bps) the remote receiver asked for
        self._remb_changed = asyncio.Event()
        self.keyframe_requests = 0
        self.paused = False  # True: send nothing (camera off / muted); time goes on

    @property
    def sender_path(self) -> RtpSendPath | None:
        return self._path

    def bind(self, path: RtpSendPath) -> None:
        """Send through `path` (this track's sender); frames start when the sender starts."""
        self._path = path
        path.on_start = self._started

    def record_remb(self, bitrate: int) -> None:
        self.remb_received.append(bitrate)
        self._remb_changed.set()

    async def wait_for_remb_at_most(self, bitrate: int, within: float) -> int:
        """Wait for a REMB of at most `bitrate` bps and return it; TimeoutError otherwise."""
        async with asyncio.timeout(within):
            while not self.remb_received or self.remb_received[-1] > bitrate:
                self._remb_changed.clear()
                await self._remb_changed.wait()
        return self.remb_received[-1]

    def request_keyframe(self) -> None:
        self.keyframe_requests += 1
        self._keyframe_wanted = True

    def _started(self) -> None:
        loop = asyncio.get_running_loop()
        self._start = self._due = loop.time()
        self._send_due()

    def _send_due(self) -> None:
        """Send the frame that is due now and set the timer for the next one."""
        path = self._path
        if self.readyState != "live" or path is None or not path.started:
            self._timer = None
            return
        loop = asyncio.get_running_loop()
        slot = round((self._due - self._start) / self._interval)
        self._due += self._interval
        self._timer = loop.call_at(self._due, self._send_due)
        if self.paused:
            self._keyframe_wanted = True  # resume with a picture
            return
        if self._keyframe_wanted:
            self._keyframe_wanted = False
            while not self._frames[self._position].keyframe:
                self._position -= 1  # replay from the latest keyframe: a picture at once
        frame = self._frames[self._position]
        self._position = (self._position + 1) % len(self._frames)
        payloads = self._payloads(frame.data, self._picture_id)
        self._picture_id = (self._picture_id + 1) % PICTURE_ID_MOD
        timestamp = (self._timestamp_origin + slot * self._ticks) & 0xFFFFFFFF
        ntp = ntp_now()
        last = len(payloads) - 1
        seq = self._sequence_number
        for index, payload in enumerate(payloads):
            path.send(seq, timestamp, index == last, payload, ntp)
            seq = (seq + 1) & 0xFFFF
        self._sequence_number = seq
        self.sent.append(frame.index)
        self.last_sent_at[frame.index] = loop.time()

    async def recv(self) -> Any:
        """Nothing pulls frames from it: they are pushed to the sender's `RtpSendPath`."""
        raise MediaStreamError

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        super().stop()


@dataclass
class ReceivedMedia:
    """What one receiving media section got, counted without decoding."""

    kind: MediaKind
    clip: Clip | None
    frames: int = 0
    byte_count: int = 0
    keyframes: int = 0
    first_frame_at: float | None = None  # event-loop time
    first_keyframe_at: float | None = None
    digests: list[bytes] = field(default_factory=list)
    clip_indices: list[int | None] = field(default_factory=list)  # None: not a clip frame
    rtp_timestamps: list[int] = field(default_factory=list)
    ssrc: int | None = None  # the sender's SSRC, e.g. to send it a PLI
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    # Called for each frame with its clip index (None: not a clip frame), e.g. for delays.
    on_frame: Callable[[EncodedFrame, int | None], None] | None = None

    def add(self, frame: EncodedFrame) -> None:
        self.frames += 1
        self.byte_count += len(frame.data)
        if self.first_frame_at is None:
            self.first_frame_at = frame.arrival
        if frame.keyframe and self.kind == "video":
            self.keyframes += 1
            if self.first_keyframe_at is None:
                self.first_keyframe_at = frame.arrival
        digest = hashlib.sha256(frame.data).digest()
        self.digests.append(digest)
        found = self.clip.by_digest(digest) if self.clip is not None else None
        index = found.index if found is not None else None
        self.clip_indices.append(index)
        self.rtp_timestamps.append(frame.rtp_timestamp)
        self.ssrc = frame.ssrc
        self.changed.set()
        if self.on_frame is not None:
            self.on_frame(frame, index)

    async def wait_for_frames(self, count: int, within: float) -> None:
        """Wait until `count` frames arrived; TimeoutError after `within` seconds."""
        async with asyncio.timeout(within):
            while self.frames < count:
                self.changed.clear()
                await self.changed.wait()

    async def wait_for_keyframes(self, count: int, within: float) -> None:
        """Wait until `count` keyframes arrived; TimeoutError after `within` seconds."""
        async with asyncio.timeout(within):
            while self.keyframes < count:
                self.changed.clear()
                await self.changed.wait()


@dataclass(frozen=True, slots=True)
class PeerSection:
    kind: MediaKind
    direction: str = "sendrecv"  # sendrecv, sendonly or recvonly

    @property
    def sends(self) -> bool:
        return self.direction in ("sendrecv", "sendonly")

    @property
    def receives(self) -> bool:
        return self.direction in ("sendrecv", "recvonly")


DEFAULT_SECTIONS = (PeerSection("audio"), PeerSection("video"))
Answerer = Callable[[str], Awaitable[str]]


class TestPeer:
    """An aiortc peer for tests: one media section per `sections` entry, in order."""

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        name: str,
        clip: Clip | None,
        *,
        sections: Sequence[PeerSection] = DEFAULT_SECTIONS,
        ice_servers: Sequence[RTCIceServer] = (),
        relay_only: bool = False,
    ) -> None:
        self.name = name
        self.clip = clip
        self.relay_only = relay_only  # TURN candidates alone (iceTransportPolicy "relay")
        self.pc = RTCPeerConnection(rtc_configuration(ice_servers, relay_only=relay_only))
        self._state_changed = asyncio.Event()
        self.pc.on("connectionstatechange", self._state_changed.set)
        self.sending: list[ClipTrack | None] = []
        self.received: list[ReceivedMedia | None] = []
        self.receive_bitrate_limit: int | None = None  # caps the REMB we send: a weak link
        self._receivers: list[RTCRtpReceiver] = []
        for section in sections:
            track: ClipTrack | None = None
            if section.sends:
                if clip is None:
                    raise ValueError("a sending peer needs a clip")
                track = ClipTrack(section.kind, clip)
            transceiver = self.pc.addTransceiver(track or section.kind, section.direction)
            transceiver.setCodecPreferences(codec_preferences(section.kind))
            if track is not None:
                track.bind(RtpSendPath(transceiver.sender))
                on_keyframe_request(transceiver.sender, track.request_keyframe)
                on_remb(transceiver.sender, track.record_remb)
            self.sending.append(track)
            media: ReceivedMedia | None = None
            if section.receives:
                media = ReceivedMedia(section.kind, clip)
                tap_receiver(transceiver.receiver, self._counting_sink(media))
                cap_receiver_remb(transceiver.receiver, lambda: self.receive_bitrate_limit)
            self.received.append(media)
            self._receivers.append(transceiver.receiver)

    def _counting_sink(self, media: ReceivedMedia) -> Callable[[RtpSlice], bool]:
        loop = asyncio.get_running_loop()
        if media.kind == "video":
            assembler = VideoFrameAssembler()

            def count_video(rtp: RtpSlice) -> bool:
                frames, want_keyframe = assembler.add(rtp, loop.time())
                for frame in frames:
                    media.add(frame)
                return want_keyframe

            return count_video
        gate = AudioPacketGate()

        def count_audio(rtp: RtpSlice) -> bool:
            for frame in gate.add(rtp, loop.time()):
                media.add(frame)
            return False

        return count_audio

    def sent_track(self, kind: MediaKind) -> ClipTrack:
        return next(t for t in self.sending if t is not None and t.kind == kind)

    def received_media(self, kind: MediaKind, nth: int = 0) -> ReceivedMedia:
        return [m for m in self.received if m is not None and m.kind == kind][nth]

    async def request_keyframe(self, kind: MediaKind, nth: int = 0) -> None:
        """Send a PLI for the `nth` received `kind` stream, as a browser does on picture loss."""
        index = [i for i, m in enumerate(self.received) if m is not None and m.kind == kind][nth]
        media = self.received[index]
        assert media is not None
        if media.ssrc is None:
            raise RuntimeError(f"{self.name} has not received any {kind} yet")
        await send_pli_upstream(self._receivers[index], media.ssrc)

    async def create_offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        local = self.pc.localDescription
        assert local is not None
        return str(local.sdp)

    async def answer_offer(self, offer_sdp: str) -> str:
        """Answer another peer's offer directly (a peer-to-peer call, no relay between)."""
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        enable_fast_receive(self.pc)
        local = self.pc.localDescription
        assert local is not None
        return str(local.sdp)

    async def accept_answer(self, answer_sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer_sdp, type="answer"))
        enable_fast_receive(self.pc)

    async def connect(self, answerer: Answerer) -> None:
        """Offer, let `answerer` (e.g. VisitRoom.join) answer, apply the answer."""
        await self.accept_answer(await answerer(await self.create_offer()))

    async def wait_connected(self, within: float = 10.0) -> None:
        """Wait for "connected"; ConnectionError if the connection fails or closes first."""
        state = await self.wait_for_state({"connected", "failed", "closed"}, within)
        if state != "connected":
            raise ConnectionError(f"{self.name}: connection {state}")

    async def wait_for_state(self, states: set[str], within: float) -> str:
        """Wait until the connection state is one of `states`; TimeoutError otherwise."""
        async with asyncio.timeout(within):
            while (state := str(self.pc.connectionState)) not in states:
                self._state_changed.clear()
                await self._state_changed.wait()
        return state

    async def close(self) -> None:
        await self.pc.close()
