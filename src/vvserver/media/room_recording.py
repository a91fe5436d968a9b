"""A room's recording: one recorder per participant during the call, the remux after it.

The end of a visit is told to everybody before the remux starts: remuxing takes seconds and
grows with the visit's length, and nobody should wait for it. `finished()` waits for it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

from vvserver.media.forwarding import Feed
from vvserver.media.participant import VisitLog
from vvserver.media.recorder import ParticipantRecorder
from vvserver.media.remux import RecordingResult, finalize_recording
from vvserver.media.room_events import Role

logger = logging.getLogger(__name__)


class RoomRecording:
    """Records `roles` into packet logs under `directory` (None: nothing is recorded)."""

    def __init__(
        self,
        directory: Path | None,
        *,
        visit_id: int,
        roles: Sequence[Role],
        feeds_of: Callable[[Role], tuple[Feed, Feed]],
        now: Callable[[], datetime],
        log: VisitLog,
    ) -> None:
        self.directory = directory
        self._log = log
        self.result: RecordingResult | None = None
        self.failures: list[str] = []  # recording problems, for staff to see
        self._finished = asyncio.Event()
        self._remux: asyncio.Task[None] | None = None
        self._recorders = [
            ParticipantRecorder(
                directory, visit_id=visit_id, role=role, feeds=feeds_of(role), now=now
            )
            for role in roles
            if directory is not None
        ]
        if directory is None:
            self._finished.set()

    def stop(self) -> None:
        """Stop recording (the logs are flushed and closed); fast, on the event loop."""
        for recorder in self._recorders:
            recorder.close()
        self.failures = [r.failure for r in self._recorders if r.failure]

    async def finish(self) -> None:
        """Remux the logs into WebM files and the manifest, in a thread of its own; the remux
        goes on when the caller is cancelled (`finished()` waits for it)."""
        if self._remux is None:
            self._remux = asyncio.create_task(self._finish(), name="recording remux")
        await asyncio.shield(self._remux)

    async def _finish(self) -> None:
        try:
            if self.directory is None or self._finished.is_set():
                return
            directory = self.directory
            try:
                directory.mkdir(parents=True, exist_ok=True)
                with ThreadPoolExecutor(1, thread_name_prefix="remux") as pool:
                    loop = asyncio.get_running_loop()
                    self.result = await loop.run_in_executor(pool, finalize_recording, directory)
            except (OSError, ValueError) as exc:
                # Logs left on disk are picked up by recover_recordings at the next start.
                self.failures.append(f"{type(exc).__name__}: {exc}")
                self._log.error("finishing the recording failed: %s", exc)
        finally:
            self._finished.set()

    async def finished(self) -> None:
        """Wait until the recording is finished (or has failed); at once without one."""
        await self._finished.wait()
