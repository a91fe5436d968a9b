"""Recording a participant during the call: a feed subscriber that appends to packet logs."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from vvserver.media.forwarding import Feed
from vvserver.media.frames import EncodedFrame, MediaKind
from vvserver.media.packet_log import LOG_SUFFIX, PacketLogWriter, SegmentInfo

logger = logging.getLogger(__name__)


class ParticipantRecorder:
    """Writes one participant's audio and video, one packet log per connection segment."""

    # the fields the C chain reads and writes are slots (_rtp_native.h: SlotCache)
    __slots__ = (
        "__dict__",
        "_closed",
        "_directory",
        "_flush_interval",
        "_now",
        "_role",
        "_segment",
        "_taps",
        "_visit_id",
        "_writer",
        "failure",
    )

    def __init__(
        self,
        directory: Path,
        *,
        visit_id: int,
        role: str,
        feeds: tuple[Feed, ...],
        now: Callable[[], datetime],
        flush_interval: float = 1.0,
    ) -> None:
        self._directory = directory
        self._visit_id = visit_id
        self._role = role
        self._now = now
        self._flush_interval = flush_interval
        self._writer: PacketLogWriter | None = None
        self._segment: int | None = None
        self._closed = False
        self.failure: str | None = None  # why recording stopped early (disk full, ...)
        self._taps = [RecordingTap(feed.kind, self) for feed in feeds]
        for feed, tap in zip(feeds, self._taps, strict=True):
            feed.subscribe_frames(tap)

    def write(self, frame: EncodedFrame, segment: int) -> None:
        if self._closed:
            return
        try:
            self._write(frame, segment)
        except OSError as exc:
            self._write_failed(exc)

    def _write_failed(self, exc: OSError) -> None:
        """Writing failed (disk full, ...): the call goes on without a recording rather than
        failing (or spamming logs). Also called by the relay's C chain, which writes the
        usual frame itself (`_frame_publish.c`)."""
        self.failure = f"{type(exc).__name__}: {exc}"
        logger.error(
            "[visit %s] recording %s stopped: %s", self._visit_id, self._role, self.failure
        )
        self.close()

    def _write(self, frame: EncodedFrame, segment: int) -> None:
        if segment != self._segment or self._writer is None:
            if self._writer is not None:
                self._writer.close()
            self._segment = segment
            path = self._directory / f"{self._role}-{segment:03d}{LOG_SUFFIX}"
            info = SegmentInfo(self._visit_id, self._role, segment, self._now())
            self._writer = PacketLogWriter(
                path, info, origin=frame.arrival, flush_interval=self._flush_interval
            )
            logger.info("[visit %s] recording %s segment %d", self._visit_id, self._role, segment)
        self._writer.write(frame)

    def close(self) -> None:
        self._closed = True
        for tap in self._taps:
            tap.detach()
        if self._writer is not None:
            writer, self._writer = self._writer, None
            try:
                writer.close()
            except OSError as exc:
                logger.error("[visit %s] closing a packet log failed: %s", self._visit_id, exc)


class RecordingTap:
    """The Feed subscriber side of a recorder (never slow: it writes synchronously)."""

    # the fields the C chain reads and writes are slots (_rtp_native.h: SlotCache)
    __slots__ = ("__dict__", "_feed", "_recorder", "kind")

    def __init__(self, kind: MediaKind, recorder: ParticipantRecorder) -> None:
        self.kind: MediaKind = kind
        self._recorder = recorder
        self._feed: Feed | None = None

    def attach(self, feed: Feed) -> None:
        self._feed = feed

    def detach(self) -> None:
        if self._feed is not None:
            self._feed.unsubscribe(self)
            self._feed = None

    def offer(self, frame: EncodedFrame, segment: int) -> None:
        self._recorder.write(frame, segment)
